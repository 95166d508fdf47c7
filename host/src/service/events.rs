//! The domain event log: provider reports become persisted events, one per fact.
//!
//! A fact is (provider, kind, provider object id, state). Facts that happen once per object
//! (a payment created, succeeded; a refund processed) carry a unique `fact_key`; for the
//! others the last state per (provider, kind, object) lives in `event_facts` and an event row
//! is written only when that state changes. Either way in the same unit as the change it
//! describes. So a payment's success seen in
//! the API answer and again in an emitted report is one PaymentSucceeded, while a
//! subscription scheduled for cancellation, reactivated and scheduled again is three events.

use super::{Ids, ServiceError};
use crate::clock::Clock;
use crate::events::{Dispatcher, DomainEvent, Event};
use crate::store::{Arg, Changed, RowExt, Store, Unit};
use payhost_plugin_api::{DomainEventKind, DomainEventReport};
use serde_json::{json, Value};
use std::sync::Arc;

const UPSERT_FACT: &str = "INSERT INTO event_facts (provider, kind, object_id, state) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (provider, kind, object_id) DO UPDATE SET state = excluded.state \
     WHERE event_facts.state <> excluded.state";

const INSERT_EVENT: &str = "INSERT INTO events \
     (id, type, tenant, provider, object_id, provider_object_id, data, created_at, fact_key) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (fact_key) DO NOTHING";

/// An event written in a unit, dispatched once the unit is durable if it was new.
pub struct Staged {
    stmt: usize,
    event: DomainEvent,
}

const INSERT_OUTBOX: &str = "INSERT INTO outbox \
     (id, event_id, handler, target, status, attempts, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, 'pending', 0, $6, $5)";

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
        | DomainEventKind::SubscriptionUpdated
        | DomainEventKind::SubscriptionCancelled
        | DomainEventKind::RefundProcessed
        | DomainEventKind::InvoicePaid
        | DomainEventKind::DisputeOpened
        | DomainEventKind::DisputeClosed
        | DomainEventKind::PaymentMethodDetached
        | DomainEventKind::CustomerUpdated
        | DomainEventKind::CustomerDeleted
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
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

