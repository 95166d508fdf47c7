//! The messages operations exchange, as plain Rust types. They cross the boundary as JSON
//! (see the crate docs, "How this contract evolves"): request types refuse fields they do
//! not know, response types ignore them, and every enum keeps values it does not know.

mod ctx;
mod customers;
mod events;
mod http;
mod invoices;
mod payments;
mod refunds;
mod subscriptions;
mod webhooks;

pub use ctx::CallCtx;
pub use customers::{
    AttachPaymentMethod, Customer, CustomerRef, CustomerUpdate, Deleted, DetachPaymentMethod,
    NewCustomer, PaymentMethod, PaymentMethodList, SetDefaultPaymentMethod,
};
pub use events::{DomainEventKind, DomainEventReport};
pub use http::{Bytes, Headers, HttpRequest, HttpResponse, LogLevel};
pub use invoices::{Invoice, InvoicePage, InvoiceQuery, InvoiceStatus};
pub use payments::{
    CaptureMethod, CapturePayment, ConfirmPayment, NewPayment, NextAction, Payer, Payment,
    PaymentStatus,
};
pub use refunds::{NewRefund, Refund, RefundRef, RefundStatus};
pub use subscriptions::{
    CancelSubscription, ChangeSubscriptionPrice, NewSubscription, Subscription, SubscriptionStatus,
};
pub use webhooks::{VerifiedEvent, WebhookDelivery, WebhookEvent, WebhookReports};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Free-form key/value pairs attached to an object, passed through to the provider.
pub type Metadata = BTreeMap<String, String>;

/// Whether `v` is its type's default: request fields at their default are left out of the
/// message, so a peer that does not know a field only ever sees it when it matters.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A request or answer that carries no data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Names one object by the provider's id: the request of the `get_*` operations and of
/// operations that take nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// The provider's id of the object.
    pub id: String,
}

impl ObjectRef {
    /// A reference to the object `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}
