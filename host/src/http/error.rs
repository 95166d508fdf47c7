//! API errors, one shape everywhere (404 and 405 included):
//! `{"error": {"type", "code", "message", "param", "decline_code", "request_id"}}` with
//! stable codes and no internals. Every service and provider failure maps here; details
//! that are not the caller's business (database text, panic messages) go to the log with
//! the request id, never to the client.

use crate::api::{ErrorBody, ErrorDetail};
use crate::plugins::CallError;
use crate::service::ServiceError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use payhost_plugin_api::codes;

tokio::task_local! {
    /// The id of the request being served, for the errors it answers.
    pub static REQUEST_ID: String;
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub decline_code: Option<String>,
    /// Seconds to send in `Retry-After` (an outage the caller should wait out).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            param: None,
            decline_code: None,
            retry_after: None,
        }
    }

    /// The database is away: 503 with `Retry-After`, the detail in the log only.
    pub fn database_unavailable(detail: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "database unavailable");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; retry after a moment (a write with the same Idempotency-Key)",
        );
        e.retry_after = Some(1);
        e
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid 'Authorization: Bearer <key>' header is required",
        )
    }

    pub fn not_found(what: &str, message: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{message} ({what})"),
        )
    }

    pub fn invalid(param: Option<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request", message);
        e.param = param;
        e
    }

    /// The error's family, from its status and code.
    fn kind(&self) -> &'static str {
        match (self.status.as_u16(), self.code) {
            (401, _) => "authentication_error",
            (402, _) => "card_error",
            (_, "idempotency_key_in_use" | "idempotency_key_reused") => "idempotency_error",
            (429, _) => "rate_limit_error",
            (_, "provider_id_conflict") => "provider_error",
            (502..=504, _) => "provider_error",
            (500..=599, _) => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// The body, with the id of the request being served.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind(),
                code: self.code,
                message: self.message.clone(),
                param: self.param.clone(),
                decline_code: self.decline_code.clone(),
                request_id: REQUEST_ID.try_with(Clone::clone).ok(),
            },
        }
    }
}

/// The status and stable code for a provider's error code.
fn plugin_status(code: &str) -> (StatusCode, &'static str) {
    match code {
        codes::INVALID_REQUEST => (StatusCode::BAD_REQUEST, "invalid_request"),
        codes::NOT_FOUND => (StatusCode::NOT_FOUND, "not_found"),
        codes::CARD_DECLINED => (StatusCode::PAYMENT_REQUIRED, "card_declined"),
        codes::UNSUPPORTED => (StatusCode::BAD_REQUEST, "unsupported_operation"),
        codes::CONFLICT => (StatusCode::CONFLICT, "conflict"),
        codes::RATE_LIMITED => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        codes::AUTHENTICATION => (StatusCode::BAD_GATEWAY, "provider_authentication"),
        codes::UNAVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable"),
        codes::DEADLINE => (StatusCode::GATEWAY_TIMEOUT, "provider_timeout"),
        _ => (StatusCode::BAD_GATEWAY, "provider_error"),
    }
}

impl From<crate::operator::OperatorError> for ApiError {
    fn from(e: crate::operator::OperatorError) -> Self {
        use crate::operator::OperatorError;
        match e {
            OperatorError::NotFound {
                what,
                param,
                message,
            } => ApiError::not_found(what, &message).with_param(param),
            OperatorError::ReloadFailed(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "reload_failed", message)
            }
            OperatorError::Store(e) => ServiceError::from(e).into(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { param, message } => ApiError::invalid(Some(param), message),
            ServiceError::NotFound { what, param, id } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such {what}: '{}'", id.escape_debug()),
            )
            .with_param(param),
            e @ ServiceError::UnknownUser(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
                    .with_param("user_id")
            }
            ServiceError::InvalidState { param, message } => {
                let mut e = ApiError::new(StatusCode::CONFLICT, "invalid_state", message);
                e.param = param;
                e
            }
            ServiceError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            ServiceError::ProviderIdConflict(message) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_id_conflict", message)
            }
            ServiceError::Call(call) => call.into(),
            ServiceError::NoInstance(message) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_unavailable",
                    message,
                );
                e.retry_after = Some(1);
                e
            }
            e @ ServiceError::KeyInFlight(_) => {
                let mut e = ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    e.to_string(),
                )
                .with_param("Idempotency-Key");
                e.retry_after = Some(1);
                e
            }
            ServiceError::Store(e) if e.is_unavailable() => ApiError::database_unavailable(&e),
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "database failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error; the host log has the details under this request's id",
                )
            }
        }
    }
}

impl From<CallError> for ApiError {
    fn from(call: CallError) -> Self {
        match call {
            CallError::UnknownProvider { name, .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_unavailable",
                format!("provider '{name}' is not running"),
            ),
            CallError::NotRunning { name, reason } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_unavailable",
                format!("provider '{name}' is not running: {reason}"),
            ),
            CallError::Unsupported {
                provider,
                capability,
            } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_operation",
                format!("provider '{provider}' does not support {capability}"),
            ),
            CallError::Plugin(e) => {
                let (status, code) = plugin_status(e.code.as_str());
                let mut api = ApiError::new(status, code, e.message.clone());
                api.param = e.param.clone();
                api.decline_code = e.decline_code.clone();
                api
            }
            CallError::Panicked { provider, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                format!("provider '{provider}' failed while handling the request"),
            ),
            CallError::Busy { provider, limit } => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_busy",
                    format!(
                        "provider '{provider}' has {limit} calls in flight; retry after a moment"
                    ),
                );
                e.retry_after = Some(1);
                e
            }
            CallError::Timeout { provider, ms, .. } => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "provider_timeout",
                format!("provider '{provider}' did not answer within {ms} ms"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        }
        let retry_after = self.retry_after;
        let code = self.code;
        let mut response = (self.status, Json(self.body())).into_response();
        // What went wrong, for the audit trail's outcome of an operator's action.
        response
            .extensions_mut()
            .insert(super::audited::Outcome(format!(
                "{} {code}",
                self.status.as_u16()
            )));
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
