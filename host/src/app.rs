//! Wiring: from a loaded config to a running registry with its plugins and instances.

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Loaded};
use crate::events::Dispatcher;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::plugins::{CallError, Registry};
use crate::service::inflight::Inflight;
use crate::service::PaymentService;
use crate::store::{Store, StoreError};
use crate::webhooks::Webhooks;
use payhost_plugin_api::DomainEventReport;
use std::sync::Arc;
use std::time::Duration;

/// Everything the HTTP layer and the CLI share: one allocation, so the copy every request
/// and middleware layer takes is one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Loaded>,
    pub registry: Arc<Registry>,
    pub clock: Arc<dyn Clock>,
    pub service: Arc<PaymentService>,
    pub metrics: Arc<Metrics>,
    pub idempotency: Arc<Inflight>,
    pub keyring: Arc<crate::access::keyring::Keyring>,
    /// The shared work this host holds (given up at shutdown).
    pub leases: Arc<crate::lease::Leases>,
    pub webhooks: Arc<Webhooks>,
    /// The last hour of this host, for the console's charts.
    pub history: Arc<crate::history::History>,
    /// Operator actions and failed authentications, chained.
    pub audit: Arc<crate::audit::AuditTrail>,
    /// Failed authentication per source address.
    pub throttle: Arc<crate::access::throttle::Throttle>,
    /// The proxies whose X-Forwarded-For names the client.
    pub proxies: crate::access::source::Proxies,
    /// What `/admin`, the console and the CLI do to the host.
    pub operator: crate::operator::Operator,
}

/// The operator's trust in plugin libraries, from the config: its keys (those that parse:
/// `config::problems` names the others), its signature rule, its lock file.
pub fn trust_policy(loaded: &Loaded) -> crate::plugins::trust::Policy {
    use crate::plugins::trust::{Policy, TrustedKey};
    Policy {
        keys: loaded
            .config
            .host
            .trusted_keys
            .iter()
            .filter_map(|k| TrustedKey::parse(&k.name, &k.key).ok())
            .collect(),
        require_signature: loaded.config.require_signature(),
        lock_file: Some(loaded.lock_file()),
    }
}

/// Scans the plugin folder and starts every configured provider instance. Failures are
/// lifecycle events; the host comes up with whatever did load.
pub async fn start_registry(config: &Loaded, clock: Arc<dyn Clock>) -> Arc<Registry> {
    let dispatcher = Arc::new(Dispatcher::new(clock.clone()));
    let policy = trust_policy(config);
    tracing::info!(
        require_signature = policy.require_signature,
        trusted_keys = ?config.config.host.trusted_keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        lock = %config.lock_file().display(),
        "plugin trust: {}",
        if policy.require_signature {
            "every plugin library must be signed by a trusted key"
        } else {
            "unsigned plugin libraries load (with a warning): signatures are not required on loopback"
        }
    );
    let registry = Arc::new(Registry::new(
        dispatcher,
        clock,
        &config.data_dir,
        Duration::from_millis(config.config.host.call_timeout_ms),
        policy,
    ));
    if let Some(url) = &config.config.host.public_url {
        registry.set_public_url(url);
    }
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
        let metrics = Arc::new(Metrics::new(config.config.providers.keys().cloned()));
        let registry = start_registry(&config, clock.clone()).await;
        crate::plugins::watch::spawn(
            registry.clone(),
            config.plugin_dir.clone(),
            config.config.providers.clone(),
            Duration::from_millis(config.config.host.plugin_rescan_ms),
        );
        let config = Arc::new(config);
        let service = Arc::new(PaymentService::new(
            registry.clone(),
            store,
            clock.clone(),
            config.clone(),
        ));
        let observed = metrics.clone();
        let history = Arc::new(crate::history::History::default());
        let (seen, seen_clock, health) = (history.clone(), clock.clone(), service.health().clone());
        registry.observe_calls(Box::new(move |instance, op, took, error| {
            observed.call(instance, op, took, error.map(CallError::code));
            seen.call(seen_clock.now_secs(), instance, took, error.is_some());
            health.record(instance, error);
        }));
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
        let leases = Arc::new(crate::lease::Leases::new(service.store().clone()));
        let webhooks = Arc::new(Webhooks::new(
            service.clone(),
            registry.clone(),
            clock.clone(),
            leases.clone(),
        ));
        webhooks.spawn(Duration::from_secs(1));
        let outbox = Arc::new(Outbox::new(
            service.clone(),
            clock.clone(),
            &config,
            leases.clone(),
        ));
        outbox.spawn(Duration::from_millis(500));
        crate::resolver::spawn(
            service.clone(),
            clock.clone(),
            leases.clone(),
            Duration::from_secs(1),
        );
        crate::resolver::spawn_refund_checks(
            service.clone(),
            clock.clone(),
            leases.clone(),
            Duration::from_secs(1),
        );
        spawn_backlog_sampler(service.clone(), clock.clone(), history.clone());
        let audit = Arc::new(crate::audit::AuditTrail::new(
            service.store().clone(),
            clock.clone(),
        ));
        crate::retention::Sweeper {
            store: service.store().clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            policy: config.config.retention.clone(),
            mail_dir: config.mail_dir.clone(),
            audit: audit.clone(),
        }
        .spawn();
        let proxies = crate::access::source::Proxies::new(&config.config.host.trusted_proxies);
        let throttle = Arc::new(crate::access::throttle::Throttle::new(
            config.config.host.auth_failures_allowed,
        ));
        let operator = crate::operator::Operator {
            registry: registry.clone(),
            service: service.clone(),
            webhooks: webhooks.clone(),
            config: config.clone(),
            clock: clock.clone(),
        };
        Ok(Self(Arc::new(Shared {
            operator,
            keyring: Arc::new(crate::access::keyring::Keyring::new(&config.config)),
            leases,
            config,
            registry,
            clock,
            service,
            metrics,
            idempotency: Arc::new(Inflight::default()),
            webhooks,
            history,
            audit,
            throttle,
            proxies,
        })))
    }

    pub async fn start_with_system_clock(config: Loaded) -> Result<Self, StoreError> {
        Self::start(config, Arc::new(SystemClock)).await
    }
}

