//! One-time payments: created, confirmed (maybe after a redirect), captured when manual,
//! canceled; read from payhost's records.

use super::customers::{page, NewUser};
use super::{list, Ctx, Facts, Ids, PaymentService, Reply, ServiceError};
use crate::api::fields::{is_id, Description, Metadata, Url};
use crate::api::requests::{self, CaptureMethod, PageParams, PaymentFilters};
use crate::api::views::{next_action_of, List, PaymentView};
use crate::store::{payments, CustomerRow, PaymentQuery, PaymentRow, Record, Unit};
use payhost_plugin_api::{
    ops, CapturePayment as CaptureRequest, ConfirmPayment as ConfirmRequest, DomainEventKind,
    DomainEventReport, Money, NewPayment, ObjectRef, Operation, Payment, PaymentStatus,
};

/// What a new payment charges.
pub(super) struct Charge {
    pub amount: Money,
    pub capture_method: CaptureMethod,
    pub payment_method: Option<String>,
    pub return_url: Option<Url>,
    pub cancel_url: Option<Url>,
    pub description: Option<Description>,
    pub metadata: Metadata,
}

impl Charge {
    /// The provider's request for `customer` (at the instance it belongs to).
    pub(super) fn new_payment(&self, customer: &CustomerRow) -> NewPayment {
        NewPayment {
            customer_id: (!customer.host_kept).then(|| customer.provider_id.clone()),
            payer: payhost_plugin_api::Payer {
                email: Some(customer.email.clone()).filter(|e| !e.is_empty()),
                name: customer.name.clone(),
            },
            capture_method: match self.capture_method {
                CaptureMethod::Automatic => payhost_plugin_api::CaptureMethod::Automatic,
                CaptureMethod::Manual => payhost_plugin_api::CaptureMethod::Manual,
            },
            payment_method: self.payment_method.clone(),
            return_url: self.return_url.clone().map(Url::into_string),
            cancel_url: self.cancel_url.clone().map(Url::into_string),
            description: self.description(),
            metadata: self.metadata.clone().into_map(),
            ..NewPayment::new(self.amount.clone())
        }
    }

    pub(super) fn description(&self) -> Option<String> {
        self.description.clone().map(Description::into_string)
    }
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
        PaymentStatus::RequiresCapture => out.push(report(DomainEventKind::PaymentAuthorized)),
        PaymentStatus::Canceled => out.push(report(DomainEventKind::PaymentCanceled)),
        PaymentStatus::Expired => out.push(report(DomainEventKind::PaymentExpired)),
        PaymentStatus::RequiresPaymentMethod
        | PaymentStatus::RequiresConfirmation
        | PaymentStatus::RequiresAction
        | PaymentStatus::Processing
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

/// The stored form of a provider's next action: what to do, never a secret.
pub(super) fn stored_next_action(p: &Payment) -> Option<String> {
    p.next_action
        .as_ref()
        .and_then(|a| serde_json::to_string(&next_action_of(a)).ok())
}

impl PaymentService {
    /// The payment `id`, within the caller's tenant.
    pub(super) async fn payment(
        &self,
        ctx: &Ctx,
        id: &str,
        param: &'static str,
    ) -> Result<PaymentRow, ServiceError> {
        let row = if is_id(id) {
            self.store.payment(id, ctx.scope()).await?
        } else {
            None
        };
        let row = row.ok_or_else(|| ServiceError::not_found("payment", param, id))?;
        crate::telemetry::note("payment_id", &row.id);
        crate::telemetry::note("provider", &row.provider);
        Ok(row)
    }

    /// Links `span` to the span of the request that created payment `id`, when that
    /// request was traced (a webhook's processing, a delivery about the payment).
    pub async fn link_to_payment(&self, span: &tracing::Span, id: &str) {
        if let Ok(Some(parent)) = self.store.payment_trace(id).await {
            crate::telemetry::link(span, &parent);
        }
    }

