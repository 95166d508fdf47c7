//! The mock provider's operations over its in-memory state.

use crate::catalog;
use crate::state::{redirect_url, MockProvider};
use crate::webhook;
use payhost_plugin_kit::config::OneOrMany;
use payhost_plugin_kit::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Mutex;

const DAY: i64 = 86_400;
/// The refund metadata key that makes a refund settle later: `pending` (it succeeds when
/// next read) or `fails` (it fails when next read, and the payment's refunded amount drops).
pub const REFUND_BEHAVIOUR: &str = "mock_refund";
/// With [`REFUND_BEHAVIOUR`]: the read on which the refund settles (1 unless given).
pub const REFUND_READS: &str = "mock_refund_reads";
const SETTLES: &str = "pending";
const FAILS: &str = "fails";
const PERIOD: i64 = 30 * DAY;

/// The mock's configuration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    /// The secret webhooks are signed with (`X-Webhook-Signature`); a list while one is
    /// being rolled (each verifies).
    pub webhook_secret: OneOrMany<Secret>,
}

impl Plugin for MockProvider {
    type Config = MockConfig;

    fn manifest() -> Manifest {
        Manifest::new("mock", env!("CARGO_PKG_VERSION"))
            .capabilities(&capabilities::ALL)
            .webhook_headers(&[webhook::SIGNATURE_HEADER])
            .fixtures(Fixtures {
                payment_method_succeeds: Some("pm_card_visa".into()),
                payment_method_declines: Some("pm_card_chargeDeclined".into()),
                payment_method_requires_action: Some("pm_card_authenticationRequired".into()),
                price: Some("price_basic".into()),
                other_price: Some("price_pro".into()),
                currency: Some("usd".into()),
                config: [(
                    "webhook_secret".to_owned(),
                    serde_json::Value::from("whsec_mock_conformance"),
                )]
                .into(),
                approve_redirect_by_visiting: false,
            })
    }

    fn new(config: MockConfig, host: Host) -> Result<Self, PluginError> {
        host.info("mock provider ready");
        Ok(Self {
            ids: IdGen::new(&host),
            host,
            secrets: config.webhook_secret.0,
            state: Mutex::default(),
        })
    }
}

impl Provider for MockProvider {
    fn create_customer(&self, _ctx: &CallCtx, req: NewCustomer) -> Result<Customer, PluginError> {
        if !req.email.contains('@') {
            return Err(PluginError::invalid(
                "email",
                format!("'{}' is not an email address", req.email),
            ));
        }
        let c = Customer {
            id: self.ids.next("mock_cus"),
            email: req.email,
            name: req.name,
            default_payment_method: None,
            metadata: req.metadata,
        };
        self.state().customers.insert(c.id.clone(), c.clone());
        Ok(c)
    }

    fn get_customer(&self, _ctx: &CallCtx, req: ObjectRef) -> Result<Customer, PluginError> {
        self.state()
            .customers
            .get(&req.id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("customer", &req.id))
    }

    fn update_customer(
        &self,
        _ctx: &CallCtx,
        req: CustomerUpdate,
    ) -> Result<Customer, PluginError> {
        let mut st = self.state();
        let c = st
            .customers
            .get_mut(&req.customer_id)
            .ok_or_else(|| PluginError::not_found("customer", &req.customer_id))?;
        if let Some(email) = req.email {
            if !email.contains('@') {
                return Err(PluginError::invalid(
                    "email",
                    format!("'{email}' is not an email address"),
                ));
            }
            c.email = email;
        }
        if let Some(name) = req.name {
            c.name = Some(name);
        }
        for (k, v) in req.metadata {
            if v.is_empty() {
                c.metadata.remove(&k);
            } else {
                c.metadata.insert(k, v);
            }
        }
        Ok(c.clone())
    }

