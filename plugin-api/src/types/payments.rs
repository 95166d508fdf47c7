use super::{is_default, Metadata};
use crate::money::Money;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

crate::open_enum! {
    /// Status of a one-time payment.
    pub enum PaymentStatus {
        /// Created; no payment method yet (or the last one failed and a new one is needed).
        RequiresPaymentMethod => "requires_payment_method",
        /// Has a method; waits for confirmation.
        RequiresConfirmation => "requires_confirmation",
        /// The buyer must act: see the payment's `next_action` (a redirect, 3-D Secure).
        RequiresAction => "requires_action",
        /// The provider is still working on it; a webhook will tell the outcome.
        Processing => "processing",
        /// Authorized (manual capture): `capture_payment` or `cancel_payment` next.
        RequiresCapture => "requires_capture",
        /// Money received.
        Succeeded => "succeeded",
        /// The attempt failed (a decline): `failure_code` says why.
        Failed => "failed",
        /// Canceled before money moved (an authorization voided, an order abandoned).
        Canceled => "canceled",
        /// Not completed in time, so no money moved: a checkout page never paid, an
        /// authorization never captured (since 2.2). `failure_code` and `failure_message`
        /// say why when the provider does. An older host keeps it as `Unknown("expired")`.
        Expired => "expired",
    }
}

crate::open_enum! {
    /// When the money of an authorized payment is taken.
    #[derive(Default)]
    pub enum CaptureMethod {
        /// As soon as the payment is authorized.
        #[default]
        Automatic => "automatic",
        /// Only when `capture_payment` is called (capability `manual_capture`).
        Manual => "manual",
    }
}

/// What the buyer or the client application must do before a payment (or subscription)
/// can go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextAction {
    /// Send the buyer to `url` (a bank's 3-D Secure page, PayPal's approval page); they come
    /// back to `return_url`.
    RedirectToUrl {
        /// Where the buyer goes.
        url: String,
        /// Where they return afterwards, when the provider says.
        return_url: Option<String>,
    },
    /// Confirm on the client with the provider's SDK and this secret (Stripe.js).
    UseClientSecret {
        /// The secret the client-side SDK needs. Handed out only in the answer that creates
        /// or confirms the object, never on reads.
        client_secret: String,
    },
    /// An action this version does not know, kept as the peer sent it.
    Unknown(Value),
}

impl NextAction {
    /// The action's `type` on the wire.
    pub fn kind(&self) -> &str {
        match self {
            Self::RedirectToUrl { .. } => "redirect_to_url",
            Self::UseClientSecret { .. } => "use_client_secret",
            Self::Unknown(v) => v["type"].as_str().unwrap_or("unknown"),
        }
    }

    /// The client secret, when this is the client-secret form.
    pub fn client_secret(&self) -> Option<&str> {
        match self {
            Self::UseClientSecret { client_secret } => Some(client_secret),
            Self::RedirectToUrl { .. } | Self::Unknown(_) => None,
        }
    }

    /// The JSON form: `{"type": "redirect_to_url", "url": .., "return_url": ..}` or
    /// `{"type": "use_client_secret", "client_secret": ..}`.
    pub fn to_json(&self) -> Value {
        match self {
            Self::RedirectToUrl { url, return_url } => {
                json!({"type": "redirect_to_url", "url": url, "return_url": return_url})
            }
            Self::UseClientSecret { client_secret } => {
                json!({"type": "use_client_secret", "client_secret": client_secret})
            }
            Self::Unknown(v) => v.clone(),
        }
    }

    /// Parses the JSON form; a `type` this version does not know is kept as `Unknown`.
    pub fn from_json(v: Value) -> Self {
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        match (v["type"].as_str(), text("url"), text("client_secret")) {
            (Some("redirect_to_url"), Some(url), _) => Self::RedirectToUrl {
                url,
                return_url: text("return_url"),
            },
            (Some("use_client_secret"), _, Some(client_secret)) => {
                Self::UseClientSecret { client_secret }
            }
            _ => Self::Unknown(v),
        }
    }
}

impl Serialize for NextAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for NextAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_json(Value::deserialize(d)?))
    }
}

