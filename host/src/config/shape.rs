//! The config file's shape, checked key by key, so that `payhost config check` names every
//! structural mistake in one run — each unknown key (with the nearest known one as a hint)
//! and each value of the wrong type, in every section — where deserializing stops at the
//! first. The faulty keys are set aside as they are found, so what is left still parses and
//! the semantic checks ([`super::problems`]) run on it too.
//!
//! The keys a section knows come from its own `Deserialize` (serde's refusal of an unknown
//! field lists the expected ones), so this cannot drift from the types. Nested tables are
//! checked before the table holding them, so a fault deep inside is named where it is and
//! only that key is set aside, not its whole section.

use super::routing::{BreakerSection, ResolverSection, RoutingSection, Rule, When};
use super::{
    Config, DunningSection, EmailSection, HostSection, ProviderConfig, RetentionSection,
    TelemetrySection, WebhookEndpoint,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::{Table, Value};

/// One mistake in the file: where (a key path, `host.bind`, `providers.mock.plugin`,
/// `webhook_endpoints[0].url`), what is wrong, and a hint when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "key '{}': {}", self.key, self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// Checks the whole file's shape, setting aside every key found at fault; afterwards
/// `value` deserializes as a [`Config`] unless a required key is missing.
pub fn check(value: &mut Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(root) = value.as_table_mut() else {
        out.push(problem("", "the file must be a TOML table".into(), None));
        return out;
    };
    if let Some(t) = table(root, "host") {
        strict::<HostSection>("host", t, &mut out);
    }
    if let Some(t) = table(root, "providers") {
        let mut broken = Vec::new();
        for (name, instance) in t.iter_mut() {
            let path = format!("providers.{name}");
            match instance.as_table_mut() {
                Some(i) => {
                    if !strict::<ProviderConfig>(&path, i, &mut out) {
                        broken.push(name.clone());
                    }
                }
                None => {
                    out.push(expected_table(&path, instance));
                    broken.push(name.clone());
                }
            }
        }
        for name in broken {
            t.remove(&name);
        }
    }
    if let Some(t) = table(root, "tenants") {
        let wrong: Vec<String> = t
            .iter()
            .filter(|(_, v)| !v.is_str())
            .map(|(k, _)| k.clone())
            .collect();
        for k in wrong {
            let v = t.remove(&k).unwrap_or(Value::Boolean(false));
            out.push(problem(
                &format!("tenants.{k}"),
                format!(
                    "expected the name of a provider instance (a string), found {}",
                    v.type_str()
                ),
                None,
            ));
        }
    }
    if let Some(t) = table(root, "email") {
        strict::<EmailSection>("email", t, &mut out);
    }
    each_table(root, "", "webhook_endpoints", &mut out, |path, t, out| {
        strict::<WebhookEndpoint>(path, t, out)
    });
    if let Some(t) = table(root, "dunning") {
        strict::<DunningSection>("dunning", t, &mut out);
    }
    if let Some(t) = table(root, "retention") {
        strict::<RetentionSection>("retention", t, &mut out);
    }
    if let Some(t) = table(root, "routing") {
        routing(t, &mut out);
    }
    if let Some(t) = table(root, "telemetry") {
        strict::<TelemetrySection>("telemetry", t, &mut out);
    }
    strict::<Config>("", root, &mut out);
    out
}

fn routing(t: &mut Table, out: &mut Vec<Problem>) {
    each_table(t, "routing", "rules", out, |path, r, out| {
        if let Some(w) = table(r, "when") {
            strict::<When>(&format!("{path}.when"), w, out);
        }
        strict::<Rule>(path, r, out)
    });
    if let Some(b) = table(t, "breaker") {
        strict::<BreakerSection>("routing.breaker", b, out);
    }
    if let Some(r) = table(t, "resolver") {
        strict::<ResolverSection>("routing.resolver", r, out);
    }
    strict::<RoutingSection>("routing", t, out);
}

/// Checks each table of the array under `key` in `parent` (at `path`:
/// `[[webhook_endpoints]]`, `[[routing.rules]]`) with `check`, keeping those it finds
/// usable; an item that is no table is named and set aside too.
fn each_table(
    parent: &mut Table,
    path: &str,
    key: &str,
    out: &mut Vec<Problem>,
    mut check: impl FnMut(&str, &mut Table, &mut Vec<Problem>) -> bool,
) {
    let Some(Value::Array(items)) = parent.get_mut(key) else {
        return;
    };
    let mut keep = Vec::new();
    for (i, mut item) in std::mem::take(items).into_iter().enumerate() {
        let at = join(path, &format!("{key}[{i}]"));
        let usable = match item.as_table_mut() {
            Some(t) => check(&at, t, out),
            None => {
                out.push(expected_table(&at, &item));
                false
            }
        };
        if usable {
            keep.push(item);
        }
    }
    *items = keep;
}

/// The table under `key`, or `None` (a value of another type there is left for the parent's
/// check to name).
fn table<'a>(parent: &'a mut Table, key: &str) -> Option<&'a mut Table> {
    parent.get_mut(key).and_then(Value::as_table_mut)
}

