//! PayPal's objects (Orders v2, Payments v2, Billing Subscriptions v1) as far as payhost
//! reads them, and their mapping into payhost's types.

use crate::money::{from_paypal, Amount};
use payhost_plugin_kit::prelude::*;
use serde::Deserialize;

/// A HATEOAS link.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Link {
    pub href: String,
    pub rel: String,
}

/// The link the buyer must visit (`payer-action`, or `approve` on older flows).
pub fn approval_link(links: &[Link]) -> Option<&str> {
    links
        .iter()
        .find(|l| l.rel == "payer-action")
        .or_else(|| links.iter().find(|l| l.rel == "approve"))
        .map(|l| l.href.as_str())
}

/// An order (`/v2/checkout/orders/{id}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Order {
    pub id: String,
    #[serde(default)]
    pub intent: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub purchase_units: Vec<PurchaseUnit>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub create_time: Option<String>,
}

/// An order's purchase unit.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PurchaseUnit {
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub payments: Option<Payments>,
}

/// What moved money inside a purchase unit.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Payments {
    #[serde(default)]
    pub captures: Vec<Movement>,
    #[serde(default)]
    pub authorizations: Vec<Movement>,
    #[serde(default)]
    pub refunds: Vec<Movement>,
}

/// A capture, an authorization or a refund.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Movement {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub create_time: Option<String>,
    #[serde(default)]
    pub status_details: Option<StatusDetails>,
}

/// Why a movement has its status.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusDetails {
    #[serde(default)]
    pub reason: Option<String>,
}

impl Movement {
    /// Minor units (0 when PayPal left the amount out).
    pub fn minor(&self) -> Result<i64, PluginError> {
        self.amount
            .as_ref()
            .map_or(Ok(0), |a| from_paypal(a).map(|m| m.amount))
    }

    /// The capture a refund belongs to (its `up` link).
    pub fn capture_id(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.rel == "up" && l.href.contains("/captures/"))
            .and_then(|l| l.href.rsplit('/').next())
    }
}

/// Captures that moved money (refunded ones too).
fn captured(status: &str) -> bool {
    matches!(status, "COMPLETED" | "PARTIALLY_REFUNDED" | "REFUNDED")
}

impl Order {
    /// The first purchase unit's payments.
    pub fn payments(&self) -> Payments {
        self.purchase_units
            .first()
            .and_then(|u| u.payments.clone())
            .unwrap_or_default()
    }

    /// The order's amount.
    pub fn amount(&self) -> Result<Money, PluginError> {
        let amount = self
            .purchase_units
            .first()
            .and_then(|u| u.amount.as_ref())
            .ok_or_else(|| {
                PluginError::new(
                    codes::INTERNAL,
                    format!("PayPal order {} has no amount", self.id),
                )
            })?;
        from_paypal(amount)
    }

    /// Minor units captured, and refunded.
    pub fn received_and_refunded(&self) -> Result<(i64, i64), PluginError> {
        let p = self.payments();
        let mut received = 0;
        for c in p.captures.iter().filter(|c| captured(&c.status)) {
            received += c.minor()?;
        }
        let mut refunded = 0;
        for r in p
            .refunds
            .iter()
            .filter(|r| matches!(r.status.as_str(), "COMPLETED" | "PENDING"))
        {
            refunded += r.minor()?;
        }
        Ok((received, refunded))
    }

