//! The mock's webhooks: Stripe's `t=..,v1=..` HMAC-SHA256 scheme under the mock's own
//! secret in `X-Webhook-Signature`, and a small Stripe-like event format.
//!
//! Also thin events, as Mollie sends them (contract 2.2): an unsigned form body `id=<payment
//! id>` that only names a payment. It is authenticated by reading that payment from the
//! mock's own records (a real provider's plugin fetches it with its key): an id the mock
//! never made is refused. What was read goes to the mapping (`fetched`), and the delivery is
//! news once per state of the payment (`dedup_key`).
//!
//! ```json
//! {"id": "evt_1", "type": "payment.succeeded", "created": 1700000000,
//!  "data": {"object": {"id": "mock_pi_000002", "customer": "mock_cus_000001",
//!                      "amount": 1000, "currency": "usd", "status": "succeeded"}}}
//! ```

use payhost_plugin_kit::{
    codes, signature, Currency, DomainEventKind, DomainEventReport, Money, PluginError,
    VerifiedEvent, WebhookDelivery, WebhookEvent,
};
use serde::Deserialize;

/// The header the mock signs in (lowercase, as the host passes headers).
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: Object,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Object {
    id: String,
    customer: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    status: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    payment: Option<String>,
    subscription: Option<String>,
    invoice: Option<String>,
    price: Option<String>,
    previous_price: Option<String>,
    cancel_at_period_end: bool,
    email: Option<String>,
    name: Option<String>,
    reason: Option<String>,
    payment_method: Option<String>,
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
    trial_end: Option<i64>,
}

fn bad_signature(message: String) -> PluginError {
    PluginError::new(codes::INVALID_SIGNATURE, message)
}

/// Checks the signature header and parses the event envelope.
///
/// # Errors
/// `invalid_signature` for a missing, malformed, stale or wrong signature; `invalid_request`
/// for a body that is not a mock event.
pub fn verify(d: &WebhookDelivery, secrets: &[&str]) -> Result<VerifiedEvent, PluginError> {
    let header = d
        .headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| bad_signature(format!("missing {SIGNATURE_HEADER} header")))?;
    signature::verify(
        header,
        &d.body,
        secrets,
        d.now,
        signature::DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|e| bad_signature(e.to_string()))?;
    let text = std::str::from_utf8(&d.body)
        .map_err(|_| PluginError::invalid("body", "webhook body is not UTF-8"))?;
    let ev: Event = serde_json::from_str(text).map_err(|e| {
        PluginError::invalid("body", format!("webhook body is not a mock event: {e}"))
    })?;
    Ok(VerifiedEvent {
        id: ev.id,
        event_type: ev.event_type,
        created: ev.created,
        ..VerifiedEvent::default()
    })
}

/// The event type of a thin event.
pub const THIN_EVENT: &str = "payment.thin";

/// The payment id a thin delivery names: an unsigned form body `id=<id>`.
pub fn thin_id(d: &WebhookDelivery) -> Option<String> {
    if d.headers.get(SIGNATURE_HEADER).is_some() {
        return None;
    }
    let form = payhost_plugin_kit::Form::decode(std::str::from_utf8(&d.body).ok()?).ok()?;
    form.get("id").map(str::to_owned)
}

/// The verified form of a thin delivery about `p`, as read now: news once per state.
pub fn thin_event(p: &payhost_plugin_kit::Payment, now: i64) -> VerifiedEvent {
    VerifiedEvent {
        id: p.id.clone(),
        event_type: THIN_EVENT.into(),
        created: now,
        fetched: serde_json::to_string(p).ok(),
        dedup_key: Some(format!("{}:{}:{}", p.id, p.status, p.amount_refunded)),
    }
}

