//! `POST /webhooks/payments/{provider}`: authenticated by the provider's signature, not by
//! an API key. 200 once the event is durable in the inbox (also for a repeated delivery);
//! 400 for a missing or invalid signature, with nothing stored; 404 for an unknown provider.

use super::call::RawBody;
use super::ApiError;
use crate::app::AppState;
use crate::plugins::CallError;
use crate::webhooks::ReceiveError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use payhost_plugin_api::{codes, Headers};
use serde_json::{json, Value};

pub async fn receive(
    State(s): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "received": true,
        "event_id": received.event_id,
        "type": received.event_type,
        "duplicate": received.duplicate,
    })))
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
        ReceiveError::Call(CallError::Plugin(p)) if p.code.as_str() == codes::INVALID_SIGNATURE => {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_signature",
                p.message.to_string(),
            )
        }
        ReceiveError::Call(CallError::Plugin(p)) if p.code.as_str() == codes::INVALID_REQUEST => {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                p.message.to_string(),
            )
        }
        ReceiveError::Call(other) => crate::service::ServiceError::Call(other).into(),
    }
}