    /// The order as payhost's payment.
    pub fn to_payment(&self, return_url: Option<&str>) -> Result<Payment, PluginError> {
        let amount = self.amount()?;
        let manual = self.intent == "AUTHORIZE";
        let p = self.payments();
        let (received, refunded) = self.received_and_refunded()?;
        let last_capture = p.captures.last();
        let authorization = p.authorizations.first();
        let mut failure = None;
        let status = match self.status.as_str() {
            "CREATED" | "PAYER_ACTION_REQUIRED" => PaymentStatus::RequiresAction,
            "APPROVED" | "SAVED" => PaymentStatus::RequiresConfirmation,
            "VOIDED" => PaymentStatus::Canceled,
            "COMPLETED" if received > 0 => PaymentStatus::Succeeded,
            "COMPLETED" => match (last_capture, authorization) {
                (Some(c), _) if c.status == "PENDING" => PaymentStatus::Processing,
                (Some(c), _) if matches!(c.status.as_str(), "DECLINED" | "FAILED") => {
                    failure = Some((
                        c.status_details
                            .as_ref()
                            .and_then(|d| d.reason.clone())
                            .unwrap_or_else(|| c.status.clone())
                            .to_ascii_lowercase(),
                        format!("PayPal {} the capture", c.status.to_ascii_lowercase()),
                    ));
                    PaymentStatus::Failed
                }
                (_, Some(a)) => match a.status.as_str() {
                    "CREATED" | "PENDING" => PaymentStatus::RequiresCapture,
                    "VOIDED" => PaymentStatus::Canceled,
                    // Not captured within PayPal's honor period: no money moved.
                    "EXPIRED" => {
                        failure = Some((
                            "authorization_expired".into(),
                            "the authorization expired before it was captured".into(),
                        ));
                        PaymentStatus::Expired
                    }
                    "DENIED" => {
                        failure = Some(("denied".into(), "PayPal denied the authorization".into()));
                        PaymentStatus::Failed
                    }
                    _ => PaymentStatus::Processing,
                },
                _ => PaymentStatus::Processing,
            },
            _ => PaymentStatus::Processing,
        };
        let mut payment = Payment::new(&self.id, amount, status.clone());
        payment.capture_method = if manual {
            CaptureMethod::Manual
        } else {
            CaptureMethod::Automatic
        };
        payment.amount_received = received;
        payment.amount_refunded = refunded;
        payment.created = self
            .create_time
            .as_deref()
            .and_then(rfc3339)
            .unwrap_or_default();
        payment.payment_method = Some("paypal".into());
        if let Some((code, message)) = failure {
            payment.failure_code = Some(code);
            payment.failure_message = Some(message);
        }
        if status == PaymentStatus::RequiresAction {
            payment.next_action = approval_link(&self.links).map(|url| NextAction::RedirectToUrl {
                url: url.to_owned(),
                return_url: return_url.map(str::to_owned),
            });
        }
        if let Some(custom) = self
            .purchase_units
            .first()
            .and_then(|u| u.custom_id.as_ref())
        {
            payment
                .metadata
                .insert("paypal_custom_id".into(), custom.clone());
        }
        Ok(payment)
    }
}

/// A subscription (`/v1/billing/subscriptions/{id}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaypalSubscription {
    pub id: String,
    #[serde(default)]
    pub plan_id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub status_update_time: Option<String>,
    #[serde(default)]
    pub billing_info: Option<BillingInfo>,
    #[serde(default)]
    pub links: Vec<Link>,
}

/// A subscription's billing state.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BillingInfo {
    #[serde(default)]
    pub next_billing_time: Option<String>,
    #[serde(default)]
    pub last_payment: Option<LastPayment>,
    #[serde(default)]
    pub cycle_executions: Vec<CycleExecution>,
    #[serde(default)]
    pub failed_payments_count: u32,
}

/// The last payment of a subscription.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LastPayment {
    #[serde(default)]
    pub time: Option<String>,
}

/// One billing cycle's progress.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CycleExecution {
    #[serde(default)]
    pub tenure_type: String,
    #[serde(default)]
    pub cycles_completed: u32,
    #[serde(default)]
    pub cycles_remaining: u32,
    #[serde(default)]
    pub total_cycles: u32,
}

/// PayPal's subscription status in payhost's words.
pub fn subscription_status(s: &PaypalSubscription) -> SubscriptionStatus {
    let billing = s.billing_info.clone().unwrap_or_default();
    let in_trial = billing.cycle_executions.iter().any(|c| {
        c.tenure_type == "TRIAL" && (c.total_cycles == 0 || c.cycles_completed < c.total_cycles)
    }) && !billing
        .cycle_executions
        .iter()
        .any(|c| c.tenure_type == "REGULAR" && c.cycles_completed > 0);
    match s.status.as_str() {
        "APPROVAL_PENDING" | "APPROVED" => SubscriptionStatus::Incomplete,
        "ACTIVE" if billing.failed_payments_count > 0 => SubscriptionStatus::PastDue,
        "ACTIVE" if in_trial => SubscriptionStatus::Trialing,
        "ACTIVE" => SubscriptionStatus::Active,
        "SUSPENDED" => SubscriptionStatus::Paused,
        "CANCELLED" | "EXPIRED" => SubscriptionStatus::Canceled,
        other => SubscriptionStatus::Unknown(other.to_ascii_lowercase()),
    }
}

impl PaypalSubscription {
    /// The subscription as payhost's.
    pub fn to_subscription(&self, return_url: Option<&str>) -> Subscription {
        let status = subscription_status(self);
        let billing = self.billing_info.clone().unwrap_or_default();
        let start = self
            .start_time
            .as_deref()
            .and_then(rfc3339)
            .unwrap_or_default();
        let period_start = billing
            .last_payment
            .as_ref()
            .and_then(|p| p.time.as_deref())
            .and_then(rfc3339)
            .unwrap_or(start);
        let period_end = billing
            .next_billing_time
            .as_deref()
            .and_then(rfc3339)
            .unwrap_or(period_start);
        Subscription {
            id: self.id.clone(),
            customer_id: None,
            price_id: self.plan_id.clone(),
            status: status.clone(),
            cancel_at_period_end: false,
            current_period_start: period_start,
            current_period_end: period_end,
            trial_end: (status == SubscriptionStatus::Trialing).then_some(period_end),
            canceled_at: (status == SubscriptionStatus::Canceled)
                .then(|| self.status_update_time.as_deref().and_then(rfc3339))
                .flatten(),
            next_action: (self.status == "APPROVAL_PENDING")
                .then(|| approval_link(&self.links))
                .flatten()
                .map(|url| NextAction::RedirectToUrl {
                    url: url.to_owned(),
                    return_url: return_url.map(str::to_owned),
                }),
            metadata: Metadata::new(),
        }
    }
}

