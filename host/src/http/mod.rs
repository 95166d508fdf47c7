//! The HTTP surface: `/v1` (API key), `/admin` (admin key), the webhook route, health,
//! readiness, metrics, the OpenAPI description generated from the handlers and their types,
//! and its reference page. Every response carries `X-Request-Id`; every log line and error
//! body of a request carries its id.

pub(crate) mod admin;
pub mod audited;
pub mod auth;
mod call;
mod error;
pub mod openapi;
pub mod server;
mod v1;
mod webhook;

pub use call::{parse_json, RequestId};
pub use error::ApiError;

/// The id of the request being served (empty outside one).
pub fn current_request_id() -> String {
    error::REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

use crate::app::AppState;
use crate::service::new_id;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use std::time::Instant;
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its description: the router serves what the description says.
pub fn documented(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let api = v1::routes().route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_api_key,
    ));
    // The audit layer inside the key's: it sees the key's name.
    let admin = admin::routes()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            audited::record,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin_key,
        ));
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(webhook::receive))
        .merge(api)
        .merge(admin)
        .split_for_parts()
}

/// The whole router: the documented routes, the reference page and `pages` (the
/// console's, given by the caller: the HTTP layer does not know the console, which sits
/// beside it), under one set of layers (error bodies, body limits, metrics, detached tasks).
pub fn app(state: AppState, pages: Router<AppState>) -> Router {
    let (router, api) = documented(&state);
    let doc = openapi::finish(api, &state.config);
    router
        .merge(openapi::reference_page(doc))
        .merge(pages)
        .fallback(|| async { ApiError::not_found("route", "no such route") })
        .layer(middleware::map_response(error_bodies))
        // `read_body` applies each route's limit before any extractor runs.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(detached))
        .with_state(state)
}

/// Runs the request in a task of its own: a client that disconnects or gives up does not
/// cancel what its request started (a provider call goes on and its result is recorded;
/// a retry with the same Idempotency-Key gets that result).
async fn detached(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a request's task failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error; the host log has the details",
            )
            .into_response()
        }
    }
}

/// Reads the whole body before routing, within `body_read_timeout_ms` (a client that
/// trickles its body gets 408 rather than holding a connection and a task) and within the
/// route's limit (413): provider webhooks `webhook_body_limit_bytes`, the rest
/// `body_limit_bytes`.
async fn read_body(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let host = &s.config.config.host;
    let limit = if req.uri().path().starts_with("/webhooks/") {
        host.webhook_body_limit_bytes
    } else {
        host.body_limit_bytes
    };
    let (parts, body) = req.into_parts();
    let deadline = std::time::Duration::from_millis(host.body_read_timeout_ms.max(1));
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the request body is larger than this route accepts ({limit} bytes)"),
                )
            } else {
                ApiError::invalid(None, "the request body could not be read")
            }
            .into_response();
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    deadline.as_millis()
                ),
            )
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Answers the router itself gives without a body (405 for a method a route does not
/// have) in the API's error shape, headers kept.
async fn error_bodies(response: Response) -> Response {
    let status = response.status();
    let bare = response.headers().get(header::CONTENT_TYPE).is_none();
    if !bare || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "this route does not take that method (see the Allow header)",
        ),
        _ => ApiError::new(
            status,
            "http_error",
            status.canonical_reason().unwrap_or("error").to_owned(),
        ),
    };
    let (mut parts, _) = response.into_parts();
    let fresh = error.into_response();
    parts.headers.extend(fresh.headers().clone());
    Response::from_parts(parts, fresh.into_body())
}

/// Gives the request an id (the caller's `X-Request-Id` when sane), runs it inside a span
/// and a task-local carrying that id, records its route, status and latency.
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
    // The fields left empty are named on the way (`telemetry::note`), when known.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        %method,
        %route,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        tenant = tracing::field::Empty,
        provider = tracing::field::Empty,
        payment_id = tracing::field::Empty,
    );
    crate::telemetry::name_request(&span, &method, &route);
    crate::telemetry::continue_from(&span, req.headers());
    let started = Instant::now();
    let mut response = error::REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    s.metrics.http(&method, &route, status, took);
    crate::telemetry::answered(&span, status);
    span.in_scope(|| {
        tracing::info!(status, micros = took.as_micros() as u64, "request served");
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The host is up.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// Whether the host can serve: its database answers and its default provider runs.
#[derive(Debug, Serialize, ToSchema)]
struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// `ok` or `unreachable`.
    database: &'static str,
    providers_running: usize,
    default_provider_running: bool,
    /// The id this host takes leases and claims under (which host answered, behind a load
    /// balancer).
    host: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 when the database answers and the default provider runs, else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    ))]
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
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database: if database { "ok" } else { "unreachable" },
        providers_running: running,
        default_provider_running: default_ok,
        host: s.leases.owner().to_owned(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics: HTTP and provider call counts and latencies, queue depths, the
/// process (memory, CPU, open files) and the build.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text format", body = String,
        content_type = "application/openmetrics-text")))]
