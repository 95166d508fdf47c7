//! Invoices: issued by the provider, recorded as webhooks tell of them or as a refresh pulls
//! them; read from payhost's records.

use super::customers::page;
use super::{list, new_id, Ctx, PaymentService, Reply, ServiceError};
use crate::api::fields::is_id;
use crate::api::requests::{InvoiceFilters, PageParams};
use crate::api::views::{InvoiceView, List};
use crate::store::{invoices, InvoiceQuery, InvoiceRow, Record, Unit};
use payhost_plugin_api::{ops, Invoice, InvoiceQuery as ProviderQuery, ObjectRef};

/// Invoices pulled per provider page when refreshing.
const REFRESH_PAGE: u32 = 100;
/// Most pages pulled in one refresh (a provider whose pages never end stops here).
const REFRESH_PAGES: usize = 100;

impl PaymentService {
    /// Adds the upsert of `inv` to `unit`. Invoices of customers payhost does not know are
    /// skipped.
    async fn stage_invoice(
        &self,
        unit: &mut Unit,
        provider: &str,
        inv: &Invoice,
    ) -> Result<Option<InvoiceRow>, ServiceError> {
        let Some(customer) = self
            .store
            .id_by_provider_id(Record::Customer, provider, &inv.customer_id)
            .await?
        else {
            return Ok(None);
        };
        let id = self
            .store
            .id_by_provider_id(Record::Invoice, provider, &inv.id)
            .await?
            .unwrap_or_else(|| new_id("inv"));
        let row = InvoiceRow {
            id,
            tenant: String::new(),
            customer_id: customer,
            provider: provider.to_owned(),
            provider_id: inv.id.clone(),
            subscription_id: None,
            provider_subscription_id: inv.subscription_id.clone(),
            payment_id: None,
            provider_payment_id: inv.payment_id.clone(),
            amount_due: inv.amount_due.amount,
            amount_paid: inv.amount_paid,
            currency: inv.amount_due.currency.as_str().to_owned(),
            status: inv.status.clone(),
            pdf_url: inv.pdf_url.clone(),
            created_at: inv.created,
            updated_at: self.now(),
        };
        invoices::upsert_invoice(unit, &row);
        Ok(Some(row))
    }

    async fn invoice(&self, ctx: &Ctx, id: &str) -> Result<InvoiceRow, ServiceError> {
        let row = if is_id(id) {
            self.store.invoice(id, ctx.scope()).await?
        } else {
            None
        };
        row.ok_or_else(|| ServiceError::not_found("invoice", "id", id))
    }

    /// `GET /v1/invoices/{id}`: payhost's record; with `refresh`, the provider's state
    /// synced first.
    ///
    /// # Errors
    /// Unknown id, or (refreshing) the provider's error.
    pub async fn get_invoice(
        &self,
        ctx: &Ctx,
        id: &str,
        refresh: bool,
    ) -> Result<Reply<InvoiceView>, ServiceError> {
        let row = self.invoice(ctx, id).await?;
        if refresh {
            let (inv, _) = self
                .call::<ops::GetInvoice>(
                    &row.provider,
                    ctx.call_ctx(""),
                    ObjectRef::new(&row.provider_id),
                )
                .await?;
            Self::check_same_object(Record::Invoice, &row.provider, &row.provider_id, &inv.id)?;
            let mut unit = Unit::new();
            self.stage_invoice(&mut unit, &row.provider, &inv).await?;
            self.store.commit(unit).await?;
        }
        Ok(Reply::ok(InvoiceView::from(&self.invoice(ctx, id).await?)))
    }

    /// `GET /v1/invoices`: newest first, by customer and status; with `refresh` (one
    /// customer's list), the customer's invoices pulled from the provider first.
    ///
    /// # Errors
    /// An unknown customer or cursor, or (refreshing) the provider's error.
    pub async fn list_invoices(
        &self,
        ctx: &Ctx,
        f: InvoiceFilters,
        refresh: bool,
        p: &PageParams,
    ) -> Result<List<InvoiceView>, ServiceError> {
        let customer = match &f.customer {
            Some(c) => Some(self.customer(ctx, c.as_str(), "customer").await?),
            None => None,
        };
        if let Some(customer) = customer.as_ref().filter(|_| refresh) {
            if !customer.host_kept && self.supports(&customer.provider, "invoices")? {
                self.pull_invoices(ctx, &customer.provider, &customer.provider_id)
                    .await?;
            }
        }
        let q = InvoiceQuery {
            tenant: ctx.tenant.clone(),
            customer_id: customer.map(|c| c.id),
            status: f.status.map(|s| s.into_string()),
        };
        let rows = self.store.invoices(&q, &page(p)).await?;
        Ok(list(rows))
    }

    /// Syncs every invoice the provider holds for a customer, page by page.
    async fn pull_invoices(
        &self,
        ctx: &Ctx,
        provider: &str,
        provider_customer: &str,
    ) -> Result<(), ServiceError> {
        let mut starting_after: Option<String> = None;
        for _ in 0..REFRESH_PAGES {
            let query = ProviderQuery {
                customer_id: provider_customer.to_owned(),
                limit: REFRESH_PAGE,
                starting_after: starting_after.clone(),
            };
            let (page, _) = self
                .call::<ops::ListInvoices>(provider, ctx.call_ctx(""), query)
                .await?;
            let mut unit = Unit::new();
            for inv in &page.data {
                self.stage_invoice(&mut unit, provider, inv).await?;
            }
            self.store.commit(unit).await?;
            match page.data.last() {
                Some(last) if page.has_more && starting_after.as_ref() != Some(&last.id) => {
                    starting_after = Some(last.id.clone());
                }
                _ => return Ok(()),
            }
        }
        tracing::warn!(
            provider,
            "invoice refresh stopped after {REFRESH_PAGES} pages"
        );
        Ok(())
    }
}
