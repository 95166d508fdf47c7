//! Users, their customers (one per tenant, user and provider instance) and saved payment
//! methods.

use super::page::{Filters, Listed, Order, Page};
use super::{Arg, Row, RowExt, Store, StoreError, Unit};

const COLS: &str = "id, tenant, user_id, provider, provider_id, host_kept, email, name, \
    default_payment_method, metadata, created_at, updated_at, deleted_at";

/// A customer: an application user on one provider instance.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub id: String,
    pub tenant: String,
    pub user_id: String,
    pub provider: String,
    /// The provider's id; payhost's own id for a customer payhost keeps itself.
    pub provider_id: String,
    /// Kept by payhost alone: the provider has no customers (each payment carries the
    /// payer's details instead).
    pub host_kept: bool,
    pub email: String,
    pub name: Option<String>,
    /// payhost's id of the default payment method.
    pub default_payment_method: Option<String>,
    /// JSON object.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Erased (personal data removed) at this time.
    pub deleted_at: Option<i64>,
}

impl CustomerRow {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            tenant: r.text("tenant")?,
            user_id: r.text("user_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            host_kept: r.int("host_kept")? != 0,
            email: r.text("email")?,
            name: r.opt_text("name")?,
            default_payment_method: r.opt_text("default_payment_method")?,
            metadata: r.text("metadata")?,
            created_at: r.int("created_at")?,
            updated_at: r.int("updated_at")?,
            deleted_at: r.opt_int("deleted_at")?,
        })
    }
}

/// A saved payment method.
#[derive(Debug, Clone)]
pub struct PaymentMethodRow {
    pub id: String,
    pub customer_id: String,
    pub provider: String,
    pub provider_id: String,
    pub kind: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: i64,
    pub exp_year: i64,
    pub created_at: i64,
}

impl PaymentMethodRow {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            customer_id: r.text("customer_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            kind: r.text("kind")?,
            brand: r.opt_text("brand")?,
            last4: r.opt_text("last4")?,
            exp_month: r.int("exp_month")?,
            exp_year: r.int("exp_year")?,
            created_at: r.int("created_at")?,
        })
    }
}

const PM_COLS: &str = "id, customer_id, provider, provider_id, kind, brand, last4, exp_month, \
    exp_year, created_at";

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
        let row = self
            .one(
                &format!(
                    "SELECT {COLS} FROM customers WHERE id = $1 AND ($2 IS NULL OR tenant = $2)"
                ),
                vec![id.into(), Arg::from(tenant)],
            )
            .await?;
        row.as_ref().map(CustomerRow::from_row).transpose()
    }

    /// The user's customer on `provider`.
    pub async fn customer_for_user(
        &self,
        tenant: &str,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<CustomerRow>, StoreError> {
        let row = self
            .one(
                &format!(
                    "SELECT {COLS} FROM customers \
                     WHERE tenant = $1 AND user_id = $2 AND provider = $3"
                ),
                vec![tenant.into(), user_id.into(), provider.into()],
            )
            .await?;
        row.as_ref().map(CustomerRow::from_row).transpose()
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
        self.page("customers", COLS, filters, Order::NewestFirst, page)
            .await?
            .try_map(|r| CustomerRow::from_row(&r))
    }

    /// The payment method `id`.
    pub async fn payment_method(&self, id: &str) -> Result<Option<PaymentMethodRow>, StoreError> {
        let row = self
            .one(
                &format!("SELECT {PM_COLS} FROM payment_methods WHERE id = $1"),
                vec![id.into()],
            )
            .await?;
        row.as_ref().map(PaymentMethodRow::from_row).transpose()
    }

    /// The payment method with the provider's id `provider_id`.
    pub async fn payment_method_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<PaymentMethodRow>, StoreError> {
        let row = self
            .one(
                &format!(
                    "SELECT {PM_COLS} FROM payment_methods WHERE provider = $1 AND provider_id = $2"
                ),
                vec![provider.into(), provider_id.into()],
            )
            .await?;
        row.as_ref().map(PaymentMethodRow::from_row).transpose()
    }

    /// A customer's saved payment methods, oldest first.
    pub async fn payment_methods_of(
        &self,
        customer_id: &str,
    ) -> Result<Vec<PaymentMethodRow>, StoreError> {
        self.all(
            &format!(
                "SELECT {PM_COLS} FROM payment_methods WHERE customer_id = $1 \
                 ORDER BY created_at, id"
            ),
            vec![customer_id.into()],
        )
        .await?
        .iter()
        .map(PaymentMethodRow::from_row)
        .collect()
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
    unit.push(
        "INSERT INTO customers (id, tenant, user_id, provider, provider_id, host_kept, email, \
         name, default_payment_method, metadata, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $10, $6, $7, NULL, $8, $9, $9) \
         ON CONFLICT (tenant, user_id, provider) DO NOTHING",
        vec![
            c.id.clone().into(),
            c.tenant.clone().into(),
            c.user_id.clone().into(),
            c.provider.clone().into(),
            c.provider_id.clone().into(),
            c.email.clone().into(),
            Arg::from(c.name.clone()),
            c.metadata.clone().into(),
            c.created_at.into(),
            c.host_kept.into(),
        ],
    )
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
    unit.push(
        "INSERT INTO payment_methods (id, customer_id, provider, provider_id, kind, brand, \
         last4, exp_month, exp_year, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (provider, provider_id) DO NOTHING",
        vec![
            pm.id.clone().into(),
            pm.customer_id.clone().into(),
            pm.provider.clone().into(),
            pm.provider_id.clone().into(),
            pm.kind.clone().into(),
            Arg::from(pm.brand.clone()),
            Arg::from(pm.last4.clone()),
            pm.exp_month.into(),
            pm.exp_year.into(),
            pm.created_at.into(),
        ],
    );
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
