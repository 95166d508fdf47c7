//! The webhook pipeline: one generic endpoint for every provider instance, a durable inbox
//! and an asynchronous processor.
//!
//! Receiving: the raw body and headers go to the plugin's verifier; a verified event is
//! committed to the inbox (group commit, fsync'd) BEFORE the 2xx, once per (provider,
//! provider event id) — a repeated delivery answers 2xx and changes nothing, also when the
//! copies arrive together (the unique key decides). Processing: the plugin maps the event to
//! domain events; the records they name are synced (never with an older state than the one
//! they hold: `synced_at` keeps the provider time of the newest fact applied), the events
//! are recorded, and the inbox row is marked processed — all in one unit, so a crash at any
//! point leaves the event either wholly applied or still pending, never applied twice. A
//! failing step is retried with exponential backoff; pending rows survive restarts.

use crate::clock::Clock;
use crate::locks::Locked;
use crate::pace::Backoff;
use crate::plugins::{CallError, Registry};
use crate::service::{new_id, Ids, PaymentService, ServiceError};
use crate::store::{inbox, Backend, NewDelivery, StoreError, Unit};
use payhost_plugin_api::{ops, CallCtx, DomainEventReport, Headers, WebhookDelivery, WebhookEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

/// Attempts before an inbox row is left as `failed` (replayable by an operator).
const MAX_ATTEMPTS: i64 = 12;
/// Rows taken per processing round.
const BATCH: i64 = 200;
/// Rows processed at once; their writes share commits.
const CONCURRENCY: usize = 8;
/// Rows a host claims per round on PostgreSQL, and for how long (seconds): long enough for
/// a round whose plugin calls all run to their deadline, short enough that a killed host's
/// rows come back soon.
const CLAIM_BATCH: i64 = 32;
const CLAIM_SECS: i64 = 30;

/// Why a delivery was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("{0}")]
    Call(CallError),
    #[error("{0}")]
    Store(#[from] ServiceError),
}

/// An inbox row being processed.
struct Meta {
    id: String,
    provider: String,
    attempts: i64,
    created: i64,
}

/// What a processing round did.
enum Round {
    Taken(usize),
    /// The database was away: the round stopped, and the loop pauses before the next.
    DatabaseAway,
}

/// What happened to an accepted delivery.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Received {
    pub event_id: String,
    pub event_type: String,
    /// The same provider event was already in the inbox.
    pub duplicate: bool,
}

pub struct Webhooks {
    service: Arc<PaymentService>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    wake: Notify,
    /// On SQLite the inbox is processed by one host at a time (PostgreSQL claims rows).
    leases: Arc<crate::lease::Leases>,
    /// Rows this host claimed but could not finish (the database went away): released once
    /// it is back, so they do not wait for their claim to pass.
    unfinished: std::sync::Mutex<Vec<String>>,
}

/// The lease of the inbox processor on SQLite.
const INBOX_LEASE: &str = "inbox";

/// Seconds to wait before attempt `n + 1`.
fn backoff_secs(attempts: i64) -> i64 {
    2i64.saturating_pow(u32::try_from(attempts.clamp(0, 12)).unwrap_or(12))
        .min(3600)
}

