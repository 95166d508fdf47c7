//! The instance's configuration. Secrets are wrapped so they never print.

use payhost_plugin_api::{codes, PluginConfig, PluginError};
use std::fmt;

/// A secret value: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The API version payhost's wire types follow.
pub const DEFAULT_API_VERSION: &str = "2024-06-20";
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub api_key: Secret,
    /// Every active endpoint secret (several while one is being rolled).
    pub webhook_secrets: Vec<Secret>,
    pub publishable_key: Option<String>,
    pub api_base: String,
    pub api_version: String,
    /// Retries after the first attempt (Stripe's SDKs: 2).
    pub max_retries: u32,
}

impl StripeConfig {
    /// Reads `api_key`, `webhook_secret` (one or several), and the optional
    /// `publishable_key`, `api_base`, `api_version`, `max_retries`.
    ///
    /// # Errors
    /// `invalid_config` naming the key at fault (never its value).
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let api_key = c.require("api_key")?;
        if !(api_key.starts_with("sk_") || api_key.starts_with("rk_")) {
            return Err(PluginError::new(
                codes::CONFIG,
                "api_key must be a Stripe secret or restricted key (sk_... or rk_...)",
            )
            .with_param("api_key"));
        }
        c.require("webhook_secret")?;
        let api_base = c
            .get("api_base")
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/');
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            return Err(
                PluginError::new(codes::CONFIG, "api_base must be an http(s) URL")
                    .with_param("api_base"),
            );
        }
        let max_retries = match c.get("max_retries") {
            None => 2,
            Some(v) => v.parse().map_err(|_| {
                PluginError::new(codes::CONFIG, "max_retries must be a number")
                    .with_param("max_retries")
            })?,
        };
        Ok(Self {
            api_key: Secret::new(api_key),
            webhook_secrets: c
                .get_all("webhook_secret")
                .into_iter()
                .map(Secret::new)
                .collect(),
            publishable_key: c.get("publishable_key").map(str::to_owned),
            api_base: api_base.to_owned(),
            api_version: c
                .get("api_version")
                .unwrap_or(DEFAULT_API_VERSION)
                .to_owned(),
            max_retries,
        })
    }
}
