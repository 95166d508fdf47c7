//! The mock's state (customers, methods, payments, subscriptions, refunds, invoices, the
//! keys it has answered) and the helpers its operations share: charging a card, billing a
//! period, reports.

use crate::catalog::{self, CardBehaviour};
use payhost_plugin_kit::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(crate) struct State {
    pub(crate) customers: BTreeMap<String, Customer>,
    pub(crate) methods: BTreeMap<String, (PaymentMethod, CardBehaviour)>,
    pub(crate) payments: BTreeMap<String, Payment>,
    /// Where a payment's buyer returns after a redirect.
    pub(crate) return_urls: BTreeMap<String, String>,
    pub(crate) subscriptions: BTreeMap<String, Subscription>,
    pub(crate) refunds: BTreeMap<String, Refund>,
    /// How often each unsettled refund has been read.
    pub(crate) refund_reads: BTreeMap<String, u32>,
    /// In creation order.
    pub(crate) invoices: Vec<Invoice>,
    /// The payment each idempotency key created: a repeated key gets it back, as a real
    /// provider replays its first answer (nothing is charged twice).
    pub(crate) payment_keys: BTreeMap<String, String>,
}

/// One mock provider instance.
pub struct MockProvider {
    pub(crate) host: Host,
    pub(crate) ids: IdGen,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) state: Mutex<State>,
}

pub(crate) fn redirect_url(payment_id: &str) -> String {
    format!("https://mock.payhost.invalid/approve/{payment_id}")
}

impl MockProvider {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another call panicked mid-way; the maps stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn now(&self) -> i64 {
        self.host.now_secs()
    }

    /// An attached method id or a test token: its id and what charging it does.
    pub(crate) fn resolve_method(
        st: &State,
        reference: &str,
    ) -> Result<(String, CardBehaviour), PluginError> {
        if let Some((pm, behaviour)) = st.methods.get(reference) {
            return Ok((pm.id.clone(), *behaviour));
        }
        catalog::test_method(reference)
            .map(|(b, ..)| (reference.to_owned(), b))
            .ok_or_else(|| {
                PluginError::not_found("payment method", reference).with_param("payment_method")
            })
    }

    /// Charges a payment with a method; the outcome is the payment's new state.
    pub(crate) fn charge(st: &State, p: &mut Payment, method: &str, behaviour: CardBehaviour) {
        p.payment_method = Some(method.to_owned());
        p.next_action = None;
        p.failure_code = None;
        p.failure_message = None;
        match behaviour {
            CardBehaviour::Succeeds => match p.capture_method {
                CaptureMethod::Manual => p.status = PaymentStatus::RequiresCapture,
                CaptureMethod::Automatic | CaptureMethod::Unknown(_) => {
                    p.status = PaymentStatus::Succeeded;
                    p.amount_received = p.amount.amount;
                }
            },
            CardBehaviour::Declined(reason) => {
                p.status = PaymentStatus::Failed;
                p.failure_code = Some(reason.to_owned());
                p.failure_message = Some("Your card was declined.".to_owned());
            }
            CardBehaviour::Redirects => {
                p.status = PaymentStatus::RequiresAction;
                p.next_action = Some(NextAction::RedirectToUrl {
                    url: redirect_url(&p.id),
                    return_url: st.return_urls.get(&p.id).cloned(),
                });
            }
        }
    }

    pub(crate) fn customer_exists(st: &State, id: &str) -> Result<(), PluginError> {
        if st.customers.contains_key(id) {
            Ok(())
        } else {
            Err(PluginError::not_found("customer", id).with_param("customer"))
        }
    }

    pub(crate) fn payment_report(kind: DomainEventKind, p: &Payment, at: i64) -> DomainEventReport {
        let mut r = DomainEventReport::new(kind, &p.id, at);
        r.customer_id = p.customer_id.clone();
        r.payment_id = Some(p.id.clone());
        r.amount = Some(p.amount.clone());
        r.status = Some(p.status.as_str().to_owned());
        r.error = p.failure_message.clone();
        r
    }

