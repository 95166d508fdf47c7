//! The instance's configuration: keys, checks, defaults. Secrets never print.

use payhost_plugin_kit::config::OneOrMany;
use payhost_plugin_kit::{PluginError, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

/// The API version payhost's wire types follow.
pub const DEFAULT_API_VERSION: &str = "2024-06-20";
/// Stripe's API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// A Stripe instance's configuration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// A secret (`sk_...`) or restricted (`rk_...`) API key.
    pub api_key: Secret,
    /// The webhook endpoint's signing secret (`whsec_...`); a list while one is rolled.
    pub webhook_secret: OneOrMany<Secret>,
    /// The publishable key (`pk_...`) clients use with Stripe.js.
    #[serde(default)]
    pub publishable_key: Option<String>,
    /// The API's base URL (default `https://api.stripe.com`; a fake Stripe in tests).
    #[serde(default)]
    pub api_base: Option<String>,
    /// The `Stripe-Version` sent with every request (default 2024-06-20).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Retries after the first attempt, as Stripe's SDKs (default 2).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl StripeConfig {
    /// Checks the values the type cannot.
    ///
    /// # Errors
    /// `invalid_config` naming the key at fault (never its value).
    pub fn validate(&self) -> Result<(), PluginError> {
        let key = self.api_key.expose();
        if !(key.starts_with("sk_") || key.starts_with("rk_")) {
            return Err(PluginError::config(
                "api_key",
                "api_key must be a Stripe secret or restricted key (sk_... or rk_...)",
            ));
        }
        if !(self.base().starts_with("https://") || self.base().starts_with("http://")) {
            return Err(PluginError::config(
                "api_base",
                "api_base must be an http(s) URL",
            ));
        }
        Ok(())
    }

    /// The API's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        self.api_base
            .as_deref()
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/')
    }

    /// The pinned API version.
    pub fn version(&self) -> &str {
        self.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION)
    }
}
