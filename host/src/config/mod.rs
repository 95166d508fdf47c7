//! `plugins.toml`: where plugins live, which provider instances to create from them, which
//! tenant uses which provider. Parsing and validation are pure and happen before any side
//! effect; every error names the file, the key and what was expected.

pub mod keys;
pub mod net;
pub mod routing;
pub mod shape;

pub use routing::{BreakerSection, ResolverSection, RoutingSection, Rule, When};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The development API key `make run` uses. The host refuses a non-loopback bind with it.
pub const DEV_API_KEY: &str = "dev_payhost_key";
/// The development admin key (`make run`, and the default when `admin_keys` is not set).
pub const DEV_ADMIN_KEY: &str = "dev_payhost_admin_key";
/// Secrets published in this repository (README, plugins.toml): anyone can sign with them.
pub const PUBLISHED_SECRETS: &[&str] = &["whsec_mock_development"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("{file}: key '{key}': {expected}")]
    Key {
        file: PathBuf,
        key: String,
        expected: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub host: HostSection,
    /// Provider instances by name (the name API callers and webhooks use).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Tenant id → provider instance name.
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// How payhost sends its emails (receipts, failure notices, welcome).
    #[serde(default)]
    pub email: EmailSection,
    /// The application's endpoints that receive every domain event, signed.
    #[serde(default)]
    pub webhook_endpoints: Vec<WebhookEndpoint>,
    #[serde(default)]
    pub dunning: DunningSection,
    #[serde(default)]
    pub retention: RetentionSection,
    /// Which provider instances new payments, customers and subscriptions go to, in which
    /// order when one fails, and how an instance's health is judged.
    #[serde(default)]
    pub routing: RoutingSection,
}

/// How long payhost keeps what it no longer needs. Nothing still needed is touched:
/// pending or failed inbox and outbox rows stay, events stay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Stored answers to `Idempotency-Key` requests (they can hold client secrets).
    #[serde(default = "default_idempotency_hours")]
    pub idempotency_hours: u32,
    /// Processed webhooks keep their row (a late redelivery is still a duplicate) but their
    /// payload (personal data) is cleared after this many days.
    #[serde(default = "default_retention_days")]
    pub inbox_payload_days: u32,
    /// Outbox rows done are deleted after this many days.
    #[serde(default = "default_retention_days")]
    pub outbox_days: u32,
    /// `.eml` files of the file transport are deleted after this many days.
    #[serde(default = "default_retention_days")]
    pub mail_days: u32,
    /// How often the sweeper runs (it also runs at start).
    #[serde(default = "default_sweep_minutes")]
    pub sweep_every_minutes: u32,
    /// Rows of the audit trail are kept this many days (a year by default; assessors such
    /// as PCI DSS ask for one), then removed by a sweep of their own that the trail records.
    #[serde(default = "default_audit_days")]
    pub audit_days: u32,
}

fn default_audit_days() -> u32 {
    365
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            idempotency_hours: default_idempotency_hours(),
            inbox_payload_days: default_retention_days(),
            outbox_days: default_retention_days(),
            mail_days: default_retention_days(),
            sweep_every_minutes: default_sweep_minutes(),
            audit_days: default_audit_days(),
        }
    }
}

fn default_idempotency_hours() -> u32 {
    24
}
fn default_retention_days() -> u32 {
    30
}
fn default_sweep_minutes() -> u32 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DunningSection {
    /// Days after a failed payment when it is attempted again; empty turns dunning off.
    #[serde(default = "default_retry_days")]
    pub retry_days: Vec<u32>,
}

impl Default for DunningSection {
    fn default() -> Self {
        Self {
            retry_days: default_retry_days(),
        }
    }
}

fn default_retry_days() -> Vec<u32> {
    vec![1, 3, 5]
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// `file` (default: `.eml` files in `dir`, nothing to install) or `smtp`.
    #[serde(default = "default_email_transport")]
    pub transport: String,
    /// Folder for the file transport, relative to the config file (default: `mail` in the
    /// data folder).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default = "default_mail_from")]
    pub from: String,
    /// `smtp://host:port` or `smtps://user:password@host` for the smtp transport.
    #[serde(default)]
    pub smtp_url: Option<String>,
}

impl Default for EmailSection {
    fn default() -> Self {
        Self {
            transport: default_email_transport(),
            dir: None,
            from: default_mail_from(),
            smtp_url: None,
        }
    }
}

