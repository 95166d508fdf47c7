//! The webhook inbox: every verified delivery, once per (provider, event id), committed
//! before the provider gets its 2xx; processed asynchronously, retried with backoff.

use super::record::{record, Table};
use super::{Arg, RowExt, Store, StoreError, Unit};
use serde::Serialize;
use utoipa::ToSchema;

record! {
    /// A stored delivery.
    #[derive(Debug, Clone)]
    pub struct InboxRow in "webhook_inbox";
    /// A stored webhook delivery (admin).
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct InboxView of |d| {
        api id: String,
        api provider: String,
        /// The provider's event id, or, for a thin event whose id repeats, the plugin's key
        /// for the change it tells (deliveries are stored once per key).
        api event_id: String,
        /// The provider's own id when `event_id` holds a plugin's key (thin events).
        row event_ref: Option<String>,
        #[api(serde(rename = "type"))]
        api event_type: String,
        row payload: String,
        /// What verification fetched for a thin event (JSON), handed to the mapping.
        row fetched: Option<String>,
        /// Unix seconds at which the provider created the event.
        row created: i64,
        /// `pending`, `processed`, `failed`.
        api status: String,
        api attempts: i64,
        api last_error: Option<String>,
        api received_at: i64,
        row next_attempt_at: i64,
        api processed_at: Option<i64>,
        /// The host that claimed it last (PostgreSQL; the one that processed it, once
        /// processed), by its lease owner id.
        row claimed_by: Option<String>,
    }
}

/// A verified delivery to store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub created: i64,
    pub received_at: i64,
    /// The provider's own id when `event_id` is a plugin's key for a thin event.
    pub event_ref: Option<String>,
    /// What verification fetched (thin events).
    pub fetched: Option<String>,
}

impl Store {
    /// Pending rows whose next attempt is due, oldest first.
    pub async fn inbox_due(&self, now: i64, limit: i64) -> Result<Vec<InboxRow>, StoreError> {
        self.records(
            "status = 'pending' AND next_attempt_at <= $1",
            "ORDER BY received_at, id LIMIT $2",
            vec![now.into(), limit.into()],
        )
        .await
    }

    /// Claims up to `limit` due rows until `until` (PostgreSQL: rows other hosts hold are
    /// skipped, not waited for), oldest first. A row claimed by a host that died comes back
    /// once its claim passes; one processed twice records nothing twice (facts are unique).
    pub async fn inbox_claim(
        &self,
        host: &str,
        now: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let mut rows = self
            .all(
                &format!(
                    "UPDATE webhook_inbox SET claimed_until = $2, claimed_by = $4 WHERE id IN (\
                     SELECT id FROM webhook_inbox WHERE status = 'pending' \
                     AND next_attempt_at <= $1 AND claimed_until <= $1 \
                     ORDER BY received_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING {}",
                    InboxRow::select()
                ),
                vec![now.into(), until.into(), limit.into(), host.into()],
            )
            .await?
            .iter()
            .map(InboxRow::read)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives no order.
        rows.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        Ok(rows)
    }

    /// The newest rows, optionally of one status and provider (the admin views).
    pub async fn inbox_recent(
        &self,
        status: Option<&str>,
        provider: Option<&str>,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        self.records(
            "($1 IS NULL OR status = $1) AND ($2 IS NULL OR provider = $2)",
            "ORDER BY received_at DESC, id LIMIT $3",
            vec![Arg::from(status), Arg::from(provider), limit.into()],
        )
        .await
    }

    /// Stored webhooks not processed yet (on the status index).
    pub async fn inbox_pending(&self) -> Result<i64, StoreError> {
        // A count over the backlog: through the pool, not on the caller's thread.
        let rows = self
            .all(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM webhook_inbox WHERE status = 'pending'",
                vec![],
            )
            .await?;
        rows.first().map_or(Ok(0), |r| r.int("n"))
    }

    /// The row `id`.
    pub async fn inbox_row(&self, id: &str) -> Result<Option<InboxRow>, StoreError> {
        self.record("id = $1", vec![id.into()]).await
    }
}

/// Stores a delivery unless its (provider, event id) is already in; the statement changed
/// no row for a duplicate.
pub fn insert_delivery(unit: &mut Unit, d: &NewDelivery) -> usize {
    unit.push(
        "INSERT INTO webhook_inbox (id, provider, event_id, event_type, payload, created, \
         received_at, status, attempts, next_attempt_at, event_ref, fetched) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7, $8, $9) \
         ON CONFLICT (provider, event_id) DO NOTHING",
        vec![
            d.id.clone().into(),
            d.provider.clone().into(),
            d.event_id.clone().into(),
            d.event_type.clone().into(),
            d.payload.clone().into(),
            d.created.into(),
            d.received_at.into(),
            Arg::from(d.event_ref.clone()),
            Arg::from(d.fetched.clone()),
        ],
    )
}

/// Marks a row processed (in the unit that applied it).
pub fn mark_processed(unit: &mut Unit, id: &str, now: i64) {
    unit.push(
        "UPDATE webhook_inbox SET status = 'processed', processed_at = $2, \
         attempts = attempts + 1, last_error = NULL WHERE id = $1 AND status = 'pending'",
        vec![id.into(), now.into()],
    );
}

/// Gives up this host's claim on a row it could not finish.
pub fn release_claim(unit: &mut Unit, id: &str) {
    unit.push(
        "UPDATE webhook_inbox SET claimed_until = 0 WHERE id = $1 AND status = 'pending'",
        vec![id.into()],
    );
}

/// Records a failed attempt: the next one at `next_at`, or `failed` for good.
pub fn mark_failed(
    unit: &mut Unit,
    id: &str,
    attempts: i64,
    status: &str,
    next_at: i64,
    error: &str,
) {
    unit.push(
        "UPDATE webhook_inbox SET attempts = $2, status = $3, next_attempt_at = $4, \
         last_error = $5, claimed_until = 0 WHERE id = $1",
        vec![
            id.into(),
            attempts.into(),
            status.into(),
            next_at.into(),
            error.into(),
        ],
    );
}

/// Queues a stored delivery (by inbox id or the provider's event id) for processing again.
pub fn replay_delivery(unit: &mut Unit, id_or_event_id: &str, now: i64) -> usize {
    unit.push(
        "UPDATE webhook_inbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
         last_error = NULL, claimed_until = 0 WHERE id = $1 OR event_id = $1",
        vec![id_or_event_id.into(), now.into()],
    )
}
