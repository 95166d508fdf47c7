//! Stripe's v1 protocol over the author kit's HTTP client: form bodies, Bearer auth, a
//! pinned `Stripe-Version`, an `Idempotency-Key` on every POST (the caller's, else a
//! generated one, the same across retries), and retries exactly as Stripe's official SDKs
//! make them, sleeping through the host and never past the call's deadline.

use crate::config::StripeConfig;
use crate::wire::{ErrorBody, StripeError};
use payhost_plugin_kit::{
    codes, CallCtx, Form, Host, HttpClient, PluginError, Response, RetryPolicy,
};
use serde::de::DeserializeOwned;

const USER_AGENT: &str = concat!("payhost-stripe/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    /// The HTTP method's name.
    pub fn as_str(self) -> &'static str {
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

/// Stripe's error codes for a request the object's current state does not allow.
const STATE_CODES: &[&str] = &[
    "payment_intent_unexpected_state",
    "charge_already_captured",
    "charge_already_refunded",
    "charge_disputed",
    "payment_method_unexpected_state",
];

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
                        // The object's state does not allow the request.
                        _ if error
                            .code
                            .as_deref()
                            .is_some_and(|c| STATE_CODES.contains(&c)) =>
                        {
                            (codes::CONFLICT, false)
                        }
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

/// Whether the SDKs retry this answer.
pub fn should_retry(status: u16, should_retry_header: Option<&str>) -> bool {
    match should_retry_header {
        Some("true") => true,
        Some("false") => false,
        _ => status == 409 || status >= 500,
    }
}

/// A Stripe API client for one instance.
pub struct Client {
    http: HttpClient,
}

/// The SDKs' policy: at most `max_retries` retries, sleeping `min(0.5 s * 2^(n-1), 5 s)`
/// scaled by a jitter in [0.5, 1.0] and never under 0.5 s, on connection errors and on the
/// answers [`should_retry`] names.
pub fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        retry_answer: |r: &Response| should_retry(r.status, r.headers.get("stripe-should-retry")),
        ..RetryPolicy::default()
    }
}

impl Client {
    /// A client for `cfg`'s account.
    pub fn new(host: Host, cfg: &StripeConfig) -> Self {
        let http = HttpClient::new(host, cfg.base())
            .header("authorization", &format!("Bearer {}", cfg.api_key.expose()))
            .header("stripe-version", cfg.version())
            .header("user-agent", USER_AGENT)
            .idempotency_header("idempotency-key")
            .retry(policy(cfg.max_retries.unwrap_or(2)));
        Self { http }
    }

    /// One Stripe request, retried as the SDKs do, inside the call's deadline.
    ///
    /// # Errors
    /// [`Failure::Stripe`] with Stripe's error, or [`Failure::Other`].
    pub fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &Form,
        ctx: &CallCtx,
    ) -> Result<T, Failure> {
        let mut request = self.http.request(method.as_str(), path).ctx(ctx);
        request = match method {
            Method::Get | Method::Delete => {
                form.pairs().iter().fold(request, |r, (k, v)| r.query(k, v))
            }
            Method::Post => request.form(form),
        };
        let response = request.send().map_err(Failure::Other)?;
        if response.is_success() {
            return response.json().map_err(|e| {
                Failure::Other(PluginError::new(
                    codes::INTERNAL,
                    format!(
                        "unexpected answer from Stripe for {} {path}: {}",
                        method.as_str(),
                        e.message
                    ),
                ))
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&response.body) {
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
        })
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
        let p = policy(2);
        let ms = |d: std::time::Duration| d.as_millis();
        assert_eq!(ms(p.backoff(1, 1.0)), 500);
        assert_eq!(ms(p.backoff(1, 0.0)), 500, "never under 0.5 s");
        assert_eq!(ms(p.backoff(2, 1.0)), 1000);
        assert_eq!(ms(p.backoff(2, 0.0)), 500);
        assert_eq!(ms(p.backoff(10, 1.0)), 5000, "capped at 5 s");
        assert_eq!(p.max_retries, 2);
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
        assert_eq!(auth.code, codes::AUTHENTICATION);
        assert!(!auth.message.contains("sk_test"), "the key is never echoed");
        let declined = err(
            402,
            "card_error",
            Some("card_declined"),
            Some("insufficient_funds"),
        );
        assert_eq!(declined.code, codes::CARD_DECLINED);
        assert_eq!(declined.decline_code.as_deref(), Some("insufficient_funds"));
        let invalid = err(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            None,
        );
        assert_eq!(
            (invalid.code.as_str(), invalid.param.as_deref()),
            (codes::INVALID_REQUEST, Some("amount"))
        );
        assert_eq!(
            err(404, "invalid_request_error", Some("resource_missing"), None).code,
            codes::NOT_FOUND
        );
        assert_eq!(
            err(400, "idempotency_error", None, None).code,
            codes::CONFLICT
        );
        let limited = err(429, "invalid_request_error", Some("rate_limit"), None);
        assert!(limited.code == codes::RATE_LIMITED && limited.retryable);
        let down = err(500, "api_error", None, None);
        assert!(down.code == codes::UNAVAILABLE && down.retryable);
    }
}
