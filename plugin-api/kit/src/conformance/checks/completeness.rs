//! Webhooks, and every declared capability implemented (every operation probed).

use super::*;

impl Suite<'_> {
    // ------------------------------------------------------------------ webhooks

    pub(super) fn webhooks(&self, a: &dyn Instance) {
        // An unsigned JSON event, and a thin delivery (`id=…`, form-encoded, as Mollie
        // posts them) naming an object the provider does not have: a plugin that takes
        // thin events authenticates them by reading the object, so both are refused.
        let forgeries = [
            (
                "webhooks.unsigned_refused",
                "an unsigned delivery",
                r#"{"id":"evt_forged","type":"payment.succeeded"}"#.to_owned(),
                "application/json",
            ),
            (
                "webhooks.forged_thin_refused",
                "a thin delivery naming no real object",
                format!("id={MISSING}"),
                "application/x-www-form-urlencoded",
            ),
        ];
        for (name, what, body, content_type) in forgeries {
            if !self.has(cap::WEBHOOKS) {
                self.skip(name, "no webhooks capability");
                continue;
            }
            self.check(name, || {
                let forged = WebhookDelivery {
                    body: Bytes::from(body.as_str()),
                    headers: Headers::new().with("content-type", content_type),
                    now: 1_700_000_000,
                };
                match self.op::<ops::VerifyWebhook>(a, &forged) {
                    Ok(e) => Err(format!("{what} was accepted as event '{}'", e.id)),
                    Err(e) if e.is(codes::INVALID_SIGNATURE) => Ok(()),
                    Err(e) => Err(format!(
                        "{what} answered {}, not invalid_signature",
                        err(&e)
                    )),
                }
            });
        }
    }

    // ------------------------------------------------------------------ completeness

    /// A request that names nothing that exists: an implemented operation refuses it with
    /// its own error; one left at the kit's default answers `unsupported_operation`.
    pub(super) fn probe(&self, a: &dyn Instance, op: &str) {
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
            "get_refund" => p!(
                ops::GetRefund,
                RefundRef {
                    id: MISSING.into(),
                    payment_id: MISSING.into(),
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
                    payload: json!({}).to_string(),
                    fetched: None
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

    pub(super) fn capabilities_complete(&self, a: &dyn Instance) {
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
