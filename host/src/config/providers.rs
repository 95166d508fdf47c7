//! `[providers.<name>]`: a provider instance — its plugin, limits, egress allowlist and the
//! plugin's own keys (strings, numbers, booleans or lists of them; text never shows in
//! `Debug`: it may be a secret) — and the same for one instance in a file of its own
//! (`payhost plugins conformance --config`).

use super::load::read_toml;
use super::{ConfigError, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

fn default_max_concurrent_calls() -> usize {
    64
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The name the plugin declares in its metadata.
    pub plugin: String,
    /// Overrides `host.call_timeout_ms` for this instance.
    #[serde(default)]
    pub call_timeout_ms: Option<u64>,
    /// Calls to this instance at once (a call past its deadline counts until the plugin
    /// returns); more wait up to 100 ms for a slot, then get 503 `provider_busy`.
    #[serde(default = "default_max_concurrent_calls")]
    pub max_concurrent_calls: usize,
    /// Hosts this instance may reach over HTTP (its egress allowlist).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Passed to the plugin; values are strings, or lists of strings (a key repeated).
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Decline codes of this provider that say "try elsewhere" rather than "the card was
    /// refused" (e.g. `processing_error`, `issuer_not_available`, `try_again_later`): a
    /// payment declined with one goes on at the next instance of its route.
    #[serde(default)]
    pub soft_declines: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    One(Scalar),
    Many(Vec<Scalar>),
}

/// Text values may be secrets (api keys, webhook secrets): `Debug` never shows them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(Secret),
    Int(i64),
    Bool(bool),
}

impl ConfigValue {
    /// The text values (one, or each of a list).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let all: &[Scalar] = match self {
            ConfigValue::One(s) => std::slice::from_ref(s),
            ConfigValue::Many(v) => v,
        };
        all.iter().filter_map(|s| match s {
            Scalar::Text(t) => Some(t.expose()),
            _ => None,
        })
    }
}

impl Scalar {
    fn json(&self) -> Option<serde_json::Value> {
        match self {
            Scalar::Text(s) if s.expose().is_empty() => None,
            Scalar::Text(s) => Some(s.expose().into()),
            Scalar::Int(i) => Some((*i).into()),
            Scalar::Bool(b) => Some((*b).into()),
        }
    }
}

impl ProviderConfig {
    /// The configuration as the plugin receives it: a JSON object of its keys. Empty
    /// strings (an unset optional variable) are left out, in lists too.
    pub fn config_json(&self) -> serde_json::Value {
        config_json(&self.config)
    }
}

/// One provider instance outside `plugins.toml` (`payhost plugins conformance --config`):
/// the plugin's keys under `[config]`, and the instance's egress allowlist.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceFile {
    /// Hosts the instance may reach over HTTP.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Deadline for one plugin call.
    #[serde(default)]
    pub call_timeout_ms: Option<u64>,
    /// The plugin's configuration keys.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
}

impl InstanceFile {
    /// The configuration as the plugin receives it.
    pub fn config_json(&self) -> serde_json::Value {
        config_json(&self.config)
    }
}

/// Reads an instance file (TOML, `${VAR}` interpolated as in `plugins.toml`).
///
/// # Errors
/// [`ConfigError`] naming the file and the key at fault.
pub fn load_instance(file: &Path) -> Result<InstanceFile, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })?;
    read_toml(file, &text, &|name| std::env::var(name).ok())?
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            file: file.to_owned(),
            message: e.message().to_owned(),
        })
}

fn config_json(config: &BTreeMap<String, ConfigValue>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (k, v) in config {
        let value = match v {
            ConfigValue::One(s) => s.json(),
            ConfigValue::Many(list) => {
                let items: Vec<serde_json::Value> = list.iter().filter_map(Scalar::json).collect();
                (!items.is_empty()).then_some(serde_json::Value::Array(items))
            }
        };
        if let Some(v) = value {
            out.insert(k.clone(), v);
        }
    }
    serde_json::Value::Object(out)
}
