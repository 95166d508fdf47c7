//! Payment attempts: each provider call that creates a payment, written before the call
//! and settled with its outcome; the work list of the resolver.

use super::record::record;
use super::{Arg, RowExt, Store, StoreError, Unit};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

record! {
    /// An attempt as recorded.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AttemptRow in "payment_attempts";
    /// One provider call that created, or tried to create, a payment.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct AttemptView of |a| {
        api id: String,
        row payment_id: String,
        /// 1 for the first instance tried, 2 for the next...
        row seq: i64,
        row tenant: String,
        /// The provider instance called.
        api instance as provider: String,
        row provider_key: String,
        row idem_scope: Option<String>,
        row idem_key: Option<String>,
        /// `started` (the call is running), `answered`, `soft_declined` (a decline its
        /// provider's operator lists as soft: the next instance took it), `not_sent` (the
        /// provider could not have acted: the next instance took it), `refused` (the provider
        /// refused the request: the caller got the error), `in_doubt` (no answer: payhost asks
        /// the same instance again with the same idempotency key until it knows), `resolved`
        /// (was in doubt; the answer is known), `not_charged` (was in doubt; the provider said
        /// nothing was done).
        api state: String,
        api error_code: Option<String>,
        api error_message: Option<String>,
        /// JSON: what the resolver sends again; `{}` once settled.
        row request: String,
        /// How often payhost asked the instance again while in doubt.
        api checks: i64,
        /// Unix seconds of the next ask, while in doubt.
        api next_check_at: Option<i64>,
        api created_at: i64,
        api updated_at: i64,
    }
}

/// A new attempt, before its call is made.
pub fn insert_attempt(unit: &mut Unit, a: &AttemptRow) {
    super::record::insert(unit, a);
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
        self.record(
            "payment_id = $1 ORDER BY seq DESC LIMIT 1",
            vec![payment_id.into()],
        )
        .await
    }

    /// Every attempt of a payment, in order.
    pub async fn attempts_of(&self, payment_id: &str) -> Result<Vec<AttemptRow>, StoreError> {
        self.records("payment_id = $1", "ORDER BY seq", vec![payment_id.into()])
            .await
    }

    /// Attempts whose outcome the resolver should ask about now: in doubt and due, or
    /// started before `started_before` and never settled (their host died mid-call).
    pub async fn due_attempts(
        &self,
        now: i64,
        started_before: i64,
        limit: i64,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        self.records(
            "(state = 'in_doubt' AND next_check_at <= $1) OR (state = 'started' AND created_at < $2)",
            "ORDER BY created_at LIMIT $3",
            vec![now.into(), started_before.into(), limit.into()],
        )
        .await
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
        self.records(
            "state IN ('in_doubt', 'started')",
            "ORDER BY created_at LIMIT $1",
            vec![limit.into()],
        )
        .await
    }
}
