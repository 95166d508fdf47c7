//! Users, their customers (one per tenant, user and provider instance) and saved payment
//! methods.

use super::json::metadata;
use super::page::{Filters, Listed, Order, Page};
use super::record::record;
use super::{Arg, Store, StoreError, Unit};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

record! {
    /// A customer: an application user on one provider instance.
    #[derive(Debug, Clone)]
    pub struct CustomerRow in "customers" on conflict "(tenant, user_id, provider) DO NOTHING";
    /// A customer: an application user on one provider instance.
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct CustomerView of |c| {
        api id: String,
        /// Always `customer`.
        view object: &'static str = "customer",
        api user_id: String,
        row tenant: String,
        view tenant: Option<String> = (!c.tenant.is_empty()).then(|| c.tenant.clone()),
        api provider: String,
        /// The provider's id; payhost's own id for a customer payhost keeps itself.
        row provider_id: String,
        /// The provider's id; null for a customer payhost keeps itself (a provider without
        /// customers).
        view provider_id: Option<String> = (!c.host_kept).then(|| c.provider_id.clone()),
        /// Kept by payhost alone: the provider has no customers (each payment carries the
        /// payer's details instead).
        row host_kept: bool,
        api email: String,
        api name: Option<String>,
        /// payhost's id of the default payment method.
        api default_payment_method: Option<String>,
        /// JSON object.
        row metadata: String,
        view metadata: BTreeMap<String, String> = metadata(&c.metadata),
        api created_at: i64,
        api updated_at: i64,
        /// Erased (personal data removed) at this time.
        row deleted_at: Option<i64>,
    }
}

record! {
    /// A saved payment method.
    #[derive(Debug, Clone)]
    pub struct PaymentMethodRow in "payment_methods"
        on conflict "(provider, provider_id) DO NOTHING";
    /// A saved payment method.
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct PaymentMethodView of |pm| {
        api id: String,
        /// Always `payment_method`.
        view object: &'static str = "payment_method",
        api customer_id as customer: String,
        api provider: String,
        api provider_id: String,
        /// `card`, …
        #[api(serde(rename = "type"))]
        api kind: String,
        api brand: Option<String>,
        api last4: Option<String>,
        api exp_month: i64,
        api exp_year: i64,
        api created_at: i64,
    }
}

/// The filters of a customer list.
#[derive(Debug, Clone, Default)]
pub struct CustomerQuery {
    /// Only this tenant's (a tenant-bound caller).
    pub tenant: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub provider: Option<String>,
}

