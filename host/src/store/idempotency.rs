//! Stored answers to POSTs that carried an `Idempotency-Key`, per caller scope: the same key
//! and request replays the answer; the same key with another request is refused.

use super::{RowExt, Store, StoreError, Unit};

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

/// Stores an answer, in the unit that writes what the request did.
pub fn store_reply(unit: &mut Unit, scope: &str, key: &str, reply: &StoredReply, now: i64) {
    unit.push(
        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
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
