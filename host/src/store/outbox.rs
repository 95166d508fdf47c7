//! The outbox (the work each new event owes: emails, the application's webhooks, dunning)
//! and the dunning schedule, with the queue figures `/metrics` shows.

use super::events::EventRow;
use super::record::{record, Table};
use super::{Arg, RowExt, Store, StoreError, Unit};
use serde::Serialize;
use utoipa::ToSchema;

/// A queue of the outbox with a worker of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// One application endpoint's deliveries, strictly in event order.
    Webhook(String),
    /// Every email.
    Email,
    /// Putting failed payments on the dunning schedule.
    Dunning,
}

impl Lane {
    /// The name of the lease a host holds while it works this lane.
    pub fn lease(&self) -> String {
        match self {
            Lane::Webhook(target) => format!("outbox:webhook:{target}"),
            Lane::Email => "outbox:email".into(),
            Lane::Dunning => "outbox:dunning".into(),
        }
    }
}

/// A piece of work with its event.
#[derive(Debug, Clone)]
pub struct WorkRow {
    pub id: String,
    pub handler: String,
    pub target: String,
    pub attempts: i64,
    /// Unix milliseconds.
    pub next_attempt_at: i64,
    pub event: EventRow,
}

record! {
    /// A row of the outbox as the admin views show it.
    #[derive(Debug, Clone)]
    pub struct OutboxRow in "outbox";
    /// A piece of handler work (admin).
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct OutboxView of |o| {
        api id: String,
        api event_id: String,
        /// `receipt_email`, `failure_email`, `welcome_email`, `final_notice_email`,
        /// `dunning`, `webhook`.
        api handler: String,
        /// The webhook endpoint's name, for `webhook`.
        api target: String,
        /// `pending`, `done`, `failed`.
        api status: String,
        api attempts: i64,
        api last_error: Option<String>,
        api last_status: Option<i64>,
        /// Unix milliseconds.
        api next_attempt_at as next_attempt_at_ms: i64,
        api created_at: i64,
        api done_at: Option<i64>,
    }
}

/// A failed payment on the dunning schedule.
#[derive(Debug, Clone)]
pub struct DunningRow {
    pub payment_id: String,
    pub event_id: String,
    pub failed_at: i64,
    pub attempts: i64,
}

/// Pending and failed counts and the oldest pending item's time of a queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    pub pending: i64,
    pub failed: i64,
    /// Unix seconds, when something is pending.
    pub oldest_pending: Option<i64>,
}