    fn attach_payment_method(
        &self,
        _ctx: &CallCtx,
        req: AttachPaymentMethod,
    ) -> Result<PaymentMethod, PluginError> {
        let mut st = self.state();
        Self::customer_exists(&st, &req.customer_id)?;
        let (behaviour, kind, brand, last4) = catalog::test_method(&req.payment_method)
            .ok_or_else(|| {
                PluginError::not_found("payment method", &req.payment_method)
                    .with_param("payment_method")
            })?;
        let pm = PaymentMethod {
            id: self.ids.next("mock_pm"),
            customer_id: Some(req.customer_id),
            kind: kind.into(),
            brand: Some(brand.into()),
            last4: (!last4.is_empty()).then(|| last4.to_owned()),
            exp_month: if kind == "card" { 12 } else { 0 },
            exp_year: if kind == "card" { 2034 } else { 0 },
        };
        st.methods.insert(pm.id.clone(), (pm.clone(), behaviour));
        Ok(pm)
    }

    fn list_payment_methods(
        &self,
        _ctx: &CallCtx,
        req: CustomerRef,
    ) -> Result<PaymentMethodList, PluginError> {
        let st = self.state();
        Self::customer_exists(&st, &req.customer_id)?;
        Ok(PaymentMethodList {
            data: st
                .methods
                .values()
                .filter(|(pm, _)| pm.customer_id.as_deref() == Some(req.customer_id.as_str()))
                .map(|(pm, _)| pm.clone())
                .collect(),
        })
    }

    fn detach_payment_method(
        &self,
        _ctx: &CallCtx,
        req: DetachPaymentMethod,
    ) -> Result<PaymentMethod, PluginError> {
        let mut st = self.state();
        let owned = st
            .methods
            .get(&req.payment_method)
            .is_some_and(|(pm, _)| pm.customer_id.as_deref() == Some(req.customer_id.as_str()));
        if !owned {
            return Err(
                PluginError::not_found("payment method", &req.payment_method)
                    .with_param("payment_method"),
            );
        }
        let (mut pm, _) = st
            .methods
            .remove(&req.payment_method)
            .ok_or_else(|| PluginError::not_found("payment method", &req.payment_method))?;
        if let Some(c) = st.customers.get_mut(&req.customer_id) {
            if c.default_payment_method.as_deref() == Some(pm.id.as_str()) {
                c.default_payment_method = None;
            }
        }
        pm.customer_id = None;
        Ok(pm)
    }

    fn delete_customer(&self, _ctx: &CallCtx, req: ObjectRef) -> Result<Deleted, PluginError> {
        let mut st = self.state();
        st.customers
            .remove(&req.id)
            .ok_or_else(|| PluginError::not_found("customer", &req.id))?;
        st.methods
            .retain(|_, (pm, _)| pm.customer_id.as_deref() != Some(req.id.as_str()));
        Ok(Deleted {
            id: req.id,
            deleted: true,
        })
    }

