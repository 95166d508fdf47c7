//! Built by `payhost-compat` against a copy of the contract whose `ProviderFfi::call` takes
//! one more parameter than the real one: the kind of change a contributor might make to the
//! frozen binary layer by mistake. The host must refuse this library, naming the type.
//! (Outside the workspace: it only compiles against that broken copy.)

#![allow(unsafe_code)]

use payhost_plugin_api::abi_stable::prefix_type::PrefixTypeTrait;
use payhost_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use payhost_plugin_api::abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use payhost_plugin_api::ffi::{
    HostBox, PluginRoot, PluginRootRef, ProviderBox, ProviderFfi, ProviderFfi_TO,
};

struct Nothing;

impl ProviderFfi for Nothing {
    fn call(
        &self,
        _op: RStr<'_>,
        _message: RSlice<'_, u8>,
        _deadline_ms: i64,
    ) -> RResult<RVec<u8>, RVec<u8>> {
        RResult::RErr(RVec::new())
    }
}

extern "C" fn manifest() -> RResult<RVec<u8>, RVec<u8>> {
    RResult::ROk(br#"{"name": "broken", "version": "0.0.0", "plugin_type": "payment"}"#.to_vec().into())
}

extern "C" fn new(_config: RSlice<'_, u8>, _host: HostBox) -> RResult<ProviderBox, RVec<u8>> {
    RResult::ROk(ProviderFfi_TO::from_value(Nothing, TD_Opaque))
}

fn root() -> PluginRootRef {
    PluginRoot { manifest, new }.leak_into_prefix()
}

/// The library header, as `export_plugin!` writes it.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static _1as_0lib_1header_0root_bmodule_bloader: payhost_plugin_api::__private::LibHeader = {
    extern "C" fn loader() -> payhost_plugin_api::__private::RootModuleResult {
        payhost_plugin_api::__private::__call_root_module_loader(root)
    }
    // SAFETY: the constructor returns the root module type named here.
    unsafe {
        payhost_plugin_api::__private::LibHeader::from_constructor::<PluginRootRef>(
            loader,
            payhost_plugin_api::__private::CheckTypeLayout::Yes,
        )
    }
};
