//! The operations, over Mollie's Payments API v2.

use crate::config::MollieConfig;
use crate::webhook;
use crate::wire::{amount_of, id, MolliePayment, MollieRefund};
use payhost_plugin_kit::http::{Response, RetryPolicy, StatusErrors};
use payhost_plugin_kit::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

type R<T> = Result<T, PluginError>;

/// One Mollie instance.
pub struct MollieProvider {
    http: HttpClient,
    errors: StatusErrors,
    /// Where buyers return when a payment names no `return_url`.
    redirect_url: Option<String>,
}

impl Plugin for MollieProvider {
    type Config = MollieConfig;

    fn manifest() -> Manifest {
        use capabilities::{PAYMENTS, REDIRECTS, REFUNDS, WEBHOOKS};
        Manifest::new("mollie", env!("CARGO_PKG_VERSION"))
            .capabilities(&[PAYMENTS, REDIRECTS, REFUNDS, WEBHOOKS])
            .fixtures(Fixtures {
                // Mollie takes the method on its checkout page: a payment naming one is
                // still paid (or not) there by the buyer.
                payment_method_succeeds: Some("creditcard".into()),
                payment_method_requires_action: Some("creditcard".into()),
                approve_redirect_by_visiting: true,
                currency: Some("eur".into()),
                config: [
                    ("api_key".into(), "test_conformance0000000000000000".into()),
                    ("api_base".into(), "https://api.mollie.test/v2".into()),
                ]
                .into(),
                ..Fixtures::default()
            })
    }

    fn new(config: MollieConfig, host: Host) -> R<Self> {
        config.validate()?;
        let mut retry = RetryPolicy::default();
        if let Some(n) = config.max_retries {
            retry.max_retries = n;
        }
        let http = HttpClient::new(host.clone(), config.base())
            .header(
                "authorization",
                &format!("Bearer {}", config.api_key.expose()),
            )
            .header("accept", "application/hal+json")
            .idempotency_header("idempotency-key")
            .retry(retry);
        Ok(Self {
            http,
            errors: StatusErrors::new("Mollie", "api_key"),
            redirect_url: config.redirect_url,
        })
    }
}

impl MollieProvider {
    /// Mollie's answer as `T`, or its error in payhost's words: `{"status", "title",
    /// "detail", "field"}`. A 422 that names a `field` is the request's fault
    /// (`invalid_request` with the field as param: `amount.value` is `amount`); one that
    /// names none refuses the object's state (`conflict`: "The payment cannot be
    /// canceled").
    pub(crate) fn answer<T: DeserializeOwned>(&self, r: Response) -> R<T> {
        if r.is_success() {
            return r.json();
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let detail = body["detail"].as_str();
        let field = body["field"].as_str();
        match (r.status, field) {
            (422, Some(field)) => {
                let param = field.split('.').next().unwrap_or(field);
                let message = detail.unwrap_or("Mollie refused the request");
                Err(PluginError::invalid(param, message))
            }
            (422, None) => Err(PluginError::conflict(
                detail.unwrap_or("Mollie refused the request for the object's state"),
            )),
            (status, _) => Err(self.errors.error(status, detail)),
        }
    }

    /// The payment `payment`, with its refunds embedded.
    pub(crate) fn read(&self, ctx: &CallCtx, payment: &str) -> R<MolliePayment> {
        self.read_text(ctx, payment).map(|(p, _)| p)
    }

    /// [`Self::read`], with the answer's text as Mollie gave it.
    pub(crate) fn read_text(&self, ctx: &CallCtx, payment: &str) -> R<(MolliePayment, String)> {
        let path = format!("/payments/{}", id(payment, "id")?);
        let r = self
            .http
            .get(&path)
            .query("embed", "refunds")
            .ctx(ctx)
            .send()?;
        let text = r.text();
        let p = self.answer(r)?;
        Ok((p, text))
    }
}

impl Provider for MollieProvider {
    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> R<Payment> {
        if req.capture_method == CaptureMethod::Manual {
            return Err(PluginError::new(
                codes::UNSUPPORTED,
                "this plugin does not authorize for a later capture (Mollie's captureMode is not supported yet)",
            )
            .with_param("capture_method"));
        }
        let redirect = req
            .return_url
            .clone()
            .or_else(|| self.redirect_url.clone())
            .ok_or_else(|| {
                PluginError::invalid(
                    "return_url",
                    "Mollie sends the buyer to its checkout page: give return_url, or set redirect_url in this instance's config",
                )
            })?;
        let description = req
            .description
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| "Payment".to_owned());
        let mut body = json!({
            "amount": amount_of(&req.amount)?,
            "description": description.chars().take(255).collect::<String>(),
            "redirectUrl": redirect,
        });
        if let Some(cancel) = &req.cancel_url {
            body["cancelUrl"] = json!(cancel);
        }
        // Contract 2.2: where this instance's webhooks arrive. Without it (no
        // host.public_url) Mollie sends none, and refreshes tell the outcome.
        if let Some(url) = &ctx.webhook_url {
            body["webhookUrl"] = json!(url);
        }
        if let Some(method) = &req.payment_method {
            body["method"] = json!(method);
        }
        if let Some(email) = &req.payer.email {
            body["billingEmail"] = json!(email);
        }
        if !req.metadata.is_empty() {
            body["metadata"] = json!(req.metadata);
        }
        let r = self.http.post("/payments").json(&body).ctx(ctx).send()?;
        self.answer::<MolliePayment>(r)?.to_payment()
    }

