//! What callers send: request bodies and list queries. Field rules live in the field
//! types ([`super::fields`]); rules across fields live in each body's [`Rules`], which the
//! parser checks and the schema documents.

use super::fields::{
    Amount, CurrencyCode, Description, Email, EventType, Flag, Id, Limit, Metadata, Name,
    PaymentMethodRef, PriceId, ProviderName, StatusFilter, Timestamp, TrialDays, Url, UserId,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Rules across the fields of a body. A field counts as given when present and not null.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Groups of fields of which at least one must be given whole.
    pub any_of: &'static [&'static [&'static str]],
    /// What to tell a caller who gave none of `any_of`.
    pub any_of_message: &'static str,
    /// Pairs of fields that must not be given together.
    pub exclusive: &'static [(&'static str, &'static str)],
}

impl Rules {
    pub const NONE: Rules = Rules {
        any_of: &[],
        any_of_message: "",
        exclusive: &[],
    };
}

/// A request body: parsed from JSON, its cross-field rules checked first.
pub trait Body: serde::de::DeserializeOwned + ToSchema {
    const RULES: Rules = Rules::NONE;
}

/// Who pays, in the bodies that create a payment or a subscription.
const PAYER_RULES: Rules = Rules {
    any_of: &[&["customer"], &["user_id"]],
    any_of_message: "give either 'customer' (a payhost customer id) or 'user_id' (the \
                     application's user, created as a customer when new)",
    exclusive: &[("customer", "user_id")],
};

/// `POST /v1/customers`: the user's customer on a provider (created when new).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub user_id: UserId,
    pub email: Email,
    pub name: Option<Name>,
    #[serde(default)]
    pub metadata: Metadata,
    /// The provider instance; the tenant's or the default one when not given.
    pub provider: Option<ProviderName>,
}
impl Body for CreateCustomer {}

/// `POST /v1/customers/{id}`: the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    pub email: Option<Email>,
    pub name: Option<Name>,
    /// Keys given are set; the others stay.
    pub metadata: Option<Metadata>,
}
impl Body for UpdateCustomer {}

/// A payment method to attach or to make the default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodBody {
    pub payment_method: PaymentMethodRef,
}
impl Body for PaymentMethodBody {}

/// How a payment's money is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    /// Taken when the payment is confirmed.
    #[default]
    Automatic,
    /// Authorized on confirmation, taken by `POST /v1/payments/{id}/capture`.
    Manual,
}

/// `POST /v1/payments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// An existing payhost customer…
    pub customer: Option<Id>,
    /// …or the application's user (a customer is created for them when new).
    pub user_id: Option<UserId>,
    /// The user's email, for a new customer (else the one payhost last saw).
    pub email: Option<Email>,
    pub name: Option<Name>,
    pub provider: Option<ProviderName>,
    pub amount: Amount,
    pub currency: CurrencyCode,
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// Confirm now with this method (a saved one, or the provider's id of one).
    pub payment_method: Option<PaymentMethodRef>,
    /// Where the provider sends the buyer back after an approval page.
    pub return_url: Option<Url>,
    /// Where the provider sends a buyer who cancels on the approval page.
    pub cancel_url: Option<Url>,
    pub description: Option<Description>,
    #[serde(default)]
    pub metadata: Metadata,
}
impl Body for CreatePayment {
    const RULES: Rules = PAYER_RULES;
}

/// `POST /v1/payments/{id}/confirm`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayment {
    pub payment_method: Option<PaymentMethodRef>,
    pub return_url: Option<Url>,
}
impl Body for ConfirmPayment {}

/// `POST /v1/payments/{id}/capture`: all that was authorized, or less.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    /// At most the amount authorized; the rest is released.
    pub amount: Option<Amount>,
}
impl Body for CapturePayment {}

/// A POST whose body must be empty or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}
impl Body for Empty {}

/// Why a refund is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
        }
    }
}

/// `POST /v1/refunds`: all of what remains refundable, or part of it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    pub payment: Id,
    pub amount: Option<Amount>,
    pub reason: Option<RefundReason>,
    #[serde(default)]
    pub metadata: Metadata,
}
impl Body for CreateRefund {}

/// `POST /v1/subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    pub customer: Option<Id>,
    pub user_id: Option<UserId>,
    pub email: Option<Email>,
    pub name: Option<Name>,
    pub provider: Option<ProviderName>,
    pub price: PriceId,
    #[serde(default)]
    pub trial_days: TrialDays,
    /// Where the provider sends the subscriber back after an approval page.
    pub return_url: Option<Url>,
    pub cancel_url: Option<Url>,
    #[serde(default)]
    pub metadata: Metadata,
}
impl Body for CreateSubscription {
    const RULES: Rules = PAYER_RULES;
}

