use super::{is_default, Metadata, NextAction, Payer};
use serde::{Deserialize, Serialize};

crate::open_enum! {
    /// Status of a subscription.
    #[derive(Default)]
    pub enum SubscriptionStatus {
        /// Created, first payment not made yet (or waiting for the buyer's approval).
        #[default]
        Incomplete => "incomplete",
        /// The first payment never came.
        IncompleteExpired => "incomplete_expired",
        /// In its trial.
        Trialing => "trialing",
        /// Paid and running.
        Active => "active",
        /// A renewal payment failed; the provider retries.
        PastDue => "past_due",
        /// Ended.
        Canceled => "canceled",
        /// Renewal payments failed for good; not canceled.
        Unpaid => "unpaid",
        /// Billing paused (PayPal: suspended).
        Paused => "paused",
    }
}

/// `create_subscription`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// The provider's customer id; `None` for providers without customers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The subscriber's email and name, always given.
    #[serde(default, skip_serializing_if = "is_default")]
    pub payer: Payer,
    /// The provider's price (Stripe) or plan (PayPal) id.
    pub price_id: String,
    /// Days of trial before the first payment; 0: none, or the plan's own.
    #[serde(default, skip_serializing_if = "is_default")]
    pub trial_days: u32,
    /// Where a subscriber sent through an approval redirect comes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// Where a subscriber who gives up on the approval comes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    /// Passed through to the provider.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: Metadata,
}

/// `change_subscription_price`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSubscriptionPrice {
    /// The provider's subscription id.
    pub id: String,
    /// The new price (plan) id.
    pub price_id: String,
}

/// `cancel_subscription`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscription {
    /// The provider's subscription id.
    pub id: String,
    /// Keep it running until the end of the paid period (true) or end it now (false).
    #[serde(default, skip_serializing_if = "is_default")]
    pub at_period_end: bool,
}

/// A subscription as the provider holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscription {
    /// The provider's id. Never reused.
    pub id: String,
    /// The provider's customer id, when the provider has customers.
    pub customer_id: Option<String>,
    /// The price (plan) id.
    pub price_id: String,
    /// The status.
    pub status: SubscriptionStatus,
    /// Ends at `current_period_end` instead of renewing.
    pub cancel_at_period_end: bool,
    /// Unix seconds: the current period started.
    pub current_period_start: i64,
    /// Unix seconds: the current period ends (the next billing time).
    pub current_period_end: i64,
    /// Unix seconds: the trial ends.
    pub trial_end: Option<i64>,
    /// Unix seconds: canceled.
    pub canceled_at: Option<i64>,
    /// What the subscriber must do first (PayPal's approval link; Stripe's first payment).
    pub next_action: Option<NextAction>,
    /// The subscription's metadata.
    pub metadata: Metadata,
}
