//! Stripe's objects as they arrive on the wire, their statuses, and their mapping into
//! payhost's types. Every status is mapped arm by arm; a value a newer API adds becomes
//! `Unknown`, never a silent default.

use payhost_plugin_api::abi_stable::std_types::{ROption, RString, RVec};
use payhost_plugin_api::{
    Currency, Customer, Invoice, InvoiceStatus, KeyValue, Money, Payment, PaymentMethod,
    PaymentStatus, PluginError, Refund, RefundStatus, Subscription, SubscriptionStatus,
};
use serde::Deserialize;
use std::collections::BTreeMap;

fn ropt(v: &Option<String>) -> ROption<RString> {
    v.as_deref().map(RString::from).into()
}

fn metadata(m: &BTreeMap<String, String>) -> RVec<KeyValue> {
    m.iter().map(|(k, v)| KeyValue::new(k, v)).collect()
}

fn money(amount: i64, currency: &str) -> Result<Money, PluginError> {
    let c = Currency::parse(currency)
        .map_err(|e| PluginError::new(payhost_plugin_api::codes::INTERNAL, e.to_string()))?;
    Ok(Money::new(amount, c))
}

/// A field that is an id, or the object itself when expanded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

fn expandable_id<T>(e: &Option<Expandable<T>>, id_of: impl Fn(&T) -> &str) -> Option<String> {
    e.as_ref().map(|e| match e {
        Expandable::Id(id) => id.clone(),
        Expandable::Object(o) => id_of(o).to_owned(),
    })
}

// ---------------------------------------------------------------- customers

#[derive(Debug, Clone, Deserialize)]
pub struct StripeCustomer {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub invoice_settings: InvoiceSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InvoiceSettings {
    pub default_payment_method: Option<Expandable<StripePaymentMethod>>,
}

impl From<&StripeCustomer> for Customer {
    fn from(c: &StripeCustomer) -> Self {
        Customer {
            id: c.id.as_str().into(),
            email: c.email.clone().unwrap_or_default().into(),
            name: ropt(&c.name),
            default_payment_method: ropt(&expandable_id(
                &c.invoice_settings.default_payment_method,
                |p| &p.id,
            )),
            metadata: metadata(&c.metadata),
        }
    }
}

// ---------------------------------------------------------------- payment methods

#[derive(Debug, Clone, Deserialize)]
pub struct StripePaymentMethod {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub customer: Option<String>,
    pub card: Option<Card>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Card {
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u8>,
    pub exp_year: Option<u16>,
}

impl From<&StripePaymentMethod> for PaymentMethod {
    fn from(p: &StripePaymentMethod) -> Self {
        let card = p.card.as_ref();
        PaymentMethod {
            id: p.id.as_str().into(),
            customer_id: ropt(&p.customer),
            kind: p.kind.as_str().into(),
            brand: ropt(&card.and_then(|c| c.brand.clone())),
            last4: ropt(&card.and_then(|c| c.last4.clone())),
            exp_month: card.and_then(|c| c.exp_month).unwrap_or(0),
            exp_year: card.and_then(|c| c.exp_year).unwrap_or(0),
        }
    }
}

// ---------------------------------------------------------------- payment intents

/// PaymentIntent.status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    Unknown(String),
}

impl<'de> Deserialize<'de> for IntentStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "requires_payment_method" => Self::RequiresPaymentMethod,
            "requires_confirmation" => Self::RequiresConfirmation,
            "requires_action" => Self::RequiresAction,
            "processing" => Self::Processing,
            "requires_capture" => Self::RequiresCapture,
            "canceled" => Self::Canceled,
            "succeeded" => Self::Succeeded,
            _ => Self::Unknown(s),
        })
    }
}

