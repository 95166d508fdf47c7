//! The contract between the payhost host and its payment-provider plugins.
//!
//! A plugin is a `cdylib` that implements [`Plugin`] (metadata and a constructor) and
//! [`Provider`] (the operations), then calls [`export_plugin!`]. Everything that crosses
//! the boundary is FFI-safe and checked by abi_stable when the host loads the library.
//! This crate does no I/O: HTTP, logging, event emission and the clock come from the host
//! through [`HostServices`].

pub mod currency;
pub mod error;
pub mod events;
// The code `#[sabi_trait]` generates uses `unsafe` internally.
#[allow(unsafe_code)]
pub mod provider;
pub mod root;
#[allow(unsafe_code)]
pub mod services;
pub mod signature;
pub mod types;

pub use currency::{Currency, InvalidCurrency, Money};
pub use error::{codes, PluginError};
pub use events::{DomainEventKind, DomainEventReport};
pub use provider::{
    guard, panic_message, Guarded, Provider, ProviderBox, ProviderFfi, ProviderFfi_TO,
};
pub use root::{
    capabilities, Plugin, PluginConfig, PluginMetadata, PluginRoot, PluginRootRef,
    PLUGIN_TYPE_PAYMENT,
};
pub use services::{
    HostBox, HostExt, HostServices, HostServices_TO, HttpRequest, HttpResponse, LogLevel,
};
pub use types::*;

/// abi_stable, re-exported so the host and plugins agree on one version.
pub use abi_stable;

#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
