//! Users, their provider customers and payment methods.

use super::rows::{customer_cols, new_id, CustomerRow};
use super::{metadata_json, Ctx, Ids, Kind, PaymentService, Reply, ServiceError};
use crate::store::{Arg, RowExt, Unit};
use payhost_plugin_api::{
    ops, AttachPaymentMethod, CustomerRef, CustomerUpdate, NewCustomer, ObjectRef, PaymentMethod,
    SetDefaultPaymentMethod,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// The application's own id for the user.
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub provider: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodRef {
    pub payment_method: String,
}

/// The prefix of payhost's payment method ids; anything else is the provider's id.
const PM_PREFIX: &str = "pmeth_";

pub(super) fn check_email(email: &str) -> Result<(), ServiceError> {
    let ok = email.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') && !email.contains(char::is_whitespace)
    });
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "email",
            format!("'{email}' is not an email address"),
        ))
    }
}

fn pm_view(id: &str, customer: &str, provider: &str, pm: &PaymentMethod) -> Value {
    json!({
        "id": id, "object": "payment_method", "customer": customer,
        "provider": provider, "provider_id": pm.id.as_str(), "type": pm.kind.as_str(),
        "brand": pm.brand.clone(), "last4": pm.last4.clone(),
        "exp_month": pm.exp_month, "exp_year": pm.exp_year,
    })
}

impl PaymentService {
    /// The customer `id`.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] naming `param`.
    pub(super) async fn customer(
        &self,
        id: &str,
        param: &'static str,
    ) -> Result<CustomerRow, ServiceError> {
        let row = self
            .store
            .one(
                concat!("SELECT ", customer_cols!(), " FROM customers WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "customer",
                param,
                id: id.to_owned(),
            })?;
        Ok(CustomerRow::from_row(&row)?)
    }

