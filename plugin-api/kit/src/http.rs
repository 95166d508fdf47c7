//! An HTTP client over the host's HTTP service: JSON and form bodies, an idempotency key on
//! every POST (the same one across retries), retries with exponential backoff and jitter,
//! sleeping through the host, and every attempt kept inside the call's deadline.

use crate::api::{codes, Bytes, CallCtx, Effect, Headers, HttpRequest, HttpResponse, PluginError};
use crate::form::Form;
use crate::ids::{random_unit, IdGen};
use crate::Host;
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

/// An id a caller gave, checked before it goes into a URL path: 1 to `max_len` ASCII
/// letters, digits, `_` or `-` (every provider's id alphabet), so it cannot change the
/// path. The error names `param` and says whose id it is not.
///
/// `param` is the request field the id came from as the API caller wrote it (`id` for the
/// object of the call, `payment_method`, `customer`, `price`...): the host answers the
/// caller's request with it, so they see which of their inputs was refused. `provider`
/// names the provider in the message (`'pi/../x' is not a Stripe id`).
///
/// ```
/// use payhost_plugin_kit::http::path_id;
///
/// assert_eq!(path_id("tr_WDqYK6vllg", "id", "Mollie", 64).unwrap(), "tr_WDqYK6vllg");
/// let e = path_id("tr_1/../../v2/refunds", "payment_method", "Mollie", 64).unwrap_err();
/// assert_eq!(e.param.as_deref(), Some("payment_method"));
/// ```
///
/// # Errors
/// [`PluginError::invalid`] naming `param`.
pub fn path_id(
    id: &str,
    param: &str,
    provider: &str,
    max_len: usize,
) -> Result<String, PluginError> {
    let ok = (1..=max_len).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id.to_owned())
    } else {
        Err(PluginError::invalid(
            param,
            format!("'{id}' is not a {provider} id"),
        ))
    }
}

/// An attempt is not started with less than this left before the deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// When and how often a request is tried again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; it doubles per retry.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The shortest backoff, after jitter.
    pub min_backoff: Duration,
    /// Upper bound for one attempt (also bounded by the call's deadline).
    pub attempt_timeout: Duration,
    /// Whether an answer (not a connection failure: those are always retried when it is
    /// safe) is worth trying again.
    pub retry_answer: fn(&Response) -> bool,
}

impl Default for RetryPolicy {
    /// Two retries, backoff 0.5 s doubling up to 5 s with jitter, 30 s per attempt, retrying
    /// 409, 429 and 5xx answers.
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            min_backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(30),
            retry_answer: |r| r.status == 409 || r.status == 429 || r.status >= 500,
        }
    }
}

impl RetryPolicy {
    /// The sleep before retry `n` (1-based): `min(initial * 2^(n-1), max)` scaled by a
    /// jitter in `[0.5, 1.0]`, never under `min_backoff`.
    pub fn backoff(&self, n: u32, jitter: f64) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1)));
        let capped = doubled.min(self.max_backoff);
        capped
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0) * 0.5)
            .max(self.min_backoff)
    }
}

/// How a provider's HTTP statuses become payhost's errors: a standard table a plugin
/// extends with its own cases ([`StatusErrors::on`]), checked first.
///
/// | status | code | retryable |
/// |---|---|---|
/// | 400, 422, other 4xx | `invalid_request` | no |
/// | 401, 403 | `provider_authentication` (a fixed message naming the keys to check) | no |
/// | 402 | `card_declined` | no |
/// | 404, 410 | `not_found` | no |
/// | 409 | `conflict` | no |
/// | 429 | `rate_limited` | yes |
/// | 5xx | `provider_unavailable` | yes |
/// | anything else | `plugin_internal` (an answer the plugin did not expect) | no |
///
/// A 401, 403 or 429 is refused before the provider acts: the error says so
/// ([`Effect::Nothing`](crate::api::Effect)), and the host may route the request elsewhere.
/// A 5xx says nothing of what was done: the host decides from the request.
///
/// ```
/// use payhost_plugin_kit::http::StatusErrors;
/// use payhost_plugin_kit::codes;
///
/// let errors = StatusErrors::new("Mollie", "api_key").on(422, codes::CONFLICT, false);
/// let e = errors.error(422, Some("The payment cannot be canceled"));
/// assert_eq!((e.code.as_str(), e.message.as_str()), (codes::CONFLICT, "The payment cannot be canceled"));
/// assert!(errors.error(503, None).retryable);
/// assert!(!errors.error(401, Some("raw text")).message.contains("raw text"));
/// ```
#[derive(Clone, Debug)]
pub struct StatusErrors {
    provider: String,
    credentials: String,
    overrides: Vec<(u16, &'static str, bool)>,
}

impl StatusErrors {
    /// The standard table for `provider` (named in messages); `credentials` names the
    /// config keys an operator checks when the provider refuses them (`api_key`).
    pub fn new(provider: &str, credentials: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            credentials: credentials.to_owned(),
            overrides: Vec::new(),
        }
    }

