//! The registry: loaded plugins keyed by the name each declares, and provider instances
//! created from them. One lock guards both maps. Calls run on the blocking pool with a
//! deadline; an instance is held by `Arc`, so swapping it is atomic for new calls while
//! calls already running on the old one finish before it is shut down.

use super::errors::{CallError, RegistryError};
use super::instance::{new_provider, Instance};
use super::loader::{self, LoadError, Loaded};
use super::services::{InstanceServices, ReportSink};
use crate::clock::Clock;
use crate::config::ProviderConfig;
use crate::events::{Dispatcher, ErrorType, Event, LifecycleEvent, StopReason};
use crate::locks::Locked;
use payhost_plugin_api::Manifest;
use serde::Serialize;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a stop waits for in-flight calls before shutting the instance down anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(super) struct Inner {
    pub(super) plugins: BTreeMap<String, Loaded>,
    /// Files that failed to load, with the reason (for `plugins list`).
    pub(super) failed: BTreeMap<PathBuf, LoadError>,
    /// Why the plugin folder is not trusted, while it is not (reported once).
    pub(super) folder_refusal: Option<String>,
    pub(super) instances: BTreeMap<String, Arc<Instance>>,
    /// Instances configured but not running: their plugin and the reason.
    pub(super) instance_errors: BTreeMap<String, (String, String)>,
    /// The last version of each file in the folder that was acted on (loaded or refused).
    pub(super) files: BTreeMap<PathBuf, super::fingerprint::Fingerprint>,
    /// The version of the lock file the last sync saw.
    pub(super) lock_seen: Option<(u64, i128, u64)>,
}

/// Told about every provider call: instance, operation, duration, the error if any.
pub type CallObserver = Box<dyn Fn(&str, &str, Duration, Option<&CallError>) + Send + Sync>;

pub struct Registry {
    pub(super) observer: std::sync::OnceLock<CallObserver>,
    /// `<host.public_url>/webhooks/payments`, when the operator configured the public URL:
    /// each call tells its instance its webhook URL from it.
    pub(super) webhook_base: std::sync::OnceLock<String>,
    dispatcher: Arc<Dispatcher>,
    pub(super) reports: Arc<ReportSink>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) private_dir: PathBuf,
    default_timeout: Duration,
    inner: Mutex<Inner>,
    /// One folder sync at a time (watcher, SIGHUP, admin API).
    pub(super) sync_lock: tokio::sync::Mutex<()>,
    /// What a library must be to load (signatures, the lock).
    pub(super) trust: Arc<super::trust::Policy>,
}

/// A plugin or a file as `plugins list` and the admin API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginRow {
    pub name: Option<String>,
    pub version: Option<String>,
    /// The plugin contract version the plugin was built against.
    pub contract: Option<String>,
    pub plugin_type: Option<String>,
    pub capabilities: Vec<String>,
    pub file: String,
    /// `active` (has instances), `loaded` (no instance) or `error: <reason>`.
    pub state: String,
    pub instances: Vec<String>,
    /// What the trust checks found: `signed (<key>)`, `locked`, both, or `unsigned` for a
    /// loaded plugin; `invalid signature`, `unsigned`, `modified` or `not locked` for a file
    /// refused for what it is.
    pub trust: Option<String>,
    /// SHA-256 of the bytes loaded.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstanceRow {
    pub name: String,
    pub plugin: String,
    pub version: Option<String>,
    pub contract: Option<String>,
    pub capabilities: Vec<String>,
    /// `running` or `error: <reason>`.
    pub state: String,
}

