//! The instance's configuration: its API key, where the API is, where buyers return.
//! Secrets never print.

use payhost_plugin_kit::{PluginError, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

/// Mollie's API.
pub const DEFAULT_API_BASE: &str = "https://api.mollie.com/v2";

/// A Mollie instance's configuration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MollieConfig {
    /// The API key: `test_…` or `live_…` (Dashboard → Developers → API keys), or an
    /// organization access token `access_…`. The same key authenticates webhooks: each
    /// one is checked by reading the payment it names with it.
    pub api_key: Secret,
    /// The API's base URL (default `https://api.mollie.com/v2`; a fake Mollie in tests).
    #[serde(default)]
    pub api_base: Option<String>,
    /// Where the buyer returns from Mollie's checkout when a payment names no
    /// `return_url`. Mollie refuses a payment without one.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Retries after the first attempt on 429, 5xx and connection failures (default 2).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl MollieConfig {
    /// The API's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        self.api_base
            .as_deref()
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/')
    }

    /// Whether the key is a test-mode key.
    pub fn test_mode(&self) -> bool {
        self.api_key.expose().starts_with("test_")
    }

    /// Checks the values the type cannot.
    ///
    /// # Errors
    /// `invalid_config` naming the key at fault (never a secret's value).
    pub fn validate(&self) -> Result<(), PluginError> {
        let key = self.api_key.expose();
        let prefixed = ["test_", "live_", "access_"]
            .iter()
            .any(|p| key.strip_prefix(p).is_some_and(|rest| rest.len() >= 8));
        if !prefixed {
            return Err(PluginError::config(
                "api_key",
                "api_key must be a Mollie API key (test_… or live_…) or an access token (access_…)",
            ));
        }
        if !http_url(self.base()) {
            return Err(PluginError::config(
                "api_base",
                "api_base must be an http(s) URL",
            ));
        }
        if let Some(u) = &self.redirect_url {
            if !http_url(u) {
                return Err(PluginError::config(
                    "redirect_url",
                    "redirect_url must be an http(s) URL",
                ));
            }
        }
        Ok(())
    }
}

fn http_url(u: &str) -> bool {
    ["http://", "https://"]
        .iter()
        .any(|p| u.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: &str, base: Option<&str>) -> MollieConfig {
        MollieConfig {
            api_key: Secret::new(key),
            api_base: base.map(str::to_owned),
            redirect_url: None,
            max_retries: None,
        }
    }

    #[test]
    fn keys_and_urls_are_checked_naming_the_key_never_its_value() {
        assert!(config("test_dHar4XY7LxsDOtmnkVtjNVWXLSlXsM", None)
            .validate()
            .is_ok());
        let e = config("sk_test_51abcdefgh", None).validate().unwrap_err();
        assert_eq!(e.param.as_deref(), Some("api_key"));
        assert!(!e.message.contains("sk_test"), "{}", e.message);
        let e = config("live_abcdefghij", Some("ftp://x"))
            .validate()
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("api_base"));
        assert_eq!(
            config("test_abcdefghij", Some("http://127.0.0.1:9/v2/")).base(),
            "http://127.0.0.1:9/v2"
        );
    }
}
