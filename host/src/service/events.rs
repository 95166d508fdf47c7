//! The domain event log: provider reports become persisted events, one per fact.
//!
//! A fact is (provider, kind, provider object id, state). Facts that happen once per object
//! (a payment created, succeeded; a refund processed) carry a unique `fact_key`; for the
//! others the last state per (provider, kind, object) lives in `event_facts` and an event row
//! is written only when that state changes. Either way in the same unit as the change it
//! describes. So a payment's success seen in the API answer and again in an emitted report is
//! one PaymentSucceeded, while a subscription scheduled for cancellation, reactivated and
//! scheduled again is three events.

use super::customers::page;
use super::{list, new_id, Ctx, Ids, PaymentService, ServiceError};
use crate::api::requests::{EventFilters, PageParams};
use crate::api::views::{EventData, EventView, List};
use crate::clock::Clock;
use crate::events::{Dispatcher, DomainEvent, Event};
use crate::pace::Bell;
use crate::store::{events, Changed, EventQuery, NewEvent, Store, Unit};
use payhost_plugin_api::{DomainEventKind, DomainEventReport};
use std::sync::Arc;

/// An event written in a unit, dispatched once the unit is durable if it was new.
pub struct Staged {
    stmt: usize,
    event: DomainEvent,
    /// The outbox lanes its work rows go to (rung once the event is durable).
    lanes: Lanes,
}

/// Which kinds of outbox lane have new work.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lanes {
    pub email: bool,
    pub dunning: bool,
    pub webhook: bool,
}

impl Lanes {
    /// The lanes that take the work rows `work` (as `Store::outbox_lane` selects them:
    /// every handler but `webhook` and `dunning` is an email).
    fn of(work: &[(&str, String)]) -> Self {
        let mut lanes = Lanes::default();
        for (handler, _) in work {
            match *handler {
                "webhook" => lanes.webhook = true,
                "dunning" => lanes.dunning = true,
                _ => lanes.email = true,
            }
        }
        lanes
    }

    fn merge(&mut self, other: Lanes) {
        self.email |= other.email;
        self.dunning |= other.dunning;
        self.webhook |= other.webhook;
    }
}

/// Rung when new outbox work was committed: one bell per kind of lane, so a lane's worker
/// wakes for its own work only (every payment owes a receipt email, none a dunning
/// schedule: the dunning lane's query ran for nothing after each of them).
#[derive(Debug, Default)]
pub struct OutboxBells {
    pub email: Bell,
    pub dunning: Bell,
    /// Every application endpoint's lane.
    pub webhook: Bell,
}

impl OutboxBells {
    /// Wakes the lanes of `lanes`.
    pub fn ring(&self, lanes: Lanes) {
        for (bell, rung) in [
            (&self.email, lanes.email),
            (&self.dunning, lanes.dunning),
            (&self.webhook, lanes.webhook),
        ] {
            if rung {
                bell.ring();
            }
        }
    }

    /// Wakes every lane (an operator queued a row again).
    pub fn ring_all(&self) {
        self.ring(Lanes {
            email: true,
            dunning: true,
            webhook: true,
        });
    }
}

/// The work a new event of `kind` owes: (handler, target).
pub fn handlers(kind: &DomainEventKind, endpoints: &[String]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match kind {
        DomainEventKind::PaymentSucceeded => out.push(("receipt_email", String::new())),
        DomainEventKind::PaymentFailed | DomainEventKind::InvoicePaymentFailed => {
            out.push(("failure_email", String::new()));
            out.push(("dunning", String::new()));
        }
        DomainEventKind::SubscriptionCreated => out.push(("welcome_email", String::new())),
        DomainEventKind::PaymentCreated
        | DomainEventKind::PaymentAuthorized
        | DomainEventKind::PaymentCanceled
        | DomainEventKind::PaymentExpired
        | DomainEventKind::SubscriptionUpdated
        | DomainEventKind::SubscriptionCancelled
        | DomainEventKind::RefundProcessed
        | DomainEventKind::RefundFailed
        | DomainEventKind::InvoicePaid
        | DomainEventKind::DisputeOpened
        | DomainEventKind::DisputeClosed
        | DomainEventKind::PaymentMethodDetached
        | DomainEventKind::CustomerUpdated
        | DomainEventKind::CustomerDeleted
        | DomainEventKind::PaymentAttemptFailed
        | DomainEventKind::PaymentRerouted
        // A kind a newer plugin reports: recorded and sent to the application, no email.
        | DomainEventKind::Unknown(_) => {}
    }
    out.extend(endpoints.iter().map(|e| ("webhook", e.clone())));
    out
}

