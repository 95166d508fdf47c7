//! The operations. PayPal's shape differs from Stripe's and the plugin says so instead of
//! pretending: the buyer approves every order and subscription on PayPal (a redirect);
//! there is no customer object (the host keeps customers and passes the payer along);
//! refunds go against the capture behind a payment; a subscription's trial comes from its
//! plan; there is no "cancel at period end" and no invoices.

use crate::client::{Client, Failure, DECLINES};
use crate::config::PaypalConfig;
use crate::money::to_paypal;
use crate::webhook::{self, Verifier};
use crate::wire::{Order, PaypalSubscription};
use payhost_plugin_kit::prelude::*;
use serde_json::{json, Value};

/// One PayPal REST app as a provider instance.
pub struct PaypalProvider {
    pub(crate) client: Client,
    pub(crate) verifier: Verifier,
    pub(crate) host: Host,
    return_url: Option<String>,
    cancel_url: Option<String>,
}

/// Path segments come from callers: keep them to the provider's id alphabet.
fn seg(id: &str, param: &str) -> Result<String, PluginError> {
    payhost_plugin_kit::path_id(id, param, "PayPal", 64)
}

fn fail(f: Failure) -> PluginError {
    f.into_plugin_error()
}

/// A PayPal refund's status in payhost's words.
fn refund_status(status: &str) -> RefundStatus {
    match status {
        "COMPLETED" => RefundStatus::Succeeded,
        "PENDING" => RefundStatus::Pending,
        "CANCELLED" => RefundStatus::Canceled,
        _ => RefundStatus::Failed,
    }
}

impl PaypalProvider {
    fn order(&self, id: &str, ctx: &CallCtx) -> Result<Order, PluginError> {
        self.client
            .call(
                "GET",
                &format!("/v2/checkout/orders/{}", seg(id, "id")?),
                None,
                ctx,
            )
            .map_err(fail)
    }

    fn subscription(&self, id: &str, ctx: &CallCtx) -> Result<PaypalSubscription, PluginError> {
        self.client
            .call(
                "GET",
                &format!("/v1/billing/subscriptions/{}", seg(id, "id")?),
                None,
                ctx,
            )
            .map_err(fail)
    }

    fn urls<'a>(
        &'a self,
        return_url: Option<&'a str>,
        cancel_url: Option<&'a str>,
    ) -> Result<(&'a str, &'a str), PluginError> {
        let r = return_url.or(self.return_url.as_deref()).ok_or_else(|| {
            PluginError::invalid(
                "return_url",
                "PayPal sends the buyer back to a return_url after approval: give one, or configure return_url for this instance",
            )
        })?;
        let c = cancel_url.or(self.cancel_url.as_deref()).unwrap_or(r);
        Ok((r, c))
    }

    /// Captures or authorizes an approved order; a declined funding source is a failed
    /// payment (the order stays approved at PayPal, the buyer may pick another source).
    fn complete(
        &self,
        order: &Order,
        ctx: &CallCtx,
        return_url: Option<&str>,
    ) -> Result<Payment, PluginError> {
        let step = if order.intent == "AUTHORIZE" {
            "authorize"
        } else {
            "capture"
        };
        let path = format!("/v2/checkout/orders/{}/{step}", seg(&order.id, "id")?);
        match self
            .client
            .call::<Order>("POST", &path, Some(&json!({})), ctx)
        {
            Ok(done) => done.to_payment(return_url),
            Err(Failure::Paypal { status: 422, error })
                if error.issue().is_some_and(|i| DECLINES.contains(&i)) =>
            {
                let issue = error.issue().unwrap_or_default().to_ascii_lowercase();
                let mut p = order.to_payment(return_url)?;
                p.status = PaymentStatus::Failed;
                p.next_action = None;
                p.failure_message = Some(
                    error
                        .details
                        .first()
                        .and_then(|d| d.description.clone())
                        .unwrap_or_else(|| "PayPal declined the buyer's funding source".into()),
                );
                p.failure_code = Some(issue);
                Ok(p)
            }
            Err(f) => Err(fail(f)),
        }
    }
}

impl Plugin for PaypalProvider {
    type Config = PaypalConfig;

    fn manifest() -> Manifest {
        Manifest::new("paypal", env!("CARGO_PKG_VERSION"))
            .capabilities(&[
                capabilities::PAYMENTS,
                capabilities::MANUAL_CAPTURE,
                capabilities::REDIRECTS,
                capabilities::REFUNDS,
                capabilities::SUBSCRIPTIONS,
                capabilities::WEBHOOKS,
            ])
            .webhook_headers(&webhook::HEADERS)
            .fixtures(Fixtures {
                price: Some("P-BASIC".into()),
                other_price: Some("P-PRO".into()),
                currency: Some("usd".into()),
                ..Fixtures::default()
            })
    }

