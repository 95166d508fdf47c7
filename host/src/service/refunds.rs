//! Refunds: made through the API or elsewhere (a webhook tells), recorded once either way.

use super::customers::page;
use super::{
    list, metadata_json, new_id, Ctx, Facts, Ids, PaymentService, Reply, ServiceError, Status,
};
use crate::api::fields::is_id;
use crate::api::requests::{self, PageParams, RefundFilters};
use crate::api::views::{List, RefundView};
use crate::store::{refunds, Record, RefundQuery, RefundRow, Unit};
use payhost_plugin_api::{
    ops, Currency, DomainEventKind, DomainEventReport, NewRefund, PaymentStatus, RefundStatus,
};

impl PaymentService {
    /// `POST /v1/refunds`: all of what remains, or part of it.
    ///
    /// # Errors
    /// Unknown payment, a payment that has not succeeded or has nothing left to refund, an
    /// amount above what remains, or the provider's error.
    pub async fn create_refund(
        &self,
        ctx: &Ctx,
        req: requests::CreateRefund,
    ) -> Result<Reply<RefundView>, ServiceError> {
        let payment = self.payment(ctx, req.payment.as_str(), "payment").await?;
        if payment.status != PaymentStatus::Succeeded {
            return Err(ServiceError::state(
                Some("payment"),
                format!(
                    "payment '{}' cannot be refunded: its status is '{}', not 'succeeded'",
                    payment.id, payment.status
                ),
            ));
        }
        // What was taken; a provider that does not say took the whole amount.
        let received = match payment.amount_received {
            0 => payment.amount,
            r => r,
        };
        let remaining = received - payment.amount_refunded;
        if remaining <= 0 {
            return Err(ServiceError::state(
                Some("payment"),
                format!("payment '{}' is already fully refunded", payment.id),
            ));
        }
        if let Some(a) = req.amount.filter(|a| a.get() > remaining) {
            return Err(ServiceError::state(
                Some("amount"),
                format!(
                    "amount {} exceeds the {remaining} that remains refundable on payment '{}'",
                    a.get(),
                    payment.id
                ),
            ));
        }
        // The currency goes to plugins that know the field (2.2): an older one would refuse
        // the request naming it.
        let currency = self
            .registry
            .get(&payment.provider)?
            .speaks(2)
            .then(|| Currency::parse(&payment.currency).ok())
            .flatten();
        let new = NewRefund {
            payment_id: payment.provider_id.clone(),
            amount: req.amount.map(|a| a.get()),
            reason: req.reason.map(|r| r.as_str().to_owned()),
            metadata: req.metadata.into_map(),
            currency,
        };
        let (refund, emitted) = self
            .call::<ops::CreateRefund>(&payment.provider, ctx.call_ctx(""), new)
            .await?;
        // The provider's webhook may have told payhost of this refund first: then it is the
        // same refund (same payment), recorded once; another payment's is a repeated id.
        let known = self
            .store
            .refund_by_provider_id(&payment.provider, &refund.id)
            .await?;
        let (id, created_at) = match known {
            Some(r) if r.payment_id == payment.id => (r.id, r.created_at),
            Some(_) => {
                self.check_new_provider_id(Record::Refund, &payment.provider, &refund.id)
                    .await?;
                (new_id("rfnd"), self.now())
            }
            None => (new_id("rfnd"), self.now()),
        };
        let row = RefundRow {
            id,
            payment_id: payment.id.clone(),
            provider: payment.provider.clone(),
            provider_id: refund.id.clone(),
            amount: refund.amount.amount,
            currency: refund.amount.currency.as_str().to_owned(),
            status: refund.status.clone(),
            reason: refund.reason.clone(),
            metadata: metadata_json(&refund.metadata),
            created_at,
            tenant: payment.tenant.clone(),
        };
        let mut unit = Unit::new();
        refunds::insert_refund(&mut unit, &row);
        let customer = self.owner(&payment.customer_id).await?;
        let mut own = Vec::new();
        if refund.status == RefundStatus::Succeeded {
            let now = self.now();
            let mut r = DomainEventReport::new(DomainEventKind::RefundProcessed, &refund.id, now);
            r.payment_id = Some(payment.provider_id.clone());
            r.customer_id = Some(customer.provider_id.clone());
            r.amount = Some(refund.amount.clone());
            r.status = Some("succeeded".into());
            r.reason = refund.reason.clone();
            own.push(r);
        }
        let facts = Facts {
            own,
            emitted,
            ..Facts::default()
        };
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&payment.provider_id, &payment.id)
            .with(&refund.id, &row.id);
        let reply = Reply {
            status: Status::Created,
            body: RefundView::from(&row),
            stored: false,
        };
        self.finish(ctx, unit, &payment.provider, facts, &ids, reply)
            .await
    }

    /// `GET /v1/refunds/{id}`.
    ///
    /// # Errors
    /// Unknown id.
    pub async fn get_refund(&self, ctx: &Ctx, id: &str) -> Result<Reply<RefundView>, ServiceError> {
        let row = if is_id(id) {
            self.store.refund(id, ctx.scope()).await?
        } else {
            None
        };
        row.map(|r| Reply::ok(RefundView::from(&r)))
            .ok_or_else(|| ServiceError::not_found("refund", "id", id))
    }

    /// `GET /v1/refunds`: newest first, of one payment or all.
    ///
    /// # Errors
    /// An unknown cursor, or a database failure.
    pub async fn list_refunds(
        &self,
        ctx: &Ctx,
        f: RefundFilters,
        p: &PageParams,
    ) -> Result<List<RefundView>, ServiceError> {
        let q = RefundQuery {
            tenant: ctx.tenant.clone(),
            payment_id: f.payment.map(|p| p.into_string()),
        };
        let rows = self.store.refunds(&q, &page(p)).await?;
        Ok(list(rows))
    }
}
