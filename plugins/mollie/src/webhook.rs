//! Mollie's webhooks are thin: Mollie posts `id=tr_…` (form-encoded, unsigned) to the
//! payment's `webhookUrl` whenever the payment or one of its refunds changes. Nothing in the
//! delivery is signed: reading the payment with the instance's own API key is what
//! authenticates it. An id Mollie does not know is refused (`invalid_signature`) and nothing
//! is stored.
//!
//! The same id arrives for every change, so the event's key for deduplication is the
//! payment's state as read: its status, the amount refunded and each refund's status. A
//! repeated delivery of the same state is stored once; a later change (a refund that
//! settles) is news. What was read travels with the event (contract 2.2's `fetched`), so
//! mapping needs no second read and maps the state that was authenticated.

use crate::wire::{id, MolliePayment};
use payhost_plugin_kit::prelude::*;

/// The event type of every Mollie delivery: "this payment changed".
pub const EVENT_TYPE: &str = "payment.changed";

fn refused(message: String) -> PluginError {
    PluginError::new(codes::INVALID_SIGNATURE, message)
}

/// The payment id a delivery names.
///
/// # Errors
/// `invalid_signature` for a body that is not Mollie's `id=tr_…`.
pub fn named_payment(d: &WebhookDelivery) -> Result<String, PluginError> {
    let text = std::str::from_utf8(&d.body)
        .map_err(|_| refused("not a Mollie webhook: the body is not text".into()))?;
    let form = Form::decode(text).map_err(|e| {
        refused(format!(
            "not a Mollie webhook: the body is not a form ({e})"
        ))
    })?;
    let id = form
        .get("id")
        .ok_or_else(|| refused("not a Mollie webhook: the body names no id".into()))?;
    if !id.starts_with("tr_") {
        return Err(refused(format!(
            "'{id}' is not a Mollie payment id (tr_…): this plugin takes payment webhooks only"
        )));
    }
    crate::wire::id(id, "id").map_err(|e| refused(e.message))
}

/// Authenticates a delivery by reading the payment it names (`read`: the payment and the
/// answer's text, with the instance's key), and gives the state read as the event.
///
/// # Errors
/// `invalid_signature` for a body that is not Mollie's, or an id Mollie does not know;
/// Mollie's own error when it cannot be read now (the host answers 5xx and Mollie retries).
pub fn verify(
    read: impl FnOnce(&str) -> Result<(MolliePayment, String), PluginError>,
    d: &WebhookDelivery,
) -> Result<VerifiedEvent, PluginError> {
    let payment = named_payment(d)?;
    let (p, text) = match read(&id(&payment, "id")?) {
        Ok(read) => read,
        Err(e) if e.is(codes::NOT_FOUND) => {
            return Err(refused(format!(
                "Mollie knows no payment '{payment}' for this API key: the delivery is not Mollie's"
            )))
        }
        Err(e) => return Err(e),
    };
    Ok(VerifiedEvent {
        id: p.id.clone(),
        event_type: EVENT_TYPE.into(),
        created: d.now,
        dedup_key: Some(state_key(&p)),
        fetched: Some(text),
    })
}

/// What makes a delivery news: the payment's status, the amount refunded, each refund's
/// status.
pub fn state_key(p: &MolliePayment) -> String {
    let refunded = p.amount_refunded.as_ref().map_or("0", |a| a.value.as_str());
    let mut key = format!("{}:{}:refunded={refunded}", p.id, p.status);
    for r in p.refunds() {
        key.push_str(&format!(":{}={}", r.id, r.status));
    }
    key
}

