//! The instance's configuration: keys, checks, defaults. Secrets never print.

use payhost_plugin_kit::{PluginError, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

/// PayPal's live REST API.
pub const DEFAULT_API_BASE: &str = "https://api-m.paypal.com";

/// How webhook signatures are checked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Locally: RSA-SHA256 with the certificate PayPal names, chained to a trusted root.
    #[default]
    Certificate,
    /// Locally first; when the certificate cannot be used (not fetched, not trusted here),
    /// PayPal's verify-webhook-signature API decides. A signature that does not match the
    /// certificate is refused without asking.
    CertificateThenApi,
    /// Only PayPal's verify-webhook-signature API (one round trip per delivery).
    Api,
}

/// A PayPal instance's configuration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaypalConfig {
    /// The REST app's client id.
    pub client_id: String,
    /// The REST app's secret.
    pub client_secret: Secret,
    /// The webhook's id from the developer dashboard: part of every signed message.
    pub webhook_id: String,
    /// The API's base URL (default `https://api-m.paypal.com`; the sandbox is
    /// `https://api-m.sandbox.paypal.com`; a fake PayPal in tests).
    #[serde(default)]
    pub api_base: Option<String>,
    /// Where the buyer returns after approving, when a request names none.
    #[serde(default)]
    pub return_url: Option<String>,
    /// Where the buyer returns after canceling, when a request names none.
    #[serde(default)]
    pub cancel_url: Option<String>,
    /// How webhook signatures are checked (default `certificate`).
    #[serde(default)]
    pub webhook_verification: Verification,
    /// A PEM file of the roots a webhook certificate must chain to (default: the public web
    /// PKI's roots, as browsers trust them).
    #[serde(default)]
    pub trusted_roots: Option<String>,
    /// Retries after the first attempt on 429, 5xx and connection failures (default 2).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl PaypalConfig {
    /// Checks the values the type cannot.
    ///
    /// # Errors
    /// `invalid_config` naming the key at fault (never a secret's value).
    pub fn validate(&self) -> Result<(), PluginError> {
        if self.client_id.trim().is_empty() {
            return Err(PluginError::config("client_id", "client_id is empty"));
        }
        if self.client_secret.expose().trim().is_empty() {
            return Err(PluginError::config(
                "client_secret",
                "client_secret is empty",
            ));
        }
        if self.webhook_id.trim().is_empty() {
            return Err(PluginError::config("webhook_id", "webhook_id is empty"));
        }
        if origin(self.base()).is_none() {
            return Err(PluginError::config(
                "api_base",
                "api_base must be an http(s) URL",
            ));
        }
        for (key, url) in [
            ("return_url", &self.return_url),
            ("cancel_url", &self.cancel_url),
        ] {
            if url.as_deref().is_some_and(|u| origin(u).is_none()) {
                return Err(PluginError::config(
                    key,
                    format!("{key} must be an http(s) URL"),
                ));
            }
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
}

/// `(scheme, host)` of an http(s) URL, lowercase; `None` for anything else.
pub fn origin(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?.to_owned(),
        None => authority.split(':').next()?.to_owned(),
    };
    (!host.is_empty()).then(|| (scheme, host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origins_are_scheme_and_host() {
        assert_eq!(
            origin("https://api.paypal.com/v1/notifications/certs/CERT-1"),
            Some(("https".into(), "api.paypal.com".into()))
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/x"),
            Some(("http".into(), "127.0.0.1".into()))
        );
        assert_eq!(origin("ftp://api.paypal.com/x"), None);
        assert_eq!(
            origin("https://api.paypal.com@evil.example/x"),
            None,
            "userinfo tricks"
        );
        assert_eq!(
            origin("https://API.PayPal.com"),
            Some(("https".into(), "api.paypal.com".into()))
        );
    }
}
