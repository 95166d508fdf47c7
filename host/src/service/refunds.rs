//! Refunds: made through the API or elsewhere (a webhook tells), recorded once either way.

use super::customers::page;
use super::{
    list, metadata_json, new_id, Ctx, Facts, Ids, PaymentService, Reply, ServiceError, Status,
};
use crate::api::fields::is_id;
use crate::api::requests::{self, PageParams, RefundFilters};
use crate::api::views::{List, RefundView};
use crate::store::{refunds, CustomerRow, PaymentRow, Record, RefundQuery, RefundRow, Unit};
use payhost_plugin_api::{
    ops, Currency, DomainEventKind, DomainEventReport, NewRefund, PaymentStatus, Refund, RefundRef,
    RefundStatus,
};

/// The pauses between reads of an unsettled refund, in seconds: a minute, ten, an hour,
/// six; then daily until it settles (bank refunds can take weeks).
const CHECK_PAUSES: &[i64] = &[60, 600, 3_600, 21_600, 86_400];

/// The pause after read number `checks` (0 before the first).
pub fn refund_check_pause(checks: i64) -> i64 {
    let i = usize::try_from(checks)
        .unwrap_or(0)
        .min(CHECK_PAUSES.len() - 1);
    CHECK_PAUSES[i]
}

/// The facts a refund's new status tells: `RefundProcessed` once it succeeded,
/// `RefundFailed` once it failed or was canceled; nothing while it is unsettled.
fn refund_facts(refund: &Refund, customer: &str, now: i64) -> Vec<DomainEventReport> {
    let kind = match refund.status {
        RefundStatus::Succeeded => DomainEventKind::RefundProcessed,
        RefundStatus::Failed | RefundStatus::Canceled => DomainEventKind::RefundFailed,
        _ => return Vec::new(),
    };
    let mut r = DomainEventReport::new(kind, &refund.id, now);
    r.payment_id = Some(refund.payment_id.clone());
    r.customer_id = Some(customer.to_owned());
    r.amount = Some(refund.amount.clone());
    r.status = Some(refund.status.as_str().to_owned());
    r.reason = refund.reason.clone();
    vec![r]
}

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
        // An unsettled refund is read back until it settles, if its plugin can be asked.
        let instance = self.registry.get(&payment.provider)?;
        let next_check_at = (refunds::unsettled(&refund.status) && instance.speaks(2))
            .then(|| self.now() + refund_check_pause(0));
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
            checks: 0,
            next_check_at,
            tenant: payment.tenant.clone(),
        };
        let mut unit = Unit::new();
        refunds::insert_refund(&mut unit, &row);
        let customer = self.owner(&payment.customer_id).await?;
        let facts = Facts {
            own: refund_facts(&refund, &customer.provider_id, self.now()),
            emitted,
            ..Facts::default()
        };
        let ids = refund_ids(&customer, &payment, &refund.id, &row.id);
        let reply = Reply {
            status: Status::Created,
            body: RefundView::from(&row),
            stored: false,
        };
        self.finish(ctx, unit, &payment.provider, facts, &ids, reply)
            .await
    }

    /// `GET /v1/refunds/{id}`: payhost's record; with `refresh`, read from its provider
    /// first (an unsettled refund settles if the provider says so).
    ///
    /// # Errors
    /// Unknown id, or (refreshing) the provider's error.
    pub async fn get_refund(
        &self,
        ctx: &Ctx,
        id: &str,
        refresh: bool,
    ) -> Result<Reply<RefundView>, ServiceError> {
        let row = if is_id(id) {
            self.store.refund(id, ctx.scope()).await?
        } else {
            None
        };
        let row = row.ok_or_else(|| ServiceError::not_found("refund", "id", id))?;
        if !refresh {
            return Ok(Reply::ok(RefundView::from(&row)));
        }
        let row = self.refresh_refund(ctx, row).await?;
        Ok(Reply::ok(RefundView::from(&row)))
    }

    /// Reads refund `row` from its provider and records what changed: a new status (with
    /// `RefundProcessed` or `RefundFailed`, and the amount given back to the payment for a
    /// failed one), or, while still unsettled, when to read it next. The refund checker
    /// calls it for due refunds; `?refresh=true` for one.
    ///
    /// # Errors
    /// The provider's error (the next read is still scheduled), or a database failure.
    pub async fn refresh_refund(
        &self,
        ctx: &Ctx,
        row: RefundRow,
    ) -> Result<RefundRow, ServiceError> {
        let payment = self
            .store
            .payment(&row.payment_id, None)
            .await?
            .ok_or_else(|| ServiceError::not_found("payment", "payment", &row.payment_id))?;
        let request = RefundRef {
            id: row.provider_id.clone(),
            payment_id: payment.provider_id.clone(),
        };
        let answer = self
            .call::<ops::GetRefund>(&row.provider, ctx.call_ctx(""), request)
            .await;
        let now = self.now();
        let (refund, emitted) = match answer {
            Ok(a) => a,
            Err(e) => {
                if row.next_check_at.is_some() {
                    let mut unit = Unit::new();
                    let next = now + refund_check_pause(row.checks + 1);
                    refunds::reschedule_refund(&mut unit, &row.id, row.checks + 1, Some(next));
                    self.store.commit(unit).await?;
                }
                return Err(e);
            }
        };
        Self::check_same_object(Record::Refund, &row.provider, &row.provider_id, &refund.id)?;
        let mut unit = Unit::new();
        let mut fresh = row.clone();
        // Any change the rules allow, between unsettled states too (`pending` →
        // `requires_action`); still unsettled, the next read is scheduled.
        if changes(&row.status, &refund.status) {
            refunds::settle_refund(
                &mut unit,
                &row.provider,
                &row.provider_id,
                &refund.status,
                now,
            );
            fresh.status = refund.status.clone();
            fresh.next_check_at = None;
        }
        if refunds::unsettled(&refund.status) {
            fresh.checks += 1;
            fresh.next_check_at = Some(now + refund_check_pause(fresh.checks));
            refunds::reschedule_refund(&mut unit, &row.id, fresh.checks, fresh.next_check_at);
        }
        let customer = self.owner(&payment.customer_id).await?;
        let facts = Facts {
            own: if changes(&row.status, &refund.status) {
                refund_facts(&refund, &customer.provider_id, now)
            } else {
                Vec::new()
            },
            emitted,
            ..Facts::default()
        };
        let ids = refund_ids(&customer, &payment, &refund.id, &row.id);
        let reply = Reply::ok(RefundView::from(&fresh));
        self.finish(ctx, unit, &row.provider, facts, &ids, reply)
            .await?;
        Ok(fresh)
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

/// The provider's ids a refund's facts name, with payhost's for each.
fn refund_ids(customer: &CustomerRow, payment: &PaymentRow, refund: &str, row: &str) -> Ids {
    Ids::default()
        .with(&customer.provider_id, &customer.id)
        .with(&payment.provider_id, &payment.id)
        .with(refund, row)
}

/// Whether a refund in status `from` takes status `to` (as [`refunds::settle_refund`]
/// decides in the database).
fn changes(from: &RefundStatus, to: &RefundStatus) -> bool {
    from != to
        && (refunds::unsettled(from)
            || (*from == RefundStatus::Succeeded && *to == RefundStatus::Failed))
}
