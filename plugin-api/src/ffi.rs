//! The binary boundary: the few abi_stable types every 2.x plugin and host share, frozen
//! for the whole major version, and the JSON messages that travel through them.
//!
//! A plugin library exports one root module ([`PluginRoot`]): `manifest()` answers the
//! plugin's [`Manifest`](crate::Manifest) and `new(config, host)` makes a provider instance.
//! An instance is a [`ProviderFfi`] object with one method, `call(op, message)`; the host
//! gives it a [`HostFfi`] object with the same shape. Messages are JSON; errors are a JSON
//! [`PluginError`]. Plugin authors never touch this module: the author kit
//! (`payhost-plugin-kit`) writes the FFI side once.

// The code `#[sabi_trait]` generates uses `unsafe` internally.
#![allow(unsafe_code)]

use crate::error::{codes, PluginError};
use crate::ops::Operation;
use crate::types::CallCtx;
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RVec},
    StableAbi,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::value::RawValue;

/// A provider instance across the boundary: one entry point for every operation.
#[sabi_trait]
pub trait ProviderFfi: Send + Sync {
    /// Runs operation `op` with `message` (a JSON [`Envelope`]); answers the operation's JSON
    /// response, or a JSON [`PluginError`].
    #[sabi(last_prefix_field)]
    fn call(&self, op: RStr<'_>, message: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>>;
}

/// A provider instance as the host holds it.
pub type ProviderBox = ProviderFfi_TO<'static, RBox<()>>;

/// The host's services across the boundary (see [`host_ops`](crate::host_ops)).
#[sabi_trait]
pub trait HostFfi: Send + Sync {
    /// Runs host operation `op` with `message` (its JSON request); answers its JSON response,
    /// or a JSON [`PluginError`].
    #[sabi(last_prefix_field)]
    fn call(&self, op: RStr<'_>, message: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>>;
}

/// The host's services as a plugin holds them.
pub type HostBox = HostFfi_TO<'static, RBox<()>>;

/// The root module: the one symbol the host looks up in a plugin library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRootRef)))]
#[sabi(missing_field(panic))]
pub struct PluginRoot {
    /// The plugin's JSON [`Manifest`](crate::Manifest), or a JSON [`PluginError`].
    pub manifest: extern "C" fn() -> RResult<RVec<u8>, RVec<u8>>,
    /// Makes an instance from its JSON configuration (an object of the plugin's keys).
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn(config: RSlice<'_, u8>, host: HostBox) -> RResult<ProviderBox, RVec<u8>>,
}

impl RootModule for PluginRootRef {
    declare_root_module_statics! {PluginRootRef}
    const BASE_NAME: &'static str = "payhost_plugin";
    const NAME: &'static str = "payhost_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The message of a provider call: the call's context and the operation's request.
#[derive(Serialize)]
pub struct Envelope<'a, T> {
    /// The call's context.
    pub ctx: &'a CallCtx,
    /// The operation's request.
    pub request: &'a T,
}

/// A received provider call, its request not decoded yet.
#[derive(Deserialize)]
pub struct RawEnvelope<'a> {
    /// The call's context.
    #[serde(default)]
    pub ctx: CallCtx,
    /// The operation's request, as JSON.
    #[serde(borrow)]
    pub request: &'a RawValue,
}

/// JSON bytes of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> RVec<u8> {
    // Serializing plain data types into a Vec cannot fail; an error here is a bug in a
    // hand-written Serialize impl and is reported as a protocol error by the receiver.
    serde_json::to_vec(value).unwrap_or_default().into()
}

/// Decodes a message the peer sent.
///
/// # Errors
/// `protocol_error` naming `what` when the bytes are not the expected JSON.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, PluginError> {
    serde_json::from_slice(bytes)
        .map_err(|e| PluginError::new(codes::PROTOCOL, format!("cannot decode {what}: {e}")))
}

/// Decodes an error message; a message that is not one becomes a `protocol_error`.
pub fn decode_error(bytes: &[u8]) -> PluginError {
    decode(bytes, "an error").unwrap_or_else(|e| e)
}

/// Decodes the request of operation `op` on the receiving side of a call.
///
/// A field this side does not know is refused with `unsupported_operation` naming it: the
/// sender leaves fields at their default out of the message, so an unknown field means a
/// newer peer asked for something this side cannot do, and dropping it would do the wrong
/// thing silently.
///
/// # Errors
/// `unsupported_operation` (param: the field) for an unknown field, `invalid_request` for
/// anything else that does not decode.
pub fn decode_request<T: DeserializeOwned>(op: &str, raw: &RawValue) -> Result<T, PluginError> {
    serde_json::from_str(raw.get()).map_err(|e| {
        let text = e.to_string();
        match text
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((field, _)) => PluginError::new(
                codes::UNSUPPORTED,
                format!(
                    "'{field}' is set, but this plugin was built against plugin contract {} \
                     whose {op} has no such field; the request is refused rather than the \
                     field ignored",
                    crate::CONTRACT_VERSION
                ),
            )
            .with_param(field),
            None => PluginError::new(
                codes::INVALID_REQUEST,
                format!("the {op} request does not decode: {text}"),
            ),
        }
    })
}

/// Calls operation `O` on a provider instance: encodes, calls, decodes.
///
/// # Errors
/// The plugin's error, or `protocol_error` when its answer does not decode.
pub fn call<O: Operation>(
    provider: &ProviderBox,
    ctx: &CallCtx,
    request: &O::Request,
) -> Result<O::Response, PluginError> {
    let message = encode(&Envelope { ctx, request });
    match provider.call(O::NAME.into(), message.as_slice().into()) {
        RResult::ROk(bytes) => decode(&bytes, &format!("the answer of {}", O::NAME)),
        RResult::RErr(bytes) => Err(decode_error(&bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{NewPayment, ObjectRef};

    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }

    #[test]
    fn an_unknown_request_field_is_refused_naming_it_and_a_known_one_decodes() {
        let raw: Box<RawValue> =
            serde_json::from_str(r#"{"id": "p_1", "statement_descriptor": "SHOP"}"#).unwrap();
        let e = decode_request::<ObjectRef>("get_payment", &raw).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.param.as_deref()),
            (codes::UNSUPPORTED, Some("statement_descriptor"))
        );
        assert!(e.message.contains("get_payment"), "{e}");
        let ok: Box<RawValue> = serde_json::from_str(r#"{"id": "p_1"}"#).unwrap();
        assert_eq!(
            decode_request::<ObjectRef>("get_payment", &ok).unwrap(),
            ObjectRef::new("p_1")
        );
        let bad: Box<RawValue> = serde_json::from_str(r#"{"amount": 5}"#).unwrap();
        let e = decode_request::<NewPayment>("create_payment", &bad).unwrap_err();
        assert_eq!(e.code, codes::INVALID_REQUEST);
    }
}
