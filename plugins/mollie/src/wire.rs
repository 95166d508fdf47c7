//! Mollie's objects as its API answers them, and what they are in payhost's words.
//!
//! | Mollie payment `status` | payhost |
//! |---|---|
//! | `open` (with `_links.checkout`) | `requires_action`, `next_action` the checkout page |
//! | `open` (no checkout link) | `requires_payment_method` |
//! | `pending` | `processing` |
//! | `authorized` | `requires_capture` |
//! | `paid` | `succeeded` |
//! | `failed` | `failed`, `failure_code` = `details.failureReason` |
//! | `canceled` | `canceled` |
//! | `expired` | `expired`, `failure_code` `expired` |
//!
//! | Mollie refund `status` | payhost |
//! |---|---|
//! | `queued`, `pending`, `processing` | `pending` |
//! | `refunded` | `succeeded` |
//! | `failed` | `failed` |
//! | `canceled` | `canceled` |

use payhost_plugin_kit::money::from_decimal;
use payhost_plugin_kit::prelude::*;
use payhost_plugin_kit::time::parse_rfc3339;
use serde::Deserialize;
use serde_json::Value;

/// A Mollie id in a URL path: Mollie's id alphabet only, so it cannot change the path; the
/// error names `param`.
///
/// # Errors
/// `invalid_request` naming `param`.
pub fn id(value: &str, param: &str) -> Result<String, PluginError> {
    payhost_plugin_kit::http::path_id(value, param, "Mollie", 64)
}

/// `{"currency": "EUR", "value": "10.00"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Amount {
    pub currency: String,
    pub value: String,
}

impl Amount {
    /// In minor units, with the currency's digits exactly.
    ///
    /// # Errors
    /// `protocol_error` for a currency or value Mollie should never answer.
    pub fn money(&self) -> Result<Money, PluginError> {
        let currency = Currency::parse(&self.currency).map_err(|e| protocol(&e.to_string()))?;
        from_decimal(&self.value, &currency).map_err(|e| protocol(&e.message))
    }
}

/// The amount in Mollie's shape.
///
/// # Errors
/// `invalid_request` for a currency whose digits are unknown.
pub fn amount_of(money: &Money) -> Result<Value, PluginError> {
    Ok(serde_json::json!({
        "currency": money.currency.as_str().to_ascii_uppercase(),
        "value": payhost_plugin_kit::money::to_decimal(money)?,
    }))
}

/// An answer from Mollie that breaks its own documented shape.
pub fn protocol(message: &str) -> PluginError {
    PluginError::new(codes::PROTOCOL, format!("Mollie answered {message}"))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Link {
    pub href: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub checkout: Option<Link>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub failure_message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Embedded {
    #[serde(default)]
    pub refunds: Vec<MollieRefund>,
}

/// A payment (`tr_…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MolliePayment {
    pub id: String,
    pub status: String,
    pub amount: Amount,
    #[serde(default)]
    pub amount_refunded: Option<Amount>,
    #[serde(default)]
    pub amount_captured: Option<Amount>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub redirect_url: Option<String>,
    #[serde(default)]
    pub metadata: Value,
    #[serde(default)]
    pub details: Option<Details>,
    #[serde(default)]
    pub is_cancelable: bool,
    #[serde(default, rename = "_links")]
    pub links: Links,
    #[serde(default, rename = "_embedded")]
    pub embedded: Option<Embedded>,
}

/// A refund (`re_…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MollieRefund {
    pub id: String,
    pub status: String,
    pub amount: Amount,
    #[serde(default)]
    pub payment_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub metadata: Value,
}

