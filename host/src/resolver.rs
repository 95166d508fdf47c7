//! The resolver: asks providers again about what payhost does not know yet.
//!
//! - Payments whose outcome is unknown — an attempt left `in_doubt` (no answer after its
//!   request left), or `started` by a host that died mid-call — at the same instance, with
//!   the same provider idempotency key, on a growing pause (`[routing.resolver]
//!   backoff_secs`), until it learns whether money moved. A retry of the API request asks
//!   at once, on any host.
//! - Refunds recorded `pending` or `requires_action` (contract 2.2's `get_refund`), on a
//!   growing pause from a minute to a day, until they settle; `?refresh=true` reads one at
//!   once.
//!
//! One host at a time does each (a lease apiece).

use crate::clock::Clock;
use crate::lease::Leases;
use crate::service::PaymentService;
use std::sync::Arc;
use std::time::Duration;

/// The lease of the host that resolves.
pub const LEASE: &str = "resolver";
/// The lease of the host that reads unsettled refunds.
pub const REFUND_LEASE: &str = "refund_checks";
/// Attempts asked about per round.
const ROUND: i64 = 32;

/// Whether this host holds (took or renewed) lease `name` now; a failure to ask is a no.
async fn holds(leases: &Leases, name: &str) -> bool {
    leases.hold(name).await.unwrap_or_else(|e| {
        tracing::debug!(lease = name, error = %e, "cannot take a lease");
        false
    })
}

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
            if !holds(&leases, LEASE).await {
                continue;
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

/// Starts reading unsettled refunds back: every `every`, the ones due.
pub fn spawn_refund_checks(
    service: Arc<PaymentService>,
    clock: Arc<dyn Clock>,
    leases: Arc<Leases>,
    every: Duration,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if !holds(&leases, REFUND_LEASE).await {
                continue;
            }
            let due = match service.store().due_refunds(clock.now_secs(), ROUND).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "refund checks: cannot read the refunds due");
                    continue;
                }
            };
            for refund in due {
                let (id, checks) = (refund.id.clone(), refund.checks);
                let ctx = crate::service::Ctx {
                    tenant: Some(refund.tenant.clone()).filter(|t| !t.is_empty()),
                    request_id: format!("refund_check_{id}"),
                    ..crate::service::Ctx::default()
                };
                match service.refresh_refund(&ctx, refund).await {
                    Ok(r) if r.next_check_at.is_none() => {
                        tracing::info!(refund = %id, status = %r.status, checks = r.checks, "refund settled");
                    }
                    Ok(r) => {
                        tracing::debug!(refund = %id, checks = r.checks, next_check_at = r.next_check_at, "refund not settled yet");
                    }
                    Err(e) => {
                        tracing::warn!(refund = %id, checks = checks + 1, error = %e, "refund checks: cannot read the refund; asking again later");
                    }
                }
            }
        }
    });
}
