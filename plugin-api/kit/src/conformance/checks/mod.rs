//! The checks, in the order they run. Each is one rule; its name says which. The suite and
//! its helpers are here, with the manifest's checks; the rest by what they exercise:
//! records (customers, ids, payment methods), payments (and refunds, manual capture,
//! redirects), billing (subscriptions, invoices), completeness (webhooks, every declared
//! capability implemented).

use super::{call, Check, Instance, Outcome, Report, Target};
use crate::api::ops::{self, Operation};
use crate::api::{
    capabilities as cap, codes, AttachPaymentMethod, Bytes, CallCtx, CancelSubscription,
    CaptureMethod, CapturePayment, ChangeSubscriptionPrice, ConfirmPayment, Currency, CustomerRef,
    CustomerUpdate, DetachPaymentMethod, Headers, InvoiceQuery, Manifest, Money, NewCustomer,
    NewPayment, NewRefund, NewSubscription, NextAction, ObjectRef, Payer, Payment, PaymentStatus,
    PluginError, RefundRef, SetDefaultPaymentMethod, SubscriptionStatus, WebhookDelivery,
    WebhookEvent, CONTRACT_VERSION,
};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

mod billing;
mod completeness;
mod payments;
mod records;

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
}
