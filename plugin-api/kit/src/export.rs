//! The plugin side of the boundary, written once: the [`Plugin`] trait, the root module a
//! library exports, and the adapter that turns calls across the boundary into
//! [`Provider`](crate::Provider) method calls. Every entry point catches panics: an unwind
//! crossing the boundary would end the host process.

use crate::api::abi_stable::prefix_type::PrefixTypeTrait;
use crate::api::abi_stable::sabi_trait::TD_Opaque;
use crate::api::abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use crate::api::ffi::{
    encode, HostBox, PluginRoot, PluginRootRef, ProviderBox, ProviderFfi, ProviderFfi_TO,
};
use crate::api::{codes, Manifest, PluginError, CONTRACT_VERSION};
use crate::{config, provider::dispatch, Host, Provider};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A plugin: what it declares and how it makes an instance.
pub trait Plugin: Provider + Sized {
    /// The instance's configuration: a serde type. Its fields are the config keys (a field
    /// without a default is required; a [`Secret`](crate::Secret) is a secret key; doc
    /// comments describe them). Unknown keys are refused before `new` is called.
    type Config: DeserializeOwned + JsonSchema;

    /// Name, version, capabilities, fixtures. The kit fills in the contract version and the
    /// config keys.
    fn manifest() -> Manifest;

    /// Makes one instance. No I/O here beyond what `host` offers.
    ///
    /// # Errors
    /// `invalid_config` naming the key when a value is unusable.
    fn new(config: Self::Config, host: Host) -> Result<Self, PluginError>;
}

/// The manifest as the host sees it: the plugin's, with the contract version and the
/// config keys filled in.
pub fn manifest_of<P: Plugin>() -> Manifest {
    let mut m = P::manifest();
    m.contract = CONTRACT_VERSION.to_owned();
    m.config = config::keys::<P::Config>();
    m
}

/// Makes an instance from a JSON configuration, as the host does.
///
/// # Errors
/// `invalid_config` (unknown key, missing keys, wrong type) or the plugin's own error.
pub fn instantiate<P: Plugin>(config: &Value, host: Host) -> Result<P, PluginError> {
    let cfg = config::parse::<P::Config>(config)?;
    P::new(cfg, host)
}

/// Runs `f`, turning a panic into a `plugin_panicked` error.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(PluginError::new(
            codes::PANICKED,
            format!(
                "the plugin panicked in {what}: {}",
                panic_message(&*payload)
            ),
        ))
    })
}

/// The text of a panic payload, when it has one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn answer(result: Result<Vec<u8>, PluginError>) -> RResult<RVec<u8>, RVec<u8>> {
    match result {
        Ok(bytes) => RResult::ROk(bytes.into()),
        Err(e) => RResult::RErr(encode(&e)),
    }
}

/// A [`Provider`] as an FFI object.
struct Adapter<P>(P);

impl<P: Provider> ProviderFfi for Adapter<P> {
    fn call(&self, op: RStr<'_>, message: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>> {
        let op = op.as_str();
        answer(guard(op, || dispatch(&self.0, op, message.as_slice())))
    }
}

extern "C" fn manifest_entry<P: Plugin>() -> RResult<RVec<u8>, RVec<u8>> {
    answer(guard("manifest", || {
        serde_json::to_vec(&manifest_of::<P>())
            .map_err(|e| PluginError::new(codes::INTERNAL, e.to_string()))
    }))
}

extern "C" fn new_entry<P: Plugin>(
    config: RSlice<'_, u8>,
    host: HostBox,
) -> RResult<ProviderBox, RVec<u8>> {
    let made = guard("new", || {
        let config: Value = serde_json::from_slice(config.as_slice()).map_err(|e| {
            PluginError::new(
                codes::PROTOCOL,
                format!("cannot decode the configuration: {e}"),
            )
        })?;
        instantiate::<P>(&config, Host::from_ffi(host))
    });
    match made {
        Ok(p) => RResult::ROk(ProviderFfi_TO::from_value(Adapter(p), TD_Opaque)),
        Err(e) => RResult::RErr(encode(&e)),
    }
}

/// The root module of a plugin type. Used by [`export_plugin!`](crate::export_plugin).
pub fn root_module<P: Plugin>() -> PluginRootRef {
    PluginRoot {
        manifest: manifest_entry::<P>,
        new: new_entry::<P>,
    }
    .leak_into_prefix()
}

/// A plugin instance behind the same JSON dispatch the FFI adapter uses, without the FFI:
/// for tests and the in-process conformance suite.
pub fn raw_call<P: Provider>(
    provider: &P,
    op: &str,
    message: &[u8],
) -> Result<Vec<u8>, PluginError> {
    guard(op, || dispatch(provider, op, message))
}

/// Exports a [`Plugin`] type as this library's root module: the one symbol the host looks
/// up. Put it in the crate root of a `cdylib`.
///
/// ```
/// use payhost_plugin_kit::prelude::*;
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct NoConfig {}
///
/// struct MyProvider;
/// impl Provider for MyProvider {}
/// impl Plugin for MyProvider {
///     type Config = NoConfig;
///     fn manifest() -> Manifest {
///         Manifest::new("my_provider", "0.1.0")
///     }
///     fn new(_: NoConfig, _: Host) -> Result<Self, PluginError> {
///         Ok(MyProvider)
///     }
/// }
///
/// payhost_plugin_kit::export_plugin!(MyProvider);
/// ```
///
/// Never build a plugin with `panic = "abort"`: a panic would end the host process.
///
/// Why not abi_stable's own `#[export_root_module]`: that attribute expands to paths into
/// `::abi_stable`, so every plugin crate would have to depend on abi_stable itself, while
/// plugin authors build against the kit alone. This macro writes out what the attribute
/// generates — the library header under abi_stable's symbol name, built from the root
/// module's constructor with its layout checked at load — through the contract's
/// `__private` re-exports. That is why abi_stable is pinned exactly (`=0.11.3`, workspace
/// Cargo.toml): an upgrade must be checked against this expansion. The tests below fail
/// when the symbol name drifts from abi_stable's, and every end-to-end test loads plugins
/// exported this way.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The abi_stable library header (the symbol the host's loader looks up).
        #[no_mangle]
        #[allow(unsafe_code, non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::api::__private::LibHeader = {
            extern "C" fn __payhost_root_module() -> $crate::api::__private::RootModuleResult {
                $crate::api::__private::__call_root_module_loader(
                    $crate::export::root_module::<$plugin>,
                )
            }
            // SAFETY: the constructor returns the root module type named here; the host
            // checks its layout against its own when it loads the library.
            unsafe {
                $crate::api::__private::LibHeader::from_constructor::<
                    $crate::api::ffi::PluginRootRef,
                >(
                    __payhost_root_module,
                    $crate::api::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod pin_tests {
    /// The static `export_plugin!` defines is the symbol abi_stable's loader looks up: the
    /// name written in the macro is abi_stable's own constant (an upgrade that changes it
    /// fails here, not when a host cannot find the plugin's header).
    #[test]
    fn the_exported_symbol_is_abi_stables_root_module_loader() {
        assert_eq!(
            crate::api::abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
        let macro_text = include_str!("export.rs");
        assert!(macro_text.contains(&format!(
            "pub static {}:",
            crate::api::abi_stable::library::ROOT_MODULE_LOADER_NAME
        )));
    }
}
