//! The contract between the payhost host and its payment-provider plugins, version 2.
//!
//! Plugin authors build against the author kit, `payhost-plugin-kit`, which re-exports
//! everything here and writes the boundary code once; this crate is the contract itself:
//! plain Rust types and the few FFI types they travel through. It does no I/O.
//!
//! - [`types`]: the messages, as ordinary Rust (`String`, `Option`, `Vec`, [`Money`]).
//! - [`ops`]: the operations a provider answers, each with its capability, request and
//!   response, listed once in [`for_each_operation!`].
//! - [`host_ops`]: what a plugin may ask of the host (HTTP, emit, log, clock, sleep, cache).
//! - [`Manifest`]: what a plugin declares (name, capabilities, configuration keys, fixtures).
//! - [`ffi`]: the binary boundary (abi_stable), frozen for 2.x.
//! - [`signature`]: the `t=..,v1=..` HMAC webhook signature scheme.
//!
//! # How this contract evolves
//!
//! A plugin built against 2.0 must keep loading and working in every 2.x host, and a
//! plugin built against a newer 2.x must load in an older 2.x host. Two layers make that
//! possible, and each has its rules.
//!
//! **The binary layer is frozen.** abi_stable checks the layout of every type that crosses
//! the boundary when the host loads a library, and refuses the whole plugin on any
//! difference it cannot prove safe: measured on 1.0, one field added to a `#[repr(C)]`
//! request, or one variant added to an enum, refused every plugin built before it. So the
//! types in [`ffi`] — the root module, `ProviderFfi::call`, `HostFfi::call` — never change
//! in 2.x. Any change to them is 3.0. (abi_stable refuses a library of another major
//! version with "library version mismatch"; the host names both versions.)
//!
//! **Everything else travels as JSON** through those two `call` methods, and grows by
//! these rules. A contributor adding to the contract must follow all of them; the compat
//! test (`tests/tests/compat.rs`) loads the mock built from the frozen 2.0 tree into the
//! current host, and the current mock into the 2.0 host, and fails when one is broken.
//!
//! 1. **A new operation** is one entry in [`for_each_operation!`]. A plugin built before it
//!    answers `unsupported_operation` for it (the kit's dispatch does not know the name),
//!    never a panic; the host treats that as "this provider does not support it".
//! 2. **A new field on a request type** must have a default the older side can assume
//!    (`Option`, an empty collection, `false`, an enum's default variant) and carry
//!    `#[serde(default, skip_serializing_if = ...)]`. A newer host leaves it out at its
//!    default, so an older plugin decodes the request as before. When the host sets it, the
//!    older plugin refuses the request naming the field (request types are
//!    `deny_unknown_fields`; [`ffi::decode_request`] answers `unsupported_operation` with
//!    `param`) — a field the caller set is never silently dropped. A field the host fills
//!    on its own (2.2's `NewRefund.currency`) goes only to plugins whose manifest names the
//!    version that added it or a later one. Fields of [`CallCtx`] are read leniently by
//!    every version: an older plugin ignores the ones it does not know.
//! 3. **A new field on a response type** carries `#[serde(default)]`, and its default must
//!    mean "the plugin did not say": an older plugin never sends it. Response types ignore
//!    fields they do not know, so an older host reads a newer plugin's answers.
//! 4. **A new enum variant** goes into an [`open_enum!`] (or, for enums with data, a type
//!    like [`NextAction`] that keeps `Unknown(Value)`). A value a side does not know is kept
//!    as `Unknown(..)` and travels back unchanged; it is never mapped to a neighbour. Code
//!    that matches on these enums writes every arm, including `Unknown`, without `_ =>`.
//! 5. **A new host operation** is a new [`host_ops`] entry. An older host answers
//!    `unsupported_operation`; the kit turns that into an error the plugin can handle.
//! 6. **Never** within 2.x: remove or rename an operation, a field or a variant; change a
//!    field's type or meaning; make an optional field required; change [`ffi`]. Bump the
//!    minor version for every addition ([`CONTRACT_VERSION`] tells each side what the other
//!    was built with: `payhost plugins check` shows it).
//!
//! Why JSON rather than abi_stable's own mechanisms: prefix types can gain fields, but a
//! prefix-type value can only be built from a `'static` (every request would leak), and
//! non-exhaustive enums fix their storage size forever. A serialized message has neither
//! problem, is what nushell's plugin protocol does, and costs a few microseconds per call
//! (see BENCHMARKS.md).

#![deny(missing_docs)]

pub mod error;
pub mod ffi;
pub mod host_ops;
pub mod manifest;
pub mod money;
mod open_enum;
pub mod ops;
pub mod signature;
pub mod types;

pub use error::{codes, Effect, PluginError};
pub use manifest::{capabilities, ConfigKey, Fixtures, Manifest, PLUGIN_TYPE_PAYMENT};
pub use money::{Currency, InvalidCurrency, Money};
pub use ops::Operation;
pub use types::*;

/// The version of this contract, `major.minor.patch`. A plugin's manifest carries the
/// version it was built against.
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// abi_stable, re-exported so the host, the kit and the compat tests agree on one version.
pub use abi_stable;

#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
    pub use serde;
}
