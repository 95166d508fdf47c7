//! `[host]`: where the host listens and keeps its files, its keys, limits and timeouts,
//! and the trust in plugin libraries, with every default.

use super::keys::ApiKey;
use super::Secret;
use super::{DEV_ADMIN_KEY, DEV_API_KEY};
use serde::Deserialize;
use std::path::PathBuf;

// A PostgreSQL URL may carry a password (a Secret); ApiKey's Debug hides keys and digests;
// trusted keys are public keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSection {
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The URL the world reaches this host at (`https://pay.example.com`), when it is behind
    /// a proxy or a name: each provider instance is told its webhook URL from it
    /// (`<public_url>/webhooks/payments/<instance>`), for providers that take one with each
    /// payment. Unset: plugins are told none.
    #[serde(default)]
    pub public_url: Option<String>,
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
    pub database_url: Option<Secret>,
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
            public_url: None,
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

fn default_api_keys() -> Vec<ApiKey> {
    vec![ApiKey::Plain(DEV_API_KEY.into())]
}

fn default_admin_keys() -> Vec<ApiKey> {
    vec![ApiKey::Plain(DEV_ADMIN_KEY.into())]
}
