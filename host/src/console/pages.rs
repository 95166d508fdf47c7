//! The console's pages: maud templates (escaped by default) over the registry, the queues
//! and the list endpoints' service calls.

use super::chart::{self, Line};
use super::{Page, View};
use crate::api::requests::{CustomerFilters, PageParams, PaymentFilters, SubscriptionFilters};
use crate::api::views::List;
use crate::app::AppState;
use crate::events::Event;
use crate::history::{Series, MINUTES};
use crate::http::ApiError;
use crate::service::{Reply, ServiceError};
use crate::store::events::EventRow;
use axum::extract::{Path, Query, State};
use maud::{html, Markup, DOCTYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

/// Rows per page of the record lists and the queues.
const ROWS: u32 = 25;
const QUEUE_ROWS: i64 = 100;

const NAV: [(&str, &str, &str); 10] = [
    ("overview", "Overview", "/console"),
    ("plugins", "Plugins", "/console/plugins"),
    ("routing", "Routing", "/console/routing"),
    ("inbox", "Webhook inbox", "/console/inbox"),
    ("outbox", "Outbox", "/console/outbox"),
    ("payments", "Payments", "/console/payments"),
    ("customers", "Customers", "/console/customers"),
    ("subscriptions", "Subscriptions", "/console/subscriptions"),
    ("events", "Events", "/console/events"),
    ("audit", "Audit", "/console/audit"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · payhost" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page of a signed-in operator: navigation, the last action's notice, the body.
pub fn layout(title: &str, nav: &str, v: &View, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/console" { "payhost" }
                    nav {
                        @for (key, label, href) in NAV {
                            a href=(href) class=[(key == nav).then_some("active")] { (label) }
                        }
                    }
                    span.host title="The host that served this page" { (v.host) }
                    form.logout method="post" action="/console/logout" {
                        (csrf(v))
                        button #sign-out type="submit" { "Sign out" }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(n) = &v.notice {
                        p #notice .notice .ok[n.ok] .err[!n.ok] role="status" { (n.text) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A page without navigation (sign-in, refusals).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main {
                    p.brand { "payhost" }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn problem(text: &str) -> Markup {
    html! { p.notice.err role="alert" { (text) } }
}

pub fn login(next: &str, error: Option<&str>) -> Markup {
    bare(
        "Sign in to the console",
        html! {
            @if let Some(e) = error { (problem(e)) }
            form.login method="post" action="/console/login" {
                input type="hidden" name="next" value=(next);
                label for="key" { "Admin key" }
                input #key type="password" name="key" autocomplete="current-password"
                    required autofocus;
                button #sign-in type="submit" { "Sign in" }
            }
            p.hint { "Any key of " code { "host.admin_keys" } " signs in. The session lasts 12 hours. Sign-ins are recorded in the audit trail; wrong keys from one address are slowed, then refused for a while." }
        },
    )
}

fn csrf(v: &View) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.session.csrf); }
}

/// A one-button form posting to `action`.
fn button(v: &View, action: &str, id: &str, label: &str, back: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(v))
            @if let Some(b) = back { input type="hidden" name="back" value=(b); }
            button #(id) type="submit" { (label) }
        }
    }
}

/// A unix time as UTC, in a `time` element the script turns into "3 min ago".
pub(super) fn when(secs: i64) -> Markup {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => {
            let text = format!(
                "{} {:02}:{:02}:{:02}",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            );
            let iso = format!(
                "{}T{:02}:{:02}:{:02}Z",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            );
            html! { time datetime=(iso) data-unix=(secs) title=(format!("{text} UTC")) { (text) } }
        }
        Err(_) => html! { (secs) },
    }
}

fn opt_when(secs: Option<i64>) -> Markup {
    secs.map_or_else(|| html! { "—" }, when)
}

/// A plugin's trust: signed or locked is good, unsigned a warning, a refusal bad.
fn trust_badge(trust: Option<&str>) -> Markup {
    let Some(t) = trust else {
        return html! { "—" };
    };
    let class = if t.starts_with("signed") || t == "locked" {
        "good"
    } else if t == "unsigned" {
        "wait"
    } else {
        "bad"
    };
    html! { span class=(format!("badge {class}")) data-trust=(t) { (t) } }
}

pub(super) fn state_badge(state: &str) -> Markup {
    let class = match state {
        "running" | "active" | "processed" | "done" | "succeeded" | "ready" | "closed"
        | "answered" | "resolved" => "good",
        "pending" | "loaded" | "processing" | "requires_action" | "requires_capture"
        | "half_open" | "in_doubt" | "started" => "wait",
        _ => "bad",
    };
    html! { span class=(format!("badge {class}")) data-state=(state) { (state) } }
}

