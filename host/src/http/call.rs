//! What every API handler shares: the request's metadata (tenant, request id, idempotency
//! key), JSON bodies parsed with errors that name the field, query strings checked against
//! the parameters they declare, and the idempotency protocol: the same key and request
//! replays the stored answer without calling the provider, the same key with another
//! request is 422, a key whose first request is still running is 409.

use super::ApiError;
use crate::api::requests::{Body, Rules};
use crate::app::AppState;
use crate::clock::Clock;
use crate::service::{Ctx, IdemSlot, PaymentService, Reply, ServiceError};
use crate::store::{Claim, StoredReply};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use utoipa::IntoParams;

/// The id of the request being served (set by the request-id middleware).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;
/// An `Idempotency-Key`: printable ASCII without spaces, 1 to 255 characters.
pub const KEY_PATTERN: &str = "^[!-~]{1,255}$";

use crate::config::visible_ascii;

/// The request's tenant, id, idempotency key and caller.
pub struct ReqMeta {
    tenant: Option<String>,
    request_id: String,
    idempotency_key: Option<String>,
    /// Idempotency keys are scoped to it: the tenant's, else the API key's.
    idempotency_scope: String,
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
                Some(v) => v.to_str().map(|s| Some(s.to_owned())).map_err(|_| {
                    ApiError::invalid(Some(name.to_owned()), format!("header {name} is not text"))
                }),
            }
        };
        let idempotency_key = header("idempotency-key")?;
        if let Some(k) = &idempotency_key {
            if !visible_ascii(k, MAX_KEY_LEN) {
                return Err(ApiError::invalid(
                    Some("Idempotency-Key".into()),
                    format!(
                        "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters \
                         without spaces (a UUID, say)"
                    ),
                ));
            }
        }
        // Every /v1 route is behind the API key middleware, which says who calls.
        let caller = parts
            .extensions
            .get::<super::auth::Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self {
            tenant: caller.tenant,
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            idempotency_key,
            idempotency_scope: caller.idempotency_scope,
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
            fail_over: false,
            resume: None,
        }
    }
}

/// The names of the query parameters `T` declares.
fn declared<T: IntoParams>() -> Vec<String> {
    T::into_params(|| None)
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// Query parameters, refused with an error in the API's shape; a name `T` does not declare
/// is refused too.
pub struct ApiQuery<T>(pub T);

fn parse_query<T: DeserializeOwned>(parts: &Parts, known: &[String]) -> Result<T, ApiError> {
    let raw = parts.uri.query().unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::invalid(None, format!("malformed query string: {e}")))?;
    let mut seen = HashSet::new();
    for (name, _) in &pairs {
        if !known.iter().any(|k| k == name) {
            return Err(ApiError::invalid(
                Some(name.clone()),
                format!(
                    "unknown query parameter '{}' (known: {})",
                    name.escape_debug(),
                    known.join(", ")
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(ApiError::invalid(
                Some(name.clone()),
                format!("query parameter '{name}' is given twice"),
            ));
        }
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let param = (path != ".").then_some(path);
        let message = match &param {
            Some(p) => format!("{p}: {inner}"),
            None => format!("query: {inner}"),
        };
        ApiError::invalid(param, message)
    })
}

impl<T: DeserializeOwned + IntoParams, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts, &declared::<T>()).map(ApiQuery)
    }
}

/// A list's query: its page and its filters, from one query string.
pub struct ListQuery<F>(pub crate::api::requests::PageParams, pub F);

impl<F: DeserializeOwned + IntoParams, S: Send + Sync> FromRequestParts<S> for ListQuery<F> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        use crate::api::requests::PageParams;
        let mut known = declared::<PageParams>();
        known.extend(declared::<F>());
        let page: PageParams = parse_query(parts, &known)?;
        let filters: F = parse_query(parts, &known)?;
        Ok(ListQuery(page, filters))
    }
}

/// A request body within the configured size limit, JSON when not empty.
pub struct RawBody(pub Bytes);

/// A request body within the configured size limit, of any media type: a provider's
/// webhook, whose bytes only its plugin judges.
pub struct AnyBody(pub Bytes);

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
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

impl<S: Send + Sync> FromRequest<S> for AnyBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_body(req, state).await.map(AnyBody)
    }
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json"
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            });
        let body = read_body(req, state).await?;
        if !body.is_empty() && json != Some(true) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON, sent with 'Content-Type: application/json'",
            )
            .with_param("Content-Type"));
        }
        Ok(RawBody(body))
    }
}

/// Whether a body gives `field` (present and not null).
fn given(body: &serde_json::Map<String, Value>, field: &str) -> bool {
    body.get(field).is_some_and(|v| !v.is_null())
}

