//! The resolver: asks again about the payments whose outcome is unknown — an attempt left
//! `in_doubt` (no answer after its request left), or `started` by a host that died
//! mid-call — at the same instance, with the same provider idempotency key, on a growing
//! pause (`[routing.resolver] backoff_secs`), until it learns whether money moved. One host
//! at a time does it (a lease); a retry of the API request asks at once, on any host.

use crate::clock::Clock;
use crate::lease::Leases;
use crate::service::PaymentService;
use std::sync::Arc;
use std::time::Duration;

/// The lease of the host that resolves.
pub const LEASE: &str = "resolver";
/// Attempts asked about per round.
const ROUND: i64 = 32;

/// Starts the resolver: every `every`, and at once when a payment's outcome became unknown.
pub fn spawn(
    service: Arc<PaymentService>,
    clock: Arc<dyn Clock>,
    leases: Arc<Leases>,
    every: Duration,
) {
    tokio::spawn(async move {
        let mut wake = service.resolver_wake.subscribe();
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = wake.changed() => {}
            }
            match leases.hold(LEASE).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "resolver: cannot take its lease");
                    continue;
                }
            }
            let now = clock.now_secs();
            let due = match service
                .store()
                .due_attempts(now, now - service.unsettled_horizon(), ROUND)
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "resolver: cannot read the attempts in doubt");
                    continue;
                }
            };
            for attempt in due {
                let id = attempt.id.clone();
                if let Err(e) = service.resolve(attempt).await {
                    tracing::warn!(attempt = %id, error = %e, "resolver: cannot record what it learnt; asking again later");
                }
            }
        }
    });
}
