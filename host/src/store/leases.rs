//! Leases on shared work, in the database every host uses.

use super::{Arg, Store, StoreError, Unit};

impl Store {
    /// Takes or renews the lease `name` for `owner` until `until_ms`: true when `owner`
    /// holds it (it was free, expired at `now_ms`, or already `owner`'s).
    ///
    /// # Errors
    /// A database failure (then nobody new got the lease).
    pub async fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut unit = Unit::new();
        unit.push(
            "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
             expires_at = excluded.expires_at \
             WHERE leases.owner = excluded.owner OR leases.expires_at < $4",
            vec![
                name.into(),
                owner.into(),
                until_ms.into(),
                Arg::from(now_ms),
            ],
        );
        let changed = self.commit(unit).await?;
        Ok(changed.first().copied().unwrap_or(0) == 1)
    }

    /// Gives the lease up (at shutdown), so another host need not wait for it to expire.
    ///
    /// # Errors
    /// A database failure.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        let mut unit = Unit::new();
        unit.push(
            "DELETE FROM leases WHERE name = $1 AND owner = $2",
            vec![name.into(), owner.into()],
        );
        self.commit(unit).await.map(|_| ())
    }
}