/// Samples the webhook backlog every 5 s for the console's chart (one indexed count).
fn spawn_backlog_sampler(
    service: Arc<PaymentService>,
    clock: Arc<dyn Clock>,
    history: Arc<crate::history::History>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Ok(pending) = service.store().inbox_pending().await {
                history.backlog(clock.now_secs(), pending);
            }
        }
    });
}

/// Refuses to listen beyond loopback with a credential published in this repository: the
/// development API key, the development admin key (also the default when `admin_keys` is
/// not set), or a published webhook secret in a provider's config (anyone could forge its
/// provider's events, which go out as signed application webhooks).
///
/// # Errors
/// A message naming the address and the setting at fault (never a secret's value).
pub fn check_bind(bind: &std::net::SocketAddr, config: &config::Config) -> Result<(), String> {
    if bind.ip().is_loopback() {
        return Ok(());
    }
    let mut found = Vec::new();
    let dev_digest = config::ApiKey::Plain(config::DEV_API_KEY.into()).digest();
    // Also when the config holds only its SHA-256.
    if config
        .host
        .api_keys
        .iter()
        .any(|k| k.digest() == dev_digest)
    {
        found.push("host.api_keys contains the development API key".to_owned());
    }
    let dev_admin = config::ApiKey::Plain(config::DEV_ADMIN_KEY.into()).digest();
    if config
        .host
        .admin_keys
        .iter()
        .any(|k| k.digest() == dev_admin)
    {
        found.push(
            "host.admin_keys contains the development admin key (the default when admin_keys \
             is not set)"
                .to_owned(),
        );
    }
    if let Some(i) = config
        .host
        .trusted_keys
        .iter()
        .position(|k| k.key.trim() == config::DEV_PLUGIN_KEY)
    {
        found.push(format!(
            "host.trusted_keys[{i}] is the development plugin-signing key (its secret key is \
             published in payhost's repository)"
        ));
    }
    for (name, provider) in &config.providers {
        for (key, value) in &provider.config {
            if value
                .texts()
                .any(|v| config::PUBLISHED_SECRETS.contains(&v))
            {
                found.push(format!(
                    "providers.{name}.config.{key} is a secret published in payhost's repository"
                ));
            }
        }
    }
    found.extend(config::weak_keys(config));
    if !found.is_empty() {
        return Err(format!(
            "refusing to bind {bind}: {}; set your own before listening beyond 127.0.0.1",
            found.join("; ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys nobody could guess (`payhost keys generate` made them).
    const API: &str = "phk_Zr8Ku2Pw9Lm4Tq7Vn3Yb6Xc5Hj1Ds0Ga";
    const ADMIN: &str = "phk_Mx3Rv8Tn1Lq6Wz4Kp9Yd2Fh7Bc0Gs5Ju";

    #[test]
    fn weak_keys_stay_on_loopback_named_never_shown() {
        let lan: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let weak: config::Config = toml::from_str(&format!(
            "[host]\napi_keys = [\"{API}\", {{ name = \"billing\", key = \"billing-key-2024\" }}]\n\
             admin_keys = [\"short_admin1\", {{ name = \"ops\", sha256 = \"{}\" }}]\n",
            config::keys::digest_hex("weak")
        ))
        .unwrap();
        let e = check_bind(&lan, &weak).unwrap_err();
        assert!(
            e.contains("host.api_keys: the key 'billing' could be guessed"),
            "{e}"
        );
        assert!(e.contains("host.admin_keys[0] could be guessed"), "{e}");
        assert!(
            !e.contains("billing-key-2024") && !e.contains("short_admin1"),
            "{e}"
        );
        // A key given as its SHA-256 is taken as it is; the strong one is not named.
        assert!(!e.contains("ops") && !e.contains("host.api_keys[0]"), "{e}");
        assert!(
            check_bind(&local, &weak).is_ok(),
            "loopback: a warning at start"
        );
        assert_eq!(config::weak_keys(&weak).len(), 2);
        // What `keys generate` prints is accepted as it is.
        let generated = config::keys::generate();
        let strong: config::Config = toml::from_str(&format!(
            "[host]\napi_keys = [\"{generated}\"]\nadmin_keys = [{{ name = \"ops\", sha256 = \"{}\" }}]\n",
            config::keys::digest_hex(&config::keys::generate())
        ))
        .unwrap();
        assert_eq!(check_bind(&lan, &strong), Ok(()));
    }

    #[test]
    fn published_credentials_stay_on_loopback() {
        let parse = |extra: &str| -> config::Config {
            toml::from_str(&format!(
                "[host]\napi_keys = [\"{API}\"]\nadmin_keys = [\"{ADMIN}\"]\n{extra}"
            ))
            .unwrap()
        };
        let lan: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(check_bind(&lan, &parse("")).is_ok());
        let mut dev = parse("");
        dev.host.api_keys = vec![config::ApiKey::Plain(config::DEV_API_KEY.into())];
        assert!(check_bind(&local, &dev).is_ok());
        assert!(check_bind(&lan, &dev)
            .unwrap_err()
            .contains("host.api_keys"));
        let defaulted: config::Config =
            toml::from_str(&format!("[host]\napi_keys = [\"{API}\"]\n")).unwrap();
        let e = check_bind(&lan, &defaulted).unwrap_err();
        assert!(e.contains("host.admin_keys"), "{e}");
        let mock = parse(
            "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = [\"whsec_mock_development\"] }\n",
        );
        let e = check_bind(&lan, &mock).unwrap_err();
        assert!(e.contains("providers.mock.config.webhook_secret"), "{e}");
        assert!(
            !e.contains("whsec_mock_development"),
            "the value is never printed"
        );
        assert!(check_bind(&local, &mock).is_ok());
        // Every one named at once, the hashed development key too.
        let all: config::Config = toml::from_str(&format!(
            "[host]\napi_keys = [{{ sha256 = \"{}\" }}]\n\
             [providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"whsec_mock_development\" }}\n",
            hex::encode(config::ApiKey::Plain(config::DEV_API_KEY.into()).digest())
        ))
        .unwrap();
        let e = check_bind(&lan, &all).unwrap_err();
        for named in [
            "host.api_keys",
            "host.admin_keys",
            "providers.mock.config.webhook_secret",
        ] {
            assert!(e.contains(named), "{named} in {e}");
        }
    }
}
