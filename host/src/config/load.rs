//! From a file to a [`Loaded`] config: read, interpolate `${VAR}` / `${VAR:-default}`,
//! parse, apply the environment's overrides, check ([`super::problems`]); and the lenient
//! path `config check` takes to name every problem at once.

use super::{problems, shape, Config, ConfigError, Secret};
use std::path::{Path, PathBuf};

/// Where a loaded config came from, with paths resolved against its folder.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    pub config: Config,
    pub plugin_dir: PathBuf,
    pub data_dir: PathBuf,
    pub mail_dir: PathBuf,
}

impl Loaded {
    /// Where the lock of the plugin libraries is (`host.plugins_lock`, relative to the
    /// config file).
    pub fn lock_file(&self) -> PathBuf {
        self.file
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.config.host.plugins_lock)
    }

    /// The database to open: the configured URL (a relative SQLite path is relative to the
    /// config file), else `<data_dir>/payhost.db`.
    pub fn database_url(&self) -> String {
        match self.config.host.database_url.as_ref().map(Secret::expose) {
            None => crate::store::default_url(&self.data_dir),
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) if !path.starts_with('/') => {
                    let base = self.file.parent().unwrap_or(Path::new("."));
                    format!("sqlite://{}", base.join(path).display())
                }
                _ => url.to_owned(),
            },
        }
    }
}

/// Reads, interpolates, parses and validates a config file.
///
/// # Errors
/// [`ConfigError`] naming the file, and the key when one is at fault.
pub fn load(file: &Path) -> Result<Loaded, ConfigError> {
    let loaded = load_unchecked(file)?;
    validate(file, &loaded.config)?;
    Ok(loaded)
}

/// Like [`load`], without the checks [`problems`] makes (for `config check`, which lists
/// them all).
///
/// # Errors
/// The file cannot be read, is not TOML, or does not have the config's shape.
pub fn load_unchecked(file: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })?;
    let config = parse_unchecked(file, &text, &|name| std::env::var(name).ok())?;
    Ok(loaded(file, config))
}

/// `config` as read from `file`, its folders resolved against the file's.
fn loaded(file: &Path, config: Config) -> Loaded {
    let base = file.parent().unwrap_or(Path::new("."));
    Loaded {
        file: file.to_owned(),
        plugin_dir: base.join(&config.host.plugin_dir),
        data_dir: base.join(&config.host.data_dir),
        mail_dir: config.email.dir.as_ref().map_or_else(
            || base.join(&config.host.data_dir).join("mail"),
            |d| base.join(d),
        ),
        config,
    }
}

/// For `config check`: every problem of the file's shape at once — each unset variable,
/// unknown key and value of the wrong type, in every section ([`shape`]) — and the config
/// made of what is left (the faulty keys set aside), so the semantic checks can run on it
/// too. `None` when nothing usable is left (the file unreadable, not TOML, a required key
/// missing at the top).
pub fn load_for_check(file: &Path) -> (Option<Loaded>, Vec<shape::Problem>) {
    let problem = |key: &str, message: String| shape::Problem {
        key: key.to_owned(),
        message,
        hint: None,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return (None, vec![problem("", format!("cannot read it: {e}"))]),
    };
    let mut value: toml::Value = match toml::from_str(&text) {
        Ok(v) => v,
        Err(e) => return (None, vec![problem("", e.to_string())]),
    };
    let env = |name: &str| std::env::var(name).ok();
    let unset = std::cell::RefCell::new(Vec::new());
    let _ = interpolate(
        &mut value,
        "",
        &|key, var| {
            unset.borrow_mut().push(problem(
                key,
                format!("environment variable '{var}' is not set (use ${{{var}:-default}} for a default)"),
            ));
            ConfigError::Invalid {
                file: file.to_owned(),
                message: String::new(),
            }
        },
        &env,
    );
    let mut problems = unset.into_inner();
    problems.extend(shape::check(&mut value));
    match finish(value, &env) {
        Ok(config) => (Some(loaded(file, config)), problems),
        Err(e) => {
            problems.push(problem("", e.message().to_owned()));
            (None, problems)
        }
    }
}

/// Parses config text; `env` looks variables up (injected so tests need no real environment).
///
/// # Errors
/// [`ConfigError`] for TOML syntax, unknown keys, wrong types, unset variables and
/// references to providers that are not configured.
pub fn parse(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let config = parse_unchecked(file, text, env)?;
    validate(file, &config)?;
    Ok(config)
}

fn parse_unchecked(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let value = read_toml(file, text, env)?;
    finish(value, env).map_err(|e| ConfigError::Invalid {
        file: file.to_owned(),
        message: e.message().to_owned(),
    })
}

/// `text` (of `file`) parsed as TOML, every `${VAR}` / `${VAR:-default}` expanded.
///
/// # Errors
/// [`ConfigError`] for TOML syntax, or naming the key of a variable that is not set.
pub(super) fn read_toml(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<toml::Value, ConfigError> {
    let mut value: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Invalid {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    interpolate(
        &mut value,
        "",
        &|key, var| ConfigError::Key {
            file: file.to_owned(),
            key: key.to_owned(),
            expected: format!(
                "environment variable '{var}' is not set (use ${{{var}:-default}} for a default)"
            ),
        },
        env,
    )?;
    Ok(value)
}

/// The config made of a parsed and interpolated file, with the environment's overrides.
fn finish(
    value: toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, toml::de::Error> {
    let mut config: Config = value.try_into()?;
    if let Some(p) = env("PAYMENT_PROVIDER").filter(|p| !p.is_empty()) {
        config.host.default_provider = Some(p);
    }
    if let Some(url) = env("PAYHOST_DATABASE_URL").filter(|u| !u.is_empty()) {
        config.host.database_url = Some(Secret::new(url));
    }
    if config.host.database_url.as_ref().map(Secret::expose) == Some("") {
        config.host.database_url = None;
    }
    Ok(config)
}

fn validate(file: &Path, c: &Config) -> Result<(), ConfigError> {
    match problems(c).into_iter().next() {
        None => Ok(()),
        Some((key, expected)) => Err(ConfigError::Key {
            file: file.to_owned(),
            key,
            expected,
        }),
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string value.
fn interpolate(
    v: &mut toml::Value,
    path: &str,
    unset: &dyn Fn(&str, &str) -> ConfigError,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    // Every value is visited (`unset` hears of each variable missing), the first error
    // returned.
    let mut first = None;
    match v {
        toml::Value::String(s) => *s = expand(s, path, unset, env)?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let Err(e) = interpolate(item, &format!("{path}[{i}]"), unset, env) {
                    first.get_or_insert(e);
                }
            }
        }
        toml::Value::Table(t) => {
            for (k, item) in t.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Err(e) = interpolate(item, &p, unset, env) {
                    first.get_or_insert(e);
                }
            }
        }
        _ => {}
    }
    first.map_or(Ok(()), Err)
}

pub(super) fn expand(
    s: &str,
    key: &str,
    unset: &dyn Fn(&str, &str) -> ConfigError,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(unset(key, name)),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