#[derive(Clone)]
pub struct Recorder {
    store: Store,
    dispatcher: Arc<Dispatcher>,
    clock: Arc<dyn Clock>,
    /// The application's webhook endpoints (names) every event is delivered to.
    endpoints: Vec<String>,
    /// Woken when new outbox work was committed.
    pub outbox_wake: Arc<OutboxBells>,
}

/// The state that makes a report a new fact for its (provider, kind, object), for the kinds
/// that can happen again with another state; `None` for those that happen once per object.
fn fact_state(r: &DomainEventReport) -> Option<String> {
    match &r.kind {
        DomainEventKind::SubscriptionUpdated => Some(format!(
            "{}|{}|{}|{}",
            r.status.clone().unwrap_or_default(),
            r.plan_id.clone().unwrap_or_default(),
            r.cancel_at_period_end,
            r.current_period_end.unwrap_or_default(),
        )),
        DomainEventKind::PaymentFailed | DomainEventKind::InvoicePaymentFailed => {
            Some(r.error.clone().unwrap_or_default())
        }
        DomainEventKind::CustomerUpdated => Some(format!(
            "{}|{}",
            r.email.clone().unwrap_or_default(),
            r.name.clone().unwrap_or_default()
        )),
        DomainEventKind::DisputeClosed => Some(r.status.clone().unwrap_or_default()),
        DomainEventKind::PaymentCreated
        | DomainEventKind::PaymentAuthorized
        | DomainEventKind::PaymentSucceeded
        | DomainEventKind::PaymentCanceled
        | DomainEventKind::PaymentExpired
        | DomainEventKind::SubscriptionCreated
        | DomainEventKind::SubscriptionCancelled
        | DomainEventKind::RefundProcessed
        | DomainEventKind::RefundFailed
        | DomainEventKind::InvoicePaid
        | DomainEventKind::DisputeOpened
        | DomainEventKind::PaymentMethodDetached
        | DomainEventKind::CustomerDeleted
        | DomainEventKind::PaymentAttemptFailed
        | DomainEventKind::PaymentRerouted
        | DomainEventKind::Unknown(_) => None,
    }
}

/// What the event log keeps of a report: ids both ways, amounts and states, never the
/// customer's email or name.
fn data(r: &DomainEventReport, ids: &Ids) -> EventData {
    let pair = |v: &Option<String>| (v.as_deref().and_then(|p| ids.get(p)), v.clone());
    let (customer, provider_customer_id) = pair(&r.customer_id);
    let (payment, provider_payment_id) = pair(&r.payment_id);
    let (subscription, provider_subscription_id) = pair(&r.subscription_id);
    let (invoice, provider_invoice_id) = pair(&r.invoice_id);
    EventData {
        object_id: ids.get(&r.object_id),
        provider_object_id: r.object_id.clone(),
        customer,
        provider_customer_id,
        payment,
        provider_payment_id,
        subscription,
        provider_subscription_id,
        invoice,
        provider_invoice_id,
        provider_payment_method_id: r.payment_method_id.clone(),
        amount: r.amount.as_ref().map(|m| m.amount),
        currency: r.amount.as_ref().map(|m| m.currency.as_str().to_owned()),
        status: r.status.clone(),
        plan: r.plan_id.clone(),
        previous_plan: r.previous_plan_id.clone(),
        cancel_at_period_end: r.cancel_at_period_end,
        current_period_start: r.current_period_start,
        current_period_end: r.current_period_end,
        trial_end: r.trial_end,
        reason: r.reason.clone(),
        error: r.error.clone(),
        occurred_at: r.occurred_at,
    }
}

impl Recorder {
    pub fn new(
        store: Store,
        dispatcher: Arc<Dispatcher>,
        clock: Arc<dyn Clock>,
        endpoints: Vec<String>,
    ) -> Self {
        Self {
            store,
            dispatcher,
            clock,
            endpoints,
            outbox_wake: Arc::default(),
        }
    }

