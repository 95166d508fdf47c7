//! A test-only library built against another MAJOR version of the plugin contract (1.0.0,
//! as every plugin built for payhost 1.x was): it exports abi_stable's root module symbol
//! with that version. The host must refuse it with "library version mismatch", naming
//! both versions, instead of loading it.

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, std_types::RString, StableAbi,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OldRootRef)))]
pub struct OldRoot {
    #[sabi(last_prefix_field)]
    pub name: extern "C" fn() -> RString,
}

impl RootModule for OldRootRef {
    declare_root_module_statics! {OldRootRef}
    const BASE_NAME: &'static str = "payhost_plugin";
    const NAME: &'static str = "payhost_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

extern "C" fn name() -> RString {
    "from-the-past".into()
}

#[export_root_module]
#[allow(unsafe_code)]
pub fn root() -> OldRootRef {
    OldRoot { name }.leak_into_prefix()
}