fn default_email_transport() -> String {
    "file".into()
}
fn default_mail_from() -> String {
    "payhost <billing@payhost.invalid>".into()
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    pub name: String,
    pub url: String,
    /// Signs every delivery (`Payhost-Signature: t=..,v1=..`).
    pub secret: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSection {
    #[serde(default = "default_bind")]
    pub bind: String,
    /// Folder scanned for plugin libraries, relative to the config file.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// Folder for the host's own files (private plugin copies), relative to the config file.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The provider used when a request names none and its tenant has none.
    #[serde(default)]
    pub default_provider: Option<String>,
    /// `sqlite://<file>` or `postgres://...`; default: a SQLite file in `data_dir`.
    /// `PAYHOST_DATABASE_URL` overrides it.
    #[serde(default)]
    pub database_url: Option<String>,
    /// First retry delay of an outgoing webhook; it doubles per attempt, up to an hour.
    #[serde(default = "default_webhook_retry_ms")]
    pub webhook_retry_base_ms: u64,
    /// Fallback rescan of the plugin folder, for filesystems that do not notify.
    #[serde(default = "default_rescan_ms")]
    pub plugin_rescan_ms: u64,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Largest provider webhook accepted, in bytes (providers' events can be larger than API
    /// requests: a Stripe event embeds whole objects).
    #[serde(default = "default_webhook_body_limit")]
    pub webhook_body_limit_bytes: usize,
    /// Deadline for one plugin call.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// How long a connection may take to send a request's headers, also how long an idle
    /// keep-alive connection is kept waiting for its next request.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// How long a request may take to send its body.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Connections served at once; further ones wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Bearer keys accepted by the API: plain strings (every tenant, every scope), or
    /// tables that bind a key to a tenant and scopes and may hold only its SHA-256.
    #[serde(default = "default_api_keys")]
    pub api_keys: Vec<ApiKey>,
    /// Bearer keys accepted by `/admin` and the console: plain strings, or tables
    /// `{ name, key | sha256 }` (the name is the actor in the audit trail).
    #[serde(default = "default_admin_keys")]
    pub admin_keys: Vec<ApiKey>,
    /// Wrong keys one source address may send in 10 minutes (across the API, `/admin` and the
    /// console sign-in) before it is refused for a while: the first half answered at once,
    /// the rest ever more slowly. A test rig that sends wrong keys on purpose raises it.
    #[serde(default = "default_auth_failures_allowed")]
    pub auth_failures_allowed: u32,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or CIDR blocks, e.g.
    /// "10.0.0.0/8"): the audit trail and the sign-in throttle see the client, not them.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Minisign public keys whose signatures make a plugin library trusted, each named
    /// (several at once: rotation). `minisign -G` prints them.
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKeyConfig>,
    /// Refuse a plugin library no trusted key signed. Default: on when `bind` is beyond
    /// loopback, off on loopback (development).
    #[serde(default)]
    pub require_signature: Option<bool>,
    /// The lock of the plugin libraries this host loads, relative to the config file
    /// (`payhost plugins lock` writes it); while it exists, bytes it does not list are refused.
    #[serde(default = "default_plugins_lock")]
    pub plugins_lock: PathBuf,
}

/// `{ name, key }`: a minisign public key the operator trusts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeyConfig {
    pub name: String,
    /// Base64, as `minisign -G` prints it (`RW...`).
    pub key: String,
}

fn default_auth_failures_allowed() -> u32 {
    10
}

fn default_plugins_lock() -> PathBuf {
    "plugins.lock".into()
}

/// The development plugin-signing key of this repository (`deploy/dev/`): its secret half is
/// public, so it is never trusted beyond loopback.
pub const DEV_PLUGIN_KEY: &str = "RWQ3ZmYhiJM6RrBNAalO6YgB+GZ/X9xab+/2qU4jVDHtCi6uCUmaxNJQ";

impl Default for HostSection {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            plugin_dir: default_plugin_dir(),
            data_dir: default_data_dir(),
            default_provider: None,
            database_url: None,
            body_limit_bytes: default_body_limit(),
            webhook_body_limit_bytes: default_webhook_body_limit(),
            plugin_rescan_ms: default_rescan_ms(),
            webhook_retry_base_ms: default_webhook_retry_ms(),
            call_timeout_ms: default_call_timeout_ms(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_connections: default_max_connections(),
            api_keys: default_api_keys(),
            admin_keys: default_admin_keys(),
            trusted_proxies: Vec::new(),
            auth_failures_allowed: default_auth_failures_allowed(),
            trusted_keys: Vec::new(),
            require_signature: None,
            plugins_lock: default_plugins_lock(),
        }
    }
}

