//! The payment service: every API operation as one flow — pick the provider instance, call
//! it through the typed registry, write the result and its domain events (with the
//! idempotency record, when there is one) in one durable unit, dispatch the new events —
//! and every read, answered from payhost's own records.
//!
//! Records keep the provider they were created on: operations on an existing id go to that
//! provider, whatever the tenant's provider is today.

mod attempts;
pub use attempts::resume_mark;
pub mod customers;
mod events;
pub mod inflight;
pub mod invoices;
pub mod payment_methods;
pub mod payments;
pub mod refunds;
mod resolve;
mod routes;
pub use routes::{InDoubtView, RoutingView, RuleView};
pub mod subscriptions;
pub(crate) mod sync;

pub use events::{handlers, Recorder};

use crate::api::views::List;
use crate::clock::Clock;
use crate::events::Dispatcher;
use crate::plugins::{CallError, Registry};
use crate::store::{idempotency, Listed, Record, Store, StoreError, StoredReply, Unit};
use payhost_plugin_api::{codes, CallCtx, DomainEventReport, Operation};
use rand::Rng;
use serde::Serialize;
use std::sync::Arc;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The prefix of payhost's payment ids (`pay_…`).
pub const PAYMENT_ID_PREFIX: &str = "pay";

/// Whether `id` is one of payhost's payment ids.
pub fn is_payment_id(id: &str) -> bool {
    id.strip_prefix(PAYMENT_ID_PREFIX)
        .is_some_and(|rest| rest.starts_with('_'))
}

/// A new payhost id: `prefix_`, 10 base-62 characters that grow with time (milliseconds and
/// a counter, so ids made later in this process sort later, even within a millisecond) and
/// 14 random ones. Records made in the same second list in the order they were made.
pub fn new_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 12)
        });
    let floor = ms << 12;
    let stamp = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(floor.max(last + 1))
        })
        .map_or(floor, |last| floor.max(last + 1));
    let mut head = [b'0'; 10];
    let mut n = stamp;
    for c in head.iter_mut().rev() {
        *c = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let mut rng = rand::thread_rng();
    let tail: String = (0..14)
        .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
        .collect();
    format!("{prefix}_{}{tail}", String::from_utf8_lossy(&head))
}

/// Why an operation did not happen. Nothing was written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed: a field's value, or fields that do not go together.
    #[error("{message}")]
    Invalid { param: String, message: String },
    /// An application user payhost has never seen, given without the email a new customer
    /// needs.
    #[error("no user '{0}' is known to payhost: give 'email' to create their customer")]
    UnknownUser(String),
    #[error("no such {what}: '{id}'")]
    NotFound {
        what: &'static str,
        param: &'static str,
        id: String,
    },
    /// A well-formed request the record's current state does not allow (refunding a payment
    /// that has not succeeded, capturing one that is not authorized).
    #[error("{message}")]
    InvalidState {
        param: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// The provider answered with an id payhost already holds for another record (a
    /// plugin whose ids repeat), or with another object than the one asked for.
    #[error("{0}")]
    ProviderIdConflict(String),
    #[error("{0}")]
    Call(#[from] CallError),
    /// No instance of the route could take the request (each was unreachable, not
    /// running, or had its circuit open); nothing was done anywhere.
    #[error("{0}")]
    NoInstance(String),
    /// The request's Idempotency-Key is held by a request still running.
    #[error("a request with Idempotency-Key '{0}' is still being processed; retry later")]
    KeyInFlight(String),
    #[error("{0}")]
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownCursor { param, id } => ServiceError::NotFound {
                what: "record in this list",
                param,
                id,
            },
            other => ServiceError::Store(other),
        }
    }
}

impl ServiceError {
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            param: param.to_owned(),
            message: message.into(),
        }
    }

    pub fn state(param: Option<&str>, message: impl Into<String>) -> Self {
        Self::InvalidState {
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }

    fn not_found(what: &'static str, param: &'static str, id: &str) -> Self {
        Self::NotFound {
            what,
            param,
            id: id.to_owned(),
        }
    }

    /// The provider does not do this (a capability it lacks, or an operation newer than its
    /// contract).
    fn is_unsupported(&self) -> bool {
        matches!(self, ServiceError::Call(CallError::Unsupported { .. }))
            || matches!(self, ServiceError::Call(CallError::Plugin(e)) if e.is(codes::UNSUPPORTED))
    }
}

