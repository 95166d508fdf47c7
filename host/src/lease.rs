//! Leases: one host at a time does each piece of shared work — an outbox lane (so an
//! application endpoint gets its deliveries in order, and each email goes once), the
//! dunning retries (each retry charged once), the webhook inbox on SQLite — when several
//! hosts share one database (on PostgreSQL the inbox's rows are claimed one by one). The
//! holder renews its lease as it works; a host that dies stops renewing, and another takes
//! the work over once the lease expires. Leases run on the system clock
//! whatever clock the host's domain uses: they are about hosts being alive.

use crate::clock::{Clock, SystemClock};
use crate::locks::Locked;
use crate::store::{Store, StoreError};
use std::time::Duration;

/// How long a lease lasts unless renewed: longer than any one step of leased work (an
/// endpoint's delivery times out after 5 s, a plugin call after its deadline).
pub const TTL: Duration = Duration::from_secs(15);

pub struct Leases {
    store: Store,
    owner: String,
    ttl_ms: i64,
    /// The leases this host holds, with when each was last renewed (renewed again only
    /// once a third of its life has passed), to give up at shutdown.
    taken: std::sync::Mutex<std::collections::BTreeMap<String, std::time::Instant>>,
}

impl Leases {
    pub fn new(store: Store) -> Self {
        let owner = crate::service::new_id("host");
        tracing::info!(owner = %owner, "this host's lease owner id");
        Self {
            store,
            owner,
            ttl_ms: i64::try_from(TTL.as_millis()).unwrap_or(15_000),
            taken: std::sync::Mutex::default(),
        }
    }

    /// This host's id in leases and claims.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes or renews the lease `name`: true while this host holds it. A lease renewed
    /// less than a third of its life ago is still held for two thirds of it: no round trip.
    ///
    /// # Errors
    /// The database is away or failed.
    pub async fn hold(&self, name: &str) -> Result<bool, StoreError> {
        let fresh = self
            .taken
            .locked()
            .get(name)
            .is_some_and(|at| at.elapsed() < TTL / 3);
        if fresh {
            return Ok(true);
        }
        let asked = std::time::Instant::now();
        let now = SystemClock.now_millis();
        let held = self
            .store
            .hold_lease(name, &self.owner, now, now + self.ttl_ms)
            .await?;
        let mut taken = self.taken.locked();
        if held {
            taken.insert(name.to_owned(), asked);
        } else {
            taken.remove(name);
        }
        Ok(held)
    }

    /// Gives every lease this host took up (at shutdown), so other hosts take the work
    /// over at once instead of after the leases expire.
    pub async fn release_all(&self) {
        let names = std::mem::take(&mut *self.taken.locked());
        for name in names.into_keys() {
            if let Err(e) = self.store.release_lease(&name, &self.owner).await {
                tracing::warn!(lease = %name, error = %e, "cannot release a lease");
            }
        }
    }
}