/// Unix seconds of an RFC 3339 time (`2026-11-28T10:00:00Z`, `...+01:00`, fractions);
/// `None` for anything else (PayPal's times are optional: one that does not read is left
/// out).
pub fn rfc3339(s: &str) -> Option<i64> {
    payhost_plugin_kit::time::parse_rfc3339(s).ok()
}

/// Unix seconds as RFC 3339 UTC.
pub fn to_rfc3339(secs: i64) -> String {
    payhost_plugin_kit::time::to_rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_times_read_as_unix_seconds() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "2023-11-14",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20",
            "x023-11-14T22:13:20Z",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
        for t in [0, 1_700_000_000, 1_709_164_800, 4_102_444_800] {
            assert_eq!(rfc3339(&to_rfc3339(t)), Some(t));
        }
    }

    fn order(v: serde_json::Value) -> Order {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn orders_map_to_payments() {
        let unit = |payments: serde_json::Value| json!([{"amount": {"currency_code": "USD", "value": "10.00"}, "payments": payments}]);
        let created = order(json!({"id": "O1", "intent": "CAPTURE", "status": "PAYER_ACTION_REQUIRED",
            "purchase_units": unit(json!(null)),
            "links": [{"href": "https://www.paypal.com/checkoutnow?token=O1", "rel": "payer-action"}]}))
        .to_payment(Some("https://shop.example/back"))
        .unwrap();
        assert_eq!(created.status, PaymentStatus::RequiresAction);
        assert_eq!(created.amount.amount, 1000);
        assert!(
            matches!(&created.next_action, Some(NextAction::RedirectToUrl { url, .. }) if url.ends_with("token=O1"))
        );

        let captured = order(json!({"id": "O1", "intent": "CAPTURE", "status": "COMPLETED",
            "purchase_units": unit(json!({"captures": [{"id": "C1", "status": "PARTIALLY_REFUNDED", "amount": {"currency_code": "USD", "value": "10.00"}}],
                "refunds": [{"id": "R1", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "2.50"}}]}))}))
        .to_payment(None)
        .unwrap();
        assert_eq!(
            (
                captured.status.clone(),
                captured.amount_received,
                captured.amount_refunded
            ),
            (PaymentStatus::Succeeded, 1000, 250)
        );

        let authorized = order(json!({"id": "O2", "intent": "AUTHORIZE", "status": "COMPLETED",
            "purchase_units": unit(json!({"authorizations": [{"id": "A1", "status": "CREATED", "amount": {"currency_code": "USD", "value": "10.00"}}]}))}))
        .to_payment(None)
        .unwrap();
        assert_eq!(
            (authorized.status.clone(), authorized.capture_method.clone()),
            (PaymentStatus::RequiresCapture, CaptureMethod::Manual)
        );

        let declined = order(json!({"id": "O3", "intent": "CAPTURE", "status": "COMPLETED",
            "purchase_units": unit(json!({"captures": [{"id": "C3", "status": "DECLINED", "amount": {"currency_code": "USD", "value": "10.00"}}]}))}))
        .to_payment(None)
        .unwrap();
        assert_eq!(declined.status, PaymentStatus::Failed);
        assert!(declined.failure_code.is_some());

        // An authorization never captured in PayPal's honor period: expired, not canceled.
        let lapsed = order(json!({"id": "O4", "intent": "AUTHORIZE", "status": "COMPLETED",
            "purchase_units": unit(json!({"authorizations": [{"id": "A4", "status": "EXPIRED", "amount": {"currency_code": "USD", "value": "10.00"}}]}))}))
        .to_payment(None)
        .unwrap();
        assert_eq!(
            (lapsed.status, lapsed.failure_code.as_deref()),
            (PaymentStatus::Expired, Some("authorization_expired"))
        );
        let voided = order(json!({"id": "O5", "intent": "AUTHORIZE", "status": "COMPLETED",
            "purchase_units": unit(json!({"authorizations": [{"id": "A5", "status": "VOIDED", "amount": {"currency_code": "USD", "value": "10.00"}}]}))}))
        .to_payment(None)
        .unwrap();
        assert_eq!(voided.status, PaymentStatus::Canceled);
    }
}
