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
}

impl LifecycleEvent {
    pub fn log(&self) {
        match self {
            Self::PluginRegistered {
                name,
                version,
                file,
                ..
            } => {
                tracing::info!(plugin = %name, %version, %file, "plugin registered");
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
        }
    }
}
