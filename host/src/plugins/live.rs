//! Live plugin management: the registry follows the plugins folder.
//!
//! [`Registry::sync`] compares the folder with what was last acted on. A new file is loaded
//! (from a private copy) and the provider instances configured for its plugin start. A
//! changed file is a new build: it is loaded and its instances initialized first, and only
//! then swapped in, atomically for new calls, while calls running on the old instances
//! finish (PluginStopped, reason replaced); if the new build fails to load or initialize, the
//! old one keeps serving and a PluginError says why. A removed file's instances drain and
//! stop (reason removed). A file still being written is left for the next sync: its size and
//! time must hold still across a short pause before it is opened, and the ABI check refuses
//! whatever is incomplete anyway.

use super::errors::RegistryError;
use super::fingerprint::{fingerprint, stamp, Fingerprint};
use super::loader::{self, Loaded};
use super::registry::Registry;
use crate::config::ProviderConfig;
use crate::events::{ErrorType, LifecycleEvent, StopReason};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a file's size and time must hold still before it is opened.
const SETTLE: Duration = Duration::from_millis(40);

/// What one sync did.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub loaded: Vec<String>,
    pub replaced: Vec<String>,
    pub removed: Vec<String>,
    pub failed: Vec<String>,
    /// Files seen changing during the sync, left for the next one.
    pub unsettled: Vec<String>,
}

/// Provider instance configs by instance name.
pub type Providers = BTreeMap<String, ProviderConfig>;

impl Registry {
    /// Brings the registry in line with the folder. Safe to call at any time; concurrent
    /// calls run one after the other.
    pub async fn sync(&self, dir: &Path, providers: &Providers) -> SyncReport {
        let _one_at_a_time = self.sync_lock.lock().await;
        let mut report = SyncReport::default();
        if let Err(e) = loader::trusted(dir, None) {
            // Reported once per change of the reason, not on every rescan.
            if self.inner().folder_refusal.as_deref() != Some(e.as_str()) {
                self.plugin_error(&dir.display().to_string(), e.clone(), ErrorType::Load);
                self.inner().folder_refusal = Some(e);
            }
            return report;
        }
        self.inner().folder_refusal = None;
        let files = match loader::scan(dir) {
            Ok(f) => f,
            Err(e) => {
                self.plugin_error(
                    &dir.display().to_string(),
                    format!("cannot read plugin folder: {e}"),
                    ErrorType::Load,
                );
                return report;
            }
        };
        let present: BTreeMap<PathBuf, Fingerprint> = files
            .iter()
            .filter_map(|f| fingerprint(f).map(|fp| (f.clone(), fp)))
            .collect();
        // A new lock may accept what the last one refused: those files are judged again.
        let lock = self.trust.lock_file.as_deref().and_then(stamp);
        {
            let mut inner = self.inner();
            if inner.lock_seen != lock {
                inner.lock_seen = lock;
                let refused: Vec<PathBuf> = inner
                    .failed
                    .iter()
                    .filter(|(_, e)| e.refusal.is_some())
                    .map(|(f, _)| f.clone())
                    .collect();
                for f in refused {
                    inner.files.remove(&f);
                }
            }
        }
        let gone: Vec<PathBuf> = self
            .inner()
            .files
            .keys()
            .filter(|f| !present.contains_key(*f))
            .cloned()
            .collect();
        for file in gone {
            if let Some(name) = self.forget_file(&file, providers).await {
                report.removed.push(name);
            }
        }
        for (file, fp) in present {
            if self.inner().files.get(&file) == Some(&fp) {
                continue;
            }
            tokio::time::sleep(SETTLE).await;
            if fingerprint(&file) != Some(fp) {
                report.unsettled.push(file.display().to_string());
                continue;
            }
            self.inner().files.insert(file.clone(), fp);
            match self.activate(&file, providers).await {
                Ok((name, true)) => report.replaced.push(name),
                Ok((name, false)) => report.loaded.push(name),
                Err(_) => report.failed.push(file.display().to_string()),
            }
        }
        report
    }

    /// Loads the file again even if it did not change (`POST /admin/plugins/{name}/reload`).
    ///
    /// # Errors
    /// No plugin of that name, or the reload failed (the running version keeps serving).
    pub async fn reload(&self, name: &str, providers: &Providers) -> Result<String, RegistryError> {
        let _one_at_a_time = self.sync_lock.lock().await;
        let file = self.plugin_file(name)?;
        self.activate(&file, providers).await.map(|(n, _)| n)
    }

    /// Stops every instance of plugin `name` (PluginStopped, reason shutdown); they stay
    /// stopped until the file changes or the plugin is reloaded.
    ///
    /// # Errors
    /// No plugin of that name.
    pub async fn stop_plugin(&self, name: &str) -> Result<Vec<String>, RegistryError> {
        let _one_at_a_time = self.sync_lock.lock().await;
        self.plugin_file(name)?;
        Ok(self
            .stop_instances_of(name, StopReason::Shutdown, "stopped by an operator")
            .await)
    }

