//! Users and their provider customers (their payment methods: `payment_methods.rs`).
//!
//! A provider without customers (no `customers` capability) gets customers payhost keeps
//! itself: the row carries payhost's own id as provider id, and every payment or
//! subscription passes the payer's email and name instead.

use super::{
    list, metadata_json, new_id, Ctx, Facts, Ids, PaymentService, Reply, ServiceError, Status,
};
use crate::api::fields::{is_id, Email, Metadata, Name, UserId};
use crate::api::requests::{self, CustomerFilters, PageParams};
use crate::api::views::{CustomerView, DeletedView, List};
use crate::store::{customers, CustomerQuery, CustomerRow, Page, Record, Unit};
use payhost_plugin_api::{
    ops, CustomerUpdate, DomainEventKind, DomainEventReport, NewCustomer, ObjectRef,
};
use std::collections::BTreeMap;

/// The prefix of payhost's payment method ids; anything else is the provider's id.
pub(super) const PM_PREFIX: &str = "pmeth_";

/// The user a customer is for, with what payhost knows of them.
#[derive(Clone)]
pub(super) struct NewUser {
    pub user_id: UserId,
    pub email: Option<Email>,
    pub name: Option<Name>,
    pub metadata: BTreeMap<String, String>,
}

/// Who pays a new payment.
pub(super) enum Who {
    /// This customer, at its instance alone (a saved payment method's customer; a named
    /// customer when no routes are configured).
    Bound(CustomerRow),
    /// The user's customer at whichever instance takes the payment (created there once).
    User {
        tenant: String,
        user: NewUser,
        explicit: Option<String>,
        /// The customer's country, when payhost knows it (routing rules match on it).
        country: Option<String>,
    },
}

/// A page request from the API's parameters.
pub(super) fn page(p: &PageParams) -> Page {
    Page {
        limit: p.limit.get(),
        starting_after: p.starting_after.as_ref().map(|i| i.as_str().to_owned()),
        ending_before: p.ending_before.as_ref().map(|i| i.as_str().to_owned()),
    }
}

impl PaymentService {
    /// The customer `id`, within the caller's tenant; erased customers are gone.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] naming `param`.
    pub(super) async fn customer(
        &self,
        ctx: &Ctx,
        id: &str,
        param: &'static str,
    ) -> Result<CustomerRow, ServiceError> {
        let row = if is_id(id) {
            self.store.customer(id, ctx.scope()).await?
        } else {
            None
        };
        row.filter(|c| c.deleted_at.is_none())
            .ok_or_else(|| ServiceError::not_found("customer", param, id))
    }

    /// The customer a record points at (also an erased one: the history stays).
    pub(super) async fn owner(&self, id: &str) -> Result<CustomerRow, ServiceError> {
        self.store
            .customer(id, None)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer", "customer", id))
    }

    /// Whether `[routing]` names a default route or rules: then a route decides where a
    /// named customer's new payments and subscriptions go (its user gets a customer at the
    /// instance chosen, once); without, they go to the customer's own instance.
    pub(super) fn routes_configured(&self) -> bool {
        let r = &self.config.config.routing;
        r.default.is_some() || !r.rules.is_empty()
    }

