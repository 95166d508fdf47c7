//! A test-only library built against a different MAJOR version of the plugin API: it
//! exports abi_stable's root module symbol, but with version 2.0.0. The host must refuse
//! it with "library version mismatch" instead of loading it.

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, std_types::RString, StableAbi,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = FutureRootRef)))]
pub struct FutureRoot {
    #[sabi(last_prefix_field)]
    pub name: extern "C" fn() -> RString,
}

impl RootModule for FutureRootRef {
    declare_root_module_statics! {FutureRootRef}
    const BASE_NAME: &'static str = "payhost_plugin";
    const NAME: &'static str = "payhost_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("2.0.0");
}

extern "C" fn name() -> RString {
    "from-the-future".into()
}

#[export_root_module]
#[allow(unsafe_code)]
pub fn root() -> FutureRootRef {
    FutureRoot { name }.leak_into_prefix()
}
