//! What a record keeps as JSON text in a column and the API shows as it is: metadata, the
//! next action a buyer must take, an event's data.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A metadata column's object (`{}` when it holds anything else).
pub fn metadata(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// What the buyer must do before a payment or subscription can go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NextActionView {
    /// `redirect_to_url`: send the buyer to `url` (a provider's approval or 3-D Secure
    /// page); `use_client_secret`: finish in the browser with `client_secret`, given only
    /// in the answer that created or confirmed the record.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: Option<String>,
    /// Where the provider sends the buyer back.
    pub return_url: Option<String>,
}

/// The stored form of a next action (never a client secret).
pub fn next_action_view(stored: Option<&str>) -> Option<NextActionView> {
    stored.and_then(|s| serde_json::from_str(s).ok())
}

/// The next action of a provider's answer, as stored and shown.
pub fn next_action_of(a: &payhost_plugin_api::NextAction) -> NextActionView {
    use payhost_plugin_api::NextAction;
    match a {
        NextAction::RedirectToUrl { url, return_url } => NextActionView {
            kind: "redirect_to_url".into(),
            url: Some(url.clone()),
            return_url: return_url.clone(),
        },
        other => NextActionView {
            kind: other.kind().to_owned(),
            url: None,
            return_url: None,
        },
    }
}

/// What an event tells, with payhost's and the provider's ids of the records it names.
/// Never personal data beyond ids (an erased customer stays erased in the log).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct EventData {
    pub object_id: Option<String>,
    pub provider_object_id: String,
    pub customer: Option<String>,
    pub provider_customer_id: Option<String>,
    pub payment: Option<String>,
    pub provider_payment_id: Option<String>,
    pub subscription: Option<String>,
    pub provider_subscription_id: Option<String>,
    pub invoice: Option<String>,
    pub provider_invoice_id: Option<String>,
    /// The provider's id of the payment method (PaymentMethodDetached).
    pub provider_payment_method_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub plan: Option<String>,
    pub previous_plan: Option<String>,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    /// A dispute's or refund's reason.
    pub reason: Option<String>,
    pub error: Option<String>,
    /// Unix time at the provider.
    pub occurred_at: i64,
}
