use crate::money::Money;
use serde::{Deserialize, Serialize};

crate::open_enum! {
    /// Status of an invoice.
    pub enum InvoiceStatus {
        /// Being prepared.
        Draft => "draft",
        /// Finalized, waiting for payment.
        Open => "open",
        /// Paid.
        Paid => "paid",
        /// Given up on.
        Uncollectible => "uncollectible",
        /// Canceled.
        Void => "void",
    }
}

/// An invoice (a subscription's bill for one period, typically).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The provider's id. Never reused.
    pub id: String,
    /// The provider's customer id.
    pub customer_id: String,
    /// The provider's subscription id, for subscription invoices.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// The provider's payment id that pays it.
    #[serde(default)]
    pub payment_id: Option<String>,
    /// What is owed.
    pub amount_due: Money,
    /// What was paid, in the same currency.
    #[serde(default)]
    pub amount_paid: i64,
    /// The status.
    pub status: InvoiceStatus,
    /// A PDF of it, when the provider has one.
    #[serde(default)]
    pub pdf_url: Option<String>,
    /// Unix seconds of creation.
    #[serde(default)]
    pub created: i64,
}

/// `list_invoices`: one page of a customer's invoices, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    /// The provider's customer id.
    pub customer_id: String,
    /// Page size, 1 to 100.
    pub limit: u32,
    /// Cursor: the last invoice id of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_after: Option<String>,
}

/// One page of invoices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InvoicePage {
    /// The invoices, newest first.
    pub data: Vec<Invoice>,
    /// More follow after the last one.
    pub has_more: bool,
}
