//! The resolver's half of attempts: a payment whose outcome is unknown is asked about again
//! at the same instance with the same provider idempotency key (by the resolver on its
//! schedule, by `?refresh=true`, by a retry of its API request) until the instance says
//! what became of it; then it is recorded as charged or as not charged. Never elsewhere.

use super::attempts::{attempt_events, in_doubt_row, replace, settle, summary, Pending, State};
use super::payments::{payment_events, stored_next_action};
use super::{Ctx, Facts, Ids, PaymentService, Reply, ServiceError, Status};
use crate::api::views::PaymentView;
use crate::store::{attempts, payments, AttemptRow, CustomerRow, PaymentRow, Record, Unit};
use payhost_plugin_api::{
    codes, ops, DomainEventKind, DomainEventReport, Effect, Payment, PaymentStatus,
};

impl PaymentService {
    /// Seconds after which an attempt still `started` is surely not running any more:
    /// every call ends by its deadline and the second of grace after it; 4 s more for the
    /// clocks of several hosts to differ.
    pub fn unsettled_horizon(&self) -> i64 {
        let c = &self.config.config;
        let longest = c
            .providers
            .values()
            .filter_map(|p| p.call_timeout_ms)
            .chain([c.host.call_timeout_ms])
            .max()
            .unwrap_or(10_000);
        i64::try_from(longest.div_ceil(1000)).unwrap_or(60) + 5
    }

    /// The pause before the resolver's check number `n` (0-based), in seconds.
    pub(super) fn resolver_pause(&self, n: i64) -> u64 {
        self.config
            .config
            .routing
            .resolver
            .pause(u64::try_from(n).unwrap_or(0))
    }

