//! Plugin lifecycle events: registered, initialized, error, stopped.

use serde::Serialize;

/// Where in a plugin's life an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The file could not be opened or read as a plugin.
    Load,
    /// The file is a library but not one this host can use (symbol, version, layout).
    Abi,
    Initialization,
    Operation,
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Shutdown,
    Replaced,
    Error,
    Removed,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum LifecycleEvent {
    PluginRegistered {
        name: String,
        version: String,
        plugin_type: String,
        file: String,
        /// `signed (<key>)`, `locked`, both, or `unsigned`.
        trust: String,
        /// SHA-256 of the bytes loaded.
        sha256: String,
    },
    /// A provider instance was created. `config_keys` are the keys only, never values.
    PluginInitialized {
        name: String,
        plugin: String,
        plugin_type: String,
        config_keys: Vec<String>,
    },
    PluginError {
        /// The plugin or instance name, or the file name when the plugin never declared one.
        name: String,
        plugin_type: String,
        error: String,
        error_type: ErrorType,
    },
    PluginStopped {
        name: String,
        plugin_type: String,
        reason: StopReason,
    },
    /// A provider instance's circuit opened: it failed `failures` times within
    /// `window_secs` for reasons of its own (unreachable, timeouts, server errors), and new
    /// payments skip it until a probe call succeeds.
    InstanceUnhealthy {
        name: String,
        failures: u32,
        window_secs: u64,
        /// The last failure's code.
        error: String,
    },
    /// A provider instance's circuit closed again: a probe call succeeded.
    InstanceRecovered {
        name: String,
        /// How long its circuit was open.
        unhealthy_secs: u64,
    },
}

impl LifecycleEvent {
    pub fn log(&self) {
        match self {
            Self::PluginRegistered {
                name,
                version,
                file,
                trust,
                sha256,
                ..
            } => {
                if trust == "unsigned" {
                    tracing::warn!(plugin = %name, %version, %file, %sha256, "plugin registered unsigned (signatures are not required here)");
                } else {
                    tracing::info!(plugin = %name, %version, %file, %trust, %sha256, "plugin registered");
                }
            }
            Self::PluginInitialized {
                name,
                plugin,
                config_keys,
                ..
            } => {
                tracing::info!(instance = %name, %plugin, ?config_keys, "provider initialized");
            }
            Self::PluginError {
                name,
                error,
                error_type,
                ..
            } => {
                tracing::error!(plugin = %name, ?error_type, %error, "plugin error");
            }
            Self::PluginStopped { name, reason, .. } => {
                tracing::info!(plugin = %name, ?reason, "plugin stopped");
            }
            Self::InstanceUnhealthy {
                name,
                failures,
                window_secs,
                error,
            } => {
                tracing::warn!(instance = %name, failures, window_secs, %error, "provider instance unhealthy: its circuit is open");
            }
            Self::InstanceRecovered {
                name,
                unhealthy_secs,
            } => {
                tracing::info!(instance = %name, unhealthy_secs, "provider instance recovered: its circuit is closed");
            }
        }
    }
}
