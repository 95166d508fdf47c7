//! The conformance suite: the rules every provider plugin must keep, checked by calling it.
//!
//! It runs in a plugin's own `cargo test` ([`in_process`]) and, through the real boundary,
//! as `payhost plugins conformance <file.so>`. Each check has a name; a failed check says
//! which rule broke. For every capability the plugin declares it exercises that
//! capability's operations with the plugin's [`Fixtures`](crate::api::Fixtures), and it
//! fails a declared capability any of whose operations answers `unsupported_operation`.
//!
//! ```
//! use payhost_plugin_kit::conformance::{run, Outcome};
//! # use payhost_plugin_kit::prelude::*;
//! # #[derive(serde::Deserialize, schemars::JsonSchema)] struct NoConfig {}
//! # struct Nothing;
//! # impl Provider for Nothing {}
//! # impl Plugin for Nothing {
//! #     type Config = NoConfig;
//! #     fn manifest() -> Manifest { Manifest::new("nothing", "0.1.0") }
//! #     fn new(_: NoConfig, _: Host) -> Result<Self, PluginError> { Ok(Nothing) }
//! # }
//! let report = run(&payhost_plugin_kit::conformance::in_process::<Nothing>(None));
//! assert!(report.passed(), "{report}");
//! ```

mod checks;

pub use checks::run;

use crate::api::ffi::{decode, Envelope};
use crate::api::{CallCtx, Manifest, Operation, PluginError};
use crate::testing::FakeHost;
use crate::{Plugin, Provider};
use serde_json::Value;
use std::fmt;

/// One provider instance the suite calls, at the message level.
pub trait Instance {
    /// Runs operation `op` with a JSON envelope; answers JSON.
    ///
    /// # Errors
    /// The plugin's error.
    fn call(&self, op: &str, message: &[u8]) -> Result<Vec<u8>, PluginError>;
}

/// What the suite checks: a plugin it can make instances of.
pub trait Target {
    /// The plugin's manifest.
    fn manifest(&self) -> Manifest;

    /// A new instance from the target's configuration. The suite makes two, and treats the
    /// second as the first after a restart (ids must not repeat between them).
    ///
    /// # Errors
    /// The plugin's initialization error.
    fn instance(&self) -> Result<Box<dyn Instance>, PluginError>;

    /// Opens `url` as a buyer's browser would (a GET), to approve a redirect on a fake
    /// provider ([`Fixtures::approve_redirect_by_visiting`](crate::api::Fixtures)).
    ///
    /// # Errors
    /// Why the URL could not be opened.
    fn visit(&self, url: &str) -> Result<(), String>;
}

/// Calls operation `O` on an instance: encodes, calls, decodes.
///
/// # Errors
/// The plugin's error, or `protocol_error` when the answer does not decode.
pub fn call<O: Operation>(
    instance: &dyn Instance,
    ctx: &CallCtx,
    request: &O::Request,
) -> Result<O::Response, PluginError> {
    let message = serde_json::to_vec(&Envelope { ctx, request }).unwrap_or_default();
    let bytes = instance.call(O::NAME, &message)?;
    decode(&bytes, &format!("the answer of {}", O::NAME))
}

/// How one check ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule is broken: why.
    Fail(String),
    /// Not checked: why (a capability not declared, a fixture missing).
    Skip(String),
}

/// One named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The rule's name, e.g. `refunds.refused_above_remaining`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// Every check of one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The plugin's name and version.
    pub plugin: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The outcome of the check called `name`.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }

    /// Panics with the whole report when a check failed (for `cargo test`).
    pub fn assert_passed(&self) {
        assert!(self.passed(), "conformance failed:\n{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            match &c.outcome {
                Outcome::Pass => writeln!(f, "PASS  {}", c.name)?,
                Outcome::Fail(why) => writeln!(f, "FAIL  {}: {why}", c.name)?,
                Outcome::Skip(why) => writeln!(f, "SKIP  {}: {why}", c.name)?,
            }
        }
        let count =
            |pred: fn(&Outcome) -> bool| self.checks.iter().filter(|c| pred(&c.outcome)).count();
        write!(
            f,
            "{}: {} passed, {} failed, {} skipped",
            self.plugin,
            count(|o| *o == Outcome::Pass),
            count(|o| matches!(o, Outcome::Fail(_))),
            count(|o| matches!(o, Outcome::Skip(_))),
        )
    }
}

/// A plugin type run in this process, behind the same JSON dispatch the boundary uses,
/// with a [`FakeHost`].
pub struct InProcess<P> {
    config: Value,
    host: FakeHost,
    _plugin: std::marker::PhantomData<fn() -> P>,
}

/// The in-process target for plugin `P` with `config`, or with its manifest's fixture
/// configuration when `None`.
pub fn in_process<P: Plugin>(config: Option<Value>) -> InProcess<P> {
    let config = config.unwrap_or_else(|| {
        Value::Object(
            crate::export::manifest_of::<P>()
                .fixtures
                .config
                .into_iter()
                .collect(),
        )
    });
    InProcess {
        config,
        host: FakeHost::new(),
        _plugin: std::marker::PhantomData,
    }
}

impl<P> InProcess<P> {
    /// The fake host the instances share (to script HTTP answers for a plugin that talks to
    /// a provider).
    pub fn host(&self) -> &FakeHost {
        &self.host
    }
}

struct InProcessInstance<P>(P);

impl<P: Provider> Instance for InProcessInstance<P> {
    fn call(&self, op: &str, message: &[u8]) -> Result<Vec<u8>, PluginError> {
        crate::export::raw_call(&self.0, op, message)
    }
}

impl<P: Plugin> Target for InProcess<P> {
    fn manifest(&self) -> Manifest {
        crate::export::manifest_of::<P>()
    }

    fn instance(&self) -> Result<Box<dyn Instance>, PluginError> {
        let p = crate::testing::instance::<P>(self.config.clone(), &self.host)?;
        Ok(Box::new(InProcessInstance(p)))
    }

    /// Through the fake host's buyer ([`FakeHost::on_visit`]); without one, in process
    /// there is no network to open the page.
    fn visit(&self, url: &str) -> Result<(), String> {
        self.host.visit(url)
    }
}