    /// Adds the statements recording `reports` to `unit`.
    pub fn stage(
        &self,
        unit: &mut Unit,
        provider: &str,
        tenant: Option<&str>,
        reports: &[DomainEventReport],
        ids: &Ids,
    ) -> Vec<Staged> {
        let now = self.clock.now_secs();
        let mut seen: Vec<(DomainEventKind, &str, Option<String>)> = Vec::new();
        let mut staged = Vec::new();
        for r in reports {
            let state = fact_state(r);
            let fact = (r.kind.clone(), r.object_id.as_str(), state.clone());
            // The operation's own report and the plugin's copy of it are one fact.
            if seen.contains(&fact) {
                continue;
            }
            seen.push(fact);
            let id = new_id("evt");
            let kind = r.kind.as_str();
            let repeatable = state.is_some();
            if let Some(state) = &state {
                events::stage_fact(unit, provider, kind, &r.object_id, state);
            }
            let new = NewEvent {
                id: id.clone(),
                kind: kind.to_owned(),
                tenant: tenant.map(str::to_owned),
                provider: provider.to_owned(),
                object_id: ids.get(&r.object_id),
                provider_object_id: r.object_id.clone(),
                data: serde_json::to_string(&data(r, ids)).unwrap_or_else(|_| "{}".into()),
                created_at: now,
                fact_key: (!repeatable).then(|| format!("{provider}|{kind}|{}", r.object_id)),
            };
            let stmt = events::stage_event(unit, &new, repeatable);
            // Each runs only if the one before it did: all of them only for a new event.
            let work = handlers(&r.kind, &self.endpoints);
            let lanes = Lanes::of(&work);
            for (handler, target) in work {
                events::stage_work(
                    unit,
                    &new_id("obx"),
                    &id,
                    handler,
                    &target,
                    (now, self.clock.now_millis()),
                );
            }
            let mut event = DomainEvent::from_report(provider, r);
            event.id = Some(id);
            event.tenant = tenant.map(str::to_owned);
            staged.push(Staged { stmt, event, lanes });
        }
        staged
    }

    /// Dispatches the staged events whose rows were written (the new facts).
    pub fn dispatch_new(&self, staged: Vec<Staged>, changed: &Changed) {
        let mut lanes = Lanes::default();
        for s in staged {
            if changed.get(s.stmt).copied().unwrap_or(0) > 0 {
                lanes.merge(s.lanes);
                self.dispatcher.dispatch(Event::Domain(Box::new(s.event)));
            }
        }
        self.outbox_wake.ring(lanes);
    }

    /// Records reports that arrived outside an operation (emitted from a plugin's own
    /// threads): payhost ids are looked up from the provider ids.
    ///
    /// # Errors
    /// A database failure; nothing was recorded.
    pub async fn record(
        &self,
        provider: &str,
        reports: &[DomainEventReport],
    ) -> Result<(), ServiceError> {
        let ids = self.resolve(provider, reports).await?;
        let mut unit = Unit::new();
        let staged = self.stage(&mut unit, provider, None, reports, &ids);
        let changed = self.store.commit(unit).await?;
        self.dispatch_new(staged, &changed);
        Ok(())
    }

