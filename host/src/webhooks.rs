//! The webhook pipeline: one generic endpoint for every provider instance, a durable inbox
//! and an asynchronous processor.
//!
//! Receiving: the raw body and headers go to the plugin's verifier; a verified event is
//! committed to the inbox (group commit, fsync'd) BEFORE the 2xx, once per (provider,
//! provider event id) — a repeated delivery answers 2xx and changes nothing, also when the
//! copies arrive together (the unique key decides). Processing: the plugin maps the event to
//! domain events; the records they name are synced (never with an older state than the one
//! they hold: `synced_at` keeps the provider time of the newest fact applied), the events
//! are recorded, and the inbox row is marked processed — all in one unit, so a crash at any
//! point leaves the event either wholly applied or still pending, never applied twice. A
//! failing step is retried with exponential backoff; pending rows survive restarts.

use crate::clock::Clock;
use crate::plugins::{CallError, Registry};
use crate::service::{new_id, Ids, PaymentService, ServiceError};
use crate::store::{Arg, RowExt, Unit};
use payhost_plugin_api::{
    ops, CallCtx, DomainEventKind, DomainEventReport, Headers, WebhookDelivery, WebhookEvent,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Attempts before an inbox row is left as `failed` (replayable by an operator).
const MAX_ATTEMPTS: i64 = 12;
/// Rows taken per processing round.
const BATCH: i64 = 200;
/// Rows processed at once; their writes share commits.
const CONCURRENCY: usize = 8;

/// Why a delivery was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("{0}")]
    Call(CallError),
    #[error("{0}")]
    Store(#[from] ServiceError),
}

/// What happened to an accepted delivery.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Received {
    pub event_id: String,
    pub event_type: String,
    /// The same provider event was already in the inbox.
    pub duplicate: bool,
}

pub struct Webhooks {
    service: Arc<PaymentService>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    wake: Notify,
}

/// Seconds to wait before attempt `n + 1`.
fn backoff_secs(attempts: i64) -> i64 {
    2i64.saturating_pow(u32::try_from(attempts.clamp(0, 12)).unwrap_or(12))
        .min(3600)
}

