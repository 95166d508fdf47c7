//! PayPal's REST protocol over the author kit's HTTP client: an OAuth 2.0 client-credentials
//! token fetched once and cached until shortly before it expires (one fetch at a time; a
//! 401 fetches a new one once and repeats the request once), JSON bodies, `Prefer:
//! return=representation`, payhost's idempotency key as `PayPal-Request-Id` on every POST,
//! retries on 429, 5xx and connection failures inside the call's deadline, and PayPal's
//! error objects mapped to payhost's codes (the `debug_id` kept in the message: PayPal's
//! support asks for it).

use crate::config::PaypalConfig;
use base64::Engine;
use payhost_plugin_kit::{
    codes, CallCtx, Form, Host, HttpClient, PluginError, Response, RetryPolicy, Secret,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Mutex;

const USER_AGENT: &str = concat!("payhost-paypal/", env!("CARGO_PKG_VERSION"));

/// A token is renewed this long before PayPal says it expires (or a quarter of its life,
/// for short-lived tokens).
const RENEW_BEFORE_SECS: i64 = 300;

/// PayPal's error object.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub debug_id: Option<String>,
    #[serde(default)]
    pub details: Vec<Detail>,
}

/// One entry of an error's `details`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Detail {
    #[serde(default)]
    pub issue: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

impl ErrorBody {
    /// The first detail's issue (`INSTRUMENT_DECLINED`, `ORDER_NOT_APPROVED`, ...).
    pub fn issue(&self) -> Option<&str> {
        self.details.first().map(|d| d.issue.as_str())
    }
}

/// Why a request did not produce the object asked for.
#[derive(Debug)]
pub enum Failure {
    /// PayPal answered with an error object.
    Paypal { status: u16, error: Box<ErrorBody> },
    /// No usable answer.
    Other(PluginError),
}

/// Issues that mean "the buyer's funding was refused": a decline, not an error.
pub const DECLINES: &[&str] = &[
    "INSTRUMENT_DECLINED",
    "PAYER_CANNOT_PAY",
    "TRANSACTION_REFUSED",
    "PAYER_ACTION_REQUIRED",
];

/// Issues that mean "the object's state does not allow it".
const STATE_ISSUES: &[&str] = &[
    "ORDER_NOT_APPROVED",
    "ORDER_ALREADY_CAPTURED",
    "ORDER_ALREADY_AUTHORIZED",
    "ORDER_ALREADY_COMPLETED",
    "ORDER_COMPLETED_OR_VOIDED",
    "AUTHORIZATION_ALREADY_CAPTURED",
    "AUTHORIZATION_VOIDED",
    "AUTHORIZATION_EXPIRED",
    "PREVIOUSLY_VOIDED",
    "CANNOT_BE_VOIDED",
    "CAPTURE_FULLY_REFUNDED",
    "SUBSCRIPTION_STATUS_INVALID",
];

impl Failure {
    /// The plugin error for this failure.
    pub fn into_plugin_error(self) -> PluginError {
        let (status, error) = match self {
            Failure::Other(e) => return e,
            Failure::Paypal { status, error } => (status, error),
        };
        let issue = error.issue().unwrap_or_default().to_owned();
        let detail = error
            .details
            .first()
            .and_then(|d| d.description.clone())
            .filter(|d| !d.is_empty());
        let mut message = match (&detail, error.message.is_empty()) {
            (Some(d), _) => d.clone(),
            (None, false) => error.message.clone(),
            (None, true) if !error.name.is_empty() => {
                format!("PayPal answered {status} {}", error.name)
            }
            (None, true) => format!("PayPal answered {status}"),
        };
        if let Some(id) = &error.debug_id {
            message = format!("{message} (PayPal debug_id {id})");
        }
        let (code, retryable) = match status {
            401 => {
                return PluginError::new(
                    codes::AUTHENTICATION,
                    "PayPal refused the client credentials (check client_id and client_secret for this provider instance)",
                )
            }
            403 => (codes::AUTHENTICATION, false),
            404 => (codes::NOT_FOUND, false),
            429 => (codes::RATE_LIMITED, true),
            s if s >= 500 => (codes::UNAVAILABLE, true),
            _ if DECLINES.contains(&issue.as_str()) => (codes::CARD_DECLINED, false),
            _ if STATE_ISSUES.contains(&issue.as_str()) => (codes::CONFLICT, false),
            409 => (codes::CONFLICT, false),
            _ => (codes::INVALID_REQUEST, false),
        };
        let mut e = PluginError::new(code, message).retryable(retryable);
        if code == codes::CARD_DECLINED {
            e = e.with_decline_code(&issue.to_ascii_lowercase());
        }
        if let Some(field) = error.details.first().and_then(|d| d.field.as_deref()) {
            e = e.with_param(param_of(field));
        }
        e
    }
}

