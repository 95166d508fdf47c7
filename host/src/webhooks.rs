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
use crate::service::{is_payment_id, new_id, Ids, PaymentService, ServiceError};
use crate::store::{inbox, Backend, NewDelivery, StoreError, Unit};
use payhost_plugin_api::{ops, CallCtx, DomainEventReport, Headers, WebhookDelivery, WebhookEvent};
use std::collections::{BTreeMap, BTreeSet};
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

/// One round's rows and what became of them so far, phase by phase.
struct Batch {
    metas: Vec<Meta>,
    /// Each row's span (`webhook <type>`), under the round's.
    spans: Vec<tracing::Span>,
    /// What each row's plugin mapped it to (empty until mapped, or when it failed).
    reports: Vec<Vec<DomainEventReport>>,
    /// The payhost ids each row's reports name.
    ids: Vec<Ids>,
    /// Rows that failed, and why: each spends an attempt.
    failures: Vec<(usize, String)>,
    /// Rows whose plugin had no free call slot: taken again next round, unspent.
    busy: BTreeSet<usize>,
    /// Rows not finished because the database was away (or their lookup failed).
    unresolved: BTreeSet<usize>,
    /// The database was away during the round.
    away: bool,
}

impl Batch {
    /// The round's rows, and the events to hand their plugins.
    fn of(rows: Vec<inbox::InboxRow>) -> (Self, Vec<WebhookEvent>) {
        let n = rows.len();
        let mut batch = Batch {
            metas: Vec::with_capacity(n),
            spans: Vec::with_capacity(n),
            reports: vec![Vec::new(); n],
            ids: vec![Ids::default(); n],
            failures: Vec::new(),
            busy: BTreeSet::new(),
            unresolved: BTreeSet::new(),
            away: false,
        };
        let mut events = Vec::with_capacity(n);
        for row in rows {
            batch.spans.push(tracing::debug_span!(
                "webhook.process",
                otel.name = %format_args!("webhook {}", row.event_type),
                provider = %row.provider,
                inbox_id = %row.id,
                event_type = %row.event_type,
                payment_id = tracing::field::Empty,
                error = tracing::field::Empty,
            ));
            batch.metas.push(Meta {
                id: row.id,
                provider: row.provider,
                attempts: row.attempts,
                created: row.created,
            });
            events.push(WebhookEvent {
                id: row.event_ref.unwrap_or(row.event_id),
                event_type: row.event_type,
                created: row.created,
                payload: row.payload,
                fetched: row.fetched,
            });
        }
        (batch, events)
    }

    /// Whether row `i` was mapped (neither failed nor left for a free slot).
    fn mapped(&self, i: usize) -> bool {
        !self.busy.contains(&i) && !self.failures.iter().any(|(f, _)| *f == i)
    }
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
                // A thin event whose id repeats for every change is stored once per change.
                event_id: event.dedup_key.clone().unwrap_or_else(|| event.id.clone()),
                event_type: event.event_type.clone(),
                payload,
                created: event.created,
                received_at: now,
                event_ref: event.dedup_key.is_some().then(|| event.id.clone()),
                fetched: event.fetched.clone(),
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

    /// [`WebhookProcessor::process_due`] for the rows taken, each in a span of its own, in
    /// three phases: the plugins map them, the ids they name are looked up, their units are
    /// committed; then the round's failures are recorded.
    async fn process(self: &Arc<Self>, rows: Vec<inbox::InboxRow>) -> Round {
        let (mut batch, events) = Batch::of(rows);
        self.map(&mut batch, events).await;
        self.name_ids(&mut batch).await;
        self.commit(&mut batch).await;
        self.conclude(batch).await
    }