    /// `status` means `code` for this provider (checked before the standard table).
    #[must_use]
    pub fn on(mut self, status: u16, code: &'static str, retryable: bool) -> Self {
        self.overrides.push((status, code, retryable));
        self
    }

    /// The error for an answer with `status`; `message` is the provider's own words when
    /// it gave some (never used for a refused credential: providers echo keys there).
    pub fn error(&self, status: u16, message: Option<&str>) -> PluginError {
        let provider = &self.provider;
        let said = || {
            message.filter(|m| !m.trim().is_empty()).map_or_else(
                || format!("{provider} answered HTTP {status}"),
                str::to_owned,
            )
        };
        if let Some((_, code, retryable)) = self.overrides.iter().find(|(s, ..)| *s == status) {
            return PluginError::new(code, said()).retryable(*retryable);
        }
        match status {
            401 | 403 => PluginError::new(
                codes::AUTHENTICATION,
                format!(
                    "{provider} refused the credentials (HTTP {status}; check {} for this \
                     provider instance)",
                    self.credentials
                ),
            )
            .with_effect(Effect::Nothing),
            402 => PluginError::new(codes::CARD_DECLINED, said()),
            404 | 410 => PluginError::new(codes::NOT_FOUND, said()),
            409 => PluginError::new(codes::CONFLICT, said()),
            429 => PluginError::new(codes::RATE_LIMITED, said())
                .retryable(true)
                .with_effect(Effect::Nothing),
            400..=499 => PluginError::new(codes::INVALID_REQUEST, said()),
            500..=599 => PluginError::new(codes::UNAVAILABLE, said()).retryable(true),
            _ => PluginError::new(
                codes::INTERNAL,
                format!("unexpected answer from {provider} (HTTP {status})"),
            ),
        }
    }
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers (names lowercase).
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON of type `T`.
    ///
    /// # Errors
    /// `plugin_internal` saying what did not decode (the provider answered something
    /// unexpected).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PluginError::new(
                codes::INTERNAL,
                format!(
                    "unexpected answer from the provider (HTTP {}): {e}",
                    self.status
                ),
            )
        })
    }
}

impl From<HttpResponse> for Response {
    fn from(r: HttpResponse) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// A client for one provider API: a base URL, default headers, a retry policy and, for
/// APIs that take one, the name of the idempotency header.
///
/// ```
/// use payhost_plugin_kit::{HttpClient, testing::FakeHost, CallCtx};
/// let fake = FakeHost::new();
/// fake.respond_json(503, &serde_json::json!({"error": "busy"}));
/// fake.respond_json(200, &serde_json::json!({"id": "ord_1"}));
/// let client = HttpClient::new(fake.host(), "https://api.example.com")
///     .idempotency_header("Idempotency-Key");
/// let ctx = CallCtx { idempotency_key: Some("k1".into()), ..CallCtx::default() };
/// let r = client.post("/v1/orders").ctx(&ctx).json(&serde_json::json!({"amount": 5})).send().unwrap();
/// assert_eq!(r.status, 200);
/// let sent = fake.requests();
/// assert_eq!(sent.len(), 2, "the 503 was retried");
/// assert!(sent.iter().all(|r| r.headers.get("idempotency-key") == Some("k1")));
/// assert_eq!(fake.sleeps().len(), 1, "one backoff, slept through the host");
/// ```
#[derive(Clone)]
pub struct HttpClient {
    host: Host,
    base_url: String,
    headers: Headers,
    retry: RetryPolicy,
    idempotency_header: Option<String>,
    ids: std::sync::Arc<IdGen>,
}

impl HttpClient {
    /// A client for the API at `base_url` (no trailing slash needed).
    pub fn new(host: Host, base_url: &str) -> Self {
        Self {
            ids: std::sync::Arc::new(IdGen::new(&host)),
            host,
            base_url: base_url.trim_end_matches('/').to_owned(),
            headers: Headers::new(),
            retry: RetryPolicy::default(),
            idempotency_header: None,
        }
    }

