//! Requests and results that cross the plugin boundary. All FFI-safe (`StableAbi`).

use crate::currency::Money;
use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

/// One key/value pair: metadata, configuration, HTTP headers.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: RString,
    pub value: RString,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into().into(),
            value: value.into().into(),
        }
    }
}

/// Metadata as an ordered list of pairs.
pub type Metadata = RVec<KeyValue>;

/// Looks a key up in a list of pairs (the first match).
pub fn lookup<'a>(pairs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str())
}

/// Per-call context the host passes to every operation.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct CallCtx {
    /// The API caller's `Idempotency-Key`, for providers that accept one.
    pub idempotency_key: ROption<RString>,
    /// The host's request id, for logs.
    pub request_id: RString,
}

// ---------------------------------------------------------------- statuses

/// Status of a one-time payment.
#[repr(u8)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Succeeded,
    Failed,
    Canceled,
    /// A status this version of the API does not know, kept verbatim.
    Unknown(RString),
}

/// Status of a subscription.
#[repr(u8)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    Unknown(RString),
}

/// Status of an invoice.
#[repr(u8)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Uncollectible,
    Void,
    Unknown(RString),
}

/// Status of a refund.
#[repr(u8)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    Unknown(RString),
}

macro_rules! status_names {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// The snake_case wire name (`Unknown` keeps the provider's own word).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $name,)*
                    Self::Unknown(s) => s.as_str(),
                }
            }

            /// Parses a snake_case name; anything else becomes `Unknown`.
            pub fn parse(name: &str) -> Self {
                match name {
                    $($name => Self::$variant,)*
                    other => Self::Unknown(other.into()),
                }
            }
        }
    };
}

status_names!(PaymentStatus {
    RequiresPaymentMethod => "requires_payment_method",
    RequiresConfirmation => "requires_confirmation",
    RequiresAction => "requires_action",
    Processing => "processing",
    RequiresCapture => "requires_capture",
    Succeeded => "succeeded",
    Failed => "failed",
    Canceled => "canceled",
});

status_names!(SubscriptionStatus {
    Incomplete => "incomplete",
    IncompleteExpired => "incomplete_expired",
    Trialing => "trialing",
    Active => "active",
    PastDue => "past_due",
    Canceled => "canceled",
    Unpaid => "unpaid",
    Paused => "paused",
});

status_names!(InvoiceStatus {
    Draft => "draft",
    Open => "open",
    Paid => "paid",
    Uncollectible => "uncollectible",
    Void => "void",
});

status_names!(RefundStatus {
    Pending => "pending",
    RequiresAction => "requires_action",
    Succeeded => "succeeded",
    Failed => "failed",
    Canceled => "canceled",
});

// ---------------------------------------------------------------- customers

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct NewCustomer {
    pub email: RString,
    pub name: ROption<RString>,
    pub metadata: Metadata,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct CustomerUpdate {
    pub customer_id: RString,
    pub email: ROption<RString>,
    pub name: ROption<RString>,
    pub metadata: Metadata,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub id: RString,
    pub email: RString,
    pub name: ROption<RString>,
    pub default_payment_method: ROption<RString>,
    pub metadata: Metadata,
}

// ---------------------------------------------------------------- payment methods

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PaymentMethod {
    pub id: RString,
    pub customer_id: ROption<RString>,
    /// `card`, `sepa_debit`, ...
    pub kind: RString,
    pub brand: ROption<RString>,
    pub last4: ROption<RString>,
    pub exp_month: u8,
    pub exp_year: u16,
}

// ---------------------------------------------------------------- payments

#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct NewPayment {
    pub customer_id: RString,
    pub amount: Money,
    /// Confirm at once with this payment method.
    pub payment_method: ROption<RString>,
    pub description: ROption<RString>,
    pub metadata: Metadata,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: RString,
    pub customer_id: ROption<RString>,
    pub amount: Money,
    /// How much of `amount` has been refunded so far.
    pub amount_refunded: i64,
    pub status: PaymentStatus,
    pub client_secret: ROption<RString>,
    pub payment_method: ROption<RString>,
    /// The provider's reason when the payment failed.
    pub failure_code: ROption<RString>,
    pub failure_message: ROption<RString>,
    pub created: i64,
    pub metadata: Metadata,
}

// ---------------------------------------------------------------- subscriptions

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct NewSubscription {
    pub customer_id: RString,
    pub price_id: RString,
    pub trial_days: u32,
    pub metadata: Metadata,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: RString,
    pub customer_id: RString,
    pub price_id: RString,
    pub status: SubscriptionStatus,
    pub cancel_at_period_end: bool,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub trial_end: ROption<i64>,
    pub canceled_at: ROption<i64>,
    /// The client secret of the first invoice's payment, when one needs confirming.
    pub client_secret: ROption<RString>,
    pub metadata: Metadata,
}

// ---------------------------------------------------------------- refunds

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct NewRefund {
    pub payment_id: RString,
    /// `None` refunds whatever remains.
    pub amount: ROption<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: ROption<RString>,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub id: RString,
    pub payment_id: RString,
    pub amount: Money,
    pub status: RefundStatus,
    pub reason: ROption<RString>,
    pub created: i64,
}

// ---------------------------------------------------------------- invoices

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    pub id: RString,
    pub customer_id: RString,
    pub subscription_id: ROption<RString>,
    pub payment_id: ROption<RString>,
    pub amount_due: Money,
    pub amount_paid: i64,
    pub status: InvoiceStatus,
    pub pdf_url: ROption<RString>,
    pub created: i64,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default)]
pub struct InvoiceQuery {
    pub customer_id: RString,
    /// 1..=100.
    pub limit: u32,
    /// Cursor: the last invoice id of the previous page.
    pub starting_after: ROption<RString>,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct InvoicePage {
    pub invoices: RVec<Invoice>,
    pub has_more: bool,
}

// ---------------------------------------------------------------- webhooks

/// One webhook delivery as received: raw bytes and headers, and the host's clock.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct WebhookDelivery {
    pub body: RVec<u8>,
    /// Header names in lowercase.
    pub headers: RVec<KeyValue>,
    /// Unix seconds, from the host clock.
    pub now: i64,
}

/// A delivery whose signature checked out.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// The provider's event id: the deduplication key.
    pub id: RString,
    pub event_type: RString,
    /// Unix seconds at which the provider created the event.
    pub created: i64,
    /// The raw payload, as UTF-8 JSON text.
    pub payload: RString,
}
