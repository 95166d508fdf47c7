//! The checks, in the order they run. Each is one rule; its name says which.

use super::{call, Check, Instance, Outcome, Report, Target};
use crate::api::ops::{self, Operation};
use crate::api::{
    capabilities as cap, codes, AttachPaymentMethod, Bytes, CallCtx, CancelSubscription,
    CaptureMethod, CapturePayment, ChangeSubscriptionPrice, ConfirmPayment, Currency, CustomerRef,
    CustomerUpdate, DetachPaymentMethod, Headers, InvoiceQuery, Manifest, Money, NewCustomer,
    NewPayment, NewRefund, NewSubscription, NextAction, ObjectRef, Payer, Payment, PaymentStatus,
    PluginError, SetDefaultPaymentMethod, SubscriptionStatus, WebhookDelivery, WebhookEvent,
    CONTRACT_VERSION,
};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

/// Minor units every test payment is made for.
const AMOUNT: i64 = 1000;
const RETURN_URL: &str = "https://conformance.payhost.invalid/return";
const CANCEL_URL: &str = "https://conformance.payhost.invalid/cancel";
/// An id no provider has: probes use it to see whether an operation is implemented.
const MISSING: &str = "conformance_no_such_object";

fn err(e: &PluginError) -> String {
    format!("{} ({})", e.message, e.code)
}

/// A request the provider must refuse as wrong for the object's state (too much refunded or
/// captured): refused with `invalid_request` or `conflict`. Another error is not that
/// refusal: the provider away, a deadline, a decoding bug or a panic say nothing about the
/// rule, and an acceptance breaks it. `what` names the request; `id` the accepted object.
fn refused<T>(
    what: &str,
    answer: Result<T, PluginError>,
    id: impl Fn(&T) -> String,
) -> Result<(), String> {
    match answer {
        Ok(t) => Err(format!("{what} was accepted: {}", id(&t))),
        Err(e) if e.code == codes::INVALID_REQUEST || e.code == codes::CONFLICT => Ok(()),
        Err(e) => Err(format!(
            "{what} failed with {}, not refused as {} or {}: {}",
            e.code,
            codes::INVALID_REQUEST,
            codes::CONFLICT,
            e.message
        )),
    }
}

struct Suite<'t> {
    target: &'t dyn Target,
    manifest: Manifest,
    checks: RefCell<Vec<Check>>,
    run_id: String,
    seq: Cell<u64>,
    exercised: RefCell<BTreeSet<&'static str>>,
    unsupported: RefCell<BTreeSet<&'static str>>,
    currency: Currency,
}

/// Runs the whole suite against `target`.
pub fn run(target: &dyn Target) -> Report {
    let manifest = target.manifest();
    let currency = manifest
        .fixtures
        .currency
        .as_deref()
        .and_then(|c| Currency::parse(c).ok())
        .unwrap_or_else(|| Currency::parse("usd").expect("usd is known"));
    let s = Suite {
        target,
        run_id: format!("{:x}", crate::ids::random_u64() >> 16),
        manifest,
        checks: RefCell::new(Vec::new()),
        seq: Cell::new(0),
        exercised: RefCell::new(BTreeSet::new()),
        unsupported: RefCell::new(BTreeSet::new()),
        currency,
    };
    s.manifest_checks();
    let Some(a) = s.attempt("instance.starts", || target.instance().map_err(|e| err(&e))) else {
        return s.finish();
    };
    let a = &*a;
    let customer = s.customers(a);
    s.ids_never_repeat(a, customer.as_deref());
    s.payment_methods(a, customer.as_deref());
    s.payments(a, customer.as_deref());
    s.refunds(a, customer.as_deref());
    s.manual_capture(a, customer.as_deref());
    s.redirects(a, customer.as_deref());
    s.subscriptions(a, customer.as_deref());
    s.invoices(a, customer.as_deref());
    s.webhooks(a);
    s.capabilities_complete(a);
    s.finish()
}

