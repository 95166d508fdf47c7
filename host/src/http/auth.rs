//! Bearer-key authentication. API keys are compared as SHA-256 digests in constant time
//! (the config may hold only the digest); the key that matched becomes the request's
//! [`Caller`]: the tenant it is bound to, if any, and what it may do.

use super::ApiError;
use crate::access::source;
use crate::access::throttle::{Surface, Verdict};
use crate::app::AppState;
use crate::config::Scope;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Who is calling: put in the request's extensions by [`require_api_key`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the request acts for: the key's own, else the `X-Tenant-Id` it named.
    pub tenant: Option<String>,
    /// Scopes idempotency keys: per tenant when there is one, else per API key, so the
    /// same `Idempotency-Key` from two tenants never meets.
    pub idempotency_scope: String,
}

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Who acted: put in an admin request's extensions by [`require_admin_key`], for the audit
/// trail.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// The client of a request as the audit trail and the throttle see it.
pub fn client(
    s: &AppState,
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Option<IpAddr> {
    s.proxies.client(source::peer(extensions), headers)
}

fn request_id() -> String {
    super::current_request_id()
}

/// `429 too_many_failed_attempts` with `Retry-After`.
pub fn too_many(retry_after: Duration) -> ApiError {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_attempts",
        format!("too many wrong keys from this address: try again in {secs} s (Retry-After)"),
    );
    e.retry_after = Some(u32::try_from(secs).unwrap_or(u32::MAX));
    e
}

/// Refuses a client the throttle refuses now, before its key is looked at (a refused
/// source learns nothing, even from a right key).
pub fn gate(s: &AppState, client: Option<IpAddr>, surface: Surface) -> Result<(), ApiError> {
    match s.throttle.refused(client, Instant::now()) {
        Some(wait) => {
            s.metrics.auth_refused(surface);
            Err(too_many(wait))
        }
        None => Ok(()),
    }
}

/// A wrong key from `client` on `surface`: counted, recorded in the audit trail, slowed
/// or refused by the throttle. The refusal's `Err` is the 429 to answer; `Ok` comes after
/// the throttle's wait, and the caller answers 401.
pub async fn wrong_key(
    s: &AppState,
    client: Option<IpAddr>,
    surface: Surface,
    target: String,
) -> Result<(), ApiError> {
    s.metrics.auth_failed(surface);
    let source = source::describe(client);
    let entry = |action: &str, outcome: String| crate::audit::Entry {
        actor: "unknown".into(),
        source: source.clone(),
        action: action.into(),
        target: format!("{}: {target}", surface.as_str()),
        outcome,
        request_id: request_id(),
    };
    match s.throttle.failed(client, Instant::now()) {
        Verdict::Slowed(wait) => {
            s.audit
                .record(entry("auth.failed", "refused: wrong key".into()));
            tokio::time::sleep(wait).await;
            Ok(())
        }
        Verdict::Refused { retry_after, first } => {
            s.metrics.auth_refused(surface);
            if first {
                tracing::warn!(
                    source = %source,
                    surface = surface.as_str(),
                    retry_after_secs = retry_after.as_secs(),
                    "too many wrong keys from one address: refusing it for a while"
                );
                s.audit.record(entry(
                    "auth.throttled",
                    format!("refused for {} s", retry_after.as_secs()),
                ));
            }
            Err(too_many(retry_after))
        }
    }
}

fn forbidden(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

/// The scope a request needs: reading for GET and HEAD, writing for the rest.
fn needed(method: &Method) -> Scope {
    if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

/// The API key, its scope for this request, then the `X-Tenant-Id` every `/v1` route
/// takes: a configured tenant, and the key's own when the key is bound to one.
pub async fn require_api_key(
    State(s): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let who = client(&s, req.extensions(), req.headers());
    gate(&s, who, Surface::Api)?;
    let given = bearer(&req);
    let Some(key) = given.and_then(|b| s.keyring.find(b)) else {
        if given.is_some() {
            let target = format!("{} {}", req.method(), req.uri().path());
            wrong_key(&s, who, Surface::Api, target).await?;
        }
        return Err(ApiError::unauthorized());
    };
    let scope = needed(req.method());
    if !key.scopes.contains(&scope) {
        return Err(forbidden(
            "insufficient_scope",
            format!(
                "this API key ({}) lacks the '{}' scope this request needs",
                key.label,
                scope.as_str()
            ),
        ));
    }
    let named = match req.headers().get("x-tenant-id") {
        None => None,
        Some(t) => {
            let t = t
                .to_str()
                .ok()
                .filter(|t| crate::config::visible_ascii(t, 64))
                .ok_or_else(|| {
                    ApiError::invalid(
                        Some("X-Tenant-Id".into()),
                        "X-Tenant-Id must be 1 to 64 printable ASCII characters without spaces",
                    )
                })?;
            Some(t.to_owned())
        }
    };
    let tenant = match (&key.tenant, named) {
        (Some(own), Some(named)) if *own != named => {
            return Err(forbidden(
                "tenant_forbidden",
                format!(
                    "this API key ({}) acts for its own tenant only; leave X-Tenant-Id out or \
                     name that tenant",
                    key.label
                ),
            )
            .with_param("X-Tenant-Id"));
        }
        (Some(own), _) => Some(own.clone()),
        (None, Some(named)) if !s.keyring.tenants.contains(&named) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_tenant",
                format!(
                    "X-Tenant-Id '{named}' is not a configured tenant; list it under [tenants] \
                     (tenant = provider) or bind an API key to it"
                ),
            )
            .with_param("X-Tenant-Id"));
        }
        (None, named) => named,
    };
    let idempotency_scope = match &tenant {
        Some(t) => {
            crate::telemetry::note("tenant", t);
            format!("tenant:{t}")
        }
        None => format!("key:{}", hex::encode(&key.digest[..8])),
    };
    let caller = Caller {
        tenant,
        idempotency_scope,
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The admin key; the key's name becomes the request's [`Actor`].
pub async fn require_admin_key(
    State(s): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let who = client(&s, req.extensions(), req.headers());
    gate(&s, who, Surface::Admin)?;
    let given = bearer(&req);
    match given.and_then(|b| s.keyring.admin(b)) {
        Some(key) => {
            s.throttle.succeeded(who);
            req.extensions_mut().insert(Actor(key.label.clone()));
            Ok(next.run(req).await)
        }
        None => {
            if given.is_some() {
                let target = format!("{} {}", req.method(), req.uri().path());
                wrong_key(&s, who, Surface::Admin, target).await?;
            }
            Err(ApiError::unauthorized())
        }
    }
}