/// The facts a thin event's fetched payment tells.
fn map_thin(event: &WebhookEvent) -> Result<Vec<DomainEventReport>, PluginError> {
    let fetched = event.fetched.as_deref().ok_or_else(|| {
        PluginError::invalid(
            "fetched",
            "a thin event is mapped from what verifying fetched",
        )
    })?;
    let p: payhost_plugin_kit::Payment = serde_json::from_str(fetched)
        .map_err(|e| PluginError::invalid("fetched", format!("not a payment: {e}")))?;
    use payhost_plugin_kit::PaymentStatus as S;
    let kind = match p.status {
        S::Succeeded => DomainEventKind::PaymentSucceeded,
        S::Failed => DomainEventKind::PaymentFailed,
        S::Canceled => DomainEventKind::PaymentCanceled,
        S::Expired => DomainEventKind::PaymentExpired,
        S::RequiresCapture => DomainEventKind::PaymentAuthorized,
        S::RequiresPaymentMethod
        | S::RequiresConfirmation
        | S::RequiresAction
        | S::Processing
        | S::Unknown(_) => return Ok(Vec::new()),
    };
    let mut r = DomainEventReport::new(kind, &p.id, event.created);
    r.payment_id = Some(p.id.clone());
    r.customer_id = p.customer_id.clone();
    r.amount = Some(p.amount.clone());
    r.status = Some(p.status.as_str().to_owned());
    r.error = p.failure_message.clone();
    r.reason = p.failure_code.clone();
    Ok(vec![r])
}

/// Maps a verified event to the facts it reports. Unknown types report nothing.
///
/// # Errors
/// `invalid_request` when the payload is not a mock event.
pub fn map(event: &WebhookEvent) -> Result<Vec<DomainEventReport>, PluginError> {
    if event.event_type == THIN_EVENT {
        return map_thin(event);
    }
    let ev: Event = serde_json::from_str(&event.payload)
        .map_err(|e| PluginError::invalid("payload", format!("not a mock event: {e}")))?;
    let kind = match ev.event_type.as_str() {
        "payment.created" => DomainEventKind::PaymentCreated,
        "payment.authorized" => DomainEventKind::PaymentAuthorized,
        "payment.canceled" => DomainEventKind::PaymentCanceled,
        "payment.succeeded" => DomainEventKind::PaymentSucceeded,
        "payment.failed" => DomainEventKind::PaymentFailed,
        "payment.expired" => DomainEventKind::PaymentExpired,
        "refund.succeeded" => DomainEventKind::RefundProcessed,
        "refund.failed" => DomainEventKind::RefundFailed,
        "subscription.created" => DomainEventKind::SubscriptionCreated,
        "subscription.updated" => DomainEventKind::SubscriptionUpdated,
        "subscription.deleted" => DomainEventKind::SubscriptionCancelled,
        "invoice.paid" => DomainEventKind::InvoicePaid,
        "invoice.payment_failed" => DomainEventKind::InvoicePaymentFailed,
        "dispute.created" => DomainEventKind::DisputeOpened,
        "dispute.closed" => DomainEventKind::DisputeClosed,
        "payment_method.detached" => DomainEventKind::PaymentMethodDetached,
        "customer.updated" => DomainEventKind::CustomerUpdated,
        "customer.deleted" => DomainEventKind::CustomerDeleted,
        _ => return Ok(Vec::new()),
    };
    let o = ev.data.object;
    let mut r = DomainEventReport::new(kind.clone(), &o.id, ev.created);
    let amount = match (o.amount, o.currency.as_deref()) {
        (Some(a), Some(c)) => Some(Money::new(
            a,
            Currency::parse(c).map_err(|e| PluginError::invalid("currency", e.to_string()))?,
        )),
        _ => None,
    };
    r.customer_id = o.customer;
    r.amount = amount;
    r.status = o.status;
    r.error = o.failure_message;
    r.plan_id = o.price;
    r.previous_plan_id = o.previous_price;
    r.cancel_at_period_end = o.cancel_at_period_end;
    r.subscription_id = o.subscription;
    r.invoice_id = o.invoice;
    r.payment_id = o.payment;
    r.email = o.email;
    r.name = o.name;
    // A payment's failure code travels as the report's reason (2.2).
    r.reason = o.reason.or(o.failure_code);
    r.payment_method_id = o.payment_method;
    r.current_period_start = o.current_period_start;
    r.current_period_end = o.current_period_end;
    r.trial_end = o.trial_end;
    match kind {
        DomainEventKind::PaymentCreated
        | DomainEventKind::PaymentAuthorized
        | DomainEventKind::PaymentSucceeded
        | DomainEventKind::PaymentFailed
        | DomainEventKind::PaymentCanceled
        | DomainEventKind::PaymentExpired => r.payment_id = Some(o.id),
        DomainEventKind::SubscriptionCreated
        | DomainEventKind::SubscriptionUpdated
        | DomainEventKind::SubscriptionCancelled => r.subscription_id = Some(o.id),
        DomainEventKind::InvoicePaid | DomainEventKind::InvoicePaymentFailed => {
            r.invoice_id = Some(o.id)
        }
        DomainEventKind::PaymentMethodDetached => r.payment_method_id = Some(o.id),
        DomainEventKind::CustomerUpdated | DomainEventKind::CustomerDeleted => {
            r.customer_id = Some(o.id)
        }
        DomainEventKind::RefundProcessed
        | DomainEventKind::RefundFailed
        | DomainEventKind::DisputeOpened
        | DomainEventKind::DisputeClosed
        // The host's own: never in a mock webhook.
        | DomainEventKind::PaymentAttemptFailed
        | DomainEventKind::PaymentRerouted
        | DomainEventKind::Unknown(_) => {}
    }
    Ok(vec![r])
}

