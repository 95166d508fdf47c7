//! Invoices, as synced from the provider.

use super::page::{Filters, Listed, Order, Page};
use super::record::record;
use super::{Arg, Store, StoreError, Unit};
use payhost_plugin_api::InvoiceStatus;
use serde::Serialize;
use utoipa::ToSchema;

record! {
    /// An invoice as payhost records it, with the payhost ids of its customer, subscription
    /// and payment when payhost holds them.
    #[derive(Debug, Clone)]
    pub struct InvoiceRow in "invoices" as "i" from "(SELECT inv.*, c.tenant, \
        s.id AS subscription_id, p.id AS payment_id \
        FROM invoices inv JOIN customers c ON c.id = inv.customer_id \
        LEFT JOIN subscriptions s ON s.provider = inv.provider \
        AND s.provider_id = inv.provider_subscription_id \
        LEFT JOIN payments p ON p.provider = inv.provider \
        AND p.provider_id = inv.provider_payment_id) i"
        on conflict "(provider, provider_id) DO UPDATE SET amount_paid = excluded.amount_paid, \
        status = excluded.status, pdf_url = excluded.pdf_url, \
        provider_payment_id = excluded.provider_payment_id, updated_at = excluded.updated_at";
    /// An invoice the provider issued (a subscription's period, usually).
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct InvoiceView of |i| {
        api id: String,
        /// Always `invoice`.
        view object: &'static str = "invoice",
        /// The customer's tenant.
        joined row tenant = "i.tenant": String,
        api customer_id as customer: String,
        api provider: String,
        api provider_id: String,
        joined api subscription_id as subscription = "i.subscription_id": Option<String>,
        api provider_subscription_id: Option<String>,
        joined api payment_id as payment = "i.payment_id": Option<String>,
        api provider_payment_id: Option<String>,
        api amount_due: i64,
        api amount_paid: i64,
        api currency: String,
        /// `draft`, `open`, `paid`, `void`, `uncollectible`.
        #[api(schema(value_type = String))]
        api status: InvoiceStatus,
        api pdf_url: Option<String>,
        api created_at: i64,
        row updated_at: i64,
    }
}

/// The filters of an invoice list.
#[derive(Debug, Clone, Default)]
pub struct InvoiceQuery {
    pub tenant: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<String>,
}

impl Store {
    /// The invoice `id` (within `tenant` when given).
    pub async fn invoice(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<InvoiceRow>, StoreError> {
        self.record(
            "i.id = $1 AND ($2 IS NULL OR i.tenant = $2)",
            vec![id.into(), Arg::from(tenant)],
        )
        .await
    }

    /// The invoice with the provider's id `provider_id`.
    pub async fn invoice_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<InvoiceRow>, StoreError> {
        self.record(
            "i.provider = $1 AND i.provider_id = $2",
            vec![provider.into(), provider_id.into()],
        )
        .await
    }

    /// One page of invoices, newest first.
    pub async fn invoices(
        &self,
        q: &InvoiceQuery,
        page: &Page,
    ) -> Result<Listed<InvoiceRow>, StoreError> {
        let filters = Filters::default()
            .eq("i.tenant", q.tenant.clone())
            .eq("i.customer_id", q.customer_id.clone())
            .eq("i.status", q.status.clone());
        self.page_of(filters, Order::NewestFirst, page).await
    }
}

/// An invoice as the provider reports it: a new row, or the existing one updated.
pub fn upsert_invoice(unit: &mut Unit, inv: &InvoiceRow) {
    super::record::insert(unit, inv);
}

/// An invoice paid or failed, as a webhook tells, unless the row holds a newer state.
pub fn sync_invoice(
    unit: &mut Unit,
    provider: &str,
    provider_id: &str,
    paid: bool,
    created: i64,
    now: i64,
) {
    unit.push(
        "UPDATE invoices SET status = $3, \
         amount_paid = CASE WHEN $4 = 1 THEN amount_due ELSE amount_paid END, \
         synced_at = $5, updated_at = $6 \
         WHERE provider = $1 AND provider_id = $2 AND synced_at <= $5",
        vec![
            provider.into(),
            provider_id.into(),
            if paid { "paid" } else { "open" }.into(),
            i64::from(paid).into(),
            created.into(),
            now.into(),
        ],
    );
}

/// An invoice told by a webhook that payhost has not seen (a renewal), for a customer it
/// knows by the provider's id.
pub struct AdoptedInvoice<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub provider_id: &'a str,
    pub provider_customer_id: &'a str,
    pub provider_subscription_id: Option<&'a str>,
    pub provider_payment_id: Option<&'a str>,
    pub amount: i64,
    pub currency: &'a str,
    pub paid: bool,
}

/// Records an [`AdoptedInvoice`] once (provider time `created`); an invoice already held
/// is left to [`sync_invoice`].
pub fn adopt_invoice(unit: &mut Unit, inv: &AdoptedInvoice<'_>, (created, now): (i64, i64)) {
    unit.push(
        "INSERT INTO invoices (id, customer_id, provider, provider_id, provider_subscription_id, \
         provider_payment_id, amount_due, amount_paid, currency, status, pdf_url, created_at, \
         updated_at, synced_at) SELECT $1, c.id, $2, $3, $4, $5, $6, \
         CASE WHEN $8 = 1 THEN $6 ELSE 0 END, $7, CASE WHEN $8 = 1 THEN 'paid' ELSE 'open' END, \
         NULL, $9, $10, $9 FROM customers c WHERE c.provider = $2 AND c.provider_id = $11 \
         ON CONFLICT (provider, provider_id) DO NOTHING",
        vec![
            inv.id.into(),
            inv.provider.into(),
            inv.provider_id.into(),
            Arg::from(inv.provider_subscription_id),
            Arg::from(inv.provider_payment_id),
            inv.amount.into(),
            inv.currency.into(),
            inv.paid.into(),
            created.into(),
            now.into(),
            inv.provider_customer_id.into(),
        ],
    );
}
