//! Stored answers to POSTs that carried an `Idempotency-Key`, per caller scope: the same key
//! and request replays the answer; the same key with another request is refused.

use super::{Arg, RowExt, Store, StoreError, Unit};

/// What a request found when it claimed its key.
#[derive(Debug)]
pub enum Claim {
    /// The request is the key's first (or the first one's claim lapsed): it runs.
    Claimed,
    /// The first request is still running (on this host or another).
    InFlight,
    /// The first request's answer.
    Answered(StoredReply),
}

/// The answer stored under a key, with the hash of the request that produced it.
#[derive(Debug, Clone)]
pub struct StoredReply {
    pub request_hash: String,
    pub status: u16,
    /// The JSON body as it was answered.
    pub body: String,
}

impl Store {
    /// The answer stored under (`scope`, `key`).
    pub async fn stored_reply(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<StoredReply>, StoreError> {
        let row = self
            .one(
                "SELECT request_hash, status, response FROM idempotency_keys \
                 WHERE scope = $1 AND idem_key = $2",
                vec![scope.into(), key.into()],
            )
            .await?;
        row.map(|r| {
            Ok(StoredReply {
                request_hash: r.text("request_hash")?,
                status: u16::try_from(r.int("status")?).unwrap_or(200),
                body: r.text("response")?,
            })
        })
        .transpose()
    }
}

impl Store {
    /// Claims (`scope`, `key`) for a request in the database, where every host sees it:
    /// a new key, or one whose first request's claim lapsed at `now_ms` (its host died),
    /// is claimed until `until_ms`.
    ///
    /// # Errors
    /// A database failure (nothing claimed).
    pub async fn claim_key(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        (now, now_ms): (i64, i64),
        until_ms: i64,
    ) -> Result<Claim, StoreError> {
        let mut unit = Unit::new();
        unit.push(
            "INSERT INTO idempotency_keys \
             (scope, idem_key, request_hash, status, response, created_at, locked_until) \
             VALUES ($1, $2, $3, 0, '', $4, $5) ON CONFLICT (scope, idem_key) DO UPDATE \
             SET request_hash = excluded.request_hash, created_at = excluded.created_at, \
             locked_until = excluded.locked_until \
             WHERE idempotency_keys.status = 0 AND idempotency_keys.locked_until < $6",
            vec![
                scope.into(),
                key.into(),
                request_hash.into(),
                now.into(),
                until_ms.into(),
                Arg::from(now_ms),
            ],
        );
        if self.commit(unit).await?.first().copied().unwrap_or(0) == 1 {
            return Ok(Claim::Claimed);
        }
        Ok(match self.stored_reply(scope, key).await? {
            Some(r) if r.status != 0 => Claim::Answered(r),
            // Running, or given up an instant ago: the client retries.
            _ => Claim::InFlight,
        })
    }

    /// Ends a claim the request did not answer through [`store_reply`]: stores `reply`, or
    /// with `None` (the request failed) gives the key up for a retry.
    ///
    /// # Errors
    /// A database failure (the claim then lapses on its own).
    pub async fn settle_key(
        &self,
        scope: &str,
        key: &str,
        reply: Option<&StoredReply>,
    ) -> Result<(), StoreError> {
        let mut unit = Unit::new();
        match reply {
            Some(r) => unit.push(
                "UPDATE idempotency_keys SET status = $3, response = $4, locked_until = NULL \
                 WHERE scope = $1 AND idem_key = $2 AND status = 0",
                vec![
                    scope.into(),
                    key.into(),
                    i64::from(r.status).into(),
                    r.body.clone().into(),
                ],
            ),
            None => unit.push(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND status = 0",
                vec![scope.into(), key.into()],
            ),
        };
        self.commit(unit).await.map(|_| ())
    }
}

/// Stores an answer, in the unit that writes what the request did (over the request's
/// claim, when it has one in the database).
pub fn store_reply(unit: &mut Unit, scope: &str, key: &str, reply: &StoredReply, now: i64) {
    unit.push(
        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, idem_key) DO UPDATE \
         SET status = excluded.status, response = excluded.response, locked_until = NULL",
        vec![
            scope.into(),
            key.into(),
            reply.request_hash.clone().into(),
            i64::from(reply.status).into(),
            reply.body.clone().into(),
            now.into(),
        ],
    );
}
