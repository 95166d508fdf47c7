//! The HTTP surface: `/v1` (API key), `/admin` (admin key), health, readiness, metrics and
//! the OpenAPI description. Every response carries `X-Request-Id`; every log line of a
//! request carries its id.

mod auth;
mod call;
mod error;
mod v1;
mod webhook;

pub use call::{parse_json, Inflight, RequestId};
pub use error::ApiError;

use crate::app::AppState;
use crate::service::new_id;
use axum::extract::Path;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Instant;
use tracing::Instrument;

/// The OpenAPI 3.1 description of every route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The whole router; tests drive it directly or over a socket.
pub fn app(state: AppState) -> Router {
    let api = v1::routes()
        .route("/v1/providers", get(providers))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    let admin = Router::new()
        .route("/admin/plugins", get(admin_plugins))
        .route("/admin/plugins/rescan", post(admin_rescan))
        .route("/admin/plugins/{name}/stop", post(admin_stop))
        .route("/admin/plugins/{name}/reload", post(admin_reload))
        .route("/admin/outbox", get(admin_outbox))
        .route("/admin/outbox/{id}/retry", post(admin_outbox_retry))
        .route("/admin/inbox", get(admin_inbox))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin_key,
        ));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/webhooks/payments/{provider}", post(webhook::receive))
        .merge(api)
        .merge(admin)
        .fallback(|| async { ApiError::not_found("route", "no such route") })
        .layer(DefaultBodyLimit::max(
            state.config.config.host.body_limit_bytes,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Gives the request an id (the caller's `X-Request-Id` when sane), runs it inside a span
/// carrying that id, records its route, status and latency.
async fn observe(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| new_id("req"), str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    s.metrics.http(&method, &route, status, took);
    span.in_scope(|| {
        tracing::info!(status, micros = took.as_micros() as u64, "request served");
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn readyz(State(s): State<AppState>) -> Response {
    let database = s.service.store().ping().await;
    let instances = s.registry.instance_rows();
    let running = instances.iter().filter(|i| i.state == "running").count();
    let default_ok = s
        .config
        .config
        .host
        .default_provider
        .as_ref()
        .is_none_or(|d| {
            instances
                .iter()
                .any(|i| &i.name == d && i.state == "running")
        });
    let ready = database && default_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": if database { "ok" } else { "unreachable" },
        "providers_running": running,
        "default_provider_running": default_ok,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// (pending, failed, age in seconds of the oldest pending row) of the inbox or the outbox.
async fn queue_state(s: &AppState, table: &'static str) -> (f64, f64, f64) {
    use crate::store::RowExt;
    let sql = match table {
        "inbox" => "SELECT CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS pending, \
                    CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
                    MIN(CASE WHEN status = 'pending' THEN received_at END) AS oldest FROM webhook_inbox",
        _ => "SELECT CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS pending, \
              CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
              MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest FROM outbox",
    };
    let now = s.clock.now_secs();
    match s.service.store().one(sql, vec![]).await {
        Ok(Some(r)) => (
            r.opt_int("pending").ok().flatten().unwrap_or(0) as f64,
            r.opt_int("failed").ok().flatten().unwrap_or(0) as f64,
            r.opt_int("oldest")
                .ok()
                .flatten()
                .map_or(0.0, |o| (now - o).max(0) as f64),
        ),
        _ => (0.0, 0.0, 0.0),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let running = s
        .registry
        .instance_rows()
        .iter()
        .filter(|i| i.state == "running")
        .count();
    let (ip, ifl, iage) = queue_state(&s, "inbox").await;
    let (op, ofl, oage) = queue_state(&s, "outbox").await;
    let text = s.metrics.render(&[
        (
            "payhost_provider_instances_running",
            "Provider instances serving calls.",
            running as f64,
        ),
        (
            "payhost_webhook_inbox_pending",
            "Stored webhooks not processed yet.",
            ip,
        ),
        (
            "payhost_webhook_inbox_failed",
            "Stored webhooks that exhausted their retries.",
            ifl,
        ),
        (
            "payhost_webhook_inbox_oldest_pending_seconds",
            "Age of the oldest pending webhook.",
            iage,
        ),
        ("payhost_outbox_pending", "Handler work not done yet.", op),
        (
            "payhost_outbox_failed",
            "Handler work that exhausted its retries.",
            ofl,
        ),
        (
            "payhost_outbox_oldest_pending_seconds",
            "Age of the oldest pending handler work.",
            oage,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn providers(State(state): State<AppState>) -> Json<Value> {
    let c = &state.config.config;
    let rows: Vec<Value> = state
        .registry
        .instance_rows()
        .into_iter()
        .map(|r| {
            let tenants: Vec<&String> = c
                .tenants
                .iter()
                .filter(|(_, p)| **p == r.name)
                .map(|(t, _)| t)
                .collect();
            json!({
                "name": r.name, "plugin": r.plugin, "version": r.version,
                "capabilities": r.capabilities, "state": r.state,
                "default": c.host.default_provider.as_deref() == Some(r.name.as_str()),
                "tenants": tenants,
            })
        })
        .collect();
    Json(json!({"object": "list", "data": rows}))
}

async fn admin_plugins(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "plugins": state.registry.plugin_rows(),
        "instances": state.registry.instance_rows(),
        "events": state.registry.dispatcher().recent_lifecycle(),
    }))
}

async fn admin_rescan(State(s): State<AppState>) -> Json<Value> {
    let report = s
        .registry
        .sync(&s.config.plugin_dir, &s.config.config.providers)
        .await;
    Json(json!({
        "report": report,
        "plugins": s.registry.plugin_rows(),
        "instances": s.registry.instance_rows(),
    }))
}

async fn admin_stop(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let stopped = s
        .registry
        .stop_plugin(&name)
        .await
        .map_err(|e| ApiError::not_found("plugin", &e.to_string()).with_param("name"))?;
    Ok(Json(json!({"plugin": name, "stopped": stopped})))
}

async fn admin_reload(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let known = s
        .registry
        .plugin_rows()
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()));
    if !known {
        return Err(
            ApiError::not_found("plugin", &format!("no plugin named '{name}' is loaded"))
                .with_param("name"),
        );
    }
    s.registry
        .reload(&name, &s.config.config.providers)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reload_failed",
                e.to_string(),
            )
        })?;
    Ok(Json(json!({
        "plugin": name,
        "plugins": s.registry.plugin_rows(),
        "instances": s.registry.instance_rows(),
    })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueFilter {
    status: Option<String>,
}

async fn admin_outbox(
    State(s): State<AppState>,
    call::ApiQuery(f): call::ApiQuery<QueueFilter>,
) -> Result<Json<Value>, ApiError> {
    use crate::store::RowExt;
    let rows = s
        .service
        .store()
        .all(
            "SELECT id, event_id, handler, target, status, attempts, last_error, last_status, \
             next_attempt_at, created_at, done_at FROM outbox \
             WHERE ($1 IS NULL OR status = $1) ORDER BY created_at DESC, id LIMIT 200",
            vec![f.status.into()],
        )
        .await
        .map_err(crate::service::ServiceError::from)?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.text("id").ok(), "event_id": r.text("event_id").ok(),
                "handler": r.text("handler").ok(), "target": r.text("target").ok(),
                "status": r.text("status").ok(), "attempts": r.int("attempts").ok(),
                "last_error": r.opt_text("last_error").ok().flatten(),
                "last_status": r.opt_int("last_status").ok().flatten(),
                "next_attempt_at_ms": r.int("next_attempt_at").ok(),
                "created_at": r.int("created_at").ok(), "done_at": r.opt_int("done_at").ok().flatten(),
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn admin_outbox_retry(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut unit = crate::store::Unit::new();
    unit.push(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2 \
         WHERE id = $1 AND status <> 'done'",
        vec![id.clone().into(), s.clock.now_millis().into()],
    );
    let changed = s
        .service
        .store()
        .commit(unit)
        .await
        .map_err(crate::service::ServiceError::from)?;
    if changed.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::not_found(
            "outbox",
            &format!("no pending or failed outbox row '{id}'"),
        )
        .with_param("id"));
    }
    s.service.recorder().outbox_wake.notify_one();
    Ok(Json(json!({"id": id, "status": "pending"})))
}

async fn admin_inbox(
    State(s): State<AppState>,
    call::ApiQuery(f): call::ApiQuery<QueueFilter>,
) -> Result<Json<Value>, ApiError> {
    use crate::store::RowExt;
    let rows = s
        .service
        .store()
        .all(
            "SELECT id, provider, event_id, event_type, status, attempts, last_error, received_at, \
             processed_at FROM webhook_inbox WHERE ($1 IS NULL OR status = $1) \
             ORDER BY received_at DESC, id LIMIT 200",
            vec![f.status.into()],
        )
        .await
        .map_err(crate::service::ServiceError::from)?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.text("id").ok(), "provider": r.text("provider").ok(),
                "event_id": r.text("event_id").ok(), "type": r.text("event_type").ok(),
                "status": r.text("status").ok(), "attempts": r.int("attempts").ok(),
                "last_error": r.opt_text("last_error").ok().flatten(),
                "received_at": r.int("received_at").ok(),
                "processed_at": r.opt_int("processed_at").ok().flatten(),
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}