    /// Who pays a new payment or subscription, and the provider's id of the saved method
    /// `pm` when one is named (a method binds the payment to its customer's instance).
    ///
    /// # Errors
    /// An unknown customer or method, a method of another customer, an instance that is not
    /// configured or contradicts the method's or the customer's, or neither customer nor
    /// user given.
    pub(super) async fn who_pays(
        &self,
        ctx: &Ctx,
        customer: Option<String>,
        user: Option<NewUser>,
        provider: Option<String>,
        pm: Option<&str>,
    ) -> Result<(Who, Option<String>), ServiceError> {
        if let Some(p) = &provider {
            self.check_provider(p)?;
        }
        if let Some(pm) = pm.filter(|p| p.starts_with(PM_PREFIX)) {
            let row = if is_id(pm) {
                self.store.payment_method(pm).await?
            } else {
                None
            };
            let row =
                row.ok_or_else(|| ServiceError::not_found("payment method", "payment_method", pm))?;
            let owner = self
                .customer(ctx, &row.customer_id, "payment_method")
                .await?;
            let other = customer.as_deref().is_some_and(|c| c != owner.id)
                || user
                    .as_ref()
                    .is_some_and(|u| u.user_id.as_str() != owner.user_id);
            if other {
                return Err(ServiceError::invalid(
                    "payment_method",
                    format!("payment method '{pm}' belongs to another customer"),
                ));
            }
            if let Some(p) = provider.as_deref().filter(|p| *p != owner.provider) {
                return Err(ServiceError::invalid(
                    "provider",
                    format!(
                        "payment method '{pm}' belongs to provider '{}', not '{p}'",
                        owner.provider
                    ),
                ));
            }
            return Ok((Who::Bound(owner), Some(row.provider_id)));
        }
        let pm = pm.map(str::to_owned);
        if let Some(id) = &customer {
            let c = self.customer(ctx, id, "customer").await?;
            if !self.routes_configured() {
                if let Some(p) = provider.as_deref().filter(|p| *p != c.provider) {
                    return Err(ServiceError::invalid(
                        "provider",
                        format!(
                            "customer '{id}' belongs to provider '{}', not '{p}'",
                            c.provider
                        ),
                    ));
                }
                return Ok((Who::Bound(c), pm));
            }
            let country = serde_json::from_str::<BTreeMap<String, String>>(&c.metadata)
                .ok()
                .and_then(|m| m.get("country").map(|v| v.to_ascii_uppercase()));
            let user = NewUser {
                user_id: c
                    .user_id
                    .parse::<UserId>()
                    .map_err(|e| ServiceError::invalid("customer", e))?,
                email: None,
                name: None,
                metadata: BTreeMap::new(),
            };
            return Ok((
                Who::User {
                    tenant: c.tenant,
                    user,
                    explicit: provider,
                    country,
                },
                pm,
            ));
        }
        let Some(user) = user else {
            return Err(ServiceError::invalid(
                "customer",
                "give either 'customer' or 'user_id'",
            ));
        };
        Ok((
            Who::User {
                tenant: ctx.tenant_key(),
                user,
                explicit: provider,
                country: None,
            },
            pm,
        ))
    }

    /// The user's customer on `provider`, in the caller's tenant.
    pub(super) async fn ensure_customer(
        &self,
        ctx: &Ctx,
        user: NewUser,
        provider: &str,
    ) -> Result<(CustomerRow, bool), ServiceError> {
        self.ensure_customer_in(ctx, &ctx.tenant_key(), user, provider)
            .await
    }

