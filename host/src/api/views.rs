//! What the API answers: one typed view per record kind, built from the store's rows. Every
//! record carries payhost's id, the provider instance's name and the provider's own id.

use crate::store::EventRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// The views of the records payhost keeps are declared with their rows, one declaration per
// kind (`store::record`).
pub use crate::store::attempts::AttemptView;
pub use crate::store::customers::{CustomerView, PaymentMethodView};
pub use crate::store::inbox::InboxView;
pub use crate::store::invoices::InvoiceView;
pub use crate::store::json::{next_action_of, next_action_view, NextActionView};
pub use crate::store::outbox::OutboxView;
pub use crate::store::payments::PaymentView;
pub use crate::store::refunds::RefundView;
pub use crate::store::subscriptions::SubscriptionView;

/// One page of a list, newest first (the event log: oldest first).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct List<T> {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<T>,
    /// More records follow in the direction the page went.
    pub has_more: bool,
}

impl<T> List<T> {
    pub fn new(data: Vec<T>, has_more: bool) -> Self {
        Self {
            object: "list",
            data,
            has_more,
        }
    }
}

/// A record that is gone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletedView {
    pub id: String,
    /// The kind of record: `customer`, `payment_method`.
    pub object: &'static str,
    /// Always true.
    pub deleted: bool,
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

/// A domain event: a fact about a record, recorded once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    /// Always `event`.
    pub object: &'static str,
    /// Position in the log: events are listed in this order.
    pub seq: i64,
    /// `PaymentSucceeded`, `RefundProcessed`, `DisputeOpened`, … (kinds a newer provider
    /// reports are kept as they came).
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant: Option<String>,
    pub provider: String,
    pub object_id: Option<String>,
    pub provider_object_id: String,
    pub data: EventData,
    pub created_at: i64,
}

impl From<&EventRow> for EventView {
    fn from(e: &EventRow) -> Self {
        Self {
            id: e.id.clone(),
            object: "event",
            seq: e.seq,
            kind: e.kind.clone(),
            tenant: e.tenant.clone(),
            provider: e.provider.clone(),
            object_id: e.object_id.clone(),
            provider_object_id: e.provider_object_id.clone(),
            data: serde_json::from_str(&e.data).unwrap_or_default(),
            created_at: e.created_at,
        }
    }
}

/// `POST /v1/checkout`'s answer: the customer and what was created, with what the browser
/// needs to finish paying.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckoutView {
    /// Always `checkout`.
    pub object: &'static str,
    /// `subscription` or `payment`.
    pub mode: &'static str,
    pub provider: String,
    pub customer: CustomerView,
    pub client_secret: Option<String>,
    pub next_action: Option<NextActionView>,
    pub subscription: Option<SubscriptionView>,
    pub payment: Option<PaymentView>,
}

/// A provider instance the API can use.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderView {
    pub name: String,
    pub plugin: String,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    /// `running`, `stopped`, `failed`, …
    pub state: String,
    /// Records of callers without a tenant go here.
    pub default: bool,
    pub tenants: Vec<String>,
}
