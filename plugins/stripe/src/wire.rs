//! Stripe's objects as they arrive on the wire, their statuses, and their mapping into
//! payhost's types. Every status is mapped arm by arm; a value a newer API adds becomes
//! `Unknown`, never a silent default.

use payhost_plugin_kit::{
    codes, CaptureMethod, Currency, Customer, Invoice, InvoiceStatus, Metadata, Money, NextAction,
    Payment, PaymentMethod, PaymentStatus, PluginError, Refund, RefundStatus, Subscription,
    SubscriptionStatus,
};
use serde::Deserialize;

fn money(amount: i64, currency: &str) -> Result<Money, PluginError> {
    let c =
        Currency::parse(currency).map_err(|e| PluginError::new(codes::INTERNAL, e.to_string()))?;
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
    pub metadata: Metadata,
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
            id: c.id.clone(),
            email: c.email.clone().unwrap_or_default(),
            name: c.name.clone(),
            default_payment_method: expandable_id(
                &c.invoice_settings.default_payment_method,
                |p| &p.id,
            ),
            metadata: c.metadata.clone(),
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
            id: p.id.clone(),
            customer_id: p.customer.clone(),
            kind: p.kind.clone(),
            brand: card.and_then(|c| c.brand.clone()),
            last4: card.and_then(|c| c.last4.clone()),
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
            IntentStatus::Unknown(s) => PaymentStatus::Unknown(s.clone()),
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
    #[serde(default)]
    pub capture_method: Option<String>,
    pub customer: Option<String>,
    pub client_secret: Option<String>,
    pub payment_method: Option<String>,
    pub last_payment_error: Option<LastError>,
    #[serde(default)]
    pub next_action: Option<IntentNextAction>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub metadata: Metadata,
    /// Sum of refunds: not on the intent itself; filled from `latest_charge` when expanded.
    pub latest_charge: Option<Expandable<Charge>>,
}

/// PaymentIntent.next_action.
#[derive(Debug, Clone, Deserialize)]
pub struct IntentNextAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub redirect_to_url: Option<RedirectToUrl>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedirectToUrl {
    pub url: Option<String>,
    pub return_url: Option<String>,
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
        let status = if failed {
            PaymentStatus::Failed
        } else {
            (&self.status).into()
        };
        Ok(Payment {
            id: self.id.clone(),
            customer_id: self.customer.clone(),
            amount: money(self.amount, &self.currency)?,
            amount_received: self.amount_received,
            amount_refunded,
            capture_method: match self.capture_method.as_deref() {
                Some("manual") => CaptureMethod::Manual,
                None | Some("automatic" | "automatic_async") => CaptureMethod::Automatic,
                Some(other) => CaptureMethod::Unknown(other.to_owned()),
            },
            next_action: self.next_action_for(&status),
            status,
            payment_method: self.payment_method.clone(),
            failure_code: err.and_then(|e| e.decline_code.clone().or(e.code.clone())),
            failure_message: err.and_then(|e| e.message.clone()),
            created: self.created,
            metadata: self.metadata.clone(),
        })
    }

    /// What the buyer or client must do: Stripe's redirect (3-D Secure with a return URL),
    /// or confirming with Stripe.js and the client secret.
    fn next_action_for(&self, status: &PaymentStatus) -> Option<NextAction> {
        let redirect = self
            .next_action
            .as_ref()
            .filter(|a| a.kind == "redirect_to_url")
            .and_then(|a| a.redirect_to_url.as_ref())
            .and_then(|r| {
                Some(NextAction::RedirectToUrl {
                    url: r.url.clone()?,
                    return_url: r.return_url.clone(),
                })
            });
        let secret = || {
            self.client_secret
                .clone()
                .map(|client_secret| NextAction::UseClientSecret { client_secret })
        };
        match status {
            PaymentStatus::RequiresAction => redirect.or_else(secret),
            PaymentStatus::RequiresPaymentMethod | PaymentStatus::RequiresConfirmation => secret(),
            PaymentStatus::Processing
            | PaymentStatus::RequiresCapture
            | PaymentStatus::Succeeded
            | PaymentStatus::Failed
            | PaymentStatus::Canceled
            | PaymentStatus::Expired
            | PaymentStatus::Unknown(_) => None,
        }
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
            SubStatus::Unknown(s) => SubscriptionStatus::Unknown(s.clone()),
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
    pub metadata: Metadata,
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
                codes::INTERNAL,
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
            id: self.id.clone(),
            customer_id: Some(self.customer.clone()),
            price_id: self.item()?.price.id.clone(),
            status: (&self.status).into(),
            cancel_at_period_end: self.cancel_at_period_end,
            current_period_start: self.current_period_start,
            current_period_end: self.current_period_end,
            trial_end: self.trial_end,
            canceled_at: self.canceled_at,
            next_action: client_secret
                .map(|client_secret| NextAction::UseClientSecret { client_secret }),
            metadata: self.metadata.clone(),
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
            StripeRefundStatus::Unknown(s) => RefundStatus::Unknown(s.clone()),
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
    #[serde(default)]
    pub metadata: Metadata,
}

impl StripeRefund {
    pub fn to_refund(&self) -> Result<Refund, PluginError> {
        Ok(Refund {
            id: self.id.clone(),
            payment_id: self.payment_intent.clone().unwrap_or_default(),
            amount: money(self.amount, &self.currency)?,
            status: (&self.status).into(),
            reason: self.reason.clone(),
            created: self.created,
            metadata: self.metadata.clone(),
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
            StripeInvoiceStatus::Unknown(s) => InvoiceStatus::Unknown(s.clone()),
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
            id: self.id.clone(),
            customer_id: self.customer.clone(),
            subscription_id: self.subscription.clone(),
            payment_id: expandable_id(&self.payment_intent, |p| &p.id),
            amount_due: money(self.amount_due, &self.currency)?,
            amount_paid: self.amount_paid,
            status: self
                .status
                .as_ref()
                .map_or(InvoiceStatus::Draft, InvoiceStatus::from),
            pdf_url: self.invoice_pdf.clone(),
            created: self.created,
        })
    }
}

/// The answer of a DELETE: `{"id", "object", "deleted": true}`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeletedObject {
    pub id: String,
    #[serde(default)]
    pub deleted: bool,
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