/// PayPal names fields as JSON pointers (`/purchase_units/@reference_id=='default'/amount/value`);
/// payhost's callers know its own names.
fn param_of(field: &str) -> &'static str {
    if field.contains("amount") {
        "amount"
    } else if field.contains("currency") {
        "currency"
    } else if field.contains("plan_id") {
        "price"
    } else if field.contains("return_url") {
        "return_url"
    } else if field.contains("cancel_url") {
        "cancel_url"
    } else {
        "request"
    }
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    expires_in: i64,
}

struct Cached {
    token: Secret,
    renew_at_ms: i64,
}

/// A PayPal REST client for one app.
pub struct Client {
    host: Host,
    http: HttpClient,
    oauth: HttpClient,
    basic: Secret,
    token: Mutex<Option<Cached>>,
}

/// Retries on 429, 5xx (not 409: PayPal's 409 is a duplicate request id in flight).
fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        retry_answer: |r: &Response| r.status == 429 || r.status >= 500,
        ..RetryPolicy::default()
    }
}

impl Client {
    /// A client for `cfg`'s app.
    pub fn new(host: Host, cfg: &PaypalConfig) -> Self {
        let retry = policy(cfg.max_retries.unwrap_or(2));
        let http = HttpClient::new(host.clone(), cfg.base())
            .header("user-agent", USER_AGENT)
            .header("prefer", "return=representation")
            .idempotency_header("paypal-request-id")
            .retry(retry.clone());
        // The token request carries no PayPal-Request-Id; it is safe to repeat anyway.
        let oauth = HttpClient::new(host.clone(), cfg.base())
            .header("user-agent", USER_AGENT)
            .retry(retry);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            cfg.client_id,
            cfg.client_secret.expose()
        ));
        Self {
            host,
            http,
            oauth,
            basic: Secret::new(format!("Basic {basic}")),
            token: Mutex::new(None),
        }
    }

    /// The cached token, or a new one when it is (nearly) expired or `stale` names it.
    fn token(&self, ctx: &CallCtx, stale: Option<&str>) -> Result<Secret, PluginError> {
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.host.now_millis();
        if let Some(c) = slot.as_ref() {
            let refused = stale.is_some_and(|s| s == c.token.expose());
            if now < c.renew_at_ms && !refused {
                return Ok(c.token.clone());
            }
        }
        let response = self
            .oauth
            .post("/v1/oauth2/token")
            .header("authorization", self.basic.expose())
            .form(&Form::new().set("grant_type", "client_credentials"))
            .ctx(ctx)
            .send()?;
        if !response.is_success() {
            return Err(error_of(&response).into_plugin_error());
        }
        let t: Token = response.json().map_err(|e| {
            PluginError::new(
                codes::INTERNAL,
                format!(
                    "unexpected answer from PayPal's token endpoint: {}",
                    e.message
                ),
            )
        })?;
        let life = t.expires_in.max(1);
        let renew_in = (life - RENEW_BEFORE_SECS).max(life * 3 / 4);
        let token = Secret::new(t.access_token);
        *slot = Some(Cached {
            token: token.clone(),
            renew_at_ms: now + renew_in * 1000,
        });
        Ok(token)
    }

    /// One request with a JSON body (or none); a 401 renews the token and repeats once.
    ///
    /// # Errors
    /// [`Failure::Paypal`] with PayPal's error, or [`Failure::Other`].
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        ctx: &CallCtx,
    ) -> Result<T, Failure> {
        let response = self.send(method, path, body, ctx)?;
        let text = if response.body.0.is_empty() || response.status == 204 {
            b"null".as_slice()
        } else {
            response.body.0.as_slice()
        };
        serde_json::from_slice(text).map_err(|e| {
            Failure::Other(PluginError::new(
                codes::INTERNAL,
                format!("unexpected answer from PayPal for {method} {path}: {e}"),
            ))
        })
    }

    /// [`Client::call`] answering the raw success.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        ctx: &CallCtx,
    ) -> Result<Response, Failure> {
        let token = self.token(ctx, None).map_err(Failure::Other)?;
        let mut response = self.attempt(method, path, body, ctx, &token)?;
        if response.status == 401 {
            // Revoked or expired early: one new token, one more attempt.
            self.host
                .info("PayPal refused the access token; fetching a new one");
            let fresh = self
                .token(ctx, Some(token.expose()))
                .map_err(Failure::Other)?;
            response = self.attempt(method, path, body, ctx, &fresh)?;
        }
        if response.is_success() {
            Ok(response)
        } else {
            Err(error_of(&response))
        }
    }

    fn attempt(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        ctx: &CallCtx,
        token: &Secret,
    ) -> Result<Response, Failure> {
        let mut request = self
            .http
            .request(method, path)
            .ctx(ctx)
            .bearer(token.expose());
        if let Some(b) = body {
            request = request.json(b);
        }
        request.send().map_err(Failure::Other)
    }
}

