//! The HTTP API's contract as Rust types: what callers send ([`requests`], built from the
//! validated [`fields`]) and what payhost answers ([`views`], [`ErrorBody`]). The same types
//! parse, serialize and generate `/openapi.json`.

pub mod fields;
pub mod requests;
pub mod views;

use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The family: `invalid_request_error`, `authentication_error`, `card_error`,
    /// `idempotency_error`, `rate_limit_error`, `provider_error`, `api_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A stable code within the family: `not_found`, `invalid_request`, `card_declined`,
    /// `invalid_state`, `provider_unavailable`, …
    pub code: &'static str,
    /// For a person: what was wrong, naming the field or value at fault.
    pub message: String,
    /// The field, query parameter or header at fault.
    pub param: Option<String>,
    /// The provider's reason for a declined card (`insufficient_funds`, …).
    pub decline_code: Option<String>,
    /// The request's id, as in the `X-Request-Id` header and the host's log.
    pub request_id: Option<String>,
}