fn money(amount: i64, currency: &str) -> String {
    match payhost_plugin_api::Currency::parse(currency) {
        Ok(c) => payhost_plugin_api::Money::new(amount, c).display(),
        Err(_) => format!("{amount} {currency}"),
    }
}

/// Keys whose values the console never shows, whatever a provider put in a payload.
fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "private_key",
        "cvc",
        "cvv",
        "signature",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if secret_name(k) && !v.is_null() {
                    *v = serde_json::Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// A webhook payload for people: pretty JSON with secret-named fields redacted; anything
/// that is not JSON is not shown at all.
pub fn shown_payload(payload: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(mut v) => {
            redact(&mut v);
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        Err(_) => format!(
            "(not JSON: {} bytes, not shown; `payhost events replay` can process it again)",
            payload.len()
        ),
    }
}

fn json(v: &impl Serialize) -> String {
    let mut value = serde_json::to_value(v).unwrap_or_default();
    redact(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

pub(super) fn failed(v: &View, title: &str, nav: &'static str, e: ApiError) -> Page {
    v.page(title, nav, problem(&e.message)).status(e.status)
}

fn db_failed(v: &View, title: &str, nav: &'static str, e: impl Into<ServiceError>) -> Page {
    failed(v, title, nav, ApiError::from(e.into()))
}

// ---------------------------------------------------------------------------------------
// Overview

/// A per-minute series over the last hour from `(unix minute, value)` points.
pub(super) fn series_of(now_secs: i64, points: impl Iterator<Item = (i64, f64)>) -> Series {
    let now = now_secs.div_euclid(60);
    let mut s = vec![Some(0.0); MINUTES];
    for (minute, value) in points {
        let back = now - minute;
        if (0..MINUTES as i64).contains(&back) {
            s[MINUTES - 1 - back as usize] = Some(value);
        }
    }
    s
}

pub async fn overview(State(s): State<AppState>, v: View) -> Page {
    let now = s.clock.now_secs();
    let store = s.service.store();
    let since = (now.div_euclid(60) - MINUTES as i64 + 1) * 60;
    let (inbox, outbox, per_minute) = tokio::join!(
        store.queue_stats(true),
        store.queue_stats(false),
        store.events_per_minute(since)
    );
    let database_ok = inbox.is_ok() && outbox.is_ok() && per_minute.is_ok();
    let (inbox, outbox) = (inbox.unwrap_or_default(), outbox.unwrap_or_default());
    let per_minute = per_minute.unwrap_or_default();
    let events = series_of(now, per_minute.iter().map(|m| (m.minute, m.events as f64)));
    let failure_events = series_of(
        now,
        per_minute.iter().map(|m| (m.minute, m.failures as f64)),
    );
    let history = s.history.snapshot(now);
    let instances = s.registry.instance_rows();
    let running = instances.iter().filter(|i| i.state == "running").count();
    let age = |oldest: Option<i64>| oldest.map_or(0, |o| (now - o).max(0));
    let latency: Vec<(String, &Series)> = history
        .latency
        .iter()
        .flat_map(|(name, (p50, p99))| [(format!("{name} p50"), p50), (format!("{name} p99"), p99)])
        .collect();
    let body = html! {
        @if !database_ok {
            (problem("The database did not answer: the queue figures and the event chart are missing."))
        }
        section.cards {
            div.card #card-instances {
                h2 { "Provider instances" }
                p.figure { (running) " of " (instances.len()) " running" }
                ul.plain {
                    @for i in &instances {
                        li { a href="/console/plugins" { (i.name) } " " (state_badge(&i.state)) }
                    }
                }
            }
            div.card #card-inbox {
                h2 { "Webhook inbox" }
                p.figure { (inbox.pending) " pending" }
                p { a href="/console/inbox?status=failed" { (inbox.failed) " failed" }
                    " · oldest pending " (age(inbox.oldest_pending)) " s" }
            }
            div.card #card-outbox {
                h2 { "Outbox" }
                p.figure { (outbox.pending) " pending" }
                p { a href="/console/outbox?status=failed" { (outbox.failed) " failed" }
                    " · oldest pending " (age(outbox.oldest_pending)) " s" }
            }
        }
        section.charts {
            (chart::lines("chart-events", "Events per minute", "events", &[
                Line { name: "events recorded".into(), values: &events },
                Line { name: "failure events (…failed)".into(), values: &failure_events },
                Line { name: "failed provider calls (this host)".into(), values: &history.failures },
            ]))
            (chart::lines("chart-backlog", "Webhook backlog", "pending inbox rows, sampled by this host", &[
                Line { name: "pending".into(), values: &history.backlog },
            ]))
            (chart::lines("chart-latency", "Provider call latency (this host)", "ms", &latency
                .iter()
                .map(|(name, values)| Line { name: name.clone(), values })
                .collect::<Vec<_>>()))
        }
        p.hint { "The charts cover the last 60 minutes. Latency percentiles are within about 10%. "
            label { input #live type="checkbox"; " refresh every 10 s" } }
    };
    v.page("Overview", "overview", body)
}

// ---------------------------------------------------------------------------------------
// Plugins

pub async fn plugins(State(s): State<AppState>, v: View) -> Page {
    let plugins = s.registry.plugin_rows();
    let instances = s.registry.instance_rows();
    let mut timeline: Vec<_> = s
        .registry
        .dispatcher()
        .recent_lifecycle()
        .into_iter()
        .filter_map(|st| match st.event {
            Event::Lifecycle(e) => Some((st.seq, st.at_millis, e)),
            Event::Domain(_) => None,
        })
        .collect();
    timeline.sort_by_key(|t| std::cmp::Reverse(t.0));
    let body = html! {
        section {
            div.toolbar {
                p { "Plugins folder: " code { (s.config.plugin_dir.display()) } }
                (button(&v, "/console/plugins/rescan", "rescan", "Rescan the folder", None))
            }
            table #plugins {
                thead { tr { th { "Plugin" } th { "Version" } th { "Contract" } th { "Type" }
                    th { "Capabilities" } th { "File" } th { "Trust" } th { "State" } th { "Instances" } th {} } }
                tbody {
                    @for p in &plugins {
                        @let name = p.name.clone().unwrap_or_default();
                        tr id=(format!("plugin-{name}")) {
                            td { (name) }
                            td { (p.version.as_deref().unwrap_or("—")) }
                            td { (p.contract.as_deref().unwrap_or("—")) }
                            td { (p.plugin_type.as_deref().unwrap_or("—")) }
                            td.caps { (p.capabilities.join(", ")) }
                            td { code { (p.file) } }
                            td.trust title=(p.sha256.as_deref().map(|h| format!("sha256 {h}")).unwrap_or_default()) {
                                (trust_badge(p.trust.as_deref())) }
                            td { (state_badge(p.state.split(':').next().unwrap_or(""))) @if p.state.starts_with("error") { " " span.detail { (p.state) } } }
                            td { (p.instances.join(", ")) }
                            td.actions {
                                @if !name.is_empty() {
                                    (button(&v, &format!("/console/plugins/{name}/stop"), &format!("stop-{name}"), "Stop", None))
                                    (button(&v, &format!("/console/plugins/{name}/reload"), &format!("reload-{name}"), "Reload", None))
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Instances" }
            table #instances {
                thead { tr { th { "Instance" } th { "Plugin" } th { "Version" } th { "Contract" } th { "Capabilities" } th { "State" } } }
                tbody {
                    @for i in &instances {
                        tr id=(format!("instance-{}", i.name)) {
                            td { (i.name) }
                            td { (i.plugin) }
                            td { (i.version.as_deref().unwrap_or("—")) }
                            td { (i.contract.as_deref().unwrap_or("—")) }
                            td.caps { (i.capabilities.join(", ")) }
                            td { (state_badge(i.state.split(':').next().unwrap_or(""))) @if i.state.starts_with("error") { " " span.detail { (i.state) } } }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Lifecycle" }
            ol #timeline .timeline {
                @for (seq, at_millis, e) in &timeline {
                    @let value = serde_json::to_value(e).unwrap_or_default();
                    li data-seq=(seq) {
                        (when(at_millis / 1000)) " "
                        strong.kind { (value["type"].as_str().unwrap_or("")) } " "
                        span.name { (value["name"].as_str().unwrap_or("")) }
                        @if let Some(fields) = value.as_object() {
                            @for (k, f) in fields.iter().filter(|(k, _)| *k != "type" && *k != "name") {
                                " " span.field { (k) ": " (f.as_str().map_or_else(|| f.to_string(), str::to_owned)) }
                            }
                        }
                    }
                }
            }
        }
    };
    v.page("Plugins and instances", "plugins", body)
}

// ---------------------------------------------------------------------------------------
// Queues

/// Drops empty query values (an empty filter field means "any").
fn given(q: &HashMap<String, String>, key: &str) -> Option<String> {
    q.get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn status_select(id: &str, current: Option<&str>, choices: &[&str]) -> Markup {
    html! {
        select #(id) name="status" {
            option value="" { "any status" }
            @for c in choices {
                option value=(c) selected[current == Some(*c)] { (c) }
            }
        }
    }
}

pub async fn inbox(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let status =
        given(&q, "status").filter(|s| ["pending", "processed", "failed"].contains(&s.as_str()));
    let provider = given(&q, "provider");
    let rows = match s
        .service
        .store()
        .inbox_recent(status.as_deref(), provider.as_deref(), QUEUE_ROWS)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return db_failed(&v, "Webhook inbox", "inbox", e),
    };
    let back = format!(
        "/console/inbox?status={}&provider={}",
        status.as_deref().unwrap_or(""),
        provider.as_deref().unwrap_or("")
    );
    let instances = s.registry.instance_rows();
    let body = html! {
        form.filters method="get" action="/console/inbox" {
            (status_select("inbox-status", status.as_deref(), &["pending", "processed", "failed"]))
            select #inbox-provider name="provider" {
                option value="" { "any provider" }
                @for i in &instances {
                    option value=(i.name) selected[provider.as_deref() == Some(i.name.as_str())] { (i.name) }
                }
            }
            button #filter type="submit" { "Filter" }
        }
        p.hint { "The newest " (QUEUE_ROWS) " stored deliveries. Replaying a processed one records nothing twice." }
        table #inbox {
            thead { tr { th { "Received" } th { "Provider" } th { "Event" } th { "Type" } th { "Status" } th { "Attempts" } th { "Last error" } th {} } }
            tbody {
                @for r in &rows {
                    tr id=(format!("inbox-{}", r.id)) {
                        td { (when(r.received_at)) }
                        td { (r.provider) }
                        td { a href=(format!("/console/inbox/{}", r.id)) { (r.event_id) } }
                        td { (r.event_type) }
                        td { (state_badge(&r.status)) }
                        td.num { (r.attempts) }
                        td.error { (r.last_error.as_deref().unwrap_or("")) }
                        td.actions { (button(&v, &format!("/console/inbox/{}/replay", r.id), &format!("replay-{}", r.id), "Replay", Some(&back))) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.empty { "No stored webhook matches." } }
    };
    v.page("Webhook inbox", "inbox", body)
}

pub async fn inbox_row(State(s): State<AppState>, v: View, Path(id): Path<String>) -> Page {
    let row = match s.service.store().inbox_row(&id).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return failed(
                &v,
                "Webhook",
                "inbox",
                ApiError::not_found("inbox", &format!("no stored webhook '{id}'")),
            )
        }
        Err(e) => return db_failed(&v, "Webhook", "inbox", e),
    };
    let back = format!("/console/inbox/{}", row.id);
    let body = html! {
        dl.fields {
            dt { "Inbox id" } dd { code { (row.id) } }
            dt { "Provider" } dd { (row.provider) }
            dt { "Event" } dd { code { (row.event_id) } " " (row.event_type) }
            dt { "Created by the provider" } dd { (when(row.created)) }
            dt { "Received" } dd { (when(row.received_at)) }
            dt { "Status" } dd #inbox-status { (state_badge(&row.status)) }
            dt { "Attempts" } dd { (row.attempts) }
            dt { "Last error" } dd { (row.last_error.as_deref().unwrap_or("—")) }
            dt { "Processed" } dd { (opt_when(row.processed_at)) }
            dt { "Claimed by host" } dd { (row.claimed_by.as_deref().unwrap_or("— (rows are claimed on PostgreSQL only)")) }
        }
        (button(&v, &format!("/console/inbox/{}/replay", row.id), "replay", "Replay", Some(&back)))
        h2 { "Payload" }
        p.hint { "Fields named like secrets, tokens or signatures are redacted." }
        pre #payload { (shown_payload(&row.payload)) }
    };
    v.page(&format!("Webhook {}", row.event_id), "inbox", body)
}

pub async fn outbox(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let status =
        given(&q, "status").filter(|s| ["pending", "done", "failed"].contains(&s.as_str()));
    let store = s.service.store();
    let (targets, rows) = tokio::join!(
        store.outbox_by_target(),
        store.outbox_recent(status.as_deref(), QUEUE_ROWS)
    );
    let (targets, rows) = match (targets, rows) {
        (Ok(t), Ok(r)) => (t, r),
        (Err(e), _) | (_, Err(e)) => return db_failed(&v, "Outbox", "outbox", e),
    };
    let back = format!("/console/outbox?status={}", status.as_deref().unwrap_or(""));
    let body = html! {
        h2 { "Not done yet, per target" }
        table #outbox-targets {
            thead { tr { th { "Handler" } th { "Target" } th { "Status" } th { "Rows" } } }
            tbody {
                @for t in &targets {
                    tr { td { (t.handler) } td { (if t.target.is_empty() { "—" } else { &t.target }) }
                         td { (state_badge(&t.status)) } td.num { (t.count) } }
                }
            }
        }
        @if targets.is_empty() { p.empty { "Nothing pending or failed." } }
        h2 { "Newest work" }
        form.filters method="get" action="/console/outbox" {
            (status_select("outbox-status", status.as_deref(), &["pending", "done", "failed"]))
            button #filter type="submit" { "Filter" }
        }
        table #outbox {
            thead { tr { th { "Created" } th { "Handler" } th { "Target" } th { "Event" } th { "Status" } th { "Attempts" } th { "Last error" } th {} } }
            tbody {
                @for r in &rows {
                    tr id=(format!("outbox-{}", r.id)) {
                        td { (when(r.created_at)) }
                        td { (r.handler) }
                        td { (r.target) }
                        td { code { (r.event_id) } }
                        td { (state_badge(&r.status)) }
                        td.num { (r.attempts) }
                        td.error { (r.last_error.as_deref().unwrap_or("")) @if let Some(st) = r.last_status { " (HTTP " (st) ")" } }
                        td.actions {
                            @if r.status != "done" {
                                (button(&v, &format!("/console/outbox/{}/retry", r.id), &format!("retry-{}", r.id), "Retry now", Some(&back)))
                            }
                        }
                    }
                }
            }
        }
    };
    v.page("Outbox", "outbox", body)
}

// ---------------------------------------------------------------------------------------
// Records

/// The page and filters of a list from the query, parsed by the API's own types (so the
/// console refuses what the API refuses, with the same words).
fn list_query<F: DeserializeOwned>(
    q: &HashMap<String, String>,
    filters: &[&str],
) -> Result<(PageParams, F), ApiError> {
    let encode = |keys: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for k in keys {
            if let Some(v) = given(q, k) {
                out.append_pair(k, &v);
            }
        }
        out.finish()
    };
    let page_q = format!(
        "limit={ROWS}&{}",
        encode(&mut ["starting_after"].into_iter())
    );
    let page: PageParams = serde_urlencoded::from_str(&page_q)
        .map_err(|e| ApiError::invalid(Some("starting_after".into()), e.to_string()))?;
    let query = encode(&mut filters.iter().copied());
    let f: F = serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(
        form_urlencoded::parse(query.as_bytes()),
    ))
    .map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid(Some(field.clone()), format!("{field}: {}", e.inner()))
    })?;
    Ok((page, f))
}

/// A search by id: the record, or none.
fn found<V>(got: Result<Reply<V>, ServiceError>) -> Result<(Vec<V>, bool), ApiError> {
    match got {
        Ok(reply) => Ok((vec![reply.body], false)),
        Err(ServiceError::NotFound { .. }) => Ok((vec![], false)),
        Err(e) => Err(e.into()),
    }
}

/// A page of a list, and whether more follow.
fn listed<V>(l: Result<List<V>, ServiceError>) -> Result<(Vec<V>, bool), ApiError> {
    l.map(|l| (l.data, l.has_more)).map_err(ApiError::from)
}

fn text_filter(id: &str, name: &str, label: &str, q: &HashMap<String, String>) -> Markup {
    html! {
        label { (label) " "
            input id=(id) name=(name) value=(given(q, name).unwrap_or_default()) size="18";
        }
    }
}

fn next_page(
    path: &str,
    q: &HashMap<String, String>,
    last: Option<&str>,
    has_more: bool,
) -> Markup {
    let Some(last) = last.filter(|_| has_more) else {
        return html! {};
    };
    let mut url = form_urlencoded::Serializer::new(String::new());
    for (k, v) in q {
        if k != "starting_after" && !v.is_empty() {
            url.append_pair(k, v);
        }
    }
    url.append_pair("starting_after", last);
    html! { p.pager { a #next-page href=(format!("{path}?{}", url.finish())) { "Older →" } } }
}

/// One record and the events about it.
async fn record(
    s: &AppState,
    v: &View,
    title: String,
    nav: &'static str,
    id: &str,
    more: Markup,
    view: impl Serialize,
) -> Page {
    let events = s
        .service
        .store()
        .events_newest(None, Some(id), None, 50)
        .await
        .unwrap_or_default();
    let body = html! {
        pre #record { (json(&view)) }
        (more)
        h2 { "Events about it" }
        (events_table(&events))
    };
    v.page(&title, nav, body)
}

fn events_table(events: &[EventRow]) -> Markup {
    html! {
        table #events {
            thead { tr { th { "Seq" } th { "Created" } th { "Type" } th { "Provider" } th { "Object" } th { "Tenant" } th { "Event id" } } }
            tbody {
                @for e in events {
                    tr { td.num { (e.seq) } td { (when(e.created_at)) } td { (e.kind) } td { (e.provider) }
                         td { (object_link(e.object_id.as_deref())) } td { (e.tenant.as_deref().unwrap_or("—")) } td { code { (e.id) } } }
                }
            }
        }
        @if events.is_empty() { p.empty { "No events." } }
    }
}

fn object_link(id: Option<&str>) -> Markup {
    let Some(id) = id else { return html! { "—" } };
    let page = match id.split('_').next() {
        Some("pay") => "payments",
        Some("cus") => "customers",
        Some("sub") => "subscriptions",
        _ => return html! { code { (id) } },
    };
    html! { a href=(format!("/console/{page}/{id}")) { code { (id) } } }
}

pub async fn payments(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    const TITLE: &str = "Payments";
    let listed = match given(&q, "id") {
        Some(id) => found(s.service.get_payment(&v.ctx(), &id, false).await),
        None => match list_query::<PaymentFilters>(&q, &["customer", "status", "provider"]) {
            Ok((page, f)) => listed(s.service.list_payments(&v.ctx(), f, &page).await),
            Err(e) => Err(e),
        },
    };
    let (rows, has_more) = match listed {
        Ok(l) => l,
        Err(e) => return failed(&v, TITLE, "payments", e),
    };
    let body = html! {
        form.filters method="get" action="/console/payments" {
            (text_filter("search-id", "id", "Id", &q))
            (text_filter("search-customer", "customer", "Customer", &q))
            (text_filter("search-status", "status", "Status", &q))
            (text_filter("search-provider", "provider", "Provider", &q))
            button #search type="submit" { "Search" }
        }
        table #payments {
            thead { tr { th { "Payment" } th { "Customer" } th { "Amount" } th { "Status" } th { "Provider" } th { "Provider id" } th { "Created" } } }
            tbody {
                @for p in &rows {
                    tr id=(format!("payment-{}", p.id)) {
                        td { a href=(format!("/console/payments/{}", p.id)) { code { (p.id) } } }
                        td { (object_link(Some(&p.customer))) }
                        td.num { (money(p.amount, &p.currency)) }
                        td { (state_badge(&p.status)) }
                        td { (p.provider) }
                        td { code { (p.provider_id.as_deref().unwrap_or("in doubt")) } }
                        td { (when(p.created_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.empty { "No payment matches." } }
        (next_page("/console/payments", &q, rows.last().map(|p| p.id.as_str()), has_more))
    };
    v.page(TITLE, "payments", body)
}

pub async fn payment(State(s): State<AppState>, v: View, Path(id): Path<String>) -> Page {
    match s.service.get_payment(&v.ctx(), &id, false).await {
        Ok(r) => {
            let attempts = html! {
                h2 { "Attempts" }
                table #attempts {
                    thead { tr { th { "Attempt" } th { "Instance" } th { "State" } th { "Error" } th { "Asked again" } th { "At" } } }
                    tbody {
                        @for a in &r.body.attempts {
                            tr { td { code { (a.id) } } td { (a.provider) } td { (state_badge(&a.state)) }
                                 td { (a.error_message.as_deref().unwrap_or("—")) } td.num { (a.checks) } td { (when(a.created_at)) } }
                        }
                    }
                }
                @if r.body.attempts.is_empty() { p.empty { "Made before payhost recorded attempts." } }
            };
            record(
                &s,
                &v,
                format!("Payment {id}"),
                "payments",
                &id,
                attempts,
                r.body,
            )
            .await
        }
        Err(e) => failed(&v, "Payment", "payments", e.into()),
    }
}

pub async fn customers(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    const TITLE: &str = "Customers";
    let listed = match given(&q, "id") {
        Some(id) => found(s.service.get_customer(&v.ctx(), &id, false).await),
        None => match list_query::<CustomerFilters>(&q, &["email", "user_id", "provider"]) {
            Ok((page, f)) => listed(s.service.list_customers(&v.ctx(), f, &page).await),
            Err(e) => Err(e),
        },
    };
    let (rows, has_more) = match listed {
        Ok(l) => l,
        Err(e) => return failed(&v, TITLE, "customers", e),
    };
    let body = html! {
        form.filters method="get" action="/console/customers" {
            (text_filter("search-id", "id", "Id", &q))
            (text_filter("search-email", "email", "Email", &q))
            (text_filter("search-user", "user_id", "User id", &q))
            (text_filter("search-provider", "provider", "Provider", &q))
            button #search type="submit" { "Search" }
        }
        table #customers {
            thead { tr { th { "Customer" } th { "Email" } th { "Name" } th { "User id" } th { "Tenant" } th { "Provider" } th { "Created" } } }
            tbody {
                @for c in &rows {
                    tr id=(format!("customer-{}", c.id)) {
                        td { a href=(format!("/console/customers/{}", c.id)) { code { (c.id) } } }
                        td { (c.email) }
                        td { (c.name.as_deref().unwrap_or("—")) }
                        td { (c.user_id) }
                        td { (c.tenant.as_deref().unwrap_or("—")) }
                        td { (c.provider) }
                        td { (when(c.created_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.empty { "No customer matches." } }
        (next_page("/console/customers", &q, rows.last().map(|c| c.id.as_str()), has_more))
    };
    v.page(TITLE, "customers", body)
}

pub async fn customer(State(s): State<AppState>, v: View, Path(id): Path<String>) -> Page {
    match s.service.get_customer(&v.ctx(), &id, false).await {
        Ok(r) => {
            record(
                &s,
                &v,
                format!("Customer {id}"),
                "customers",
                &id,
                html! {},
                r.body,
            )
            .await
        }
        Err(e) => failed(&v, "Customer", "customers", e.into()),
    }
}

pub async fn subscriptions(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    const TITLE: &str = "Subscriptions";
    let listed = match given(&q, "id") {
        Some(id) => found(s.service.get_subscription(&v.ctx(), &id, false).await),
        None => match list_query::<SubscriptionFilters>(&q, &["customer", "status"]) {
            Ok((page, f)) => listed(s.service.list_subscriptions(&v.ctx(), f, &page).await),
            Err(e) => Err(e),
        },
    };
    let (rows, has_more) = match listed {
        Ok(l) => l,
        Err(e) => return failed(&v, TITLE, "subscriptions", e),
    };
    let body = html! {
        form.filters method="get" action="/console/subscriptions" {
            (text_filter("search-id", "id", "Id", &q))
            (text_filter("search-customer", "customer", "Customer", &q))
            (text_filter("search-status", "status", "Status", &q))
            button #search type="submit" { "Search" }
        }
        table #subscriptions {
            thead { tr { th { "Subscription" } th { "Customer" } th { "Price" } th { "Status" } th { "Period ends" } th { "Provider" } th { "Created" } } }
            tbody {
                @for x in &rows {
                    tr id=(format!("subscription-{}", x.id)) {
                        td { a href=(format!("/console/subscriptions/{}", x.id)) { code { (x.id) } } }
                        td { (object_link(Some(&x.customer))) }
                        td { (x.price) }
                        td { (state_badge(&x.status)) @if x.cancel_at_period_end { " (cancels at period end)" } }
                        td { (when(x.current_period_end)) }
                        td { (x.provider) }
                        td { (when(x.created_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.empty { "No subscription matches." } }
        (next_page("/console/subscriptions", &q, rows.last().map(|x| x.id.as_str()), has_more))
    };
    v.page(TITLE, "subscriptions", body)
}

pub async fn subscription(State(s): State<AppState>, v: View, Path(id): Path<String>) -> Page {
    match s.service.get_subscription(&v.ctx(), &id, false).await {
        Ok(r) => {
            record(
                &s,
                &v,
                format!("Subscription {id}"),
                "subscriptions",
                &id,
                html! {},
                r.body,
            )
            .await
        }
        Err(e) => failed(&v, "Subscription", "subscriptions", e.into()),
    }
}

/// The `before` cursor of a page ordered by seq (`whose`: "an event's", "a row's"), or the
/// refusal of one that is not a number.
fn seq_before(q: &HashMap<String, String>, whose: &str) -> Result<Option<i64>, ApiError> {
    given(q, "before")
        .map(|b| b.parse::<i64>())
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                Some("before".into()),
                format!("before must be {whose} seq (a number)"),
            )
        })
}

pub async fn events(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let kind = given(&q, "type");
    let object = given(&q, "object_id");
    let before = match seq_before(&q, "an event's") {
        Ok(b) => b,
        Err(e) => return failed(&v, "Events", "events", e),
    };
    let rows = match s
        .service
        .store()
        .events_newest(
            kind.as_deref(),
            object.as_deref(),
            before,
            i64::from(ROWS) * 2,
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => return db_failed(&v, "Events", "events", e),
    };
    let older = rows
        .last()
        .filter(|_| rows.len() == ROWS as usize * 2)
        .map(|e| {
            let mut url = form_urlencoded::Serializer::new(String::new());
            if let Some(k) = &kind {
                url.append_pair("type", k);
            }
            if let Some(o) = &object {
                url.append_pair("object_id", o);
            }
            url.append_pair("before", &e.seq.to_string());
            format!("/console/events?{}", url.finish())
        });
    let body = html! {
        form.filters method="get" action="/console/events" {
            (text_filter("search-type", "type", "Type", &q))
            (text_filter("search-object", "object_id", "Object id", &q))
            button #search type="submit" { "Filter" }
        }
        p.hint { "Newest first, every tenant." }
        (events_table(&rows))
        @if let Some(href) = older { p.pager { a #next-page href=(href) { "Older →" } } }
    };
    v.page("Events", "events", body)
}

/// The audit trail, newest first, filtered by actor and action.
pub async fn audit(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let before = match seq_before(&q, "a row's") {
        Ok(b) => b,
        Err(e) => return failed(&v, "Audit", "audit", e),
    };
    let filter = crate::store::audit::AuditQuery {
        actor: given(&q, "actor"),
        action: given(&q, "action"),
        ..Default::default()
    };
    let page = i64::from(ROWS) * 2;
    let rows = match s.service.store().audit_newest(&filter, before, page).await {
        Ok(rows) => rows,
        Err(e) => return db_failed(&v, "Audit", "audit", e),
    };
    let older = rows.last().filter(|_| rows.len() as i64 == page).map(|r| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if let Some(a) = &filter.actor {
            url.append_pair("actor", a);
        }
        if let Some(a) = &filter.action {
            url.append_pair("action", a);
        }
        url.append_pair("before", &r.seq.to_string());
        format!("/console/audit?{}", url.finish())
    });
    let body = html! {
        form.filters method="get" action="/console/audit" {
            (text_filter("search-actor", "actor", "Actor", &q))
            (text_filter("search-action", "action", "Action", &q))
            button #search type="submit" { "Filter" }
        }
        p.hint { "Every operator action and failed sign-in, newest first. Each row is chained to the one before it: " code { "payhost audit verify" } " names a row altered or removed." }
        table #audit {
            thead { tr { th { "Seq" } th { "At" } th { "Actor" } th { "Source" } th { "Action" } th { "Target" } th { "Outcome" } th { "Request" } } }
            tbody {
                @for r in &rows {
                    tr { td.num { (r.seq) } td { (when(r.at_millis / 1000)) } td { (r.actor) } td { (r.source) }
                         td { code { (r.action) } } td { (r.target) } td { (r.outcome) } td { code { (r.request_id) } } }
                }
            }
        }
        @if rows.is_empty() { p.empty { "Nothing recorded." } }
        @if let Some(href) = older { p.pager { a #next-page href=(href) { "Older →" } } }
    };
    v.page("Audit", "audit", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_show_no_secrets() {
        let shown = shown_payload(
            r#"{"id":"evt_1","data":{"object":{"client_secret":"pi_1_secret_x","amount":5,
               "nested":[{"access_token":"t"}],"Authorization":"Bearer k"}}}"#,
        );
        assert!(!shown.contains("pi_1_secret_x"), "{shown}");
        assert!(!shown.contains("\"t\""), "{shown}");
        assert!(!shown.contains("Bearer k"), "{shown}");
        assert!(shown.contains("\"amount\": 5"), "{shown}");
        assert!(shown.contains("[redacted]"));
        let raw = shown_payload("token=abc");
        assert!(!raw.contains("abc") && raw.contains("9 bytes"), "{raw}");
    }

    #[test]
    fn series_place_minutes_by_age() {
        let now = 1_000 * 60 + 30;
        let s = series_of(now, [(1_000, 4.0), (999, 2.0), (900, 9.0)].into_iter());
        assert_eq!(s[MINUTES - 1], Some(4.0));
        assert_eq!(s[MINUTES - 2], Some(2.0));
        assert!(!s.contains(&Some(9.0)), "older than an hour");
    }
}
