use crate::money::Money;
use serde::{Deserialize, Serialize};

crate::open_enum! {
    /// The kinds of payment facts a provider reports. The wire name is the event's name in
    /// payhost's event log and in the application's webhooks.
    pub enum DomainEventKind {
        /// A payment was created.
        PaymentCreated => "PaymentCreated",
        /// A payment was authorized and waits for capture (manual capture).
        PaymentAuthorized => "PaymentAuthorized",
        /// Money was received.
        PaymentSucceeded => "PaymentSucceeded",
        /// A payment attempt failed.
        PaymentFailed => "PaymentFailed",
        /// A payment was canceled (an authorization voided, an order abandoned).
        PaymentCanceled => "PaymentCanceled",
        /// A payment was not completed in time (status `expired`); `error` says why when
        /// the provider does (since 2.2).
        PaymentExpired => "PaymentExpired",
        /// A subscription was created.
        SubscriptionCreated => "SubscriptionCreated",
        /// A subscription's status, price or cancellation schedule changed.
        SubscriptionUpdated => "SubscriptionUpdated",
        /// A subscription ended.
        SubscriptionCancelled => "SubscriptionCancelled",
        /// Money went back to the buyer.
        RefundProcessed => "RefundProcessed",
        /// A refund failed or was canceled after it was accepted: the money did not go back
        /// (since 2.2). `object_id` is the refund, `payment_id` its payment.
        RefundFailed => "RefundFailed",
        /// An invoice was paid.
        InvoicePaid => "InvoicePaid",
        /// An invoice's payment failed.
        InvoicePaymentFailed => "InvoicePaymentFailed",
        /// The buyer disputed a payment (a chargeback) (since 2.1).
        DisputeOpened => "DisputeOpened",
        /// A dispute ended; `status` says `won` or `lost` (since 2.1).
        DisputeClosed => "DisputeClosed",
        /// A saved payment method was detached from its customer (since 2.1).
        PaymentMethodDetached => "PaymentMethodDetached",
        /// A customer's email or name changed at the provider (since 2.1).
        CustomerUpdated => "CustomerUpdated",
        /// A customer was deleted at the provider (since 2.1).
        CustomerDeleted => "CustomerDeleted",
        /// One provider call for a payment failed: its instance could not be reached, or
        /// answered a soft decline, or left the outcome unknown (since 2.2; recorded by
        /// the host, never reported by plugins).
        PaymentAttemptFailed => "PaymentAttemptFailed",
        /// A payment went on at the next instance of its route after an attempt that did
        /// nothing (since 2.2; recorded by the host, never reported by plugins).
        PaymentRerouted => "PaymentRerouted",
    }
}

/// One fact about one provider object, reported by a plugin (in a webhook's mapping or
/// through the host's `emit` service). The host turns reports into persisted events, one
/// per fact: the same payment succeeding, told by an operation's answer and again by a
/// webhook, is one `PaymentSucceeded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEventReport {
    /// What happened.
    pub kind: DomainEventKind,
    /// The provider's id of the object the fact is about: the payment for payment events,
    /// the subscription, the refund, the invoice.
    pub object_id: String,
    /// The provider's customer id involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The provider's payment id involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The provider's subscription id involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The provider's invoice id involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
    /// The amount involved (the payment's, the refund's, the invoice's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// The object's status in payhost's words after the fact (e.g. `succeeded`, `active`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The subscription's price (plan) after the fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The price before, for a price change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_plan_id: Option<String>,
    /// The subscription ends at the end of its period.
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// Why a payment failed, for failure events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix seconds at which it happened, by the provider's clock.
    pub occurred_at: i64,
    /// The provider's payment method id involved (since 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_id: Option<String>,
    /// A customer's email after the fact (since 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A customer's name after the fact (since 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix seconds: the subscription's current period starts (since 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_start: Option<i64>,
    /// Unix seconds: the subscription's current period ends (since 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<i64>,
    /// Unix seconds: the subscription's trial ends (since 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<i64>,
    /// Why: a dispute's reason (`fraudulent`, `product_not_received`, ...) (since 2.1); the
    /// code of a `PaymentFailed` or `PaymentExpired` (`insufficient_funds`, `expired`),
    /// which the host keeps as the payment's `failure_code`, `error` being its message
    /// (since 2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl DomainEventReport {
    /// A report with only the kind, the object and the time set.
    pub fn new(kind: DomainEventKind, object_id: &str, occurred_at: i64) -> Self {
        Self {
            kind,
            object_id: object_id.to_owned(),
            customer_id: None,
            payment_id: None,
            subscription_id: None,
            invoice_id: None,
            amount: None,
            status: None,
            plan_id: None,
            previous_plan_id: None,
            cancel_at_period_end: false,
            error: None,
            occurred_at,
            payment_method_id: None,
            email: None,
            name: None,
            current_period_start: None,
            current_period_end: None,
            trial_end: None,
            reason: None,
        }
    }
}