fn default_bind() -> String {
    "127.0.0.1:8080".into()
}
fn default_plugin_dir() -> PathBuf {
    "plugins-enabled".into()
}
fn default_data_dir() -> PathBuf {
    "data".into()
}
fn default_webhook_retry_ms() -> u64 {
    10_000
}
fn default_rescan_ms() -> u64 {
    2_000
}
fn default_webhook_body_limit() -> usize {
    1024 * 1024
}

fn default_body_limit() -> usize {
    64 * 1024
}
fn default_call_timeout_ms() -> u64 {
    10_000
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_body_read_timeout_ms() -> u64 {
    30_000
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_concurrent_calls() -> usize {
    64
}
fn default_api_keys() -> Vec<ApiKey> {
    vec![ApiKey::Plain(DEV_API_KEY.into())]
}
fn default_admin_keys() -> Vec<ApiKey> {
    vec![ApiKey::Plain(DEV_ADMIN_KEY.into())]
}

/// One entry of `host.api_keys`: a plain key, or a table.
#[derive(Clone)]
pub enum ApiKey {
    Plain(String),
    Table(ApiKeyTable),
}

/// `{ name, key | sha256, tenant, scopes }`: several may be valid at once (rotation).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyTable {
    /// Named in logs and errors instead of the key.
    #[serde(default)]
    pub name: Option<String>,
    /// The key itself (use `${VAR}`), or...
    #[serde(default)]
    pub key: Option<String>,
    /// ...its SHA-256 in hex (`printf %s "$KEY" | sha256sum`), so the config holds no key.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The only tenant the key acts for; its requests see only that tenant's records.
    #[serde(default)]
    pub tenant: Option<String>,
    /// `read` (GET) and/or `write` (POST, DELETE); both when not given.
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(ApiKey::Plain(s)),
            t @ toml::Value::Table(_) => ApiKeyTable::deserialize(t)
                .map(ApiKey::Table)
                .map_err(|e| D::Error::custom(format!("host.api_keys: {}", e.message()))),
            _ => Err(D::Error::custom(
                "host.api_keys: each key is a string, or a table { name, key or sha256, \
                 tenant, scopes }",
            )),
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKey::Plain(_) => f.write_str("[redacted]"),
            ApiKey::Table(t) => f
                .debug_struct("ApiKey")
                .field("name", &t.name)
                .field("key", &t.key.as_ref().map(|_| Redacted))
                .field("sha256", &t.sha256.as_ref().map(|_| Redacted))
                .field("tenant", &t.tenant)
                .field("scopes", &t.scopes)
                .finish(),
        }
    }
}

impl ApiKey {
    /// The SHA-256 of the key (hex digests are checked by [`validate`]; one that is not
    /// hex gives a digest nothing hashes to).
    pub fn digest(&self) -> [u8; 32] {
        use sha2::Digest;
        match self {
            ApiKey::Plain(k) | ApiKey::Table(ApiKeyTable { key: Some(k), .. }) => {
                sha2::Sha256::digest(k.as_bytes()).into()
            }
            ApiKey::Table(t) => {
                let mut out = [0u8; 32];
                let hex = t.sha256.as_deref().unwrap_or_default();
                match hex::decode_to_slice(hex, &mut out) {
                    Ok(()) => out,
                    Err(_) => [0xff; 32],
                }
            }
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        match self {
            ApiKey::Plain(_) => None,
            ApiKey::Table(t) => t.tenant.as_deref(),
        }
    }

    /// The scopes the key holds.
    pub fn scopes(&self) -> Vec<Scope> {
        match self {
            ApiKey::Table(ApiKeyTable {
                scopes: Some(s), ..
            }) => s.clone(),
            _ => vec![Scope::Read, Scope::Write],
        }
    }

    /// How logs, errors and the audit trail name the key: its name, else its place in
    /// `list` (`api_keys`, `admin_keys`).
    pub fn label(&self, list: &str, index: usize) -> String {
        match self {
            ApiKey::Table(ApiKeyTable { name: Some(n), .. }) => n.clone(),
            _ => format!("host.{list}[{index}]"),
        }
    }

    /// The key itself, when the config holds it (not only its digest).
    pub fn text(&self) -> Option<&str> {
        match self {
            ApiKey::Plain(k) | ApiKey::Table(ApiKeyTable { key: Some(k), .. }) => Some(k),
            ApiKey::Table(_) => None,
        }
    }
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

#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// Stands for a secret in `Debug` output.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Text values may be secrets (api keys, webhook secrets): `Debug` never shows them.
impl std::fmt::Debug for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Text(_) => Redacted.fmt(f),
            Scalar::Int(i) => i.fmt(f),
            Scalar::Bool(b) => b.fmt(f),
        }
    }
}