/// The idempotency key a provider gets for a request's key: the key itself, prefixed with
/// the tenant for a tenant's requests — two tenants' `order-1` are two requests at payhost,
/// and must be two at a provider account they share (which would replay one's payment to
/// the other, or refuse it). Longer than providers take (255), the key part is hashed.
fn provider_key(tenant: Option<&str>, key: String) -> String {
    let Some(t) = tenant else { return key };
    let joined = format!("{t}:{key}");
    if joined.len() <= 255 {
        return joined;
    }
    use sha2::Digest;
    format!("{t}:{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))
}

/// Where an answer is stored when the request carried an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct IdemSlot {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

/// What the caller of an operation brings: its tenant, request id and idempotency slot.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub tenant: Option<String>,
    pub request_id: String,
    pub idempotency: Option<IdemSlot>,
    /// Set on the inner steps of a composite operation: the outer one stores the answer.
    pub defer_reply: bool,
    /// Another instance of the route can take the call if this one is never reached (told
    /// to the plugin: it answers at once instead of retrying the connection).
    pub fail_over: bool,
    /// The request's Idempotency-Key holds a payment still being resolved (its stored
    /// answer is a resume mark): the retry resumes it, never starts over.
    pub resume: Option<String>,
}

impl Ctx {
    /// The plugin's call context. Operations that make several provider calls give each its
    /// own key derived from the request's, so a retried request repeats none of them.
    fn call_ctx(&self, step: &str) -> CallCtx {
        let key = self.idempotency.as_ref().map(|i| {
            let key = match step {
                "" => i.key.clone(),
                s => format!("{}:{s}", i.key),
            };
            provider_key(self.tenant.as_deref(), key)
        });
        CallCtx {
            idempotency_key: key,
            request_id: self.request_id.clone(),
            can_fail_over: self.fail_over,
            ..CallCtx::default()
        }
    }

    fn tenant_key(&self) -> String {
        self.tenant.clone().unwrap_or_default()
    }

    /// The tenant reads are confined to: a caller that names a tenant sees only its records.
    fn scope(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The inner step of a composite operation.
    fn inner(&self) -> Ctx {
        Ctx {
            defer_reply: true,
            ..self.clone()
        }
    }
}

/// An operation's answer: created, or an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Created,
    /// Taken, its outcome not known yet (a payment in doubt): never stored under the
    /// request's Idempotency-Key, so its retry asks again.
    Accepted,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Created => 201,
            Status::Accepted => 202,
        }
    }
}

/// An operation's answer: its status and typed body.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub status: Status,
    pub body: T,
    /// Stored under the request's `Idempotency-Key` with the operation's writes.
    pub stored: bool,
}

impl<T> Reply<T> {
    pub fn ok(body: T) -> Self {
        Self {
            status: Status::Ok,
            body,
            stored: false,
        }
    }
}

/// A page of store rows as an API list.
fn list<R, V: for<'a> From<&'a R>>(page: Listed<R>) -> List<V> {
    List::new(page.data.iter().map(V::from).collect(), page.has_more)
}

/// Provider id → payhost id, for the objects an operation knows about.
#[derive(Debug, Default, Clone)]
pub struct Ids(pub(crate) Vec<(String, String)>);

impl Ids {
    pub fn with(mut self, provider_id: &str, payhost_id: &str) -> Self {
        self.0.push((provider_id.to_owned(), payhost_id.to_owned()));
        self
    }

    pub fn get(&self, provider_id: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(p, _)| p == provider_id)
            .map(|(_, h)| h.clone())
    }
}

pub struct PaymentService {
    registry: Arc<Registry>,
    store: Store,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
    config: Arc<crate::config::Loaded>,
    router: crate::routing::Router,
    health: Arc<crate::routing::Health>,
    /// Rung when a payment's outcome became unknown: the resolver looks at once.
    pub resolver_wake: Arc<crate::pace::Bell>,
}

