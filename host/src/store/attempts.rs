//! Payment attempts: each provider call that creates a payment, written before the call
//! and settled with its outcome; the work list of the resolver.

use super::{Arg, Row, RowExt, Store, StoreError, Unit};

const COLS: &str = "id, payment_id, seq, tenant, instance, provider_key, idem_scope, idem_key, \
    state, error_code, error_message, request, checks, next_check_at, created_at, updated_at";

/// An attempt as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: String,
    pub payment_id: String,
    /// 1 for the first instance tried, 2 for the next...
    pub seq: i64,
    pub tenant: String,
    pub instance: String,
    pub provider_key: String,
    pub idem_scope: Option<String>,
    pub idem_key: Option<String>,
    /// `started`, `answered`, `soft_declined`, `not_sent`, `refused`, `in_doubt`,
    /// `resolved`, `not_charged` (see `service::attempts::State`).
    pub state: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// JSON: what the resolver sends again; `{}` once settled.
    pub request: String,
    pub checks: i64,
    /// Unix seconds of the resolver's next ask (in doubt only).
    pub next_check_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AttemptRow {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            payment_id: r.text("payment_id")?,
            seq: r.int("seq")?,
            tenant: r.text("tenant")?,
            instance: r.text("instance")?,
            provider_key: r.text("provider_key")?,
            idem_scope: r.opt_text("idem_scope")?,
            idem_key: r.opt_text("idem_key")?,
            state: r.text("state")?,
            error_code: r.opt_text("error_code")?,
            error_message: r.opt_text("error_message")?,
            request: r.text("request")?,
            checks: r.int("checks")?,
            next_check_at: r.opt_int("next_check_at")?,
            created_at: r.int("created_at")?,
            updated_at: r.int("updated_at")?,
        })
    }
}

/// A new attempt, before its call is made.
pub fn insert_attempt(unit: &mut Unit, a: &AttemptRow) {
    unit.push(
        "INSERT INTO payment_attempts (id, payment_id, seq, tenant, instance, provider_key, \
         idem_scope, idem_key, state, error_code, error_message, request, checks, next_check_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16)",
        vec![
            a.id.clone().into(),
            a.payment_id.clone().into(),
            a.seq.into(),
            a.tenant.clone().into(),
            a.instance.clone().into(),
            a.provider_key.clone().into(),
            Arg::from(a.idem_scope.clone()),
            Arg::from(a.idem_key.clone()),
            a.state.clone().into(),
            Arg::from(a.error_code.clone()),
            Arg::from(a.error_message.clone()),
            a.request.clone().into(),
            a.checks.into(),
            Arg::from(a.next_check_at),
            a.created_at.into(),
            a.updated_at.into(),
        ],
    );
}

/// An attempt's new state (its request kept only while the resolver may still send it).
pub fn update_attempt(unit: &mut Unit, a: &AttemptRow) {
    unit.push(
        "UPDATE payment_attempts SET state = $2, error_code = $3, error_message = $4, \
         request = $5, checks = $6, next_check_at = $7, updated_at = $8 WHERE id = $1",
        vec![
            a.id.clone().into(),
            a.state.clone().into(),
            Arg::from(a.error_code.clone()),
            Arg::from(a.error_message.clone()),
            a.request.clone().into(),
            a.checks.into(),
            Arg::from(a.next_check_at),
            a.updated_at.into(),
        ],
    );
}

impl Store {
    /// The newest attempt of a payment.
    pub async fn last_attempt(&self, payment_id: &str) -> Result<Option<AttemptRow>, StoreError> {
        let row = self
            .one(
                &format!(
                    "SELECT {COLS} FROM payment_attempts WHERE payment_id = $1 \
                     ORDER BY seq DESC LIMIT 1"
                ),
                vec![payment_id.into()],
            )
            .await?;
        row.as_ref().map(AttemptRow::from_row).transpose()
    }

    /// Every attempt of a payment, in order.
    pub async fn attempts_of(&self, payment_id: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = self
            .all(
                &format!("SELECT {COLS} FROM payment_attempts WHERE payment_id = $1 ORDER BY seq"),
                vec![payment_id.into()],
            )
            .await?;
        rows.iter().map(AttemptRow::from_row).collect()
    }

    /// Attempts whose outcome the resolver should ask about now: in doubt and due, or
    /// started before `started_before` and never settled (their host died mid-call).
    pub async fn due_attempts(
        &self,
        now: i64,
        started_before: i64,
        limit: i64,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = self
            .all(
                &format!(
                    "SELECT {COLS} FROM payment_attempts WHERE \
                     (state = 'in_doubt' AND next_check_at <= $1) \
                     OR (state = 'started' AND created_at < $2) \
                     ORDER BY created_at LIMIT $3"
                ),
                vec![now.into(), started_before.into(), limit.into()],
            )
            .await?;
        rows.iter().map(AttemptRow::from_row).collect()
    }

    /// How many attempts' outcome is not known yet (running calls included).
    pub async fn count_open_attempts(&self) -> Result<i64, StoreError> {
        let rows = self
            .all(
                "SELECT COUNT(*) AS n FROM payment_attempts WHERE state IN ('in_doubt', 'started')",
                Vec::new(),
            )
            .await?;
        rows.first().map_or(Ok(0), |r| r.int("n"))
    }

    /// The attempts whose outcome is not known yet, oldest first (for operators).
    pub async fn open_attempts(&self, limit: i64) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = self
            .all(
                &format!(
                    "SELECT {COLS} FROM payment_attempts WHERE state IN ('in_doubt', 'started') \
                     ORDER BY created_at LIMIT $1"
                ),
                vec![limit.into()],
            )
            .await?;
        rows.iter().map(AttemptRow::from_row).collect()
    }
}
