//! `payhost plugins conformance <file>`: the author kit's conformance suite run against a
//! plugin library through the real boundary — a private copy loaded as the host loads it,
//! instances made with the host's own services (HTTP with the instance's allowlist, the
//! clock, the cache), every call as the registry makes it.

use super::instance::new_provider;
use super::loader::{self, LoadError, Loaded};
use super::services::{within_call, InstanceServices, ReportSink};
use crate::clock::Clock;
use crate::events::Dispatcher;
use payhost_plugin_api::abi_stable::std_types::{RResult, RSlice, RStr};
use payhost_plugin_api::ffi::{decode_error, ProviderBox};
use payhost_plugin_api::{codes, HttpRequest, Manifest, PluginError};
use payhost_plugin_kit::conformance::{self, Instance, Report, Target};
use payhost_plugin_kit::export::panic_message;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How a conformance run makes its instances.
#[derive(Debug, Clone)]
pub struct Options {
    /// The instance's configuration; `None` uses the plugin's fixture configuration.
    pub config: Option<serde_json::Value>,
    /// Hosts the instances may reach (a fake provider's, a sandbox's).
    pub allow_hosts: Vec<String>,
    /// Deadline for one call.
    pub call_timeout: Duration,
    /// The provider is a fake whose redirect pages approve when opened: let the suite
    /// approve redirects as a buyer would.
    pub approve_redirects: bool,
}

struct FileTarget {
    loaded: Loaded,
    options: Options,
    config: serde_json::Value,
    sink: Arc<ReportSink>,
    clock: Arc<dyn Clock>,
    runtime: tokio::runtime::Handle,
}

impl FileTarget {
    fn services(&self) -> Arc<InstanceServices> {
        Arc::new(InstanceServices::new(
            &self.loaded.manifest.name,
            self.options.allow_hosts.clone(),
            self.sink.clone(),
            self.clock.clone(),
            self.runtime.clone(),
        ))
    }
}

struct FileInstance {
    provider: ProviderBox,
    clock: Arc<dyn Clock>,
    timeout: Duration,
}

impl Instance for FileInstance {
    fn call(&self, op: &str, message: &[u8]) -> Result<Vec<u8>, PluginError> {
        let ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX / 2);
        let deadline = self.clock.now_millis().saturating_add(ms);
        let (outcome, _reports) = within_call(deadline, || {
            catch_unwind(AssertUnwindSafe(|| {
                self.provider.call(RStr::from(op), RSlice::from(message))
            }))
        });
        match outcome {
            Ok(RResult::ROk(v)) => Ok(v.into_vec()),
            Ok(RResult::RErr(e)) => Err(decode_error(&e)),
            Err(payload) => Err(PluginError::new(
                codes::PANICKED,
                format!("{op} panicked: {}", panic_message(&*payload)),
            )),
        }
    }
}

impl Target for FileTarget {
    fn manifest(&self) -> Manifest {
        let mut m = self.loaded.manifest.clone();
        m.fixtures.approve_redirect_by_visiting |= self.options.approve_redirects;
        m
    }

    fn instance(&self) -> Result<Box<dyn Instance>, PluginError> {
        let provider = new_provider(self.loaded.root, self.services(), &self.config)
            .map_err(|e| PluginError::new(codes::CONFIG, e))?;
        Ok(Box::new(FileInstance {
            provider,
            clock: self.clock.clone(),
            timeout: self.options.call_timeout,
        }))
    }

    fn visit(&self, url: &str) -> Result<(), String> {
        let answer = self
            .services()
            .exchange(HttpRequest {
                method: "GET".into(),
                url: url.to_owned(),
                ..HttpRequest::default()
            })
            .map_err(|e| format!("opening {url}: {e}"))?;
        if answer.status >= 400 {
            return Err(format!("opening {url} answered {}", answer.status));
        }
        Ok(())
    }
}

/// Loads `file` from a private copy in `private_dir` and runs the suite against it.
///
/// # Errors
/// The file does not load as a plugin.
pub async fn run(
    file: &Path,
    private_dir: &Path,
    options: Options,
    clock: Arc<dyn Clock>,
) -> Result<Report, LoadError> {
    let (path, private) = (file.to_owned(), private_dir.to_owned());
    // Conformance judges what a library does, not whose it is: no trust policy here.
    let loaded = tokio::task::spawn_blocking(move || {
        loader::load(&path, &private, &super::trust::Policy::default())
    })
    .await
    .map_err(|e| LoadError {
        file: file.display().to_string(),
        error_type: crate::events::ErrorType::Load,
        reason: format!("loading panicked: {e}"),
        refusal: None,
    })??;
    let config = options.config.clone().unwrap_or_else(|| {
        serde_json::Value::Object(
            loaded
                .manifest
                .fixtures
                .config
                .clone()
                .into_iter()
                .collect(),
        )
    });
    let target = FileTarget {
        sink: Arc::new(ReportSink::new(Arc::new(Dispatcher::new(clock.clone())))),
        loaded,
        options,
        config,
        clock,
        runtime: tokio::runtime::Handle::current(),
    };
    // The suite is synchronous and the host services block on the runtime: a thread of
    // the blocking pool runs it.
    let report = tokio::task::spawn_blocking(move || conformance::run(&target))
        .await
        .unwrap_or_else(|e| Report {
            plugin: file.display().to_string(),
            checks: vec![payhost_plugin_kit::conformance::Check {
                name: "suite.runs".into(),
                outcome: payhost_plugin_kit::conformance::Outcome::Fail(format!(
                    "the suite panicked: {e}"
                )),
            }],
        });
    Ok(report)
}