impl Webhooks {
    pub fn new(
        service: Arc<PaymentService>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        leases: Arc<crate::lease::Leases>,
    ) -> Self {
        Self {
            service,
            registry,
            clock,
            wake: Notify::new(),
            leases,
            unfinished: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Verifies a delivery and commits it to the inbox.
    ///
    /// # Errors
    /// The provider is unknown or not running, the signature or body was refused, or the
    /// database failed (nothing was stored in every case).
    pub async fn receive(
        &self,
        provider: &str,
        body: Vec<u8>,
        headers: Headers,
    ) -> Result<Received, ReceiveError> {
        // Providers send JSON: the inbox stores the payload as text.
        let payload = String::from_utf8(body.clone()).map_err(|_| {
            ReceiveError::Call(CallError::Plugin(payhost_plugin_api::PluginError::invalid(
                "body",
                "the webhook body is not UTF-8 text",
            )))
        })?;
        let delivery = WebhookDelivery {
            body: body.into(),
            headers,
            now: self.clock.now_secs(),
        };
        let event = self
            .registry
            .call::<ops::VerifyWebhook>(provider, CallCtx::default(), delivery)
            .await
            .map_err(ReceiveError::Call)?;
        let now = self.clock.now_secs();
        let mut unit = Unit::new();
        let insert = inbox::insert_delivery(
            &mut unit,
            &NewDelivery {
                id: new_id("whin"),
                provider: provider.to_owned(),
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                payload,
                created: event.created,
                received_at: now,
            },
        );
        let changed = self
            .service
            .store()
            .commit(unit)
            .await
            .map_err(ServiceError::from)?;
        let duplicate = changed.get(insert).copied().unwrap_or(0) == 0;
        if !duplicate {
            self.wake.notify_one();
        }
        tracing::info!(provider, event_id = %event.id, event_type = %event.event_type, duplicate, "webhook received");
        Ok(Received {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            duplicate,
        })
    }

    /// Looks for due work now (a replayed row).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the processor: it works through due inbox rows whenever woken, and at least
    /// every `poll`.
    /// While the database is away, the processor pauses (doubling up to 5 s) instead of
    /// retrying at once; rows it could not finish stay pending with their attempts unspent.
    pub fn spawn(self: &Arc<Self>, poll: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut outage = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
            loop {
                loop {
                    match me.process_due().await {
                        Round::Taken(0) => break,
                        Round::Taken(_) => outage.reset(),
                        Round::DatabaseAway => {
                            tokio::time::sleep(outage.next_pause()).await;
                        }
                    }
                }
                tokio::select! {
                    () = me.wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        });
    }

    /// The due rows this round works on: on PostgreSQL the rows this host claims (every
    /// host processes at once); on SQLite all due rows, while this host holds the lease.
    async fn take_due(&self) -> Result<Vec<inbox::InboxRow>, StoreError> {
        let store = self.service.store();
        let now = self.clock.now_secs();
        let unfinished = std::mem::take(&mut *self.unfinished.locked());
        if store.backend() != Backend::Postgres {
            // No claims on SQLite: unfinished rows are simply still pending.
            if !self.leases.hold(INBOX_LEASE).await? {
                // Another host processes the inbox.
                return Ok(Vec::new());
            }
            return store.inbox_due(now, BATCH).await;
        }
        if !unfinished.is_empty() {
            let mut unit = Unit::new();
            for id in &unfinished {
                inbox::release_claim(&mut unit, id);
            }
            if let Err(e) = store.commit(unit).await {
                self.unfinished.locked().extend(unfinished);
                return Err(e);
            }
        }
        store
            .inbox_claim(self.leases.owner(), now, now + CLAIM_SECS, CLAIM_BATCH)
            .await
    }

    /// Processes the rows that are due as one batch: the plugins map them (several calls at
    /// once), the payhost ids they name are looked up together (one query per provider and
    /// 500 ids), and each row's effects are one unit; the units go to the writer at once, so
    /// they share its transactions. A row that fails is retried on its own.
    async fn process_due(self: &Arc<Self>) -> Round {
        let rows = match self.take_due().await {
            Ok(rows) => rows,
            Err(e) if e.is_unavailable() => return Round::DatabaseAway,
            Err(e) => {
                tracing::error!(error = %e, "cannot take webhook inbox rows");
                return Round::Taken(0);
            }
        };
        let n = rows.len();
        if n == 0 {
            return Round::Taken(0);
        }
        let round = tracing::debug_span!("inbox.round", rows = n);
        self.process(rows).instrument(round).await
    }

    /// [`WebhookProcessor::process_due`] for the rows taken, each in a span of its own.
    async fn process(self: &Arc<Self>, rows: Vec<inbox::InboxRow>) -> Round {
        let n = rows.len();
        let mut spans = Vec::with_capacity(n);
        let mut metas = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        for row in rows {
            spans.push(tracing::debug_span!(
                "webhook.process",
                otel.name = %format_args!("webhook {}", row.event_type),
                provider = %row.provider,
                inbox_id = %row.id,
                event_type = %row.event_type,
                payment_id = tracing::field::Empty,
                error = tracing::field::Empty,
            ));
            metas.push(Meta {
                id: row.id,
                provider: row.provider,
                attempts: row.attempts,
                created: row.created,
            });
            events.push(WebhookEvent {
                id: row.event_id,
                event_type: row.event_type,
                created: row.created,
                payload: row.payload,
            });
        }

        // 1. The plugins map every row.
        let mut mapped: Vec<Option<Result<Vec<DomainEventReport>, CallError>>> =
            (0..n).map(|_| None).collect();
        let mut running = tokio::task::JoinSet::new();
        for (i, event) in events.into_iter().enumerate() {
            let (registry, provider) = (self.registry.clone(), metas[i].provider.clone());
            running.spawn(
                async move {
                    let r = registry
                        .call::<ops::MapWebhook>(&provider, CallCtx::default(), event)
                        .await
                        .map(|m| m.events);
                    (i, r)
                }
                .instrument(spans[i].clone()),
            );
            while running.len() >= CONCURRENCY {
                if let Some(Ok((i, r))) = running.join_next().await {
                    mapped[i] = Some(r);
                }
            }
        }
        while let Some(done) = running.join_next().await {
            if let Ok((i, r)) = done {
                mapped[i] = Some(r);
            }
        }
        let mut reports: Vec<Vec<DomainEventReport>> = Vec::with_capacity(n);
        let mut failures: Vec<(usize, String)> = Vec::new();
        // Rows whose plugin had no call slot free (the receivers were using them): not the
        // event's fault, so no attempt is spent; the next round takes them again.
        let mut busy = std::collections::BTreeSet::new();
        for (i, m) in mapped.into_iter().enumerate() {
            match m {
                Some(Ok(r)) => reports.push(r),
                Some(Err(CallError::Busy { .. })) => {
                    busy.insert(i);
                    reports.push(Vec::new());
                }
                Some(Err(e)) => {
                    failures.push((i, e.to_string()));
                    reports.push(Vec::new());
                }
                None => {
                    failures.push((i, "the processing task failed".into()));
                    reports.push(Vec::new());
                }
            }
        }
        let mut failed_rows: std::collections::BTreeSet<usize> =
            failures.iter().map(|(i, _)| *i).collect();
        failed_rows.extend(busy.iter().copied());
        if busy.len() == n {
            // Every slot is taken (by receivers): give them a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !busy.is_empty() {
            self.unfinished
                .locked()
                .extend(busy.iter().map(|i| metas[*i].id.clone()));
        }

        // 2. The ids they name, per provider, together.
        let recorder = self.service.recorder();
        let mut ids: Vec<Ids> = vec![Ids::default(); n];
        let mut by_provider: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (i, m) in metas.iter().enumerate() {
            if !failed_rows.contains(&i) {
                by_provider.entry(m.provider.as_str()).or_default().push(i);
            }
        }
        let mut away = false;
        let mut unresolved = std::collections::BTreeSet::new();
        for (provider, rows) in &by_provider {
            let named: Vec<&[DomainEventReport]> =
                rows.iter().map(|i| reports[*i].as_slice()).collect();
            match recorder.resolve_many(provider, &named).await {
                Ok(found) => {
                    for (i, f) in rows.iter().zip(found) {
                        ids[*i] = f;
                    }
                }
                Err(ServiceError::Store(e)) if e.is_unavailable() => {
                    away = true;
                    unresolved.extend(rows.iter().copied());
                }
                Err(e) => {
                    let e = e.to_string();
                    failures.extend(rows.iter().map(|i| (*i, e.clone())));
                    unresolved.extend(rows.iter().copied());
                }
            }
        }

        // 3. One unit per row, all handed to the writer at once.
        let now = self.clock.now_secs();
        let mut commits = tokio::task::JoinSet::new();
        for (i, m) in metas.iter().enumerate() {
            if failed_rows.contains(&i) || unresolved.contains(&i) {
                continue;
            }
            let mut unit = Unit::new();
            let mut row_ids = std::mem::take(&mut ids[i]);
            for r in &reports[i] {
                crate::service::sync::apply(
                    &mut unit,
                    &m.provider,
                    r,
                    m.created,
                    now,
                    &mut row_ids,
                );
            }
            if crate::telemetry::enabled() {
                self.link_to_payment(&spans[i], &row_ids).await;
            }
            let staged = recorder.stage(&mut unit, &m.provider, None, &reports[i], &row_ids);
            inbox::mark_processed(&mut unit, &m.id, now);
            let me = self.clone();
            commits.spawn(
                async move {
                    let result = me.service.store().commit(unit).await;
                    if let Ok(changed) = &result {
                        me.service.recorder().dispatch_new(staged, changed);
                    }
                    (i, result)
                }
                .instrument(spans[i].clone()),
            );
        }
        while let Some(done) = commits.join_next().await {
            match done {
                Ok((_, Ok(_))) => {}
                Ok((i, Err(e))) if e.is_unavailable() => {
                    away = true;
                    unresolved.insert(i);
                }
                Ok((i, Err(e))) => failures.push((i, e.to_string())),
                Err(e) => tracing::error!(error = %e, "a webhook commit task failed"),
            }
        }
        if away {
            // Not the events' fault: no attempt spent; the claims go once the database is back.
            self.unfinished.locked().extend(
                unresolved
                    .iter()
                    .filter(|i| !failures.iter().any(|(f, _)| f == *i))
                    .map(|i| metas[*i].id.clone()),
            );
        }
        for (i, error) in failures {
            spans[i].record("error", error.as_str());
            let m = &metas[i];
            self.failed(&m.id, &m.provider, m.attempts, &error).await;
        }
        if away {
            Round::DatabaseAway
        } else {
            Round::Taken(n)
        }
    }

    /// Names on a row's span the payment its event is about, linked to the span of the
    /// request that created it (when that was traced).
    async fn link_to_payment(&self, span: &tracing::Span, ids: &Ids) {
        let Some((_, payment)) = ids.0.iter().find(|(_, h)| h.starts_with("pay_")) else {
            return;
        };
        span.record("payment_id", payment.as_str());
        if let Ok(Some(parent)) = self.service.store().payment_trace(payment).await {
            crate::telemetry::link(span, &parent);
        }
    }

    async fn failed(&self, id: &str, provider: &str, attempts: i64, error: &str) {
        let attempts = attempts + 1;
        let status = if attempts >= MAX_ATTEMPTS {
            "failed"
        } else {
            "pending"
        };
        let next = self.clock.now_secs() + backoff_secs(attempts);
        tracing::warn!(
            provider,
            inbox_id = id,
            attempts,
            error,
            "webhook processing failed; will retry"
        );
        let mut unit = Unit::new();
        inbox::mark_failed(&mut unit, id, attempts, status, next, error);
        if let Err(e) = self.service.store().commit(unit).await {
            tracing::error!(error = %e, "cannot record a webhook failure");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_secs(1), 2);
        assert_eq!(backoff_secs(5), 32);
        assert_eq!(backoff_secs(40), 3600);
    }
}