fn expected_table(path: &str, v: &Value) -> Problem {
    problem(
        path,
        format!("expected a table, found {}", v.type_str()),
        None,
    )
}

fn problem(key: &str, message: String, hint: Option<String>) -> Problem {
    Problem {
        key: key.to_owned(),
        message,
        hint,
    }
}

fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.starts_with('[')) {
        (true, _) => key.to_owned(),
        (false, true) => format!("{path}{key}"),
        (false, false) => format!("{path}.{key}"),
    }
}

/// Checks `t` (at `path`) against `T`: its unknown keys, then each value `T` refuses, set
/// aside one at a time until the rest deserializes. False when `T` still cannot be made of
/// what is left (a required key missing): the caller sets the whole table aside.
fn strict<T: DeserializeOwned>(path: &str, t: &mut Table, out: &mut Vec<Problem>) -> bool {
    let known = fields_of::<T>();
    if !known.is_empty() {
        let unknown: Vec<String> = t
            .keys()
            .filter(|k| !known.iter().any(|n| n == *k))
            .cloned()
            .collect();
        for k in unknown {
            t.remove(&k);
            let what = if path.is_empty() { "section" } else { "key" };
            // The key meant, when it is a slip; else every key known there.
            let (message, hint) = match nearest(&k, &known) {
                Some(n) => (
                    format!("unknown {what}"),
                    Some(format!("did you mean '{n}'?")),
                ),
                None => (
                    format!("unknown {what} (known: {})", known.join(", ")),
                    None,
                ),
            };
            out.push(problem(&join(path, &k), message, hint));
        }
    }
    let mut set_aside = Vec::new();
    for _ in 0..=t.len() {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(Value::Table(t.clone())) else {
            return true;
        };
        let message = e.inner().message().to_owned();
        // A required key this check set aside for its value: already named.
        if set_aside
            .iter()
            .any(|k: &String| message == format!("missing field `{k}`"))
        {
            return false;
        }
        let first = e.path().iter().next().and_then(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        let Some(first) = first.filter(|k| t.contains_key(k)) else {
            // Nothing to set aside here (a required key missing): the table as a whole.
            out.push(problem(path, message, None));
            return false;
        };
        let at = e.path().to_string();
        t.remove(&first);
        set_aside.push(first);
        out.push(problem(&join(path, &at), message, None));
    }
    false
}

/// The keys `T` accepts: serde's refusal of an unknown field lists them ("unknown field
/// `x`, expected one of `a`, `b`"). Empty for a type that takes any key.
fn fields_of<T: DeserializeOwned>() -> Vec<String> {
    let probe = Value::Table(Table::from_iter([(
        "\u{1}probe".to_owned(),
        Value::Integer(0),
    )]));
    match probe.try_into::<T>() {
        Ok(_) => Vec::new(),
        Err(e) => expected_fields(e.message()),
    }
}

fn expected_fields(message: &str) -> Vec<String> {
    if !message.starts_with("unknown field") {
        return Vec::new();
    }
    let Some((_, expected)) = message.split_once(", expected ") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The known name closest to `given` when it is close enough to be a slip (at most a third
/// of its letters different, at least one allowed).
pub fn nearest<'a>(given: &str, known: &'a [String]) -> Option<&'a str> {
    let allowed = (given.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (distance(&given.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Edit distance (insertions, deletions, substitutions, and swaps of two neighbours).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> (Vec<String>, Value) {
        let mut v: Value = toml::from_str(text).unwrap();
        let problems = check(&mut v).iter().map(ToString::to_string).collect();
        (problems, v)
    }

    #[test]
    fn the_known_keys_come_from_the_types() {
        let host = fields_of::<HostSection>();
        assert!(host.contains(&"bind".to_owned()) && host.contains(&"api_keys".to_owned()));
        assert!(fields_of::<Config>().contains(&"webhook_endpoints".to_owned()));
        assert!(fields_of::<When>().contains(&"amount_min".to_owned()));
    }

    #[test]
    fn near_names_are_hinted_and_far_ones_are_not() {
        let known = ["webhook_secret".to_owned(), "api_key".to_owned()];
        assert_eq!(nearest("webhook_secert", &known), Some("webhook_secret"));
        assert_eq!(nearest("API_KEY", &known), Some("api_key"));
        assert_eq!(nearest("colour", &known), None);
        assert_eq!(distance("ab", "ba"), 1);
    }

    #[test]
    fn every_mistake_in_every_section_is_named_and_the_rest_still_parses() {
        let (problems, mut v) = check_text(
            r#"
            surprise = 1
            [host]
            bnd = "127.0.0.1:8080"
            max_connections = "many"
            default_provider = "mock"
            [providers.mock]
            plugin = "mock"
            max_concurent_calls = 4
            [providers.broken]
            config = {}
            [tenants]
            acme = 7
            [dunning]
            retry_days = "soon"
            [[routing.rules]]
            name = "eu"
            route = ["mock"]
            when = { currency = ["eur"], amount_minimum = 5 }
            [[webhook_endpoints]]
            name = "app"
            url = 5
            secret = "whsec_app"
            [telemetry]
            otlp_endpiont = "http://127.0.0.1:4318"
            "#,
        );
        let expected = [
            "key 'host.bnd': unknown key",
            "(did you mean 'bind'?)",
            "key 'host.max_connections': invalid type: string \"many\", expected",
            "key 'providers.mock.max_concurent_calls': unknown key",
            "(did you mean 'max_concurrent_calls'?)",
            "key 'providers.broken': missing field `plugin`",
            "key 'tenants.acme': expected the name of a provider instance (a string), found integer",
            "key 'dunning.retry_days': invalid type: string \"soon\"",
            "key 'routing.rules[0].when.amount_minimum': unknown key",
            "(did you mean 'amount_min'?)",
            "key 'webhook_endpoints[0].url': invalid type: integer `5`",
            "key 'telemetry.otlp_endpiont': unknown key",
            "(did you mean 'otlp_endpoint'?)",
            "key 'surprise': unknown section",
        ];
        for e in expected {
            assert!(
                problems.iter().any(|p| p.contains(e)),
                "'{e}' in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 10, "{problems:#?}");
        // What is left is a config: the good keys kept, the faulty ones set aside.
        let c: Config = v.clone().try_into().unwrap();
        assert_eq!(c.host.default_provider.as_deref(), Some("mock"));
        assert_eq!(c.routing.rules.len(), 1);
        assert!(c.providers.contains_key("mock") && !c.providers.contains_key("broken"));
        assert!(check(&mut v).is_empty(), "a second pass finds nothing");
    }
}