impl From<&IntentStatus> for PaymentStatus {
    fn from(s: &IntentStatus) -> Self {
        match s {
            IntentStatus::RequiresPaymentMethod => PaymentStatus::RequiresPaymentMethod,
            IntentStatus::RequiresConfirmation => PaymentStatus::RequiresConfirmation,
            IntentStatus::RequiresAction => PaymentStatus::RequiresAction,
            IntentStatus::Processing => PaymentStatus::Processing,
            IntentStatus::RequiresCapture => PaymentStatus::RequiresCapture,
            IntentStatus::Canceled => PaymentStatus::Canceled,
            IntentStatus::Succeeded => PaymentStatus::Succeeded,
            IntentStatus::Unknown(s) => PaymentStatus::Unknown(s.as_str().into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub amount_received: i64,
    pub status: IntentStatus,
    pub customer: Option<String>,
    pub client_secret: Option<String>,
    pub payment_method: Option<String>,
    pub last_payment_error: Option<LastError>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Sum of refunds: not on the intent itself; filled from `latest_charge` when expanded.
    pub latest_charge: Option<Expandable<Charge>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LastError {
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default)]
    pub amount_refunded: i64,
    pub payment_intent: Option<String>,
}

impl PaymentIntent {
    /// The payhost payment. A payment whose last attempt was declined is `failed`, as the
    /// mock reports it: Stripe puts such an intent back to `requires_payment_method` with a
    /// `last_payment_error`.
    pub fn to_payment(&self, declined: bool) -> Result<Payment, PluginError> {
        let failed = declined
            || (self.status == IntentStatus::RequiresPaymentMethod
                && self.last_payment_error.is_some());
        let err = self.last_payment_error.as_ref();
        let amount_refunded = match &self.latest_charge {
            Some(Expandable::Object(c)) => c.amount_refunded,
            _ => 0,
        };
        Ok(Payment {
            id: self.id.as_str().into(),
            customer_id: ropt(&self.customer),
            amount: money(self.amount, &self.currency)?,
            amount_refunded,
            status: if failed {
                PaymentStatus::Failed
            } else {
                (&self.status).into()
            },
            client_secret: ropt(&self.client_secret),
            payment_method: ropt(&self.payment_method),
            failure_code: ropt(&err.and_then(|e| e.decline_code.clone().or(e.code.clone()))),
            failure_message: ropt(&err.and_then(|e| e.message.clone())),
            created: self.created,
            metadata: metadata(&self.metadata),
        })
    }
}

// ---------------------------------------------------------------- subscriptions

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    Unknown(String),
}

impl<'de> Deserialize<'de> for SubStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            _ => Self::Unknown(s),
        })
    }
}

impl From<&SubStatus> for SubscriptionStatus {
    fn from(s: &SubStatus) -> Self {
        match s {
            SubStatus::Incomplete => SubscriptionStatus::Incomplete,
            SubStatus::IncompleteExpired => SubscriptionStatus::IncompleteExpired,
            SubStatus::Trialing => SubscriptionStatus::Trialing,
            SubStatus::Active => SubscriptionStatus::Active,
            SubStatus::PastDue => SubscriptionStatus::PastDue,
            SubStatus::Canceled => SubscriptionStatus::Canceled,
            SubStatus::Unpaid => SubscriptionStatus::Unpaid,
            SubStatus::Paused => SubscriptionStatus::Paused,
            SubStatus::Unknown(s) => SubscriptionStatus::Unknown(s.as_str().into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeSubscription {
    pub id: String,
    pub customer: String,
    pub status: SubStatus,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub trial_end: Option<i64>,
    pub canceled_at: Option<i64>,
    pub items: List<SubscriptionItem>,
    pub latest_invoice: Option<Expandable<StripeInvoice>>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: Price,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
}

impl StripeSubscription {
    pub fn item(&self) -> Result<&SubscriptionItem, PluginError> {
        self.items.data.first().ok_or_else(|| {
            PluginError::new(
                payhost_plugin_api::codes::INTERNAL,
                format!("subscription '{}' has no items", self.id),
            )
        })
    }

    pub fn to_subscription(&self) -> Result<Subscription, PluginError> {
        let client_secret = match &self.latest_invoice {
            Some(Expandable::Object(inv)) => match &inv.payment_intent {
                Some(Expandable::Object(pi)) if self.status == SubStatus::Incomplete => {
                    pi.client_secret.clone()
                }
                _ => None,
            },
            _ => None,
        };
        Ok(Subscription {
            id: self.id.as_str().into(),
            customer_id: self.customer.as_str().into(),
            price_id: self.item()?.price.id.as_str().into(),
            status: (&self.status).into(),
            cancel_at_period_end: self.cancel_at_period_end,
            current_period_start: self.current_period_start,
            current_period_end: self.current_period_end,
            trial_end: self.trial_end.into(),
            canceled_at: self.canceled_at.into(),
            client_secret: ropt(&client_secret),
            metadata: metadata(&self.metadata),
        })
    }
}

// ---------------------------------------------------------------- refunds

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeRefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    Unknown(String),
}

impl<'de> Deserialize<'de> for StripeRefundStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "pending" => Self::Pending,
            "requires_action" => Self::RequiresAction,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => Self::Unknown(s),
        })
    }
}