    async fn customer_for_user(
        &self,
        tenant: &str,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<CustomerRow>, ServiceError> {
        let row = self
            .store
            .one(
                concat!(
                    "SELECT ",
                    customer_cols!(),
                    " FROM customers WHERE tenant = $1 AND user_id = $2 AND provider = $3"
                ),
                vec![tenant.into(), user_id.into(), provider.into()],
            )
            .await?;
        Ok(row.map(|r| CustomerRow::from_row(&r)).transpose()?)
    }

    /// The user's customer on `provider`, created there (once) when missing. The email comes
    /// from the request, else from the user's earlier records.
    ///
    /// # Errors
    /// No email known for a new user, or the provider's error.
    pub(super) async fn ensure_customer(
        &self,
        ctx: &Ctx,
        req: &CreateCustomer,
        provider: &str,
    ) -> Result<(CustomerRow, bool), ServiceError> {
        let tenant = ctx.tenant_key();
        if req.user_id.trim().is_empty() {
            return Err(ServiceError::invalid(
                "user_id",
                "user_id must not be empty",
            ));
        }
        if let Some(existing) = self
            .customer_for_user(&tenant, &req.user_id, provider)
            .await?
        {
            return Ok((existing, false));
        }
        check_email(&req.email)?;
        let new = NewCustomer {
            email: req.email.clone(),
            name: req.name.clone(),
            metadata: req.metadata.clone(),
        };
        let (created, _) = self
            .call::<ops::CreateCustomer>(provider, ctx.call_ctx("customer"), new)
            .await?;
        self.check_new_provider_id(Kind::Customer, provider, &created.id)
            .await?;
        let now = self.now();
        let row = CustomerRow {
            id: new_id("cust"),
            tenant: tenant.clone(),
            user_id: req.user_id.clone(),
            provider: provider.to_owned(),
            provider_id: created.id.to_string(),
            email: created.email.to_string(),
            name: created.name.clone(),
            default_payment_method: None,
            metadata: metadata_json(&created.metadata),
            created_at: now,
        };
        let mut unit = Unit::new();
        unit.push(
            "INSERT INTO users (tenant, user_id, email, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (tenant, user_id) DO UPDATE SET email = excluded.email, \
             name = COALESCE(excluded.name, users.name), updated_at = excluded.updated_at",
            vec![
                tenant.clone().into(),
                req.user_id.clone().into(),
                req.email.clone().into(),
                Arg::from(req.name.clone()),
                now.into(),
            ],
        );
        let insert = unit.push(
            "INSERT INTO customers (id, tenant, user_id, provider, provider_id, email, name, \
             default_payment_method, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $9) \
             ON CONFLICT (tenant, user_id, provider) DO NOTHING",
            vec![
                row.id.clone().into(),
                tenant.clone().into(),
                row.user_id.clone().into(),
                row.provider.clone().into(),
                row.provider_id.clone().into(),
                row.email.clone().into(),
                Arg::from(row.name.clone()),
                row.metadata.clone().into(),
                now.into(),
            ],
        );
        let changed = self.store.commit(unit).await?;
        if changed[insert] == 0 {
            // A concurrent request created the customer first; use that one.
            tracing::warn!(
                provider, provider_customer = %row.provider_id,
                "concurrent customer creation: keeping the first, this provider customer is unused"
            );
            let existing = self
                .customer_for_user(&tenant, &req.user_id, provider)
                .await?;
            return existing
                .map(|c| (c, false))
                .ok_or_else(|| ServiceError::Conflict("customer creation raced; retry".into()));
        }
        Ok((row, true))
    }

    /// `POST /v1/customers`: the user's customer on the chosen provider (201 when created).
    ///
    /// # Errors
    /// Invalid input, an unknown provider, or the provider's error.
    pub async fn create_customer(
        &self,
        ctx: &Ctx,
        req: CreateCustomer,
    ) -> Result<Reply, ServiceError> {
        let provider = self.pick_provider(ctx, req.provider.as_deref())?;
        let (row, created) = self.ensure_customer(ctx, &req, &provider).await?;
        let reply = Reply {
            status: if created { 201 } else { 200 },
            body: row.view(),
        };
        self.finish(
            ctx,
            Unit::new(),
            &provider,
            Vec::new(),
            &Ids::default(),
            reply,
        )
        .await
    }

    /// `GET /v1/customers/{id}`: refreshed from the provider.
    ///
    /// # Errors
    /// Unknown id, or the provider's error.
    pub async fn get_customer(&self, ctx: &Ctx, id: &str) -> Result<Reply, ServiceError> {
        let row = self.customer(id, "id").await?;
        let pid = row.provider_id.clone();
        let (fresh, _) = self
            .call::<ops::GetCustomer>(&row.provider, ctx.call_ctx(""), ObjectRef::new(pid))
            .await?;
        self.sync_customer(ctx, row, &fresh, 200).await
    }

    async fn sync_customer(
        &self,
        ctx: &Ctx,
        mut row: CustomerRow,
        fresh: &payhost_plugin_api::Customer,
        status: u16,
    ) -> Result<Reply, ServiceError> {
        Self::check_same_object(Kind::Customer, &row.provider, &row.provider_id, &fresh.id)?;
        row.email = fresh.email.to_string();
        row.name = fresh.name.clone();
        row.metadata = metadata_json(&fresh.metadata);
        if let Some(pm) = fresh.default_payment_method.clone() {
            row.default_payment_method = Some(self.pm_payhost_id(&row.provider, &pm).await?);
        }
        let mut unit = Unit::new();
        unit.push(
            "UPDATE customers SET email = $2, name = $3, default_payment_method = $4, \
             metadata = $5, updated_at = $6 WHERE id = $1",
            vec![
                row.id.clone().into(),
                row.email.clone().into(),
                Arg::from(row.name.clone()),
                Arg::from(row.default_payment_method.clone()),
                row.metadata.clone().into(),
                self.now().into(),
            ],
        );
        let reply = Reply {
            status,
            body: row.view(),
        };
        self.finish(ctx, unit, &row.provider, Vec::new(), &Ids::default(), reply)
            .await
    }

    /// `POST /v1/customers/{id}`: changes email, name or metadata.
    ///
    /// # Errors
    /// Unknown id, an invalid email, or the provider's error.
    pub async fn update_customer(
        &self,
        ctx: &Ctx,
        id: &str,
        req: UpdateCustomer,
    ) -> Result<Reply, ServiceError> {
        let row = self.customer(id, "id").await?;
        if let Some(e) = &req.email {
            check_email(e)?;
        }
        let update = CustomerUpdate {
            customer_id: row.provider_id.clone(),
            email: req.email.clone(),
            name: req.name.clone(),
            metadata: req.metadata.clone(),
        };
        let (fresh, _) = self
            .call::<ops::UpdateCustomer>(&row.provider, ctx.call_ctx(""), update)
            .await?;
        self.sync_customer(ctx, row, &fresh, 200).await
    }

    /// The payhost id of a provider payment method, when payhost has seen it; else the
    /// provider's id itself.
    async fn pm_payhost_id(
        &self,
        provider: &str,
        provider_pm: &str,
    ) -> Result<String, ServiceError> {
        let row = self
            .store
            .one(
                "SELECT id FROM payment_methods WHERE provider = $1 AND provider_id = $2",
                vec![provider.into(), provider_pm.into()],
            )
            .await?;
        Ok(match row {
            Some(r) => r.text("id")?,
            None => provider_pm.to_owned(),
        })
    }

    /// The provider's id for a payment method given by payhost id or by the provider's id.
    pub(super) async fn pm_provider_id(
        &self,
        customer: &CustomerRow,
        pm: &str,
    ) -> Result<String, ServiceError> {
        if !pm.starts_with(PM_PREFIX) {
            return Ok(pm.to_owned());
        }
        let row = self
            .store
            .one(
                "SELECT provider_id, customer_id FROM payment_methods WHERE id = $1",
                vec![pm.into()],
            )
            .await?;
        match row {
            Some(r) if r.text("customer_id")? != customer.id => Err(ServiceError::invalid(
                "payment_method",
                format!("payment method '{pm}' belongs to another customer"),
            )),
            Some(r) => Ok(r.text("provider_id")?),
            None => Err(ServiceError::NotFound {
                what: "payment method",
                param: "payment_method",
                id: pm.to_owned(),
            }),
        }
    }

    /// `POST /v1/customers/{id}/payment_methods`: attaches a provider payment method.
    ///
    /// # Errors
    /// Unknown customer, or the provider's error (an unknown or declined method).
    pub async fn attach_payment_method(
        &self,
        ctx: &Ctx,
        customer_id: &str,
        req: PaymentMethodRef,
    ) -> Result<Reply, ServiceError> {
        let customer = self.customer(customer_id, "id").await?;
        let (cid, pm) = (customer.provider_id.clone(), req.payment_method.clone());
        let (attached, _) = self
            .call::<ops::AttachPaymentMethod>(
                &customer.provider,
                ctx.call_ctx(""),
                AttachPaymentMethod {
                    customer_id: cid,
                    payment_method: pm,
                },
            )
            .await?;
        let mut unit = Unit::new();
        let id = self
            .stage_payment_method(&mut unit, &customer, &attached)
            .await?;
        let reply = Reply {
            status: 200,
            body: pm_view(&id, &customer.id, &customer.provider, &attached),
        };
        self.finish(
            ctx,
            unit,
            &customer.provider,
            Vec::new(),
            &Ids::default(),
            reply,
        )
        .await
    }

    /// The payhost id of `pm`, adding its row to `unit` when it is new.
    async fn stage_payment_method(
        &self,
        unit: &mut Unit,
        customer: &CustomerRow,
        pm: &PaymentMethod,
    ) -> Result<String, ServiceError> {
        let known = self
            .pm_payhost_id(&customer.provider, pm.id.as_str())
            .await?;
        if known != pm.id.as_str() {
            let owner = self
                .store
                .one(
                    "SELECT customer_id FROM payment_methods WHERE id = $1",
                    vec![known.clone().into()],
                )
                .await?
                .map(|r| r.text("customer_id"))
                .transpose()?;
            if owner.as_deref() != Some(customer.id.as_str()) {
                return Err(ServiceError::ProviderIdConflict(format!(
                    "provider '{}' returned payment method '{}' for customer '{}', but payhost \
                     holds it for another customer; nothing was written",
                    customer.provider, pm.id, customer.id
                )));
            }
            return Ok(known);
        }
        let id = new_id(PM_PREFIX.trim_end_matches('_'));
        unit.push(
            "INSERT INTO payment_methods (id, customer_id, provider, provider_id, kind, brand, \
             last4, exp_month, exp_year, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (provider, provider_id) DO NOTHING",
            vec![
                id.clone().into(),
                customer.id.clone().into(),
                customer.provider.clone().into(),
                pm.id.as_str().into(),
                pm.kind.as_str().into(),
                Arg::from(pm.brand.clone()),
                Arg::from(pm.last4.clone()),
                i64::from(pm.exp_month).into(),
                i64::from(pm.exp_year).into(),
                self.now().into(),
            ],
        );
        Ok(id)
    }

    /// `GET /v1/customers/{id}/payment_methods`: the provider's list, synced.
    ///
    /// # Errors
    /// Unknown customer, or the provider's error.
    pub async fn list_payment_methods(
        &self,
        ctx: &Ctx,
        customer_id: &str,
    ) -> Result<Reply, ServiceError> {
        let customer = self.customer(customer_id, "id").await?;
        let cid = customer.provider_id.clone();
        let (methods, _) = self
            .call::<ops::ListPaymentMethods>(
                &customer.provider,
                ctx.call_ctx(""),
                CustomerRef { customer_id: cid },
            )
            .await?;
        let mut unit = Unit::new();
        let mut data = Vec::with_capacity(methods.data.len());
        for pm in methods.data.iter() {
            let id = self.stage_payment_method(&mut unit, &customer, pm).await?;
            data.push(pm_view(&id, &customer.id, &customer.provider, pm));
        }
        self.store.commit(unit).await?;
        Ok(Reply {
            status: 200,
            body: json!({"object": "list", "data": data, "has_more": false}),
        })
    }

    /// `POST /v1/customers/{id}/default_payment_method`.
    ///
    /// # Errors
    /// Unknown customer, a method of another customer, or the provider's error.
    pub async fn set_default_payment_method(
        &self,
        ctx: &Ctx,
        customer_id: &str,
        req: PaymentMethodRef,
    ) -> Result<Reply, ServiceError> {
        let customer = self.customer(customer_id, "id").await?;
        let pm = self.pm_provider_id(&customer, &req.payment_method).await?;
        let cid = customer.provider_id.clone();
        let (fresh, _) = self
            .call::<ops::SetDefaultPaymentMethod>(
                &customer.provider,
                ctx.call_ctx(""),
                SetDefaultPaymentMethod {
                    customer_id: cid,
                    payment_method: pm,
                },
            )
            .await?;
        self.sync_customer(ctx, customer, &fresh, 200).await
    }
}

/// Adds to `unit` the statements that erase a customer's personal data (email, name,
/// metadata, saved payment methods; the user's stored email and name when no other
/// customer of the user remains) while its payments, subscriptions, refunds and invoices
/// stay, pointing at the anonymized customer.
pub(crate) fn erase_customer(unit: &mut Unit, provider: &str, provider_id: &str, now: i64) {
    unit.push(
        "DELETE FROM payment_methods WHERE customer_id IN \
         (SELECT id FROM customers WHERE provider = $1 AND provider_id = $2)",
        vec![provider.into(), provider_id.into()],
    );
    unit.push(
        "UPDATE customers SET email = '', name = NULL, metadata = '{}', \
         default_payment_method = NULL, deleted_at = COALESCE(deleted_at, $3), updated_at = $3 \
         WHERE provider = $1 AND provider_id = $2",
        vec![provider.into(), provider_id.into(), now.into()],
    );
    unit.push(
        "UPDATE users SET email = '', name = NULL, updated_at = $3 \
         WHERE EXISTS (SELECT 1 FROM customers c WHERE c.provider = $1 AND c.provider_id = $2 \
         AND c.tenant = users.tenant AND c.user_id = users.user_id) \
         AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.tenant = users.tenant \
         AND o.user_id = users.user_id AND o.deleted_at IS NULL)",
        vec![provider.into(), provider_id.into(), now.into()],
    );
}