    /// The user's customer on `provider`, created (once) when missing: at the provider, or
    /// kept by payhost when the provider has no customers. The email comes from the
    /// request, else from the user's earlier records.
    ///
    /// # Errors
    /// No email known for a new user, or the provider's error.
    pub(super) async fn ensure_customer_in(
        &self,
        ctx: &Ctx,
        tenant: &str,
        user: NewUser,
        provider: &str,
    ) -> Result<(CustomerRow, bool), ServiceError> {
        let tenant = tenant.to_owned();
        let user_id = user.user_id.as_str();
        if let Some(existing) = self
            .store
            .customer_for_user(&tenant, user_id, provider)
            .await?
        {
            return Ok((existing, false));
        }
        let email = match user.email {
            Some(e) => e.into_string(),
            None => self
                .store
                .user_email(&tenant, user_id)
                .await?
                .filter(|e| !e.is_empty())
                .ok_or_else(|| ServiceError::UnknownUser(user_id.to_owned()))?,
        };
        let name = user.name.map(Name::into_string);
        let now = self.now();
        let id = new_id("cust");
        let mut row = CustomerRow {
            id: id.clone(),
            tenant: tenant.clone(),
            user_id: user_id.to_owned(),
            provider: provider.to_owned(),
            provider_id: id,
            host_kept: true,
            email: email.clone(),
            name: name.clone(),
            default_payment_method: None,
            metadata: serde_json::to_string(&user.metadata).unwrap_or_else(|_| "{}".into()),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        if self.supports(provider, "customers")? {
            let new = NewCustomer {
                email: email.clone(),
                name: name.clone(),
                metadata: user.metadata,
            };
            let (created, _) = self
                .call::<ops::CreateCustomer>(provider, ctx.call_ctx("customer"), new)
                .await?;
            self.check_new_provider_id(Record::Customer, provider, &created.id)
                .await?;
            row.provider_id = created.id;
            row.host_kept = false;
            row.email = created.email;
            row.name = created.name;
            row.metadata = metadata_json(&created.metadata);
        }
        let mut unit = Unit::new();
        customers::upsert_user(&mut unit, &tenant, user_id, &email, name.as_deref(), now);
        let insert = customers::insert_customer(&mut unit, &row);
        let changed = self.store.commit(unit).await?;
        if changed[insert] == 0 {
            // A concurrent request created the customer first; use that one.
            tracing::warn!(
                provider, provider_customer = %row.provider_id,
                "concurrent customer creation: keeping the first, this provider customer is unused"
            );
            let existing = self
                .store
                .customer_for_user(&tenant, user_id, provider)
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
    /// An unknown provider, or the provider's error.
    pub async fn create_customer(
        &self,
        ctx: &Ctx,
        req: requests::CreateCustomer,
    ) -> Result<Reply<CustomerView>, ServiceError> {
        let metadata = req.metadata.into_map();
        let facts = crate::config::routing::Facts {
            metadata: metadata.clone(),
            country: metadata.get("country").map(|c| c.to_ascii_uppercase()),
            ..Default::default()
        };
        let decision = self.decide(
            ctx,
            facts,
            &[],
            req.provider.as_ref().map(|p| p.as_str()),
            req.user_id.as_str(),
        )?;
        let user = NewUser {
            user_id: req.user_id,
            email: Some(req.email),
            name: req.name,
            metadata,
        };
        let mut tries = self.tries_moving_no_money(&decision)?;
        let (row, created) = loop {
            let Some((instance, here)) = tries.next(ctx) else {
                return Err(tries.exhausted());
            };
            let outcome = self.ensure_customer(&here, user.clone(), &instance).await;
            if let Some(made) = tries.outcome(&instance, outcome)? {
                break made;
            }
        };
        let provider = row.provider.clone();
        let reply = Reply {
            status: if created { Status::Created } else { Status::Ok },
            body: CustomerView::from(&row),
            stored: false,
        };
        self.finish(
            ctx,
            Unit::new(),
            &provider,
            Facts::none(),
            &Ids::default(),
            reply,
        )
        .await
    }

    /// `GET /v1/customers/{id}`: payhost's record; with `refresh`, the provider's state
    /// synced first.
    ///
    /// # Errors
    /// Unknown id, or (refreshing) the provider's error.
    pub async fn get_customer(
        &self,
        ctx: &Ctx,
        id: &str,
        refresh: bool,
    ) -> Result<Reply<CustomerView>, ServiceError> {
        let row = self.customer(ctx, id, "id").await?;
        if !refresh || row.host_kept {
            return Ok(Reply::ok(CustomerView::from(&row)));
        }
        let pid = row.provider_id.clone();
        let (fresh, _) = self
            .call::<ops::GetCustomer>(&row.provider, ctx.call_ctx(""), ObjectRef::new(pid))
            .await?;
        self.sync_customer(ctx, row, &fresh).await
    }

    /// `GET /v1/customers`: newest first, by user or email.
    ///
    /// # Errors
    /// An unknown cursor, or a database failure.
    pub async fn list_customers(
        &self,
        ctx: &Ctx,
        f: CustomerFilters,
        p: &PageParams,
    ) -> Result<List<CustomerView>, ServiceError> {
        if let Some(p) = &f.provider {
            self.check_provider(p.as_str())?;
        }
        let q = CustomerQuery {
            tenant: ctx.tenant.clone(),
            user_id: f.user_id.map(UserId::into_string),
            email: f.email.map(Email::into_string),
            provider: f.provider.map(|p| p.into_string()),
        };
        let rows = self.store.customers(&q, &page(p)).await?;
        Ok(list(rows))
    }

    pub(super) async fn sync_customer(
        &self,
        ctx: &Ctx,
        mut row: CustomerRow,
        fresh: &payhost_plugin_api::Customer,
    ) -> Result<Reply<CustomerView>, ServiceError> {
        Self::check_same_object(Record::Customer, &row.provider, &row.provider_id, &fresh.id)?;
        row.email = fresh.email.clone();
        row.name = fresh.name.clone();
        row.metadata = metadata_json(&fresh.metadata);
        if let Some(pm) = &fresh.default_payment_method {
            row.default_payment_method = Some(self.pm_payhost_id(&row.provider, pm).await?);
        }
        row.updated_at = self.now();
        let mut unit = Unit::new();
        customers::update_customer(&mut unit, &row);
        let reply = Reply::ok(CustomerView::from(&row));
        let provider = row.provider.clone();
        self.finish(ctx, unit, &provider, Facts::none(), &Ids::default(), reply)
            .await
    }

    /// `POST /v1/customers/{id}`: changes email, name or metadata.
    ///
    /// # Errors
    /// Unknown id, or the provider's error.
    pub async fn update_customer(
        &self,
        ctx: &Ctx,
        id: &str,
        req: requests::UpdateCustomer,
    ) -> Result<Reply<CustomerView>, ServiceError> {
        let mut row = self.customer(ctx, id, "id").await?;
        let metadata = req.metadata.map(Metadata::into_map).unwrap_or_default();
        if row.host_kept {
            if let Some(e) = req.email {
                row.email = e.into_string();
            }
            if let Some(n) = req.name {
                row.name = Some(n.into_string());
            }
            let mut merged: BTreeMap<String, String> =
                serde_json::from_str(&row.metadata).unwrap_or_default();
            merged.extend(metadata);
            row.metadata = serde_json::to_string(&merged).unwrap_or_else(|_| "{}".into());
            row.updated_at = self.now();
            let mut unit = Unit::new();
            customers::update_customer(&mut unit, &row);
            let provider = row.provider.clone();
            let reply = Reply::ok(CustomerView::from(&row));
            return self
                .finish(ctx, unit, &provider, Facts::none(), &Ids::default(), reply)
                .await;
        }
        let update = CustomerUpdate {
            customer_id: row.provider_id.clone(),
            email: req.email.map(Email::into_string),
            name: req.name.map(Name::into_string),
            metadata,
        };
        let (fresh, _) = self
            .call::<ops::UpdateCustomer>(&row.provider, ctx.call_ctx(""), update)
            .await?;
        self.sync_customer(ctx, row, &fresh).await
    }

    /// `DELETE /v1/customers/{id}`: deletes the customer at the provider (when it can) and
    /// erases its personal data here; its payments, subscriptions, refunds and invoices
    /// stay, anonymized. A CustomerDeleted event records it.
    ///
    /// # Errors
    /// Unknown id, or the provider's error (nothing erased then: retry).
    pub async fn delete_customer(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<Reply<DeletedView>, ServiceError> {
        let row = self.customer(ctx, id, "id").await?;
        if !row.host_kept {
            let asked = self
                .call::<ops::DeleteCustomer>(
                    &row.provider,
                    ctx.call_ctx(""),
                    ObjectRef::new(&row.provider_id),
                )
                .await;
            match asked {
                Ok(_) => {}
                // Already gone at the provider: erase here too.
                Err(ServiceError::Call(crate::plugins::CallError::Plugin(e)))
                    if e.is(payhost_plugin_api::codes::NOT_FOUND) => {}
                Err(e) if e.is_unsupported() => tracing::warn!(
                    provider = %row.provider, customer = %row.id,
                    "the provider cannot delete customers: erased in payhost only"
                ),
                Err(e) => return Err(e),
            }
        }
        let now = self.now();
        let mut unit = Unit::new();
        customers::erase_customer(&mut unit, &row.provider, &row.provider_id, now);
        let report =
            DomainEventReport::new(DomainEventKind::CustomerDeleted, &row.provider_id, now);
        let ids = Ids::default().with(&row.provider_id, &row.id);
        let reply = Reply::ok(DeletedView {
            id: row.id.clone(),
            object: "customer",
            deleted: true,
        });
        let facts = Facts {
            own: vec![report],
            ..Facts::default()
        };
        self.finish(ctx, unit, &row.provider, facts, &ids, reply)
            .await
    }
}
