//! The HTTP surface: health, the providers list, and the admin view of plugins.

mod auth;
mod error;

pub use error::ApiError;

use crate::app::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde_json::{json, Value};

/// The whole router; tests drive it directly or over a socket.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/providers", get(providers))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    let admin = Router::new()
        .route("/admin/plugins", get(admin_plugins))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin_key,
        ));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(api)
        .merge(admin)
        .fallback(|| async { ApiError::not_found("route", "no such route") })
        .with_state(state)
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
