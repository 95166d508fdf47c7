//! Typed configuration: a plugin's config is a serde type; its keys (which are required,
//! which are secret, what each is for) come from that type's schema, and parsing refuses
//! unknown keys with an error that names the key and lists the ones the plugin knows.

use crate::api::{ConfigKey, PluginError};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A key that takes one value or a list (`webhook_secret = "a"` or `["a", "b"]` while a
/// secret is rolled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> OneOrMany<T> {
    /// The values, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Many(Vec<T>),
            One(T),
        }
        match Either::deserialize(d)? {
            Either::Many(v) if v.is_empty() => {
                Err(serde::de::Error::custom("expected at least one value"))
            }
            Either::Many(v) => Ok(Self(v)),
            Either::One(t) => Ok(Self(vec![t])),
        }
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let one = g.subschema_for::<T>();
        schemars::json_schema!({"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]})
    }
}

/// The keys of config type `C`, by name.
pub fn keys<C: JsonSchema>() -> Vec<ConfigKey> {
    let schema = schemars::schema_for!(C);
    let root = schema.as_value();
    let required: Vec<&str> = root["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut keys: Vec<ConfigKey> = root["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, prop)| ConfigKey {
            name: name.clone(),
            required: required.contains(&name.as_str()),
            secret: mentions_write_only(prop),
            description: prop["description"].as_str().map(str::to_owned),
        })
        .collect();
    // By name, whatever order the JSON maps of this build keep.
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    keys
}

fn mentions_write_only(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.get("writeOnly") == Some(&Value::Bool(true)) || o.values().any(mentions_write_only)
        }
        Value::Array(a) => a.iter().any(mentions_write_only),
        _ => false,
    }
}

/// The JSON types a property accepts, from its schema.
fn types_of(prop: &Value) -> Vec<&str> {
    match &prop["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A string that stands for a number or a boolean (a value from `${VAR}` interpolation is
/// always a string) becomes one, where the key's type asks for it.
fn coerce(value: Value, prop: &Value) -> Value {
    let Value::String(s) = &value else {
        return value;
    };
    let types = types_of(prop);
    if types.contains(&"string") {
        return value;
    }
    if types.contains(&"integer") {
        if let Ok(i) = s.trim().parse::<i64>() {
            return Value::from(i);
        }
    }
    if types.contains(&"number") {
        if let Ok(f) = s.trim().parse::<f64>() {
            return Value::from(f);
        }
    }
    if types.contains(&"boolean") {
        match s.trim() {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    value
}

/// Parses an instance's configuration (a JSON object of the plugin's keys) into `C`.
///
/// # Errors
/// `invalid_config`, naming the key: an unknown key (with the keys the plugin knows), the
/// required keys that are missing (all of them), or a value of the wrong type.
pub fn parse<C: DeserializeOwned + JsonSchema>(config: &Value) -> Result<C, PluginError> {
    let schema = schemars::schema_for!(C);
    let root = schema.as_value();
    let empty = Map::new();
    let props = root["properties"].as_object().unwrap_or(&empty);
    let given = match config {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PluginError::config(
                "config",
                format!("the configuration must be a table of keys, not {other}"),
            ))
        }
    };
    let known = || {
        let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let mut unknown_keys: Vec<&String> = given
        .keys()
        .filter(|k| !props.contains_key(k.as_str()))
        .collect();
    unknown_keys.sort_unstable();
    if let Some(unknown) = unknown_keys.first() {
        return Err(PluginError::config(
            unknown,
            format!(
                "unknown config key '{unknown}' (this plugin knows: {})",
                known()
            ),
        ));
    }
    let mut missing: Vec<&str> = root["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|k| !given.contains_key(*k))
        .collect();
    missing.sort_unstable();
    if let Some(first) = missing.first() {
        return Err(PluginError::config(
            first,
            format!("missing required config keys: {}", missing.join(", ")),
        ));
    }
    let coerced: Map<String, Value> = given
        .into_iter()
        .map(|(k, v)| {
            let v = coerce(v, &props[&k]);
            (k, v)
        })
        .collect();
    let value = Value::Object(coerced);
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let key = e.path().to_string();
        let key = key.split(['.', '[']).next().unwrap_or("").to_owned();
        // The value is left out of the message: it may be a secret.
        let reason = e.into_inner().to_string();
        let reason = match reason.find("expected") {
            Some(i) => format!("wrong type or value; {}", &reason[i..]),
            None => "wrong type or value".to_owned(),
        };
        PluginError::config(&key, format!("config key '{key}': {reason}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Conf {
        /// The API key.
        api_key: Secret,
        /// Signing secrets, several while one is rolled.
        webhook_secret: Vec<Secret>,
        #[serde(default)]
        max_retries: Option<u32>,
        #[serde(default)]
        sandbox: bool,
    }

    #[test]
    fn keys_come_from_the_type() {
        let k = keys::<Conf>();
        let names: Vec<(&str, bool, bool)> = k
            .iter()
            .map(|k| (k.name.as_str(), k.required, k.secret))
            .collect();
        assert_eq!(
            names,
            [
                ("api_key", true, true),
                ("max_retries", false, false),
                ("sandbox", false, false),
                ("webhook_secret", true, true),
            ]
        );
        assert_eq!(k[0].description.as_deref(), Some("The API key."));
    }

    #[test]
    fn a_misspelt_key_is_refused_naming_it_and_the_known_ones() {
        let e = parse::<Conf>(&json!({"api_key": "k", "webhook_secrt": ["s"]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("webhook_secrt"));
        assert!(
            e.message
                .contains("api_key, max_retries, sandbox, webhook_secret"),
            "{e}"
        );
        let e = parse::<Conf>(&json!({})).unwrap_err();
        assert!(e.message.contains("api_key, webhook_secret"), "{e}");
    }

    #[test]
    fn strings_become_numbers_where_the_type_asks_and_values_never_echo() {
        let c = parse::<Conf>(
            &json!({"api_key": "k", "webhook_secret": ["s"], "max_retries": "3", "sandbox": "true"}),
        )
        .unwrap();
        assert_eq!((c.max_retries, c.sandbox), (Some(3), true));
        let e = parse::<Conf>(&json!({"api_key": 12345678, "webhook_secret": ["s"]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("api_key"));
        assert!(!e.message.contains("12345678"), "{e}");
    }
}