/// Checks a body's cross-field rules.
fn check_rules(body: &Value, rules: &Rules) -> Result<(), ApiError> {
    let Some(obj) = body.as_object() else {
        return Ok(());
    };
    for (a, b) in rules.exclusive {
        if given(obj, a) && given(obj, b) {
            return Err(ApiError::invalid(
                Some((*b).to_owned()),
                format!("give either '{a}' or '{b}', not both"),
            ));
        }
    }
    if !rules.any_of.is_empty()
        && !rules
            .any_of
            .iter()
            .any(|group| group.iter().all(|f| given(obj, f)))
    {
        // Name the first field missing from the group the caller started on, if any.
        let started = rules
            .any_of
            .iter()
            .find(|g| g.iter().any(|f| given(obj, f)))
            .unwrap_or(&rules.any_of[0]);
        let missing = started
            .iter()
            .find(|f| !given(obj, f))
            .unwrap_or(&started[0]);
        return Err(ApiError::invalid(
            Some((*missing).to_owned()),
            rules.any_of_message,
        ));
    }
    Ok(())
}

/// Parses a JSON body (an empty body is `{}`); errors name the field at fault.
///
/// # Errors
/// 400 `invalid_request` for malformed JSON, a missing field, a field of the wrong type
/// or value, an unknown field, or fields that do not go together.
pub fn parse_json<T: Body>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("malformed JSON body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            None,
            "the request body must be a JSON object",
        ));
    }
    check_rules(&value, &T::RULES)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde names a missing or unknown field in backticks; the path names a field whose
        // value is wrong.
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| {
                message.starts_with("missing field") || message.starts_with("unknown field")
            })
            .map(|n| match path.as_str() {
                "." => n.to_owned(),
                // An unknown field's path already ends with it.
                p if p == n || p.ends_with(&format!(".{n}")) => p.to_owned(),
                p => format!("{p}.{n}"),
            });
        let param = named.or_else(|| (path != ".").then_some(path));
        let message = match &param {
            Some(p) if !message.contains(p.as_str()) => format!("{p}: {message}"),
            _ => message,
        };
        ApiError::invalid(param, message)
    })
}

fn reply_response<T: Serialize>(reply: Reply<T>) -> Response {
    let status = StatusCode::from_u16(reply.status.code()).unwrap_or(StatusCode::OK);
    (status, Json(reply.body)).into_response()
}

/// Runs a POST (or DELETE): parses the body, applies the idempotency protocol, runs `op`.
///
/// # Errors
/// A body or idempotency error, or the operation's.
pub async fn post<B, T, F, Fut>(
    s: &AppState,
    meta: ReqMeta,
    body: Bytes,
    op: F,
) -> Result<Response, ApiError>
where
    B: Body,
    T: Serialize,
    F: FnOnce(Arc<PaymentService>, Ctx, B) -> Fut,
    Fut: Future<Output = Result<Reply<T>, ServiceError>>,
{
    let req: B = parse_json(&body)?;
    let mut ctx = meta.ctx();
    let Some(key) = meta.idempotency_key.clone() else {
        return Ok(reply_response(op(s.service.clone(), ctx, req).await?));
    };
    let request_hash = sha256_hex(&[meta.method.as_bytes(), meta.path.as_bytes(), &body]);
    let scope = meta.idempotency_scope.clone();
    let shared = s.service.store().backend() == crate::store::Backend::Postgres;
    let (found, _guard) = claim(s, shared, &scope, &key, &request_hash).await?;
    match found {
        Claim::Claimed => {}
        Claim::InFlight => return Err(in_use(&key)),
        // A payment still being resolved: the retry asks again (never starts over).
        Claim::Answered(stored) if stored.request_hash == request_hash => {
            match crate::service::resume_mark(&stored) {
                Some(payment) => ctx.resume = Some(payment),
                None => return replay(&key, &request_hash, stored),
            }
        }
        Claim::Answered(stored) => return replay(&key, &request_hash, stored),
    }
    ctx.idempotency = Some(IdemSlot {
        scope: scope.clone(),
        key: key.clone(),
        request_hash: request_hash.clone(),
    });
    let result = op(s.service.clone(), ctx, req).await;
    if shared {
        match &result {
            // Stored with the operation's writes: the claim is settled already.
            Ok(reply) if reply.stored => {}
            // Its outcome is not known yet: the retry asks again.
            Ok(reply) if reply.status == crate::service::Status::Accepted => {
                settle(s.service.store().clone(), scope, key, None).await;
            }
            // An operation that wrote nothing has its answer stored here.
            Ok(reply) => {
                let stored = serde_json::to_string(&reply.body)
                    .ok()
                    .map(|body| StoredReply {
                        request_hash,
                        status: reply.status.code(),
                        body,
                    });
                settle(s.service.store().clone(), scope, key, stored).await;
            }
            // A failed one gives the key up for the retry.
            Err(_) => settle(s.service.store().clone(), scope, key, None).await,
        }
    }
    Ok(reply_response(result?))
}

