//! The mock provider's operations over its in-memory state.

use crate::catalog::{self, CardBehaviour};
use crate::webhook;
use payhost_plugin_api::abi_stable::std_types::{ROption, RString, RVec};
use payhost_plugin_api::{
    capabilities as cap, codes, CallCtx, Customer, CustomerUpdate, DomainEventKind,
    DomainEventReport, HostBox, HostExt, Invoice, InvoicePage, InvoiceQuery, InvoiceStatus, Money,
    NewCustomer, NewPayment, NewRefund, NewSubscription, Payment, PaymentMethod, PaymentStatus,
    Plugin, PluginConfig, PluginError, PluginMetadata, Provider, Refund, RefundStatus,
    Subscription, SubscriptionStatus, VerifiedEvent, WebhookDelivery,
};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

const DAY: i64 = 86_400;
const PERIOD: i64 = 30 * DAY;

#[derive(Default)]
struct State {
    /// Distinguishes this instance's ids from an earlier instance's (a restart or a new
    /// build starts counting again), as a real provider's ids never repeat.
    tag: String,
    seq: u64,
    customers: BTreeMap<String, Customer>,
    methods: BTreeMap<String, (PaymentMethod, CardBehaviour)>,
    payments: BTreeMap<String, Payment>,
    subscriptions: BTreeMap<String, Subscription>,
    refunds: BTreeMap<String, Refund>,
    /// In creation order.
    invoices: Vec<Invoice>,
}

impl State {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("mock_{prefix}_{}{:06}", self.tag, self.seq)
    }
}

/// One mock provider instance.
pub struct MockProvider {
    host: HostBox,
    secrets: Vec<String>,
    state: Mutex<State>,
}

fn some(s: &str) -> ROption<RString> {
    ROption::RSome(s.into())
}

fn conflict(message: String) -> PluginError {
    PluginError::new(codes::CONFLICT, message)
}

impl MockProvider {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another call panicked mid-way; the maps stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> i64 {
        self.host.now_secs()
    }

    fn emit(&self, report: DomainEventReport) {
        self.host.emit(report);
    }

    /// Resolves a payment method reference: an attached method id or a test-card token.
    fn resolve_method(st: &State, reference: &str) -> Result<(String, CardBehaviour), PluginError> {
        if let Some((pm, behaviour)) = st.methods.get(reference) {
            return Ok((pm.id.to_string(), *behaviour));
        }
        catalog::test_card(reference)
            .map(|(b, _, _)| (reference.to_owned(), b))
            .ok_or_else(|| {
                PluginError::not_found("payment method", reference).with_param("payment_method")
            })
    }

    fn payment_report(kind: DomainEventKind, p: &Payment, now: i64) -> DomainEventReport {
        let mut r = DomainEventReport::new(kind, &p.id, now);
        r.customer_id = p.customer_id.clone();
        r.payment_id = ROption::RSome(p.id.clone());
        r.amount = ROption::RSome(p.amount.clone());
        r.status = some(p.status.as_str());
        r.error = p.failure_message.clone();
        r
    }

    /// Charges a payment with a method; the outcome is the payment's new state.
    fn charge(&self, p: &mut Payment, method: &str, behaviour: CardBehaviour) {
        p.payment_method = some(method);
        match behaviour {
            CardBehaviour::Succeeds => {
                p.status = PaymentStatus::Succeeded;
                p.failure_code = ROption::RNone;
                p.failure_message = ROption::RNone;
            }
            CardBehaviour::Declined(reason) => {
                p.status = PaymentStatus::Failed;
                p.failure_code = some(reason);
                p.failure_message = some("Your card was declined.");
            }
            CardBehaviour::RequiresAction => p.status = PaymentStatus::RequiresAction,
        }
        let kind = match p.status {
            PaymentStatus::Succeeded => Some(DomainEventKind::PaymentSucceeded),
            PaymentStatus::Failed => Some(DomainEventKind::PaymentFailed),
            _ => None,
        };
        if let Some(kind) = kind {
            self.emit(Self::payment_report(kind, p, self.now()));
        }
    }

    fn customer_exists(st: &State, id: &str) -> Result<(), PluginError> {
        if st.customers.contains_key(id) {
            Ok(())
        } else {
            Err(PluginError::not_found("customer", id).with_param("customer"))
        }
    }

