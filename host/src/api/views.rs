//! What the API answers: one typed view per record kind, built from the store's rows. Every
//! record carries payhost's id, the provider instance's name and the provider's own id.

use serde::Serialize;
use utoipa::ToSchema;

// The views of the records payhost keeps are declared with their rows, one declaration per
// kind (`store::record`).
pub use crate::store::attempts::AttemptView;
pub use crate::store::customers::{CustomerView, PaymentMethodView};
pub use crate::store::events::EventView;
pub use crate::store::inbox::InboxView;
pub use crate::store::invoices::InvoiceView;
pub use crate::store::json::{next_action_of, next_action_view, EventData, NextActionView};
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
