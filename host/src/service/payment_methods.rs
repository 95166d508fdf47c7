//! A customer's payment methods: attached at the customer's provider, listed, made the
//! default, detached; payhost's own ids for them (`pmeth_…`) beside the provider's.

use super::customers::PM_PREFIX;
use super::{new_id, Ctx, Facts, Ids, PaymentService, Reply, ServiceError};
use crate::api::fields::is_id;
use crate::api::requests;
use crate::api::views::{CustomerView, DeletedView, List, PaymentMethodView};
use crate::store::{customers, CustomerRow, PaymentMethodRow, Unit};
use payhost_plugin_api::{
    ops, AttachPaymentMethod, CustomerRef, DetachPaymentMethod, PaymentMethod,
    SetDefaultPaymentMethod,
};

fn pm_row(customer: &CustomerRow, id: &str, pm: &PaymentMethod, now: i64) -> PaymentMethodRow {
    PaymentMethodRow {
        id: id.to_owned(),
        customer_id: customer.id.clone(),
        provider: customer.provider.clone(),
        provider_id: pm.id.clone(),
        kind: pm.kind.clone(),
        brand: pm.brand.clone(),
        last4: pm.last4.clone(),
        exp_month: i64::from(pm.exp_month),
        exp_year: i64::from(pm.exp_year),
        created_at: now,
    }
}