impl PaymentService {
    pub fn new(
        registry: Arc<Registry>,
        store: Store,
        clock: Arc<dyn Clock>,
        config: Arc<crate::config::Loaded>,
    ) -> Self {
        let endpoints = config
            .config
            .webhook_endpoints
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let recorder = Recorder::new(
            store.clone(),
            registry.dispatcher().clone(),
            clock.clone(),
            endpoints,
        );
        let health = Arc::new(crate::routing::Health::new(
            config.config.routing.breaker.clone(),
            registry.dispatcher().clone(),
            config.config.providers.keys().cloned(),
        ));
        Self {
            router: crate::routing::Router::new(&config.config),
            health,
            registry,
            store,
            clock,
            recorder,
            config,
            resolver_wake: Arc::default(),
        }
    }

    /// This host's view of each instance's health (fed by every provider call).
    pub fn health(&self) -> &Arc<crate::routing::Health> {
        &self.health
    }

    pub fn config(&self) -> &crate::config::Loaded {
        &self.config
    }

    pub fn router(&self) -> &crate::routing::Router {
        &self.router
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        self.registry.dispatcher()
    }

    fn now(&self) -> i64 {
        self.clock.now_secs()
    }

    /// Refuses a provider instance name that is not configured.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming the configured ones.
    pub(super) fn check_provider(&self, name: &str) -> Result<(), ServiceError> {
        let providers = &self.config.config.providers;
        if providers.contains_key(name) {
            return Ok(());
        }
        let known: Vec<&String> = providers.keys().collect();
        Err(ServiceError::invalid(
            "provider",
            format!(
                "unknown provider '{}' (configured: {known:?})",
                name.escape_debug()
            ),
        ))
    }

    /// Whether `provider` declares `capability`.
    ///
    /// # Errors
    /// The provider is not running: what it supports is unknown until it does.
    fn supports(&self, provider: &str, capability: &str) -> Result<bool, ServiceError> {
        Ok(self.registry.get(provider)?.supports(capability))
    }

    /// Refuses a provider id for a new record when payhost already holds it for another:
    /// provider ids never repeat at a real provider, and writing one record's data under
    /// another's id would mix two customers' money.
    ///
    /// # Errors
    /// [`ServiceError::ProviderIdConflict`] naming both ids.
    async fn check_new_provider_id(
        &self,
        record: Record,
        provider: &str,
        provider_id: &str,
    ) -> Result<(), ServiceError> {
        let held = self
            .store
            .id_by_provider_id(record, provider, provider_id)
            .await?;
        if let Some(existing) = held {
            let kind = record.name();
            tracing::error!(provider, provider_id, existing = %existing, kind, "provider returned an id payhost already holds");
            return Err(ServiceError::ProviderIdConflict(format!(
                "provider '{provider}' returned id '{provider_id}' for a new {kind}, but payhost \
                 already holds that id for {kind} '{existing}'; provider ids must never repeat, \
                 so nothing was written"
            )));
        }
        Ok(())
    }

    /// Refuses a provider's answer about another object than the one asked for.
    ///
    /// # Errors
    /// [`ServiceError::ProviderIdConflict`] naming both ids.
    fn check_same_object(
        record: Record,
        provider: &str,
        asked: &str,
        answered: &str,
    ) -> Result<(), ServiceError> {
        if asked == answered {
            return Ok(());
        }
        let kind = record.name();
        tracing::error!(
            provider,
            asked,
            answered,
            kind,
            "provider answered about another object"
        );
        Err(ServiceError::ProviderIdConflict(format!(
            "provider '{provider}' was asked about {kind} '{asked}' and answered about \
             '{answered}'; nothing was written"
        )))
    }