/// `POST /v1/subscriptions/{id}/price`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePrice {
    pub price: PriceId,
}
impl Body for ChangePrice {}

/// `POST /v1/subscriptions/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscription {
    /// Keep the subscription until the end of the period it is in.
    #[serde(default)]
    pub at_period_end: bool,
}
impl Body for CancelSubscription {}

/// `POST /v1/checkout`: the user's customer ensured, then a subscription (`price`) or one
/// payment (`amount` and `currency`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkout {
    pub user_id: UserId,
    pub email: Option<Email>,
    pub name: Option<Name>,
    pub provider: Option<ProviderName>,
    /// A subscription to this price…
    pub price: Option<PriceId>,
    #[serde(default)]
    pub trial_days: TrialDays,
    /// …or one payment of this amount.
    pub amount: Option<Amount>,
    pub currency: Option<CurrencyCode>,
    #[serde(default)]
    pub capture_method: CaptureMethod,
    pub payment_method: Option<PaymentMethodRef>,
    pub return_url: Option<Url>,
    pub cancel_url: Option<Url>,
    pub description: Option<Description>,
    #[serde(default)]
    pub metadata: Metadata,
}
impl Body for Checkout {
    const RULES: Rules = Rules {
        any_of: &[&["price"], &["amount", "currency"]],
        any_of_message: "give a 'price' (a subscription) or an 'amount' and a 'currency' \
                         (one payment)",
        exclusive: &[("price", "amount")],
    };
}

// Query strings are checked for unknown names against the parameters these types declare
// (see `http::call::ApiQuery`), so a list's page and filters parse from one query string.

/// A page of a list: `limit` records after `starting_after` or before `ending_before`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    #[serde(default)]
    #[param(value_type = Option<Limit>)]
    pub limit: Limit,
    /// The id of the last record of the previous page: the page after it.
    pub starting_after: Option<Id>,
    /// The id of the first record of the next page: the page before it.
    pub ending_before: Option<Id>,
}

/// Filters of `GET /v1/payments`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentFilters {
    pub customer: Option<Id>,
    pub status: Option<StatusFilter>,
    pub provider: Option<ProviderName>,
    /// Created at or after this time.
    pub created_gte: Option<Timestamp>,
    /// Created at or before this time.
    pub created_lte: Option<Timestamp>,
}

/// Filters of `GET /v1/customers`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerFilters {
    pub user_id: Option<UserId>,
    pub email: Option<Email>,
    pub provider: Option<ProviderName>,
}

/// Filters of `GET /v1/subscriptions`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriptionFilters {
    pub customer: Option<Id>,
    pub status: Option<StatusFilter>,
}

/// Filters of `GET /v1/refunds`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundFilters {
    pub payment: Option<Id>,
}

/// Filters of `GET /v1/invoices`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceFilters {
    pub customer: Option<Id>,
    pub status: Option<StatusFilter>,
}

/// Filters of `GET /v1/events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<EventType>,
    /// payhost's id of the record the events are about.
    pub object_id: Option<Id>,
    pub created_gte: Option<Timestamp>,
    pub created_lte: Option<Timestamp>,
}

/// `?refresh=true`: pull the provider's current state and sync it before answering.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Refresh {
    #[serde(default)]
    #[param(value_type = Option<Flag>)]
    pub refresh: Flag,
}

/// `POST /admin/routing/explain`: whose request it is.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainParams {
    /// The tenant the request would come from (as its `X-Tenant-Id`, or its key's tenant).
    pub tenant: Option<crate::api::fields::TenantId>,
    /// The request's Idempotency-Key: where it falls in a volume split.
    pub idempotency_key: Option<crate::api::fields::KeyParam>,
}

/// Filters of the admin views of the inbox and the outbox.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueFilters {
    /// `pending`, `processed`/`done` or `failed`.
    pub status: Option<StatusFilter>,
}

/// Filters and page of `GET /admin/audit` (newest first).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this actor's rows (`ops`, `console:ops`, `cli:alice`, `unknown`).
    pub actor: Option<crate::api::fields::AuditText>,
    /// Only this action (`plugin.stop`, `auth.failed`, ...).
    pub action: Option<crate::api::fields::AuditText>,
    /// At or after this time (unix seconds).
    pub since: Option<crate::api::fields::Timestamp>,
    /// At or before this time (unix seconds).
    pub until: Option<crate::api::fields::Timestamp>,
    #[serde(default)]
    #[param(value_type = Option<crate::api::fields::Limit>)]
    pub limit: crate::api::fields::Limit,
    /// The `seq` of the last row of the previous page: the older rows after it.
    pub starting_after: Option<i64>,
}