    fn plugin_file(&self, name: &str) -> Result<PathBuf, RegistryError> {
        let inner = self.inner();
        inner
            .plugins
            .get(name)
            .map(|l| l.file.clone())
            .ok_or_else(|| RegistryError::PluginNotLoaded {
                plugin: name.to_owned(),
                available: inner.plugins.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Stops the running instances of plugin `name`; calls to them get `reason`.
    async fn stop_instances_of(&self, plugin: &str, why: StopReason, reason: &str) -> Vec<String> {
        let names: Vec<String> = {
            let mut inner = self.inner();
            let names: Vec<String> = inner
                .instances
                .values()
                .filter(|i| i.plugin == plugin)
                .map(|i| i.name.clone())
                .collect();
            for n in &names {
                inner
                    .instance_errors
                    .insert(n.clone(), (plugin.to_owned(), reason.to_owned()));
            }
            names
        };
        for n in &names {
            self.stop_instance(n, why).await;
        }
        names
    }

    /// A file left the folder: its plugin is unregistered and its instances stop.
    async fn forget_file(&self, file: &Path, _providers: &Providers) -> Option<String> {
        let name = {
            let mut inner = self.inner();
            inner.files.remove(file);
            inner.failed.remove(file);
            let name = inner
                .plugins
                .iter()
                .find(|(_, l)| l.file == file)
                .map(|(n, _)| n.clone())?;
            inner.plugins.remove(&name);
            name
        };
        self.stop_instances_of(&name, StopReason::Removed, "its plugin file was removed")
            .await;
        Some(name)
    }

    /// Loads `file` and starts the instances configured for its plugin from it. Returns the
    /// plugin name and whether it replaced a loaded version.
    async fn activate(
        &self,
        file: &Path,
        providers: &Providers,
    ) -> Result<(String, bool), RegistryError> {
        let (path, private) = (file.to_owned(), self.private_dir.clone());
        let policy = self.trust.clone();
        let folder = file.parent().unwrap_or(Path::new(".")).to_owned();
        let loaded: Loaded = match tokio::task::spawn_blocking(move || {
            loader::trusted(&folder, Some(&path)).map_err(|reason| loader::LoadError {
                file: path.display().to_string(),
                error_type: ErrorType::Load,
                reason,
                refusal: None,
            })?;
            loader::load(&path, &private, &policy)
        })
        .await
        {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                self.inner().failed.insert(file.to_owned(), e.clone());
                self.plugin_error(&display_name(file), e.to_string(), e.error_type);
                return Err(e.into());
            }
            Err(join) => {
                let e = loader::LoadError {
                    file: file.display().to_string(),
                    error_type: ErrorType::Load,
                    reason: format!("loading panicked: {join}"),
                    refusal: None,
                };
                self.inner().failed.insert(file.to_owned(), e.clone());
                self.plugin_error(&display_name(file), e.to_string(), e.error_type);
                return Err(e.into());
            }
        };
        let meta = loaded.manifest.clone();
        let replacing = {
            let mut inner = self.inner();
            match inner.plugins.get(&meta.name) {
                Some(existing) if existing.file != file => {
                    let e = RegistryError::DuplicateName {
                        name: meta.name.clone(),
                        file: file.display().to_string(),
                        existing: existing.file.display().to_string(),
                    };
                    inner.failed.insert(
                        file.to_owned(),
                        loader::LoadError {
                            file: file.display().to_string(),
                            error_type: ErrorType::Load,
                            reason: e.to_string(),
                            refusal: None,
                        },
                    );
                    drop(inner);
                    self.plugin_error(&meta.name, e.to_string(), ErrorType::Load);
                    return Err(e);
                }
                Some(_) => true,
                None => false,
            }
        };
        self.inner().failed.remove(file);
        self.lifecycle(LifecycleEvent::PluginRegistered {
            name: meta.name.clone(),
            version: meta.version.clone(),
            plugin_type: meta.plugin_type.clone(),
            file: file.display().to_string(),
            trust: loaded.trust.status(),
            sha256: loaded.trust.sha256.clone(),
        });
        let mut all_started = true;
        for (instance, cfg) in providers.iter().filter(|(_, c)| c.plugin == meta.name) {
            if self
                .start_instance_from(instance, cfg, loaded.clone())
                .await
                .is_err()
            {
                all_started = false;
            }
        }
        if all_started || !replacing {
            self.inner().plugins.insert(meta.name.clone(), loaded);
        }
        Ok((meta.name, replacing))
    }
}

fn display_name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