    fn set_default_payment_method(
        &self,
        _ctx: &CallCtx,
        req: SetDefaultPaymentMethod,
    ) -> Result<Customer, PluginError> {
        let mut st = self.state();
        Self::customer_exists(&st, &req.customer_id)?;
        let Some((pm, _)) = st.methods.get(&req.payment_method) else {
            return Err(
                PluginError::not_found("payment method", &req.payment_method)
                    .with_param("payment_method"),
            );
        };
        if pm.customer_id.as_deref() != Some(req.customer_id.as_str()) {
            return Err(PluginError::conflict(format!(
                "payment method '{}' is not attached to customer '{}'",
                req.payment_method, req.customer_id
            ))
            .with_param("payment_method"));
        }
        let c = st
            .customers
            .get_mut(&req.customer_id)
            .ok_or_else(|| PluginError::not_found("customer", &req.customer_id))?;
        c.default_payment_method = Some(req.payment_method);
        Ok(c.clone())
    }

    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        if let CaptureMethod::Unknown(m) = &req.capture_method {
            return Err(PluginError::new(
                codes::UNSUPPORTED,
                format!("the mock does not know capture method '{m}'"),
            )
            .with_param("capture_method"));
        }
        let customer = req.customer_id.ok_or_else(|| {
            PluginError::invalid("customer", "the mock keeps customers: give a customer_id")
        })?;
        let mut st = self.state();
        let replay = ctx
            .idempotency_key
            .as_ref()
            .and_then(|k| st.payment_keys.get(k))
            .and_then(|id| st.payments.get(id));
        if let Some(p) = replay {
            return Ok(p.clone());
        }
        Self::customer_exists(&st, &customer)?;
        let method = match &req.payment_method {
            Some(m) => Some(Self::resolve_method(&st, m)?),
            None => None,
        };
        let mut p = Payment::new(
            self.ids.next("mock_pi"),
            req.amount,
            PaymentStatus::RequiresPaymentMethod,
        );
        p.customer_id = Some(customer);
        p.capture_method = req.capture_method;
        p.created = self.now();
        p.metadata = req.metadata;
        p.next_action = Some(NextAction::UseClientSecret {
            client_secret: format!("{}_secret_mock", p.id),
        });
        if let Some(url) = req.return_url {
            st.return_urls.insert(p.id.clone(), url);
        }
        if let Some((pm, behaviour)) = method {
            Self::charge(&st, &mut p, &pm, behaviour);
        }
        st.payments.insert(p.id.clone(), p.clone());
        if let Some(k) = &ctx.idempotency_key {
            st.payment_keys.insert(k.clone(), p.id.clone());
        }
        Ok(p)
    }

    fn get_payment(&self, _ctx: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        self.state()
            .payments
            .get(&req.id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("payment", &req.id))
    }

    fn confirm_payment(&self, _ctx: &CallCtx, req: ConfirmPayment) -> Result<Payment, PluginError> {
        let id = req.id.clone();
        self.with_payment(&req.id, |st, p| {
            match p.status {
                PaymentStatus::Succeeded
                | PaymentStatus::Canceled
                | PaymentStatus::Expired
                | PaymentStatus::Processing
                | PaymentStatus::RequiresCapture => {
                    return Err(PluginError::conflict(format!(
                        "payment '{id}' is {} and cannot be confirmed",
                        p.status
                    )))
                }
                PaymentStatus::RequiresAction if req.payment_method.is_none() => {
                    return Err(PluginError::conflict(format!(
                        "payment '{id}' waits for the buyer to finish at {}",
                        redirect_url(&id)
                    )))
                }
                PaymentStatus::RequiresPaymentMethod
                | PaymentStatus::RequiresConfirmation
                | PaymentStatus::RequiresAction
                | PaymentStatus::Failed
                | PaymentStatus::Unknown(_) => {}
            }
            let customer_default = p
                .customer_id
                .as_deref()
                .and_then(|c| st.customers.get(c))
                .and_then(|c| c.default_payment_method.clone());
            let reference = req
                .payment_method
                .or_else(|| p.payment_method.clone())
                .or(customer_default)
                .ok_or_else(|| {
                    PluginError::conflict("a payment method is needed to confirm this payment")
                        .with_param("payment_method")
                })?;
            let (pm, behaviour) = Self::resolve_method(st, &reference)?;
            Self::charge(st, p, &pm, behaviour);
            Ok(())
        })
    }

    fn cancel_payment(&self, _ctx: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        self.with_payment(&req.id, |_, p| match p.status {
            PaymentStatus::Succeeded | PaymentStatus::Canceled | PaymentStatus::Expired => {
                Err(PluginError::conflict(format!(
                    "payment '{}' is {} and cannot be canceled",
                    p.id, p.status
                )))
            }
            _ => {
                p.status = PaymentStatus::Canceled;
                p.next_action = None;
                Ok(())
            }
        })
    }

    fn capture_payment(&self, _ctx: &CallCtx, req: CapturePayment) -> Result<Payment, PluginError> {
        self.with_payment(&req.id, |_, p| {
            if p.status != PaymentStatus::RequiresCapture {
                return Err(PluginError::conflict(format!(
                    "payment '{}' is {}, not requires_capture",
                    p.id, p.status
                )));
            }
            let amount = req.amount.unwrap_or(p.amount.amount);
            if amount <= 0 || amount > p.amount.amount {
                return Err(PluginError::invalid(
                    "amount",
                    format!(
                        "capture amount {amount} must be between 1 and the {} authorized",
                        p.amount.amount
                    ),
                ));
            }
            p.status = PaymentStatus::Succeeded;
            p.amount_received = amount;
            Ok(())
        })
    }

    fn create_subscription(
        &self,
        _ctx: &CallCtx,
        req: NewSubscription,
    ) -> Result<Subscription, PluginError> {
        let price = catalog::price(&req.price_id)
            .ok_or_else(|| PluginError::not_found("price", &req.price_id).with_param("price"))?;
        let customer = req.customer_id.ok_or_else(|| {
            PluginError::invalid("customer", "the mock keeps customers: give a customer_id")
        })?;
        let now = self.now();
        let mut st = self.state();
        Self::customer_exists(&st, &customer)?;
        let trial_end = (req.trial_days > 0).then(|| now + i64::from(req.trial_days) * DAY);
        let mut sub = Subscription {
            id: self.ids.next("mock_sub"),
            customer_id: Some(customer),
            price_id: req.price_id,
            status: SubscriptionStatus::Trialing,
            cancel_at_period_end: false,
            current_period_start: now,
            current_period_end: trial_end.unwrap_or(now + PERIOD),
            trial_end,
            canceled_at: None,
            next_action: None,
            metadata: req.metadata,
        };
        if trial_end.is_none() {
            self.bill(&mut st, &mut sub, price);
        }
        st.subscriptions.insert(sub.id.clone(), sub.clone());
        Ok(sub)
    }

    fn get_subscription(
        &self,
        _ctx: &CallCtx,
        req: ObjectRef,
    ) -> Result<Subscription, PluginError> {
        self.with_subscription(&req.id, |_, s| Ok(s.clone()))
    }

    fn change_subscription_price(
        &self,
        _ctx: &CallCtx,
        req: ChangeSubscriptionPrice,
    ) -> Result<Subscription, PluginError> {
        catalog::price(&req.price_id)
            .ok_or_else(|| PluginError::not_found("price", &req.price_id).with_param("price"))?;
        self.with_subscription(&req.id, |_, s| {
            if s.status == SubscriptionStatus::Canceled {
                return Err(PluginError::conflict(format!(
                    "subscription '{}' is canceled",
                    s.id
                )));
            }
            s.price_id = req.price_id;
            Ok(s.clone())
        })
    }

    fn cancel_subscription(
        &self,
        _ctx: &CallCtx,
        req: CancelSubscription,
    ) -> Result<Subscription, PluginError> {
        let now = self.now();
        self.with_subscription(&req.id, |_, s| {
            if s.status == SubscriptionStatus::Canceled {
                return Err(PluginError::conflict(format!(
                    "subscription '{}' is already canceled",
                    s.id
                )));
            }
            if req.at_period_end {
                s.cancel_at_period_end = true;
            } else {
                s.status = SubscriptionStatus::Canceled;
                s.cancel_at_period_end = false;
                s.canceled_at = Some(now);
            }
            Ok(s.clone())
        })
    }

    fn reactivate_subscription(
        &self,
        _ctx: &CallCtx,
        req: ObjectRef,
    ) -> Result<Subscription, PluginError> {
        self.with_subscription(&req.id, |_, s| {
            if s.status == SubscriptionStatus::Canceled {
                return Err(PluginError::conflict(format!(
                    "subscription '{}' was canceled and cannot be reactivated; create a new one",
                    s.id
                )));
            }
            if !s.cancel_at_period_end {
                return Err(PluginError::conflict(format!(
                    "subscription '{}' is not scheduled for cancellation",
                    s.id
                )));
            }
            s.cancel_at_period_end = false;
            Ok(s.clone())
        })
    }

    fn create_refund(&self, _ctx: &CallCtx, req: NewRefund) -> Result<Refund, PluginError> {
        if let Some(reason) = &req.reason {
            if !matches!(
                reason.as_str(),
                "duplicate" | "fraudulent" | "requested_by_customer"
            ) {
                return Err(PluginError::invalid(
                    "reason",
                    format!("reason '{reason}' is not one of duplicate, fraudulent, requested_by_customer"),
                ));
            }
        }
        let now = self.now();
        let id = self.ids.next("mock_re");
        let mut st = self.state();
        let p = st.payments.get_mut(&req.payment_id).ok_or_else(|| {
            PluginError::not_found("payment", &req.payment_id).with_param("payment")
        })?;
        if p.status != PaymentStatus::Succeeded {
            return Err(PluginError::conflict(format!(
                "payment '{}' is {} and cannot be refunded",
                p.id, p.status
            )));
        }
        let remaining = p.refundable();
        let amount = req.amount.unwrap_or(remaining);
        if amount <= 0 || amount > remaining {
            let msg = if remaining == 0 {
                format!("payment '{}' has already been fully refunded", p.id)
            } else {
                format!("refund amount {amount} must be between 1 and the {remaining} remaining")
            };
            return Err(PluginError::invalid("amount", msg));
        }
        p.amount_refunded += amount;
        // `mock_refund: pending` (or `fails`) leaves the refund pending, as a bank refund
        // is; it settles (or fails) when it is next read.
        let status = match req.metadata.get(REFUND_BEHAVIOUR).map(String::as_str) {
            None => RefundStatus::Succeeded,
            Some(SETTLES | FAILS) => RefundStatus::Pending,
            Some(other) => {
                return Err(PluginError::invalid(
                    "metadata",
                    format!("{REFUND_BEHAVIOUR} '{other}' is not '{SETTLES}' or '{FAILS}'"),
                ))
            }
        };
        let refund = Refund {
            id: id.clone(),
            payment_id: p.id.clone(),
            amount: Money::new(amount, p.amount.currency.clone()),
            status,
            reason: req.reason,
            created: now,
            metadata: req.metadata,
        };
        st.refunds.insert(id, refund.clone());
        Ok(refund)
    }

    fn get_refund(&self, _ctx: &CallCtx, req: RefundRef) -> Result<Refund, PluginError> {
        let mut st = self.state();
        let st = &mut *st;
        let r = st
            .refunds
            .get_mut(&req.id)
            .filter(|r| r.payment_id == req.payment_id)
            .ok_or_else(|| PluginError::not_found("refund", &req.id))?;
        let reads = st.refund_reads.entry(r.id.clone()).or_default();
        *reads += 1;
        let settles_on = r
            .metadata
            .get(REFUND_READS)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(1);
        if r.status == RefundStatus::Pending && *reads >= settles_on {
            if r.metadata.get(REFUND_BEHAVIOUR).map(String::as_str) == Some(FAILS) {
                r.status = RefundStatus::Failed;
                if let Some(p) = st.payments.get_mut(&r.payment_id) {
                    p.amount_refunded -= r.amount.amount;
                }
            } else {
                r.status = RefundStatus::Succeeded;
            }
        }
        Ok(r.clone())
    }

    fn get_invoice(&self, _ctx: &CallCtx, req: ObjectRef) -> Result<Invoice, PluginError> {
        self.state()
            .invoices
            .iter()
            .find(|i| i.id == req.id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("invoice", &req.id))
    }

    fn list_invoices(&self, _ctx: &CallCtx, q: InvoiceQuery) -> Result<InvoicePage, PluginError> {
        if !(1..=100).contains(&q.limit) {
            return Err(PluginError::invalid(
                "limit",
                "limit must be between 1 and 100",
            ));
        }
        let st = self.state();
        Self::customer_exists(&st, &q.customer_id)?;
        let mut newest_first = st
            .invoices
            .iter()
            .rev()
            .filter(|i| i.customer_id == q.customer_id)
            .skip_while(|i| {
                q.starting_after
                    .as_ref()
                    .is_some_and(|after| i.id != *after)
            });
        if q.starting_after.is_some() && newest_first.next().is_none() {
            return Err(PluginError::invalid(
                "starting_after",
                "no such invoice in this list",
            ));
        }
        let data: Vec<Invoice> = newest_first
            .by_ref()
            .take(q.limit as usize)
            .cloned()
            .collect();
        Ok(InvoicePage {
            data,
            has_more: newest_first.next().is_some(),
        })
    }

    fn verify_webhook(
        &self,
        _ctx: &CallCtx,
        d: WebhookDelivery,
    ) -> Result<VerifiedEvent, PluginError> {
        if let Some(id) = webhook::thin_id(&d) {
            // Authenticated by reading the payment it names: one this mock never made is
            // refused, and nothing is stored.
            let payment = self.state().payments.get(&id).cloned().ok_or_else(|| {
                PluginError::new(
                    codes::INVALID_SIGNATURE,
                    format!("a thin event names payment '{id}', which this provider never made"),
                )
            })?;
            return Ok(webhook::thin_event(&payment, d.now));
        }
        let secrets: Vec<&str> = self.secrets.iter().map(Secret::expose).collect();
        webhook::verify(&d, &secrets)
    }

    fn map_webhook(
        &self,
        _ctx: &CallCtx,
        event: WebhookEvent,
    ) -> Result<WebhookReports, PluginError> {
        webhook::map(&event).map(|events| WebhookReports { events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_plugin_kit::conformance;
    use payhost_plugin_kit::testing::{call, instance};
    use serde_json::json;

    #[test]
    fn passes_the_conformance_suite_in_process() {
        let report = conformance::run(&conformance::in_process::<MockProvider>(None));
        report.assert_passed();
        let skipped: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, conformance::Outcome::Skip(_)))
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            skipped,
            ["redirects.approve_then_confirm"],
            "the mock declares everything; only a buyer's approval cannot be simulated:\n{report}"
        );
    }

    #[test]
    fn a_misspelt_config_key_is_refused_naming_it() {
        let e = instance::<MockProvider>(json!({"webhook_secrt": "x"}), &FakeHost::new())
            .err()
            .unwrap();
        assert_eq!(e.param.as_deref(), Some("webhook_secrt"));
        assert!(e.message.contains("webhook_secret"), "{e}");
    }

    #[test]
    fn ids_differ_between_instances_started_at_the_same_instant() {
        let fake = FakeHost::new();
        let config = json!({"webhook_secret": "s"});
        let a: MockProvider = instance(config.clone(), &fake).unwrap();
        let b: MockProvider = instance(config, &fake).unwrap();
        let ctx = CallCtx::default();
        let new = NewCustomer {
            email: "a@example.com".into(),
            ..NewCustomer::default()
        };
        let ca = call::<ops::CreateCustomer>(&a, &ctx, &new).unwrap();
        let cb = call::<ops::CreateCustomer>(&b, &ctx, &new).unwrap();
        assert_ne!(ca.id, cb.id);
    }

    #[test]
    fn a_subscription_billed_at_once_emits_what_its_answer_cannot_show() {
        let fake = FakeHost::new();
        let mock: MockProvider = instance(json!({"webhook_secret": "s"}), &fake).unwrap();
        let ctx = CallCtx::default();
        let c = call::<ops::CreateCustomer>(
            &mock,
            &ctx,
            &NewCustomer {
                email: "a@example.com".into(),
                ..NewCustomer::default()
            },
        )
        .unwrap();
        let pm = call::<ops::AttachPaymentMethod>(
            &mock,
            &ctx,
            &AttachPaymentMethod {
                customer_id: c.id.clone(),
                payment_method: "pm_card_visa".into(),
            },
        )
        .unwrap();
        call::<ops::SetDefaultPaymentMethod>(
            &mock,
            &ctx,
            &SetDefaultPaymentMethod {
                customer_id: c.id.clone(),
                payment_method: pm.id,
            },
        )
        .unwrap();
        let s = call::<ops::CreateSubscription>(
            &mock,
            &ctx,
            &NewSubscription {
                customer_id: Some(c.id),
                price_id: "price_basic".into(),
                ..NewSubscription::default()
            },
        )
        .unwrap();
        assert_eq!(s.status, SubscriptionStatus::Active);
        let kinds: Vec<DomainEventKind> = fake.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                DomainEventKind::PaymentCreated,
                DomainEventKind::PaymentSucceeded,
                DomainEventKind::InvoicePaid
            ]
        );
    }
}