    fn new(config: PaypalConfig, host: Host) -> Result<Self, PluginError> {
        config.validate()?;
        let verifier = Verifier::new(&config)?;
        host.info("paypal provider ready");
        Ok(Self {
            client: Client::new(host.clone(), &config),
            verifier,
            host,
            return_url: config.return_url.clone(),
            cancel_url: config.cancel_url.clone(),
        })
    }
}

impl Provider for PaypalProvider {
    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        if let Some(m) = &req.payment_method {
            return Err(PluginError::new(
                codes::UNSUPPORTED,
                format!(
                    "PayPal orders take no saved payment method ('{m}'): the buyer approves each order on PayPal (next_action)"
                ),
            )
            .with_param("payment_method"));
        }
        let (return_url, cancel_url) =
            self.urls(req.return_url.as_deref(), req.cancel_url.as_deref())?;
        let intent = match req.capture_method {
            CaptureMethod::Manual => "AUTHORIZE",
            _ => "CAPTURE",
        };
        let mut unit = json!({
            "reference_id": "default",
            "amount": to_paypal(&req.amount)?,
        });
        if let Some(d) = &req.description {
            unit["description"] = json!(d.chars().take(127).collect::<String>());
        }
        if let Some(c) = req
            .metadata
            .get("order_id")
            .or(req.metadata.get("custom_id"))
        {
            unit["custom_id"] = json!(c.chars().take(127).collect::<String>());
        }
        let mut paypal = json!({
            "experience_context": {
                "return_url": return_url,
                "cancel_url": cancel_url,
                "user_action": "PAY_NOW",
            }
        });
        if let Some(email) = &req.payer.email {
            paypal["email_address"] = json!(email);
        }
        let body = json!({
            "intent": intent,
            "purchase_units": [unit],
            "payment_source": {"paypal": paypal},
        });
        let order: Order = self
            .client
            .call("POST", "/v2/checkout/orders", Some(&body), ctx)
            .map_err(fail)?;
        order.to_payment(Some(return_url))
    }

    fn get_payment(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        self.order(&req.id, ctx)?.to_payment(None)
    }

    fn confirm_payment(&self, ctx: &CallCtx, req: ConfirmPayment) -> Result<Payment, PluginError> {
        if req.payment_method.is_some() {
            return Err(PluginError::new(
                codes::UNSUPPORTED,
                "PayPal orders take no payment method: the buyer chooses it while approving",
            )
            .with_param("payment_method"));
        }
        let order = self.order(&req.id, ctx)?;
        match order.status.as_str() {
            "APPROVED" => self.complete(&order, ctx, req.return_url.as_deref()),
            "CREATED" | "PAYER_ACTION_REQUIRED" => Err(PluginError::conflict(format!(
                "the buyer has not approved PayPal order {} yet: send them to its next_action URL first",
                order.id
            ))),
            // Already captured or authorized: confirming again answers the state.
            _ => order.to_payment(req.return_url.as_deref()),
        }
    }

    fn cancel_payment(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        let order = self.order(&req.id, ctx)?;
        let mut payment = order.to_payment(None)?;
        match payment.status {
            PaymentStatus::RequiresCapture => {
                let auth = order.payments().authorizations.first().cloned().ok_or_else(|| {
                    PluginError::new(codes::INTERNAL, "an authorized order without its authorization")
                })?;
                self.client
                    .send(
                        "POST",
                        &format!("/v2/payments/authorizations/{}/void", seg(&auth.id, "id")?),
                        None,
                        ctx,
                    )
                    .map_err(fail)?;
                self.order(&req.id, ctx)?.to_payment(None)
            }
            // PayPal has no call to cancel an order nobody captured: it expires unused.
            // payhost records it canceled and refuses to confirm it from now on.
            PaymentStatus::RequiresAction | PaymentStatus::RequiresConfirmation => {
                payment.status = PaymentStatus::Canceled;
                payment.next_action = None;
                Ok(payment)
            }
            PaymentStatus::Canceled => Ok(payment),
            other => Err(PluginError::conflict(format!(
                "PayPal order {} is '{other}': only an authorization or an unapproved order can be canceled (refund a captured one)",
                order.id
            ))),
        }
    }

    fn capture_payment(&self, ctx: &CallCtx, req: CapturePayment) -> Result<Payment, PluginError> {
        let order = self.order(&req.id, ctx)?;
        let auth = order
            .payments()
            .authorizations
            .first()
            .cloned()
            .filter(|a| matches!(a.status.as_str(), "CREATED" | "PENDING"))
            .ok_or_else(|| {
                PluginError::conflict(format!(
                    "PayPal order {} has no open authorization to capture",
                    order.id
                ))
            })?;
        let authorized = order.amount()?;
        let mut body = json!({"final_capture": true});
        if let Some(amount) = req.amount {
            if amount <= 0 || amount > authorized.amount {
                return Err(PluginError::invalid(
                    "amount",
                    format!(
                        "capture amount {amount} is not within the authorized {}",
                        authorized.amount
                    ),
                ));
            }
            body["amount"] = json!(to_paypal(&Money::new(amount, authorized.currency.clone()))?);
        }
        self.client
            .send(
                "POST",
                &format!(
                    "/v2/payments/authorizations/{}/capture",
                    seg(&auth.id, "id")?
                ),
                Some(&body),
                ctx,
            )
            .map_err(fail)?;
        self.order(&req.id, ctx)?.to_payment(None)
    }

    fn get_refund(&self, ctx: &CallCtx, req: RefundRef) -> Result<Refund, PluginError> {
        let r: crate::wire::Movement = self
            .client
            .call(
                "GET",
                &format!("/v2/payments/refunds/{}", seg(&req.id, "id")?),
                None,
                ctx,
            )
            .map_err(fail)?;
        let amount = r
            .amount
            .as_ref()
            .ok_or_else(|| {
                PluginError::new(
                    codes::PROTOCOL,
                    format!("PayPal refund {} has no amount", r.id),
                )
            })
            .and_then(crate::money::from_paypal)?;
        Ok(Refund {
            id: r.id.clone(),
            // PayPal's refund names its capture, not the order: the order is the one asked.
            payment_id: req.payment_id,
            amount,
            status: refund_status(&r.status),
            reason: None,
            created: r
                .create_time
                .as_deref()
                .and_then(crate::wire::rfc3339)
                .unwrap_or_else(|| self.host.now_secs()),
            metadata: Metadata::new(),
        })
    }

    fn create_refund(&self, ctx: &CallCtx, req: NewRefund) -> Result<Refund, PluginError> {
        let order = self.order(&req.payment_id, ctx)?;
        let payments = order.payments();
        let currency = order.amount()?.currency;
        // What remains per capture: its amount less the refunds that point up to it.
        let mut open = Vec::new();
        for c in payments
            .captures
            .iter()
            .filter(|c| matches!(c.status.as_str(), "COMPLETED" | "PARTIALLY_REFUNDED"))
        {
            let mut refunded = 0;
            for r in payments.refunds.iter().filter(|r| {
                r.capture_id() == Some(c.id.as_str())
                    && matches!(r.status.as_str(), "COMPLETED" | "PENDING")
            }) {
                refunded += r.minor()?;
            }
            open.push((c.id.clone(), c.minor()? - refunded));
        }
        let remaining: i64 = open.iter().map(|(_, r)| r).sum();
        if remaining <= 0 {
            return Err(PluginError::invalid(
                "payment",
                format!("PayPal order {} has nothing left to refund", order.id),
            ));
        }
        let amount = req.amount.unwrap_or(remaining);
        if amount <= 0 || amount > remaining {
            return Err(PluginError::invalid(
                "amount",
                format!("refund amount {amount} is above the {remaining} that remains"),
            ));
        }
        let (capture, _) = open.iter().find(|(_, r)| *r >= amount).ok_or_else(|| {
            PluginError::invalid(
                "amount",
                "a PayPal refund goes against one capture: refund at most what remains of one capture",
            )
        })?;
        let mut body = json!({"amount": to_paypal(&Money::new(amount, currency.clone()))?});
        if let Some(reason) = &req.reason {
            body["note_to_payer"] = json!(reason.chars().take(255).collect::<String>());
        }
        let r: crate::wire::Movement = self
            .client
            .call(
                "POST",
                &format!("/v2/payments/captures/{}/refund", seg(capture, "id")?),
                Some(&body),
                ctx,
            )
            .map_err(fail)?;
        let status = refund_status(&r.status);
        Ok(Refund {
            id: r.id.clone(),
            payment_id: order.id.clone(),
            amount: Money::new(
                if r.amount.is_some() {
                    r.minor()?
                } else {
                    amount
                },
                currency,
            ),
            status,
            reason: req.reason.clone(),
            created: r
                .create_time
                .as_deref()
                .and_then(crate::wire::rfc3339)
                .unwrap_or_else(|| self.host.now_secs()),
            metadata: req.metadata.clone(),
        })
    }

    fn create_subscription(
        &self,
        ctx: &CallCtx,
        req: NewSubscription,
    ) -> Result<Subscription, PluginError> {
        if req.trial_days > 0 {
            return Err(PluginError::new(
                codes::UNSUPPORTED,
                "PayPal takes a subscription's trial from its plan: use a plan with a trial cycle instead of trial_days",
            )
            .with_param("trial_days"));
        }
        let (return_url, cancel_url) =
            self.urls(req.return_url.as_deref(), req.cancel_url.as_deref())?;
        let mut body = json!({
            "plan_id": seg(&req.price_id, "price")?,
            "application_context": {
                "return_url": return_url,
                "cancel_url": cancel_url,
                "user_action": "SUBSCRIBE_NOW",
            },
        });
        let mut subscriber = json!({});
        if let Some(email) = &req.payer.email {
            subscriber["email_address"] = json!(email);
        }
        if let Some(name) = &req.payer.name {
            subscriber["name"] = json!({"given_name": name});
        }
        body["subscriber"] = subscriber;
        if let Some(c) = req.metadata.get("custom_id") {
            body["custom_id"] = json!(c);
        }
        let s: PaypalSubscription = self
            .client
            .call("POST", "/v1/billing/subscriptions", Some(&body), ctx)
            .map_err(fail)?;
        let mut out = s.to_subscription(Some(return_url));
        out.metadata = req.metadata;
        Ok(out)
    }

    fn get_subscription(&self, ctx: &CallCtx, req: ObjectRef) -> Result<Subscription, PluginError> {
        Ok(self.subscription(&req.id, ctx)?.to_subscription(None))
    }

    fn change_subscription_price(
        &self,
        ctx: &CallCtx,
        req: ChangeSubscriptionPrice,
    ) -> Result<Subscription, PluginError> {
        let path = format!("/v1/billing/subscriptions/{}/revise", seg(&req.id, "id")?);
        let revised: Value = self
            .client
            .call(
                "POST",
                &path,
                Some(&json!({"plan_id": seg(&req.price_id, "price")?})),
                ctx,
            )
            .map_err(fail)?;
        let mut s = self.subscription(&req.id, ctx)?.to_subscription(None);
        // A revision the buyer must approve: the new plan applies once they did.
        let links: Vec<crate::wire::Link> =
            serde_json::from_value(revised["links"].clone()).unwrap_or_default();
        if let Some(url) = crate::wire::approval_link(&links) {
            s.next_action = Some(NextAction::RedirectToUrl {
                url: url.to_owned(),
                return_url: self.return_url.clone(),
            });
        }
        Ok(s)
    }

    fn cancel_subscription(
        &self,
        ctx: &CallCtx,
        req: CancelSubscription,
    ) -> Result<Subscription, PluginError> {
        if req.at_period_end {
            return Err(PluginError::new(
                codes::UNSUPPORTED,
                "PayPal has no cancel at period end: a subscription is canceled now or suspended (cancel with at_period_end false)",
            )
            .with_param("at_period_end"));
        }
        let path = format!("/v1/billing/subscriptions/{}/cancel", seg(&req.id, "id")?);
        self.client
            .send(
                "POST",
                &path,
                Some(&json!({"reason": "Canceled through payhost"})),
                ctx,
            )
            .map_err(fail)?;
        Ok(self.subscription(&req.id, ctx)?.to_subscription(None))
    }

    fn reactivate_subscription(
        &self,
        ctx: &CallCtx,
        req: ObjectRef,
    ) -> Result<Subscription, PluginError> {
        let s = self.subscription(&req.id, ctx)?;
        if s.status != "SUSPENDED" {
            return Err(PluginError::conflict(format!(
                "PayPal subscription {} is {}: only a suspended subscription can be resumed (PayPal schedules no cancellations to undo)",
                s.id, s.status
            )));
        }
        let path = format!("/v1/billing/subscriptions/{}/activate", seg(&req.id, "id")?);
        self.client
            .send(
                "POST",
                &path,
                Some(&json!({"reason": "Resumed through payhost"})),
                ctx,
            )
            .map_err(fail)?;
        Ok(self.subscription(&req.id, ctx)?.to_subscription(None))
    }

    fn verify_webhook(
        &self,
        ctx: &CallCtx,
        req: WebhookDelivery,
    ) -> Result<VerifiedEvent, PluginError> {
        webhook::verify((&self.verifier, &self.client, &self.host), ctx, &req)
    }

    fn map_webhook(
        &self,
        _ctx: &CallCtx,
        req: WebhookEvent,
    ) -> Result<WebhookReports, PluginError> {
        webhook::map(&req)
    }
}
