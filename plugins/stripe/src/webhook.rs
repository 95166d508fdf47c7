//! Stripe webhooks: `Stripe-Signature` verified as Stripe's SDKs do it (only `v1`, any of
//! several signatures and several secrets, 300 s tolerance against old events, constant
//! time), and Stripe events mapped into payhost's domain events. Event types payhost has no
//! domain event for are acknowledged with no event, never an error.

use payhost_plugin_kit::time::parse_rfc3339;
use payhost_plugin_kit::{
    codes, signature, Currency, DomainEventKind, DomainEventReport, Money, PluginError,
    VerifiedEvent, WebhookDelivery, WebhookEvent,
};
use serde_json::Value;

/// The header Stripe signs in (lowercase, as the host passes headers).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Verifies a delivery against every configured secret and parses the event envelope; for
/// a thin event, names the object to read.
///
/// # Errors
/// `invalid_signature` (missing, malformed, stale or wrong), `invalid_request` (a body that
/// is not a Stripe event).
pub fn verify(d: &WebhookDelivery, secrets: &[&str]) -> Result<Verified, PluginError> {
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
    if event["object"] == THIN_OBJECT {
        // A thin event: `created` is RFC 3339, and the type of a v1 object's event is
        // prefixed `v1.`; what happened is read from the object it names.
        let created = event["created"]
            .as_str()
            .map(parse_rfc3339)
            .transpose()?
            .unwrap_or(d.now);
        return Ok(Verified {
            event: VerifiedEvent {
                id: id.to_owned(),
                event_type: kind.strip_prefix("v1.").unwrap_or(kind).to_owned(),
                created,
                ..VerifiedEvent::default()
            },
            fetch: Some(thin_target(&event)?),
        });
    }
    Ok(Verified {
        event: VerifiedEvent {
            id: id.to_owned(),
            event_type: kind.to_owned(),
            created: event["created"].as_i64().unwrap_or(0),
            ..VerifiedEvent::default()
        },
        fetch: None,
    })
}

/// The `object` of a thin event notification (Stripe's event destinations, "thin" payload).
pub const THIN_OBJECT: &str = "v2.core.event";

/// The v1 objects a thin event may name, by their API path's collection: only these are
/// read, so a signed event can never make the plugin fetch anything else.
const THIN_COLLECTIONS: &[&str] = &[
    "payment_intents",
    "refunds",
    "charges",
    "customers",
    "subscriptions",
    "invoices",
    "disputes",
    "payment_methods",
];

/// A verified delivery, and for a thin event the API path of the object to read.
#[derive(Debug)]
pub struct Verified {
    pub event: VerifiedEvent,
    pub fetch: Option<String>,
}