    fn get_payment(&self, ctx: &CallCtx, req: ObjectRef) -> R<Payment> {
        self.read(ctx, &req.id)?.to_payment()
    }

    /// Mollie has nothing to confirm: the buyer pays on its checkout page. Confirming reads
    /// the payment: one the buyer has not finished is a `conflict`.
    fn confirm_payment(&self, ctx: &CallCtx, req: ConfirmPayment) -> R<Payment> {
        if req.payment_method.is_some() {
            return Err(PluginError::new(
                codes::UNSUPPORTED,
                "Mollie takes the payment method on its checkout page, not in a confirmation",
            )
            .with_param("payment_method"));
        }
        let p = self.read(ctx, &req.id)?.to_payment()?;
        match p.status {
            PaymentStatus::RequiresAction | PaymentStatus::RequiresPaymentMethod => {
                Err(PluginError::conflict(format!(
                    "the buyer has not completed Mollie's checkout for payment '{}' yet",
                    p.id
                )))
            }
            _ => Ok(p),
        }
    }

    /// `DELETE /v2/payments/{id}`, which Mollie allows while `isCancelable` (a 422
    /// otherwise: `conflict`).
    fn cancel_payment(&self, ctx: &CallCtx, req: ObjectRef) -> R<Payment> {
        let path = format!("/payments/{}", id(&req.id, "id")?);
        let r = self.http.delete(&path).ctx(ctx).send()?;
        self.answer::<MolliePayment>(r)?.to_payment()
    }

    fn create_refund(&self, ctx: &CallCtx, req: NewRefund) -> R<Refund> {
        let payment = id(&req.payment_id, "payment_id")?;
        // The currency comes with the request from a 2.2 host; the whole rest needs the
        // payment's `amountRemaining` anyway.
        let amount = match (req.amount, &req.currency) {
            (Some(a), Some(c)) => Money::new(a, c.clone()),
            (amount, _) => {
                let p = self.read(ctx, &payment)?;
                let currency = p.amount.money()?.currency;
                match amount {
                    Some(a) => Money::new(a, currency),
                    None => {
                        let p = p.to_payment()?;
                        Money::new(p.refundable(), currency)
                    }
                }
            }
        };
        let mut body = json!({"amount": amount_of(&amount)?});
        if let Some(reason) = &req.reason {
            body["description"] = json!(reason);
        }
        if !req.metadata.is_empty() {
            body["metadata"] = json!(req.metadata);
        }
        let r = self
            .http
            .post(&format!("/payments/{payment}/refunds"))
            .json(&body)
            .ctx(ctx)
            .send()?;
        let mut refund = self.answer::<MollieRefund>(r)?.to_refund(&payment)?;
        refund.reason = req.reason;
        Ok(refund)
    }

    fn get_refund(&self, ctx: &CallCtx, req: RefundRef) -> R<Refund> {
        let path = format!(
            "/payments/{}/refunds/{}",
            id(&req.payment_id, "payment_id")?,
            id(&req.id, "id")?
        );
        let r = self.http.get(&path).ctx(ctx).send()?;
        self.answer::<MollieRefund>(r)?.to_refund(&req.payment_id)
    }

    fn verify_webhook(&self, ctx: &CallCtx, delivery: WebhookDelivery) -> R<VerifiedEvent> {
        webhook::verify(|payment| self.read_text(ctx, payment), &delivery)
    }

    fn map_webhook(&self, _ctx: &CallCtx, event: WebhookEvent) -> R<WebhookReports> {
        webhook::map(&event).map(|events| WebhookReports { events })
    }
}
