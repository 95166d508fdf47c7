//! A new payment, tried on the instances of its route in turn, each try an *attempt*
//! recorded before its call (so a crash mid-call leaves evidence) and settled with its
//! outcome. Money moves at most once:
//!
//! - an attempt that did nothing at its provider (unreachable, no free slot, circuit open,
//!   a refusal of the instance's own credentials or pace) is settled `not_sent` and the
//!   next candidate takes the payment; so does a decline its operator lists as soft;
//! - an attempt whose outcome is unknown (no answer after the request left) is never
//!   followed by another: the payment is recorded `processing` with the attempt
//!   `in_doubt`, the caller gets 202, and the resolver asks the same instance with the same
//!   provider idempotency key until it learns what happened (`resolve`);
//! - an answer (a payment in any status, a decline, a refusal of the request) is final.
//!
//! A retry of the API request with the same Idempotency-Key resumes the payment it made:
//! in doubt, it asks the same instance at once; it never starts over elsewhere.

use super::customers::Who;
use super::payments::{client_secret, payment_events, stored_next_action, Charge};
use super::routes::Miss;
use super::{new_id, Ctx, Facts, Ids, PaymentService, Reply, ServiceError, Status};
use crate::api::views::{AttemptView, PaymentView};
use crate::config::routing::Facts as RouteFacts;
use crate::routing::Decision;
use crate::store::{attempts, payments, AttemptRow, CustomerRow, PaymentRow, Record, Unit};
use payhost_plugin_api::{
    ops, DomainEventKind, DomainEventReport, Effect, NewPayment, Payment, PaymentStatus,
};
use serde::{Deserialize, Serialize};

/// An attempt's state (the `state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Started,
    Answered,
    SoftDeclined,
    NotSent,
    Refused,
    InDoubt,
    Resolved,
    NotCharged,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Answered => "answered",
            State::SoftDeclined => "soft_declined",
            State::NotSent => "not_sent",
            State::Refused => "refused",
            State::InDoubt => "in_doubt",
            State::Resolved => "resolved",
            State::NotCharged => "not_charged",
        }
    }
}

/// What an attempt keeps to be made again, and its answer recorded, by whoever learns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Pending {
    /// payhost's customer at the attempt's instance.
    pub customer: String,
    pub request: NewPayment,
}

/// The attempts as the payment's answers show them.
pub(super) fn summary(all: &[AttemptRow]) -> Option<String> {
    let views: Vec<AttemptView> = all.iter().map(AttemptView::from).collect();
    serde_json::to_string(&views).ok()
}

/// The facts the host records of its own attempts: one `PaymentAttemptFailed` per failed
/// attempt (at its instance), a `PaymentRerouted` when the payment went on elsewhere.
pub(super) fn attempt_events(
    payment_id: &str,
    all: &[AttemptRow],
    now: i64,
) -> Vec<(String, DomainEventReport)> {
    let mut out = Vec::new();
    for (i, a) in all.iter().enumerate() {
        let failed = matches!(
            a.state.as_str(),
            "not_sent" | "soft_declined" | "in_doubt" | "not_charged"
        );
        if failed {
            let mut r = DomainEventReport::new(DomainEventKind::PaymentAttemptFailed, &a.id, now);
            r.payment_id = Some(payment_id.to_owned());
            r.status = Some(a.state.clone());
            r.error = a
                .error_code
                .as_ref()
                .map(|c| format!("{c}: {}", a.error_message.clone().unwrap_or_default()));
            out.push((a.instance.clone(), r));
        }
        if let Some(prev) = i.checked_sub(1).map(|p| &all[p]) {
            let mut r = DomainEventReport::new(DomainEventKind::PaymentRerouted, &a.id, now);
            r.payment_id = Some(payment_id.to_owned());
            r.reason = Some(format!(
                "from '{}' ({}) to '{}'",
                prev.instance, prev.state, a.instance
            ));
            out.push((a.instance.clone(), r));
        }
    }
    out
}