    /// Bills one period of a subscription: an invoice, charged to the default method if any.
    fn bill(&self, st: &mut State, sub: &mut Subscription, price: Money) -> Invoice {
        let now = self.now();
        let invoice_id = st.next_id("in");
        let payment_id = st.next_id("pi");
        let default_pm = st
            .customers
            .get(sub.customer_id.as_str())
            .and_then(|c| c.default_payment_method.clone().into_option());
        let mut payment = Payment {
            id: payment_id.as_str().into(),
            customer_id: ROption::RSome(sub.customer_id.clone()),
            amount: price.clone(),
            amount_refunded: 0,
            status: PaymentStatus::RequiresPaymentMethod,
            client_secret: some(&format!("{payment_id}_secret_mock")),
            payment_method: ROption::RNone,
            failure_code: ROption::RNone,
            failure_message: ROption::RNone,
            created: now,
            metadata: RVec::new(),
        };
        if let Some(pm) = default_pm {
            if let Ok((id, behaviour)) = Self::resolve_method(st, &pm) {
                self.charge(&mut payment, &id, behaviour);
            }
        }
        let paid = payment.status == PaymentStatus::Succeeded;
        let invoice = Invoice {
            id: invoice_id.as_str().into(),
            customer_id: sub.customer_id.clone(),
            subscription_id: ROption::RSome(sub.id.clone()),
            payment_id: ROption::RSome(payment.id.clone()),
            amount_due: price.clone(),
            amount_paid: if paid { price.amount } else { 0 },
            status: if paid {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::Open
            },
            pdf_url: some(&format!(
                "https://mock.payhost.invalid/invoices/{invoice_id}.pdf"
            )),
            created: now,
        };
        sub.status = if paid {
            SubscriptionStatus::Active
        } else {
            SubscriptionStatus::Incomplete
        };
        sub.client_secret = if paid {
            ROption::RNone
        } else {
            payment.client_secret.clone()
        };
        let mut report = DomainEventReport::new(
            if paid {
                DomainEventKind::InvoicePaid
            } else {
                DomainEventKind::InvoicePaymentFailed
            },
            &invoice_id,
            now,
        );
        report.customer_id = ROption::RSome(sub.customer_id.clone());
        report.subscription_id = ROption::RSome(sub.id.clone());
        report.invoice_id = some(&invoice_id);
        report.payment_id = some(&payment_id);
        report.amount = ROption::RSome(price);
        report.status = some(invoice.status.as_str());
        report.error = payment.failure_message.clone();
        if paid || payment.status == PaymentStatus::Failed {
            self.emit(report);
        }
        st.payments.insert(payment_id, payment);
        st.invoices.push(invoice.clone());
        invoice
    }

    fn sub_report(kind: DomainEventKind, s: &Subscription, now: i64) -> DomainEventReport {
        let mut r = DomainEventReport::new(kind, &s.id, now);
        r.customer_id = ROption::RSome(s.customer_id.clone());
        r.subscription_id = ROption::RSome(s.id.clone());
        r.plan_id = ROption::RSome(s.price_id.clone());
        r.status = some(s.status.as_str());
        r.cancel_at_period_end = s.cancel_at_period_end;
        r
    }

    fn with_subscription<T>(
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
}

impl Plugin for MockProvider {
    fn metadata() -> PluginMetadata {
        PluginMetadata::new("mock", env!("CARGO_PKG_VERSION"))
            .require(&["webhook_secret"])
            .capabilities(&cap::ALL)
            .webhook_header(webhook::SIGNATURE_HEADER)
    }