/// Who pays, for providers without a customer object (the host keeps the customer and
/// passes the payer's details with every payment and subscription).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payer {
    /// The payer's email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The payer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `create_payment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    /// The provider's customer id; `None` for providers without customers (see `payer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The payer's email and name, always given.
    #[serde(default, skip_serializing_if = "is_default")]
    pub payer: Payer,
    /// What to charge.
    pub amount: Money,
    /// `automatic` (default) or `manual` (authorize now, `capture_payment` later).
    #[serde(default, skip_serializing_if = "is_default")]
    pub capture_method: CaptureMethod,
    /// Charge at once with this payment method (a provider id or token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// Where a buyer sent through a redirect comes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// Where a buyer who gives up on a redirect comes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    /// Shown to the buyer where the provider supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Passed through to the provider.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: Metadata,
}

impl NewPayment {
    /// A payment of `amount` with everything else at its default.
    pub fn new(amount: Money) -> Self {
        Self {
            customer_id: None,
            payer: Payer::default(),
            amount,
            capture_method: CaptureMethod::Automatic,
            payment_method: None,
            return_url: None,
            cancel_url: None,
            description: None,
            metadata: Metadata::new(),
        }
    }
}

/// `confirm_payment`: attempt the payment now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayment {
    /// The provider's payment id.
    pub id: String,
    /// The method to charge (else the one already on the payment, or the customer's
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// Where a buyer sent through a redirect comes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

/// `capture_payment`: take the money of an authorized payment (`requires_capture`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    /// The provider's payment id.
    pub id: String,
    /// Minor units to capture, at most what is capturable; `None` captures all of it. The
    /// rest of a partial capture is released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

/// A one-time payment as the provider holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The provider's id. Never reused, across instances and restarts.
    pub id: String,
    /// The provider's customer id, when the provider has customers.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// The amount asked for (authorized, for manual capture).
    pub amount: Money,
    /// How much was actually received: `amount` once an automatic payment succeeds, the
    /// captured part for a manual one, 0 before. Refunds may never exceed it.
    #[serde(default)]
    pub amount_received: i64,
    /// How much of `amount_received` has been refunded so far.
    #[serde(default)]
    pub amount_refunded: i64,
    /// The status.
    pub status: PaymentStatus,
    /// `automatic` or `manual`.
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// What must happen before the payment can go on, if anything.
    #[serde(default)]
    pub next_action: Option<NextAction>,
    /// The provider's id of the method charged.
    #[serde(default)]
    pub payment_method: Option<String>,
    /// Why the payment failed (the provider's decline code).
    #[serde(default)]
    pub failure_code: Option<String>,
    /// Why the payment failed, for people.
    #[serde(default)]
    pub failure_message: Option<String>,
    /// Unix seconds of creation, by the provider's clock.
    #[serde(default)]
    pub created: i64,
    /// The payment's metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

impl Payment {
    /// A payment in `status` with nothing else set.
    pub fn new(id: impl Into<String>, amount: Money, status: PaymentStatus) -> Self {
        Self {
            id: id.into(),
            customer_id: None,
            amount,
            amount_received: 0,
            amount_refunded: 0,
            status,
            capture_method: CaptureMethod::Automatic,
            next_action: None,
            payment_method: None,
            failure_code: None,
            failure_message: None,
            created: 0,
            metadata: Metadata::new(),
        }
    }

    /// What may still be refunded.
    pub fn refundable(&self) -> i64 {
        (self.amount_received - self.amount_refunded).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_actions_round_trip_and_unknown_ones_are_kept() {
        let r = NextAction::RedirectToUrl {
            url: "https://x/approve".into(),
            return_url: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["type"], "redirect_to_url");
        assert_eq!(serde_json::from_value::<NextAction>(v).unwrap(), r);
        let odd = json!({"type": "display_qr_code", "image": "data:..."});
        let kept = serde_json::from_value::<NextAction>(odd.clone()).unwrap();
        assert_eq!(kept.kind(), "display_qr_code");
        assert_eq!(serde_json::to_value(&kept).unwrap(), odd);
    }
}
