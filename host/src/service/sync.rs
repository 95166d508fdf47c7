//! Facts a provider tells (in a webhook, or emitted while it served a call) applied to the
//! records they name: a record never takes an older state than the one it holds
//! (`synced_at` keeps the provider time of the newest fact applied), and records payhost
//! has not seen (a payment made at the provider, a renewal's invoice, a refund made in the
//! dashboard) are adopted once, for customers payhost knows.

use super::{new_id, Ids};
use crate::store::{customers, invoices, payments, refunds, subscriptions, Unit};
use payhost_plugin_api::{DomainEventKind, DomainEventReport, PaymentStatus, RefundStatus};

/// The statements that bring the record a report names up to the state it tells, unless
/// the record already holds a newer one.
pub(crate) fn apply(
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
            // A success clears nothing: the code and message of an earlier failure stay.
            let failure = if r.kind == DomainEventKind::PaymentFailed {
                (r.reason.as_deref(), r.error.as_deref())
            } else {
                (None, None)
            };
            payments::sync_payment_status(unit, provider, object, status, failure, created, now);
        }
        DomainEventKind::PaymentCreated => {
            let status = r.status.as_deref().unwrap_or("requires_payment_method");
            adopt_payment(unit, provider, r, status, (created, now), ids);
        }
        DomainEventKind::PaymentExpired => {
            // Its reason, when the provider gives one, is kept as the failure message.
            payments::sync_payment_status(
                unit,
                provider,
                object,
                PaymentStatus::Expired.as_str(),
                (r.reason.as_deref(), r.error.as_deref()),
                created,
                now,
            );
        }
        DomainEventKind::PaymentAuthorized | DomainEventKind::PaymentCanceled => {
            let status = if r.kind == DomainEventKind::PaymentAuthorized {
                "requires_capture"
            } else {
                "canceled"
            };
            payments::sync_payment_status(
                unit,
                provider,
                object,
                status,
                (None, None),
                created,
                now,
            );
        }
        DomainEventKind::SubscriptionCreated | DomainEventKind::SubscriptionUpdated => {
            let s = subscriptions::SubscriptionSync {
                status: r.status.as_deref(),
                price_id: r.plan_id.as_deref(),
                cancel_at_period_end: r.cancel_at_period_end,
                current_period_start: r.current_period_start,
                current_period_end: r.current_period_end,
                trial_end: r.trial_end,
            };
            subscriptions::sync_subscription(unit, provider, object, &s, created, now);
        }
        DomainEventKind::SubscriptionCancelled => {
            subscriptions::sync_subscription_canceled(unit, provider, object, created, now);
        }
        DomainEventKind::InvoicePaid | DomainEventKind::InvoicePaymentFailed => {
            let paid = r.kind == DomainEventKind::InvoicePaid;
            adopt_invoice(unit, provider, r, paid, now, ids);
            invoices::sync_invoice(unit, provider, object, paid, created, now);
        }
        DomainEventKind::RefundProcessed | DomainEventKind::RefundFailed => {
            if ids.get(object).is_some() {
                // Known: the refund settled (a pending one succeeded, or it failed).
                let status = match (&r.kind, r.status.as_deref()) {
                    (DomainEventKind::RefundProcessed, _) => RefundStatus::Succeeded,
                    (_, Some("canceled")) => RefundStatus::Canceled,
                    _ => RefundStatus::Failed,
                };
                refunds::settle_refund(unit, provider, object, &status, now);
                return;
            }
            let (Some(payment), Some(amount)) = (&r.payment_id, &r.amount) else {
                return;
            };
            if r.kind == DomainEventKind::RefundFailed || ids.get(payment).is_none() {
                // A refund payhost never saw that gave nothing back, or a payment payhost
                // does not know.
                return;
            }
            let id = new_id("rfnd");
            *ids = std::mem::take(ids).with(object, &id);
            refunds::adopt_refund(
                unit,
                &id,
                provider,
                object,
                payment,
                amount.amount,
                amount.currency.as_str(),
                r.reason.as_deref(),
                now,
            );
        }
        DomainEventKind::DisputeOpened | DomainEventKind::DisputeClosed => {
            let Some(payment) = &r.payment_id else { return };
            let status = r.status.clone().unwrap_or_else(|| {
                if r.kind == DomainEventKind::DisputeOpened {
                    "needs_response".into()
                } else {
                    "closed".into()
                }
            });
            payments::set_dispute(unit, provider, payment, &status, now);
        }
        DomainEventKind::PaymentMethodDetached => {
            let pm = r.payment_method_id.as_deref().unwrap_or(object);
            customers::delete_payment_method(unit, provider, pm, now);
        }
        DomainEventKind::CustomerUpdated => {
            customers::sync_customer_profile(
                unit,
                provider,
                object,
                r.email.as_deref(),
                r.name.as_deref(),
                now,
            );
        }
        DomainEventKind::CustomerDeleted => {
            customers::erase_customer(unit, provider, object, now);
        }
        // The host's own records of its attempts: nothing at the provider to sync.
        DomainEventKind::PaymentAttemptFailed | DomainEventKind::PaymentRerouted => {}
        // Kept in the event log as it came; nothing this version knows to sync.
        DomainEventKind::Unknown(_) => {}
    }
}

/// A payment payhost has not seen (created at the provider directly) for a customer it
/// knows: the payload carries enough to record it. Unknown customers: the event alone.
fn adopt_payment(
    unit: &mut Unit,
    provider: &str,
    r: &DomainEventReport,
    status: &str,
    times: (i64, i64),
    ids: &mut Ids,
) {
    let (Some(customer), Some(amount)) = (r.customer_id.as_deref(), r.amount.as_ref()) else {
        return;
    };
    if ids.get(&r.object_id).is_some() || ids.get(customer).is_none() {
        // Known already, or a customer payhost does not know.
        return;
    }
    let id = new_id(super::PAYMENT_ID_PREFIX);
    *ids = std::mem::take(ids).with(&r.object_id, &id);
    payments::adopt_payment(
        unit,
        &id,
        provider,
        &r.object_id,
        customer,
        amount.amount,
        amount.currency.as_str(),
        status,
        times,
    );
}

/// An invoice payhost has not seen (a renewal the provider issued) for a customer it knows:
/// recorded from the event that tells it was paid or failed.
fn adopt_invoice(
    unit: &mut Unit,
    provider: &str,
    r: &DomainEventReport,
    paid: bool,
    now: i64,
    ids: &mut Ids,
) {
    let (Some(customer), Some(amount)) = (r.customer_id.as_deref(), r.amount.as_ref()) else {
        return;
    };
    if ids.get(&r.object_id).is_some() || ids.get(customer).is_none() {
        return;
    }
    let id = new_id("inv");
    *ids = std::mem::take(ids).with(&r.object_id, &id);
    invoices::adopt_invoice(
        unit,
        &invoices::AdoptedInvoice {
            id: &id,
            provider,
            provider_id: &r.object_id,
            provider_customer_id: customer,
            provider_subscription_id: r.subscription_id.as_deref(),
            provider_payment_id: r.payment_id.as_deref(),
            amount: amount.amount,
            currency: amount.currency.as_str(),
            paid,
        },
        (r.occurred_at, now),
    );
}
