//! `POST /webhooks/payments/{provider}`: authenticated by the provider's signature, not by
//! an API key. 200 once the event is durable in the inbox (also for a repeated delivery);
//! 400 `invalid_signature` for a missing or invalid signature, with nothing stored; 404 for an unknown provider.

use super::call::AnyBody;
use super::ApiError;
use crate::app::AppState;
use crate::plugins::CallError;
use crate::webhooks::ReceiveError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use payhost_plugin_api::{codes, Headers};
use serde::Serialize;
use utoipa::ToSchema;

/// A delivery accepted: durable in the inbox, processed asynchronously.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// Always true.
    pub received: bool,
    /// The provider's event id.
    pub event_id: String,
    /// The provider's event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The same event was delivered before (nothing changed).
    pub duplicate: bool,
}

/// Receives a provider's signed webhook. Authenticated by the provider's signature (the
/// plugin verifies it), not by an API key.
#[utoipa::path(post, path = "/webhooks/payments/{provider}", tag = "webhooks",
    params(("provider" = String, Path, description = "The provider instance's name")),
    request_body(content = serde_json::Value, description = "The provider's event, as it sent it",
        content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or stored before)", body = WebhookAck),
        (status = 400, description = "A missing or invalid signature (`invalid_signature`), or a \
            body the provider's plugin cannot read (`invalid_request`); nothing stored",
            body = crate::api::ErrorBody),
        (status = 404, description = "No such provider instance, or it takes no webhooks",
            body = crate::api::ErrorBody),
    ))]
pub async fn receive(
    State(s): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    AnyBody(body): AnyBody,
) -> Result<Json<WebhookAck>, ApiError> {
    crate::telemetry::note("provider", &provider);
    let mut pairs = Headers::new();
    for (k, v) in &headers {
        if let Ok(v) = v.to_str() {
            pairs.push(k.as_str(), v);
        }
    }
    let received = s
        .webhooks
        .receive(&provider, body.to_vec(), pairs)
        .await
        .map_err(|e| refusal(&provider, e))?;
    Ok(Json(WebhookAck {
        received: true,
        event_id: received.event_id,
        event_type: received.event_type,
        duplicate: received.duplicate,
    }))
}

fn refusal(provider: &str, e: ReceiveError) -> ApiError {
    match e {
        ReceiveError::Store(e) => e.into(),
        ReceiveError::Call(CallError::UnknownProvider { .. }) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no provider instance named '{provider}'"),
        )
        .with_param("provider"),
        ReceiveError::Call(CallError::Unsupported { .. }) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("provider '{provider}' does not accept webhooks"),
        )
        .with_param("provider"),
        // A 400, as providers document for a delivery whose signature does not verify
        // (they retry any answer but a 2xx, and alert on 4xx; nothing is stored).
        ReceiveError::Call(CallError::Plugin(p)) if p.code.as_str() == codes::INVALID_SIGNATURE => {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_signature",
                p.message.to_string(),
            )
        }
        ReceiveError::Call(CallError::Plugin(p)) if p.code.as_str() == codes::INVALID_REQUEST => {
            let e = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                p.message.to_string(),
            );
            // What in the delivery the plugin could not read (`body`, `related_object`).
            match &p.param {
                Some(param) => e.with_param(param.as_str()),
                None => e,
            }
        }
        ReceiveError::Call(other) => other.into(),
    }
}