impl Webhooks {
    pub fn new(
        service: Arc<PaymentService>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            service,
            registry,
            clock,
            wake: Notify::new(),
        }
    }

    /// Verifies a delivery and commits it to the inbox.
    ///
    /// # Errors
    /// The provider is unknown or not running, the signature or body was refused, or the
    /// database failed (nothing was stored in every case).
    pub async fn receive(
        &self,
        provider: &str,
        body: Vec<u8>,
        headers: Headers,
    ) -> Result<Received, ReceiveError> {
        // Providers send JSON: the inbox stores the payload as text.
        let payload = String::from_utf8(body.clone()).map_err(|_| {
            ReceiveError::Call(CallError::Plugin(payhost_plugin_api::PluginError::invalid(
                "body",
                "the webhook body is not UTF-8 text",
            )))
        })?;
        let delivery = WebhookDelivery {
            body: body.into(),
            headers,
            now: self.clock.now_secs(),
        };
        let event = self
            .registry
            .call::<ops::VerifyWebhook>(provider, CallCtx::default(), delivery)
            .await
            .map_err(ReceiveError::Call)?;
        let now = self.clock.now_secs();
        let mut unit = Unit::new();
        unit.push(
            "INSERT INTO webhook_inbox (id, provider, event_id, event_type, payload, created, \
             received_at, status, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7) \
             ON CONFLICT (provider, event_id) DO NOTHING",
            vec![
                new_id("whin").into(),
                provider.into(),
                event.id.as_str().into(),
                event.event_type.as_str().into(),
                payload.into(),
                event.created.into(),
                now.into(),
            ],
        );
        let changed = self
            .service
            .store()
            .commit(unit)
            .await
            .map_err(ServiceError::from)?;
        let duplicate = changed.first().copied().unwrap_or(0) == 0;
        if !duplicate {
            self.wake.notify_one();
        }
        tracing::info!(provider, event_id = %event.id, event_type = %event.event_type, duplicate, "webhook received");
        Ok(Received {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            duplicate,
        })
    }

    /// Starts the processor: it works through due inbox rows whenever woken, and at least
    /// every `poll`.
    pub fn spawn(self: &Arc<Self>, poll: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                while me.process_due().await > 0 {}
                tokio::select! {
                    () = me.wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        });
    }

    /// Processes the rows that are due, several at a time (their writes share commits);
    /// returns how many were taken.
    pub async fn process_due(self: &Arc<Self>) -> usize {
        let rows = match self
            .service
            .store()
            .all(
                "SELECT id, provider, event_id, event_type, payload, created, attempts \
                 FROM webhook_inbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY received_at, id LIMIT $2",
                vec![self.clock.now_secs().into(), BATCH.into()],
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the webhook inbox");
                return 0;
            }
        };
        let n = rows.len();
        let mut running = tokio::task::JoinSet::new();
        for row in rows {
            let parsed = (|| -> Result<_, crate::store::StoreError> {
                Ok((
                    row.text("id")?,
                    row.text("provider")?,
                    WebhookEvent {
                        id: row.text("event_id")?,
                        event_type: row.text("event_type")?,
                        created: row.int("created")?,
                        payload: row.text("payload")?,
                    },
                    row.int("attempts")?,
                ))
            })();
            let Ok((id, provider, event, attempts)) = parsed else {
                continue;
            };
            let me = self.clone();
            running.spawn(async move {
                if let Err(e) = me.process(&id, &provider, event).await {
                    me.failed(&id, &provider, attempts, &e.to_string()).await;
                }
            });
            while running.len() >= CONCURRENCY {
                let _ = running.join_next().await;
            }
        }
        while running.join_next().await.is_some() {}
        n
    }

    async fn failed(&self, id: &str, provider: &str, attempts: i64, error: &str) {
        let attempts = attempts + 1;
        let status = if attempts >= MAX_ATTEMPTS {
            "failed"
        } else {
            "pending"
        };
        let next = self.clock.now_secs() + backoff_secs(attempts);
        tracing::warn!(
            provider,
            inbox_id = id,
            attempts,
            error,
            "webhook processing failed; will retry"
        );
        let mut unit = Unit::new();
        unit.push(
            "UPDATE webhook_inbox SET attempts = $2, status = $3, next_attempt_at = $4, \
             last_error = $5 WHERE id = $1",
            vec![
                id.into(),
                attempts.into(),
                status.into(),
                next.into(),
                error.into(),
            ],
        );
        if let Err(e) = self.service.store().commit(unit).await {
            tracing::error!(error = %e, "cannot record a webhook failure");
        }
    }

    /// Maps, syncs, records and marks one inbox row processed, in one unit.
    async fn process(
        &self,
        id: &str,
        provider: &str,
        event: WebhookEvent,
    ) -> Result<(), ServiceError> {
        let created = event.created;
        let reports: Vec<DomainEventReport> = self
            .registry
            .call::<ops::MapWebhook>(provider, CallCtx::default(), event)
            .await?
            .events;
        let now = self.clock.now_secs();
        let mut unit = Unit::new();
        let recorder = self.service.recorder();
        let mut ids = recorder.resolve(provider, &reports).await?;
        for r in &reports {
            sync(&mut unit, provider, r, created, now, &mut ids);
        }
        let staged = recorder.stage(&mut unit, provider, None, &reports, &ids);
        unit.push(
            "UPDATE webhook_inbox SET status = 'processed', processed_at = $2, \
             attempts = attempts + 1, last_error = NULL WHERE id = $1 AND status = 'pending'",
            vec![id.into(), now.into()],
        );
        let changed = self.service.store().commit(unit).await?;
        recorder.dispatch_new(staged, &changed);
        Ok(())
    }
}

