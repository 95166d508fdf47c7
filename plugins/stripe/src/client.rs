//! Stripe's v1 protocol over the host's HTTP service: form bodies, Bearer auth, a pinned
//! `Stripe-Version`, an `Idempotency-Key` on every POST (the caller's, else a generated one,
//! the same across retries), and retries exactly as Stripe's official SDKs make them.

use crate::config::StripeConfig;
use crate::form::Form;
use crate::wire::{ErrorBody, StripeError};
use payhost_plugin_api::abi_stable::std_types::RVec;
use payhost_plugin_api::{codes, HostBox, HttpRequest, KeyValue, PluginError};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bound for one exchange with Stripe.
const TIMEOUT_MS: u32 = 30_000;
const USER_AGENT: &str = concat!("payhost-stripe/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// Why a request did not produce the object asked for.
#[derive(Debug)]
pub enum Failure {
    /// Stripe answered with an error object.
    Stripe {
        status: u16,
        error: Box<StripeError>,
    },
    /// No usable answer (connection, timeout, an unreadable body).
    Other(PluginError),
}

impl Failure {
    /// The plugin error for this failure. Stripe's message is kept except for
    /// authentication, whose message would echo part of the key.
    pub fn into_plugin_error(self) -> PluginError {
        match self {
            Failure::Other(e) => e,
            Failure::Stripe { status, error } => {
                let message = error
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("Stripe answered {status}"));
                let (code, retryable) =
                    match (status, error.kind.as_str()) {
                        (401, _) => return PluginError::new(
                            codes::AUTHENTICATION,
                            "Stripe refused the API key (check api_key for this provider instance)",
                        ),
                        (403, _) => (codes::AUTHENTICATION, false),
                        (402, _) | (_, "card_error") => (codes::CARD_DECLINED, false),
                        (404, _) => (codes::NOT_FOUND, false),
                        (409, _) | (_, "idempotency_error") => (codes::CONFLICT, status == 409),
                        (429, _) => (codes::RATE_LIMITED, true),
                        (s, _) if s >= 500 => (codes::UNAVAILABLE, true),
                        (_, "api_error") => (codes::UNAVAILABLE, true),
                        _ => (codes::INVALID_REQUEST, false),
                    };
                let mut e = PluginError::new(code, message).retryable(retryable);
                if let Some(p) = &error.param {
                    e = e.with_param(p);
                }
                if let Some(d) = error
                    .decline_code
                    .as_ref()
                    .or(error.code.as_ref().filter(|_| code == codes::CARD_DECLINED))
                {
                    e = e.with_decline_code(d);
                }
                e
            }
        }
    }
}

pub struct Client {
    cfg: StripeConfig,
    seq: AtomicU64,
    jitter: AtomicU64,
}

/// `min(0.5 s * 2^(n-1), 5 s)` scaled by a jitter in [0.5, 1.0], never under 0.5 s — the
/// SDKs' sleep before retry `n` (1-based).
pub fn backoff(n: u32, jitter: f64) -> Duration {
    let base = (0.5 * 2f64.powi(n.saturating_sub(1) as i32)).min(5.0);
    Duration::from_secs_f64((base * (0.5 + jitter.clamp(0.0, 1.0) * 0.5)).max(0.5))
}

/// Whether the SDKs retry this answer.
pub fn should_retry(status: u16, should_retry_header: Option<&str>) -> bool {
    match should_retry_header {
        Some("true") => true,
        Some("false") => false,
        _ => status == 409 || status >= 500,
    }
}

impl Client {
    pub fn new(cfg: StripeConfig) -> Self {
        Self {
            cfg,
            seq: AtomicU64::new(0),
            jitter: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        }
    }

    pub fn config(&self) -> &StripeConfig {
        &self.cfg
    }

    fn next_jitter(&self) -> f64 {
        // xorshift64: good enough to spread retries, no dependency needed.
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        (x % 1000) as f64 / 1000.0
    }

