//! The one error type that crosses the plugin boundary.

use abi_stable::{
    std_types::{ROption, RString},
    StableAbi,
};
use std::fmt;

/// Stable error codes. Providers may use others (e.g. a decline reason); the host maps the
/// ones below to HTTP statuses and treats any other code as a provider error.
pub mod codes {
    /// The request was malformed or refused by the provider as invalid.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The object named does not exist at the provider.
    pub const NOT_FOUND: &str = "not_found";
    /// The card was declined; `decline_code` says why.
    pub const CARD_DECLINED: &str = "card_declined";
    /// The operation is not declared by this provider.
    pub const UNSUPPORTED: &str = "unsupported_operation";
    /// Missing or invalid configuration at initialization.
    pub const CONFIG: &str = "invalid_config";
    /// The provider refused our credentials.
    pub const AUTHENTICATION: &str = "provider_authentication";
    /// The provider rate-limited us.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The provider could not be reached or answered with a server error.
    pub const UNAVAILABLE: &str = "provider_unavailable";
    /// The request conflicts with the state of the object (e.g. refund above the remaining amount).
    pub const CONFLICT: &str = "conflict";
    /// A webhook signature was missing, malformed, stale or did not match.
    pub const INVALID_SIGNATURE: &str = "invalid_signature";
    /// The plugin panicked; the panic was caught at the boundary.
    pub const PANICKED: &str = "plugin_panicked";
    /// Anything else that went wrong inside the plugin.
    pub const INTERNAL: &str = "plugin_internal";
}

/// An error from a plugin: a stable code, a human message, and whether retrying may help.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    pub code: RString,
    pub message: RString,
    /// The request field at fault, if one is.
    pub param: ROption<RString>,
    /// The provider's decline reason for card errors (e.g. `insufficient_funds`).
    pub decline_code: ROption<RString>,
    pub retryable: bool,
}

impl PluginError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into().into(),
            param: ROption::RNone,
            decline_code: ROption::RNone,
            retryable: false,
        }
    }

    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message).with_param(param)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(codes::NOT_FOUND, format!("no such {what}: '{id}'"))
    }

    pub fn unsupported(operation: &str) -> Self {
        Self::new(
            codes::UNSUPPORTED,
            format!("this provider does not support {operation}"),
        )
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = ROption::RSome(param.into());
        self
    }

    pub fn with_decline_code(mut self, code: &str) -> Self {
        self.decline_code = ROption::RSome(code.into());
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for PluginError {}