/// Claims (`scope`, `key`) for a request: on SQLite (one host) in this host's memory, held
/// by the guard; on PostgreSQL (maybe several hosts) in the database they share.
async fn claim(
    s: &AppState,
    shared: bool,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> Result<(Claim, Option<crate::service::inflight::InflightGuard>), ApiError> {
    let store = s.service.store();
    if shared {
        // Claims are about hosts being alive: the system clock, whatever the domain's is.
        let now_ms = crate::clock::SystemClock.now_millis();
        let found = store
            .claim_key(
                scope,
                key,
                request_hash,
                (s.clock.now_secs(), now_ms),
                now_ms + CLAIM_MS,
            )
            .await
            .map_err(ServiceError::from)?;
        return Ok((found, None));
    }
    let Some(guard) = s.idempotency.claim(scope, key) else {
        return Ok((Claim::InFlight, None));
    };
    let found = match store
        .stored_reply(scope, key)
        .await
        .map_err(ServiceError::from)?
    {
        Some(r) => Claim::Answered(r),
        None => Claim::Claimed,
    };
    Ok((found, Some(guard)))
}

/// Ends a database claim the operation did not: stores `stored`, or with `None` gives the
/// key up. When the database is away (often why the request failed), again once it is
/// back, so the client's retry is not told "in flight" until the claim lapses.
async fn settle(
    store: crate::store::Store,
    scope: String,
    key: String,
    stored: Option<StoredReply>,
) {
    if store
        .settle_key(&scope, &key, stored.as_ref())
        .await
        .is_ok()
    {
        return;
    }
    tokio::spawn(async move {
        let mut pace = crate::pace::Backoff::new(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(2),
        );
        let give_up =
            tokio::time::Instant::now() + std::time::Duration::from_millis(CLAIM_MS.unsigned_abs());
        while tokio::time::Instant::now() < give_up {
            tokio::time::sleep(pace.next_pause()).await;
            match store.settle_key(&scope, &key, stored.as_ref()).await {
                Ok(()) => return,
                Err(e) if e.is_unavailable() => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot settle an idempotency claim; it lapses on its own");
                    return;
                }
            }
        }
    });
}

/// How long a claim on an `Idempotency-Key` holds when its host dies mid-request.
const CLAIM_MS: i64 = 60_000;

fn in_use(key: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        format!("a request with Idempotency-Key '{key}' is still being processed; retry later"),
    )
    .with_param("Idempotency-Key");
    e.retry_after = Some(1);
    e
}

/// The stored answer to the key's first request, or a refusal when this request differs.
fn replay(key: &str, request_hash: &str, stored: StoredReply) -> Result<Response, ApiError> {
    if stored.request_hash != request_hash {
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
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        stored.body,
    )
        .into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// Runs a read.
///
/// # Errors
/// The operation's.
pub async fn get<T, F, Fut>(s: &AppState, meta: ReqMeta, op: F) -> Result<Response, ApiError>
where
    T: Serialize,
    F: FnOnce(Arc<PaymentService>, Ctx) -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let body = op(s.service.clone(), meta.ctx()).await?;
    Ok((StatusCode::OK, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::requests::{Checkout, CreateRefund};

    #[test]
    fn body_errors_name_the_field() {
        let e = parse_json::<CreateRefund>(br#"{"amount": 5}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("payment"), "{e:?}");
        let e =
            parse_json::<CreateRefund>(br#"{"payment": "pay_1", "amount": "ten"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"), "{e:?}");
        let e = parse_json::<CreateRefund>(br#"{"payment": "pay_1", "colour": 1}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("colour"), "{e:?}");
        let e = parse_json::<CreateRefund>(br#"{"payment": "pay_1", "amount": 0}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"), "{e:?}");
        assert!(e.message.contains("positive"), "{e:?}");
        let e = parse_json::<CreateRefund>(br#"{"payment": 1,"#).unwrap_err();
        assert!(e.message.starts_with("malformed JSON"), "{e:?}");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e =
            parse_json::<CreateRefund>(br#"{"payment": "p", "metadata": {"": "x"}}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metadata"), "{e:?}");
    }

    #[test]
    fn cross_field_rules_name_what_is_missing_or_too_much() {
        let e = parse_json::<Checkout>(br#"{"user_id": "u"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("price"), "{e:?}");
        let e = parse_json::<Checkout>(br#"{"user_id": "u", "amount": 5}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("currency"), "{e:?}");
        let e = parse_json::<Checkout>(
            br#"{"user_id": "u", "price": "p", "amount": 5, "currency": "usd"}"#,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"), "{e:?}");
        let ok = parse_json::<Checkout>(br#"{"user_id": "u", "price": "p", "amount": null}"#);
        assert!(ok.is_ok(), "null is not given: {ok:?}");
    }
}