/// The statements that bring the record a report names up to the state it tells, unless
/// the record already holds a newer one.
fn sync(
    unit: &mut Unit,
    provider: &str,
    r: &DomainEventReport,
    created: i64,
    now: i64,
    ids: &mut Ids,
) {
    let object = r.object_id.as_str();
    match &r.kind {
        DomainEventKind::PaymentSucceeded | DomainEventKind::PaymentFailed => {
            let status = if r.kind == DomainEventKind::PaymentSucceeded {
                "succeeded"
            } else {
                "failed"
            };
            adopt_payment(unit, provider, r, status, (created, now), ids);
            unit.push(
                "UPDATE payments SET status = $3, failure_message = COALESCE($4, failure_message), \
                 synced_at = $5, updated_at = $6 \
                 WHERE provider = $1 AND provider_id = $2 AND synced_at <= $5",
                vec![provider.into(), object.into(), status.into(), Arg::from(r.error.clone()), created.into(), now.into()],
            );
        }
        DomainEventKind::SubscriptionCreated | DomainEventKind::SubscriptionUpdated => {
            unit.push(
                "UPDATE subscriptions SET status = COALESCE($3, status), \
                 price_id = COALESCE($4, price_id), cancel_at_period_end = $5, synced_at = $6, \
                 updated_at = $7, current_period_start = COALESCE($8, current_period_start), \
                 current_period_end = COALESCE($9, current_period_end), \
                 trial_end = COALESCE($10, trial_end) \
                 WHERE provider = $1 AND provider_id = $2 AND synced_at <= $6",
                vec![
                    provider.into(),
                    object.into(),
                    Arg::from(r.status.clone()),
                    Arg::from(r.plan_id.clone()),
                    r.cancel_at_period_end.into(),
                    created.into(),
                    now.into(),
                    Arg::from(r.current_period_start),
                    Arg::from(r.current_period_end),
                    Arg::from(r.trial_end),
                ],
            );
        }
        DomainEventKind::SubscriptionCancelled => {
            unit.push(
                "UPDATE subscriptions SET status = 'canceled', cancel_at_period_end = 0, \
                 canceled_at = COALESCE(canceled_at, $3), synced_at = $3, updated_at = $4 \
                 WHERE provider = $1 AND provider_id = $2 AND synced_at <= $3",
                vec![provider.into(), object.into(), created.into(), now.into()],
            );
        }
        DomainEventKind::InvoicePaid | DomainEventKind::InvoicePaymentFailed => {
            let paid = r.kind == DomainEventKind::InvoicePaid;
            unit.push(
                "UPDATE invoices SET status = $3, \
                 amount_paid = CASE WHEN $4 = 1 THEN amount_due ELSE amount_paid END, \
                 synced_at = $5, updated_at = $6 \
                 WHERE provider = $1 AND provider_id = $2 AND synced_at <= $5",
                vec![
                    provider.into(),
                    object.into(),
                    if paid { "paid" } else { "open" }.into(),
                    i64::from(paid).into(),
                    created.into(),
                    now.into(),
                ],
            );
        }
        DomainEventKind::PaymentCreated => {
            let status = r
                .status
                .clone()
                .unwrap_or_else(|| "requires_payment_method".into());
            adopt_payment(unit, provider, r, &status, (created, now), ids);
        }
        DomainEventKind::PaymentAuthorized | DomainEventKind::PaymentCanceled => {
            let status = if r.kind == DomainEventKind::PaymentAuthorized {
                "requires_capture"
            } else {
                "canceled"
            };
            unit.push(
                "UPDATE payments SET status = $3, synced_at = $4, updated_at = $5 \
                 WHERE provider = $1 AND provider_id = $2 AND synced_at <= $4",
                vec![
                    provider.into(),
                    object.into(),
                    status.into(),
                    created.into(),
                    now.into(),
                ],
            );
        }
        DomainEventKind::RefundProcessed => adopt_refund(unit, provider, r, now),
        DomainEventKind::DisputeOpened | DomainEventKind::DisputeClosed => {
            let Some(payment) = &r.payment_id else { return };
            let status = r.status.clone().unwrap_or_else(|| {
                if r.kind == DomainEventKind::DisputeOpened {
                    "needs_response".into()
                } else {
                    "closed".into()
                }
            });
            unit.push(
                "UPDATE payments SET dispute_status = $3, updated_at = $4 \
                 WHERE provider = $1 AND provider_id = $2",
                vec![
                    provider.into(),
                    payment.as_str().into(),
                    status.into(),
                    now.into(),
                ],
            );
        }
        DomainEventKind::PaymentMethodDetached => {
            let pm = r.payment_method_id.as_deref().unwrap_or(object);
            unit.push(
                "UPDATE customers SET default_payment_method = NULL, updated_at = $3 \
                 WHERE default_payment_method IN \
                 (SELECT id FROM payment_methods WHERE provider = $1 AND provider_id = $2)",
                vec![provider.into(), pm.into(), now.into()],
            );
            unit.push(
                "DELETE FROM payment_methods WHERE provider = $1 AND provider_id = $2",
                vec![provider.into(), pm.into()],
            );
        }
        DomainEventKind::CustomerUpdated => {
            unit.push(
                "UPDATE customers SET email = COALESCE($3, email), name = COALESCE($4, name), \
                 updated_at = $5 WHERE provider = $1 AND provider_id = $2 AND deleted_at IS NULL",
                vec![
                    provider.into(),
                    object.into(),
                    Arg::from(r.email.clone()),
                    Arg::from(r.name.clone()),
                    now.into(),
                ],
            );
        }
        DomainEventKind::CustomerDeleted => {
            crate::service::erase_customer(unit, provider, object, now);
        }
        // Kept in the event log as it came; nothing this version knows to sync.
        DomainEventKind::Unknown(_) => {}
    }
}