impl From<&StripeRefundStatus> for RefundStatus {
    fn from(s: &StripeRefundStatus) -> Self {
        match s {
            StripeRefundStatus::Pending => RefundStatus::Pending,
            StripeRefundStatus::RequiresAction => RefundStatus::RequiresAction,
            StripeRefundStatus::Succeeded => RefundStatus::Succeeded,
            StripeRefundStatus::Failed => RefundStatus::Failed,
            StripeRefundStatus::Canceled => RefundStatus::Canceled,
            StripeRefundStatus::Unknown(s) => RefundStatus::Unknown(s.as_str().into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeRefund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: StripeRefundStatus,
    pub payment_intent: Option<String>,
    pub reason: Option<String>,
    #[serde(default)]
    pub created: i64,
}

impl StripeRefund {
    pub fn to_refund(&self) -> Result<Refund, PluginError> {
        Ok(Refund {
            id: self.id.as_str().into(),
            payment_id: self.payment_intent.clone().unwrap_or_default().into(),
            amount: money(self.amount, &self.currency)?,
            status: (&self.status).into(),
            reason: ropt(&self.reason),
            created: self.created,
        })
    }
}

// ---------------------------------------------------------------- invoices

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeInvoiceStatus {
    Draft,
    Open,
    Paid,
    Uncollectible,
    Void,
    Unknown(String),
}

impl<'de> Deserialize<'de> for StripeInvoiceStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "draft" => Self::Draft,
            "open" => Self::Open,
            "paid" => Self::Paid,
            "uncollectible" => Self::Uncollectible,
            "void" => Self::Void,
            _ => Self::Unknown(s),
        })
    }
}

impl From<&StripeInvoiceStatus> for InvoiceStatus {
    fn from(s: &StripeInvoiceStatus) -> Self {
        match s {
            StripeInvoiceStatus::Draft => InvoiceStatus::Draft,
            StripeInvoiceStatus::Open => InvoiceStatus::Open,
            StripeInvoiceStatus::Paid => InvoiceStatus::Paid,
            StripeInvoiceStatus::Uncollectible => InvoiceStatus::Uncollectible,
            StripeInvoiceStatus::Void => InvoiceStatus::Void,
            StripeInvoiceStatus::Unknown(s) => InvoiceStatus::Unknown(s.as_str().into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeInvoice {
    pub id: String,
    pub customer: String,
    pub subscription: Option<String>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    pub amount_due: i64,
    #[serde(default)]
    pub amount_paid: i64,
    pub currency: String,
    pub status: Option<StripeInvoiceStatus>,
    pub invoice_pdf: Option<String>,
    #[serde(default)]
    pub created: i64,
}

impl StripeInvoice {
    pub fn to_invoice(&self) -> Result<Invoice, PluginError> {
        Ok(Invoice {
            id: self.id.as_str().into(),
            customer_id: self.customer.as_str().into(),
            subscription_id: ropt(&self.subscription),
            payment_id: ropt(&expandable_id(&self.payment_intent, |p| &p.id)),
            amount_due: money(self.amount_due, &self.currency)?,
            amount_paid: self.amount_paid,
            status: self
                .status
                .as_ref()
                .map_or(InvoiceStatus::Draft, InvoiceStatus::from),
            pdf_url: ropt(&self.invoice_pdf),
            created: self.created,
        })
    }
}

// ---------------------------------------------------------------- lists and errors

#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: StripeError,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeError {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    pub param: Option<String>,
    /// On a card error, the intent the attempt belonged to.
    pub payment_intent: Option<PaymentIntent>,
}
