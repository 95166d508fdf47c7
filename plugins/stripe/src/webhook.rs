//! Stripe webhooks: `Stripe-Signature` verified as Stripe's SDKs do it (only `v1`, any of
//! several signatures and several secrets, 300 s tolerance against old events, constant
//! time), and Stripe events mapped into payhost's domain events. Event types payhost has no
//! domain event for are acknowledged with no event, never an error.

use payhost_plugin_kit::{
    codes, signature, Currency, DomainEventKind, DomainEventReport, Money, PluginError,
    VerifiedEvent, WebhookDelivery, WebhookEvent,
};
use serde_json::Value;

/// The header Stripe signs in (lowercase, as the host passes headers).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Verifies a delivery against every configured secret and parses the event envelope.
///
/// # Errors
/// `invalid_signature` (missing, malformed, stale or wrong), `invalid_request` (a body that
/// is not a Stripe event).
pub fn verify(d: &WebhookDelivery, secrets: &[&str]) -> Result<VerifiedEvent, PluginError> {
    let header = d.headers.get(SIGNATURE_HEADER).ok_or_else(|| {
        PluginError::new(codes::INVALID_SIGNATURE, "missing Stripe-Signature header")
    })?;
    signature::verify(
        header,
        &d.body,
        secrets,
        d.now,
        signature::DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|e| PluginError::new(codes::INVALID_SIGNATURE, e.to_string()))?;
    let event: Value = serde_json::from_slice(&d.body)
        .map_err(|e| PluginError::invalid("body", format!("not a Stripe event: {e}")))?;
    let id = event["id"].as_str().filter(|s| !s.is_empty());
    let kind = event["type"].as_str().filter(|s| !s.is_empty());
    let (Some(id), Some(kind)) = (id, kind) else {
        return Err(PluginError::invalid(
            "body",
            "a Stripe event needs an id and a type",
        ));
    };
    Ok(VerifiedEvent {
        id: id.to_owned(),
        event_type: kind.to_owned(),
        created: event["created"].as_i64().unwrap_or(0),
        ..VerifiedEvent::default()
    })
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// An id field that may be expanded into its object.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => text(o.get("id").unwrap_or(&Value::Null)),
        _ => None,
    }
}

fn money(amount: &Value, currency: &Value) -> Option<Money> {
    Some(Money::new(
        amount.as_i64()?,
        Currency::parse(currency.as_str()?).ok()?,
    ))
}

