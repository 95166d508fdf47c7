//! `/admin`: the operator's API (admin key): plugins and instances, live reloads, and the
//! webhook inbox and the outbox with their failures.

use super::call::ApiQuery;
use super::ApiError;
use crate::api::requests::QueueFilters;
use crate::api::views::{InboxView, List, OutboxView};
use crate::app::AppState;
use crate::events::{Event, LifecycleEvent};
use crate::plugins::{InstanceRow, PluginRow, SyncReport};
use crate::service::ServiceError;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Rows the admin views of the queues show.
const QUEUE_VIEW: i64 = 200;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plugins))
        .routes(routes!(rescan))
        .routes(routes!(stop))
        .routes(routes!(reload))
        .routes(routes!(outbox_list))
        .routes(routes!(outbox_retry))
        .routes(routes!(inbox_list))
        .routes(routes!(inbox_replay))
        .routes(routes!(routing))
        .routes(routes!(explain))
        .routes(routes!(audit))
}

/// A row of the audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    /// Its place in the chain (the list's cursor).
    pub seq: i64,
    pub at_millis: i64,
    /// The admin key's name, `console:<name>`, `cli:<user>`, or `unknown` (a wrong key).
    pub actor: String,
    /// The client's address, or `local` for the command line.
    pub source: String,
    pub action: String,
    pub target: String,
    /// `ok`, or what went wrong.
    pub outcome: String,
    pub request_id: String,
    /// The SHA-256 of the row before it (`payhost audit verify` checks the chain).
    pub prev_hash: String,
    pub hash: String,
}

impl From<crate::store::audit::AuditRow> for AuditView {
    fn from(r: crate::store::audit::AuditRow) -> Self {
        Self {
            seq: r.seq,
            at_millis: r.at_millis,
            actor: r.actor,
            source: r.source,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            request_id: r.request_id,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// The audit trail, newest first: every operator action (through `/admin`, the console or
/// the CLI) and every failed authentication. Page with `starting_after` (a row's `seq`).
#[utoipa::path(get, path = "/admin/audit", tag = "admin",
    params(crate::api::requests::AuditParams),
    responses((status = 200, description = "Rows, newest first", body = List<AuditView>)))]
async fn audit(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<crate::api::requests::AuditParams>,
) -> Result<Json<List<AuditView>>, ApiError> {
    let filter = crate::store::audit::AuditQuery {
        actor: q.actor.map(|a| a.into_string()),
        action: q.action.map(|a| a.into_string()),
        since_millis: q.since.map(|t| t.get().saturating_mul(1000)),
        until_millis: q
            .until
            .map(|t| t.get().saturating_mul(1000).saturating_add(999)),
    };
    let limit = i64::from(q.limit.get());
    let mut rows = s
        .service
        .store()
        .audit_newest(&filter, q.starting_after, limit + 1)
        .await
        .map_err(ServiceError::from)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(Json(List::new(
        rows.into_iter().map(AuditView::from).collect(),
        has_more,
    )))
}

/// A plugin lifecycle event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LifecycleView {
    pub seq: u64,
    pub at_millis: i64,
    #[serde(flatten)]
    pub event: LifecycleEvent,
}

/// The plugins loaded, the provider instances, and recent lifecycle events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginsView {
    pub plugins: Vec<PluginRow>,
    pub instances: Vec<InstanceRow>,
    pub events: Vec<LifecycleView>,
}

/// What a rescan of the plugins folder did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RescanView {
    pub report: SyncReport,
    pub plugins: Vec<PluginRow>,
    pub instances: Vec<InstanceRow>,
}

/// A plugin stopped.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoppedView {
    pub plugin: String,
    /// The instances stopped with it.
    pub stopped: Vec<String>,
}

/// A plugin reloaded from its file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadedView {
    pub plugin: String,
    pub plugins: Vec<PluginRow>,
    pub instances: Vec<InstanceRow>,
}

/// Outbox work queued again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetriedView {
    pub id: String,
    /// Always `pending`.
    pub status: &'static str,
}

/// Plugins, instances and recent lifecycle events.
#[utoipa::path(get, path = "/admin/plugins", tag = "admin",
    responses((status = 200, description = "Plugins and instances", body = PluginsView)))]
async fn plugins(State(state): State<AppState>) -> Json<PluginsView> {
    let events = state
        .registry
        .dispatcher()
        .recent_lifecycle()
        .into_iter()
        .filter_map(|s| match s.event {
            Event::Lifecycle(event) => Some(LifecycleView {
                seq: s.seq,
                at_millis: s.at_millis,
                event,
            }),
            Event::Domain(_) => None,
        })
        .collect();
    Json(PluginsView {
        plugins: state.registry.plugin_rows(),
        instances: state.registry.instance_rows(),
        events,
    })
}

/// Scans the plugins folder now: new files load, changed ones replace their plugin live,
/// removed ones stop.
#[utoipa::path(post, path = "/admin/plugins/rescan", tag = "admin",
    responses((status = 200, description = "What changed", body = RescanView)))]
async fn rescan(State(s): State<AppState>) -> Json<RescanView> {
    let report = s.operator.rescan().await;
    Json(RescanView {
        report,
        plugins: s.registry.plugin_rows(),
        instances: s.registry.instance_rows(),
    })
}