impl std::fmt::Debug for EmailSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSection")
            .field("transport", &self.transport)
            .field("dir", &self.dir)
            .field("from", &self.from)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| Redacted))
            .finish()
    }
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &Redacted)
            .finish()
    }
}

impl std::fmt::Debug for HostSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field named: a new one does not compile until it is shown or redacted here.
        let HostSection {
            bind,
            plugin_dir,
            data_dir,
            default_provider,
            database_url,
            webhook_retry_base_ms,
            plugin_rescan_ms,
            body_limit_bytes,
            webhook_body_limit_bytes,
            call_timeout_ms,
            header_read_timeout_ms,
            body_read_timeout_ms,
            max_connections,
            api_keys,
            admin_keys,
            trusted_proxies,
            auth_failures_allowed,
            trusted_keys,
            require_signature,
            plugins_lock,
        } = self;
        // ApiKey's Debug hides the key and its digest.
        f.debug_struct("HostSection")
            .field("bind", bind)
            .field("plugin_dir", plugin_dir)
            .field("data_dir", data_dir)
            .field("default_provider", default_provider)
            // A PostgreSQL URL may carry a password.
            .field("database_url", &database_url.as_ref().map(|_| Redacted))
            .field("webhook_retry_base_ms", webhook_retry_base_ms)
            .field("plugin_rescan_ms", plugin_rescan_ms)
            .field("body_limit_bytes", body_limit_bytes)
            .field("webhook_body_limit_bytes", webhook_body_limit_bytes)
            .field("call_timeout_ms", call_timeout_ms)
            .field("header_read_timeout_ms", header_read_timeout_ms)
            .field("body_read_timeout_ms", body_read_timeout_ms)
            .field("max_connections", max_connections)
            .field("api_keys", api_keys)
            .field("admin_keys", admin_keys)
            .field("trusted_proxies", trusted_proxies)
            .field("auth_failures_allowed", auth_failures_allowed)
            // Public keys: nothing secret.
            .field("trusted_keys", trusted_keys)
            .field("require_signature", require_signature)
            .field("plugins_lock", plugins_lock)
            .finish()
    }
}

impl ConfigValue {
    /// The text values (one, or each of a list).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let all: &[Scalar] = match self {
            ConfigValue::One(s) => std::slice::from_ref(s),
            ConfigValue::Many(v) => v,
        };
        all.iter().filter_map(|s| match s {
            Scalar::Text(t) => Some(t.as_str()),
            _ => None,
        })
    }
}

impl Scalar {
    fn json(&self) -> Option<serde_json::Value> {
        match self {
            Scalar::Text(s) if s.is_empty() => None,
            Scalar::Text(s) => Some(s.clone().into()),
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
    let invalid = |message: String| ConfigError::Invalid {
        file: file.to_owned(),
        message,
    };
    let mut value: toml::Value = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    interpolate(
        &mut value,
        "",
        &|key, var| ConfigError::Key {
            file: file.to_owned(),
            key: key.to_owned(),
            expected: format!("environment variable '{var}' is not set"),
        },
        &|name| std::env::var(name).ok(),
    )?;
    value
        .try_into()
        .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))
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

/// Where a loaded config came from, with paths resolved against its folder.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    pub config: Config,
    pub plugin_dir: PathBuf,
    pub data_dir: PathBuf,
    pub mail_dir: PathBuf,
}

