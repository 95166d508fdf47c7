//! Payments and what follows them: refunds, manual capture, redirects.

use super::*;

impl Suite<'_> {
    // ------------------------------------------------------------------ payments

    pub(super) fn payments(&self, a: &dyn Instance, customer: Option<&str>) {
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

    pub(super) fn refund(
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

    pub(super) fn refunds(&self, a: &dyn Instance, customer: Option<&str>) {
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
            // Since 2.2 the host reads refunds back until they settle.
            if ops::known_to(ops::GetRefund::NAME, &self.manifest.contract) {
                let read = self
                    .op::<ops::GetRefund>(
                        a,
                        &RefundRef {
                            id: r.id.clone(),
                            payment_id: paid.id.clone(),
                        },
                    )
                    .map_err(|e| format!("reading refund '{}' back: {}", r.id, err(&e)))?;
                if read.id != r.id || read.amount != r.amount || read.payment_id != paid.id {
                    return Err(format!("refund '{}' read back as {read:?}", r.id));
                }
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

    pub(super) fn authorized(
        &self,
        a: &dyn Instance,
        customer: Option<&str>,
    ) -> Result<Payment, String> {
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

    pub(super) fn manual_capture(&self, a: &dyn Instance, customer: Option<&str>) {
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

    pub(super) fn redirects(&self, a: &dyn Instance, customer: Option<&str>) {
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
}