impl Store {
    /// The customer `id` (within `tenant` when given).
    pub async fn customer(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<CustomerRow>, StoreError> {
        self.record(
            "id = $1 AND ($2 IS NULL OR tenant = $2)",
            vec![id.into(), Arg::from(tenant)],
        )
        .await
    }

    /// The user's customer on `provider`.
    pub async fn customer_for_user(
        &self,
        tenant: &str,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<CustomerRow>, StoreError> {
        self.record(
            "tenant = $1 AND user_id = $2 AND provider = $3",
            vec![tenant.into(), user_id.into(), provider.into()],
        )
        .await
    }

    /// The email an application user was last seen with.
    pub async fn user_email(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.text(
            "SELECT email FROM users WHERE tenant = $1 AND user_id = $2",
            vec![tenant.into(), user_id.into()],
        )
        .await
    }

    /// One page of customers, newest first.
    pub async fn customers(
        &self,
        q: &CustomerQuery,
        page: &Page,
    ) -> Result<Listed<CustomerRow>, StoreError> {
        let filters = Filters::default()
            .eq("tenant", q.tenant.clone())
            .eq("user_id", q.user_id.clone())
            .eq("email", q.email.clone())
            .eq("provider", q.provider.clone())
            .and("deleted_at IS NULL");
        self.page_of(filters, Order::NewestFirst, page).await
    }

    /// The payment method `id`.
    pub async fn payment_method(&self, id: &str) -> Result<Option<PaymentMethodRow>, StoreError> {
        self.record("id = $1", vec![id.into()]).await
    }

    /// The payment method with the provider's id `provider_id`.
    pub async fn payment_method_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<PaymentMethodRow>, StoreError> {
        self.record(
            "provider = $1 AND provider_id = $2",
            vec![provider.into(), provider_id.into()],
        )
        .await
    }

    /// A customer's saved payment methods, oldest first.
    pub async fn payment_methods_of(
        &self,
        customer_id: &str,
    ) -> Result<Vec<PaymentMethodRow>, StoreError> {
        self.records(
            "customer_id = $1",
            "ORDER BY created_at, id",
            vec![customer_id.into()],
        )
        .await
    }
}

/// Records the user's latest email and name.
pub fn upsert_user(
    unit: &mut Unit,
    tenant: &str,
    user_id: &str,
    email: &str,
    name: Option<&str>,
    now: i64,
) {
    unit.push(
        "INSERT INTO users (tenant, user_id, email, name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (tenant, user_id) DO UPDATE SET email = excluded.email, \
         name = COALESCE(excluded.name, users.name), updated_at = excluded.updated_at",
        vec![
            tenant.into(),
            user_id.into(),
            email.into(),
            Arg::from(name),
            now.into(),
        ],
    );
}

/// A new customer, unless the user already has one on that provider (a concurrent
/// request won): the returned statement changed 0 rows then.
pub fn insert_customer(unit: &mut Unit, c: &CustomerRow) -> usize {
    super::record::insert(unit, c)
}

/// Writes a customer's email, name, default method and metadata.
pub fn update_customer(unit: &mut Unit, c: &CustomerRow) {
    unit.push(
        "UPDATE customers SET email = $2, name = $3, default_payment_method = $4, \
         metadata = $5, updated_at = $6 WHERE id = $1",
        vec![
            c.id.clone().into(),
            c.email.clone().into(),
            Arg::from(c.name.clone()),
            Arg::from(c.default_payment_method.clone()),
            c.metadata.clone().into(),
            c.updated_at.into(),
        ],
    );
}

/// A customer's email and name as the provider reports them (not for an erased customer).
pub fn sync_customer_profile(
    unit: &mut Unit,
    provider: &str,
    provider_id: &str,
    email: Option<&str>,
    name: Option<&str>,
    now: i64,
) {
    unit.push(
        "UPDATE customers SET email = COALESCE($3, email), name = COALESCE($4, name), \
         updated_at = $5 WHERE provider = $1 AND provider_id = $2 AND deleted_at IS NULL",
        vec![
            provider.into(),
            provider_id.into(),
            Arg::from(email),
            Arg::from(name),
            now.into(),
        ],
    );
}

/// A new saved payment method (a method the provider already knows keeps its row).
pub fn insert_payment_method(unit: &mut Unit, pm: &PaymentMethodRow) {
    super::record::insert(unit, pm);
}

/// Removes a saved method (by the provider's id) and clears it as anyone's default.
pub fn delete_payment_method(unit: &mut Unit, provider: &str, provider_id: &str, now: i64) {
    unit.push(
        "UPDATE customers SET default_payment_method = NULL, updated_at = $3 \
         WHERE default_payment_method IN \
         (SELECT id FROM payment_methods WHERE provider = $1 AND provider_id = $2)",
        vec![provider.into(), provider_id.into(), now.into()],
    );
    unit.push(
        "DELETE FROM payment_methods WHERE provider = $1 AND provider_id = $2",
        vec![provider.into(), provider_id.into()],
    );
}

/// Erases a customer's personal data — email, name, metadata, saved payment methods, the
/// link to the application's user, and the user's stored email and name when no other
/// customer of the user remains — while its payments, subscriptions, refunds and invoices
/// stay, pointing at the anonymized customer. By the provider's id, so a provider's
/// deletion webhook erases too; doing it twice changes nothing more.
pub fn erase_customer(unit: &mut Unit, provider: &str, provider_id: &str, now: i64) {
    unit.push(
        "DELETE FROM payment_methods WHERE customer_id IN \
         (SELECT id FROM customers WHERE provider = $1 AND provider_id = $2)",
        vec![provider.into(), provider_id.into()],
    );
    unit.push(
        "UPDATE users SET email = '', name = NULL, updated_at = $3 \
         WHERE EXISTS (SELECT 1 FROM customers c WHERE c.provider = $1 AND c.provider_id = $2 \
         AND c.tenant = users.tenant AND c.user_id = users.user_id) \
         AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.tenant = users.tenant \
         AND o.user_id = users.user_id AND o.deleted_at IS NULL \
         AND NOT (o.provider = $1 AND o.provider_id = $2))",
        vec![provider.into(), provider_id.into(), now.into()],
    );
    unit.push(
        "UPDATE customers SET email = '', name = NULL, metadata = '{}', \
         default_payment_method = NULL, user_id = 'erased_' || id, \
         deleted_at = COALESCE(deleted_at, $3), updated_at = $3 \
         WHERE provider = $1 AND provider_id = $2",
        vec![provider.into(), provider_id.into(), now.into()],
    );
}