impl Config {
    /// Whether plugin libraries must be signed by a trusted key: as configured, else when
    /// the host listens beyond loopback.
    pub fn require_signature(&self) -> bool {
        self.host.require_signature.unwrap_or_else(|| {
            self.host
                .bind
                .parse::<std::net::SocketAddr>()
                .map_or(true, |a| !a.ip().is_loopback())
        })
    }
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
        match self.config.host.database_url.as_deref() {
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
    let invalid = |message: String| ConfigError::Invalid {
        file: file.to_owned(),
        message,
    };
    let mut value: toml::Value = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
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
    finish(value, env).map_err(|e| invalid(e.message().to_owned()))
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
        config.host.database_url = Some(url);
    }
    if config.host.database_url.as_deref() == Some("") {
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

/// Every problem of a parsed config, as (key, what was expected), in file order.
pub fn problems(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let known = || c.providers.keys().cloned().collect::<Vec<_>>().join(", ");
    if let Some(d) = &c.host.default_provider {
        if !c.providers.contains_key(d) {
            out.push((
                "host.default_provider".into(),
                format!(
                    "'{d}' is not a configured provider (configured: {})",
                    known()
                ),
            ));
        }
    }
    for (tenant, provider) in &c.tenants {
        if !c.providers.contains_key(provider) {
            out.push((
                format!("tenants.{tenant}"),
                format!(
                    "'{provider}' is not a configured provider (configured: {})",
                    known()
                ),
            ));
        }
    }
    if c.dunning.retry_days.windows(2).any(|w| w[0] >= w[1]) {
        out.push((
            "dunning.retry_days".into(),
            "days in increasing order, e.g. [1, 3, 5]".into(),
        ));
    }
    if !matches!(c.email.transport.as_str(), "file" | "smtp") {
        out.push(("email.transport".into(), "'file' or 'smtp'".into()));
    }
    if c.email.transport == "smtp" && c.email.smtp_url.is_none() {
        out.push((
            "email.smtp_url".into(),
            "an smtp:// or smtps:// URL when email.transport is 'smtp'".into(),
        ));
    }
    for (i, e) in c.webhook_endpoints.iter().enumerate() {
        if !(e.url.starts_with("http://") || e.url.starts_with("https://")) {
            out.push((
                format!("webhook_endpoints[{i}].url"),
                "an http(s) URL".into(),
            ));
        }
        if e.secret.len() < 16 {
            out.push((
                format!("webhook_endpoints[{i}].secret"),
                "a secret of at least 16 characters".into(),
            ));
        }
        if c.webhook_endpoints[..i].iter().any(|o| o.name == e.name) {
            out.push((
                format!("webhook_endpoints[{i}].name"),
                format!("a unique name ('{}' repeats)", e.name),
            ));
        }
    }
    routing::problems(c, &mut out);
    if c.retention.audit_days == 0 {
        out.push((
            "retention.audit_days".into(),
            "at least 1 day (the audit trail is kept, not switched off)".into(),
        ));
    }
    if c.host.call_timeout_ms == 0 {
        out.push((
            "host.call_timeout_ms".into(),
            "a positive number of milliseconds".into(),
        ));
    }
    for (i, k) in c.host.trusted_keys.iter().enumerate() {
        if let Err(e) = minisign_verify::PublicKey::from_base64(k.key.trim()) {
            out.push((
                format!("host.trusted_keys[{i}].key"),
                format!(
                    "'{}': a minisign public key, base64 as `minisign -G` prints it ({e})",
                    k.name
                ),
            ));
        }
        if k.name.trim().is_empty() || c.host.trusted_keys[..i].iter().any(|o| o.name == k.name) {
            out.push((
                format!("host.trusted_keys[{i}].name"),
                "a name of its own (keys are named in refusals and in each plugin's trust)".into(),
            ));
        }
    }
    key_problems("api_keys", &c.host.api_keys, &mut out);
    key_problems("admin_keys", &c.host.admin_keys, &mut out);
    for (i, k) in c.host.admin_keys.iter().enumerate() {
        if let ApiKey::Table(t) = k {
            if t.tenant.is_some() || t.scopes.is_some() {
                out.push((
                    format!("host.admin_keys[{i}]"),
                    "{ name, key or sha256 } (an admin key acts for every tenant: tenant and \
                     scopes are for api_keys)"
                        .into(),
                ));
            }
        }
    }
    if c.host.auth_failures_allowed < 2 {
        out.push((
            "host.auth_failures_allowed".into(),
            "at least 2 (the throttle is not switched off; raise it for a test rig)".into(),
        ));
    }
    for (i, p) in c.host.trusted_proxies.iter().enumerate() {
        if net::Cidr::parse(p).is_none() {
            out.push((
                format!("host.trusted_proxies[{i}]"),
                format!("an IP address or a CIDR block like 10.0.0.0/8 ('{p}' is neither)"),
            ));
        }
    }
    out
}

/// The keys given as text (not as their SHA-256) that could be guessed, each named by its
/// label and why: refused beyond loopback, a warning on loopback. The development keys are
/// left to [`crate::app::check_bind`], which names them as such.
pub fn weak_keys(c: &Config) -> Vec<String> {
    let dev = [
        ApiKey::Plain(DEV_API_KEY.into()).digest(),
        ApiKey::Plain(DEV_ADMIN_KEY.into()).digest(),
    ];
    [
        ("api_keys", &c.host.api_keys),
        ("admin_keys", &c.host.admin_keys),
    ]
    .into_iter()
    .flat_map(|(list, keys)| {
        keys.iter().enumerate().filter_map(move |(i, k)| {
            let why = keys::weakness(k.text()?)?;
            if dev.contains(&k.digest()) {
                return None;
            }
            let label = k.label(list, i);
            let who = if label.starts_with("host.") {
                label
            } else {
                format!("host.{list}: the key '{label}'")
            };
            Some(format!("{who} could be guessed: {why}"))
        })
    })
    .collect()
}

/// 1 to `max` printable ASCII characters without spaces (tenants, idempotency keys).
pub fn visible_ascii(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

/// The tenants a request may name: those given a provider under `[tenants]` and those an
/// API key is bound to.
pub fn known_tenants(c: &Config) -> std::collections::BTreeSet<String> {
    c.tenants
        .keys()
        .cloned()
        .chain(
            c.host
                .api_keys
                .iter()
                .filter_map(|k| k.tenant().map(str::to_owned)),
        )
        .collect()
}

fn key_problems(list: &str, keys: &[ApiKey], out: &mut Vec<(String, String)>) {
    let mut digests = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let at = |field: &str| format!("host.{list}[{i}]{field}");
        match k {
            ApiKey::Plain(p) if p.len() < 8 => {
                out.push((at(""), "a key of at least 8 characters".into()));
                continue;
            }
            ApiKey::Plain(_) => {}
            ApiKey::Table(t) => {
                match (&t.key, &t.sha256) {
                    (Some(_), Some(_)) | (None, None) => {
                        out.push((
                            at(""),
                            "exactly one of key (the key) or sha256 (its SHA-256 in hex)".into(),
                        ));
                        continue;
                    }
                    (Some(p), None) if p.len() < 8 => {
                        out.push((at(".key"), "a key of at least 8 characters".into()));
                        continue;
                    }
                    (None, Some(h))
                        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        out.push((
                            at(".sha256"),
                            "64 hex digits, the SHA-256 of the key (printf %s \"$KEY\" | sha256sum)"
                                .into(),
                        ));
                        continue;
                    }
                    _ => {}
                }
                if let Some(tenant) = &t.tenant {
                    if !visible_ascii(tenant, 64) {
                        out.push((
                            at(".tenant"),
                            "1 to 64 printable ASCII characters without spaces".into(),
                        ));
                        continue;
                    }
                }
                if t.scopes.as_ref().is_some_and(Vec::is_empty) {
                    out.push((at(".scopes"), "at least one of \"read\", \"write\"".into()));
                    continue;
                }
                if let Some(n) = &t.name {
                    let named_before = keys[..i]
                        .iter()
                        .any(|o| matches!(o, ApiKey::Table(o) if o.name.as_ref() == Some(n)));
                    if named_before {
                        out.push((at(".name"), format!("a unique name ('{n}' repeats)")));
                        continue;
                    }
                }
            }
        }
        let d = k.digest();
        if digests.contains(&d) {
            out.push((at(""), "a key not already listed".into()));
            continue;
        }
        digests.push(d);
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

fn expand(
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

#[cfg(test)]
mod tests {

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3_000))]

        /// Any text: expanded or refused by name, never a panic; text without `${` is kept.
        #[test]
        fn interpolation_takes_any_text(s in ".{0,80}", set in proptest::prelude::any::<bool>()) {
            let unset = |key: &str, var: &str| ConfigError::Key {
                file: "x".into(),
                key: key.into(),
                expected: var.into(),
            };
            let env = |name: &str| set.then(|| format!("<{name}>"));
            match expand(&s, "k", &unset, &env) {
                Ok(out) => {
                    if !s.contains("${") {
                        proptest::prop_assert_eq!(out, s);
                    }
                }
                Err(e) => proptest::prop_assert!(!set && e.to_string().contains('k')),
            }
        }

        /// `${NAME:-default}` is the variable when set, else the default, in any text around it.
        #[test]
        fn defaults_and_values_land_in_place(
            before in "[^$}]{0,20}", name in "[A-Z_]{1,10}", default in "[^}]{0,20}",
            after in "[^$]{0,20}", set in proptest::prelude::any::<bool>(),
        ) {
            let s = format!("{before}${{{name}:-{default}}}{after}");
            let unset = |_: &str, _: &str| ConfigError::Invalid {
                file: "x".into(),
                message: String::new(),
            };
            let env = |n: &str| set.then(|| format!("<{n}>"));
            let out = expand(&s, "k", &unset, &env).unwrap();
            let middle = if set { format!("<{name}>") } else { default };
            proptest::prop_assert_eq!(out, format!("{before}{middle}{after}"));
        }
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let c: Config = toml::from_str(
            "[host]\napi_keys = [\"sk_SECRET_api\"]\nadmin_keys = [\"SECRET_admin\"]\n\
             database_url = \"postgres://u:SECRET_pw@db/x\"\n\
             [email]\ntransport = \"smtp\"\nsmtp_url = \"smtps://u:SECRET_smtp@mail\"\n\
             [[webhook_endpoints]]\nname = \"app\"\nurl = \"http://a/b\"\nsecret = \"whsec_SECRET_endpoint\"\n\
             [providers.s]\nplugin = \"stripe\"\nconfig = { api_key = \"sk_SECRET_stripe\", keys = [\"SECRET_1\", \"SECRET_2\"], n = 3 }\n",
        )
        .unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("api_key"),
            "keys shown, values hidden: {shown}"
        );
    }

    use super::*;

    fn parse_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(Path::new("plugins.toml"), text, &move |n| {
            vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    const BASE: &str = r#"
        [host]
        default_provider = "mock"
        [providers.mock]
        plugin = "mock"
        config = { webhook_secret = "${MOCK_SECRET:-whsec_default}", list = ["a", "b"] }
        [providers.stripe_eu]
        plugin = "stripe"
        config = { api_key = "${STRIPE_API_KEY:-}" }
        [tenants]
        acme = "stripe_eu"
    "#;

    #[test]
    fn interpolates_variables_and_defaults() {
        let c = parse_with(BASE, &[("STRIPE_API_KEY", "sk_test_1")]).unwrap();
        let mock = c.providers["mock"].config_json();
        assert_eq!(
            mock,
            serde_json::json!({"webhook_secret": "whsec_default", "list": ["a", "b"]})
        );
        assert_eq!(
            c.providers["stripe_eu"].config_json(),
            serde_json::json!({"api_key": "sk_test_1"})
        );
        let unset = parse_with(BASE, &[]).unwrap();
        assert_eq!(
            unset.providers["stripe_eu"].config_json(),
            serde_json::json!({}),
            "empty values are left out"
        );
    }

    #[test]
    fn payment_provider_variable_overrides_the_default() {
        let c = parse_with(BASE, &[("PAYMENT_PROVIDER", "stripe_eu")]).unwrap();
        assert_eq!(c.host.default_provider.as_deref(), Some("stripe_eu"));
        let err = parse_with(BASE, &[("PAYMENT_PROVIDER", "paypal")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host.default_provider") && err.contains("paypal"),
            "{err}"
        );
    }

    #[test]
    fn an_unset_variable_without_default_names_key_and_variable() {
        let err = parse_with("[providers.x]\nplugin = \"${PLUGIN_NAME}\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plugins.toml")
                && err.contains("providers.x.plugin")
                && err.contains("PLUGIN_NAME"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let err = parse_with("[host]\nbnd = \"x\"", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("plugins.toml") && err.contains("bnd"), "{err}");
        let err = parse_with("[host]\ncall_timeout_ms = \"soon\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("call_timeout_ms") || err.contains("invalid type"),
            "{err}"
        );
    }

    #[test]
    fn tenants_must_name_configured_providers() {
        let err = parse_with("[tenants]\nacme = \"ghost\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tenants.acme") && err.contains("ghost"),
            "{err}"
        );
    }
}
