//! Payments and refunds.

use super::customers::CreateCustomer;
use super::rows::{new_id, payment_cols, CustomerRow, PaymentRow};
use super::{metadata_json, Ctx, Ids, Kind, PaymentService, Reply, ServiceError};
use crate::store::{Arg, RowExt, Unit};
use payhost_plugin_api::{
    ops, ConfirmPayment as ConfirmRequest, Currency, DomainEventKind, DomainEventReport, Money,
    NewPayment, NewRefund, ObjectRef, Operation, Payment, PaymentStatus, Refund,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Largest amount accepted, in minor units (Stripe's limit for most currencies is lower).
const MAX_AMOUNT: i64 = 99_999_999_999;

const REFUND_REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// Who pays: an existing payhost customer, or an application user (created when new).
#[derive(Debug, Default, Deserialize)]
pub struct Payer {
    pub customer: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub provider: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    pub customer: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub provider: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayment {
    pub payment_method: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    pub payment: String,
    pub amount: Option<i64>,
    pub reason: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// What a new payment charges.
pub(super) struct Charge {
    pub amount: Money,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

pub(super) fn check_money(amount: i64, currency: &str) -> Result<Money, ServiceError> {
    let currency =
        Currency::parse(currency).map_err(|e| ServiceError::invalid("currency", e.to_string()))?;
    if amount <= 0 {
        return Err(ServiceError::invalid(
            "amount",
            format!("amount must be a positive number of minor units, got {amount}"),
        ));
    }
    if amount > MAX_AMOUNT {
        return Err(ServiceError::invalid(
            "amount",
            format!("amount must be at most {MAX_AMOUNT} minor units"),
        ));
    }
    Ok(Money::new(amount, currency))
}

/// The events a payment's state tells, as the provider would report them.
pub(super) fn payment_events(p: &Payment, created: bool, now: i64) -> Vec<DomainEventReport> {
    let report = |kind| {
        let mut r = DomainEventReport::new(kind, &p.id, now);
        r.customer_id = p.customer_id.clone();
        r.payment_id = Some(p.id.clone());
        r.amount = Some(p.amount.clone());
        r.status = Some(p.status.as_str().into());
        r.error = p.failure_message.clone();
        r
    };
    let mut out = Vec::new();
    if created {
        out.push(report(DomainEventKind::PaymentCreated));
    }
    match p.status {
        PaymentStatus::Succeeded => out.push(report(DomainEventKind::PaymentSucceeded)),
        PaymentStatus::Failed => out.push(report(DomainEventKind::PaymentFailed)),
        PaymentStatus::RequiresPaymentMethod
        | PaymentStatus::RequiresConfirmation
        | PaymentStatus::RequiresAction
        | PaymentStatus::Processing
        | PaymentStatus::RequiresCapture
        | PaymentStatus::Canceled
        | PaymentStatus::Unknown(_) => {}
    }
    out
}

/// The client secret a payment's next action carries, for the answer that created or
/// confirmed it.
pub(super) fn client_secret(p: &Payment) -> Option<String> {
    p.next_action
        .as_ref()
        .and_then(|a| a.client_secret())
        .map(str::to_owned)
}

fn refund_view(id: &str, payment: &PaymentRow, r: &Refund, created_at: i64) -> Value {
    json!({
        "id": id, "object": "refund", "payment": payment.id,
        "provider": payment.provider, "provider_id": r.id.as_str(),
        "amount": r.amount.amount, "currency": r.amount.currency.as_str(),
        "status": r.status.as_str(), "reason": r.reason.clone(), "created_at": created_at,
    })
}

impl PaymentService {
    /// The customer who pays: given by id, or the user's customer on the chosen provider.
    pub(super) async fn resolve_payer(
        &self,
        ctx: &Ctx,
        payer: Payer,
    ) -> Result<CustomerRow, ServiceError> {
        if let Some(id) = &payer.customer {
            let customer = self.customer(id, "customer").await?;
            if let Some(p) = payer
                .provider
                .as_deref()
                .filter(|p| *p != customer.provider)
            {
                return Err(ServiceError::invalid(
                    "provider",
                    format!(
                        "customer '{id}' belongs to provider '{}', not '{p}'",
                        customer.provider
                    ),
                ));
            }
            return Ok(customer);
        }
        let Some(user_id) = payer.user_id else {
            return Err(ServiceError::invalid(
                "customer",
                "give either 'customer' or 'user_id'",
            ));
        };
        let provider = self.pick_provider(ctx, payer.provider.as_deref())?;
        let email = match payer.email {
            Some(e) => e,
            None => self
                .store
                .one(
                    "SELECT email FROM users WHERE tenant = $1 AND user_id = $2",
                    vec![ctx.tenant_key().into(), user_id.clone().into()],
                )
                .await?
                .map(|r| r.text("email"))
                .transpose()?
                .unwrap_or_default(),
        };
        let req = CreateCustomer {
            user_id,
            email,
            name: payer.name,
            metadata: BTreeMap::new(),
            provider: Some(provider.clone()),
        };
        Ok(self.ensure_customer(ctx, &req, &provider).await?.0)
    }

    pub(super) async fn payment(
        &self,
        id: &str,
        param: &'static str,
    ) -> Result<PaymentRow, ServiceError> {
        let row = self
            .store
            .one(
                concat!("SELECT ", payment_cols!(), " FROM payments WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "payment",
                param,
                id: id.to_owned(),
            })?;
        Ok(PaymentRow::from_row(&row)?)
    }

    /// `POST /v1/payments`.
    ///
    /// # Errors
    /// Invalid input, an unknown customer or provider, or the provider's error. A declined
    /// card is not an error: the payment is recorded with status `failed`.
    pub async fn create_payment(
        &self,
        ctx: &Ctx,
        req: CreatePayment,
    ) -> Result<Reply, ServiceError> {
        let amount = check_money(req.amount, &req.currency)?;
        let payer = Payer {
            customer: req.customer,
            user_id: req.user_id,
            email: req.email,
            name: req.name,
            provider: req.provider,
        };
        let customer = self.resolve_payer(ctx, payer).await?;
        let pm = match &req.payment_method {
            Some(pm) => Some(self.pm_provider_id(&customer, pm).await?),
            None => None,
        };
        let charge = Charge {
            amount,
            payment_method: pm,
            description: req.description,
            metadata: req.metadata,
        };
        self.charge(ctx, &customer, charge, "").await
    }

    /// Creates a payment for `customer` and records it with its events.
    pub(super) async fn charge(
        &self,
        ctx: &Ctx,
        customer: &CustomerRow,
        charge: Charge,
        step: &str,
    ) -> Result<Reply, ServiceError> {
        let Charge {
            amount,
            payment_method,
            description,
            metadata,
        } = charge;
        let new = NewPayment {
            customer_id: Some(customer.provider_id.clone()),
            payment_method,
            description: description.clone(),
            metadata,
            ..NewPayment::new(amount)
        };
        let (p, emitted) = self
            .call::<ops::CreatePayment>(&customer.provider, ctx.call_ctx(step), new)
            .await?;
        self.check_new_provider_id(Kind::Payment, &customer.provider, &p.id)
            .await?;
        let now = self.now();
        let row = PaymentRow {
            id: new_id("pay"),
            tenant: ctx.tenant_key(),
            customer_id: customer.id.clone(),
            provider: customer.provider.clone(),
            provider_id: p.id.to_string(),
            amount: p.amount.amount,
            currency: p.amount.currency.as_str().to_owned(),
            amount_refunded: p.amount_refunded,
            status: p.status.as_str().to_owned(),
            payment_method: p.payment_method.clone(),
            failure_code: p.failure_code.clone(),
            failure_message: p.failure_message.clone(),
            description,
            metadata: metadata_json(&p.metadata),
            created_at: now,
            updated_at: now,
        };
        let mut unit = Unit::new();
        unit.push(
            concat!(
                "INSERT INTO payments (",
                payment_cols!(),
                ", synced_at) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)"
            ),
            vec![
                row.id.clone().into(),
                row.tenant.clone().into(),
                row.customer_id.clone().into(),
                row.provider.clone().into(),
                row.provider_id.clone().into(),
                row.amount.into(),
                row.currency.clone().into(),
                row.amount_refunded.into(),
                row.status.clone().into(),
                Arg::from(row.payment_method.clone()),
                Arg::from(row.failure_code.clone()),
                Arg::from(row.failure_message.clone()),
                Arg::from(row.description.clone()),
                row.metadata.clone().into(),
                now.into(),
                now.into(),
            ],
        );
        let mut events = payment_events(&p, true, now);
        events.extend(emitted);
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        let reply = Reply {
            status: 201,
            body: row.view(client_secret(&p)),
        };
        self.finish(ctx, unit, &customer.provider, events, &ids, reply)
            .await
    }

    /// Writes a payment's new provider state and the events its change tells.
    async fn sync_payment(
        &self,
        ctx: &Ctx,
        mut row: PaymentRow,
        p: Payment,
        emitted: Vec<DomainEventReport>,
    ) -> Result<Reply, ServiceError> {
        Self::check_same_object(Kind::Payment, &row.provider, &row.provider_id, &p.id)?;
        let now = self.now();
        let mut events = if row.status == p.status.as_str() {
            Vec::new()
        } else {
            payment_events(&p, false, now)
        };
        events.extend(emitted);
        row.status = p.status.as_str().to_owned();
        row.amount_refunded = row.amount_refunded.max(p.amount_refunded);
        row.payment_method = p.payment_method.clone().or(row.payment_method);
        row.failure_code = p.failure_code.clone();
        row.failure_message = p.failure_message.clone();
        row.updated_at = now;
        let mut unit = Unit::new();
        unit.push(
            "UPDATE payments SET status = $2, amount_refunded = $3, payment_method = $4, \
             failure_code = $5, failure_message = $6, updated_at = $7, synced_at = $7 WHERE id = $1",
            vec![
                row.id.clone().into(),
                row.status.clone().into(),
                row.amount_refunded.into(),
                Arg::from(row.payment_method.clone()),
                Arg::from(row.failure_code.clone()),
                Arg::from(row.failure_message.clone()),
                now.into(),
            ],
        );
        let customer = self.customer(&row.customer_id, "customer").await?;
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        let reply = Reply {
            status: 200,
            body: row.view(client_secret(&p)),
        };
        let provider = row.provider.clone();
        self.finish(ctx, unit, &provider, events, &ids, reply).await
    }

    /// Runs an operation on an existing payment's provider and syncs the answer.
    async fn payment_op<O: Operation<Response = Payment>>(
        &self,
        ctx: &Ctx,
        row: PaymentRow,
        request: O::Request,
    ) -> Result<Reply, ServiceError> {
        let (p, emitted) = self
            .call::<O>(&row.provider, ctx.call_ctx(""), request)
            .await?;
        self.sync_payment(ctx, row, p, emitted).await
    }

    /// `GET /v1/payments/{id}`: refreshed from the provider.
    ///
    /// # Errors
    /// Unknown id, or the provider's error.
    pub async fn get_payment(&self, ctx: &Ctx, id: &str) -> Result<Reply, ServiceError> {
        let row = self.payment(id, "id").await?;
        let request = ObjectRef::new(&row.provider_id);
        let mut reply = self
            .payment_op::<ops::GetPayment>(ctx, row, request)
            .await?;
        // A read never hands out the client secret again.
        reply.body["client_secret"] = Value::Null;
        Ok(reply)
    }

    /// `POST /v1/payments/{id}/confirm`, optionally with the method to charge.
    ///
    /// # Errors
    /// Unknown id, or the provider's error (e.g. a payment that cannot be confirmed now).
    pub async fn confirm_payment(
        &self,
        ctx: &Ctx,
        id: &str,
        req: ConfirmPayment,
    ) -> Result<Reply, ServiceError> {
        let row = self.payment(id, "id").await?;
        let pm = match &req.payment_method {
            Some(pm) => {
                let customer = self.customer(&row.customer_id, "customer").await?;
                Some(self.pm_provider_id(&customer, pm).await?)
            }
            None => None,
        };
        let request = ConfirmRequest {
            id: row.provider_id.clone(),
            payment_method: pm,
            return_url: None,
        };
        self.payment_op::<ops::ConfirmPayment>(ctx, row, request)
            .await
    }

    /// `POST /v1/payments/{id}/cancel`.
    ///
    /// # Errors
    /// Unknown id, or the provider's error (e.g. a payment that already succeeded).
    pub async fn cancel_payment(&self, ctx: &Ctx, id: &str) -> Result<Reply, ServiceError> {
        let row = self.payment(id, "id").await?;
        let request = ObjectRef::new(&row.provider_id);
        self.payment_op::<ops::CancelPayment>(ctx, row, request)
            .await
    }

    /// Attempts a failed payment again (dunning), with the customer's default payment
    /// method when there is one. Returns the payment's status afterwards.
    ///
    /// # Errors
    /// Unknown payment, or the provider's error.
    pub async fn retry_payment(&self, ctx: &Ctx, id: &str) -> Result<String, ServiceError> {
        let row = self.payment(id, "id").await?;
        if row.status == PaymentStatus::Succeeded.as_str() {
            return Ok(row.status);
        }
        let customer = self.customer(&row.customer_id, "customer").await?;
        let payment_method = match &customer.default_payment_method {
            Some(pm) => Some(self.pm_provider_id(&customer, pm).await?),
            None => None,
        };
        let reply = self
            .confirm_payment(ctx, id, ConfirmPayment { payment_method })
            .await?;
        Ok(reply.body["status"].as_str().unwrap_or_default().to_owned())
    }

    /// `POST /v1/refunds`: all of what remains, or part of it.
    ///
    /// # Errors
    /// Unknown payment, a payment that has not succeeded, an amount above what remains, an
    /// unknown reason, or the provider's error.
    pub async fn create_refund(&self, ctx: &Ctx, req: CreateRefund) -> Result<Reply, ServiceError> {
        let payment = self.payment(&req.payment, "payment").await?;
        if payment.status != PaymentStatus::Succeeded.as_str() {
            return Err(ServiceError::invalid(
                "payment",
                format!(
                    "payment '{}' cannot be refunded: its status is '{}', not 'succeeded'",
                    payment.id, payment.status
                ),
            ));
        }
        let remaining = payment.amount - payment.amount_refunded;
        if remaining <= 0 {
            return Err(ServiceError::invalid(
                "payment",
                format!("payment '{}' is already fully refunded", payment.id),
            ));
        }
        if let Some(a) = req.amount {
            if a <= 0 {
                return Err(ServiceError::invalid(
                    "amount",
                    format!("amount must be positive, got {a}"),
                ));
            }
            if a > remaining {
                return Err(ServiceError::invalid(
                    "amount",
                    format!("amount {a} exceeds the {remaining} that remains refundable on payment '{}'", payment.id),
                ));
            }
        }
        if let Some(r) = req
            .reason
            .as_deref()
            .filter(|r| !REFUND_REASONS.contains(r))
        {
            return Err(ServiceError::invalid(
                "reason",
                format!(
                    "unknown reason '{r}' (one of: {})",
                    REFUND_REASONS.join(", ")
                ),
            ));
        }
        let new = NewRefund {
            payment_id: payment.provider_id.clone(),
            amount: req.amount,
            reason: req.reason.clone(),
            metadata: req.metadata.clone(),
        };
        let (refund, emitted) = self
            .call::<ops::CreateRefund>(&payment.provider, ctx.call_ctx(""), new)
            .await?;
        // The provider's webhook may have told payhost of this refund first: then it is the
        // same refund (same payment), recorded once; another payment's is a repeated id.
        let known = self
            .store
            .one(
                "SELECT id, payment_id FROM refunds WHERE provider = $1 AND provider_id = $2",
                vec![payment.provider.clone().into(), refund.id.clone().into()],
            )
            .await?;
        let id = match known {
            Some(row) if row.text("payment_id")? == payment.id => row.text("id")?,
            Some(_) => {
                self.check_new_provider_id(Kind::Refund, &payment.provider, &refund.id)
                    .await?;
                new_id("rfnd")
            }
            None => new_id("rfnd"),
        };
        let now = self.now();
        let mut unit = Unit::new();
        unit.push(
            "INSERT INTO refunds (id, payment_id, provider, provider_id, amount, currency, status, \
             reason, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (provider, provider_id) DO NOTHING",
            vec![
                id.clone().into(),
                payment.id.clone().into(),
                payment.provider.clone().into(),
                refund.id.as_str().into(),
                refund.amount.amount.into(),
                refund.amount.currency.as_str().into(),
                refund.status.as_str().into(),
                Arg::from(refund.reason.clone()),
                metadata_json(&refund.metadata).into(),
                now.into(),
            ],
        );
        unit.push_if_changed(
            "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at = $3 WHERE id = $1",
            vec![payment.id.clone().into(), refund.amount.amount.into(), now.into()],
        );
        let customer = self.customer(&payment.customer_id, "customer").await?;
        let mut events = Vec::new();
        if refund.status == payhost_plugin_api::RefundStatus::Succeeded {
            let mut r = DomainEventReport::new(DomainEventKind::RefundProcessed, &refund.id, now);
            r.payment_id = Some(payment.provider_id.clone());
            r.customer_id = Some(customer.provider_id.clone());
            r.amount = Some(refund.amount.clone());
            r.status = Some("succeeded".into());
            events.push(r);
        }
        events.extend(emitted);
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&payment.provider_id, &payment.id)
            .with(refund.id.as_str(), &id);
        let reply = Reply {
            status: 201,
            body: refund_view(&id, &payment, &refund, now),
        };
        self.finish(ctx, unit, &payment.provider, events, &ids, reply)
            .await
    }

    /// `GET /v1/refunds/{id}`.
    ///
    /// # Errors
    /// Unknown id.
    pub async fn get_refund(&self, id: &str) -> Result<Reply, ServiceError> {
        let row = self
            .store
            .one(
                "SELECT r.id, r.payment_id, r.provider, r.provider_id, r.amount, r.currency, \
                 r.status, r.reason, r.created_at FROM refunds r WHERE r.id = $1",
                vec![id.into()],
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "refund",
                param: "id",
                id: id.to_owned(),
            })?;
        Ok(Reply {
            status: 200,
            body: json!({
                "id": row.text("id")?, "object": "refund", "payment": row.text("payment_id")?,
                "provider": row.text("provider")?, "provider_id": row.text("provider_id")?,
                "amount": row.int("amount")?, "currency": row.text("currency")?,
                "status": row.text("status")?, "reason": row.opt_text("reason")?,
                "created_at": row.int("created_at")?,
            }),
        })
    }
}