/// The state that makes a report a new fact for its (provider, kind, object), for the kinds
/// that can happen again with another state; `None` for those that happen once per object.
fn fact_state(r: &DomainEventReport) -> Option<String> {
    match &r.kind {
        DomainEventKind::SubscriptionUpdated => Some(format!(
            "{}|{}|{}",
            r.status.clone().unwrap_or_default(),
            r.plan_id.clone().unwrap_or_default(),
            r.cancel_at_period_end
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
        | DomainEventKind::SubscriptionCreated
        | DomainEventKind::SubscriptionCancelled
        | DomainEventKind::RefundProcessed
        | DomainEventKind::InvoicePaid
        | DomainEventKind::DisputeOpened
        | DomainEventKind::PaymentMethodDetached
        | DomainEventKind::CustomerDeleted
        | DomainEventKind::Unknown(_) => None,
    }
}

fn data(r: &DomainEventReport, ids: &Ids) -> Value {
    let pair = |v: Option<String>| {
        let payhost = v.as_deref().and_then(|p| ids.get(p));
        (payhost, v)
    };
    let (customer, provider_customer_id) = pair(r.customer_id.clone());
    let (payment, provider_payment_id) = pair(r.payment_id.clone());
    let (subscription, provider_subscription_id) = pair(r.subscription_id.clone());
    let (invoice, provider_invoice_id) = pair(r.invoice_id.clone());
    let amount = r.amount.as_ref();
    json!({
        "object_id": ids.get(r.object_id.as_str()),
        "provider_object_id": r.object_id.as_str(),
        "customer": customer, "provider_customer_id": provider_customer_id,
        "payment": payment, "provider_payment_id": provider_payment_id,
        "subscription": subscription, "provider_subscription_id": provider_subscription_id,
        "invoice": invoice, "provider_invoice_id": provider_invoice_id,
        "amount": amount.map(|m| m.amount),
        "currency": amount.map(|m| m.currency.as_str().to_owned()),
        "status": r.status.clone(),
        "plan": r.plan_id.clone(),
        "previous_plan": r.previous_plan_id.clone(),
        "cancel_at_period_end": r.cancel_at_period_end,
        "error": r.error.clone(),
        "occurred_at": r.occurred_at,
    })
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
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
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
            let id = super::new_id("evt");
            let kind = r.kind.as_str();
            let fact_key = match state {
                Some(state) => {
                    unit.push(
                        UPSERT_FACT,
                        vec![
                            provider.into(),
                            kind.into(),
                            r.object_id.as_str().into(),
                            state.into(),
                        ],
                    );
                    None
                }
                None => Some(format!("{provider}|{kind}|{}", r.object_id)),
            };
            let args = vec![
                id.clone().into(),
                kind.into(),
                Arg::from(tenant),
                provider.into(),
                ids.get(r.object_id.as_str()).into(),
                r.object_id.as_str().into(),
                data(r, ids).to_string().into(),
                now.into(),
                Arg::from(fact_key.clone()),
            ];
            let stmt = if fact_key.is_some() {
                unit.push(INSERT_EVENT, args)
            } else {
                unit.push_if_changed(INSERT_EVENT, args)
            };
            // Each runs only if the one before it did: all of them only for a new event.
            for (handler, target) in handlers(&r.kind, &self.endpoints) {
                unit.push_if_changed(
                    INSERT_OUTBOX,
                    vec![
                        super::new_id("obx").into(),
                        id.clone().into(),
                        handler.into(),
                        target.into(),
                        now.into(),
                        self.clock.now_millis().into(),
                    ],
                );
            }
            let mut event = DomainEvent::from_report(provider, r);
            event.id = Some(id);
            event.tenant = tenant.map(str::to_owned);
            staged.push(Staged { stmt, event });
        }
        staged
    }

    /// Dispatches the staged events whose rows were written (the new facts).
    pub fn dispatch_new(&self, staged: Vec<Staged>, changed: &Changed) {
        let mut any = false;
        for s in staged {
            if changed.get(s.stmt).copied().unwrap_or(0) > 0 {
                any = true;
                self.dispatcher.dispatch(Event::Domain(Box::new(s.event)));
            }
        }
        if any {
            self.outbox_wake.notify_one();
        }
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

    /// The payhost ids of the provider objects the reports name, where payhost knows them.
    ///
    /// # Errors
    /// A database failure.
    pub async fn resolve(
        &self,
        provider: &str,
        reports: &[DomainEventReport],
    ) -> Result<Ids, ServiceError> {
        // Each provider id once (a payment event names its payment twice, as object and as
        // payment): every lookup is a round trip to the database.
        let wanted: std::collections::BTreeSet<String> = reports
            .iter()
            .flat_map(|r| {
                [
                    Some(r.object_id.to_string()),
                    r.customer_id.clone(),
                    r.payment_id.clone(),
                    r.subscription_id.clone(),
                    r.invoice_id.clone(),
                ]
            })
            .flatten()
            .filter(|id| !id.is_empty())
            .collect();
        let mut ids = Ids::default();
        for provider_id in wanted {
            if let Some(id) = self.lookup(provider, &provider_id).await? {
                ids = ids.with(&provider_id, &id);
            }
        }
        Ok(ids)
    }

    async fn lookup(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<String>, ServiceError> {
        let row = self
            .store
            .one(
                "SELECT id FROM customers WHERE provider = $1 AND provider_id = $2 \
                 UNION ALL SELECT id FROM payments WHERE provider = $1 AND provider_id = $2 \
                 UNION ALL SELECT id FROM subscriptions WHERE provider = $1 AND provider_id = $2 \
                 UNION ALL SELECT id FROM refunds WHERE provider = $1 AND provider_id = $2 \
                 UNION ALL SELECT id FROM invoices WHERE provider = $1 AND provider_id = $2",
                vec![provider.into(), provider_id.into()],
            )
            .await?;
        Ok(row.map(|r| r.text("id")).transpose()?)
    }

    /// A page of the event log, oldest first.
    ///
    /// # Errors
    /// An unknown cursor or event type, or a database failure.
    pub async fn list(&self, filter: &EventFilter) -> Result<Value, ServiceError> {
        if let Some(t) = &filter.event_type {
            if !DomainEventKind::parse(t).is_known() {
                return Err(ServiceError::invalid(
                    "type",
                    format!(
                        "unknown event type '{t}' (known: {})",
                        DomainEventKind::KNOWN.join(", ")
                    ),
                ));
            }
        }
        let after = match &filter.starting_after {
            None => 0,
            Some(cursor) => self
                .store
                .one("SELECT seq FROM events WHERE id = $1", vec![cursor.into()])
                .await?
                .ok_or_else(|| ServiceError::NotFound {
                    what: "event",
                    param: "starting_after",
                    id: cursor.clone(),
                })?
                .int("seq")?,
        };
        let limit = i64::from(filter.limit.clamp(1, 100));
        let rows = self
            .store
            .all(
                "SELECT seq, id, type, tenant, provider, object_id, provider_object_id, data, \
                 created_at FROM events \
                 WHERE seq > $1 AND ($2 IS NULL OR type = $2) AND ($3 IS NULL OR object_id = $3) \
                 ORDER BY seq LIMIT $4",
                vec![
                    after.into(),
                    Arg::from(filter.event_type.clone()),
                    Arg::from(filter.object_id.clone()),
                    (limit + 1).into(),
                ],
            )
            .await?;
        let has_more = rows.len() as i64 > limit;
        let data = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                Ok(json!({
                    "id": r.text("id")?, "object": "event", "seq": r.int("seq")?,
                    "type": r.text("type")?, "tenant": r.opt_text("tenant")?,
                    "provider": r.text("provider")?, "object_id": r.opt_text("object_id")?,
                    "provider_object_id": r.text("provider_object_id")?,
                    "data": serde_json::from_str::<Value>(&r.text("data")?).unwrap_or(Value::Null),
                    "created_at": r.int("created_at")?,
                }))
            })
            .collect::<Result<Vec<Value>, ServiceError>>()?;
        Ok(json!({"object": "list", "data": data, "has_more": has_more}))
    }
}

/// `GET /v1/events` parameters.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub object_id: Option<String>,
    pub starting_after: Option<String>,
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    20
}