impl Registry {
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
        default_timeout: Duration,
        trust: super::trust::Policy,
    ) -> Self {
        let private_dir = loader::private_dir(data_dir);
        loader::clean_private_dir(&private_dir);
        Self {
            observer: std::sync::OnceLock::new(),
            webhook_base: std::sync::OnceLock::new(),
            reports: Arc::new(ReportSink::new(dispatcher.clone())),
            dispatcher,
            clock,
            private_dir,
            default_timeout,
            inner: Mutex::default(),
            sync_lock: tokio::sync::Mutex::new(()),
            trust: Arc::new(trust),
        }
    }

    pub(super) fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.locked()
    }

    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// Where domain event reports emitted outside a host call go.
    pub fn reports(&self) -> &Arc<ReportSink> {
        &self.reports
    }

    pub(super) fn lifecycle(&self, e: LifecycleEvent) {
        self.dispatcher.dispatch(Event::Lifecycle(e));
    }

    pub(super) fn plugin_error(&self, name: &str, error: String, error_type: ErrorType) {
        self.lifecycle(LifecycleEvent::PluginError {
            name: name.to_owned(),
            plugin_type: payhost_plugin_api::PLUGIN_TYPE_PAYMENT.into(),
            error,
            error_type,
        });
    }

    /// Creates (or atomically replaces) the provider instance `name` from its config.
    ///
    /// # Errors
    /// The plugin is not loaded, required keys are missing, or `new` failed, panicked or
    /// timed out. A PluginError event (initialization) is dispatched for each.
    pub async fn start_instance(
        &self,
        name: &str,
        cfg: &ProviderConfig,
    ) -> Result<(), RegistryError> {
        let loaded =
            {
                let inner = self.inner();
                inner.plugins.get(&cfg.plugin).cloned().ok_or_else(|| {
                    RegistryError::PluginNotLoaded {
                        plugin: cfg.plugin.clone(),
                        available: list_or_none(inner.plugins.keys()),
                    }
                })
            };
        match loaded {
            Ok(loaded) => self.start_instance_from(name, cfg, loaded).await,
            Err(e) => {
                self.instance_failed(name, cfg, &e);
                Err(e)
            }
        }
    }

    /// Creates the instance `name` from `loaded` (a plugin version not necessarily the
    /// registered one) and swaps it in; a running instance of that name keeps serving
    /// when this fails.
    ///
    /// # Errors
    /// As [`Registry::start_instance`].
    pub(super) async fn start_instance_from(
        &self,
        name: &str,
        cfg: &ProviderConfig,
        loaded: Loaded,
    ) -> Result<(), RegistryError> {
        let result = self.try_start_instance(name, cfg, loaded).await;
        if let Err(e) = &result {
            self.instance_failed(name, cfg, e);
        }
        result
    }

    fn instance_failed(&self, name: &str, cfg: &ProviderConfig, e: &RegistryError) {
        {
            let mut inner = self.inner();
            // A running instance stays visible as running; the event tells what failed.
            if !inner.instances.contains_key(name) {
                inner
                    .instance_errors
                    .insert(name.to_owned(), (cfg.plugin.clone(), e.to_string()));
            }
        }
        self.plugin_error(name, e.to_string(), ErrorType::Initialization);
    }

    async fn try_start_instance(
        &self,
        name: &str,
        cfg: &ProviderConfig,
        loaded: Loaded,
    ) -> Result<(), RegistryError> {
        let config = cfg.config_json();
        let problems = config_problems(&loaded.manifest, &config);
        if !problems.is_empty() {
            return Err(RegistryError::BadConfig {
                instance: name.to_owned(),
                problems,
            });
        }
        let config_keys: Vec<String> = config
            .as_object()
            .map_or_else(Vec::new, |o| o.keys().cloned().collect());
        let services = Arc::new(InstanceServices::new(
            name,
            cfg.allow_hosts.clone(),
            self.reports.clone(),
            self.clock.clone(),
            tokio::runtime::Handle::current(),
        ));
        let timeout = cfg
            .call_timeout_ms
            .map_or(self.default_timeout, Duration::from_millis);
        let init_err = |error: String| RegistryError::Init {
            instance: name.to_owned(),
            error,
        };
        let (root, shared) = (loaded.root, services.clone());
        let task = tokio::task::spawn_blocking(move || new_provider(root, shared, &config));
        let provider = match tokio::time::timeout(timeout, task).await {
            Err(_) => {
                return Err(init_err(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                )))
            }
            Ok(Err(_)) => return Err(init_err("the plugin panicked".into())),
            Ok(Ok(Err(e))) => return Err(init_err(e)),
            Ok(Ok(Ok(p))) => p,
        };
        let max_calls = cfg.max_concurrent_calls.max(1);
        let instance = Arc::new(Instance {
            name: name.to_owned(),
            plugin: cfg.plugin.clone(),
            manifest: loaded.manifest.clone(),
            timeout,
            provider,
            services,
            slots: Arc::new(tokio::sync::Semaphore::new(max_calls)),
            max_calls,
        });
        let previous = {
            let mut inner = self.inner();
            inner.instance_errors.remove(name);
            inner.instances.insert(name.to_owned(), instance)
        };
        self.lifecycle(LifecycleEvent::PluginInitialized {
            name: name.to_owned(),
            plugin: cfg.plugin.clone(),
            plugin_type: loaded.manifest.plugin_type.clone(),
            config_keys,
        });
        if let Some(old) = previous {
            self.retire(old, StopReason::Replaced).await;
        }
        Ok(())
    }

    /// The instance `name`, or an error listing the available ones.
    ///
    /// # Errors
    /// [`CallError::UnknownProvider`].
    pub fn get(&self, name: &str) -> Result<Arc<Instance>, CallError> {
        let inner = self.inner();
        if let Some(i) = inner.instances.get(name) {
            return Ok(i.clone());
        }
        Err(match inner.instance_errors.get(name) {
            Some((_, reason)) => CallError::NotRunning {
                name: name.to_owned(),
                reason: reason.clone(),
            },
            None => CallError::UnknownProvider {
                name: name.to_owned(),
                available: list_or_none(inner.instances.keys()),
            },
        })
    }

    /// Stops one instance: no new calls reach it; running ones finish; then `shutdown`.
    pub async fn stop_instance(&self, name: &str, reason: StopReason) -> bool {
        let removed = self.inner().instances.remove(name);
        match removed {
            Some(instance) => {
                self.retire(instance, reason).await;
                true
            }
            None => false,
        }
    }

    /// Stops every instance (SIGINT/SIGTERM, end of `plugins list`).
    pub async fn stop_all(&self, reason: StopReason) {
        let all: Vec<Arc<Instance>> = std::mem::take(&mut self.inner().instances)
            .into_values()
            .collect();
        for instance in all {
            self.retire(instance, reason).await;
        }
    }

    async fn retire(&self, instance: Arc<Instance>, reason: StopReason) {
        let started = Instant::now();
        while Arc::strong_count(&instance) > 1 && started.elapsed() < DRAIN_LIMIT {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (name, plugin_type, timeout) = (
            instance.name.clone(),
            instance.manifest.plugin_type.clone(),
            instance.timeout,
        );
        let task = tokio::task::spawn_blocking(move || {
            catch_unwind(AssertUnwindSafe(|| {
                instance.call_raw(payhost_plugin_api::ops::SHUTDOWN, b"{}")
            }))
        });
        let failure = match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(Ok(_)))) => None,
            Ok(Ok(Ok(Err(e)))) => Some(e.to_string()),
            Ok(_) => Some("shutdown panicked".to_owned()),
            Err(_) => Some(format!(
                "shutdown did not finish within {} ms",
                timeout.as_millis()
            )),
        };
        if let Some(error) = failure {
            self.plugin_error(&name, error, ErrorType::Shutdown);
        }
        self.lifecycle(LifecycleEvent::PluginStopped {
            name,
            plugin_type,
            reason,
        });
    }

    /// Plugins and failed files, for `plugins list` and the admin API.
    pub fn plugin_rows(&self) -> Vec<PluginRow> {
        let inner = self.inner();
        let mut rows: Vec<PluginRow> = inner
            .plugins
            .values()
            .map(|l| {
                let instances: Vec<String> = inner
                    .instances
                    .values()
                    .filter(|i| i.plugin == l.manifest.name)
                    .map(|i| i.name.clone())
                    .collect();
                PluginRow {
                    name: Some(l.manifest.name.clone()),
                    version: Some(l.manifest.version.clone()),
                    contract: Some(l.manifest.contract.clone()),
                    plugin_type: Some(l.manifest.plugin_type.clone()),
                    capabilities: l.manifest.capabilities.clone(),
                    file: l.file.display().to_string(),
                    state: if instances.is_empty() {
                        "loaded".into()
                    } else {
                        "active".into()
                    },
                    instances,
                    trust: Some(l.trust.status()),
                    sha256: Some(l.trust.sha256.clone()),
                }
            })
            .collect();
        rows.extend(inner.failed.iter().map(|(file, e)| PluginRow {
            name: None,
            version: None,
            contract: None,
            plugin_type: None,
            capabilities: Vec::new(),
            file: file.display().to_string(),
            state: format!("error: {}", e.reason),
            instances: Vec::new(),
            trust: e.refusal.map(str::to_owned),
            sha256: None,
        }));
        rows
    }

    /// Configured instances: running ones and the ones that failed to start.
    pub fn instance_rows(&self) -> Vec<InstanceRow> {
        let inner = self.inner();
        let mut rows: Vec<InstanceRow> = inner
            .instances
            .values()
            .map(|i| InstanceRow {
                name: i.name.clone(),
                plugin: i.plugin.clone(),
                version: Some(i.manifest.version.clone()),
                contract: Some(i.manifest.contract.clone()),
                capabilities: i.manifest.capabilities.clone(),
                state: "running".into(),
            })
            .collect();
        rows.extend(
            inner
                .instance_errors
                .iter()
                .map(|(name, (plugin, e))| InstanceRow {
                    name: name.clone(),
                    plugin: plugin.clone(),
                    version: None,
                    contract: None,
                    capabilities: Vec::new(),
                    state: format!("error: {e}"),
                }),
        );
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// What is wrong with an instance's configuration by the plugin's manifest: unknown keys
/// (with the keys the plugin knows) and missing required keys. Empty when it is usable.
pub fn config_problems(manifest: &Manifest, config: &serde_json::Value) -> Vec<String> {
    let given: Vec<&String> = config
        .as_object()
        .map_or_else(Vec::new, |o| o.keys().collect());
    let known: Vec<String> = manifest.config.iter().map(|k| k.name.clone()).collect();
    let mut problems: Vec<String> = given
        .iter()
        .filter(|k| !known.contains(k))
        .map(|k| {
            format!(
                "unknown config key '{k}' (plugin '{}' knows: {}){}",
                manifest.name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
                crate::config::shape::nearest(k, &known)
                    .map(|n| format!(" (did you mean '{n}'?)"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let missing: Vec<&str> = manifest
        .required_config()
        .filter(|k| !given.iter().any(|g| g.as_str() == *k))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "missing required config keys: {}",
            missing.join(", ")
        ));
    }
    problems
}