impl Suite<'_> {
    fn finish(self) -> Report {
        Report {
            plugin: format!("{} {}", self.manifest.name, self.manifest.version),
            checks: self.checks.into_inner(),
        }
    }

    fn record(&self, name: &str, outcome: Outcome) {
        self.checks.borrow_mut().push(Check {
            name: name.to_owned(),
            outcome,
        });
    }

    /// Runs one check; its value when it passed.
    fn attempt<T>(&self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
        match f() {
            Ok(v) => {
                self.record(name, Outcome::Pass);
                Some(v)
            }
            Err(why) => {
                self.record(name, Outcome::Fail(why));
                None
            }
        }
    }

    fn check(&self, name: &str, f: impl FnOnce() -> Result<(), String>) {
        self.attempt(name, f);
    }

    fn skip(&self, name: &str, why: &str) {
        self.record(name, Outcome::Skip(why.to_owned()));
    }

    fn has(&self, capability: &str) -> bool {
        self.manifest.has(capability)
    }

    fn ctx(&self) -> CallCtx {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        CallCtx {
            idempotency_key: Some(format!("conformance-{}-{n}", self.run_id)),
            request_id: format!("conformance-{}-{n}", self.run_id),
            ..CallCtx::default()
        }
    }

    /// Calls an operation, noting that it was exercised and whether it was implemented.
    fn op<O: Operation>(
        &self,
        instance: &dyn Instance,
        request: &O::Request,
    ) -> Result<O::Response, PluginError> {
        let result = call::<O>(instance, &self.ctx(), request);
        self.exercised.borrow_mut().insert(O::NAME);
        if let Err(e) = &result {
            // A refused parameter (param set) is a supported operation saying "not that".
            if e.is(codes::UNSUPPORTED) && e.param.is_none() {
                self.unsupported.borrow_mut().insert(O::NAME);
            }
        }
        result
    }

    /// [`Suite::op`] with the error as the check's failure text.
    fn must<O: Operation>(
        &self,
        instance: &dyn Instance,
        request: &O::Request,
    ) -> Result<O::Response, String> {
        self.op::<O>(instance, request)
            .map_err(|e| format!("{} failed: {}", O::NAME, err(&e)))
    }

    fn payer(&self) -> Payer {
        Payer {
            email: Some(format!("conformance+{}@example.com", self.run_id)),
            name: Some("Conformance Check".into()),
        }
    }

    fn new_payment(&self, customer: Option<&str>, method: Option<&str>) -> NewPayment {
        let mut p = NewPayment::new(Money::new(AMOUNT, self.currency.clone()));
        p.customer_id = customer.map(str::to_owned);
        p.payer = self.payer();
        p.payment_method = method.map(str::to_owned);
        p.return_url = Some(RETURN_URL.into());
        p.cancel_url = Some(CANCEL_URL.into());
        p.description = Some("payhost conformance".into());
        p
    }

    fn approvable(&self) -> bool {
        self.manifest.fixtures.approve_redirect_by_visiting
    }

    /// Completes a payment waiting for the buyer's approval, when the fixtures allow it:
    /// the buyer opens the redirect URL; then, where the provider waits for the merchant
    /// after the approval (PayPal: an approved order waits for its capture), the payment is
    /// confirmed. Where the approval itself completes it (Stripe's 3-D Secure), it is read.
    fn approve(&self, instance: &dyn Instance, p: Payment) -> Result<Payment, String> {
        match (&p.status, &p.next_action) {
            (PaymentStatus::RequiresAction, Some(NextAction::RedirectToUrl { url, .. }))
                if self.approvable() =>
            {
                self.target.visit(url)?;
                let read = self.must::<ops::GetPayment>(instance, &ObjectRef::new(&p.id))?;
                if read.status != PaymentStatus::RequiresConfirmation {
                    return Ok(read);
                }
                self.must::<ops::ConfirmPayment>(
                    instance,
                    &ConfirmPayment {
                        id: p.id.clone(),
                        payment_method: None,
                        return_url: Some(RETURN_URL.into()),
                    },
                )
            }
            _ => Ok(p),
        }
    }

    /// A payment that succeeded, by the plugin's own means (a method that succeeds, or an
    /// approvable redirect), or why there is none.
    fn paid(&self, instance: &dyn Instance, customer: Option<&str>) -> Result<Payment, String> {
        let method = self.manifest.fixtures.payment_method_succeeds.as_deref();
        if method.is_none() && !(self.has(cap::REDIRECTS) && self.approvable()) {
            return Err(
                "no fixture payment method that succeeds, and no approvable redirect".into(),
            );
        }
        let p = self.must::<ops::CreatePayment>(instance, &self.new_payment(customer, method))?;
        let p = self.approve(instance, p)?;
        if p.status != PaymentStatus::Succeeded {
            return Err(format!(
                "a payment that should succeed is '{}' ({:?})",
                p.status, p.failure_message
            ));
        }
        Ok(p)
    }

    // ------------------------------------------------------------------ manifest

    fn manifest_checks(&self) {
        let m = &self.manifest;
        self.check("manifest.declares_itself", || {
            if m.name.trim().is_empty() || m.version.trim().is_empty() {
                return Err("the manifest needs a name and a version".into());
            }
            if m.plugin_type != crate::api::PLUGIN_TYPE_PAYMENT {
                return Err(format!("plugin type '{}' is not 'payment'", m.plugin_type));
            }
            let major = |v: &str| v.split('.').next().unwrap_or("").to_owned();
            if major(&m.contract) != major(CONTRACT_VERSION) {
                return Err(format!(
                    "built against contract {}, this suite checks {CONTRACT_VERSION}",
                    m.contract
                ));
            }
            Ok(())
        });
        self.check("manifest.capabilities_known", || {
            let unknown: Vec<&String> = m
                .capabilities
                .iter()
                .filter(|c| !cap::ALL.contains(&c.as_str()))
                .collect();
            if unknown.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "capabilities this contract does not know: {unknown:?}"
                ))
            }
        });
        if m.has(cap::PAYMENT_METHODS) && !m.has(cap::CUSTOMERS) {
            self.record(
                "manifest.capabilities_consistent",
                Outcome::Fail("payment_methods needs customers".into()),
            );
        }
    }

    // ------------------------------------------------------------------ customers

    fn customers(&self, a: &dyn Instance) -> Option<String> {
        if !self.has(cap::CUSTOMERS) {
            self.skip(
                "customers.create_get_update",
                "no customers capability: the host keeps customers",
            );
            return None;
        }
        self.attempt("customers.create_get_update", || {
            let email = self.payer().email.unwrap_or_default();
            let c = self.must::<ops::CreateCustomer>(
                a,
                &NewCustomer {
                    email: email.clone(),
                    name: Some("Conformance Check".into()),
                    metadata: [("source".to_owned(), "conformance".to_owned())].into(),
                },
            )?;
            if c.id.is_empty() || c.email != email {
                return Err(format!(
                    "created customer id '{}' email '{}'",
                    c.id, c.email
                ));
            }
            let read = self.must::<ops::GetCustomer>(a, &ObjectRef::new(&c.id))?;
            if read.id != c.id || read.email != email {
                return Err(format!(
                    "get_customer('{}') answered '{}' <{}>",
                    c.id, read.id, read.email
                ));
            }
            let renamed = self.must::<ops::UpdateCustomer>(
                a,
                &CustomerUpdate {
                    customer_id: c.id.clone(),
                    name: Some("Renamed Check".into()),
                    ..CustomerUpdate::default()
                },
            )?;
            if renamed.id != c.id || renamed.name.as_deref() != Some("Renamed Check") {
                return Err(format!("update_customer answered {renamed:?}"));
            }
            match self.op::<ops::GetCustomer>(a, &ObjectRef::new(MISSING)) {
                Err(e) if e.is(codes::NOT_FOUND) => Ok(c.id),
                other => Err(format!(
                    "get_customer of an unknown id answered {other:?}, not not_found"
                )),
            }
        })
    }

    // ------------------------------------------------------------------ ids

    fn ids_never_repeat(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "ids.never_repeat";
        if customer.is_none() && !self.has(cap::PAYMENTS) {
            return self.skip(
                NAME,
                "creates nothing: neither customers nor payments are declared",
            );
        }
        let b = match self.target.instance() {
            Ok(b) => b,
            Err(e) => {
                self.record(
                    NAME,
                    Outcome::Fail(format!("a second instance did not start: {}", err(&e))),
                );
                return;
            }
        };
        let b = &*b;
        self.check(NAME, || {
            let mut seen: Vec<(String, &str)> = Vec::new();
            let mut note = |id: String, whence: &'static str| -> Result<(), String> {
                if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
                    return Err(format!(
                        "id '{id}' came back from {whence} after {first}: provider ids must never \
                         repeat across instances or restarts (payhost keys its records on them)"
                    ));
                }
                seen.push((id, whence));
                Ok(())
            };
            if let Some(c) = customer {
                note(c.to_owned(), "the first instance")?;
            }
            for (inst, whence) in [
                (a, "the first instance"),
                (b, "a second instance (a restart)"),
            ] {
                let own = match customer {
                    Some(_) => {
                        let c = self.must::<ops::CreateCustomer>(
                            inst,
                            &NewCustomer {
                                email: format!("conformance-ids+{}@example.com", self.run_id),
                                ..NewCustomer::default()
                            },
                        )?;
                        note(c.id.clone(), whence)?;
                        Some(c.id)
                    }
                    None => None,
                };
                if self.has(cap::PAYMENTS) {
                    let p = self.must::<ops::CreatePayment>(
                        inst,
                        &self.new_payment(own.as_deref(), None),
                    )?;
                    note(p.id, whence)?;
                }
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ payment methods

    fn payment_methods(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "payment_methods.attach_list_default";
        if !self.has(cap::PAYMENT_METHODS) {
            return self.skip(NAME, "no payment_methods capability");
        }
        let (Some(customer), Some(method)) = (
            customer,
            self.manifest.fixtures.payment_method_succeeds.as_deref(),
        ) else {
            return self.skip(
                NAME,
                "needs a customer and the payment_method_succeeds fixture",
            );
        };
        self.check(NAME, || {
            let pm = self.must::<ops::AttachPaymentMethod>(
                a,
                &AttachPaymentMethod {
                    customer_id: customer.into(),
                    payment_method: method.into(),
                },
            )?;
            let list = self.must::<ops::ListPaymentMethods>(
                a,
                &CustomerRef {
                    customer_id: customer.into(),
                },
            )?;
            if !list.data.iter().any(|m| m.id == pm.id) {
                return Err(format!(
                    "attached '{}' is not in the customer's list",
                    pm.id
                ));
            }
            let c = self.must::<ops::SetDefaultPaymentMethod>(
                a,
                &SetDefaultPaymentMethod {
                    customer_id: customer.into(),
                    payment_method: pm.id.clone(),
                },
            )?;
            if c.default_payment_method.as_deref() != Some(pm.id.as_str()) {
                return Err(format!(
                    "default payment method is {:?}, not '{}'",
                    c.default_payment_method, pm.id
                ));
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ payments

    fn payments(&self, a: &dyn Instance, customer: Option<&str>) {
        if !self.has(cap::PAYMENTS) {
            for name in ["payments.succeeds", "payments.declines", "payments.cancel"] {
                self.skip(name, "no payments capability");
            }
            return;
        }
        let f = &self.manifest.fixtures;
        match f.payment_method_succeeds.as_deref() {
            None => self.skip("payments.succeeds", "no payment_method_succeeds fixture"),
            Some(method) => self.check("payments.succeeds", || {
                let p =
                    self.must::<ops::CreatePayment>(a, &self.new_payment(customer, Some(method)))?;
                let p = self.approve(a, p)?;
                if p.status != PaymentStatus::Succeeded || p.amount.amount != AMOUNT {
                    return Err(format!("status '{}', amount {}", p.status, p.amount.amount));
                }
                if p.amount_received != AMOUNT {
                    return Err(format!(
                        "a succeeded payment of {AMOUNT} reports amount_received {}",
                        p.amount_received
                    ));
                }
                let read = self.must::<ops::GetPayment>(a, &ObjectRef::new(&p.id))?;
                if read.id != p.id || read.status != PaymentStatus::Succeeded {
                    return Err(format!(
                        "get_payment answered '{}' '{}'",
                        read.id, read.status
                    ));
                }
                Ok(())
            }),
        }
        match f.payment_method_declines.as_deref() {
            None => self.skip("payments.declines", "no payment_method_declines fixture"),
            Some(method) => self.check("payments.declines", || {
                match self.op::<ops::CreatePayment>(a, &self.new_payment(customer, Some(method))) {
                    Ok(p) if p.status == PaymentStatus::Failed && p.failure_code.is_some() => Ok(()),
                    Ok(p) => Err(format!(
                        "a declined card answered status '{}' failure_code {:?}: expected 'failed' with a code",
                        p.status, p.failure_code
                    )),
                    Err(e) if e.is(codes::CARD_DECLINED) => Ok(()),
                    Err(e) => Err(format!("a declined card answered {}", err(&e))),
                }
            }),
        }
        match f.payment_method_requires_action.as_deref() {
            None => self.skip(
                "payments.requires_action",
                "no payment_method_requires_action fixture",
            ),
            Some(method) => self.check("payments.requires_action", || {
                let p =
                    self.must::<ops::CreatePayment>(a, &self.new_payment(customer, Some(method)))?;
                if p.status != PaymentStatus::RequiresAction || p.next_action.is_none() {
                    return Err(format!(
                        "status '{}' next_action {:?}: expected requires_action with a next action",
                        p.status, p.next_action
                    ));
                }
                Ok(())
            }),
        }
        self.check("payments.cancel", || {
            let p = self.must::<ops::CreatePayment>(a, &self.new_payment(customer, None))?;
            if matches!(p.status, PaymentStatus::Succeeded | PaymentStatus::Failed) {
                return Err(format!(
                    "a payment without a method is already '{}'",
                    p.status
                ));
            }
            let c = self.must::<ops::CancelPayment>(a, &ObjectRef::new(&p.id))?;
            if c.status != PaymentStatus::Canceled {
                return Err(format!("cancel_payment answered status '{}'", c.status));
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ refunds

    fn refund(
        &self,
        a: &dyn Instance,
        payment: &str,
        amount: Option<i64>,
    ) -> Result<crate::api::Refund, PluginError> {
        self.op::<ops::CreateRefund>(
            a,
            &NewRefund {
                payment_id: payment.into(),
                amount,
                reason: Some("requested_by_customer".into()),
                ..NewRefund::default()
            },
        )
    }

    fn refunds(&self, a: &dyn Instance, customer: Option<&str>) {
        if !self.has(cap::REFUNDS) {
            self.skip("refunds.partial_then_rest", "no refunds capability");
            self.skip("refunds.refused_above_remaining", "no refunds capability");
            return;
        }
        let paid = match self.paid(a, customer) {
            Ok(p) => p,
            Err(why) => {
                self.record("refunds.partial_then_rest", Outcome::Skip(why.clone()));
                self.record("refunds.refused_above_remaining", Outcome::Skip(why));
                return;
            }
        };
        let ok_status = |r: &crate::api::Refund| {
            matches!(
                r.status,
                crate::api::RefundStatus::Succeeded | crate::api::RefundStatus::Pending
            )
        };
        let partial = self.attempt("refunds.partial_then_rest", || {
            let r = self.refund(a, &paid.id, Some(300)).map_err(|e| err(&e))?;
            if r.amount.amount != 300 || !ok_status(&r) || r.payment_id != paid.id {
                return Err(format!("a refund of 300 answered {r:?}"));
            }
            Ok(())
        });
        self.check("refunds.refused_above_remaining", || {
            if partial.is_none() {
                return Err("the partial refund failed first".into());
            }
            refused(
                &format!(
                    "a refund of {} with {} remaining",
                    AMOUNT - 300 + 1,
                    AMOUNT - 300
                ),
                self.refund(a, &paid.id, Some(AMOUNT - 300 + 1)),
                |r| r.id.clone(),
            )?;
            let rest = self
                .refund(a, &paid.id, None)
                .map_err(|e| format!("refunding the rest: {}", err(&e)))?;
            if rest.amount.amount != AMOUNT - 300 {
                return Err(format!(
                    "refunding the rest refunded {}, not {}",
                    rest.amount.amount,
                    AMOUNT - 300
                ));
            }
            refused(
                "a refund of a fully refunded payment",
                self.refund(a, &paid.id, Some(1)),
                |r| r.id.clone(),
            )
        });
    }

    // ------------------------------------------------------------------ manual capture

    fn authorized(&self, a: &dyn Instance, customer: Option<&str>) -> Result<Payment, String> {
        let method = self.manifest.fixtures.payment_method_succeeds.as_deref();
        let mut req = self.new_payment(customer, method);
        req.capture_method = CaptureMethod::Manual;
        let p = self.must::<ops::CreatePayment>(a, &req)?;
        let p = self.approve(a, p)?;
        if p.status != PaymentStatus::RequiresCapture {
            return Err(format!(
                "a manual-capture payment is '{}', not requires_capture",
                p.status
            ));
        }
        if p.capture_method != CaptureMethod::Manual {
            return Err(format!(
                "capture_method is '{}', not manual",
                p.capture_method
            ));
        }
        Ok(p)
    }

    fn manual_capture(&self, a: &dyn Instance, customer: Option<&str>) {
        let names = [
            "manual_capture.capture_part",
            "manual_capture.refused_above_capturable",
            "manual_capture.void",
        ];
        if !self.has(cap::MANUAL_CAPTURE) {
            for n in names {
                self.skip(n, "no manual_capture capability");
            }
            return;
        }
        if self.manifest.fixtures.payment_method_succeeds.is_none() && !self.approvable() {
            for n in names {
                self.skip(
                    n,
                    "no payment_method_succeeds fixture and no approvable redirect",
                );
            }
            return;
        }
        self.check(names[0], || {
            let p = self.authorized(a, customer)?;
            let c = self.must::<ops::CapturePayment>(
                a,
                &CapturePayment {
                    id: p.id.clone(),
                    amount: Some(600),
                },
            )?;
            if c.status != PaymentStatus::Succeeded || c.amount_received != 600 {
                return Err(format!(
                    "capturing 600 of {AMOUNT} answered status '{}' amount_received {}",
                    c.status, c.amount_received
                ));
            }
            if self.has(cap::REFUNDS) {
                refused(
                    "a refund of 601 of a 600 capture",
                    self.refund(a, &p.id, Some(601)),
                    |r| r.id.clone(),
                )?;
            }
            Ok(())
        });
        self.check(names[1], || {
            let p = self.authorized(a, customer)?;
            refused(
                &format!("capturing {} of an authorization of {AMOUNT}", AMOUNT + 1),
                self.op::<ops::CapturePayment>(
                    a,
                    &CapturePayment {
                        id: p.id.clone(),
                        amount: Some(AMOUNT + 1),
                    },
                ),
                |c| format!("status '{}'", c.status),
            )
        });
        self.check(names[2], || {
            let p = self.authorized(a, customer)?;
            let v = self.must::<ops::CancelPayment>(a, &ObjectRef::new(&p.id))?;
            if v.status != PaymentStatus::Canceled {
                return Err(format!("voiding an authorization answered '{}'", v.status));
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ redirects

    fn redirects(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "redirects.approve_then_confirm";
        if !self.has(cap::REDIRECTS) {
            return self.skip(NAME, "no redirects capability");
        }
        let method = self
            .manifest
            .fixtures
            .payment_method_requires_action
            .as_deref();
        let redirect = self.attempt("redirects.next_action", || {
            let p = self.must::<ops::CreatePayment>(a, &self.new_payment(customer, method))?;
            match (&p.status, &p.next_action) {
                (PaymentStatus::RequiresAction, Some(NextAction::RedirectToUrl { url, .. }))
                    if url.starts_with("https://") || url.starts_with("http://") =>
                {
                    Ok(p)
                }
                _ => Err(format!(
                    "a payment that needs the buyer answered status '{}' next_action {:?}: expected requires_action with redirect_to_url",
                    p.status, p.next_action
                )),
            }
        });
        let Some(p) = redirect else {
            return self.skip(NAME, "no redirect to follow");
        };
        self.check("redirects.confirm_before_approval_refused", || {
            match self.op::<ops::ConfirmPayment>(
                a,
                &ConfirmPayment {
                    id: p.id.clone(),
                    ..ConfirmPayment::default()
                },
            ) {
                Ok(c) if c.status == PaymentStatus::Succeeded => {
                    Err("a payment the buyer never approved was confirmed as succeeded".into())
                }
                _ => Ok(()),
            }
        });
        if !self.approvable() {
            return self.skip(
                NAME,
                "approving a redirect needs a buyer's browser (fixture approve_redirect_by_visiting is for fakes)",
            );
        }
        self.check(NAME, || {
            let done = self.approve(a, p.clone())?;
            if done.status != PaymentStatus::Succeeded {
                return Err(format!(
                    "after approval and confirm the payment is '{}'",
                    done.status
                ));
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ subscriptions

    fn subscriptions(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "subscriptions.create_change_cancel";
        if !self.has(cap::SUBSCRIPTIONS) {
            return self.skip(NAME, "no subscriptions capability");
        }
        let Some(price) = self.manifest.fixtures.price.clone() else {
            return self.skip(NAME, "no price fixture");
        };
        self.check(NAME, || {
            let s = self.must::<ops::CreateSubscription>(
                a,
                &NewSubscription {
                    customer_id: customer.map(str::to_owned),
                    payer: self.payer(),
                    price_id: price.clone(),
                    return_url: Some(RETURN_URL.into()),
                    cancel_url: Some(CANCEL_URL.into()),
                    ..NewSubscription::default()
                },
            )?;
            if s.id.is_empty() || s.price_id != price {
                return Err(format!(
                    "created subscription '{}' with price '{}'",
                    s.id, s.price_id
                ));
            }
            if let (Some(NextAction::RedirectToUrl { url, .. }), true) =
                (&s.next_action, self.approvable())
            {
                self.target.visit(url)?;
            }
            let read = self.must::<ops::GetSubscription>(a, &ObjectRef::new(&s.id))?;
            if read.id != s.id {
                return Err(format!("get_subscription answered '{}'", read.id));
            }
            if let Some(other) = &self.manifest.fixtures.other_price {
                let changed = self.must::<ops::ChangeSubscriptionPrice>(
                    a,
                    &ChangeSubscriptionPrice {
                        id: s.id.clone(),
                        price_id: other.clone(),
                    },
                )?;
                if changed.price_id != *other && changed.next_action.is_none() {
                    return Err(format!(
                        "after a change to '{other}' the price is '{}'",
                        changed.price_id
                    ));
                }
            }
            let ended = self.must::<ops::CancelSubscription>(
                a,
                &CancelSubscription {
                    id: s.id.clone(),
                    at_period_end: false,
                },
            )?;
            if ended.status != SubscriptionStatus::Canceled {
                return Err(format!("canceling now answered '{}'", ended.status));
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ invoices

    fn invoices(&self, a: &dyn Instance, customer: Option<&str>) {
        const NAME: &str = "invoices.list";
        if !self.has(cap::INVOICES) {
            return self.skip(NAME, "no invoices capability");
        }
        let Some(customer) = customer else {
            return self.skip(NAME, "needs a customer");
        };
        self.check(NAME, || {
            let page = self.must::<ops::ListInvoices>(
                a,
                &InvoiceQuery {
                    customer_id: customer.into(),
                    limit: 10,
                    starting_after: None,
                },
            )?;
            if page.data.iter().any(|i| i.customer_id != customer) {
                return Err("the list holds another customer's invoices".into());
            }
            Ok(())
        });
    }

    // ------------------------------------------------------------------ webhooks

    fn webhooks(&self, a: &dyn Instance) {
        const NAME: &str = "webhooks.unsigned_refused";
        if !self.has(cap::WEBHOOKS) {
            return self.skip(NAME, "no webhooks capability");
        }
        self.check(NAME, || {
            let forged = WebhookDelivery {
                body: Bytes::from(r#"{"id":"evt_forged","type":"payment.succeeded"}"#),
                headers: Headers::new().with("content-type", "application/json"),
                now: 1_700_000_000,
            };
            match self.op::<ops::VerifyWebhook>(a, &forged) {
                Ok(e) => Err(format!(
                    "an unsigned delivery was accepted as event '{}'",
                    e.id
                )),
                Err(e) if e.is(codes::INVALID_SIGNATURE) => Ok(()),
                Err(e) => Err(format!(
                    "an unsigned delivery answered {}, not invalid_signature",
                    err(&e)
                )),
            }
        });
    }

    // ------------------------------------------------------------------ completeness

    /// A request that names nothing that exists: an implemented operation refuses it with
    /// its own error; one left at the kit's default answers `unsupported_operation`.
    fn probe(&self, a: &dyn Instance, op: &str) {
        let missing = || ObjectRef::new(MISSING);
        let money = Money::new(AMOUNT, self.currency.clone());
        macro_rules! p {
            ($o:ty, $req:expr) => {{
                let _ = self.op::<$o>(a, &$req);
            }};
        }
        match op {
            "create_customer" => p!(
                ops::CreateCustomer,
                NewCustomer {
                    email: "not an email".into(),
                    ..NewCustomer::default()
                }
            ),
            "get_customer" => p!(ops::GetCustomer, missing()),
            "update_customer" => p!(
                ops::UpdateCustomer,
                CustomerUpdate {
                    customer_id: MISSING.into(),
                    ..CustomerUpdate::default()
                }
            ),
            "attach_payment_method" => p!(
                ops::AttachPaymentMethod,
                AttachPaymentMethod {
                    customer_id: MISSING.into(),
                    payment_method: MISSING.into()
                }
            ),
            "list_payment_methods" => p!(
                ops::ListPaymentMethods,
                CustomerRef {
                    customer_id: MISSING.into()
                }
            ),
            "set_default_payment_method" => p!(
                ops::SetDefaultPaymentMethod,
                SetDefaultPaymentMethod {
                    customer_id: MISSING.into(),
                    payment_method: MISSING.into()
                }
            ),
            "create_payment" => p!(ops::CreatePayment, {
                let mut r = NewPayment::new(money);
                r.customer_id = Some(MISSING.into());
                r.payment_method = Some(MISSING.into());
                r
            }),
            "get_payment" => p!(ops::GetPayment, missing()),
            "confirm_payment" => p!(
                ops::ConfirmPayment,
                ConfirmPayment {
                    id: MISSING.into(),
                    ..ConfirmPayment::default()
                }
            ),
            "cancel_payment" => p!(ops::CancelPayment, missing()),
            "capture_payment" => p!(
                ops::CapturePayment,
                CapturePayment {
                    id: MISSING.into(),
                    amount: None
                }
            ),
            "create_refund" => p!(
                ops::CreateRefund,
                NewRefund {
                    payment_id: MISSING.into(),
                    ..NewRefund::default()
                }
            ),
            "create_subscription" => p!(
                ops::CreateSubscription,
                NewSubscription {
                    customer_id: Some(MISSING.into()),
                    price_id: MISSING.into(),
                    ..NewSubscription::default()
                }
            ),
            "get_subscription" => p!(ops::GetSubscription, missing()),
            "change_subscription_price" => p!(
                ops::ChangeSubscriptionPrice,
                ChangeSubscriptionPrice {
                    id: MISSING.into(),
                    price_id: MISSING.into()
                }
            ),
            "cancel_subscription" => p!(
                ops::CancelSubscription,
                CancelSubscription {
                    id: MISSING.into(),
                    at_period_end: false
                }
            ),
            "reactivate_subscription" => p!(ops::ReactivateSubscription, missing()),
            "get_invoice" => p!(ops::GetInvoice, missing()),
            "list_invoices" => p!(
                ops::ListInvoices,
                InvoiceQuery {
                    customer_id: MISSING.into(),
                    limit: 1,
                    starting_after: None
                }
            ),
            "verify_webhook" => p!(ops::VerifyWebhook, WebhookDelivery::default()),
            "map_webhook" => p!(
                ops::MapWebhook,
                WebhookEvent {
                    id: "evt_conformance_probe".into(),
                    event_type: "conformance.probe".into(),
                    created: 0,
                    payload: json!({}).to_string()
                }
            ),
            "detach_payment_method" => p!(
                ops::DetachPaymentMethod,
                DetachPaymentMethod {
                    customer_id: MISSING.into(),
                    payment_method: MISSING.into()
                }
            ),
            "delete_customer" => p!(ops::DeleteCustomer, missing()),
            _ => {}
        }
    }

    fn capabilities_complete(&self, a: &dyn Instance) {
        for capability in cap::ALL.iter().filter(|c| self.has(c)) {
            // Operations added after the plugin's contract version are not its promise.
            let ops_of: Vec<&str> = ops::ALL
                .iter()
                .filter(|(op, c)| c == capability && ops::known_to(op, &self.manifest.contract))
                .map(|(op, _)| *op)
                .collect();
            for op in &ops_of {
                if !self.exercised.borrow().contains(op) {
                    self.probe(a, op);
                }
            }
            let unsupported: Vec<&str> = ops_of
                .iter()
                .copied()
                .filter(|op| self.unsupported.borrow().contains(op))
                .collect();
            let name = format!("capability.{capability}.implemented");
            if unsupported.is_empty() {
                self.record(&name, Outcome::Pass);
            } else {
                self.record(
                    &name,
                    Outcome::Fail(format!(
                        "'{capability}' is declared, but {} answer{} unsupported_operation",
                        unsupported.join(", "),
                        if unsupported.len() == 1 { "s" } else { "" }
                    )),
                );
            }
        }
    }
}
