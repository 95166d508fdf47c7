//! Bearer-key authentication. API keys are compared as SHA-256 digests in constant time
//! (the config may hold only the digest); the key that matched becomes the request's
//! [`Caller`]: the tenant it is bound to, if any, and what it may do.

use super::ApiError;
use crate::app::AppState;
use crate::config::{ApiKey, Config, Scope};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use subtle::ConstantTimeEq;

/// Who is calling: put in the request's extensions by [`require_api_key`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the request acts for: the key's own, else the `X-Tenant-Id` it named.
    pub tenant: Option<String>,
    /// Scopes idempotency keys: per tenant when there is one, else per API key, so the
    /// same `Idempotency-Key` from two tenants never meets.
    pub idempotency_scope: String,
}

struct Entry {
    digest: [u8; 32],
    label: String,
    tenant: Option<String>,
    scopes: Vec<Scope>,
}

/// The configured API keys, as digests, and the tenants a request may name.
pub struct Keyring {
    keys: Vec<Entry>,
    tenants: BTreeSet<String>,
}

impl Keyring {
    pub fn new(config: &Config) -> Self {
        Self {
            keys: config
                .host
                .api_keys
                .iter()
                .enumerate()
                .map(|(i, k): (usize, &ApiKey)| Entry {
                    digest: k.digest(),
                    label: k.label(i),
                    tenant: k.tenant().map(str::to_owned),
                    scopes: k.scopes(),
                })
                .collect(),
            tenants: crate::config::known_tenants(config),
        }
    }

    /// The key `given` is, comparing with every key so the time taken does not reveal
    /// which one matched.
    fn find(&self, given: &str) -> Option<&Entry> {
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k);
            }
        }
        found
    }
}

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
    let key = bearer(&req)
        .and_then(|b| s.keyring.find(b))
        .ok_or_else(ApiError::unauthorized)?;
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
        Some(t) => format!("tenant:{t}"),
        None => format!("key:{}", hex::encode(&key.digest[..8])),
    };
    let caller = Caller {
        tenant,
        idempotency_scope,
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

pub async fn require_admin_key(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if accepted(bearer(&req), &s.config.config.host.admin_keys) {
        Ok(next.run(req).await)
    } else {
        Err(ApiError::unauthorized())
    }
}
