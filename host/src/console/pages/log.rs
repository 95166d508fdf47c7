//! The console's logs: the domain event log and the audit trail, newest first.

use super::*;

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