    /// `POST /v1/payments`.
    ///
    /// # Errors
    /// An unknown customer or provider, a capture no instance of the route can do, or the
    /// provider's error. A declined card is not an error: the payment is recorded with
    /// status `failed`.
    pub async fn create_payment(
        &self,
        ctx: &Ctx,
        req: requests::CreatePayment,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        let user = req.user_id.map(|user_id| NewUser {
            user_id,
            email: req.email,
            name: req.name,
            metadata: Default::default(),
        });
        let (who, pm) = self
            .who_pays(
                ctx,
                req.customer.map(|c| c.into_string()),
                user,
                req.provider.map(|p| p.into_string()),
                req.payment_method.as_ref().map(|p| p.as_str()),
            )
            .await?;
        let charge = Charge {
            amount: Money::new(req.amount.get(), req.currency.currency().clone()),
            capture_method: req.capture_method,
            payment_method: pm,
            return_url: req.return_url,
            cancel_url: req.cancel_url,
            description: req.description,
            metadata: req.metadata,
        };
        self.charge(ctx, who, charge, "").await
    }

    /// Writes a payment's new provider state and the events its change tells.
    async fn sync_payment(
        &self,
        ctx: &Ctx,
        mut row: PaymentRow,
        p: Payment,
        emitted: Vec<DomainEventReport>,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        Self::check_same_object(Record::Payment, &row.provider, &row.provider_id, &p.id)?;
        let now = self.now();
        let own = if row.status == p.status {
            Vec::new()
        } else {
            payment_events(&p, false, now)
        };
        let facts = Facts {
            own,
            emitted,
            ..Facts::default()
        };
        row.status = p.status.clone();
        row.amount_received = p.amount_received;
        row.amount_refunded = row.amount_refunded.max(p.amount_refunded);
        row.next_action = stored_next_action(&p);
        row.payment_method = p.payment_method.clone().or(row.payment_method);
        row.failure_code = p.failure_code.clone();
        row.failure_message = p.failure_message.clone();
        row.updated_at = now;
        let mut unit = Unit::new();
        payments::update_payment_state(&mut unit, &row);
        let customer = self.owner(&row.customer_id).await?;
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        let mut view = PaymentView::from(&row);
        view.client_secret = client_secret(&p);
        let provider = row.provider.clone();
        self.finish(ctx, unit, &provider, facts, &ids, Reply::ok(view))
            .await
    }

    /// Runs an operation on an existing payment's provider and syncs the answer.
    ///
    /// # Errors
    /// The payment's creation is in doubt (nothing to act on yet), or the provider's error.
    async fn payment_op<O: Operation<Response = Payment>>(
        &self,
        ctx: &Ctx,
        row: PaymentRow,
        request: O::Request,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        if row.provider_id_unknown() {
            return Err(ServiceError::state(
                None,
                format!(
                    "payment '{}' is processing: provider '{}' has not told yet whether it \
                     took it (payhost is asking); try again once it has",
                    row.id, row.provider
                ),
            ));
        }
        let (p, emitted) = self
            .call::<O>(&row.provider, ctx.call_ctx(""), request)
            .await?;
        self.sync_payment(ctx, row, p, emitted).await
    }

    /// `GET /v1/payments/{id}`: payhost's record; with `refresh`, the provider's state
    /// synced first.
    ///
    /// # Errors
    /// Unknown id, or (refreshing) the provider's error.
    pub async fn get_payment(
        &self,
        ctx: &Ctx,
        id: &str,
        refresh: bool,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        let row = self.payment(ctx, id, "id").await?;
        if !refresh {
            return Ok(Reply::ok(PaymentView::from(&row)));
        }
        if row.provider_id_unknown() {
            // In doubt: refreshing is asking its instance what became of it.
            if let Some(a) = self.store.last_attempt(&row.id).await? {
                if let (Some(view), _) = self.resolve(a).await? {
                    return Ok(Reply::ok(view));
                }
            }
            return Ok(Reply::ok(PaymentView::from(&row)));
        }
        let request = ObjectRef::new(&row.provider_id);
        let mut reply = self
            .payment_op::<ops::GetPayment>(ctx, row, request)
            .await?;
        // A read never hands out the client secret again.
        reply.body.client_secret = None;
        Ok(reply)
    }

