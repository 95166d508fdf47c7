//! The console's pages: maud templates (escaped by default) over the registry, the queues
//! and the list endpoints' service calls. The layout, the sign-in page and the helpers the
//! pages share are here; the pages, by group, in `host` (overview, plugins), `queues`
//! (inbox, outbox), `records` (payments, customers, subscriptions) and `log` (events,
//! audit).

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

mod host;
mod log;
mod queues;
mod records;

pub use host::{overview, plugins};
pub use log::{audit, events};
pub use queues::{inbox, inbox_row, outbox};
pub use records::{customer, customers, payment, payments, subscription, subscriptions};

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
// Shared by the pages (each page is in the file of its group: host, queues, records, log)

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
