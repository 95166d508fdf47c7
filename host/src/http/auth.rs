//! Bearer-key authentication, compared in constant time.

use super::ApiError;
use crate::app::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn accepted(given: Option<&str>, keys: &[String]) -> bool {
    let Some(given) = given else { return false };
    // Check every key so the time taken does not reveal which one matched.
    keys.iter().fold(false, |ok, k| {
        ok | bool::from(k.as_bytes().ct_eq(given.as_bytes()))
    })
}

async fn require(keys: &[String], req: Request, next: Next) -> Result<Response, ApiError> {
    if accepted(bearer(&req), keys) {
        Ok(next.run(req).await)
    } else {
        Err(ApiError::unauthorized())
    }
}

/// The API key, then the `X-Tenant-Id` every `/v1` route takes.
pub async fn require_api_key(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !accepted(bearer(&req), &s.config.config.host.api_keys) {
        return Err(ApiError::unauthorized());
    }
    if let Some(t) = req.headers().get("x-tenant-id") {
        let ok = t.to_str().is_ok_and(|t| super::call::visible_ascii(t, 64));
        if !ok {
            return Err(ApiError::invalid(
                Some("X-Tenant-Id".into()),
                "X-Tenant-Id must be 1 to 64 printable ASCII characters without spaces",
            ));
        }
    }
    Ok(next.run(req).await)
}

pub async fn require_admin_key(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    require(&s.config.config.host.admin_keys, req, next).await
}
