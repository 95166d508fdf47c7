//! Wiring: from a loaded config to a running registry with its plugins and instances.

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Loaded};
use crate::events::Dispatcher;
use crate::plugins::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Everything the HTTP layer and the CLI share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Loaded>,
    pub registry: Arc<Registry>,
    pub clock: Arc<dyn Clock>,
}

impl AppState {
    /// Scans the plugin folder and starts every configured provider instance. Failures are
    /// lifecycle events; the host comes up with whatever did load.
    pub async fn start(config: Loaded, clock: Arc<dyn Clock>) -> Self {
        let dispatcher = Arc::new(Dispatcher::new(clock.clone()));
        let registry = Arc::new(Registry::new(
            dispatcher,
            clock.clone(),
            &config.data_dir,
            Duration::from_millis(config.config.host.call_timeout_ms),
        ));
        let dir = config.plugin_dir.clone();
        let reg = registry.clone();
        // Loading maps files and runs plugin code: keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || reg.scan(&dir)).await;
        for (name, provider) in &config.config.providers {
            let _ = registry.start_instance(name, provider).await;
        }
        Self {
            config: Arc::new(config),
            registry,
            clock,
        }
    }

    pub async fn start_with_system_clock(config: Loaded) -> Self {
        Self::start(config, Arc::new(SystemClock)).await
    }

    /// The provider a request should use: its tenant's, else the one it names, else the default.
    pub fn pick_provider(&self, tenant: Option<&str>, explicit: Option<&str>) -> Option<String> {
        let c = &self.config.config;
        tenant
            .and_then(|t| c.tenants.get(t).cloned())
            .or_else(|| explicit.map(str::to_owned))
            .or_else(|| c.host.default_provider.clone())
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