/// The facts the payment read at delivery tells: its own (succeeded, failed with its
/// reason, canceled, expired, authorized), and each refund that settled.
///
/// # Errors
/// `invalid_request` for an event without what verifying read.
pub fn map(event: &WebhookEvent) -> Result<Vec<DomainEventReport>, PluginError> {
    let fetched = event.fetched.as_deref().ok_or_else(|| {
        PluginError::invalid(
            "fetched",
            "a Mollie event is mapped from the payment its verification read (a host before contract 2.2 drops it)",
        )
    })?;
    let mollie: MolliePayment = serde_json::from_str(fetched)
        .map_err(|e| PluginError::invalid("fetched", format!("not a Mollie payment: {e}")))?;
    let p = mollie.to_payment()?;
    let mut out = Vec::new();
    let kind = match p.status {
        PaymentStatus::Succeeded => Some(DomainEventKind::PaymentSucceeded),
        PaymentStatus::Failed => Some(DomainEventKind::PaymentFailed),
        PaymentStatus::Canceled => Some(DomainEventKind::PaymentCanceled),
        PaymentStatus::Expired => Some(DomainEventKind::PaymentExpired),
        PaymentStatus::RequiresCapture => Some(DomainEventKind::PaymentAuthorized),
        _ => None,
    };
    if let Some(kind) = kind {
        let mut r = DomainEventReport::new(kind, &p.id, event.created);
        r.payment_id = Some(p.id.clone());
        r.customer_id.clone_from(&p.customer_id);
        r.amount = Some(p.amount.clone());
        r.status = Some(p.status.as_str().to_owned());
        r.error.clone_from(&p.failure_message);
        r.reason.clone_from(&p.failure_code);
        out.push(r);
    }
    for refund in mollie.refunds() {
        let refund = refund.to_refund(&p.id)?;
        let kind = match refund.status {
            RefundStatus::Succeeded => DomainEventKind::RefundProcessed,
            RefundStatus::Failed | RefundStatus::Canceled => DomainEventKind::RefundFailed,
            _ => continue,
        };
        let mut r = DomainEventReport::new(kind, &refund.id, event.created);
        r.payment_id = Some(p.id.clone());
        r.customer_id.clone_from(&p.customer_id);
        r.amount = Some(refund.amount.clone());
        r.status = Some(refund.status.as_str().to_owned());
        r.reason = refund.reason.clone();
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn delivery(body: &str) -> WebhookDelivery {
        WebhookDelivery {
            body: Bytes::from(body),
            headers: Headers::new().with("content-type", "application/x-www-form-urlencoded"),
            now: 1_800_000_000,
        }
    }

    #[test]
    fn only_a_form_naming_a_payment_is_a_delivery() {
        assert_eq!(
            named_payment(&delivery("id=tr_WDqYK6vllg")).unwrap(),
            "tr_WDqYK6vllg"
        );
        for bad in [
            r#"{"id":"tr_1"}"#,
            "id=",
            "other=tr_1",
            "id=ord_123",
            "id=tr_1%2F..%2Frefunds",
        ] {
            let e = named_payment(&delivery(bad)).unwrap_err();
            assert_eq!(e.code, codes::INVALID_SIGNATURE, "{bad}: {e:?}");
        }
    }

    fn paid_with(refunds: serde_json::Value, refunded: &str) -> WebhookEvent {
        let p = json!({"id": "tr_1", "status": "paid",
            "amount": {"currency": "EUR", "value": "10.00"},
            "amountRefunded": {"currency": "EUR", "value": refunded},
            "_embedded": {"refunds": refunds}});
        WebhookEvent {
            id: "tr_1".into(),
            event_type: EVENT_TYPE.into(),
            created: 1_800_000_000,
            payload: "id=tr_1".into(),
            fetched: Some(p.to_string()),
        }
    }

    #[test]
    fn a_payment_and_its_settled_refunds_are_the_facts() {
        let e = paid_with(
            json!([
                {"id": "re_1", "status": "refunded", "amount": {"currency": "EUR", "value": "2.00"}},
                {"id": "re_2", "status": "pending", "amount": {"currency": "EUR", "value": "1.00"}},
                {"id": "re_3", "status": "failed", "amount": {"currency": "EUR", "value": "3.00"}}
            ]),
            "6.00",
        );
        let facts = map(&e).unwrap();
        let kinds: Vec<(&str, &str)> = facts
            .iter()
            .map(|r| (r.kind.as_str(), r.object_id.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("PaymentSucceeded", "tr_1"),
                ("RefundProcessed", "re_1"),
                ("RefundFailed", "re_3")
            ]
        );
        assert_eq!(facts[1].amount.as_ref().unwrap().amount, 200);
        assert_eq!(facts[2].payment_id.as_deref(), Some("tr_1"));
    }

    #[test]
    fn the_key_changes_with_every_state_that_matters() {
        let read = |e: &WebhookEvent| {
            serde_json::from_str::<MolliePayment>(e.fetched.as_deref().unwrap()).unwrap()
        };
        let pending = read(&paid_with(
            json!([{"id": "re_1", "status": "pending", "amount": {"currency": "EUR", "value": "2.00"}}]),
            "2.00",
        ));
        let settled = read(&paid_with(
            json!([{"id": "re_1", "status": "refunded", "amount": {"currency": "EUR", "value": "2.00"}}]),
            "2.00",
        ));
        assert_ne!(state_key(&pending), state_key(&settled));
        assert_eq!(state_key(&settled), "tr_1:paid:refunded=2.00:re_1=refunded");
    }

    #[test]
    fn an_event_without_what_was_read_is_refused_naming_it() {
        let mut e = paid_with(json!([]), "0.00");
        e.fetched = None;
        assert_eq!(map(&e).unwrap_err().param.as_deref(), Some("fetched"));
    }
}
