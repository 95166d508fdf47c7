use super::{is_default, Metadata};
use serde::{Deserialize, Serialize};

/// `create_customer`: a customer object at the provider for one application user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// The customer's email address (checked by the host to look like one).
    pub email: String,
    /// The customer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Passed through to the provider.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: Metadata,
}

/// `update_customer`: the fields to change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerUpdate {
    /// The provider's customer id.
    pub customer_id: String,
    /// A new email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Keys to set; an empty value removes the key.
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: Metadata,
}

/// A customer as the provider holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Customer {
    /// The provider's id. Never reused for another customer, across instances and restarts:
    /// the host keys its records on it.
    pub id: String,
    /// The email address.
    pub email: String,
    /// The name.
    pub name: Option<String>,
    /// The provider's id of the method charged when none is given.
    pub default_payment_method: Option<String>,
    /// The customer's metadata.
    pub metadata: Metadata,
}

/// A request naming one customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRef {
    /// The provider's customer id.
    pub customer_id: String,
}

/// `attach_payment_method`: a payment method (a provider token or id) for a customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachPaymentMethod {
    /// The provider's customer id.
    pub customer_id: String,
    /// The provider's payment method id or token, as the client obtained it.
    pub payment_method: String,
}

/// `set_default_payment_method`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetDefaultPaymentMethod {
    /// The provider's customer id.
    pub customer_id: String,
    /// The provider's payment method id, attached to that customer.
    pub payment_method: String,
}

/// A saved payment method.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentMethod {
    /// The provider's id.
    pub id: String,
    /// The provider's customer id it is attached to.
    pub customer_id: Option<String>,
    /// `card`, `sepa_debit`, `paypal`, ...
    pub kind: String,
    /// Card brand, e.g. `visa`.
    pub brand: Option<String>,
    /// Last four digits of a card.
    pub last4: Option<String>,
    /// Card expiry month (1-12), 0 when not a card.
    pub exp_month: u8,
    /// Card expiry year, 0 when not a card.
    pub exp_year: u16,
}

/// `detach_payment_method` (since 2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachPaymentMethod {
    /// The provider's customer id.
    pub customer_id: String,
    /// The provider's payment method id.
    pub payment_method: String,
}

/// The answer of an operation that deletes an object (since 2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Deleted {
    /// The provider's id of the object.
    pub id: String,
    /// It is gone at the provider.
    pub deleted: bool,
}

/// The answer of `list_payment_methods`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaymentMethodList {
    /// The customer's methods.
    pub data: Vec<PaymentMethod>,
}