    /// A header sent with every request (`User-Agent`, a pinned API version).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(name, value);
        self
    }

    /// The retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The header POSTs carry their idempotency key in (`Idempotency-Key`,
    /// `PayPal-Request-Id`): the call's key, else a generated one, the same across retries.
    /// Without it, a POST whose connection failed is not retried (it may have been done).
    pub fn idempotency_header(mut self, name: &str) -> Self {
        self.idempotency_header = Some(name.to_owned());
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The retry policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// A request to `path` (relative to the base URL, or an absolute URL).
    pub fn request(&self, method: &str, path: &str) -> Request<'_> {
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        };
        Request {
            client: self,
            method: method.to_owned(),
            url,
            query: Form::new(),
            headers: Headers::new(),
            body: Vec::new(),
            idempotency_key: None,
            deadline_ms: 0,
            can_fail_over: false,
        }
    }

    /// A GET.
    pub fn get(&self, path: &str) -> Request<'_> {
        self.request("GET", path)
    }

    /// A POST.
    pub fn post(&self, path: &str) -> Request<'_> {
        self.request("POST", path)
    }

    /// A PATCH.
    pub fn patch(&self, path: &str) -> Request<'_> {
        self.request("PATCH", path)
    }

    /// A DELETE.
    pub fn delete(&self, path: &str) -> Request<'_> {
        self.request("DELETE", path)
    }
}

/// One request being built; [`Request::send`] runs it with retries.
pub struct Request<'c> {
    client: &'c HttpClient,
    method: String,
    url: String,
    query: Form,
    headers: Headers,
    body: Vec<u8>,
    idempotency_key: Option<String>,
    deadline_ms: i64,
    can_fail_over: bool,
}

impl Request<'_> {
    /// A query parameter.
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query = self.query.set(key, value);
        self
    }

    /// A header for this request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(name, value);
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        let value = format!("Bearer {token}");
        self.header("authorization", &value)
    }

    /// A JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = serde_json::to_vec(body).unwrap_or_default();
        self.header("content-type", "application/json")
    }

    /// A form body.
    pub fn form(mut self, form: &Form) -> Self {
        self.body = form.encode().into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// The call this request belongs to: its deadline bounds every attempt, its
    /// idempotency key is sent (when the client has an idempotency header), and a call
    /// another instance can take is not retried when the provider cannot be reached.
    pub fn ctx(mut self, ctx: &CallCtx) -> Self {
        self.deadline_ms = ctx.deadline_ms;
        self.can_fail_over = ctx.can_fail_over;
        if self.idempotency_key.is_none() {
            self.idempotency_key = ctx.idempotency_key.clone();
        }
        self
    }

    /// An explicit idempotency key (one call making several POSTs derives one per step).
    pub fn idempotency_key(mut self, key: &str) -> Self {
        self.idempotency_key = Some(key.to_owned());
        self
    }

    /// Sends the request, retried as the client's policy says. Any HTTP status is an
    /// answer: map error statuses to [`PluginError`]s yourself.
    ///
    /// # Errors
    /// The host's error for the last attempt (`provider_unavailable`, `invalid_request`
    /// for a host outside `allow_hosts`), or `deadline_exceeded` when no attempt could be
    /// made in time.
    pub fn send(self) -> Result<Response, PluginError> {
        let client = self.client;
        let host = &client.host;
        let policy = &client.retry;
        let mut headers = client.headers.clone();
        for (k, v) in self.headers.iter() {
            headers.push(k, v);
        }
        let keyed = match (&client.idempotency_header, self.method.as_str()) {
            (Some(name), "POST") => {
                let key = self
                    .idempotency_key
                    .clone()
                    .unwrap_or_else(|| client.ids.next("payhost"));
                headers.push(name.as_str(), key);
                true
            }
            _ => false,
        };
        let safe_to_repeat = keyed || matches!(self.method.as_str(), "GET" | "DELETE");
        let url = if self.query.pairs().is_empty() {
            self.url
        } else {
            format!("{}?{}", self.url, self.query.encode())
        };
        let mut request = HttpRequest {
            method: self.method,
            url,
            headers,
            body: Bytes(self.body),
            timeout_ms: 0,
        };
        let min_attempt = i64::try_from(MIN_ATTEMPT.as_millis()).unwrap_or(50);
        let mut attempt = 0;
        loop {
            let remaining = (self.deadline_ms > 0).then(|| self.deadline_ms - host.now_millis());
            if remaining.is_some_and(|r| r < min_attempt) {
                return Err(PluginError::new(
                    codes::DEADLINE,
                    format!(
                        "no time left for {} {}",
                        request.method,
                        redacted(&request.url)
                    ),
                ));
            }
            let timeout = remaining.map_or(policy.attempt_timeout, |r| {
                policy
                    .attempt_timeout
                    .min(Duration::from_millis(u64::try_from(r).unwrap_or(0)))
            });
            request.timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
            let outcome = host.http(&request).map(Response::from);
            let retry = match &outcome {
                // Nothing reached the provider and another instance can take the call: the
                // host fails over at once instead of this deadline being spent here.
                Err(e) if self.can_fail_over && e.effect == Some(Effect::Nothing) => false,
                Err(e) => e.is(codes::UNAVAILABLE) && safe_to_repeat,
                Ok(r) => !r.is_success() && (policy.retry_answer)(r),
            };
            if !retry || attempt >= policy.max_retries {
                return outcome;
            }
            attempt += 1;
            let backoff = policy.backoff(attempt, random_unit());
            let pause = i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX);
            let after = self.deadline_ms - host.now_millis() - pause;
            if self.deadline_ms > 0 && after < min_attempt {
                return outcome;
            }
            if host.sleep(backoff).is_err() {
                return outcome;
            }
        }
    }
}