    /// The payhost ids of the provider objects the reports name, where payhost knows them,
    /// in one round trip.
    ///
    /// # Errors
    /// A database failure.
    pub async fn resolve(
        &self,
        provider: &str,
        reports: &[DomainEventReport],
    ) -> Result<Ids, ServiceError> {
        Ok(self
            .resolve_many(provider, &[reports])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// [`resolve`](Self::resolve) for the reports of many events at once: one lookup per
    /// 500 provider ids, whatever the number of events; each event gets the ids it names.
    ///
    /// # Errors
    /// A database failure.
    pub async fn resolve_many(
        &self,
        provider: &str,
        events: &[&[DomainEventReport]],
    ) -> Result<Vec<Ids>, ServiceError> {
        let named = |reports: &[DomainEventReport]| -> std::collections::BTreeSet<String> {
            reports
                .iter()
                .flat_map(|r| {
                    [
                        Some(r.object_id.as_str()),
                        r.customer_id.as_deref(),
                        r.payment_id.as_deref(),
                        r.subscription_id.as_deref(),
                        r.invoice_id.as_deref(),
                    ]
                })
                .flatten()
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let per_event: Vec<_> = events.iter().map(|r| named(r)).collect();
        let all: std::collections::BTreeSet<&str> = per_event
            .iter()
            .flat_map(|ids| ids.iter().map(String::as_str))
            .collect();
        let all: Vec<&str> = all.into_iter().collect();
        let mut found = std::collections::HashMap::new();
        for chunk in all.chunks(500) {
            found.extend(self.store.payhost_ids(provider, chunk).await?);
        }
        Ok(per_event
            .iter()
            .map(|ids| {
                ids.iter()
                    .fold(Ids::default(), |acc, p| match found.get(p) {
                        Some(h) => acc.with(p, h),
                        None => acc,
                    })
            })
            .collect())
    }
}

impl PaymentService {
    /// `GET /v1/events`: a page of the event log, oldest first.
    ///
    /// # Errors
    /// An unknown cursor or event type, or a database failure.
    pub async fn list_events(
        &self,
        ctx: &Ctx,
        f: EventFilters,
        p: &PageParams,
    ) -> Result<List<EventView>, ServiceError> {
        let q = EventQuery {
            tenant: ctx.tenant.clone(),
            kind: f.kind.map(|k| k.into_string()),
            object_id: f.object_id.map(|o| o.into_string()),
            created_gte: f.created_gte.map(|t| t.get()),
            created_lte: f.created_lte.map(|t| t.get()),
        };
        let rows = self.store.events(&q, &page(p)).await?;
        Ok(list(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use tokio::sync::watch;

    fn listen(bells: &OutboxBells) -> [watch::Receiver<u64>; 3] {
        [
            bells.email.subscribe(),
            bells.dunning.subscribe(),
            bells.webhook.subscribe(),
        ]
    }

    /// Whether each bell rang since the last look: (email, dunning, webhook).
    fn rang(bells: &mut [watch::Receiver<u64>; 3]) -> (bool, bool, bool) {
        let [email, dunning, webhook] = bells.each_mut().map(|b| {
            let changed = b.has_changed().unwrap();
            b.mark_unchanged();
            changed
        });
        (email, dunning, webhook)
    }

    /// Records one report of `kind` about `object`; which bells rang.
    async fn rings(
        recorder: &Recorder,
        heard: &mut [watch::Receiver<u64>; 3],
        kind: DomainEventKind,
        object: &str,
    ) -> (bool, bool, bool) {
        recorder
            .record("mock", &[DomainEventReport::new(kind, object, 1)])
            .await
            .unwrap();
        rang(heard)
    }

    /// Recording new facts rings the bells of the lanes their work rows went to, and no
    /// other; a fact recorded again (nothing new written) rings none.
    #[tokio::test]
    async fn a_recorded_event_wakes_the_lanes_of_its_work_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&crate::store::default_url(dir.path()))
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let recorder = |endpoints: Vec<String>| {
            Recorder::new(
                store.clone(),
                Arc::new(Dispatcher::new(clock.clone())),
                clock.clone(),
                endpoints,
            )
        };
        use DomainEventKind::{PaymentCreated, PaymentFailed, PaymentSucceeded};
        let plain = recorder(Vec::new());
        let mut heard = listen(&plain.outbox_wake);
        for (kind, object, lanes, why) in [
            (
                PaymentSucceeded,
                "pi_1",
                (true, false, false),
                "a receipt email only",
            ),
            (
                PaymentSucceeded,
                "pi_1",
                (false, false, false),
                "the same fact: nothing new",
            ),
            (
                PaymentFailed,
                "pi_2",
                (true, true, false),
                "an email and a dunning schedule",
            ),
            (
                PaymentCreated,
                "pi_3",
                (false, false, false),
                "nothing without endpoints",
            ),
        ] {
            assert_eq!(
                rings(&plain, &mut heard, kind, object).await,
                lanes,
                "{why}"
            );
        }
        let with_endpoint = recorder(vec!["app".to_owned()]);
        let mut heard = listen(&with_endpoint.outbox_wake);
        assert_eq!(
            rings(&with_endpoint, &mut heard, PaymentCreated, "pi_4").await,
            (false, false, true),
            "a delivery to the endpoint"
        );
        // An operator's retry wakes every lane.
        with_endpoint.outbox_wake.ring_all();
        assert_eq!(rang(&mut heard), (true, true, true));
    }
}
