//! What the registry and a provider call can fail with.

use super::loader::LoadError;
use payhost_plugin_api::{codes, PluginError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("{file}: plugin name '{name}' is already registered from {existing}")]
    DuplicateName {
        name: String,
        file: String,
        existing: String,
    },
    #[error("plugin '{plugin}' is not loaded (loaded plugins: {available})")]
    PluginNotLoaded { plugin: String, available: String },
    #[error("provider '{instance}': {}", problems.join("; "))]
    BadConfig {
        instance: String,
        problems: Vec<String>,
    },
    #[error("provider '{instance}': initialization failed: {error}")]
    Init { instance: String, error: String },
}

/// Why a call to a provider did not return a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("unknown provider '{name}' (available: {available})")]
    UnknownProvider { name: String, available: String },
    /// Configured, but not running now (stopped, its file removed, or it failed to start).
    #[error("provider '{name}' is not running: {reason}")]
    NotRunning { name: String, reason: String },
    #[error("provider '{provider}' does not support {capability}")]
    Unsupported {
        provider: String,
        capability: String,
    },
    /// The provider answered with an error (declines, not found, invalid, ...).
    #[error("{0}")]
    Plugin(PluginError),
    /// The plugin panicked; the panic was caught.
    #[error("provider '{provider}' failed inside {operation}")]
    Panicked { provider: String, operation: String },
    #[error("provider '{provider}' did not answer {operation} within {ms} ms")]
    Timeout {
        provider: String,
        operation: String,
        ms: u128,
    },
    /// Every call slot of the instance stayed taken (by calls running, or past their
    /// deadline and still holding their thread) for `call::SLOT_WAIT` (100 ms): refused,
    /// not queued.
    #[error("provider '{provider}' has {limit} calls in flight, its max_concurrent_calls")]
    Busy { provider: String, limit: usize },
}

impl CallError {
    /// A short stable code, for metrics and API errors.
    pub fn code(&self) -> &str {
        match self {
            CallError::UnknownProvider { .. } | CallError::NotRunning { .. } => {
                "provider_not_running"
            }
            CallError::Unsupported { .. } => codes::UNSUPPORTED,
            CallError::Plugin(e) => e.code.as_str(),
            CallError::Panicked { .. } => codes::PANICKED,
            CallError::Timeout { .. } => "provider_timeout",
            CallError::Busy { .. } => "provider_busy",
        }
    }
}