/// The error a non-2xx answer carries.
pub fn error_of(response: &Response) -> Failure {
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(b) => Failure::Paypal {
            status: response.status,
            error: Box::new(b),
        },
        Err(_) => Failure::Other(
            PluginError::new(
                if response.status >= 500 {
                    codes::UNAVAILABLE
                } else {
                    codes::INTERNAL
                },
                format!(
                    "PayPal answered {} without an error object",
                    response.status
                ),
            )
            .retryable(response.status >= 500),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_plugin_kit::testing::FakeHost;
    use serde_json::json;
    use std::time::Duration;

    fn config() -> PaypalConfig {
        serde_json::from_value(json!({
            "client_id": "app", "client_secret": "shh", "webhook_id": "WH-1",
            "api_base": "https://api-m.sandbox.paypal.com"
        }))
        .unwrap()
    }

    fn paypal_error(status: u16, issue: &str) -> PluginError {
        Failure::Paypal {
            status,
            error: Box::new(ErrorBody {
                name: "UNPROCESSABLE_ENTITY".into(),
                message: "The requested action could not be performed".into(),
                debug_id: Some("dbg123".into()),
                details: vec![Detail {
                    issue: issue.into(),
                    description: Some(format!("{issue} happened")),
                    field: Some("/purchase_units/@reference_id=='default'/amount/value".into()),
                }],
            }),
        }
        .into_plugin_error()
    }

    #[test]
    fn errors_map_to_stable_codes_and_keep_the_debug_id() {
        let declined = paypal_error(422, "INSTRUMENT_DECLINED");
        assert_eq!(declined.code, codes::CARD_DECLINED);
        assert_eq!(
            declined.decline_code.as_deref(),
            Some("instrument_declined")
        );
        assert!(declined.message.contains("dbg123"), "{declined}");
        assert_eq!(
            paypal_error(422, "ORDER_NOT_APPROVED").code,
            codes::CONFLICT
        );
        let invalid = paypal_error(400, "DECIMAL_PRECISION");
        assert_eq!(
            (invalid.code.as_str(), invalid.param.as_deref()),
            (codes::INVALID_REQUEST, Some("amount"))
        );
        assert!(paypal_error(429, "RATE_LIMIT_REACHED").retryable);
        assert!(paypal_error(503, "").retryable);
        assert_eq!(
            paypal_error(404, "INVALID_RESOURCE_ID").code,
            codes::NOT_FOUND
        );
        let auth = paypal_error(401, "");
        assert!(!auth.message.contains("shh"));
    }

    #[test]
    fn the_token_is_fetched_once_and_renewed_before_it_expires() {
        let fake = FakeHost::new();
        let client = Client::new(fake.host(), &config());
        let ctx = CallCtx::default();
        fake.respond_json(
            200,
            &json!({"access_token": "A21", "token_type": "Bearer", "expires_in": 32400}),
        );
        for _ in 0..3 {
            fake.respond_json(200, &json!({"id": "X"}));
        }
        for _ in 0..3 {
            let v: Value = client
                .call("GET", "/v2/checkout/orders/X", None, &ctx)
                .unwrap();
            assert_eq!(v["id"], "X");
        }
        let seen = fake.requests();
        assert_eq!(seen.len(), 4, "one token request for three calls");
        assert!(seen[0].url.ends_with("/v1/oauth2/token"));
        assert_eq!(
            seen[0].headers.get("authorization"),
            Some("Basic YXBwOnNoaA==")
        );
        assert!(seen[0].headers.get("paypal-request-id").is_none());
        assert!(seen[1..]
            .iter()
            .all(|r| r.headers.get("authorization") == Some("Bearer A21")));

        // Close to expiry: a new token first.
        fake.advance(Duration::from_secs(32400 - 200));
        fake.respond_json(200, &json!({"access_token": "A22", "expires_in": 32400}));
        fake.respond_json(200, &json!({"id": "X"}));
        let _: Value = client
            .call("GET", "/v2/checkout/orders/X", None, &ctx)
            .unwrap();
        let seen = fake.requests();
        assert!(seen[4].url.ends_with("/v1/oauth2/token"));
        assert_eq!(seen[5].headers.get("authorization"), Some("Bearer A22"));
    }

    #[test]
    fn a_401_renews_the_token_once_and_repeats_the_request_with_the_same_request_id() {
        let fake = FakeHost::new();
        let client = Client::new(fake.host(), &config());
        let ctx = CallCtx {
            idempotency_key: Some("order-1".into()),
            ..CallCtx::default()
        };
        fake.respond_json(200, &json!({"access_token": "A1", "expires_in": 32400}));
        fake.respond_json(401, &json!({"error": "invalid_token", "error_description": "Token signature verification failed"}));
        fake.respond_json(200, &json!({"access_token": "A2", "expires_in": 32400}));
        fake.respond_json(201, &json!({"id": "ORDER"}));
        let v: Value = client
            .call(
                "POST",
                "/v2/checkout/orders",
                Some(&json!({"intent": "CAPTURE"})),
                &ctx,
            )
            .unwrap();
        assert_eq!(v["id"], "ORDER");
        let seen = fake.requests();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].headers.get("paypal-request-id"), Some("order-1"));
        assert_eq!(seen[3].headers.get("paypal-request-id"), Some("order-1"));
        assert_eq!(seen[3].headers.get("authorization"), Some("Bearer A2"));

        // A second 401 in a row is the credentials' fault: no loop.
        fake.respond_json(401, &json!({"error": "invalid_token"}));
        fake.respond_json(200, &json!({"access_token": "A3", "expires_in": 32400}));
        fake.respond_json(401, &json!({"error": "invalid_token"}));
        let e = client
            .call::<Value>("GET", "/v2/checkout/orders/X", None, &ctx)
            .unwrap_err()
            .into_plugin_error();
        assert_eq!(e.code, codes::AUTHENTICATION);
        assert_eq!(fake.requests().len(), 7);
    }
}