    fn generated_key(&self, host: &HostBox) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!(
            "payhost-{}-{nanos:x}-{}",
            payhost_plugin_api::HostExt::now_secs(host),
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// One Stripe request, retried as the SDKs do.
    ///
    /// # Errors
    /// [`Failure::Stripe`] with Stripe's error, or [`Failure::Other`].
    pub fn call<T: DeserializeOwned>(
        &self,
        host: &HostBox,
        method: Method,
        path: &str,
        form: &Form,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        let mut url = format!("{}{path}", self.cfg.api_base);
        let mut body = Vec::new();
        let mut headers = vec![
            KeyValue::new(
                "authorization",
                format!("Bearer {}", self.cfg.api_key.expose()),
            ),
            KeyValue::new("stripe-version", &self.cfg.api_version),
            KeyValue::new("user-agent", USER_AGENT),
        ];
        match method {
            Method::Get | Method::Delete => {
                if !form.pairs().is_empty() {
                    url = format!("{url}?{}", form.encode());
                }
            }
            Method::Post => {
                body = form.encode().into_bytes();
                headers.push(KeyValue::new(
                    "content-type",
                    "application/x-www-form-urlencoded",
                ));
                let key = idempotency_key.map_or_else(|| self.generated_key(host), str::to_owned);
                headers.push(KeyValue::new("idempotency-key", key));
            }
        }
        let request = HttpRequest {
            method: method.as_str().into(),
            url: url.into(),
            headers: RVec::from(headers),
            body: RVec::from(body),
            timeout_ms: TIMEOUT_MS,
        };
        let mut attempt = 0;
        loop {
            let outcome = host.http(request.clone()).into_result();
            let retry = match &outcome {
                Err(e) => e.code.as_str() == codes::UNAVAILABLE,
                Ok(r) if (200..300).contains(&r.status) => false,
                Ok(r) => should_retry(
                    r.status,
                    payhost_plugin_api::lookup(&r.headers, "stripe-should-retry"),
                ),
            };
            if retry && attempt < self.cfg.max_retries {
                attempt += 1;
                std::thread::sleep(backoff(attempt, self.next_jitter()));
                continue;
            }
            let response = outcome.map_err(Failure::Other)?;
            if (200..300).contains(&response.status) {
                return serde_json::from_slice(&response.body).map_err(|e| {
                    Failure::Other(PluginError::new(
                        codes::INTERNAL,
                        format!(
                            "unexpected answer from Stripe for {} {path}: {e}",
                            method.as_str()
                        ),
                    ))
                });
            }
            return Err(match serde_json::from_slice::<ErrorBody>(&response.body) {
                Ok(b) => Failure::Stripe {
                    status: response.status,
                    error: Box::new(b.error),
                },
                Err(_) => Failure::Other(
                    PluginError::new(
                        if response.status >= 500 {
                            codes::UNAVAILABLE
                        } else {
                            codes::INTERNAL
                        },
                        format!(
                            "Stripe answered {} without an error object",
                            response.status
                        ),
                    )
                    .retryable(response.status >= 500),
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_sdks() {
        assert!(should_retry(500, None) && should_retry(503, None) && should_retry(409, None));
        assert!(!should_retry(429, None), "429 only when Stripe says so");
        assert!(should_retry(429, Some("true")));
        assert!(!should_retry(500, Some("false")));
        assert!(!should_retry(400, None) && !should_retry(402, None));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(
            backoff(1, 0.0),
            Duration::from_millis(500),
            "never under 0.5 s"
        );
        assert_eq!(backoff(2, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(10, 1.0), Duration::from_secs(5), "capped at 5 s");
    }

    #[test]
    fn stripe_errors_map_to_stable_codes() {
        let err = |status, kind: &str, code: Option<&str>, decline: Option<&str>| {
            Failure::Stripe {
                status,
                error: Box::new(StripeError {
                    kind: kind.into(),
                    code: code.map(Into::into),
                    decline_code: decline.map(Into::into),
                    message: Some("Invalid API Key provided: sk_test_****abcd".into()),
                    param: Some("amount".into()),
                    payment_intent: None,
                }),
            }
            .into_plugin_error()
        };
        let auth = err(401, "invalid_request_error", None, None);
        assert_eq!(auth.code.as_str(), codes::AUTHENTICATION);
        assert!(!auth.message.contains("sk_test"), "the key is never echoed");
        let declined = err(
            402,
            "card_error",
            Some("card_declined"),
            Some("insufficient_funds"),
        );
        assert_eq!(declined.code.as_str(), codes::CARD_DECLINED);
        assert_eq!(
            declined
                .decline_code
                .as_ref()
                .map(|d| d.as_str())
                .into_option(),
            Some("insufficient_funds")
        );
        let invalid = err(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            None,
        );
        assert_eq!(
            (
                invalid.code.as_str(),
                invalid.param.as_ref().map(|p| p.as_str()).into_option()
            ),
            (codes::INVALID_REQUEST, Some("amount"))
        );
        assert_eq!(
            err(404, "invalid_request_error", Some("resource_missing"), None)
                .code
                .as_str(),
            codes::NOT_FOUND
        );
        assert_eq!(
            err(400, "idempotency_error", None, None).code.as_str(),
            codes::CONFLICT
        );
        let limited = err(429, "invalid_request_error", Some("rate_limit"), None);
        assert!(limited.code.as_str() == codes::RATE_LIMITED && limited.retryable);
        let down = err(500, "api_error", None, None);
        assert!(down.code.as_str() == codes::UNAVAILABLE && down.retryable);
    }
}
