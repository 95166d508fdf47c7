//! The root module every plugin library exports, its metadata, and [`export_plugin!`].

use crate::{
    error::PluginError,
    provider::{guard, Guarded, Provider, ProviderBox, ProviderFfi_TO},
    services::HostBox,
    types::{lookup, KeyValue},
};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    sabi_types::VersionStrings,
    std_types::{RResult, RString, RVec},
    StableAbi,
};

/// The plugin type payhost loads today.
pub const PLUGIN_TYPE_PAYMENT: &str = "payment";

/// Operation groups a provider declares. The host refuses an undeclared one before calling.
pub mod capabilities {
    pub const CUSTOMERS: &str = "customers";
    pub const PAYMENT_METHODS: &str = "payment_methods";
    pub const PAYMENTS: &str = "payments";
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    pub const REFUNDS: &str = "refunds";
    pub const INVOICES: &str = "invoices";
    pub const WEBHOOKS: &str = "webhooks";
    pub const ALL: [&str; 7] = [
        CUSTOMERS,
        PAYMENT_METHODS,
        PAYMENTS,
        SUBSCRIPTIONS,
        REFUNDS,
        INVOICES,
        WEBHOOKS,
    ];
}

/// What a plugin says about itself before any instance exists.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginMetadata {
    /// The registry key: unique among loaded plugins, e.g. `stripe`.
    pub name: RString,
    pub version: RString,
    /// Always [`PLUGIN_TYPE_PAYMENT`] for now.
    pub plugin_type: RString,
    /// Configuration keys that must be present for `new` to be called.
    pub required_config: RVec<RString>,
    /// Names from [`capabilities`].
    pub capabilities: RVec<RString>,
    /// The header carrying webhook signatures (lowercase), e.g. `stripe-signature`.
    pub webhook_signature_header: RString,
}

impl PluginMetadata {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            plugin_type: PLUGIN_TYPE_PAYMENT.into(),
            required_config: RVec::new(),
            capabilities: RVec::new(),
            webhook_signature_header: RString::new(),
        }
    }

    pub fn require(mut self, keys: &[&str]) -> Self {
        self.required_config
            .extend(keys.iter().map(|k| RString::from(*k)));
        self
    }

    pub fn capabilities(mut self, caps: &[&str]) -> Self {
        self.capabilities
            .extend(caps.iter().map(|c| RString::from(*c)));
        self
    }

    pub fn webhook_header(mut self, header: &str) -> Self {
        self.webhook_signature_header = header.to_ascii_lowercase().into();
        self
    }

    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c.as_str() == cap)
    }
}

/// The configuration of one provider instance: string values, a key may repeat (lists).
#[derive(Clone, Debug, Default)]
pub struct PluginConfig(pub Vec<KeyValue>);

impl PluginConfig {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        lookup(&self.0, key)
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str())
            .collect()
    }

    /// The value of a key that must be present and non-empty.
    ///
    /// # Errors
    /// `invalid_config` naming the key.
    pub fn require(&self, key: &str) -> Result<&str, PluginError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(PluginError::new(
                crate::error::codes::CONFIG,
                format!("missing required config key '{key}'"),
            )
            .with_param(key)),
        }
    }
}

/// A plugin: its metadata and how to make an instance.
pub trait Plugin: Provider + Sized {
    fn metadata() -> PluginMetadata;

    /// Makes one provider instance.
    ///
    /// # Errors
    /// `invalid_config` when the configuration is unusable.
    fn new(config: PluginConfig, host: HostBox) -> Result<Self, PluginError>;
}

/// The root module: the one symbol the host looks up in a plugin library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRootRef)))]
#[sabi(missing_field(panic))]
pub struct PluginRoot {
    pub metadata: extern "C" fn() -> RResult<PluginMetadata, PluginError>,
    /// Fields added in later minor versions go after this one.
    #[sabi(last_prefix_field)]
    pub new:
        extern "C" fn(config: RVec<KeyValue>, host: HostBox) -> RResult<ProviderBox, PluginError>,
}

impl RootModule for PluginRootRef {
    declare_root_module_statics! {PluginRootRef}
    const BASE_NAME: &'static str = "payhost_plugin";
    const NAME: &'static str = "payhost_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

extern "C" fn metadata_of<P: Plugin>() -> RResult<PluginMetadata, PluginError> {
    guard("metadata", || Ok(P::metadata()))
}

extern "C" fn new_of<P: Plugin>(
    config: RVec<KeyValue>,
    host: HostBox,
) -> RResult<ProviderBox, PluginError> {
    guard("new", || {
        let provider = P::new(PluginConfig(config.into_vec()), host)?;
        Ok(ProviderFfi_TO::from_value(Guarded(provider), TD_Opaque))
    })
}

/// Builds the root module for a plugin type. Used by [`export_plugin!`].
pub fn root_module_of<P: Plugin>() -> PluginRootRef {
    PluginRoot {
        metadata: metadata_of::<P>,
        new: new_of::<P>,
    }
    .leak_into_prefix()
}

/// Exports a [`Plugin`] type as this library's root module.
///
/// ```ignore
/// payhost_plugin_api::export_plugin!(MyProvider);
/// ```
///
/// Every entry point runs inside `catch_unwind`. Do not build plugins with `panic = "abort"`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The abi_stable library header (the symbol the host's loader looks up).
        #[no_mangle]
        #[allow(unsafe_code, non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            extern "C" fn __payhost_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader(
                    $crate::root::root_module_of::<$plugin>,
                )
            }
            // SAFETY: the constructor returns the root module type named here, checked by
            // the host against its own layout at load time.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::PluginRootRef>(
                    __payhost_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
