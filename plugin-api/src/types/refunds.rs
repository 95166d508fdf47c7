use super::{is_default, Metadata};
use crate::money::Money;
use serde::{Deserialize, Serialize};

crate::open_enum! {
    /// Status of a refund.
    pub enum RefundStatus {
        /// Accepted, not settled yet.
        Pending => "pending",
        /// The provider needs something before it can go on.
        RequiresAction => "requires_action",
        /// The money went back.
        Succeeded => "succeeded",
        /// The refund failed.
        Failed => "failed",
        /// The refund was canceled.
        Canceled => "canceled",
    }
}

/// `create_refund`: all of what remains refundable, or part of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    /// The provider's payment id (the plugin finds a capture behind it when the provider
    /// refunds captures).
    pub payment_id: String,
    /// Minor units; `None` refunds whatever remains. Never more than remains: the host
    /// checks, and a plugin must refuse too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Passed through to the provider (since 2.1: a plugin built before refuses a refund
    /// that sets it, naming the field).
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: Metadata,
    /// The payment's currency, for providers whose refund amount names it (`{"currency":
    /// "EUR", "value": "5.00"}`): no need to read the payment first (since 2.2; the host
    /// sets it only for plugins built against 2.2 or later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<crate::money::Currency>,
}

/// `get_refund`: the refund to read, with the payment it belongs to (providers that file
/// refunds under their payment, `/v2/payments/{payment}/refunds/{id}`, need both).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRef {
    /// The provider's refund id.
    pub id: String,
    /// The provider's id of the refunded payment.
    pub payment_id: String,
}

/// A refund as the provider holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The provider's id. Never reused.
    pub id: String,
    /// The provider's payment id.
    pub payment_id: String,
    /// The amount refunded.
    pub amount: Money,
    /// The status.
    pub status: RefundStatus,
    /// The reason given.
    #[serde(default)]
    pub reason: Option<String>,
    /// Unix seconds of creation.
    #[serde(default)]
    pub created: i64,
    /// The refund's metadata (since 2.1; empty from a plugin built before).
    #[serde(default)]
    pub metadata: Metadata,
}
