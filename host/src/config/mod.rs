//! `plugins.toml`: where plugins live, which provider instances to create from them, which
//! tenant uses which provider. Parsing and validation are pure and happen before any side
//! effect; every error names the file, the key and what was expected.
//!
//! One file a role: the whole [`Config`] here; its sections in `host` (`[host]`),
//! `providers` (`[providers.*]`, and one instance's file), `sections` (retention, dunning,
//! email, webhook endpoints), `routing`; the keys' forms and strength in `keys`; addresses
//! in `net`; reading a file in `load`; what a parsed config may not be in `problems`; the
//! file's shape key by key, for `config check`, in `shape`.

mod host;
pub mod keys;
mod load;
pub mod net;
mod problems;
mod providers;
pub mod routing;
mod sections;
pub mod shape;

pub use host::{HostSection, TrustedKeyConfig, DEV_PLUGIN_KEY};
pub use keys::{ApiKey, ApiKeyTable, Scope};
pub use load::{load, load_for_check, load_unchecked, parse, Loaded};
pub use problems::{known_tenants, problems, visible_ascii, weak_keys};
pub use providers::{load_instance, ConfigValue, InstanceFile, ProviderConfig, Scalar};
pub use sections::{
    DunningSection, EmailSection, RetentionSection, TelemetrySection, WebhookEndpoint,
};

pub use routing::{BreakerSection, ResolverSection, RoutingSection, Rule, When};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The development API key `make run` uses. The host refuses a non-loopback bind with it.
pub const DEV_API_KEY: &str = "dev_payhost_key";
/// The development admin key (`make run`, and the default when `admin_keys` is not set).
pub const DEV_ADMIN_KEY: &str = "dev_payhost_admin_key";
/// Secrets published in this repository (README, plugins.toml): anyone can sign with them.
pub const PUBLISHED_SECRETS: &[&str] = &["whsec_mock_development"];

/// A configured secret (an API key, a webhook secret, a URL that may carry a password) is
/// the kit's [`Secret`]: it reads from the file as the string it is and prints as `***`,
/// so sections derive `Debug` and a new secret field is hidden by its type.
pub use payhost_plugin_kit::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("{file}: key '{key}': {expected}")]
    Key {
        file: PathBuf,
        key: String,
        expected: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub host: HostSection,
    /// Provider instances by name (the name API callers and webhooks use).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Tenant id → provider instance name.
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// How payhost sends its emails (receipts, failure notices, welcome).
    #[serde(default)]
    pub email: EmailSection,
    /// The application's endpoints that receive every domain event, signed.
    #[serde(default)]
    pub webhook_endpoints: Vec<WebhookEndpoint>,
    #[serde(default)]
    pub dunning: DunningSection,
    #[serde(default)]
    pub retention: RetentionSection,
    /// Which provider instances new payments, customers and subscriptions go to, in which
    /// order when one fails, and how an instance's health is judged.
    #[serde(default)]
    pub routing: RoutingSection,
    /// Where traces go (off by default).
    #[serde(default)]
    pub telemetry: TelemetrySection,
}

impl Config {
    /// Whether plugin libraries must be signed by a trusted key: as configured, else when
    /// the host listens beyond loopback.
    pub fn require_signature(&self) -> bool {
        self.host.require_signature.unwrap_or_else(|| {
            self.host
                .bind
                .parse::<std::net::SocketAddr>()
                .map_or(true, |a| !a.ip().is_loopback())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::load::expand;
    use std::path::Path;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3_000))]

        /// Any text: expanded or refused by name, never a panic; text without `${` is kept.
        #[test]
        fn interpolation_takes_any_text(s in ".{0,80}", set in proptest::prelude::any::<bool>()) {
            let unset = |key: &str, var: &str| ConfigError::Key {
                file: "x".into(),
                key: key.into(),
                expected: var.into(),
            };
            let env = |name: &str| set.then(|| format!("<{name}>"));
            match expand(&s, "k", &unset, &env) {
                Ok(out) => {
                    if !s.contains("${") {
                        proptest::prop_assert_eq!(out, s);
                    }
                }
                Err(e) => proptest::prop_assert!(!set && e.to_string().contains('k')),
            }
        }