impl Store {
    /// A lane's pending work (at most `limit` rows): an endpoint's deliveries in event
    /// order, due or not (the first that is not due holds the ones after it); emails and
    /// dunning schedules that are due, oldest first. Lanes never see each other's rows, so
    /// no lane's backlog hides another's work.
    pub async fn outbox_lane(
        &self,
        lane: &Lane,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<WorkRow>, StoreError> {
        const COLUMNS: &str = "SELECT o.id AS work_id, o.handler, o.target, o.attempts, \
             o.next_attempt_at, e.seq, e.id, e.type, e.tenant, e.provider, e.object_id, \
             e.provider_object_id, e.data, e.created_at FROM outbox o JOIN events e ON e.id = o.event_id ";
        let (sql, args) = match lane {
            Lane::Webhook(target) => (
                format!(
                    "{COLUMNS} WHERE o.status = 'pending' AND o.handler = 'webhook' \
                     AND o.target = $1 ORDER BY e.seq, o.id LIMIT $2"
                ),
                vec![target.into(), limit.into()],
            ),
            Lane::Email | Lane::Dunning => (
                format!(
                    "{COLUMNS} WHERE o.status = 'pending' AND o.handler {} \
                     AND o.next_attempt_at <= $1 ORDER BY o.next_attempt_at, o.id LIMIT $2",
                    if *lane == Lane::Email {
                        "NOT IN ('webhook', 'dunning')"
                    } else {
                        "= 'dunning'"
                    }
                ),
                vec![now_ms.into(), limit.into()],
            ),
        };
        self.all(&sql, args)
            .await?
            .iter()
            .map(|r| {
                Ok(WorkRow {
                    id: r.text("work_id")?,
                    handler: r.text("handler")?,
                    target: r.text("target")?,
                    attempts: r.int("attempts")?,
                    next_attempt_at: r.int("next_attempt_at")?,
                    event: EventRow::read(r)?,
                })
            })
            .collect()
    }

    /// The endpoints with deliveries pending (configured or not: a removed endpoint's rows
    /// still get a lane, which fails them in time).
    pub async fn outbox_webhook_targets(&self) -> Result<Vec<String>, StoreError> {
        self.all(
            "SELECT DISTINCT target FROM outbox WHERE status = 'pending' AND handler = 'webhook'",
            vec![],
        )
        .await?
        .iter()
        .map(|r| r.text("target"))
        .collect()
    }

    /// The newest rows, optionally of one status (the admin views).
    pub async fn outbox_recent(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.records(
            "$1 IS NULL OR status = $1",
            "ORDER BY created_at DESC, id LIMIT $2",
            vec![Arg::from(status), limit.into()],
        )
        .await
    }

    /// Work not done yet, counted per handler, target and status.
    pub async fn outbox_by_target(&self) -> Result<Vec<TargetCount>, StoreError> {
        self.all(
            "SELECT handler, target, status, CAST(COUNT(*) AS BIGINT) AS n FROM outbox \
             WHERE status <> 'done' GROUP BY handler, target, status \
             ORDER BY handler, target, status",
            vec![],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(TargetCount {
                handler: r.text("handler")?,
                target: r.text("target")?,
                status: r.text("status")?,
                count: r.int("n")?,
            })
        })
        .collect()
    }

    /// The email and name of the customer an event is about: the customer it names, else
    /// the one of the payment, subscription or invoice it is about.
    pub async fn recipient(
        &self,
        customer_id: Option<&str>,
        object_kind: &str,
        object_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let (sql, key) = match (customer_id, object_kind) {
            (Some(c), _) => ("SELECT email, name FROM customers WHERE id = $1", c),
            (None, "payment") => (
                "SELECT c.email, c.name FROM customers c JOIN payments p ON p.customer_id = c.id \
                 WHERE p.id = $1",
                object_id,
            ),
            (None, "subscription") => (
                "SELECT c.email, c.name FROM customers c \
                 JOIN subscriptions s ON s.customer_id = c.id WHERE s.id = $1",
                object_id,
            ),
            (None, _) => (
                "SELECT c.email, c.name FROM customers c JOIN invoices i ON i.customer_id = c.id \
                 WHERE i.id = $1",
                object_id,
            ),
        };
        let row = self.one(sql, vec![key.into()]).await?;
        row.map(|r| Ok((r.text("email")?, r.opt_text("name")?)))
            .transpose()
    }

    /// Dunning rows whose next attempt is due.
    pub async fn dunning_due(&self, now: i64, limit: i64) -> Result<Vec<DunningRow>, StoreError> {
        self.all(
            "SELECT payment_id, event_id, failed_at, attempts FROM dunning \
             WHERE status = 'scheduled' AND next_at <= $1 ORDER BY next_at LIMIT $2",
            vec![now.into(), limit.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(DunningRow {
                payment_id: r.text("payment_id")?,
                event_id: r.text("event_id")?,
                failed_at: r.int("failed_at")?,
                attempts: r.int("attempts")?,
            })
        })
        .collect()
    }