/// A refund payhost has not recorded (made in the provider's dashboard): its row, and the
/// payment's `amount_refunded` raised by it — once, whichever of the API answer and the
/// webhook arrives first.
fn adopt_refund(unit: &mut Unit, provider: &str, r: &DomainEventReport, now: i64) {
    let (Some(payment), Some(amount)) = (&r.payment_id, &r.amount) else {
        return;
    };
    unit.push(
        "INSERT INTO refunds (id, payment_id, provider, provider_id, amount, currency, status, \
         reason, created_at) SELECT $1, p.id, $2, $3, $4, $5, 'succeeded', $6, $7 \
         FROM payments p WHERE p.provider = $2 AND p.provider_id = $8 \
         ON CONFLICT (provider, provider_id) DO NOTHING",
        vec![
            new_id("rfnd").into(),
            provider.into(),
            r.object_id.as_str().into(),
            amount.amount.into(),
            amount.currency.as_str().into(),
            Arg::from(r.reason.clone()),
            now.into(),
            payment.as_str().into(),
        ],
    );
    unit.push_if_changed(
        "UPDATE payments SET amount_refunded = amount_refunded + $3, updated_at = $4 \
         WHERE provider = $1 AND provider_id = $2",
        vec![
            provider.into(),
            payment.as_str().into(),
            amount.amount.into(),
            now.into(),
        ],
    );
}

/// A payment payhost has not seen (created at the provider directly) for a customer it
/// knows: the payload carries enough to record it. Unknown customers: the event alone.
fn adopt_payment(
    unit: &mut Unit,
    provider: &str,
    r: &DomainEventReport,
    status: &str,
    (created, now): (i64, i64),
    ids: &mut Ids,
) {
    let (Some(customer), Some(amount)) = (r.customer_id.clone(), r.amount.as_ref()) else {
        return;
    };
    if ids.get(r.object_id.as_str()).is_some() || ids.get(&customer).is_none() {
        // Known already, or a customer payhost does not know.
        return;
    }
    let id = new_id("pay");
    *ids = std::mem::take(ids).with(r.object_id.as_str(), &id);
    unit.push(
        "INSERT INTO payments (id, tenant, customer_id, provider, provider_id, amount, currency, \
         amount_refunded, status, metadata, created_at, updated_at, synced_at) \
         SELECT $1, c.tenant, c.id, $2, $3, $4, $5, 0, $6, '{}', $7, $8, $7 FROM customers c \
         WHERE c.provider = $2 AND c.provider_id = $9 \
         ON CONFLICT (provider, provider_id) DO NOTHING",
        vec![
            id.into(),
            provider.into(),
            r.object_id.as_str().into(),
            amount.amount.into(),
            amount.currency.as_str().into(),
            status.into(),
            created.into(),
            now.into(),
            customer.into(),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_secs(1), 2);
        assert_eq!(backoff_secs(5), 32);
        assert_eq!(backoff_secs(40), 3600);
    }
}