/// Builds a signed mock webhook: the body and the `X-Webhook-Signature` value. For tests and
/// for operators who want to simulate a provider callback with `curl`.
pub fn signed_event(
    secret: &str,
    timestamp: i64,
    id: &str,
    event_type: &str,
    object: &serde_json::Value,
) -> (String, String) {
    let body = serde_json::json!({
        "id": id, "object": "event", "type": event_type, "created": timestamp,
        "data": {"object": object},
    })
    .to_string();
    let header = signature::header(&[secret], timestamp, body.as_bytes());
    (body, header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_plugin_kit::Headers;

    fn delivery(body: &str, header: Option<&str>, now: i64) -> WebhookDelivery {
        WebhookDelivery {
            body: body.into(),
            headers: header
                .map(|h| Headers::new().with(SIGNATURE_HEADER, h))
                .unwrap_or_default(),
            now,
        }
    }

    fn stored(body: &str, ev: &VerifiedEvent) -> WebhookEvent {
        WebhookEvent {
            id: ev.id.clone(),
            event_type: ev.event_type.clone(),
            created: ev.created,
            payload: body.to_owned(),
            fetched: ev.fetched.clone(),
        }
    }

    #[test]
    fn verifies_and_maps_a_payment_success() {
        let obj = serde_json::json!({"id": "mock_pi_1", "customer": "mock_cus_1", "amount": 1250, "currency": "eur", "status": "succeeded"});
        let (body, header) = signed_event("whsec_m", 1000, "evt_1", "payment.succeeded", &obj);
        let ev = verify(&delivery(&body, Some(&header), 1010), &["whsec_m"]).unwrap();
        assert_eq!(ev.id, "evt_1");
        let reports = map(&stored(&body, &ev)).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].kind, DomainEventKind::PaymentSucceeded);
        assert_eq!(reports[0].payment_id.as_deref(), Some("mock_pi_1"));
        assert_eq!(reports[0].amount.as_ref().unwrap().display(), "12.50 EUR");
    }

    #[test]
    fn refuses_missing_wrong_and_stale_signatures() {
        let (body, header) = signed_event(
            "whsec_m",
            1000,
            "evt_1",
            "x.y",
            &serde_json::json!({"id": "o"}),
        );
        let code = |d: WebhookDelivery| verify(&d, &["whsec_m"]).unwrap_err().code;
        assert_eq!(code(delivery(&body, None, 1000)), codes::INVALID_SIGNATURE);
        assert_eq!(
            code(delivery(&body, Some(&header), 1000 + 301)),
            codes::INVALID_SIGNATURE
        );
        let tampered = body.replace("evt_1", "evt_2");
        assert_eq!(
            code(delivery(&tampered, Some(&header), 1000)),
            codes::INVALID_SIGNATURE
        );
        assert!(verify(
            &delivery(&body, Some(&header), 1000),
            &["whsec_old", "whsec_m"]
        )
        .is_ok());
    }

    #[test]
    fn unknown_event_types_report_nothing() {
        let (body, header) = signed_event(
            "s",
            5,
            "evt_9",
            "customer.discount.created",
            &serde_json::json!({"id": "o"}),
        );
        let ev = verify(&delivery(&body, Some(&header), 5), &["s"]).unwrap();
        assert!(map(&stored(&body, &ev)).unwrap().is_empty());
    }
}