/// The API path of the object a thin event names (`related_object.url`), checked: a v1
/// collection above and an id of Stripe's alphabet.
///
/// # Errors
/// `invalid_request` (param `related_object`) for anything else.
pub fn thin_target(event: &Value) -> Result<String, PluginError> {
    let url = event["related_object"]["url"].as_str().unwrap_or_default();
    let bad = || {
        PluginError::invalid(
            "related_object",
            format!("a thin event's related object '{url}' is not a Stripe object payhost reads"),
        )
    };
    let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", collection, id] if THIN_COLLECTIONS.contains(collection) => {
            let id = payhost_plugin_kit::path_id(id, "related_object", "Stripe", 255)
                .map_err(|_| bad())?;
            Ok(format!("/v1/{collection}/{id}"))
        }
        _ => Err(bad()),
    }
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
    // A thin event is mapped like the snapshot event of its type, from the object read.
    let v: Value = match &event.fetched {
        Some(object) => serde_json::json!({
            "data": {"object": serde_json::from_str::<Value>(object)
                .map_err(|e| PluginError::invalid("fetched", e.to_string()))?}
        }),
        None => serde_json::from_str(&event.payload)
            .map_err(|e| PluginError::invalid("payload", e.to_string()))?,
    };
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
                let e = &o["last_payment_error"];
                r.reason = text(&e["decline_code"]).or_else(|| text(&e["code"]));
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
        "refund.created" | "refund.updated" | "charge.refund.updated" | "refund.failed" => {
            let kind = match o["status"].as_str() {
                Some("succeeded") => DomainEventKind::RefundProcessed,
                Some("failed" | "canceled") => DomainEventKind::RefundFailed,
                // Pending: nothing settled yet.
                _ => return Ok(out),
            };
            let mut r = report(kind);
            r.payment_id = id_of(&o["payment_intent"]);
            r.amount = money(&o["amount"], &o["currency"]);
            r.reason = text(&o["failure_reason"]).or_else(|| text(&o["reason"]));
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
            let e = verify(&delivery(Some(rotation), P, 1_700_000_100), &[secret])
                .unwrap()
                .event;
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

    #[test]
    fn a_thin_event_names_one_object_to_read_and_maps_from_what_was_read() {
        let thin = r#"{"id":"evt_test_65R9","object":"v2.core.event","type":"v1.payment_intent.succeeded","livemode":false,"created":"2026-12-07T10:00:00.246Z","related_object":{"id":"pi_3N","type":"payment_intent","url":"/v1/payment_intents/pi_3N"}}"#;
        let t = 1_796_637_600;
        let header = signature::header(&["whsec_t"], t, thin.as_bytes());
        let v = verify(&delivery(Some(&header), thin, t + 5), &["whsec_t"]).unwrap();
        assert_eq!(v.fetch.as_deref(), Some("/v1/payment_intents/pi_3N"));
        assert_eq!(
            (
                v.event.id.as_str(),
                v.event.event_type.as_str(),
                v.event.created
            ),
            ("evt_test_65R9", "payment_intent.succeeded", t)
        );
        for url in [
            "/v1/accounts/acct_1",
            "/v1/payment_intents/pi_1/../../v1/accounts",
            "https://evil.example/v1/payment_intents/pi_1",
            "",
        ] {
            let body = thin.replace("/v1/payment_intents/pi_3N", url);
            let header = signature::header(&["whsec_t"], t, body.as_bytes());
            let e = verify(&delivery(Some(&header), &body, t), &["whsec_t"]).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("related_object"), "{url}: {e:?}");
        }
        let read = r#"{"id":"pi_3N","object":"payment_intent","amount":2000,"currency":"eur","status":"succeeded","customer":"cus_1"}"#;
        let event = WebhookEvent {
            id: "evt_test_65R9".into(),
            event_type: "payment_intent.succeeded".into(),
            created: t,
            payload: thin.into(),
            fetched: Some(read.into()),
        };
        let facts = map(&event).unwrap();
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].kind, DomainEventKind::PaymentSucceeded);
        assert_eq!(facts[0].amount.as_ref().unwrap().amount, 2000);
        assert_eq!(facts[0].customer_id.as_deref(), Some("cus_1"));
    }

    #[test]
    fn a_refund_that_fails_and_a_declines_code_are_told() {
        let failed = r#"{"id":"re_1","object":"refund","amount":500,"currency":"usd","payment_intent":"pi_1","status":"failed","failure_reason":"expired_or_canceled_card"}"#;
        let r = map(&event("refund.failed", failed, "")).unwrap();
        assert_eq!(r[0].kind, DomainEventKind::RefundFailed);
        assert_eq!(r[0].reason.as_deref(), Some("expired_or_canceled_card"));
        let pending = failed.replace("\"failed\"", "\"pending\"");
        assert!(map(&event("refund.updated", &pending, ""))
            .unwrap()
            .is_empty());
        let declined = r#"{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd","status":"requires_payment_method","last_payment_error":{"code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#;
        let r = map(&event("payment_intent.payment_failed", declined, "")).unwrap();
        assert_eq!(
            (r[0].reason.as_deref(), r[0].error.as_deref()),
            (
                Some("insufficient_funds"),
                Some("Your card has insufficient funds.")
            )
        );
    }
}