/// Mollie's metadata (any JSON) as payhost's string map: strings as they are, anything
/// else as its JSON text.
pub fn metadata_of(v: &Value) -> Metadata {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn time(v: Option<&str>) -> i64 {
    v.and_then(|t| parse_rfc3339(t).ok()).unwrap_or(0)
}

impl MolliePayment {
    /// The payment in payhost's words.
    ///
    /// # Errors
    /// `protocol_error` for amounts Mollie should never answer.
    pub fn to_payment(&self) -> Result<Payment, PluginError> {
        let amount = self.amount.money()?;
        let status = match self.status.as_str() {
            "open" if self.links.checkout.is_some() => PaymentStatus::RequiresAction,
            "open" => PaymentStatus::RequiresPaymentMethod,
            "pending" => PaymentStatus::Processing,
            "authorized" => PaymentStatus::RequiresCapture,
            "paid" => PaymentStatus::Succeeded,
            "failed" => PaymentStatus::Failed,
            "canceled" => PaymentStatus::Canceled,
            "expired" => PaymentStatus::Expired,
            other => PaymentStatus::Unknown(other.to_owned()),
        };
        let mut p = Payment::new(&self.id, amount.clone(), status.clone());
        p.customer_id.clone_from(&self.customer_id);
        p.payment_method.clone_from(&self.method);
        p.created = time(self.created_at.as_deref());
        p.metadata = metadata_of(&self.metadata);
        if status == PaymentStatus::RequiresAction {
            p.next_action = self
                .links
                .checkout
                .as_ref()
                .map(|c| NextAction::RedirectToUrl {
                    url: c.href.clone(),
                    return_url: self.redirect_url.clone(),
                });
        }
        if status == PaymentStatus::Succeeded {
            p.amount_received = match &self.amount_captured {
                Some(c) => c.money()?.amount,
                None => amount.amount,
            };
        }
        if let Some(r) = &self.amount_refunded {
            p.amount_refunded = r.money()?.amount;
        }
        let details = self.details.clone().unwrap_or_default();
        match status {
            PaymentStatus::Failed => {
                p.failure_code = Some(details.failure_reason.unwrap_or_else(|| "failed".into()));
                p.failure_message = Some(
                    details
                        .failure_message
                        .unwrap_or_else(|| "Mollie: the payment failed".into()),
                );
            }
            PaymentStatus::Expired => {
                p.failure_code = Some("expired".into());
                p.failure_message = Some(match &self.expires_at {
                    Some(at) => format!("the buyer did not complete the payment before {at}"),
                    None => "the buyer did not complete the payment in time".into(),
                });
            }
            _ => {}
        }
        Ok(p)
    }

    /// The refunds Mollie embedded (`?embed=refunds`).
    pub fn refunds(&self) -> &[MollieRefund] {
        self.embedded.as_ref().map_or(&[], |e| &e.refunds)
    }
}

impl MollieRefund {
    /// The refund in payhost's words, for payment `payment`.
    ///
    /// # Errors
    /// `protocol_error` for an amount Mollie should never answer.
    pub fn to_refund(&self, payment: &str) -> Result<Refund, PluginError> {
        Ok(Refund {
            id: self.id.clone(),
            payment_id: self
                .payment_id
                .clone()
                .unwrap_or_else(|| payment.to_owned()),
            amount: self.amount.money()?,
            status: refund_status(&self.status),
            reason: self.description.clone(),
            created: time(self.created_at.as_deref()),
            metadata: metadata_of(&self.metadata),
        })
    }
}

/// A Mollie refund status in payhost's words.
pub fn refund_status(status: &str) -> RefundStatus {
    match status {
        "queued" | "pending" | "processing" => RefundStatus::Pending,
        "refunded" => RefundStatus::Succeeded,
        "failed" => RefundStatus::Failed,
        "canceled" => RefundStatus::Canceled,
        other => RefundStatus::Unknown(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment(v: Value) -> Payment {
        serde_json::from_value::<MolliePayment>(v)
            .unwrap()
            .to_payment()
            .unwrap()
    }

    #[test]
    fn statuses_and_amounts_map_as_the_table_says() {
        let open = payment(json!({"id": "tr_1", "status": "open",
            "amount": {"currency": "EUR", "value": "10.00"},
            "redirectUrl": "https://shop.example/back",
            "createdAt": "2026-12-07T10:00:00+00:00",
            "metadata": {"order": "12", "n": 3},
            "_links": {"checkout": {"href": "https://www.mollie.com/checkout/tr_1"}}}));
        assert_eq!(open.status, PaymentStatus::RequiresAction);
        assert_eq!(open.amount.amount, 1000);
        assert_eq!(open.created, 1_796_637_600);
        assert_eq!(open.metadata["order"], "12");
        assert_eq!(open.metadata["n"], "3");
        match open.next_action {
            Some(NextAction::RedirectToUrl { url, return_url }) => {
                assert_eq!(url, "https://www.mollie.com/checkout/tr_1");
                assert_eq!(return_url.as_deref(), Some("https://shop.example/back"));
            }
            other => panic!("{other:?}"),
        }
        let yen = payment(json!({"id": "tr_2", "status": "paid",
            "amount": {"currency": "JPY", "value": "1500"},
            "amountRefunded": {"currency": "JPY", "value": "500"}}));
        assert_eq!(
            (yen.status, yen.amount_received, yen.amount_refunded),
            (PaymentStatus::Succeeded, 1500, 500)
        );
        let failed = payment(json!({"id": "tr_3", "status": "failed",
            "amount": {"currency": "EUR", "value": "1.00"},
            "details": {"failureReason": "insufficient_funds",
                        "failureMessage": "The card has insufficient funds."}}));
        assert_eq!(failed.failure_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(
            failed.failure_message.as_deref(),
            Some("The card has insufficient funds.")
        );
        let expired = payment(json!({"id": "tr_4", "status": "expired",
            "amount": {"currency": "EUR", "value": "1.00"},
            "expiresAt": "2026-12-07T10:15:00+00:00"}));
        assert_eq!(expired.status, PaymentStatus::Expired);
        assert!(expired
            .failure_message
            .unwrap()
            .contains("2026-12-07T10:15:00"));
        let odd = payment(json!({"id": "tr_5", "status": "rerouted",
            "amount": {"currency": "EUR", "value": "1.00"}}));
        assert_eq!(odd.status, PaymentStatus::Unknown("rerouted".into()));
    }

    #[test]
    fn an_amount_with_the_wrong_digits_is_mollies_mistake() {
        let bad: MolliePayment = serde_json::from_value(json!({"id": "tr_1", "status": "paid",
            "amount": {"currency": "EUR", "value": "10.555"}}))
        .unwrap();
        assert_eq!(bad.to_payment().unwrap_err().code, codes::PROTOCOL);
    }

    #[test]
    fn refunds_settle_in_payhost_words() {
        for (mollie, ours) in [
            ("queued", RefundStatus::Pending),
            ("pending", RefundStatus::Pending),
            ("processing", RefundStatus::Pending),
            ("refunded", RefundStatus::Succeeded),
            ("failed", RefundStatus::Failed),
            ("canceled", RefundStatus::Canceled),
        ] {
            assert_eq!(refund_status(mollie), ours, "{mollie}");
        }
    }
}
