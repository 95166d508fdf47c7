//! The one error type that crosses the plugin boundary, in both directions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable error codes. The host maps these to HTTP answers; any other code is treated as a
/// provider error (502) and passed on to the API caller as `provider_error`.
pub mod codes {
    /// The request was malformed or refused by the provider as invalid (400).
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The object named does not exist at the provider (404).
    pub const NOT_FOUND: &str = "not_found";
    /// The card was declined; `decline_code` says why (402). A decline while creating or
    /// confirming a payment is better answered as a payment with status `failed`.
    pub const CARD_DECLINED: &str = "card_declined";
    /// The operation, or a value in the request, is not supported by this plugin (400). The
    /// message says why; `param` names the field when one is at fault.
    pub const UNSUPPORTED: &str = "unsupported_operation";
    /// Missing or invalid configuration at initialization; `param` names the key.
    pub const CONFIG: &str = "invalid_config";
    /// The provider refused the plugin's credentials (502).
    pub const AUTHENTICATION: &str = "provider_authentication";
    /// The provider rate-limited the plugin (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The provider could not be reached or answered with a server error (503).
    pub const UNAVAILABLE: &str = "provider_unavailable";
    /// The request conflicts with the state of the object, e.g. canceling a payment that
    /// already succeeded (409).
    pub const CONFLICT: &str = "conflict";
    /// A webhook signature was missing, malformed, stale or did not match (400).
    pub const INVALID_SIGNATURE: &str = "invalid_signature";
    /// The call's deadline passed before it could finish (504).
    pub const DEADLINE: &str = "deadline_exceeded";
    /// The plugin panicked; the panic was caught at the boundary (502).
    pub const PANICKED: &str = "plugin_panicked";
    /// A message across the boundary could not be decoded: a bug on one side (502).
    pub const PROTOCOL: &str = "protocol_error";
    /// Anything else that went wrong inside the plugin (502).
    pub const INTERNAL: &str = "plugin_internal";
}

crate::open_enum! {
    /// What a failed operation did at the provider, as far as the side reporting it knows
    /// (since 2.2). The host uses it to decide whether another provider instance may take
    /// the request: money must move at most once.
    pub enum Effect {
        /// Nothing: the request never reached the provider (the connection was refused, a
        /// name did not resolve, TLS failed), or the provider refused it before acting (a
        /// 429, a 401). Another instance may take it.
        Nothing => "none",
        /// The provider may have acted: the request left and no answer came (a timeout, a
        /// connection reset mid-answer), or a server error answered a request that changes
        /// state. The host never sends it elsewhere; it asks the same instance again with
        /// the same idempotency key until it knows.
        Uncertain => "unknown",
    }
}

/// An error: a stable code, a message for people, the request field at fault, the
/// provider's decline reason, and whether retrying the same request may succeed.
///
/// Messages reach API callers: never put a secret, a credential or a provider's raw
/// authentication message in one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    /// One of [`codes`], or a provider-specific code.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The provider's decline reason for card errors (e.g. `insufficient_funds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    /// Retrying the same request later may succeed (rate limits, outages).
    #[serde(default)]
    pub retryable: bool,
    /// What the failed request did at the provider, when the plugin knows (since 2.2).
    /// Leave it out when unsure: the host then decides from the code and from what its HTTP
    /// service saw (a call none of whose requests reached the provider did nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<Effect>,
}

impl PluginError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            param: None,
            decline_code: None,
            retryable: false,
            effect: None,
        }
    }

    /// `invalid_request` naming the parameter at fault.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message).with_param(param)
    }

    /// `not_found`: `no such {what}: '{id}'`.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(codes::NOT_FOUND, format!("no such {what}: '{id}'"))
    }

    /// `unsupported_operation` for an operation this plugin does not implement.
    pub fn unsupported(operation: &str) -> Self {
        Self::new(
            codes::UNSUPPORTED,
            format!("this provider does not support {operation}"),
        )
    }

    /// `invalid_config` naming the configuration key at fault.
    pub fn config(key: &str, message: impl Into<String>) -> Self {
        Self::new(codes::CONFIG, message).with_param(key)
    }

    /// `conflict`: the object's state does not allow the operation.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(codes::CONFLICT, message)
    }

    /// Names the request field at fault.
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// Sets the provider's decline reason.
    pub fn with_decline_code(mut self, code: &str) -> Self {
        self.decline_code = Some(code.to_owned());
        self
    }

    /// Marks whether retrying may help.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Says what the failed request did at the provider (since 2.2).
    pub fn with_effect(mut self, effect: Effect) -> Self {
        self.effect = Some(effect);
        self
    }

    /// Whether this is the given code.
    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for PluginError {}
