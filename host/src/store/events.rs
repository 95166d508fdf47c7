//! The domain event log: one row per fact, the last state of repeatable facts, and the
//! handler work a new event owes, written in the unit that records the event.

use super::json::EventData;
use super::page::{Filters, Listed, Order, Page};
use super::record::record;
use super::{Arg, RowExt, Store, StoreError, Unit};
use serde::Serialize;
use utoipa::ToSchema;

record! {
    /// A recorded event.
    #[derive(Debug, Clone)]
    pub struct EventRow in "events";
    /// A domain event: a fact about a record, recorded once.
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct EventView of |e| {
        api id: String,
        /// Always `event`.
        view object: &'static str = "event",
        /// Position in the log: events are listed in this order.
        api seq: i64,
        /// `PaymentSucceeded`, `RefundProcessed`, `DisputeOpened`, … (kinds a newer provider
        /// reports are kept as they came).
        #[api(serde(rename = "type"))]
        api kind in "type": String,
        api tenant: Option<String>,
        api provider: String,
        /// payhost's id of the object, when payhost holds it.
        api object_id: Option<String>,
        api provider_object_id: String,
        /// JSON object: the event's data.
        row data: String,
        view data: EventData = serde_json::from_str(&e.data).unwrap_or_default(),
        api created_at: i64,
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub kind: String,
    pub tenant: Option<String>,
    pub provider: String,
    pub object_id: Option<String>,
    pub provider_object_id: String,
    pub data: String,
    pub created_at: i64,
    /// (provider, kind, object) for facts that happen once per object; `None` for the
    /// repeatable ones, whose last state `stage_fact` keeps.
    pub fact_key: Option<String>,
}

/// The filters of the event log.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub tenant: Option<String>,
    pub kind: Option<String>,
    pub object_id: Option<String>,
    pub created_gte: Option<i64>,
    pub created_lte: Option<i64>,
}

impl Store {
    /// One page of the event log, oldest first.
    pub async fn events(
        &self,
        q: &EventQuery,
        page: &Page,
    ) -> Result<Listed<EventRow>, StoreError> {
        let filters = Filters::default()
            .eq("tenant", q.tenant.clone())
            .eq("type", q.kind.clone())
            .eq("object_id", q.object_id.clone())
            .cmp("created_at", ">=", q.created_gte)
            .cmp("created_at", "<=", q.created_lte);
        self.page_of(filters, Order::OldestFirst, page).await
    }
}

/// Events and failure events (types ending in `failed`) in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteCount {
    /// Unix minute (seconds / 60).
    pub minute: i64,
    pub events: i64,
    pub failures: i64,
}

impl Store {
    /// Events recorded per minute since `since` (unix seconds), on the time index.
    pub async fn events_per_minute(&self, since: i64) -> Result<Vec<MinuteCount>, StoreError> {
        self.all(
            "SELECT created_at / 60 AS minute, CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(SUM(CASE WHEN type LIKE '%failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed \
             FROM events WHERE created_at >= $1 GROUP BY created_at / 60",
            vec![since.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(MinuteCount {
                minute: r.int("minute")?,
                events: r.int("n")?,
                failures: r.opt_int("failed")?.unwrap_or(0),
            })
        })
        .collect()
    }

    /// The newest events before `before_seq`, newest first (the console's feed).
    pub async fn events_newest(
        &self,
        kind: Option<&str>,
        object_id: Option<&str>,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.records(
            "($1 IS NULL OR type = $1) AND ($2 IS NULL OR object_id = $2) \
             AND ($3 IS NULL OR seq < $3)",
            "ORDER BY seq DESC LIMIT $4",
            vec![
                Arg::from(kind),
                Arg::from(object_id),
                Arg::from(before_seq),
                limit.into(),
            ],
        )
        .await
    }
}

/// Keeps the last state of a repeatable fact; the statement changes a row only when the
/// state is new (the event staged next runs only then).
pub fn stage_fact(unit: &mut Unit, provider: &str, kind: &str, object_id: &str, state: &str) {
    unit.push(
        "INSERT INTO event_facts (provider, kind, object_id, state) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (provider, kind, object_id) DO UPDATE SET state = excluded.state \
         WHERE event_facts.state <> excluded.state",
        vec![provider.into(), kind.into(), object_id.into(), state.into()],
    );
}

/// The INSERT of an event whose tenant is `$3`, else the one `$tenant` finds.
macro_rules! insert_event {
    ($tenant:literal) => {
        concat!(
            "INSERT INTO events \
             (id, type, tenant, provider, object_id, provider_object_id, data, created_at, fact_key) \
             VALUES ($1, $2, COALESCE($3, ",
            $tenant,
            "), $4, $5, $6, $7, $8, $9) ON CONFLICT (fact_key) DO NOTHING"
        )
    };
}

/// The statement recording an event about `object_id` (a payhost id): one that takes the
/// tenant of the record it is about when the caller brought none, as for events born from
/// a provider's webhook. The record is written earlier in the same unit when the event
/// creates it.
fn insert_for(object_id: Option<&str>) -> &'static str {
    let prefix = object_id.and_then(|o| o.split_once('_')).map(|(p, _)| p);
    match prefix {
        Some("cust") => {
            insert_event!("(SELECT NULLIF(tenant, '') FROM customers WHERE id = $5)")
        }
        Some("pay") => insert_event!("(SELECT NULLIF(tenant, '') FROM payments WHERE id = $5)"),
        Some("subs") => {
            insert_event!("(SELECT NULLIF(tenant, '') FROM subscriptions WHERE id = $5)")
        }
        Some("rfnd") => insert_event!(
            "(SELECT NULLIF(p.tenant, '') FROM refunds r JOIN payments p ON p.id = r.payment_id \
             WHERE r.id = $5)"
        ),
        Some("inv") => insert_event!(
            "(SELECT NULLIF(c.tenant, '') FROM invoices i JOIN customers c \
             ON c.id = i.customer_id WHERE i.id = $5)"
        ),
        Some("pmeth") => insert_event!(
            "(SELECT NULLIF(c.tenant, '') FROM payment_methods m JOIN customers c \
             ON c.id = m.customer_id WHERE m.id = $5)"
        ),
        _ => insert_event!("NULL"),
    }
}

/// Records an event: once per `fact_key`, or — `after_fact` — only when the fact staged
/// just before changed. Returns the statement's index (its changed count tells whether
/// the event is new).
pub fn stage_event(unit: &mut Unit, e: &NewEvent, after_fact: bool) -> usize {
    let sql = insert_for(e.object_id.as_deref());
    let args = vec![
        e.id.clone().into(),
        e.kind.clone().into(),
        Arg::from(e.tenant.clone()),
        e.provider.clone().into(),
        Arg::from(e.object_id.clone()),
        e.provider_object_id.clone().into(),
        e.data.clone().into(),
        e.created_at.into(),
        Arg::from(e.fact_key.clone()),
    ];
    if after_fact {
        unit.push_if_changed(sql, args)
    } else {
        unit.push(sql, args)
    }
}

/// Handler work the event staged just before owes; written only when that event was new.
pub fn stage_work(
    unit: &mut Unit,
    id: &str,
    event_id: &str,
    handler: &str,
    target: &str,
    (now, now_ms): (i64, i64),
) {
    unit.push_if_changed(
        "INSERT INTO outbox (id, event_id, handler, target, status, attempts, next_attempt_at, \
         created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $6, $5)",
        vec![
            id.into(),
            event_id.into(),
            handler.into(),
            target.into(),
            now.into(),
            now_ms.into(),
        ],
    );
}