    /// Calls operation `O` on `provider`; the reports the plugin emitted come back with the
    /// result.
    async fn call<O: Operation>(
        &self,
        provider: &str,
        ctx: CallCtx,
        request: O::Request,
    ) -> Result<(O::Response, Vec<DomainEventReport>), ServiceError> {
        let (outcome, reports) = self
            .registry
            .call_reporting::<O>(provider, ctx, request)
            .await;
        match outcome {
            Ok(v) => Ok((v, reports)),
            Err(e) => {
                // Whatever the plugin reported before failing is still a fact.
                for r in reports {
                    self.registry.reports().report(provider, r);
                }
                Err(e.into())
            }
        }
    }

    /// Writes `unit`, what the facts tell (the records the plugin's reports name brought up
    /// to date, as a webhook would), the events and the idempotency record in one durable
    /// step, then dispatches the events that were new.
    async fn finish<T: Serialize>(
        &self,
        ctx: &Ctx,
        mut unit: Unit,
        provider: &str,
        facts: Facts,
        ids: &Ids,
        mut reply: Reply<T>,
    ) -> Result<Reply<T>, ServiceError> {
        let Facts {
            own,
            emitted,
            elsewhere,
        } = facts;
        let mut ids = ids.clone();
        if !emitted.is_empty() {
            for (p, h) in self.recorder.resolve(provider, &emitted).await?.0 {
                if ids.get(&p).is_none() {
                    ids = ids.with(&p, &h);
                }
            }
            let now = self.now();
            for r in &emitted {
                sync::apply(&mut unit, provider, r, r.occurred_at, now, &mut ids);
            }
        }
        let mut events = own;
        events.extend(emitted);
        let mut pending =
            self.recorder
                .stage(&mut unit, provider, ctx.tenant.as_deref(), &events, &ids);
        for (instance, report) in &elsewhere {
            pending.extend(self.recorder.stage(
                &mut unit,
                instance,
                ctx.tenant.as_deref(),
                std::slice::from_ref(report),
                &ids,
            ));
        }
        let replayable = !ctx.defer_reply && reply.status != Status::Accepted;
        if let Some(slot) = ctx.idempotency.as_ref().filter(|_| replayable) {
            let stored = StoredReply {
                request_hash: slot.request_hash.clone(),
                status: reply.status.code(),
                body: serde_json::to_string(&reply.body)
                    .map_err(|e| ServiceError::Conflict(e.to_string()))?,
            };
            idempotency::store_reply(&mut unit, &slot.scope, &slot.key, &stored, self.now());
            reply.stored = true;
        }
        let changed = self.store.commit(unit).await?;
        self.recorder.dispatch_new(pending, &changed);
        Ok(reply)
    }
}

/// The facts an operation records: the ones its answer tells (`own`), and the reports the
/// plugin emitted while it ran (`emitted`), which may name records payhost has not seen.
#[derive(Debug, Default)]
pub(super) struct Facts {
    pub own: Vec<DomainEventReport>,
    pub emitted: Vec<DomainEventReport>,
    /// The host's own facts about other instances (a payment's failed attempts there).
    pub elsewhere: Vec<(String, DomainEventReport)>,
}

impl Facts {
    fn none() -> Self {
        Self::default()
    }
}

fn metadata_json(m: &payhost_plugin_api::Metadata) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::{is_payment_id, new_id, provider_key, PAYMENT_ID_PREFIX};

    #[test]
    fn two_tenants_keys_never_meet_at_a_provider() {
        assert_eq!(provider_key(None, "order-1".into()), "order-1");
        assert_eq!(provider_key(Some("acme"), "order-1".into()), "acme:order-1");
        assert_ne!(
            provider_key(Some("acme"), "order-1".into()),
            provider_key(Some("globex"), "order-1".into())
        );
        let long = "k".repeat(255);
        let p = provider_key(Some("acme"), long.clone());
        assert!(p.len() <= 255 && p.starts_with("acme:"), "{p}");
        assert_ne!(p, provider_key(Some("acme"), format!("{long}x")));
    }

    #[test]
    fn ids_made_later_sort_later() {
        let ids: Vec<String> = (0..2000).map(|_| new_id(PAYMENT_ID_PREFIX)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.iter().all(|i| i.len() == "pay_".len() + 24));
        assert!(ids.iter().all(|i| is_payment_id(i)));
        assert!(!is_payment_id("payment") && !is_payment_id(&new_id("cust")));
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