    /// A retry of a request that made attempts: resumes its payment. `None` when it made
    /// none that count (every instance did nothing, or refused): start over.
    pub(super) async fn resume(
        &self,
        ctx: &Ctx,
        a: AttemptRow,
    ) -> Result<Option<Reply<PaymentView>>, ServiceError> {
        match a.state.as_str() {
            // Its first request may still be running (on this host or another): as for any
            // key in flight, the retry waits.
            "started" if self.now() - a.created_at < self.unsettled_horizon() => {
                Err(ServiceError::KeyInFlight(
                    ctx.idempotency
                        .as_ref()
                        .map_or_else(String::new, |s| s.key.clone()),
                ))
            }
            "started" | "in_doubt" => {
                let (view, settled) = self.resolve(a).await?;
                let Some(body) = view else { return Ok(None) };
                if !settled {
                    return Ok(Some(Reply {
                        status: Status::Accepted,
                        body,
                        stored: false,
                    }));
                }
                // Known now: the answer replaces the resume mark under the request's key.
                let reply = Reply {
                    status: Status::Created,
                    body,
                    stored: false,
                };
                let unit = Unit::new();
                self.finish(ctx, unit, "", Facts::default(), &Ids::default(), reply)
                    .await
                    .map(Some)
            }
            "answered" | "resolved" | "not_charged" => {
                let row = self.store.payment(&a.payment_id, None).await?;
                Ok(row.map(|r| Reply {
                    status: Status::Created,
                    body: PaymentView::from(&r),
                    stored: false,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Asks an attempt's instance again, with the same idempotency key, what became of
    /// it, and records what it learns. Returns the payment's view (`None` when it has no
    /// record and nothing was learnt) and whether its outcome is known now.
    ///
    /// # Errors
    /// A database failure.
    pub async fn resolve(
        &self,
        mut a: AttemptRow,
    ) -> Result<(Option<PaymentView>, bool), ServiceError> {
        let Ok(pending) = serde_json::from_str::<Pending>(&a.request) else {
            tracing::error!(attempt = %a.id, "an attempt's request does not decode; left for an operator");
            return Ok((None, false));
        };
        let ctx = payhost_plugin_api::CallCtx {
            idempotency_key: Some(a.provider_key.clone()),
            request_id: format!("resolve_{}", a.id),
            ..Default::default()
        };
        let outcome = self
            .call::<ops::CreatePayment>(&a.instance, ctx, pending.request.clone())
            .await;
        let row = self.store.payment(&a.payment_id, None).await?;
        let customer = self.owner(&pending.customer).await?;
        let now = self.now();
        let mut all = self.store.attempts_of(&a.payment_id).await?;
        match outcome {
            Ok((p, emitted)) => {
                a.checks += 1;
                settle(&mut a, State::Resolved, None, now);
                replace(&mut all, &a);
                tracing::info!(payment = %a.payment_id, provider = %a.instance, status = %p.status, "in-doubt payment resolved");
                self.record_resolved(&customer, row, &pending, p, emitted, &a, &all)
                    .await
                    .map(|v| (Some(v), true))
            }
            Err(ServiceError::Call(e)) if nothing_was_charged(&e) => {
                a.checks += 1;
                settle(
                    &mut a,
                    State::NotCharged,
                    Some((e.code().to_owned(), e.to_string())),
                    now,
                );
                replace(&mut all, &a);
                tracing::info!(payment = %a.payment_id, provider = %a.instance, error = %e, "in-doubt payment: the provider did nothing");
                self.record_not_charged(&customer, row, &pending, &e, &a, &all)
                    .await
                    .map(|v| (Some(v), true))
            }
            Err(ServiceError::Call(e)) => {
                let pause = self.resolver_pause(a.checks);
                a.checks += 1;
                settle(
                    &mut a,
                    State::InDoubt,
                    Some((e.code().to_owned(), e.to_string())),
                    now,
                );
                a.next_check_at = Some(now + i64::try_from(pause).unwrap_or(60));
                replace(&mut all, &a);
                let mut unit = Unit::new();
                attempts::update_attempt(&mut unit, &a);
                let row = match row {
                    Some(mut r) => {
                        r.attempts = summary(&all);
                        payments::set_attempts(&mut unit, &r.id, r.attempts.as_deref());
                        r
                    }
                    None => {
                        let r = in_doubt_row(
                            a.tenant.clone(),
                            &customer,
                            &a.payment_id,
                            &pending.request,
                            pending.request.description.clone(),
                            now,
                            &all,
                        );
                        payments::insert_payment(&mut unit, &r);
                        r
                    }
                };
                self.store.commit(unit).await?;
                tracing::warn!(payment = %a.payment_id, provider = %a.instance, checks = a.checks, next_in_secs = pause, error = %e, "payment still in doubt");
                Ok((Some(PaymentView::from(&row)), false))
            }
            Err(e) => Err(e),
        }
    }

    /// Records what an in-doubt payment turned out to be at its instance.
    #[allow(clippy::too_many_arguments)]
    async fn record_resolved(
        &self,
        customer: &CustomerRow,
        row: Option<PaymentRow>,
        pending: &Pending,
        p: Payment,
        emitted: Vec<DomainEventReport>,
        a: &AttemptRow,
        all: &[AttemptRow],
    ) -> Result<PaymentView, ServiceError> {
        let now = self.now();
        let existed = row.is_some();
        let mut unit = Unit::new();
        // A webhook may have told of the provider's payment first and payhost adopted it as
        // a record of its own: that record becomes this payment.
        if let Some(adopted) = self
            .store
            .id_by_provider_id(Record::Payment, &a.instance, &p.id)
            .await?
            .filter(|id| *id != a.payment_id)
        {
            payments::merge_adopted(&mut unit, &a.payment_id, &adopted);
        }
        let mut row = row.unwrap_or_else(|| {
            in_doubt_row(
                a.tenant.clone(),
                customer,
                &a.payment_id,
                &pending.request,
                pending.request.description.clone(),
                now,
                all,
            )
        });
        row.provider_id = p.id.clone();
        row.status = p.status.clone();
        row.amount_received = p.amount_received;
        row.amount_refunded = row.amount_refunded.max(p.amount_refunded);
        row.payment_method = p.payment_method.clone();
        row.failure_code = p.failure_code.clone();
        row.failure_message = p.failure_message.clone();
        row.next_action = stored_next_action(&p);
        row.updated_at = now;
        row.attempts = summary(all);
        if existed {
            payments::settle_in_doubt(&mut unit, &row);
        } else {
            payments::insert_payment(&mut unit, &row);
        }
        attempts::update_attempt(&mut unit, a);
        let mut ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&p.id, &row.id)
            .with(&row.id, &row.id);
        for t in all {
            ids = ids.with(&t.id, &row.id);
        }
        let facts = Facts {
            own: payment_events(&p, !existed, now),
            emitted,
            elsewhere: if existed {
                Vec::new()
            } else {
                attempt_events(&row.id, all, now)
            },
        };
        let ctx = Ctx {
            tenant: Some(row.tenant.clone()).filter(|t| !t.is_empty()),
            ..Ctx::default()
        };
        let reply = self
            .finish(
                &ctx,
                unit,
                &a.instance,
                facts,
                &ids,
                Reply::ok(PaymentView::from(&row)),
            )
            .await?;
        Ok(reply.body)
    }

    /// Records an in-doubt payment its instance says it never made: failed, nothing
    /// charged anywhere.
    async fn record_not_charged(
        &self,
        customer: &CustomerRow,
        row: Option<PaymentRow>,
        pending: &Pending,
        e: &crate::plugins::CallError,
        a: &AttemptRow,
        all: &[AttemptRow],
    ) -> Result<PaymentView, ServiceError> {
        let now = self.now();
        let existed = row.is_some();
        let mut row = row.unwrap_or_else(|| {
            in_doubt_row(
                a.tenant.clone(),
                customer,
                &a.payment_id,
                &pending.request,
                pending.request.description.clone(),
                now,
                all,
            )
        });
        row.status = PaymentStatus::Failed;
        row.failure_code = Some(e.code().to_owned());
        row.failure_message = Some(e.to_string());
        row.updated_at = now;
        row.attempts = summary(all);
        let mut unit = Unit::new();
        if existed {
            payments::settle_in_doubt(&mut unit, &row);
        } else {
            payments::insert_payment(&mut unit, &row);
        }
        attempts::update_attempt(&mut unit, a);
        let mut failed = DomainEventReport::new(DomainEventKind::PaymentFailed, &row.id, now);
        failed.customer_id = Some(customer.provider_id.clone());
        failed.payment_id = Some(row.id.clone());
        failed.amount = Some(pending.request.amount.clone());
        failed.status = Some(row.status.as_str().to_owned());
        failed.error = row.failure_message.clone();
        let mut ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.id, &row.id);
        for t in all {
            ids = ids.with(&t.id, &row.id);
        }
        let mut own = vec![failed];
        if !existed {
            let mut created = own[0].clone();
            created.kind = DomainEventKind::PaymentCreated;
            created.error = None;
            own.insert(0, created);
        }
        let facts = Facts {
            own,
            emitted: Vec::new(),
            elsewhere: attempt_events(&row.id, all, now),
        };
        let ctx = Ctx {
            tenant: Some(row.tenant.clone()).filter(|t| !t.is_empty()),
            ..Ctx::default()
        };
        let reply = self
            .finish(
                &ctx,
                unit,
                &a.instance,
                facts,
                &ids,
                Reply::ok(PaymentView::from(&row)),
            )
            .await?;
        Ok(reply.body)
    }
}

/// An answer to the same request under the same key that proves nothing was charged:
/// the provider refused the request itself (it would have refused the first one alike) or
/// declined it. Outages, limits, conflicts (the first request still running), credentials
/// say nothing about the first request.
fn nothing_was_charged(e: &crate::plugins::CallError) -> bool {
    matches!(e, crate::plugins::CallError::Plugin(p)
        if matches!(p.code.as_str(), codes::INVALID_REQUEST | codes::CARD_DECLINED | codes::NOT_FOUND)
            && p.effect != Some(Effect::Uncertain))
}
