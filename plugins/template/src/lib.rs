//! A minimal, complete provider: payments and refunds kept in memory, webhooks signed
//! `t=..,v1=..` (HMAC-SHA256). No customer object: payhost keeps the customers and passes
//! the payer with each payment. Copy this crate to start a plugin, then replace the map
//! with calls to your provider: `HttpClient::new(host, "https://api.example.com")`.

use payhost_plugin_kit::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

type R<T> = Result<T, PluginError>;

/// The configuration: each field is a key under `[providers.<name>.config]`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The secret webhooks are signed with (`X-Template-Signature`).
    pub webhook_secret: Secret,
}

pub struct Template {
    ids: IdGen,
    secret: Secret,
    payments: Mutex<HashMap<String, Payment>>,
    refunds: Mutex<HashMap<String, Refund>>,
}

impl Plugin for Template {
    type Config = Config;

    fn manifest() -> Manifest {
        use capabilities::{PAYMENTS, REFUNDS, WEBHOOKS};
        Manifest::new("template", env!("CARGO_PKG_VERSION"))
            .capabilities(&[PAYMENTS, REFUNDS, WEBHOOKS])
            .webhook_headers(&["x-template-signature"])
            .fixtures(Fixtures {
                payment_method_succeeds: Some("tok_ok".into()),
                payment_method_declines: Some("tok_decline".into()),
                config: [("webhook_secret".into(), "whsec_template".into())].into(),
                ..Fixtures::default()
            })
    }

    fn new(config: Config, host: Host) -> R<Self> {
        let (payments, refunds) = (Mutex::default(), Mutex::default());
        Ok(Self { ids: IdGen::new(&host), secret: config.webhook_secret, payments, refunds })
    }
}

impl Template {
    /// Runs `f` on payment `id` (a panic elsewhere leaves the map usable) and answers it.
    fn update(&self, id: &str, f: impl FnOnce(&mut Payment) -> R<()>) -> R<Payment> {
        let mut all = self.payments.lock().unwrap_or_else(|p| p.into_inner());
        let p = all.get_mut(id).ok_or_else(|| PluginError::not_found("payment", id))?;
        f(p)?;
        Ok(p.clone())
    }
}

/// Refuses to touch a payment that is final.
fn open(p: &Payment) -> R<()> {
    match p.status {
        PaymentStatus::Succeeded | PaymentStatus::Canceled => {
            Err(PluginError::conflict(format!("payment '{}' is {}", p.id, p.status)))
        }
        _ => Ok(()),
    }
}

/// Charges `p` with a test token: `tok_ok` succeeds, `tok_decline` is declined.
fn charge(p: &mut Payment, method: &str) -> R<()> {
    open(p)?;
    p.status = match method {
        "tok_ok" => PaymentStatus::Succeeded,
        "tok_decline" => PaymentStatus::Failed,
        _ => return Err(PluginError::not_found("payment method", method)),
    };
    let ok = p.status == PaymentStatus::Succeeded;
    p.amount_received = if ok { p.amount.amount } else { 0 };
    p.failure_code = (!ok).then(|| "declined".into());
    p.payment_method = Some(method.into());
    Ok(())
}

impl Provider for Template {
    fn create_payment(&self, _: &CallCtx, req: NewPayment) -> R<Payment> {
        let status = PaymentStatus::RequiresPaymentMethod;
        let mut p = Payment::new(self.ids.next("tp"), req.amount, status);
        if let Some(method) = &req.payment_method {
            charge(&mut p, method)?;
        }
        self.payments.lock().unwrap_or_else(|p| p.into_inner()).insert(p.id.clone(), p.clone());
        Ok(p)
    }

    fn get_payment(&self, _: &CallCtx, req: ObjectRef) -> R<Payment> {
        self.update(&req.id, |_| Ok(()))
    }

    fn confirm_payment(&self, _: &CallCtx, req: ConfirmPayment) -> R<Payment> {
        let method = req.payment_method.unwrap_or_default();
        self.update(&req.id, |p| charge(p, &method))
    }

    fn cancel_payment(&self, _: &CallCtx, req: ObjectRef) -> R<Payment> {
        self.update(&req.id, |p| open(p).map(|()| p.status = PaymentStatus::Canceled))
    }

    fn create_refund(&self, _: &CallCtx, req: NewRefund) -> R<Refund> {
        let mut amount = 0;
        let p = self.update(&req.payment_id, |p| {
            amount = req.amount.unwrap_or(p.refundable());
            if amount <= 0 || amount > p.refundable() {
                let left = p.refundable();
                return Err(PluginError::invalid("amount", format!("{left} is refundable")));
            }
            p.amount_refunded += amount;
            Ok(())
        })?;
        let (id, amount) = (self.ids.next("tr"), Money::new(amount, p.amount.currency));
        let (status, reason, metadata) = (RefundStatus::Succeeded, req.reason, req.metadata);
        let r = Refund { id, payment_id: p.id, amount, status, reason, created: 0, metadata };
        self.refunds.lock().unwrap_or_else(|p| p.into_inner()).insert(r.id.clone(), r.clone());
        Ok(r)
    }

    fn get_refund(&self, _: &CallCtx, req: RefundRef) -> R<Refund> {
        let refunds = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
        let r = refunds.get(&req.id).filter(|r| r.payment_id == req.payment_id);
        r.cloned().ok_or_else(|| PluginError::not_found("refund", &req.id))
    }

    /// The body is `{"id", "event_type", "created", "payment"}`, signed like Stripe's.
    fn verify_webhook(&self, _: &CallCtx, d: WebhookDelivery) -> R<VerifiedEvent> {
        let bad = |m: &str| PluginError::new(codes::INVALID_SIGNATURE, m);
        let header = d.headers.get("x-template-signature").ok_or_else(|| bad("no signature"))?;
        signature::verify(header, &d.body, &[self.secret.expose()], d.now, 300)
            .map_err(|e| bad(&e.to_string()))?;
        serde_json::from_slice(&d.body).map_err(|e| PluginError::invalid("body", e.to_string()))
    }

    fn map_webhook(&self, _: &CallCtx, e: WebhookEvent) -> R<WebhookReports> {
        let body: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
        let events = match (e.event_type.as_str(), body["payment"].as_str()) {
            ("payment.succeeded", Some(id)) => {
                vec![DomainEventReport::new(DomainEventKind::PaymentSucceeded, id, e.created)]
            }
            _ => Vec::new(),
        };
        Ok(WebhookReports { events })
    }
}

payhost_plugin_kit::export_plugin!(Template);

#[cfg(test)]
mod tests {
    #[test]
    fn passes_conformance() {
        use payhost_plugin_kit::conformance::{in_process, run};
        run(&in_process::<super::Template>(None)).assert_passed();
    }
}