impl PaymentService {
    /// The payhost id of a provider payment method, when payhost has seen it; else the
    /// provider's id itself.
    pub(super) async fn pm_payhost_id(
        &self,
        provider: &str,
        provider_pm: &str,
    ) -> Result<String, ServiceError> {
        Ok(self
            .store
            .payment_method_by_provider_id(provider, provider_pm)
            .await?
            .map_or_else(|| provider_pm.to_owned(), |pm| pm.id))
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
        let row = if is_id(pm) {
            self.store.payment_method(pm).await?
        } else {
            None
        };
        match row {
            Some(r) if r.customer_id != customer.id => Err(ServiceError::invalid(
                "payment_method",
                format!("payment method '{pm}' belongs to another customer"),
            )),
            Some(r) => Ok(r.provider_id),
            None => Err(ServiceError::not_found(
                "payment method",
                "payment_method",
                pm,
            )),
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
        req: requests::PaymentMethodBody,
    ) -> Result<Reply<PaymentMethodView>, ServiceError> {
        let customer = self.customer(ctx, customer_id, "id").await?;
        let (attached, _) = self
            .call::<ops::AttachPaymentMethod>(
                &customer.provider,
                ctx.call_ctx(""),
                AttachPaymentMethod {
                    customer_id: customer.provider_id.clone(),
                    payment_method: req.payment_method.into_string(),
                },
            )
            .await?;
        let mut unit = Unit::new();
        let row = self
            .stage_payment_method(&mut unit, &customer, &attached)
            .await?;
        let reply = Reply::ok(PaymentMethodView::from(&row));
        self.finish(
            ctx,
            unit,
            &customer.provider,
            Facts::none(),
            &Ids::default(),
            reply,
        )
        .await
    }

    /// The method's row, added to `unit` when it is new.
    pub(super) async fn stage_payment_method(
        &self,
        unit: &mut Unit,
        customer: &CustomerRow,
        pm: &PaymentMethod,
    ) -> Result<PaymentMethodRow, ServiceError> {
        let known = self
            .store
            .payment_method_by_provider_id(&customer.provider, &pm.id)
            .await?;
        if let Some(known) = known {
            if known.customer_id != customer.id {
                return Err(ServiceError::ProviderIdConflict(format!(
                    "provider '{}' returned payment method '{}' for customer '{}', but payhost \
                     holds it for another customer; nothing was written",
                    customer.provider, pm.id, customer.id
                )));
            }
            return Ok(known);
        }
        let row = pm_row(customer, &new_id("pmeth"), pm, self.now());
        customers::insert_payment_method(unit, &row);
        Ok(row)
    }

    /// `GET /v1/customers/{id}/payment_methods`: the saved methods payhost holds; with
    /// `refresh`, the provider's list synced first (methods removed there are removed).
    ///
    /// # Errors
    /// Unknown customer, or (refreshing) the provider's error.
    pub async fn list_payment_methods(
        &self,
        ctx: &Ctx,
        customer_id: &str,
        refresh: bool,
    ) -> Result<List<PaymentMethodView>, ServiceError> {
        let customer = self.customer(ctx, customer_id, "id").await?;
        if refresh && self.supports(&customer.provider, "payment_methods")? {
            let (methods, _) = self
                .call::<ops::ListPaymentMethods>(
                    &customer.provider,
                    ctx.call_ctx(""),
                    CustomerRef {
                        customer_id: customer.provider_id.clone(),
                    },
                )
                .await?;
            let mut unit = Unit::new();
            for pm in &methods.data {
                self.stage_payment_method(&mut unit, &customer, pm).await?;
            }
            let now = self.now();
            for held in self.store.payment_methods_of(&customer.id).await? {
                if !methods.data.iter().any(|m| m.id == held.provider_id) {
                    customers::delete_payment_method(
                        &mut unit,
                        &customer.provider,
                        &held.provider_id,
                        now,
                    );
                }
            }
            self.store.commit(unit).await?;
        }
        let rows = self.store.payment_methods_of(&customer.id).await?;
        Ok(List::new(
            rows.iter().map(PaymentMethodView::from).collect(),
            false,
        ))
    }

    /// `DELETE /v1/customers/{id}/payment_methods/{pm}`: detaches the method at the
    /// provider and removes it here (and as the default).
    ///
    /// # Errors
    /// Unknown customer or method, or the provider's error.
    pub async fn detach_payment_method(
        &self,
        ctx: &Ctx,
        customer_id: &str,
        pm: &str,
    ) -> Result<Reply<DeletedView>, ServiceError> {
        let customer = self.customer(ctx, customer_id, "id").await?;
        let held = if is_id(pm) {
            self.store.payment_method(pm).await?
        } else {
            None
        };
        let held = held
            .filter(|r| r.customer_id == customer.id)
            .ok_or_else(|| ServiceError::not_found("payment method", "payment_method", pm))?;
        let asked = self
            .call::<ops::DetachPaymentMethod>(
                &customer.provider,
                ctx.call_ctx(""),
                DetachPaymentMethod {
                    customer_id: customer.provider_id.clone(),
                    payment_method: held.provider_id.clone(),
                },
            )
            .await;
        match asked {
            Ok(_) => {}
            Err(ServiceError::Call(crate::plugins::CallError::Plugin(e)))
                if e.is(payhost_plugin_api::codes::NOT_FOUND) => {}
            Err(e) => return Err(e),
        }
        let mut unit = Unit::new();
        customers::delete_payment_method(
            &mut unit,
            &customer.provider,
            &held.provider_id,
            self.now(),
        );
        let reply = Reply::ok(DeletedView {
            id: held.id.clone(),
            object: "payment_method",
            deleted: true,
        });
        self.finish(
            ctx,
            unit,
            &customer.provider,
            Facts::none(),
            &Ids::default(),
            reply,
        )
        .await
    }

    /// `POST /v1/customers/{id}/default_payment_method`.
    ///
    /// # Errors
    /// Unknown customer, a method of another customer, or the provider's error.
    pub async fn set_default_payment_method(
        &self,
        ctx: &Ctx,
        customer_id: &str,
        req: requests::PaymentMethodBody,
    ) -> Result<Reply<CustomerView>, ServiceError> {
        let customer = self.customer(ctx, customer_id, "id").await?;
        let pm = self
            .pm_provider_id(&customer, req.payment_method.as_str())
            .await?;
        let (fresh, _) = self
            .call::<ops::SetDefaultPaymentMethod>(
                &customer.provider,
                ctx.call_ctx(""),
                SetDefaultPaymentMethod {
                    customer_id: customer.provider_id.clone(),
                    payment_method: pm,
                },
            )
            .await?;
        self.sync_customer(ctx, customer, &fresh).await
    }
}
