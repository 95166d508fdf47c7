//! What every API handler shares: the request's metadata (tenant, request id, idempotency
//! key), JSON bodies parsed with errors that name the field, and the idempotency protocol:
//! the same key and request replays the stored answer without calling the provider, the
//! same key with another request is 422, a key whose first request is still running is 409.

use super::ApiError;
use crate::app::AppState;
use crate::service::{Ctx, IdemSlot, PaymentService, Reply, ServiceError};
use crate::store::RowExt;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// The id of the request being served (set by the request-id middleware).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const MAX_KEY_LEN: usize = 255;

/// The request's tenant, id, idempotency key and caller.
pub struct ReqMeta {
    tenant: Option<String>,
    request_id: String,
    idempotency_key: Option<String>,
    /// The bearer credential; idempotency keys are scoped to a hash of it.
    bearer: String,
    method: String,
    path: String,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

impl<S: Send + Sync> FromRequestParts<S> for ReqMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let header = |name: &str| -> Result<Option<String>, ApiError> {
            match parts.headers.get(name) {
                None => Ok(None),
                Some(v) => v.to_str().map(|s| Some(s.trim().to_owned())).map_err(|_| {
                    ApiError::invalid(Some(name.to_owned()), format!("header {name} is not text"))
                }),
            }
        };
        let idempotency_key = header("idempotency-key")?;
        if let Some(k) = &idempotency_key {
            if k.is_empty() || k.len() > MAX_KEY_LEN {
                return Err(ApiError::invalid(
                    Some("Idempotency-Key".into()),
                    format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"),
                ));
            }
        }
        let bearer = header("authorization")?.unwrap_or_default();
        Ok(Self {
            tenant: header("x-tenant-id")?.filter(|t| !t.is_empty()),
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            idempotency_key,
            bearer,
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
        })
    }
}

impl ReqMeta {
    pub fn ctx(&self) -> Ctx {
        Ctx {
            tenant: self.tenant.clone(),
            request_id: self.request_id.clone(),
            idempotency: None,
            defer_reply: false,
        }
    }
}

/// Query parameters, refused with an error in the API's shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::invalid(None, format!("query: {}", e.body_text())))
    }
}

/// A request body within the configured size limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is larger than this host accepts",
                    )
                } else {
                    ApiError::invalid(None, format!("cannot read the request body: {r}"))
                }
            })
    }
}

/// Parses a JSON body (an empty body is `{}`); errors name the field at fault.
///
/// # Errors
/// 400 `invalid_request` for malformed JSON, a missing field, a field of the wrong type
/// or an unknown field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid(None, format!("malformed JSON body: {inner}"));
        }
        let message = inner.to_string();
        // serde names a missing or unknown field in backticks; the path names a mistyped one.
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| {
                message.starts_with("missing field") || message.starts_with("unknown field")
            })
            .map(str::to_owned);
        let param = named.or_else(|| (path != ".").then_some(path));
        let message = match &param {
            Some(p) if !message.contains(p.as_str()) => format!("{p}: {message}"),
            _ => message,
        };
        ApiError::invalid(param, message)
    })
}

/// Keys whose first request is still being served, per caller scope.
#[derive(Default)]
pub struct Inflight(Mutex<HashSet<(String, String)>>);

struct InflightGuard {
    set: Arc<Inflight>,
    key: (String, String),
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

fn reply_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    (status, Json(reply.body)).into_response()
}

/// Runs a POST: parses the body, applies the idempotency protocol, runs `op`.
///
/// # Errors
/// A body or idempotency error, or the operation's.
pub async fn post<T, F, Fut>(
    s: &AppState,
    meta: ReqMeta,
    body: Bytes,
    op: F,
) -> Result<Response, ApiError>
where
    T: DeserializeOwned,
    F: FnOnce(Arc<PaymentService>, Ctx, T) -> Fut,
    Fut: Future<Output = Result<Reply, ServiceError>>,
{
    let req: T = parse_json(&body)?;
    let mut ctx = meta.ctx();
    let Some(key) = meta.idempotency_key.clone() else {
        return Ok(reply_response(op(s.service.clone(), ctx, req).await?));
    };
    let request_hash = sha256_hex(&[meta.method.as_bytes(), meta.path.as_bytes(), &body]);
    let scope = sha256_hex(&[meta.bearer.as_bytes()])[..16].to_owned();
    let slot = (scope.clone(), key.clone());
    let claimed = s
        .idempotency
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(slot.clone());
    if !claimed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            format!("a request with Idempotency-Key '{key}' is still being processed; retry later"),
        ));
    }
    let _guard = InflightGuard {
        set: s.idempotency.clone(),
        key: slot,
    };
    let stored = s
        .service
        .store()
        .one(
            "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND idem_key = $2",
            vec![scope.clone().into(), key.clone().into()],
        )
        .await
        .map_err(ServiceError::from)?;
    if let Some(row) = stored {
        if row.text("request_hash").map_err(ServiceError::from)? != request_hash {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!(
                    "Idempotency-Key '{key}' was already used for a different request \
                     (method, path or body); use a new key"
                ),
            )
            .with_param("Idempotency-Key"));
        }
        let status = row.int("status").map_err(ServiceError::from)?;
        let body = serde_json::from_str(&row.text("response").map_err(ServiceError::from)?)
            .unwrap_or_default();
        let mut response = reply_response(Reply {
            status: u16::try_from(status).unwrap_or(200),
            body,
        });
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(response);
    }
    ctx.idempotency = Some(IdemSlot {
        scope,
        key,
        request_hash,
    });
    Ok(reply_response(op(s.service.clone(), ctx, req).await?))
}

/// Runs a read.
///
/// # Errors
/// The operation's.
pub async fn get<F, Fut>(s: &AppState, meta: ReqMeta, op: F) -> Result<Response, ApiError>
where
    F: FnOnce(Arc<PaymentService>, Ctx) -> Fut,
    Fut: Future<Output = Result<Reply, ServiceError>>,
{
    Ok(reply_response(op(s.service.clone(), meta.ctx()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        amount: i64,
        currency: String,
    }

    #[test]
    fn body_errors_name_the_field() {
        let e = parse_json::<Req>(br#"{"currency": "usd"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"), "{e:?}");
        let e = parse_json::<Req>(br#"{"amount": "ten", "currency": "usd"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"), "{e:?}");
        let e = parse_json::<Req>(br#"{"amount": 1, "currency": "usd", "colour": 1}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("colour"), "{e:?}");
        let e = parse_json::<Req>(br#"{"amount": 1,"#).unwrap_err();
        assert!(e.message.starts_with("malformed JSON"), "{e:?}");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
