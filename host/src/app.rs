//! Wiring: from a loaded config to a running registry with its plugins and instances.

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Loaded};
use crate::events::Dispatcher;
use crate::http::Inflight;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::plugins::{CallError, Registry};
use crate::service::PaymentService;
use crate::store::{Store, StoreError};
use crate::webhooks::Webhooks;
use payhost_plugin_api::DomainEventReport;
use std::sync::Arc;
use std::time::Duration;

/// Everything the HTTP layer and the CLI share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Loaded>,
    pub registry: Arc<Registry>,
    pub clock: Arc<dyn Clock>,
    pub service: Arc<PaymentService>,
    pub metrics: Arc<Metrics>,
    pub idempotency: Arc<Inflight>,
    pub webhooks: Arc<Webhooks>,
}

/// Scans the plugin folder and starts every configured provider instance. Failures are
/// lifecycle events; the host comes up with whatever did load.
pub async fn start_registry(config: &Loaded, clock: Arc<dyn Clock>) -> Arc<Registry> {
    let dispatcher = Arc::new(Dispatcher::new(clock.clone()));
    let registry = Arc::new(Registry::new(
        dispatcher,
        clock,
        &config.data_dir,
        Duration::from_millis(config.config.host.call_timeout_ms),
    ));
    let providers = &config.config.providers;
    registry.sync(&config.plugin_dir, providers).await;
    // Configured instances whose plugin never showed up: say so.
    let idle: Vec<(&String, &crate::config::ProviderConfig)> = {
        let rows = registry.instance_rows();
        providers
            .iter()
            .filter(|(name, _)| !rows.iter().any(|r| &r.name == *name))
            .collect()
    };
    for (name, provider) in idle {
        let _ = registry.start_instance(name, provider).await;
    }
    registry
}

impl AppState {
    /// Opens and migrates the database, then loads the plugins and starts the instances.
    ///
    /// # Errors
    /// The database cannot be opened or migrated.
    pub async fn start(config: Loaded, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let store = Store::open(&config.database_url()).await?;
        tracing::info!(backend = store.backend().name(), "database ready");
        let metrics = Arc::new(Metrics::default());
        let registry = start_registry(&config, clock.clone()).await;
        crate::plugins::watch::spawn(
            registry.clone(),
            config.plugin_dir.clone(),
            config.config.providers.clone(),
            Duration::from_millis(config.config.host.plugin_rescan_ms),
        );
        let observed = metrics.clone();
        registry.observe_calls(Box::new(move |instance, op, took, error| {
            observed.call(instance, op, took, error.map(CallError::code));
        }));
        let config = Arc::new(config);
        let service = Arc::new(PaymentService::new(
            registry.clone(),
            store,
            clock.clone(),
            config.clone(),
        ));
        // Reports a plugin emits outside a call (from its own threads) are recorded too.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, DomainEventReport)>();
        registry
            .reports()
            .set(Arc::new(move |instance: &str, report| {
                let _ = tx.send((instance.to_owned(), report));
            }));
        let recorder = service.recorder().clone();
        tokio::spawn(async move {
            while let Some((instance, report)) = rx.recv().await {
                if let Err(e) = recorder.record(&instance, &[report]).await {
                    tracing::error!(provider = %instance, error = %e, "cannot record a reported event");
                }
            }
        });
        let webhooks = Arc::new(Webhooks::new(
            service.clone(),
            registry.clone(),
            clock.clone(),
        ));
        webhooks.spawn(Duration::from_secs(1));
        let outbox = Arc::new(Outbox::new(service.clone(), clock.clone(), &config));
        outbox.spawn(Duration::from_millis(500));
        Ok(Self {
            config,
            registry,
            clock,
            service,
            metrics,
            idempotency: Arc::new(Inflight::default()),
            webhooks,
        })
    }

    pub async fn start_with_system_clock(config: Loaded) -> Result<Self, StoreError> {
        Self::start(config, Arc::new(SystemClock)).await
    }
}

/// Refuses to expose the documented development key beyond loopback.
///
/// # Errors
/// A message naming the address and the key setting.
pub fn check_bind(bind: &std::net::SocketAddr, api_keys: &[String]) -> Result<(), String> {
    if !bind.ip().is_loopback() && api_keys.iter().any(|k| k == config::DEV_API_KEY) {
        return Err(format!(
            "refusing to bind {bind}: host.api_keys still contains the development key; \
             set your own keys before listening beyond 127.0.0.1"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_key_stays_on_loopback() {
        let dev = vec![config::DEV_API_KEY.to_owned()];
        assert!(check_bind(&"127.0.0.1:8080".parse().unwrap(), &dev).is_ok());
        assert!(check_bind(&"0.0.0.0:8080".parse().unwrap(), &dev).is_err());
        assert!(check_bind(&"0.0.0.0:8080".parse().unwrap(), &["prod_key_123".into()]).is_ok());
    }
}
