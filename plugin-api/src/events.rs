//! What a plugin reports happened: the host turns these into persisted domain events.

use crate::currency::Money;
use abi_stable::{
    std_types::{ROption, RString},
    StableAbi,
};

/// The kinds of payment facts a provider can report.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainEventKind {
    PaymentCreated,
    PaymentSucceeded,
    PaymentFailed,
    SubscriptionCreated,
    SubscriptionUpdated,
    SubscriptionCancelled,
    RefundProcessed,
    InvoicePaid,
    InvoicePaymentFailed,
}

impl DomainEventKind {
    pub const ALL: [DomainEventKind; 9] = [
        Self::PaymentCreated,
        Self::PaymentSucceeded,
        Self::PaymentFailed,
        Self::SubscriptionCreated,
        Self::SubscriptionUpdated,
        Self::SubscriptionCancelled,
        Self::RefundProcessed,
        Self::InvoicePaid,
        Self::InvoicePaymentFailed,
    ];

    /// The event's name, e.g. `PaymentSucceeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentCreated => "PaymentCreated",
            Self::PaymentSucceeded => "PaymentSucceeded",
            Self::PaymentFailed => "PaymentFailed",
            Self::SubscriptionCreated => "SubscriptionCreated",
            Self::SubscriptionUpdated => "SubscriptionUpdated",
            Self::SubscriptionCancelled => "SubscriptionCancelled",
            Self::RefundProcessed => "RefundProcessed",
            Self::InvoicePaid => "InvoicePaid",
            Self::InvoicePaymentFailed => "InvoicePaymentFailed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One fact reported by a provider, about one of its objects.
///
/// `object_id` is the provider's id of the object the fact is about (the payment for payment
/// events, the subscription, the refund, the invoice); the other ids relate it to the rest.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct DomainEventReport {
    pub kind: DomainEventKind,
    pub object_id: RString,
    pub customer_id: ROption<RString>,
    pub payment_id: ROption<RString>,
    pub subscription_id: ROption<RString>,
    pub invoice_id: ROption<RString>,
    pub amount: ROption<Money>,
    /// The object's status in the provider's words, after the fact.
    pub status: ROption<RString>,
    pub plan_id: ROption<RString>,
    pub previous_plan_id: ROption<RString>,
    pub cancel_at_period_end: bool,
    /// Why a payment failed, for failure events.
    pub error: ROption<RString>,
    /// Unix seconds at which it happened, by the provider's clock.
    pub occurred_at: i64,
}

impl DomainEventReport {
    /// A report with only the kind, the object and the time set.
    pub fn new(kind: DomainEventKind, object_id: &str, occurred_at: i64) -> Self {
        Self {
            kind,
            object_id: object_id.into(),
            customer_id: ROption::RNone,
            payment_id: ROption::RNone,
            subscription_id: ROption::RNone,
            invoice_id: ROption::RNone,
            amount: ROption::RNone,
            status: ROption::RNone,
            plan_id: ROption::RNone,
            previous_plan_id: ROption::RNone,
            cancel_at_period_end: false,
            error: ROption::RNone,
            occurred_at,
        }
    }
}
