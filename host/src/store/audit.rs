//! The audit trail's rows (see [`crate::audit`] for the chain they form).

use super::{Arg, Row, RowExt, Store, StoreError, Unit};

const COLS: &str =
    "seq, at_millis, actor, source, action, target, outcome, request_id, prev_hash, hash";

/// One row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub at_millis: i64,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            seq: r.int("seq")?,
            at_millis: r.int("at_millis")?,
            actor: r.text("actor")?,
            source: r.text("source")?,
            action: r.text("action")?,
            target: r.text("target")?,
            outcome: r.text("outcome")?,
            request_id: r.text("request_id")?,
            prev_hash: r.text("prev_hash")?,
            hash: r.text("hash")?,
        })
    }
}

/// The filters of `GET /admin/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since_millis: Option<i64>,
    pub until_millis: Option<i64>,
}

impl Store {
    /// The last row of the chain: its seq and hash.
    pub async fn audit_last(&self) -> Result<Option<(i64, String)>, StoreError> {
        let rows = self
            .all(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                vec![],
            )
            .await?;
        rows.first()
            .map(|r| Ok((r.int("seq")?, r.text("hash")?)))
            .transpose()
    }

    /// Appends `row` at its `seq`: false when that place is taken (another host appended
    /// first; read the last row again and retry).
    pub async fn audit_append(&self, row: &AuditRow) -> Result<bool, StoreError> {
        let mut unit = Unit::new();
        unit.push(
            "INSERT INTO audit_log (seq, at_millis, actor, source, action, target, outcome, \
             request_id, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (seq) DO NOTHING",
            vec![
                row.seq.into(),
                row.at_millis.into(),
                row.actor.as_str().into(),
                row.source.as_str().into(),
                row.action.as_str().into(),
                row.target.as_str().into(),
                row.outcome.as_str().into(),
                row.request_id.as_str().into(),
                row.prev_hash.as_str().into(),
                row.hash.as_str().into(),
            ],
        );
        Ok(self.commit(unit).await?.first().copied().unwrap_or(0) == 1)
    }

    /// Rows newest first, before `before_seq`, matching `q`: `limit` of them.
    pub async fn audit_newest(
        &self,
        q: &AuditQuery,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.all(
            &format!(
                "SELECT {COLS} FROM audit_log WHERE ($1 IS NULL OR actor = $1) \
                 AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR at_millis >= $3) \
                 AND ($4 IS NULL OR at_millis <= $4) AND ($5 IS NULL OR seq < $5) \
                 ORDER BY seq DESC LIMIT $6"
            ),
            vec![
                Arg::from(q.actor.as_deref()),
                Arg::from(q.action.as_deref()),
                Arg::from(q.since_millis),
                Arg::from(q.until_millis),
                Arg::from(before_seq),
                limit.into(),
            ],
        )
        .await?
        .iter()
        .map(AuditRow::from_row)
        .collect()
    }

    /// Rows in chain order after `after_seq` (all from the first when `None`): `limit`.
    pub async fn audit_walk(
        &self,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.all(
            &format!(
                "SELECT {COLS} FROM audit_log WHERE ($1 IS NULL OR seq > $1) \
                 ORDER BY seq LIMIT $2"
            ),
            vec![Arg::from(after_seq), limit.into()],
        )
        .await?
        .iter()
        .map(AuditRow::from_row)
        .collect()
    }

    /// The rows of the audit trail's own sweeps that say they removed everything through
    /// `seq` (how `audit verify` tells a swept start from a removed one).
    pub async fn audit_swept_through(&self, seq: i64) -> Result<bool, StoreError> {
        Ok(self
            .text(
                "SELECT target FROM audit_log WHERE action = 'audit.sweep' AND target = $1",
                vec![format!("through seq {seq}").into()],
            )
            .await?
            .is_some())
    }

    /// Deletes the rows up to `seq` (the audit trail's sweep, once recorded).
    pub async fn audit_delete_through(&self, seq: i64) -> Result<(), StoreError> {
        let mut unit = Unit::new();
        unit.push("DELETE FROM audit_log WHERE seq <= $1", vec![seq.into()]);
        self.commit(unit).await.map(|_| ())
    }
}