    /// Bills one period of a subscription: an invoice and its payment, charged to the
    /// customer's default method if any. The answer (the subscription) does not show the
    /// invoice or its payment, so their facts are emitted.
    pub(crate) fn bill(&self, st: &mut State, sub: &mut Subscription, price: Money) {
        let now = self.now();
        let invoice_id = self.ids.next("mock_in");
        let mut payment = Payment::new(
            self.ids.next("mock_pi"),
            price.clone(),
            PaymentStatus::RequiresPaymentMethod,
        );
        payment.customer_id = sub.customer_id.clone();
        payment.created = now;
        payment.next_action = Some(NextAction::UseClientSecret {
            client_secret: format!("{}_secret_mock", payment.id),
        });
        let default_pm = sub
            .customer_id
            .as_deref()
            .and_then(|c| st.customers.get(c))
            .and_then(|c| c.default_payment_method.clone());
        if let Some(pm) = default_pm {
            if let Ok((id, behaviour)) = Self::resolve_method(st, &pm) {
                Self::charge(st, &mut payment, &id, behaviour);
            }
        }
        let paid = payment.status == PaymentStatus::Succeeded;
        let invoice = Invoice {
            id: invoice_id.clone(),
            customer_id: sub.customer_id.clone().unwrap_or_default(),
            subscription_id: Some(sub.id.clone()),
            payment_id: Some(payment.id.clone()),
            amount_due: price.clone(),
            amount_paid: if paid { price.amount } else { 0 },
            status: if paid {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::Open
            },
            pdf_url: Some(format!(
                "https://mock.payhost.invalid/invoices/{invoice_id}.pdf"
            )),
            created: now,
        };
        sub.status = if paid {
            SubscriptionStatus::Active
        } else {
            SubscriptionStatus::Incomplete
        };
        sub.next_action = if paid {
            None
        } else {
            payment.next_action.clone()
        };
        let outcome = match payment.status {
            PaymentStatus::Succeeded => Some((
                DomainEventKind::PaymentSucceeded,
                DomainEventKind::InvoicePaid,
            )),
            PaymentStatus::Failed => Some((
                DomainEventKind::PaymentFailed,
                DomainEventKind::InvoicePaymentFailed,
            )),
            _ => None,
        };
        if let Some((payment_kind, invoice_kind)) = outcome {
            self.host.emit(&Self::payment_report(
                DomainEventKind::PaymentCreated,
                &payment,
                now,
            ));
            self.host
                .emit(&Self::payment_report(payment_kind, &payment, now));
            let mut r = DomainEventReport::new(invoice_kind, &invoice_id, now);
            r.customer_id = sub.customer_id.clone();
            r.subscription_id = Some(sub.id.clone());
            r.invoice_id = Some(invoice_id.clone());
            r.payment_id = Some(payment.id.clone());
            r.amount = Some(price);
            r.status = Some(invoice.status.as_str().to_owned());
            r.error = payment.failure_message.clone();
            self.host.emit(&r);
        }
        st.payments.insert(payment.id.clone(), payment);
        st.invoices.push(invoice);
    }

    pub(crate) fn with_subscription<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut State, &mut Subscription) -> Result<T, PluginError>,
    ) -> Result<T, PluginError> {
        let mut st = self.state();
        let mut sub = st
            .subscriptions
            .get(id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("subscription", id))?;
        let out = f(&mut st, &mut sub)?;
        st.subscriptions.insert(id.to_owned(), sub);
        Ok(out)
    }

    pub(crate) fn with_payment(
        &self,
        id: &str,
        f: impl FnOnce(&State, &mut Payment) -> Result<(), PluginError>,
    ) -> Result<Payment, PluginError> {
        let mut st = self.state();
        let mut p = st
            .payments
            .get(id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("payment", id))?;
        f(&st, &mut p)?;
        st.payments.insert(id.to_owned(), p.clone());
        Ok(p)
    }
}
