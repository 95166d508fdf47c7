//! Invoices: read from the provider, synced into the database on every read.

use super::{Ctx, PaymentService, Reply, ServiceError};
use crate::store::{Arg, RowExt, Unit};
use payhost_plugin_api::{ops, Invoice, InvoiceQuery, ObjectRef};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListInvoices {
    #[serde(default = "default_limit")]
    pub limit: u32,
    pub starting_after: Option<String>,
}

fn default_limit() -> u32 {
    10
}

impl PaymentService {
    async fn id_of(
        &self,
        table: Table,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<String>, ServiceError> {
        let sql = match table {
            Table::Invoices => "SELECT id FROM invoices WHERE provider = $1 AND provider_id = $2",
            Table::Payments => "SELECT id FROM payments WHERE provider = $1 AND provider_id = $2",
            Table::Subscriptions => {
                "SELECT id FROM subscriptions WHERE provider = $1 AND provider_id = $2"
            }
            Table::Customers => "SELECT id FROM customers WHERE provider = $1 AND provider_id = $2",
        };
        let row = self
            .store
            .one(sql, vec![provider.into(), provider_id.into()])
            .await?;
        Ok(row.map(|r| r.text("id")).transpose()?)
    }

    /// Adds the upsert of `inv` to `unit`; returns its API object.
    async fn stage_invoice(
        &self,
        unit: &mut Unit,
        provider: &str,
        inv: &Invoice,
    ) -> Result<Value, ServiceError> {
        let customer = self
            .id_of(Table::Customers, provider, inv.customer_id.as_str())
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "customer",
                param: "customer",
                id: inv.customer_id.to_string(),
            })?;
        let id = match self
            .id_of(Table::Invoices, provider, inv.id.as_str())
            .await?
        {
            Some(id) => id,
            None => super::new_id("inv"),
        };
        let sub = inv.subscription_id.clone();
        let pay = inv.payment_id.clone();
        let subscription = match &sub {
            Some(s) => self.id_of(Table::Subscriptions, provider, s).await?,
            None => None,
        };
        let payment = match &pay {
            Some(p) => self.id_of(Table::Payments, provider, p).await?,
            None => None,
        };
        let now = self.now();
        unit.push(
            "INSERT INTO invoices (id, customer_id, provider, provider_id, provider_subscription_id, \
             provider_payment_id, amount_due, amount_paid, currency, status, pdf_url, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (provider, provider_id) DO UPDATE SET amount_paid = excluded.amount_paid, \
             status = excluded.status, pdf_url = excluded.pdf_url, \
             provider_payment_id = excluded.provider_payment_id, updated_at = excluded.updated_at",
            vec![
                id.clone().into(),
                customer.clone().into(),
                provider.into(),
                inv.id.as_str().into(),
                Arg::from(sub.clone()),
                Arg::from(pay.clone()),
                inv.amount_due.amount.into(),
                inv.amount_paid.into(),
                inv.amount_due.currency.as_str().into(),
                inv.status.as_str().into(),
                Arg::from(inv.pdf_url.clone()),
                inv.created.into(),
                now.into(),
            ],
        );
        Ok(json!({
            "id": id, "object": "invoice", "customer": customer, "provider": provider,
            "provider_id": inv.id.as_str(),
            "subscription": subscription, "provider_subscription_id": sub,
            "payment": payment, "provider_payment_id": pay,
            "amount_due": inv.amount_due.amount, "amount_paid": inv.amount_paid,
            "currency": inv.amount_due.currency.as_str(), "status": inv.status.as_str(),
            "pdf_url": inv.pdf_url.clone(), "created_at": inv.created,
        }))
    }

    /// `GET /v1/invoices/{id}`.
    ///
    /// # Errors
    /// Unknown id, or the provider's error.
    pub async fn get_invoice(&self, ctx: &Ctx, id: &str) -> Result<Reply, ServiceError> {
        let row = self
            .store
            .one(
                "SELECT provider, provider_id FROM invoices WHERE id = $1",
                vec![id.into()],
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "invoice",
                param: "id",
                id: id.to_owned(),
            })?;
        let (provider, pid) = (row.text("provider")?, row.text("provider_id")?);
        let (inv, _) = self
            .call::<ops::GetInvoice>(&provider, ctx.call_ctx(""), ObjectRef::new(pid))
            .await?;
        let mut unit = Unit::new();
        let body = self.stage_invoice(&mut unit, &provider, &inv).await?;
        self.store.commit(unit).await?;
        Ok(Reply { status: 200, body })
    }

    /// `GET /v1/customers/{id}/invoices`: newest first, `limit` per page, cursor
    /// `starting_after` (a payhost invoice id).
    ///
    /// # Errors
    /// Unknown customer or cursor, a limit outside 1..=100, or the provider's error.
    pub async fn list_invoices(
        &self,
        ctx: &Ctx,
        customer_id: &str,
        q: ListInvoices,
    ) -> Result<Reply, ServiceError> {
        if !(1..=100).contains(&q.limit) {
            return Err(ServiceError::invalid(
                "limit",
                format!("limit must be 1 to 100, got {}", q.limit),
            ));
        }
        let customer = self.customer(customer_id, "id").await?;
        let starting_after = match &q.starting_after {
            Some(cursor) => Some(
                self.store
                    .one(
                        "SELECT provider_id FROM invoices WHERE id = $1 AND customer_id = $2",
                        vec![cursor.into(), customer.id.clone().into()],
                    )
                    .await?
                    .ok_or_else(|| ServiceError::NotFound {
                        what: "invoice",
                        param: "starting_after",
                        id: cursor.clone(),
                    })?
                    .text("provider_id")?,
            ),
            None => None,
        };
        let query = InvoiceQuery {
            customer_id: customer.provider_id.clone(),
            limit: q.limit,
            starting_after,
        };
        let (page, _) = self
            .call::<ops::ListInvoices>(&customer.provider, ctx.call_ctx(""), query)
            .await?;
        let mut unit = Unit::new();
        let mut data = Vec::with_capacity(page.data.len());
        for inv in page.data.iter() {
            data.push(
                self.stage_invoice(&mut unit, &customer.provider, inv)
                    .await?,
            );
        }
        self.store.commit(unit).await?;
        Ok(Reply {
            status: 200,
            body: json!({"object": "list", "data": data, "has_more": page.has_more}),
        })
    }
}

#[derive(Clone, Copy)]
enum Table {
    Invoices,
    Payments,
    Subscriptions,
    Customers,
}
