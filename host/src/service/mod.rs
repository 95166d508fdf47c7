//! The payment service: every API operation as one flow — pick the provider instance, call
//! it on the blocking pool, write the result and its domain events (with the idempotency
//! record, when there is one) in one durable unit, then dispatch the new events.
//!
//! Records keep the provider they were created on: operations on an existing id go to that
//! provider, whatever the tenant's provider is today.

pub mod customers;
mod events;
pub mod invoices;
pub mod payments;
mod rows;
pub mod subscriptions;

pub(crate) use customers::erase_customer;
pub use events::{EventFilter, Recorder};
pub use rows::new_id;

use crate::clock::Clock;
use crate::events::Dispatcher;
use crate::plugins::{CallError, Registry};
use crate::store::{Store, StoreError, Unit};
use payhost_plugin_api::{CallCtx, DomainEventReport, Operation};
use serde_json::Value;
use std::sync::Arc;

/// Why an operation did not happen. Nothing was written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{message}")]
    Invalid { param: String, message: String },
    #[error("no such {what}: '{id}'")]
    NotFound {
        what: &'static str,
        param: &'static str,
        id: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// The provider answered with an id payhost already holds for another record (a
    /// plugin whose ids repeat), or with another object than the one asked for.
    #[error("{0}")]
    ProviderIdConflict(String),
    #[error("{0}")]
    Call(#[from] CallError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ServiceError {
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            param: param.to_owned(),
            message: message.into(),
        }
    }
}

/// The kinds of records that carry a provider's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Customer,
    Payment,
    Subscription,
    Refund,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Payment => "payment",
            Kind::Subscription => "subscription",
            Kind::Refund => "refund",
        }
    }
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
}

impl Ctx {
    /// The plugin's call context. Operations that make several provider calls give each its
    /// own key derived from the request's, so a retried request repeats none of them.
    fn call_ctx(&self, step: &str) -> CallCtx {
        let key = self.idempotency.as_ref().map(|i| match step {
            "" => i.key.clone(),
            s => format!("{}:{s}", i.key),
        });
        CallCtx {
            idempotency_key: key,
            request_id: self.request_id.clone(),
            deadline_ms: 0,
        }
    }

    pub(super) fn tenant_key(&self) -> String {
        self.tenant.clone().unwrap_or_default()
    }
}

/// An operation's answer: HTTP status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// Provider id → payhost id, for the objects an operation knows about.
#[derive(Debug, Default, Clone)]
pub struct Ids(Vec<(String, String)>);

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
        Self {
            registry,
            store,
            clock,
            recorder,
            config,
        }
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

    /// The provider instance for a new record: the tenant's, else the one named, else the
    /// default.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] when none applies or the one named is not configured.
    fn pick_provider(&self, ctx: &Ctx, explicit: Option<&str>) -> Result<String, ServiceError> {
        let c = &self.config.config;
        if let Some(tenant) = &ctx.tenant {
            if let Some(p) = c.tenants.get(tenant) {
                return Ok(p.clone());
            }
        }
        if let Some(p) = explicit {
            if !c.providers.contains_key(p) {
                let known: Vec<&String> = c.providers.keys().collect();
                return Err(ServiceError::invalid(
                    "provider",
                    format!("unknown provider '{p}' (configured: {known:?})"),
                ));
            }
            return Ok(p.to_owned());
        }
        c.host.default_provider.clone().ok_or_else(|| {
            ServiceError::invalid(
                "provider",
                "no provider given and no default provider is configured",
            )
        })
    }

    /// Refuses a provider id for a new record when payhost already holds it for another:
    /// provider ids never repeat at a real provider, and writing one record's data under
    /// another's id would mix two customers' money.
    ///
    /// # Errors
    /// [`ServiceError::ProviderIdConflict`] naming both ids.
    async fn check_new_provider_id(
        &self,
        kind: Kind,
        provider: &str,
        provider_id: &str,
    ) -> Result<(), ServiceError> {
        let sql = match kind {
            Kind::Customer => "SELECT id FROM customers WHERE provider = $1 AND provider_id = $2",
            Kind::Payment => "SELECT id FROM payments WHERE provider = $1 AND provider_id = $2",
            Kind::Subscription => {
                "SELECT id FROM subscriptions WHERE provider = $1 AND provider_id = $2"
            }
            Kind::Refund => "SELECT id FROM refunds WHERE provider = $1 AND provider_id = $2",
        };
        let held = self
            .store
            .one(sql, vec![provider.into(), provider_id.into()])
            .await?;
        if let Some(row) = held {
            let existing = crate::store::RowExt::text(&row, "id")?;
            tracing::error!(provider, provider_id, existing = %existing, kind = kind.name(), "provider returned an id payhost already holds");
            return Err(ServiceError::ProviderIdConflict(format!(
                "provider '{provider}' returned id '{provider_id}' for a new {}, but payhost \
                 already holds that id for {} '{existing}'; provider ids must never repeat, \
                 so nothing was written",
                kind.name(),
                kind.name()
            )));
        }
        Ok(())
    }

    /// Refuses a provider's answer about another object than the one asked for.
    ///
    /// # Errors
    /// [`ServiceError::ProviderIdConflict`] naming both ids.
    fn check_same_object(
        kind: Kind,
        provider: &str,
        asked: &str,
        answered: &str,
    ) -> Result<(), ServiceError> {
        if asked == answered {
            return Ok(());
        }
        tracing::error!(
            provider,
            asked,
            answered,
            kind = kind.name(),
            "provider answered about another object"
        );
        Err(ServiceError::ProviderIdConflict(format!(
            "provider '{provider}' was asked about {} '{asked}' and answered about '{answered}'; \
             nothing was written",
            kind.name()
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

    /// Writes `unit`, the events and the idempotency record in one durable step, then
    /// dispatches the events that were new.
    async fn finish(
        &self,
        ctx: &Ctx,
        mut unit: Unit,
        provider: &str,
        events: Vec<DomainEventReport>,
        ids: &Ids,
        reply: Reply,
    ) -> Result<Reply, ServiceError> {
        let pending = self
            .recorder
            .stage(&mut unit, provider, ctx.tenant.as_deref(), &events, ids);
        if let Some(slot) = ctx.idempotency.as_ref().filter(|_| !ctx.defer_reply) {
            unit.push(
                "INSERT INTO idempotency_keys \
                 (scope, idem_key, request_hash, status, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    slot.scope.clone().into(),
                    slot.key.clone().into(),
                    slot.request_hash.clone().into(),
                    i64::from(reply.status).into(),
                    reply.body.to_string().into(),
                    self.now().into(),
                ],
            );
        }
        let changed = self.store.commit(unit).await?;
        self.recorder.dispatch_new(pending, &changed);
        Ok(reply)
    }
}

fn metadata_json(m: &payhost_plugin_api::Metadata) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}