    fn new(config: PluginConfig, host: HostBox) -> Result<Self, PluginError> {
        config.require("webhook_secret")?;
        let secrets = config
            .get_all("webhook_secret")
            .into_iter()
            .map(str::to_owned)
            .collect();
        host.info("mock provider ready");
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Milliseconds since the epoch, in base 36, with this library's instance count.
        let mut t = u64::try_from(host.now_millis()).unwrap_or_default();
        let mut tag = String::new();
        while t > 0 {
            tag.insert(0, char::from_digit((t % 36) as u32, 36).unwrap_or('0'));
            t /= 36;
        }
        let state = State {
            tag: format!("{tag}{n}x"),
            ..State::default()
        };
        Ok(Self {
            host,
            secrets,
            state: Mutex::new(state),
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
        let mut st = self.state();
        let id = st.next_id("cus");
        let c = Customer {
            id: id.as_str().into(),
            email: req.email,
            name: req.name,
            default_payment_method: ROption::RNone,
            metadata: req.metadata,
        };
        st.customers.insert(id, c.clone());
        Ok(c)
    }

    fn get_customer(&self, _ctx: &CallCtx, id: &str) -> Result<Customer, PluginError> {
        self.state()
            .customers
            .get(id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("customer", id))
    }

    fn update_customer(
        &self,
        _ctx: &CallCtx,
        req: CustomerUpdate,
    ) -> Result<Customer, PluginError> {
        let mut st = self.state();
        let c = st
            .customers
            .get_mut(req.customer_id.as_str())
            .ok_or_else(|| PluginError::not_found("customer", &req.customer_id))?;
        if let ROption::RSome(email) = req.email {
            if !email.contains('@') {
                return Err(PluginError::invalid(
                    "email",
                    format!("'{email}' is not an email address"),
                ));
            }
            c.email = email;
        }
        if let ROption::RSome(name) = req.name {
            c.name = ROption::RSome(name);
        }
        for kv in req.metadata {
            c.metadata.retain(|m| m.key != kv.key);
            if !kv.value.is_empty() {
                c.metadata.push(kv);
            }
        }
        Ok(c.clone())
    }

    fn attach_payment_method(
        &self,
        _ctx: &CallCtx,
        customer_id: &str,
        token: &str,
    ) -> Result<PaymentMethod, PluginError> {
        let mut st = self.state();
        Self::customer_exists(&st, customer_id)?;
        let (behaviour, brand, last4) = catalog::test_card(token).ok_or_else(|| {
            PluginError::not_found("payment method", token).with_param("payment_method")
        })?;
        let id = st.next_id("pm");
        let pm = PaymentMethod {
            id: id.as_str().into(),
            customer_id: some(customer_id),
            kind: "card".into(),
            brand: some(brand),
            last4: some(last4),
            exp_month: 12,
            exp_year: 2034,
        };
        st.methods.insert(id, (pm.clone(), behaviour));
        Ok(pm)
    }

    fn list_payment_methods(
        &self,
        _ctx: &CallCtx,
        customer_id: &str,
    ) -> Result<Vec<PaymentMethod>, PluginError> {
        let st = self.state();
        Self::customer_exists(&st, customer_id)?;
        Ok(st
            .methods
            .values()
            .filter(|(pm, _)| {
                pm.customer_id.as_ref().map(RString::as_str).into_option() == Some(customer_id)
            })
            .map(|(pm, _)| pm.clone())
            .collect())
    }

    fn set_default_payment_method(
        &self,
        _ctx: &CallCtx,
        customer_id: &str,
        pm_id: &str,
    ) -> Result<Customer, PluginError> {
        let mut st = self.state();
        Self::customer_exists(&st, customer_id)?;
        let owned = st.methods.get(pm_id).is_some_and(|(pm, _)| {
            pm.customer_id.as_ref().map(RString::as_str).into_option() == Some(customer_id)
        });
        if !owned {
            return Err(PluginError::invalid(
                "payment_method",
                format!("payment method '{pm_id}' is not attached to customer '{customer_id}'"),
            ));
        }
        let c = st.customers.get_mut(customer_id).expect("checked above");
        c.default_payment_method = some(pm_id);
        Ok(c.clone())
    }

    fn create_payment(&self, _ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        if req.amount.amount <= 0 {
            return Err(PluginError::invalid(
                "amount",
                "amount must be a positive number of minor units",
            ));
        }
        let mut st = self.state();
        Self::customer_exists(&st, &req.customer_id)?;
        let method = match &req.payment_method {
            ROption::RSome(m) => Some(Self::resolve_method(&st, m)?),
            ROption::RNone => None,
        };
        let id = st.next_id("pi");
        let mut p = Payment {
            id: id.as_str().into(),
            customer_id: ROption::RSome(req.customer_id),
            amount: req.amount,
            amount_refunded: 0,
            status: PaymentStatus::RequiresPaymentMethod,
            client_secret: some(&format!("{id}_secret_mock")),
            payment_method: ROption::RNone,
            failure_code: ROption::RNone,
            failure_message: ROption::RNone,
            created: self.now(),
            metadata: req.metadata,
        };
        self.emit(Self::payment_report(
            DomainEventKind::PaymentCreated,
            &p,
            self.now(),
        ));
        if let Some((pm, behaviour)) = method {
            self.charge(&mut p, &pm, behaviour);
        }
        st.payments.insert(id, p.clone());
        Ok(p)
    }

    fn get_payment(&self, _ctx: &CallCtx, id: &str) -> Result<Payment, PluginError> {
        self.state()
            .payments
            .get(id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("payment", id))
    }

    fn confirm_payment(
        &self,
        _ctx: &CallCtx,
        id: &str,
        method: Option<&str>,
    ) -> Result<Payment, PluginError> {
        let mut st = self.state();
        let mut p = st
            .payments
            .get(id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("payment", id))?;
        match p.status {
            PaymentStatus::Succeeded | PaymentStatus::Canceled | PaymentStatus::Processing => {
                return Err(conflict(format!(
                    "payment '{id}' is {} and cannot be confirmed",
                    p.status.as_str()
                )))
            }
            _ => {}
        }
        let customer_default = p
            .customer_id
            .as_ref()
            .into_option()
            .and_then(|c| st.customers.get(c.as_str()))
            .and_then(|c| c.default_payment_method.clone().into_option());
        let reference = method
            .map(str::to_owned)
            .or_else(|| p.payment_method.clone().into_option().map(Into::into))
            .or_else(|| customer_default.map(Into::into))
            .ok_or_else(|| {
                PluginError::invalid(
                    "payment_method",
                    "a payment method is needed to confirm this payment",
                )
            })?;
        let (pm, behaviour) = Self::resolve_method(&st, &reference)?;
        self.charge(&mut p, &pm, behaviour);
        st.payments.insert(id.to_owned(), p.clone());
        Ok(p)
    }

    fn cancel_payment(&self, _ctx: &CallCtx, id: &str) -> Result<Payment, PluginError> {
        let mut st = self.state();
        let p = st
            .payments
            .get_mut(id)
            .ok_or_else(|| PluginError::not_found("payment", id))?;
        if matches!(p.status, PaymentStatus::Succeeded | PaymentStatus::Canceled) {
            return Err(conflict(format!(
                "payment '{id}' is {} and cannot be canceled",
                p.status.as_str()
            )));
        }
        p.status = PaymentStatus::Canceled;
        Ok(p.clone())
    }

    fn create_subscription(
        &self,
        _ctx: &CallCtx,
        req: NewSubscription,
    ) -> Result<Subscription, PluginError> {
        let price = catalog::price(&req.price_id)
            .ok_or_else(|| PluginError::not_found("price", &req.price_id).with_param("price"))?;
        let now = self.now();
        let mut st = self.state();
        Self::customer_exists(&st, &req.customer_id)?;
        let id = st.next_id("sub");
        let trial_end = (req.trial_days > 0).then(|| now + i64::from(req.trial_days) * DAY);
        let mut sub = Subscription {
            id: id.as_str().into(),
            customer_id: req.customer_id,
            price_id: req.price_id,
            status: SubscriptionStatus::Trialing,
            cancel_at_period_end: false,
            current_period_start: now,
            current_period_end: trial_end.unwrap_or(now + PERIOD),
            trial_end: trial_end.into(),
            canceled_at: ROption::RNone,
            client_secret: ROption::RNone,
            metadata: req.metadata,
        };
        if trial_end.is_none() {
            self.bill(&mut st, &mut sub, price);
        }
        st.subscriptions.insert(id, sub.clone());
        self.emit(Self::sub_report(
            DomainEventKind::SubscriptionCreated,
            &sub,
            now,
        ));
        Ok(sub)
    }

    fn get_subscription(&self, _ctx: &CallCtx, id: &str) -> Result<Subscription, PluginError> {
        self.with_subscription(id, |_, s| Ok(s.clone()))
    }

    fn change_subscription_price(
        &self,
        _ctx: &CallCtx,
        id: &str,
        price_id: &str,
    ) -> Result<Subscription, PluginError> {
        catalog::price(price_id)
            .ok_or_else(|| PluginError::not_found("price", price_id).with_param("price"))?;
        let now = self.now();
        let sub = self.with_subscription(id, |_, s| {
            if s.status == SubscriptionStatus::Canceled {
                return Err(conflict(format!("subscription '{id}' is canceled")));
            }
            let previous = std::mem::replace(&mut s.price_id, price_id.into());
            Ok((s.clone(), previous))
        })?;
        let mut r = Self::sub_report(DomainEventKind::SubscriptionUpdated, &sub.0, now);
        r.previous_plan_id = ROption::RSome(sub.1);
        self.emit(r);
        Ok(sub.0)
    }

    fn cancel_subscription(
        &self,
        _ctx: &CallCtx,
        id: &str,
        at_period_end: bool,
    ) -> Result<Subscription, PluginError> {
        let now = self.now();
        let sub = self.with_subscription(id, |_, s| {
            if s.status == SubscriptionStatus::Canceled {
                return Err(conflict(format!("subscription '{id}' is already canceled")));
            }
            if at_period_end {
                s.cancel_at_period_end = true;
            } else {
                s.status = SubscriptionStatus::Canceled;
                s.cancel_at_period_end = false;
                s.canceled_at = ROption::RSome(now);
            }
            Ok(s.clone())
        })?;
        let kind = if at_period_end {
            DomainEventKind::SubscriptionUpdated
        } else {
            DomainEventKind::SubscriptionCancelled
        };
        self.emit(Self::sub_report(kind, &sub, now));
        Ok(sub)
    }

    fn reactivate_subscription(
        &self,
        _ctx: &CallCtx,
        id: &str,
    ) -> Result<Subscription, PluginError> {
        let now = self.now();
        let sub = self.with_subscription(id, |_, s| {
            if s.status == SubscriptionStatus::Canceled {
                return Err(conflict(format!(
                    "subscription '{id}' was canceled and cannot be reactivated; create a new one"
                )));
            }
            if !s.cancel_at_period_end {
                return Err(conflict(format!(
                    "subscription '{id}' is not scheduled for cancellation"
                )));
            }
            s.cancel_at_period_end = false;
            Ok(s.clone())
        })?;
        self.emit(Self::sub_report(
            DomainEventKind::SubscriptionUpdated,
            &sub,
            now,
        ));
        Ok(sub)
    }

    fn create_refund(&self, _ctx: &CallCtx, req: NewRefund) -> Result<Refund, PluginError> {
        if let ROption::RSome(reason) = &req.reason {
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
        let mut st = self.state();
        let id = st.next_id("re");
        let p = st
            .payments
            .get_mut(req.payment_id.as_str())
            .ok_or_else(|| {
                PluginError::not_found("payment", &req.payment_id).with_param("payment")
            })?;
        if p.status != PaymentStatus::Succeeded {
            return Err(conflict(format!(
                "payment '{}' is {} and cannot be refunded",
                p.id,
                p.status.as_str()
            )));
        }
        let remaining = p.amount.amount - p.amount_refunded;
        let amount = req.amount.into_option().unwrap_or(remaining);
        if amount <= 0 || amount > remaining {
            let msg = if remaining == 0 {
                format!("payment '{}' has already been fully refunded", p.id)
            } else {
                format!("refund amount {amount} must be between 1 and the {remaining} remaining")
            };
            return Err(PluginError::invalid("amount", msg));
        }
        p.amount_refunded += amount;
        let refund = Refund {
            id: id.as_str().into(),
            payment_id: p.id.clone(),
            amount: Money::new(amount, p.amount.currency.clone()),
            status: RefundStatus::Succeeded,
            reason: req.reason,
            created: now,
        };
        let mut r = DomainEventReport::new(DomainEventKind::RefundProcessed, &id, now);
        r.payment_id = ROption::RSome(p.id.clone());
        r.customer_id = p.customer_id.clone();
        r.amount = ROption::RSome(refund.amount.clone());
        r.status = some("succeeded");
        st.refunds.insert(id, refund.clone());
        drop(st);
        self.emit(r);
        Ok(refund)
    }

    fn get_invoice(&self, _ctx: &CallCtx, id: &str) -> Result<Invoice, PluginError> {
        self.state()
            .invoices
            .iter()
            .find(|i| i.id.as_str() == id)
            .cloned()
            .ok_or_else(|| PluginError::not_found("invoice", id))
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
            .skip_while(|i| matches!(&q.starting_after, ROption::RSome(after) if i.id != *after));
        if q.starting_after.is_some() && newest_first.next().is_none() {
            return Err(PluginError::invalid(
                "starting_after",
                "no such invoice in this list",
            ));
        }
        let page: Vec<Invoice> = newest_first
            .by_ref()
            .take(q.limit as usize)
            .cloned()
            .collect();
        Ok(InvoicePage {
            invoices: page.into(),
            has_more: newest_first.next().is_some(),
        })
    }

    fn verify_webhook(&self, d: WebhookDelivery) -> Result<VerifiedEvent, PluginError> {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        webhook::verify(&d, &secrets)
    }

    fn map_webhook(&self, event: VerifiedEvent) -> Result<Vec<DomainEventReport>, PluginError> {
        webhook::map(&event)
    }
}
