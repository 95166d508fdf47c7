//! What the API answers: one typed view per record kind, built from the store's rows. Every
//! record carries payhost's id, the provider instance's name and the provider's own id.

use crate::store::{
    CustomerRow, EventRow, InboxRow, InvoiceRow, OutboxRow, PaymentMethodRow, PaymentRow,
    RefundRow, SubscriptionRow,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

fn metadata(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

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

/// A customer: an application user on one provider instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    /// Always `customer`.
    pub object: &'static str,
    pub user_id: String,
    pub tenant: Option<String>,
    pub provider: String,
    /// The provider's id; null for a customer payhost keeps itself (a provider without
    /// customers).
    pub provider_id: Option<String>,
    pub email: String,
    pub name: Option<String>,
    /// payhost's id of the default payment method.
    pub default_payment_method: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&CustomerRow> for CustomerView {
    fn from(c: &CustomerRow) -> Self {
        Self {
            id: c.id.clone(),
            object: "customer",
            user_id: c.user_id.clone(),
            tenant: (!c.tenant.is_empty()).then(|| c.tenant.clone()),
            provider: c.provider.clone(),
            provider_id: (!c.host_kept).then(|| c.provider_id.clone()),
            email: c.email.clone(),
            name: c.name.clone(),
            default_payment_method: c.default_payment_method.clone(),
            metadata: metadata(&c.metadata),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A saved payment method.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentMethodView {
    pub id: String,
    /// Always `payment_method`.
    pub object: &'static str,
    pub customer: String,
    pub provider: String,
    pub provider_id: String,
    /// `card`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: i64,
    pub exp_year: i64,
    pub created_at: i64,
}

impl From<&PaymentMethodRow> for PaymentMethodView {
    fn from(pm: &PaymentMethodRow) -> Self {
        Self {
            id: pm.id.clone(),
            object: "payment_method",
            customer: pm.customer_id.clone(),
            provider: pm.provider.clone(),
            provider_id: pm.provider_id.clone(),
            kind: pm.kind.clone(),
            brand: pm.brand.clone(),
            last4: pm.last4.clone(),
            exp_month: pm.exp_month,
            exp_year: pm.exp_year,
            created_at: pm.created_at,
        }
    }
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

/// A one-time payment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: String,
    /// Always `payment`.
    pub object: &'static str,
    pub customer: String,
    pub provider: String,
    /// The provider's id; null while the outcome of its creation is in doubt.
    pub provider_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// What was taken: the amount on success, what was captured for a manual capture.
    pub amount_received: i64,
    pub amount_refunded: i64,
    /// `partially_refunded` or `refunded` once refunds were made (here or at the provider),
    /// else null.
    pub refund_status: Option<&'static str>,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`,
    /// `processing`, `requires_capture`, `succeeded`, `failed`, `canceled`, or a status a
    /// newer provider reports.
    pub status: String,
    /// `automatic` or `manual`.
    pub capture_method: String,
    pub next_action: Option<NextActionView>,
    pub payment_method: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// The state of a dispute over the payment, when there is one.
    pub dispute_status: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// For the browser to finish paying; only in the answers that create or confirm.
    pub client_secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The provider calls that made the payment, oldest first: more than one when an
    /// instance could not take it and the next one of its route did; one `in_doubt` while
    /// its outcome is not known (the payment is `processing` meanwhile).
    pub attempts: Vec<AttemptView>,
}

/// One provider call that created, or tried to create, a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub id: String,
    /// The provider instance called.
    pub provider: String,
    /// `started` (the call is running), `answered`, `soft_declined` (a decline its
    /// provider's operator lists as soft: the next instance took it), `not_sent` (the
    /// provider could not have acted: the next instance took it), `refused` (the provider
    /// refused the request: the caller got the error), `in_doubt` (no answer: payhost asks
    /// the same instance again with the same idempotency key until it knows), `resolved`
    /// (was in doubt; the answer is known), `not_charged` (was in doubt; the provider said
    /// nothing was done).
    pub state: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// How often payhost asked the instance again while in doubt.
    pub checks: i64,
    /// Unix seconds of the next ask, while in doubt.
    pub next_check_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&crate::store::AttemptRow> for AttemptView {
    fn from(a: &crate::store::AttemptRow) -> Self {
        AttemptView {
            id: a.id.clone(),
            provider: a.instance.clone(),
            state: a.state.clone(),
            error_code: a.error_code.clone(),
            error_message: a.error_message.clone(),
            checks: a.checks,
            next_check_at: a.next_check_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

impl From<&PaymentRow> for PaymentView {
    fn from(p: &PaymentRow) -> Self {
        Self {
            id: p.id.clone(),
            object: "payment",
            customer: p.customer_id.clone(),
            provider: p.provider.clone(),
            provider_id: (!p.provider_id_unknown()).then(|| p.provider_id.clone()),
            amount: p.amount,
            currency: p.currency.clone(),
            amount_received: p.amount_received,
            amount_refunded: p.amount_refunded,
            refund_status: refund_status(p),
            status: p.status.clone(),
            capture_method: p.capture_method.clone(),
            next_action: next_action_view(p.next_action.as_deref()),
            payment_method: p.payment_method.clone(),
            failure_code: p.failure_code.clone(),
            failure_message: p.failure_message.clone(),
            dispute_status: p.dispute_status.clone(),
            description: p.description.clone(),
            metadata: metadata(&p.metadata),
            client_secret: None,
            created_at: p.created_at,
            updated_at: p.updated_at,
            attempts: match p.attempts.as_deref() {
                Some(a) => serde_json::from_str(a).unwrap_or_default(),
                // One call that answered (a payment made before attempts were recorded, or
                // one whose only attempt answered: its row keeps no copy of it).
                None => vec![AttemptView {
                    id: format!("att_{}", p.id.strip_prefix("pay_").unwrap_or(&p.id)),
                    provider: p.provider.clone(),
                    state: "answered".into(),
                    error_code: None,
                    error_message: None,
                    checks: 0,
                    next_check_at: None,
                    created_at: p.created_at,
                    updated_at: p.created_at,
                }],
            },
        }
    }
}

/// Whether a payment's money went back, in part or whole.
fn refund_status(p: &PaymentRow) -> Option<&'static str> {
    let received = match p.amount_received {
        0 => p.amount,
        r => r,
    };
    match p.amount_refunded {
        0 => None,
        r if r >= received => Some("refunded"),
        _ => Some("partially_refunded"),
    }
}

/// A refund of a payment, whole or partial.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundView {
    pub id: String,
    /// Always `refund`.
    pub object: &'static str,
    pub payment: String,
    pub provider: String,
    pub provider_id: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `succeeded`, `failed`, `canceled`.
    pub status: String,
    pub reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
}

impl From<&RefundRow> for RefundView {
    fn from(r: &RefundRow) -> Self {
        Self {
            id: r.id.clone(),
            object: "refund",
            payment: r.payment_id.clone(),
            provider: r.provider.clone(),
            provider_id: r.provider_id.clone(),
            amount: r.amount,
            currency: r.currency.clone(),
            status: r.status.clone(),
            reason: r.reason.clone(),
            metadata: metadata(&r.metadata),
            created_at: r.created_at,
        }
    }
}

/// A subscription to a price.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    /// Always `subscription`.
    pub object: &'static str,
    pub customer: String,
    pub provider: String,
    pub provider_id: String,
    pub price: String,
    /// `incomplete`, `trialing`, `active`, `past_due`, `unpaid`, `paused`, `canceled`, or
    /// a status a newer provider reports.
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub trial_end: Option<i64>,
    pub canceled_at: Option<i64>,
    pub next_action: Option<NextActionView>,
    pub metadata: BTreeMap<String, String>,
    /// For the browser to finish the first payment; only in the answer that creates.
    pub client_secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&SubscriptionRow> for SubscriptionView {
    fn from(s: &SubscriptionRow) -> Self {
        Self {
            id: s.id.clone(),
            object: "subscription",
            customer: s.customer_id.clone(),
            provider: s.provider.clone(),
            provider_id: s.provider_id.clone(),
            price: s.price_id.clone(),
            status: s.status.clone(),
            cancel_at_period_end: s.cancel_at_period_end,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            trial_end: s.trial_end,
            canceled_at: s.canceled_at,
            next_action: next_action_view(s.next_action.as_deref()),
            metadata: metadata(&s.metadata),
            client_secret: None,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// An invoice the provider issued (a subscription's period, usually).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceView {
    pub id: String,
    /// Always `invoice`.
    pub object: &'static str,
    pub customer: String,
    pub provider: String,
    pub provider_id: String,
    pub subscription: Option<String>,
    pub provider_subscription_id: Option<String>,
    pub payment: Option<String>,
    pub provider_payment_id: Option<String>,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    /// `draft`, `open`, `paid`, `void`, `uncollectible`.
    pub status: String,
    pub pdf_url: Option<String>,
    pub created_at: i64,
}

impl From<&InvoiceRow> for InvoiceView {
    fn from(i: &InvoiceRow) -> Self {
        Self {
            id: i.id.clone(),
            object: "invoice",
            customer: i.customer_id.clone(),
            provider: i.provider.clone(),
            provider_id: i.provider_id.clone(),
            subscription: i.subscription_id.clone(),
            provider_subscription_id: i.provider_subscription_id.clone(),
            payment: i.payment_id.clone(),
            provider_payment_id: i.provider_payment_id.clone(),
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            currency: i.currency.clone(),
            status: i.status.clone(),
            pdf_url: i.pdf_url.clone(),
            created_at: i.created_at,
        }
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

/// A stored webhook delivery (admin).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InboxView {
    pub id: String,
    pub provider: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `processed`, `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
}

impl From<&InboxRow> for InboxView {
    fn from(r: &InboxRow) -> Self {
        Self {
            id: r.id.clone(),
            provider: r.provider.clone(),
            event_id: r.event_id.clone(),
            event_type: r.event_type.clone(),
            status: r.status.clone(),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            received_at: r.received_at,
            processed_at: r.processed_at,
        }
    }
}

/// A piece of handler work (admin).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxView {
    pub id: String,
    pub event_id: String,
    /// `receipt_email`, `failure_email`, `welcome_email`, `final_notice_email`,
    /// `dunning`, `webhook`.
    pub handler: String,
    /// The webhook endpoint's name, for `webhook`.
    pub target: String,
    /// `pending`, `done`, `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub next_attempt_at_ms: i64,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

impl From<&OutboxRow> for OutboxView {
    fn from(r: &OutboxRow) -> Self {
        Self {
            id: r.id.clone(),
            event_id: r.event_id.clone(),
            handler: r.handler.clone(),
            target: r.target.clone(),
            status: r.status.clone(),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            last_status: r.last_status,
            next_attempt_at_ms: r.next_attempt_at,
            created_at: r.created_at,
            done_at: r.done_at,
        }
    }
}