    /// The figures of the inbox (`inbox`) or the outbox (`outbox`).
    pub async fn queue_stats(&self, inbox: bool) -> Result<QueueStats, StoreError> {
        let sql = if inbox {
            "SELECT CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS pending, \
             CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
             MIN(CASE WHEN status = 'pending' THEN received_at END) AS oldest FROM webhook_inbox"
        } else {
            "SELECT CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS pending, \
             CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
             MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest FROM outbox"
        };
        // A scan of the whole queue: through the pool, not on the caller's thread.
        Ok(match self.all(sql, vec![]).await?.first() {
            Some(r) => QueueStats {
                pending: r.opt_int("pending")?.unwrap_or(0),
                failed: r.opt_int("failed")?.unwrap_or(0),
                oldest_pending: r.opt_int("oldest")?,
            },
            None => QueueStats::default(),
        })
    }
}

/// Outbox rows of one handler, target and status.
#[derive(Debug, Clone)]
pub struct TargetCount {
    pub handler: String,
    /// The webhook endpoint's name; empty for emails and dunning.
    pub target: String,
    pub status: String,
    pub count: i64,
}

/// Records how a piece of work went: `done`, or `pending` again at `next_ms`, or `failed`.
#[allow(clippy::too_many_arguments)]
pub fn finish_work(
    unit: &mut Unit,
    id: &str,
    status: &str,
    attempts: i64,
    error: Option<&str>,
    http_status: Option<u16>,
    next_ms: Option<i64>,
    now: i64,
) {
    unit.push(
        "UPDATE outbox SET status = $2, attempts = $3, last_error = $4, last_status = $5, \
         next_attempt_at = COALESCE($6, next_attempt_at), \
         done_at = CASE WHEN $2 = 'done' THEN $7 ELSE done_at END WHERE id = $1",
        vec![
            id.into(),
            status.into(),
            attempts.into(),
            Arg::from(error),
            Arg::from(http_status.map(i64::from)),
            Arg::from(next_ms),
            now.into(),
        ],
    );
}

/// Queues work that is pending or failed to run again now; work done is final.
pub fn retry_work(unit: &mut Unit, id: &str, now_ms: i64) -> usize {
    unit.push(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2 \
         WHERE id = $1 AND status <> 'done'",
        vec![id.into(), now_ms.into()],
    )
}

/// Work owed to an event outside the unit that recorded it (dunning's final notice).
pub fn add_work(
    unit: &mut Unit,
    id: &str,
    event_id: &str,
    handler: &str,
    (now, now_ms): (i64, i64),
) {
    unit.push(
        "INSERT INTO outbox (id, event_id, handler, target, status, attempts, next_attempt_at, \
         created_at) VALUES ($1, $2, $3, '', 'pending', 0, $4, $5) \
         ON CONFLICT (event_id, handler, target) DO NOTHING",
        vec![
            id.into(),
            event_id.into(),
            handler.into(),
            now_ms.into(),
            now.into(),
        ],
    );
}

/// Puts a failed payment on the dunning schedule (once).
pub fn schedule_dunning(unit: &mut Unit, payment_id: &str, event_id: &str, now: i64, next_at: i64) {
    unit.push(
        "INSERT INTO dunning (payment_id, event_id, failed_at, attempts, next_at, status, \
         updated_at) VALUES ($1, $2, $3, 0, $4, 'scheduled', $3) \
         ON CONFLICT (payment_id) DO NOTHING",
        vec![
            payment_id.into(),
            event_id.into(),
            now.into(),
            next_at.into(),
        ],
    );
}

/// Records a dunning attempt.
pub fn update_dunning(
    unit: &mut Unit,
    payment_id: &str,
    attempts: i64,
    status: &str,
    next_at: i64,
    error: Option<&str>,
    now: i64,
) {
    unit.push(
        "UPDATE dunning SET attempts = $2, status = $3, next_at = $4, last_error = $5, \
         updated_at = $6 WHERE payment_id = $1",
        vec![
            payment_id.into(),
            attempts.into(),
            status.into(),
            next_at.into(),
            Arg::from(error),
            now.into(),
        ],
    );
}