        /// `${NAME:-default}` is the variable when set, else the default, in any text around it.
        #[test]
        fn defaults_and_values_land_in_place(
            before in "[^$}]{0,20}", name in "[A-Z_]{1,10}", default in "[^}]{0,20}",
            after in "[^$]{0,20}", set in proptest::prelude::any::<bool>(),
        ) {
            let s = format!("{before}${{{name}:-{default}}}{after}");
            let unset = |_: &str, _: &str| ConfigError::Invalid {
                file: "x".into(),
                message: String::new(),
            };
            let env = |n: &str| set.then(|| format!("<{n}>"));
            let out = expand(&s, "k", &unset, &env).unwrap();
            let middle = if set { format!("<{name}>") } else { default };
            proptest::prop_assert_eq!(out, format!("{before}{middle}{after}"));
        }
    }

    #[test]
    fn the_public_url_is_an_http_url_without_a_query() {
        for (url, ok) in [
            ("https://pay.example.com", true),
            ("http://127.0.0.1:8080/payhost/", true),
            ("pay.example.com", false),
            ("https://", false),
            ("https://pay.example.com/?x=1", false),
            ("ftp://pay.example.com", false),
        ] {
            let c: Config = toml::from_str(&format!("[host]\npublic_url = \"{url}\"\n")).unwrap();
            let bad = super::problems(&c)
                .iter()
                .any(|(k, _)| k == "host.public_url");
            assert_eq!(bad, !ok, "{url}");
        }
    }

    #[test]
    fn telemetry_needs_a_collector_url_and_a_link_with_the_trace_id() {
        let c: Config = toml::from_str(
            "[telemetry]\notlp_endpoint = \"127.0.0.1:4318\"\ntrace_url = \"http://jaeger/trace\"\n",
        )
        .unwrap();
        let keys: Vec<String> = super::problems(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["telemetry.otlp_endpoint", "telemetry.trace_url"]);
        let c: Config = toml::from_str(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n\
             trace_url = \"http://jaeger/trace/{trace_id}\"\n",
        )
        .unwrap();
        assert!(super::problems(&c)
            .iter()
            .all(|(k, _)| !k.starts_with("telemetry")));
        assert_eq!(
            c.telemetry.trace_link("abc").as_deref(),
            Some("http://jaeger/trace/abc")
        );
        assert_eq!(c.telemetry.service_name, "payhost");
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let c: Config = toml::from_str(
            "[host]\napi_keys = [\"sk_SECRET_api\"]\nadmin_keys = [\"SECRET_admin\"]\n\
             database_url = \"postgres://u:SECRET_pw@db/x\"\n\
             [email]\ntransport = \"smtp\"\nsmtp_url = \"smtps://u:SECRET_smtp@mail\"\n\
             [[webhook_endpoints]]\nname = \"app\"\nurl = \"http://a/b\"\nsecret = \"whsec_SECRET_endpoint\"\n\
             [providers.s]\nplugin = \"stripe\"\nconfig = { api_key = \"sk_SECRET_stripe\", keys = [\"SECRET_1\", \"SECRET_2\"], n = 3 }\n",
        )
        .unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("***") && shown.contains("api_key"),
            "keys shown, values hidden: {shown}"
        );
    }

    use super::*;

    fn parse_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(Path::new("plugins.toml"), text, &move |n| {
            vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    const BASE: &str = r#"
        [host]
        default_provider = "mock"
        [providers.mock]
        plugin = "mock"
        config = { webhook_secret = "${MOCK_SECRET:-whsec_default}", list = ["a", "b"] }
        [providers.stripe_eu]
        plugin = "stripe"
        config = { api_key = "${STRIPE_API_KEY:-}" }
        [tenants]
        acme = "stripe_eu"
    "#;

    #[test]
    fn interpolates_variables_and_defaults() {
        let c = parse_with(BASE, &[("STRIPE_API_KEY", "sk_test_1")]).unwrap();
        let mock = c.providers["mock"].config_json();
        assert_eq!(
            mock,
            serde_json::json!({"webhook_secret": "whsec_default", "list": ["a", "b"]})
        );
        assert_eq!(
            c.providers["stripe_eu"].config_json(),
            serde_json::json!({"api_key": "sk_test_1"})
        );
        let unset = parse_with(BASE, &[]).unwrap();
        assert_eq!(
            unset.providers["stripe_eu"].config_json(),
            serde_json::json!({}),
            "empty values are left out"
        );
    }

    #[test]
    fn payment_provider_variable_overrides_the_default() {
        let c = parse_with(BASE, &[("PAYMENT_PROVIDER", "stripe_eu")]).unwrap();
        assert_eq!(c.host.default_provider.as_deref(), Some("stripe_eu"));
        let err = parse_with(BASE, &[("PAYMENT_PROVIDER", "paypal")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host.default_provider") && err.contains("paypal"),
            "{err}"
        );
    }

    #[test]
    fn an_unset_variable_without_default_names_key_and_variable() {
        let err = parse_with("[providers.x]\nplugin = \"${PLUGIN_NAME}\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plugins.toml")
                && err.contains("providers.x.plugin")
                && err.contains("PLUGIN_NAME"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let err = parse_with("[host]\nbnd = \"x\"", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("plugins.toml") && err.contains("bnd"), "{err}");
        let err = parse_with("[host]\ncall_timeout_ms = \"soon\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("call_timeout_ms") || err.contains("invalid type"),
            "{err}"
        );
    }

    #[test]
    fn tenants_must_name_configured_providers() {
        let err = parse_with("[tenants]\nacme = \"ghost\"", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tenants.acme") && err.contains("ghost"),
            "{err}"
        );
    }
}
