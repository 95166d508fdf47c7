//! One provider instance: a plugin's provider object with its configuration applied, its
//! call slots, and the host services it was given.

use super::services::InstanceServices;
use payhost_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use payhost_plugin_api::abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use payhost_plugin_api::ffi::{self, decode_error, HostFfi, HostFfi_TO, ProviderBox};
use payhost_plugin_api::{CallCtx, Manifest, Operation, PluginError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// One provider instance: a plugin's provider object with its configuration applied.
pub struct Instance {
    pub name: String,
    pub plugin: String,
    pub manifest: Manifest,
    pub timeout: Duration,
    pub(super) provider: ProviderBox,
    pub(super) services: Arc<InstanceServices>,
    /// One permit per call in flight, held until the plugin's thread returns (not only
    /// until the deadline), so a hanging plugin uses up its own slots, never the host's
    /// blocking pool.
    pub(super) slots: Arc<tokio::sync::Semaphore>,
    pub(super) max_calls: usize,
}

impl Instance {
    pub fn supports(&self, capability: &str) -> bool {
        self.manifest.has(capability)
    }

    /// Whether the plugin was built against contract 2.`minor` or later: a request field
    /// added in that version may be set for it (an older plugin refuses a request that
    /// sets a field it does not know, naming the field).
    pub fn speaks(&self, minor: u32) -> bool {
        contract_at_least(&self.manifest.contract, minor)
    }

    /// Calls holding one of this instance's slots now: running in the plugin, or past their
    /// deadline with the plugin's thread not returned yet.
    pub fn calls_in_flight(&self) -> usize {
        self.max_calls - self.slots.available_permits()
    }

    /// Runs operation `O` on the calling thread, with no deadline and no panic isolation
    /// beyond the plugin's own. For measuring the raw boundary cost, and for the
    /// conformance suite (which runs on a blocking thread of its own); the host's calls go
    /// through [`Registry::call`].
    ///
    /// # Errors
    /// The plugin's error.
    pub fn call_direct<O: Operation>(
        &self,
        ctx: &CallCtx,
        request: &O::Request,
    ) -> Result<O::Response, PluginError> {
        ffi::call::<O>(&self.provider, ctx, request)
    }

    /// One raw call (an operation name and its JSON envelope), as [`Instance::call_direct`].
    ///
    /// # Errors
    /// The plugin's error.
    pub fn call_raw(&self, op: &str, message: &[u8]) -> Result<Vec<u8>, PluginError> {
        match self.provider.call(RStr::from(op), RSlice::from(message)) {
            RResult::ROk(v) => Ok(v.into_vec()),
            RResult::RErr(e) => Err(decode_error(&e)),
        }
    }

    /// The host services this instance was given (its HTTP client and allowlist).
    pub fn services(&self) -> &InstanceServices {
        &self.services
    }
}

/// Whether `contract` (a plugin's `major.minor.patch`) is 2.`minor` or later.
fn contract_at_least(contract: &str, minor: u32) -> bool {
    let mut parts = contract.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(2), Some(m)) => m >= minor,
        (Some(major), _) => major > 2,
        _ => false,
    }
}

/// The instance's services, shared between the plugin's handle and the host's.
pub(super) struct SharedServices(Arc<InstanceServices>);

/// Calls the plugin's constructor with `config` and `services` (on a thread that may block).
///
/// # Errors
/// The plugin's error, or that it panicked.
pub(super) fn new_provider(
    root: payhost_plugin_api::ffi::PluginRootRef,
    services: Arc<InstanceServices>,
    config: &serde_json::Value,
) -> Result<ProviderBox, String> {
    let host = HostFfi_TO::from_value(SharedServices(services), TD_Opaque);
    let bytes = serde_json::to_vec(config).unwrap_or_default();
    match catch_unwind(AssertUnwindSafe(|| {
        (root.new())(bytes.as_slice().into(), host)
    })) {
        Err(_) => Err("the plugin panicked".into()),
        Ok(RResult::RErr(e)) => Err(decode_error(&e).to_string()),
        Ok(RResult::ROk(p)) => Ok(p),
    }
}

impl HostFfi for SharedServices {
    fn call(&self, op: RStr<'_>, message: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>> {
        self.0.call(op, message)
    }
}

#[cfg(test)]
mod tests {
    use super::contract_at_least;

    #[test]
    fn a_request_field_of_2_2_goes_only_to_plugins_that_know_it() {
        for (contract, speaks_2_2) in [
            ("2.0.0", false),
            ("2.1.3", false),
            ("2.2.0", true),
            ("2.10.1", true),
            ("3.0.0", true),
            ("", false),
            ("x.y", false),
        ] {
            assert_eq!(contract_at_least(contract, 2), speaks_2_2, "{contract}");
        }
    }
}