async fn metrics(State(s): State<AppState>) -> Response {
    let running = s
        .registry
        .instance_rows()
        .iter()
        .filter(|i| i.state == "running")
        .count();
    let now = s.clock.now_secs();
    let store = s.service.store();
    let db = store.db_counts();
    let (inbox, outbox) = tokio::join!(store.queue_stats(true), store.queue_stats(false));
    let (inbox, outbox) = (inbox.unwrap_or_default(), outbox.unwrap_or_default());
    let age = |oldest: Option<i64>| oldest.map_or(0.0, |o| (now - o).max(0) as f64);
    let names: Vec<String> = s.config.config.providers.keys().cloned().collect();
    let health = s.service.health().snapshot(&names);
    let per = |f: &dyn Fn(&crate::routing::InstanceHealth) -> f64| {
        health
            .iter()
            .map(|h| (h.instance.clone(), f(h)))
            .collect::<Vec<_>>()
    };
    let in_doubt = store.count_open_attempts().await.unwrap_or(0);
    let plugins = s.registry.plugin_rows();
    let loaded_unsigned = plugins
        .iter()
        .filter(|p| {
            p.name.is_some() && p.trust.as_deref().is_some_and(|t| !t.starts_with("signed"))
        })
        .count() as f64;
    let refused = |kind: &str| {
        plugins
            .iter()
            .filter(|p| p.name.is_none() && p.trust.as_deref() == Some(kind))
            .count() as f64
    };
    let per_instance = [
        (
            "payhost_instance_circuit_state",
            "Each provider instance's circuit on this host: 0 closed, 1 half-open (probing), 2 open (skipped).",
            per(&|h| h.circuit.level() as f64),
        ),
        (
            "payhost_instance_failure_ratio",
            "Technical failures among each instance's calls within the breaker's window.",
            per(&|h| h.failure_rate),
        ),
        (
            "payhost_instance_failovers_last_hour",
            "Payments each instance handed to the next one of their route in the last hour.",
            per(&|h| f64::from(h.minutes.iter().map(|m| m.failovers).sum::<u32>())),
        ),
    ];
    let text = s.metrics.render(
        &[
            (
                "payhost_plugins_without_signature",
                "Plugins loaded without a trusted signature (where signatures are not required).",
                loaded_unsigned,
            ),
            (
                "payhost_payments_in_doubt",
                "Payment attempts whose outcome is not known yet (calls running included).",
                in_doubt as f64,
            ),
            (
                "payhost_provider_instances_running",
                "Provider instances serving calls.",
                running as f64,
            ),
            (
                "payhost_webhook_inbox_pending",
                "Stored webhooks not processed yet.",
                inbox.pending as f64,
            ),
            (
                "payhost_webhook_inbox_failed",
                "Stored webhooks that exhausted their retries.",
                inbox.failed as f64,
            ),
            (
                "payhost_webhook_inbox_oldest_pending_seconds",
                "Age of the oldest pending webhook.",
                age(inbox.oldest_pending),
            ),
            (
                "payhost_outbox_pending",
                "Handler work not done yet.",
                outbox.pending as f64,
            ),
            (
                "payhost_outbox_failed",
                "Handler work that exhausted its retries.",
                outbox.failed as f64,
            ),
            (
                "payhost_outbox_oldest_pending_seconds",
                "Age of the oldest pending handler work.",
                age(outbox.oldest_pending),
            ),
        ],
        &[
            (
                "payhost_db_reads",
                "Queries through the database's reading path (one round trip each on PostgreSQL).",
                db.reads,
            ),
            (
                "payhost_db_write_statements",
                "Statements the database writer executed (one round trip each on PostgreSQL).",
                db.statements,
            ),
            (
                "payhost_db_transactions",
                "Transactions the database writer committed (group commit: one or more units each; BEGIN and COMMIT are two more round trips).",
                db.transactions,
            ),
            (
                "payhost_db_write_units",
                "Write units committed (one request's or one processing step's writes each).",
                db.units,
            ),
        ],
        &per_instance,
        &refused,
    );
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )
        .body(Body::from(text))
        .unwrap_or_default()
}