/// A URL without its query string (which may carry tokens), for messages.
fn redacted(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use serde_json::json;

    #[test]
    fn statuses_map_to_the_standard_codes() {
        let errors = StatusErrors::new("Acme", "api_key");
        for (status, code, retryable) in [
            (400, codes::INVALID_REQUEST, false),
            (401, codes::AUTHENTICATION, false),
            (402, codes::CARD_DECLINED, false),
            (403, codes::AUTHENTICATION, false),
            (404, codes::NOT_FOUND, false),
            (409, codes::CONFLICT, false),
            (410, codes::NOT_FOUND, false),
            (418, codes::INVALID_REQUEST, false),
            (422, codes::INVALID_REQUEST, false),
            (429, codes::RATE_LIMITED, true),
            (500, codes::UNAVAILABLE, true),
            (503, codes::UNAVAILABLE, true),
            (302, codes::INTERNAL, false),
        ] {
            let e = errors.error(status, Some("the provider's words"));
            assert_eq!(
                (e.code.as_str(), e.retryable),
                (code, retryable),
                "{status}"
            );
        }
        assert_eq!(
            errors.error(422, Some("amount too low")).message,
            "amount too low"
        );
        assert_eq!(errors.error(500, None).message, "Acme answered HTTP 500");
        assert_eq!(
            errors.error(500, Some("  ")).message,
            "Acme answered HTTP 500"
        );
    }

    #[test]
    fn refused_credentials_never_repeat_the_providers_words() {
        let errors = StatusErrors::new("Acme", "api_key");
        for status in [401, 403] {
            let e = errors.error(status, Some("Invalid API key: live_abc123"));
            assert!(!e.message.contains("live_abc123"), "{}", e.message);
            assert!(e.message.contains("check api_key"), "{}", e.message);
            assert_eq!(e.effect, Some(Effect::Nothing));
        }
        assert_eq!(errors.error(429, None).effect, Some(Effect::Nothing));
        assert_eq!(
            errors.error(503, None).effect,
            None,
            "a 5xx says nothing of what was done"
        );
    }

    #[test]
    fn a_plugins_own_cases_come_first() {
        let errors = StatusErrors::new("Acme", "api_key")
            .on(422, codes::CONFLICT, false)
            .on(409, codes::UNAVAILABLE, true);
        assert_eq!(errors.error(422, None).code, codes::CONFLICT);
        let e = errors.error(409, None);
        assert_eq!((e.code.as_str(), e.retryable), (codes::UNAVAILABLE, true));
        assert_eq!(errors.error(400, None).code, codes::INVALID_REQUEST);
    }

    #[test]
    fn path_ids_keep_to_the_id_alphabet() {
        assert_eq!(
            path_id("pi_3Mx-9", "payment", "Stripe", 64).unwrap(),
            "pi_3Mx-9"
        );
        for bad in [
            "",
            "pi/../../v1/charges",
            "pi 1",
            "pi?x=1",
            "é",
            &"a".repeat(65),
        ] {
            let e = path_id(bad, "payment", "Stripe", 64).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("payment"), "{bad}");
            assert!(e.message.contains("is not a Stripe id"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_in_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(
            p.backoff(1, 0.0),
            Duration::from_millis(500),
            "never under the minimum"
        );
        assert_eq!(p.backoff(2, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(5), "capped");
        assert_eq!(p.backoff(10, 0.0), Duration::from_millis(2500));
    }

    #[test]
    fn a_post_without_an_idempotency_header_is_not_retried_after_a_connection_failure() {
        let fake = FakeHost::new();
        fake.fail_http(PluginError::new(codes::UNAVAILABLE, "connection reset"));
        let client = HttpClient::new(fake.host(), "https://api.example.com");
        let e = client.post("/charge").json(&json!({})).send().unwrap_err();
        assert!(e.is(codes::UNAVAILABLE));
        assert_eq!(
            fake.requests().len(),
            1,
            "it may have been done: never twice"
        );
    }

    #[test]
    fn a_call_another_instance_can_take_is_not_retried_when_nothing_reached_the_provider() {
        let refused = || {
            PluginError::new(codes::UNAVAILABLE, "connection refused").with_effect(Effect::Nothing)
        };
        let fake = FakeHost::new();
        fake.fail_http(refused());
        fake.fail_http(refused());
        let client = HttpClient::new(fake.host(), "https://api.example.com")
            .idempotency_header("Idempotency-Key");
        let ctx = CallCtx {
            idempotency_key: Some("k".into()),
            can_fail_over: true,
            ..CallCtx::default()
        };
        let e = client
            .post("/pay")
            .ctx(&ctx)
            .json(&json!({}))
            .send()
            .unwrap_err();
        assert_eq!(e.effect, Some(Effect::Nothing), "{e:?}");
        assert_eq!(
            fake.requests().len(),
            1,
            "answered at once, for the host to fail over"
        );
        assert!(fake.sleeps().is_empty());
        // Alone on its route, the same call spends its retries on this provider.
        let fake = FakeHost::new();
        fake.fail_http(refused());
        fake.respond_json(200, &json!({"id": "p_1"}));
        let client = HttpClient::new(fake.host(), "https://api.example.com")
            .idempotency_header("Idempotency-Key");
        let alone = CallCtx {
            can_fail_over: false,
            ..ctx
        };
        let r = client
            .post("/pay")
            .ctx(&alone)
            .json(&json!({}))
            .send()
            .unwrap();
        assert_eq!((r.status, fake.requests().len()), (200, 2));
    }

    #[test]
    fn retries_stop_where_the_deadline_would_be_passed() {
        let fake = FakeHost::new();
        for _ in 0..5 {
            fake.respond_json(500, &json!({}));
        }
        let client = HttpClient::new(fake.host(), "https://api.example.com");
        let ctx = CallCtx {
            deadline_ms: fake.now_millis() + 1_200,
            ..CallCtx::default()
        };
        let r = client.get("/x").ctx(&ctx).send().unwrap();
        assert_eq!(r.status, 500, "the last answer is returned");
        let slept: Duration = fake.sleeps().iter().sum();
        assert!(
            slept <= Duration::from_millis(1_150),
            "the backoffs ({slept:?}) leave no time for an attempt inside the deadline"
        );
        assert!(fake.requests().iter().all(|r| r.timeout_ms <= 1_200));
        let late = CallCtx {
            deadline_ms: fake.now_millis() + 10,
            ..CallCtx::default()
        };
        let e = client.get("/x").ctx(&late).send().unwrap_err();
        assert!(e.is(codes::DEADLINE), "{e}");
    }
}