/// Stops a plugin's instances (calls to them answer 503 until a reload).
#[utoipa::path(post, path = "/admin/plugins/{name}/stop", tag = "admin",
    params(("name" = String, Path, description = "The plugin's name")),
    responses((status = 200, description = "Stopped", body = StoppedView)))]
async fn stop(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<StoppedView>, ApiError> {
    let stopped = s.operator.stop_plugin(&name).await?;
    Ok(Json(StoppedView {
        plugin: name,
        stopped,
    }))
}

/// Loads a plugin again from its file and restarts its instances.
#[utoipa::path(post, path = "/admin/plugins/{name}/reload", tag = "admin",
    params(("name" = String, Path, description = "The plugin's name")),
    responses((status = 200, description = "Reloaded", body = ReloadedView)))]
async fn reload(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ReloadedView>, ApiError> {
    s.operator.reload_plugin(&name).await?;
    Ok(Json(ReloadedView {
        plugin: name,
        plugins: s.registry.plugin_rows(),
        instances: s.registry.instance_rows(),
    }))
}

/// The newest outbox work (emails, application webhooks, dunning), by status.
#[utoipa::path(get, path = "/admin/outbox", tag = "admin",
    params(QueueFilters),
    responses((status = 200, description = "The newest 200 rows", body = List<OutboxView>)))]
async fn outbox_list(
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<QueueFilters>,
) -> Result<Json<List<OutboxView>>, ApiError> {
    let status = f.status.map(|s| s.into_string());
    let rows = s
        .service
        .store()
        .outbox_recent(status.as_deref(), QUEUE_VIEW)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(List::new(
        rows.iter().map(OutboxView::from).collect(),
        false,
    )))
}

/// Queues pending or failed work to run again now (work done stays done).
#[utoipa::path(post, path = "/admin/outbox/{id}/retry", tag = "admin",
    params(("id" = String, Path, description = "The outbox row's id")),
    responses((status = 200, description = "Queued", body = RetriedView)))]
async fn outbox_retry(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RetriedView>, ApiError> {
    s.operator.retry_outbox(&id).await?;
    Ok(Json(RetriedView {
        id,
        status: "pending",
    }))
}

/// The newest stored webhook deliveries, by status.
#[utoipa::path(get, path = "/admin/inbox", tag = "admin",
    params(QueueFilters),
    responses((status = 200, description = "The newest 200 rows", body = List<InboxView>)))]
async fn inbox_list(
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<QueueFilters>,
) -> Result<Json<List<InboxView>>, ApiError> {
    let status = f.status.map(|s| s.into_string());
    let rows = s
        .service
        .store()
        .inbox_recent(status.as_deref(), None, QUEUE_VIEW)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(List::new(
        rows.iter().map(InboxView::from).collect(),
        false,
    )))
}

/// A stored webhook queued for processing again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayedView {
    pub id: String,
    /// Always `pending`.
    pub status: &'static str,
}

/// Processes a stored webhook again (by inbox id or the provider's event id): facts already
/// recorded are not recorded twice, so a replay only completes what is missing.
#[utoipa::path(post, path = "/admin/inbox/{id}/replay", tag = "admin",
    params(("id" = String, Path, description = "The inbox row's id, or the provider's event id")),
    responses((status = 200, description = "Queued", body = ReplayedView)))]
async fn inbox_replay(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ReplayedView>, ApiError> {
    s.operator.replay_inbox(&id).await?;
    Ok(Json(ReplayedView {
        id,
        status: "pending",
    }))
}

/// The routing table, each provider instance's health as this host sees it (circuit,
/// failures in the window, the last hour by minute), and the payments in doubt.
#[utoipa::path(get, path = "/admin/routing", tag = "admin",
    responses((status = 200, description = "Routes and health", body = crate::service::RoutingView)))]
async fn routing(State(s): State<AppState>) -> Result<Json<crate::service::RoutingView>, ApiError> {
    Ok(Json(s.service.routing_view().await?))
}

/// Where a payment request (the body of `POST /v1/payments`) would go: the rule that
/// matches, the instances to try in order, and why each other one would not take it. No
/// provider is called.
#[utoipa::path(post, path = "/admin/routing/explain", tag = "admin",
    params(crate::api::requests::ExplainParams),
    request_body = crate::api::requests::CreatePayment,
    responses((status = 200, description = "The route", body = crate::routing::Decision)))]
async fn explain(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<crate::api::requests::ExplainParams>,
    super::call::RawBody(body): super::call::RawBody,
) -> Result<Json<crate::routing::Decision>, ApiError> {
    let req: crate::api::requests::CreatePayment = super::call::parse_json(&body)?;
    let tenant = q.tenant.map(|t| t.into_string());
    if let Some(t) = &tenant {
        if !crate::config::known_tenants(&s.config.config).contains(t) {
            return Err(ApiError::invalid(
                Some("tenant".into()),
                format!("'{t}' is not a configured tenant"),
            ));
        }
    }
    let ctx = crate::service::Ctx {
        tenant,
        ..Default::default()
    };
    let key = q
        .idempotency_key
        .map_or_else(|| "explain".to_owned(), |k| k.into_string());
    Ok(Json(s.service.explain(&ctx, req, &key).await?))
}
