//! The console's queue pages: stored webhooks (inbox), one of them, and the outbox work.

use super::*;

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
