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

async fn metrics(State(s): State<AppState>) -> Response {
    let running = s
        .registry
        .instance_rows()
        .iter()
        .filter(|i| i.state == "running")
        .count();
    let text = s.metrics.render(&[(
        "payhost_provider_instances_running",
        "Provider instances serving calls.",
        running as f64,
    )]);
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
