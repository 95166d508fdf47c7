//! Database rows and the JSON the API answers with. Every object carries payhost's id, the
//! provider instance's name and the provider's own id.

use crate::store::{RowExt, StoreError};
use rand::Rng;
use serde_json::{json, Value};
use sqlx::any::AnyRow;

/// A new payhost id: `prefix_` and 24 random base-62 characters.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let tail: String = (0..24)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}_{tail}")
}

fn metadata(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

macro_rules! customer_cols {
    () => {
        "id, tenant, user_id, provider, provider_id, email, name, default_payment_method, \
         metadata, created_at"
    };
}
macro_rules! payment_cols {
    () => {
        "id, tenant, customer_id, provider, provider_id, amount, currency, amount_refunded, \
         status, payment_method, failure_code, failure_message, description, metadata, \
         created_at, updated_at"
    };
}
macro_rules! subscription_cols {
    () => {
        "id, tenant, customer_id, provider, provider_id, price_id, status, \
         cancel_at_period_end, current_period_start, current_period_end, trial_end, \
         canceled_at, metadata, created_at, updated_at"
    };
}
pub(crate) use {customer_cols, payment_cols, subscription_cols};

#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub id: String,
    pub tenant: String,
    pub user_id: String,
    pub provider: String,
    pub provider_id: String,
    pub email: String,
    pub name: Option<String>,
    pub default_payment_method: Option<String>,
    pub metadata: String,
    pub created_at: i64,
}

impl CustomerRow {
    pub fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            tenant: r.text("tenant")?,
            user_id: r.text("user_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            email: r.text("email")?,
            name: r.opt_text("name")?,
            default_payment_method: r.opt_text("default_payment_method")?,
            metadata: r.text("metadata")?,
            created_at: r.int("created_at")?,
        })
    }

    pub fn view(&self) -> Value {
        json!({
            "id": self.id, "object": "customer", "user_id": self.user_id,
            "tenant": (!self.tenant.is_empty()).then_some(&self.tenant),
            "provider": self.provider, "provider_id": self.provider_id,
            "email": self.email, "name": self.name,
            "default_payment_method": self.default_payment_method,
            "metadata": metadata(&self.metadata), "created_at": self.created_at,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub id: String,
    pub tenant: String,
    pub customer_id: String,
    pub provider: String,
    pub provider_id: String,
    pub amount: i64,
    pub currency: String,
    pub amount_refunded: i64,
    pub status: String,
    pub payment_method: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub description: Option<String>,
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PaymentRow {
    pub fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            tenant: r.text("tenant")?,
            customer_id: r.text("customer_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            amount: r.int("amount")?,
            currency: r.text("currency")?,
            amount_refunded: r.int("amount_refunded")?,
            status: r.text("status")?,
            payment_method: r.opt_text("payment_method")?,
            failure_code: r.opt_text("failure_code")?,
            failure_message: r.opt_text("failure_message")?,
            description: r.opt_text("description")?,
            metadata: r.text("metadata")?,
            created_at: r.int("created_at")?,
            updated_at: r.int("updated_at")?,
        })
    }

    /// The API object; `client_secret` only in the answers that create or confirm it.
    pub fn view(&self, client_secret: Option<String>) -> Value {
        json!({
            "id": self.id, "object": "payment", "customer": self.customer_id,
            "provider": self.provider, "provider_id": self.provider_id,
            "amount": self.amount, "currency": self.currency,
            "amount_refunded": self.amount_refunded, "status": self.status,
            "payment_method": self.payment_method, "failure_code": self.failure_code,
            "failure_message": self.failure_message, "description": self.description,
            "metadata": metadata(&self.metadata), "client_secret": client_secret,
            "created_at": self.created_at, "updated_at": self.updated_at,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub id: String,
    pub tenant: String,
    pub customer_id: String,
    pub provider: String,
    pub provider_id: String,
    pub price_id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub trial_end: Option<i64>,
    pub canceled_at: Option<i64>,
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SubscriptionRow {
    pub fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            tenant: r.text("tenant")?,
            customer_id: r.text("customer_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            price_id: r.text("price_id")?,
            status: r.text("status")?,
            cancel_at_period_end: r.int("cancel_at_period_end")? != 0,
            current_period_start: r.int("current_period_start")?,
            current_period_end: r.int("current_period_end")?,
            trial_end: r.opt_int("trial_end")?,
            canceled_at: r.opt_int("canceled_at")?,
            metadata: r.text("metadata")?,
            created_at: r.int("created_at")?,
            updated_at: r.int("updated_at")?,
        })
    }

    pub fn view(&self, client_secret: Option<String>) -> Value {
        json!({
            "id": self.id, "object": "subscription", "customer": self.customer_id,
            "provider": self.provider, "provider_id": self.provider_id,
            "price": self.price_id, "status": self.status,
            "cancel_at_period_end": self.cancel_at_period_end,
            "current_period_start": self.current_period_start,
            "current_period_end": self.current_period_end,
            "trial_end": self.trial_end, "canceled_at": self.canceled_at,
            "metadata": metadata(&self.metadata), "client_secret": client_secret,
            "created_at": self.created_at, "updated_at": self.updated_at,
        })
    }
}
