//! Deleting what payhost no longer needs, in bounded batches so a sweep never holds the
//! writer for long: stored idempotent answers past their lifetime, the payloads of
//! processed webhooks (the row stays, so a late redelivery is still a duplicate), outbox
//! rows done. Pending and failed rows are never touched.

use super::{Store, StoreError, Unit};

/// Rows changed per statement and batch.
const BATCH: i64 = 5_000;

/// Rows a sweep changed, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: u64,
    pub inbox_payloads: u64,
    pub outbox_rows: u64,
}

/// Unix seconds before which each kind goes.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub idempotency_before: i64,
    pub inbox_payload_before: i64,
    pub outbox_before: i64,
}

impl Store {
    /// Sweeps until nothing older than the cutoffs is left.
    ///
    /// # Errors
    /// A database failure; what was swept before it stays swept.
    pub async fn sweep(&self, cut: Cutoffs) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        loop {
            let mut unit = Unit::new();
            let keys = unit.push(
                "DELETE FROM idempotency_keys WHERE (scope, idem_key) IN \
                 (SELECT scope, idem_key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
                vec![cut.idempotency_before.into(), BATCH.into()],
            );
            let inbox = unit.push(
                "UPDATE webhook_inbox SET payload = '', fetched = NULL WHERE id IN (SELECT id FROM webhook_inbox \
                 WHERE status = 'processed' AND processed_at < $1 AND payload <> '' LIMIT $2)",
                vec![cut.inbox_payload_before.into(), BATCH.into()],
            );
            let outbox = unit.push(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                 WHERE status = 'done' AND done_at < $1 LIMIT $2)",
                vec![cut.outbox_before.into(), BATCH.into()],
            );
            let changed = self.commit(unit).await?;
            let n = |i: usize| changed.get(i).copied().unwrap_or(0);
            swept.idempotency_keys += n(keys);
            swept.inbox_payloads += n(inbox);
            swept.outbox_rows += n(outbox);
            if [keys, inbox, outbox]
                .iter()
                .all(|i| n(*i) < u64::try_from(BATCH).unwrap_or(u64::MAX))
            {
                return Ok(swept);
            }
        }
    }
}