impl PaymentService {
    /// Creates a payment on its route: the first candidate that answers takes it.
    ///
    /// # Errors
    /// The route has no instance that can take it, every candidate failed without doing
    /// anything, or the provider refused the request (its error). A decline is not an
    /// error: the payment is recorded `failed`. An unknown outcome is not an error either:
    /// the payment is recorded `processing`, answered with 202.
    pub(super) async fn charge(
        &self,
        ctx: &Ctx,
        who: Who,
        charge: Charge,
        step: &str,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        let slot = ctx.idempotency.as_ref();
        let keyed = ctx.call_ctx(step).idempotency_key;
        if let Some(payment) = &ctx.resume {
            if let Some(a) = self.store.last_attempt(payment).await? {
                if let Some(reply) = self.resume(ctx, a).await? {
                    return Ok(reply);
                }
            }
        }
        let payment_id = new_id(super::PAYMENT_ID_PREFIX);
        crate::telemetry::note("payment_id", &payment_id);
        let provider_key = keyed.unwrap_or_else(|| format!("payhost_{payment_id}"));
        let decision = self.payment_route(ctx, &who, &charge, &provider_key)?;
        if decision.candidates.is_empty() {
            return Err(self.unroutable(&decision));
        }
        let last = decision.candidates.len() - 1;
        crate::telemetry::note("provider", &decision.candidates[0]);
        // With another instance on the route, an attempt is written before its call: if
        // this host dies mid-call, the record keeps a retry (and the resolver) at the
        // instance that may have charged. A route of one instance sends every retry there
        // anyway: its attempt is written with its outcome, saving a commit per payment.
        let first_written = decision.candidates.len() + decision.skipped.len() > 1;
        let mut tried: Vec<AttemptRow> = Vec::new();
        let mut misses: Vec<Miss> = Vec::new();
        for (i, instance) in decision.candidates.iter().enumerate() {
            let more = i < last;
            if !matches!(who, Who::Bound(_)) && !self.health.admit(instance) {
                misses.push(Miss {
                    instance: instance.clone(),
                    error: ServiceError::NoInstance(format!(
                        "provider '{instance}' is skipped: its circuit is open"
                    )),
                });
                continue;
            }
            let customer = match &who {
                Who::Bound(c) => c.clone(),
                Who::User { tenant, user, .. } => {
                    let here = Ctx {
                        fail_over: more,
                        ..ctx.clone()
                    };
                    match self
                        .ensure_customer_in(&here, tenant, user.clone(), instance)
                        .await
                    {
                        Ok((c, _)) => c,
                        // A customer moves no money: any fault of the instance's hands
                        // the payment to the next one.
                        Err(e) if more && e.is_instance_fault() => {
                            self.health.failover(instance);
                            misses.push(Miss {
                                instance: instance.clone(),
                                error: e,
                            });
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let new = charge.new_payment(&customer);
            let now = self.now();
            let mut attempt = AttemptRow {
                id: new_id("att"),
                payment_id: payment_id.clone(),
                seq: i64::try_from(tried.len() + 1).unwrap_or(i64::MAX),
                tenant: ctx.tenant_key(),
                instance: instance.clone(),
                provider_key: provider_key.clone(),
                idem_scope: slot.map(|s| s.scope.clone()),
                idem_key: slot.map(|_| provider_key.clone()),
                state: State::Started.as_str().into(),
                error_code: None,
                error_message: None,
                // What the resolver would send again: kept while the outcome may be
                // unknown, so only for an attempt written before its call (else when it
                // turns out in doubt).
                request: if first_written {
                    pending(&customer, &new)
                } else {
                    "{}".into()
                },
                checks: 0,
                next_check_at: None,
                created_at: now,
                updated_at: now,
            };
            if first_written {
                let mut unit = Unit::new();
                attempts::insert_attempt(&mut unit, &attempt);
                self.mark_resumable(&mut unit, ctx, &payment_id);
                self.store.commit(unit).await?;
            }
            let written = first_written;
            let mut cctx = ctx.call_ctx(step);
            cctx.idempotency_key = Some(provider_key.clone());
            cctx.can_fail_over = more;
            let outcome = self
                .call::<ops::CreatePayment>(instance, cctx, new.clone())
                .await;
            match outcome {
                Ok((p, _))
                    if more
                        && p.status == PaymentStatus::Failed
                        && p.failure_code
                            .as_deref()
                            .is_some_and(|c| self.router.is_soft_decline(instance, c)) =>
                {
                    let code = p.failure_code.clone().unwrap_or_default();
                    let message = p.failure_message.clone().unwrap_or_default();
                    self.settle_now(
                        &mut attempt,
                        written,
                        State::SoftDeclined,
                        Some((code, message)),
                    )
                    .await?;
                    self.health.failover(instance);
                    tried.push(attempt);
                }
                Ok((p, emitted)) => {
                    settle(&mut attempt, State::Answered, None, now);
                    tried.push(attempt);
                    return self
                        .record_answer(
                            ctx,
                            &customer,
                            &payment_id,
                            (p, emitted),
                            (&tried, written),
                            &charge,
                        )
                        .await;
                }
                Err(e) if more && e.can_fail_over() => {
                    let why = error_of(&e);
                    self.settle_now(&mut attempt, written, State::NotSent, Some(why))
                        .await?;
                    self.health.failover(instance);
                    tried.push(attempt);
                    misses.push(Miss {
                        instance: instance.clone(),
                        error: e,
                    });
                }
                Err(ServiceError::Call(e)) if e.effect() == Effect::Uncertain => {
                    let why = (e.code().to_owned(), e.to_string());
                    attempt.request = pending(&customer, &new);
                    settle(&mut attempt, State::InDoubt, Some(why), now);
                    attempt.next_check_at =
                        Some(now + i64::try_from(self.resolver_pause(0)).unwrap_or(60));
                    tried.push(attempt);
                    return self
                        .record_in_doubt(
                            ctx,
                            &customer,
                            &payment_id,
                            &new,
                            (&tried, written),
                            &charge,
                        )
                        .await;
                }
                Err(e) => {
                    let state = if e.can_fail_over() {
                        State::NotSent
                    } else {
                        State::Refused
                    };
                    let why = error_of(&e);
                    self.settle_now(&mut attempt, written, state, Some(why))
                        .await?;
                    misses.push(Miss {
                        instance: instance.clone(),
                        error: e,
                    });
                    return Err(Self::exhausted(misses));
                }
            }
        }
        Err(Self::exhausted(misses))
    }

    /// Where a new payment may go.
    pub(super) fn payment_route(
        &self,
        ctx: &Ctx,
        who: &Who,
        charge: &Charge,
        split_key: &str,
    ) -> Result<Decision, ServiceError> {
        let mut needs = vec!["payments"];
        if charge.capture_method == crate::api::requests::CaptureMethod::Manual {
            needs.push("manual_capture");
        }
        match who {
            Who::Bound(c) => {
                let live = super::routes::Live {
                    registry: &self.registry,
                    health: &self.health,
                };
                Ok(self.router.single("bound", &c.provider, &needs, &live))
            }
            Who::User {
                explicit, country, ..
            } => {
                let facts = RouteFacts {
                    tenant: None,
                    currency: Some(charge.amount.currency.as_str().to_ascii_lowercase()),
                    amount: Some(charge.amount.amount),
                    capture_method: Some(
                        match charge.capture_method {
                            crate::api::requests::CaptureMethod::Automatic => "automatic",
                            crate::api::requests::CaptureMethod::Manual => "manual",
                        }
                        .to_owned(),
                    ),
                    redirect: charge.return_url.is_some(),
                    payment_method_kind: None,
                    payment_method_provider: None,
                    country: country.clone(),
                    metadata: charge.metadata.clone().into_map(),
                };
                self.decide(ctx, facts, &needs, explicit.as_deref(), split_key)
            }
        }
    }

    /// Writes an attempt's state at once (before the next candidate is tried, so an
    /// attempt that did nothing is never taken for one whose outcome is unknown).
    async fn settle_now(
        &self,
        attempt: &mut AttemptRow,
        written: bool,
        state: State,
        why: Option<(String, String)>,
    ) -> Result<(), ServiceError> {
        settle(attempt, state, why, self.now());
        let mut unit = Unit::new();
        save(&mut unit, attempt, written);
        self.store.commit(unit).await?;
        Ok(())
    }

    /// Records the payment an instance answered with, its events and its attempts.
    #[allow(clippy::too_many_arguments)]
    async fn record_answer(
        &self,
        ctx: &Ctx,
        customer: &CustomerRow,
        payment_id: &str,
        (p, emitted): (Payment, Vec<DomainEventReport>),
        (tried, written): (&[AttemptRow], bool),
        charge: &Charge,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        self.check_new_provider_id(Record::Payment, &customer.provider, &p.id)
            .await?;
        let now = self.now();
        let mut row = PaymentRow {
            id: payment_id.to_owned(),
            tenant: ctx.tenant_key(),
            customer_id: customer.id.clone(),
            provider: customer.provider.clone(),
            provider_id: p.id.clone(),
            amount: p.amount.amount,
            currency: p.amount.currency.as_str().to_owned(),
            amount_received: p.amount_received,
            amount_refunded: p.amount_refunded,
            status: p.status.clone(),
            capture_method: p.capture_method.as_str().to_owned(),
            next_action: stored_next_action(&p),
            payment_method: p.payment_method.clone(),
            failure_code: p.failure_code.clone(),
            failure_message: p.failure_message.clone(),
            dispute_status: None,
            description: charge.description(),
            metadata: super::metadata_json(&p.metadata),
            created_at: now,
            updated_at: now,
            synced_at: now,
            attempts: None,
            trace_parent: crate::telemetry::current_traceparent(),
        };
        // One attempt, answered, never written: there is nothing left for the resolver or a
        // retry to find (the answer is stored under the request's key), and the payment's
        // record tells it (the API shows it from the payment's own fields): no row for it
        // and no copy on the payment, saving the writer an insert and bytes per payment.
        let alone = tried.len() == 1 && !written;
        if !alone {
            row.attempts = summary(tried);
        }
        let mut unit = Unit::new();
        payments::insert_payment(&mut unit, &row);
        if let Some(a) = tried.last().filter(|_| !alone) {
            save(&mut unit, a, written);
        }
        let mut ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        for a in tried {
            ids = ids.with(&a.id, payment_id);
        }
        ids = ids.with(payment_id, payment_id);
        let facts = Facts {
            own: payment_events(&p, true, now),
            emitted,
            elsewhere: attempt_events(payment_id, tried, now),
        };
        let mut view = PaymentView::from(&row);
        view.client_secret = client_secret(&p);
        let reply = Reply {
            status: Status::Created,
            body: view,
            stored: false,
        };
        self.finish(ctx, unit, &customer.provider, facts, &ids, reply)
            .await
    }

    /// Records a payment whose creation left no answer: `processing`, its last attempt in
    /// doubt, for the resolver; answered 202 (never stored under the Idempotency-Key).
    async fn record_in_doubt(
        &self,
        ctx: &Ctx,
        customer: &CustomerRow,
        payment_id: &str,
        new: &NewPayment,
        (tried, written): (&[AttemptRow], bool),
        charge: &Charge,
    ) -> Result<Reply<PaymentView>, ServiceError> {
        let now = self.now();
        let row = in_doubt_row(
            ctx.tenant_key(),
            customer,
            payment_id,
            new,
            charge.description(),
            now,
            tried,
        );
        let mut unit = Unit::new();
        payments::insert_payment(&mut unit, &row);
        if let Some(a) = tried.last() {
            save(&mut unit, a, written);
        }
        self.mark_resumable(&mut unit, ctx, payment_id);
        let mut ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(payment_id, payment_id);
        for a in tried {
            ids = ids.with(&a.id, payment_id);
        }
        let mut created = DomainEventReport::new(DomainEventKind::PaymentCreated, payment_id, now);
        created.customer_id = Some(customer.provider_id.clone());
        created.payment_id = Some(payment_id.to_owned());
        created.amount = Some(new.amount.clone());
        created.status = Some(PaymentStatus::Processing.as_str().into());
        let facts = Facts {
            own: vec![created],
            emitted: Vec::new(),
            elsewhere: attempt_events(payment_id, tried, now),
        };
        tracing::warn!(payment = %payment_id, provider = %customer.provider, "payment outcome unknown: in doubt until the provider answers again");
        let reply = Reply {
            status: Status::Accepted,
            body: PaymentView::from(&row),
            stored: false,
        };
        let reply = self
            .finish(ctx, unit, &customer.provider, facts, &ids, reply)
            .await?;
        self.resolver_wake.ring();
        Ok(reply)
    }
}

fn error_of(e: &ServiceError) -> (String, String) {
    match e {
        ServiceError::Call(c) => (c.code().to_owned(), c.to_string()),
        other => ("error".to_owned(), other.to_string()),
    }
}

pub(super) fn settle(a: &mut AttemptRow, state: State, why: Option<(String, String)>, now: i64) {
    a.state = state.as_str().to_owned();
    if let Some((code, message)) = why {
        a.error_code = Some(code);
        a.error_message = Some(message);
    }
    if state != State::InDoubt && state != State::Started {
        a.request = "{}".into();
        a.next_check_at = None;
    }
    a.updated_at = now;
}

/// The payment a stored answer marks as still being resolved (see
/// [`PaymentService::mark_resumable`]), if it is such a mark.
pub fn resume_mark(stored: &crate::store::StoredReply) -> Option<String> {
    if stored.status != Status::Accepted.code() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&stored.body).ok()?;
    v["resume"].as_str().map(str::to_owned)
}

impl PaymentService {
    /// Stores, under the request's Idempotency-Key, a mark that its payment is still being
    /// resolved: the key's retry (on any host, after any restart) finds it with the lookup
    /// every keyed request makes anyway, and resumes the payment at its instance. The
    /// payment's final answer replaces it.
    fn mark_resumable(&self, unit: &mut Unit, ctx: &Ctx, payment_id: &str) {
        let Some(slot) = &ctx.idempotency else { return };
        let mark = crate::store::StoredReply {
            request_hash: slot.request_hash.clone(),
            status: Status::Accepted.code(),
            body: serde_json::json!({ "resume": payment_id }).to_string(),
        };
        crate::store::idempotency::store_reply(unit, &slot.scope, &slot.key, &mark, self.now());
    }
}

/// An attempt's request as the resolver keeps it.
fn pending(customer: &CustomerRow, new: &NewPayment) -> String {
    serde_json::to_string(&Pending {
        customer: customer.id.clone(),
        request: new.clone(),
    })
    .unwrap_or_else(|_| "{}".into())
}

/// An attempt's row: updated when it was written before its call, else written now.
fn save(unit: &mut Unit, a: &AttemptRow, written: bool) {
    if written {
        attempts::update_attempt(unit, a);
    } else {
        attempts::insert_attempt(unit, a);
    }
}

pub(super) fn replace(all: &mut Vec<AttemptRow>, a: &AttemptRow) {
    match all.iter_mut().find(|x| x.id == a.id) {
        Some(x) => *x = a.clone(),
        None => all.push(a.clone()),
    }
}

/// The record of a payment whose creation is in doubt: `processing`, payhost's own id in
/// place of the provider's.
pub(super) fn in_doubt_row(
    tenant: String,
    customer: &CustomerRow,
    payment_id: &str,
    new: &NewPayment,
    description: Option<String>,
    now: i64,
    tried: &[AttemptRow],
) -> PaymentRow {
    PaymentRow {
        id: payment_id.to_owned(),
        tenant,
        customer_id: customer.id.clone(),
        provider: customer.provider.clone(),
        provider_id: payment_id.to_owned(),
        amount: new.amount.amount,
        currency: new.amount.currency.as_str().to_owned(),
        amount_received: 0,
        amount_refunded: 0,
        status: PaymentStatus::Processing,
        capture_method: new.capture_method.as_str().to_owned(),
        next_action: None,
        payment_method: new.payment_method.clone(),
        failure_code: None,
        failure_message: None,
        dispute_status: None,
        description,
        metadata: super::metadata_json(&new.metadata),
        created_at: now,
        updated_at: now,
        synced_at: now,
        attempts: summary(tried),
        trace_parent: crate::telemetry::current_traceparent(),
    }
}