    /// `GET /v1/payments`: newest first.
    ///
    /// # Errors
    /// An unknown cursor, or a database failure.
    pub async fn list_payments(
        &self,
        ctx: &Ctx,
        f: PaymentFilters,
        p: &PageParams,
    ) -> Result<List<PaymentView>, ServiceError> {
        if let Some(p) = &f.provider {
            self.check_provider(p.as_str())?;
        }
        let q = PaymentQuery {
            tenant: ctx.tenant.clone(),
            customer_id: f.customer.map(|c| c.into_string()),
            status: f.status.map(|s| s.into_string()),
            provider: f.provider.map(|p| p.into_string()),
            created_gte: f.created_gte.map(|t| t.get()),
            created_lte: f.created_lte.map(|t| t.get()),
        };
        let rows = self.store.payments(&q, &page(p)).await?;
        Ok(list(rows))
    }

    /// `POST /v1/payments/{id}/confirm`, optionally with the method to charge.
    ///
    /// # Errors
    /// Unknown id, or the provider's error (e.g. a payment that cannot be confirmed now).
    pub async fn confirm_payment(
        &self,
        ctx: &Ctx,
        id: &str,
        req: requests::ConfirmPayment,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        let row = self.payment(ctx, id, "id").await?;
        let pm = match &req.payment_method {
            Some(pm) => {
                let customer = self.owner(&row.customer_id).await?;
                Some(self.pm_provider_id(&customer, pm.as_str()).await?)
            }
            None => None,
        };
        let request = ConfirmRequest {
            id: row.provider_id.clone(),
            payment_method: pm,
            return_url: req.return_url.map(Url::into_string),
        };
        self.payment_op::<ops::ConfirmPayment>(ctx, row, request)
            .await
    }

    /// `POST /v1/payments/{id}/capture`: takes what a manual payment authorized, or part of
    /// it (the rest is released).
    ///
    /// # Errors
    /// Unknown id, a payment that is not authorized, an amount above the authorization, or
    /// the provider's error.
    pub async fn capture_payment(
        &self,
        ctx: &Ctx,
        id: &str,
        req: requests::CapturePayment,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        let row = self.payment(ctx, id, "id").await?;
        if row.status != PaymentStatus::RequiresCapture {
            return Err(ServiceError::state(
                None,
                format!(
                    "payment '{}' cannot be captured: its status is '{}', not 'requires_capture'",
                    row.id, row.status
                ),
            ));
        }
        if let Some(a) = req.amount.filter(|a| a.get() > row.amount) {
            return Err(ServiceError::state(
                Some("amount"),
                format!(
                    "amount {} exceeds the {} authorized on payment '{}'",
                    a.get(),
                    row.amount,
                    row.id
                ),
            ));
        }
        let request = CaptureRequest {
            id: row.provider_id.clone(),
            amount: req.amount.map(|a| a.get()),
        };
        self.payment_op::<ops::CapturePayment>(ctx, row, request)
            .await
    }

    /// `POST /v1/payments/{id}/cancel`.
    ///
    /// # Errors
    /// Unknown id, or the provider's error (e.g. a payment that already succeeded).
    pub async fn cancel_payment(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        let row = self.payment(ctx, id, "id").await?;
        let done = [
            PaymentStatus::Succeeded,
            PaymentStatus::Canceled,
            PaymentStatus::Expired,
        ];
        if done.contains(&row.status) {
            return Err(ServiceError::state(
                None,
                format!(
                    "payment '{}' cannot be canceled: its status is '{}'",
                    row.id, row.status
                ),
            ));
        }
        let request = ObjectRef::new(&row.provider_id);
        self.payment_op::<ops::CancelPayment>(ctx, row, request)
            .await
    }

    /// Attempts a failed payment again (dunning), with the customer's default payment
    /// method when there is one. Returns the payment's status afterwards.
    ///
    /// # Errors
    /// Unknown payment, or the provider's error.
    pub async fn retry_payment(&self, ctx: &Ctx, id: &str) -> Result<PaymentStatus, ServiceError> {
        let row = self.payment(ctx, id, "id").await?;
        if row.status == PaymentStatus::Succeeded {
            return Ok(row.status);
        }
        let customer = self.owner(&row.customer_id).await?;
        let payment_method = match &customer.default_payment_method {
            Some(pm) => Some(self.pm_provider_id(&customer, pm).await?),
            None => None,
        };
        let request = ConfirmRequest {
            id: row.provider_id.clone(),
            payment_method,
            return_url: None,
        };
        let reply = self
            .payment_op::<ops::ConfirmPayment>(ctx, row, request)
            .await?;
        Ok(reply.body.status)
    }
}