/// The domain events a verified Stripe event tells.
///
/// # Errors
/// `invalid_request` when the payload is not JSON.
pub fn map(event: &WebhookEvent) -> Result<Vec<DomainEventReport>, PluginError> {
    let v: Value = serde_json::from_str(&event.payload)
        .map_err(|e| PluginError::invalid("payload", e.to_string()))?;
    let o = &v["data"]["object"];
    let object_id = o["id"].as_str().unwrap_or_default();
    let at = event.created;
    let report = |kind| {
        let mut r = DomainEventReport::new(kind, object_id, at);
        r.customer_id = id_of(&o["customer"]);
        r.status = text(&o["status"]);
        r
    };
    let mut out = Vec::new();
    match event.event_type.as_str() {
        "payment_intent.succeeded" | "payment_intent.payment_failed" => {
            let kind = if event.event_type.as_str() == "payment_intent.succeeded" {
                DomainEventKind::PaymentSucceeded
            } else {
                DomainEventKind::PaymentFailed
            };
            let failed = kind == DomainEventKind::PaymentFailed;
            let mut r = report(kind);
            r.payment_id = Some(object_id.to_owned());
            r.amount = money(&o["amount"], &o["currency"]);
            r.error = text(&o["last_payment_error"]["message"]);
            if failed {
                r.status = Some("failed".into());
            }
            out.push(r);
        }
        "payment_intent.amount_capturable_updated" | "payment_intent.canceled" => {
            let kind = if event.event_type == "payment_intent.canceled" {
                DomainEventKind::PaymentCanceled
            } else {
                DomainEventKind::PaymentAuthorized
            };
            let mut r = report(kind);
            r.payment_id = Some(object_id.to_owned());
            r.amount = money(&o["amount"], &o["currency"]);
            out.push(r);
        }
        "refund.created" | "refund.updated" if o["status"] == "succeeded" => {
            let mut r = report(DomainEventKind::RefundProcessed);
            r.payment_id = id_of(&o["payment_intent"]);
            r.amount = money(&o["amount"], &o["currency"]);
            out.push(r);
        }
        "charge.refunded" => {
            let refunds = o["refunds"]["data"].as_array().cloned().unwrap_or_default();
            for refund in refunds.iter().filter(|r| r["status"] == "succeeded") {
                let mut r = DomainEventReport::new(
                    DomainEventKind::RefundProcessed,
                    refund["id"].as_str().unwrap_or_default(),
                    at,
                );
                r.customer_id = id_of(&o["customer"]);
                r.payment_id = id_of(&o["payment_intent"]);
                r.amount = money(&refund["amount"], &refund["currency"]);
                r.status = Some("succeeded".into());
                out.push(r);
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let kind = match event.event_type.as_str() {
                "customer.subscription.created" => DomainEventKind::SubscriptionCreated,
                "customer.subscription.deleted" => DomainEventKind::SubscriptionCancelled,
                _ => DomainEventKind::SubscriptionUpdated,
            };
            let mut r = report(kind);
            r.subscription_id = Some(object_id.to_owned());
            r.plan_id = text(&o["items"]["data"][0]["price"]["id"]);
            r.previous_plan_id =
                text(&v["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"]);
            r.cancel_at_period_end = o["cancel_at_period_end"].as_bool().unwrap_or(false);
            r.current_period_start = o["current_period_start"].as_i64();
            r.current_period_end = o["current_period_end"].as_i64();
            r.trial_end = o["trial_end"].as_i64();
            out.push(r);
        }
        "charge.dispute.created" | "charge.dispute.closed" => {
            let opened = event.event_type == "charge.dispute.created";
            let mut r = report(if opened {
                DomainEventKind::DisputeOpened
            } else {
                DomainEventKind::DisputeClosed
            });
            r.payment_id = id_of(&o["payment_intent"]);
            r.amount = money(&o["amount"], &o["currency"]);
            r.reason = text(&o["reason"]);
            out.push(r);
        }
        "payment_method.detached" => {
            let mut r = report(DomainEventKind::PaymentMethodDetached);
            r.payment_method_id = Some(object_id.to_owned());
            // A detached method's customer is null; the one it had is in the previous state.
            r.customer_id = id_of(&v["data"]["previous_attributes"]["customer"]);
            out.push(r);
        }
        "customer.updated" | "customer.deleted" => {
            let mut r = report(if event.event_type == "customer.updated" {
                DomainEventKind::CustomerUpdated
            } else {
                DomainEventKind::CustomerDeleted
            });
            r.customer_id = Some(object_id.to_owned());
            r.email = text(&o["email"]);
            r.name = text(&o["name"]);
            out.push(r);
        }
        "invoice.paid" | "invoice.payment_failed" => {
            let kind = if event.event_type.as_str() == "invoice.paid" {
                DomainEventKind::InvoicePaid
            } else {
                DomainEventKind::InvoicePaymentFailed
            };
            let mut r = report(kind);
            r.invoice_id = Some(object_id.to_owned());
            r.subscription_id = id_of(&o["subscription"]);
            r.payment_id = id_of(&o["payment_intent"]);
            r.amount = money(&o["amount_due"], &o["currency"]);
            r.error = text(&o["last_finalization_error"]["message"]);
            out.push(r);
        }
        // Acknowledged and recorded by the host, with no domain event.
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_plugin_kit::Headers;

    const P: &str = r#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}"#;

    fn delivery(header: Option<&str>, body: &str, now: i64) -> WebhookDelivery {
        WebhookDelivery {
            body: body.into(),
            headers: header
                .map(|h| Headers::new().with(SIGNATURE_HEADER, h))
                .unwrap_or_default(),
            now,
        }
    }

    #[test]
    fn verifies_the_reference_vectors_with_rotation_and_tolerance() {
        let rotation =
            "t=1700000000,v1=67da5088c63e080c71bd2bb0cb5c03d85a8fc6a21ce3aaf484df809654745b92,\
                        v1=315a047cbd02b84a2249d1635324029efb5441283e318caa28a890daa6314595";
        for secret in ["whsec_test_secret", "whsec_rotated_secret"] {
            let e = verify(&delivery(Some(rotation), P, 1_700_000_100), &[secret]).unwrap();
            assert_eq!(
                (e.id.as_str(), e.event_type.as_str()),
                ("evt_1", "payment_intent.succeeded")
            );
        }
        let other = verify(
            &delivery(Some(rotation), P, 1_700_000_100),
            &["whsec_other"],
        )
        .unwrap_err();
        assert_eq!(other.code, codes::INVALID_SIGNATURE);
        let stale = verify(
            &delivery(Some(rotation), P, 1_700_000_301),
            &["whsec_test_secret"],
        )
        .unwrap_err();
        assert!(stale.message.contains("tolerance"), "{stale:?}");
        let v0_only =
            "t=1700000000,v0=67da5088c63e080c71bd2bb0cb5c03d85a8fc6a21ce3aaf484df809654745b92";
        assert!(verify(
            &delivery(Some(v0_only), P, 1_700_000_000),
            &["whsec_test_secret"]
        )
        .is_err());
        let missing =
            verify(&delivery(None, P, 1_700_000_000), &["whsec_test_secret"]).unwrap_err();
        assert!(missing.message.contains("missing"));
    }

    fn event(kind: &str, object: &str, extra: &str) -> WebhookEvent {
        WebhookEvent {
            id: "evt_9".into(),
            event_type: kind.into(),
            created: 1_700_000_000,
            payload: format!(
                r#"{{"id":"evt_9","object":"event","type":"{kind}","created":1700000000,"data":{{"object":{object}{extra}}}}}"#
            ),
            fetched: None,
        }
    }

    #[test]
    fn maps_realistic_stripe_events() {
        let pi = r#"{"id":"pi_3N","object":"payment_intent","amount":2000,"currency":"usd","customer":"cus_9","status":"requires_payment_method","last_payment_error":{"code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#;
        let failed = map(&event("payment_intent.payment_failed", pi, "")).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].kind, DomainEventKind::PaymentFailed);
        assert_eq!(
            failed[0].error.as_deref(),
            Some("Your card has insufficient funds.")
        );
        assert_eq!(failed[0].amount.as_ref().map(|m| m.amount), Some(2000));

        let sub = r#"{"id":"sub_1","object":"subscription","customer":"cus_9","status":"active","cancel_at_period_end":true,"items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro"}}]}}"#;
        let prev = r#","previous_attributes":{"items":{"data":[{"price":{"id":"price_basic"}}]}}"#;
        let updated = map(&event("customer.subscription.updated", sub, prev)).unwrap();
        assert_eq!(updated[0].kind, DomainEventKind::SubscriptionUpdated);
        assert_eq!(updated[0].plan_id.as_deref(), Some("price_pro"));
        assert_eq!(updated[0].previous_plan_id.as_deref(), Some("price_basic"));
        assert!(updated[0].cancel_at_period_end);
        assert_eq!(
            map(&event("customer.subscription.deleted", sub, "")).unwrap()[0].kind,
            DomainEventKind::SubscriptionCancelled
        );

        let inv = r#"{"id":"in_1","object":"invoice","customer":"cus_9","subscription":"sub_1","payment_intent":"pi_3N","amount_due":999,"currency":"usd","status":"paid"}"#;
        assert_eq!(
            map(&event("invoice.paid", inv, "")).unwrap()[0].kind,
            DomainEventKind::InvoicePaid
        );
        let unpaid = map(&event("invoice.payment_failed", inv, "")).unwrap();
        assert_eq!(unpaid[0].kind, DomainEventKind::InvoicePaymentFailed);
        assert_eq!(unpaid[0].subscription_id.as_deref(), Some("sub_1"));

        let charge = r#"{"id":"ch_1","object":"charge","customer":"cus_9","payment_intent":"pi_3N","amount_refunded":500,"refunds":{"data":[{"id":"re_1","amount":500,"currency":"usd","status":"succeeded"}]}}"#;
        let refunded = map(&event("charge.refunded", charge, "")).unwrap();
        assert_eq!(
            (refunded[0].kind.clone(), refunded[0].object_id.as_str()),
            (DomainEventKind::RefundProcessed, "re_1")
        );

        let sub_periods = r#"{"id":"sub_2","object":"subscription","customer":"cus_9","status":"active","current_period_start":1700000000,"current_period_end":1702592000,"trial_end":null,"items":{"data":[{"id":"si_2","price":{"id":"price_pro"}}]}}"#;
        let renewed = map(&event("customer.subscription.updated", sub_periods, "")).unwrap();
        assert_eq!(
            (
                renewed[0].current_period_start,
                renewed[0].current_period_end
            ),
            (Some(1_700_000_000), Some(1_702_592_000))
        );
        let dispute = r#"{"id":"dp_1","object":"dispute","amount":2000,"currency":"usd","payment_intent":"pi_3N","reason":"fraudulent","status":"lost"}"#;
        let closed = map(&event("charge.dispute.closed", dispute, "")).unwrap();
        assert_eq!(closed[0].kind, DomainEventKind::DisputeClosed);
        assert_eq!(
            (closed[0].payment_id.as_deref(), closed[0].status.as_deref()),
            (Some("pi_3N"), Some("lost"))
        );
        let pm = r#"{"id":"pm_1","object":"payment_method","customer":null}"#;
        let detached = map(&event(
            "payment_method.detached",
            pm,
            r#","previous_attributes":{"customer":"cus_9"}"#,
        ))
        .unwrap();
        assert_eq!(
            (
                detached[0].payment_method_id.as_deref(),
                detached[0].customer_id.as_deref()
            ),
            (Some("pm_1"), Some("cus_9"))
        );
        assert!(
            map(&event("customer.created", r#"{"id":"cus_9"}"#, ""))
                .unwrap()
                .is_empty(),
            "acknowledged, no event"
        );
    }
}