    /// Phase 1: the plugins map every row (several calls at once). A row whose plugin had
    /// no call slot free (the receivers were using them) is not the event's fault: no
    /// attempt is spent, the next round takes it again.
    async fn map(&self, batch: &mut Batch, events: Vec<WebhookEvent>) {
        let n = events.len();
        let mut mapped: Vec<Option<Result<Vec<DomainEventReport>, CallError>>> =
            (0..n).map(|_| None).collect();
        let mut running = tokio::task::JoinSet::new();
        for (i, event) in events.into_iter().enumerate() {
            let (registry, provider) = (self.registry.clone(), batch.metas[i].provider.clone());
            running.spawn(
                async move {
                    let r = registry
                        .call::<ops::MapWebhook>(&provider, CallCtx::default(), event)
                        .await
                        .map(|m| m.events);
                    (i, r)
                }
                .instrument(batch.spans[i].clone()),
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
        for (i, m) in mapped.into_iter().enumerate() {
            match m {
                Some(Ok(r)) => batch.reports[i] = r,
                Some(Err(CallError::Busy { .. })) => {
                    batch.busy.insert(i);
                }
                Some(Err(e)) => batch.failures.push((i, e.to_string())),
                None => batch
                    .failures
                    .push((i, "the processing task failed".into())),
            }
        }
        if batch.busy.len() == n {
            // Every slot is taken (by receivers): give them a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !batch.busy.is_empty() {
            self.unfinished
                .locked()
                .extend(batch.busy.iter().map(|i| batch.metas[*i].id.clone()));
        }
    }

    /// Phase 2: the payhost ids the mapped rows name, per provider, together (one query per
    /// provider and 500 ids).
    async fn name_ids(&self, batch: &mut Batch) {
        let recorder = self.service.recorder();
        let mut by_provider: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in batch.metas.iter().enumerate() {
            if batch.mapped(i) {
                by_provider.entry(m.provider.clone()).or_default().push(i);
            }
        }
        for (provider, rows) in &by_provider {
            let named: Vec<&[DomainEventReport]> =
                rows.iter().map(|i| batch.reports[*i].as_slice()).collect();
            match recorder.resolve_many(provider, &named).await {
                Ok(found) => {
                    for (i, f) in rows.iter().zip(found) {
                        batch.ids[*i] = f;
                    }
                }
                Err(ServiceError::Store(e)) if e.is_unavailable() => {
                    batch.away = true;
                    batch.unresolved.extend(rows.iter().copied());
                }
                Err(e) => {
                    let e = e.to_string();
                    batch.failures.extend(rows.iter().map(|i| (*i, e.clone())));
                    batch.unresolved.extend(rows.iter().copied());
                }
            }
        }
    }

    /// Phase 3: one unit per row (its records synced, its events staged, the row marked
    /// processed), all handed to the writer at once so they share its transactions.
    async fn commit(self: &Arc<Self>, batch: &mut Batch) {
        let recorder = self.service.recorder();
        let now = self.clock.now_secs();
        let mut commits = tokio::task::JoinSet::new();
        for i in 0..batch.metas.len() {
            if !batch.mapped(i) || batch.unresolved.contains(&i) {
                continue;
            }
            let m = &batch.metas[i];
            let mut unit = Unit::new();
            let mut row_ids = std::mem::take(&mut batch.ids[i]);
            for r in &batch.reports[i] {
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
                // The row's span names the payment its event is about, linked to the
                // request that created it.
                if let Some((_, payment)) = row_ids.0.iter().find(|(_, h)| is_payment_id(h)) {
                    batch.spans[i].record("payment_id", payment.as_str());
                    self.service.link_to_payment(&batch.spans[i], payment).await;
                }
            }
            let staged = recorder.stage(&mut unit, &m.provider, None, &batch.reports[i], &row_ids);
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
                .instrument(batch.spans[i].clone()),
            );
        }
        while let Some(done) = commits.join_next().await {
            match done {
                Ok((_, Ok(_))) => {}
                Ok((i, Err(e))) if e.is_unavailable() => {
                    batch.away = true;
                    batch.unresolved.insert(i);
                }
                Ok((i, Err(e))) => batch.failures.push((i, e.to_string())),
                Err(e) => tracing::error!(error = %e, "a webhook commit task failed"),
            }
        }
    }

    /// The round's end: rows left while the database was away go back unspent (their claims
    /// go once it is back); each failure spends an attempt.
    async fn conclude(&self, batch: Batch) -> Round {
        if batch.away {
            self.unfinished.locked().extend(
                batch
                    .unresolved
                    .iter()
                    .filter(|i| !batch.failures.iter().any(|(f, _)| f == *i))
                    .map(|i| batch.metas[*i].id.clone()),
            );
        }
        for (i, error) in &batch.failures {
            batch.spans[*i].record("error", error.as_str());
            let m = &batch.metas[*i];
            self.failed(&m.id, &m.provider, m.attempts, error).await;
        }
        if batch.away {
            Round::DatabaseAway
        } else {
            Round::Taken(batch.metas.len())
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
