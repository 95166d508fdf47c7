//! Testing a plugin in its own `cargo test`, without the host: a [`FakeHost`] with
//! scripted HTTP answers, recorded events and log lines, and a manual clock; [`instance`] to
//! make a plugin from a JSON config exactly as the host would; [`call`] to run an operation
//! through the same JSON dispatch the boundary uses. The conformance suite runs on these too
//! ([`conformance::in_process`](crate::conformance::in_process)).

use crate::api::ffi::{decode, Envelope};
use crate::api::host_ops::{
    self, CacheEntry, CacheKey, CacheValue, HostServices, LogRecord, NowMillis, SleepFor,
};
use crate::api::{
    codes, CallCtx, DomainEventReport, Empty, HttpRequest, HttpResponse, Operation, PluginError,
};
use crate::host::RawHost;
use crate::{Host, Plugin, Provider};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

type Handler = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, PluginError> + Send>;
type Visitor = Box<dyn FnMut(&str) -> Result<(), String> + Send>;

#[derive(Default)]
struct State {
    now_ms: i64,
    scripted: VecDeque<Result<HttpResponse, PluginError>>,
    routes: Vec<(String, String, HttpResponse)>,
    handler: Option<Handler>,
    visitor: Option<Visitor>,
    requests: Vec<HttpRequest>,
    events: Vec<DomainEventReport>,
    logs: Vec<LogRecord>,
    sleeps: Vec<Duration>,
    cache: HashMap<String, (String, Option<i64>)>,
}

/// An in-process host for tests. Clones share state.
///
/// HTTP requests are answered by the scripted answers first (in order), then by the routes
/// of [`FakeHost::route`] (by method and path, as often as asked), then by the handler from
/// [`FakeHost::on_http`], else with a `provider_unavailable` error saying nothing was
/// scripted. Sleeping advances the manual clock instead of waiting.
///
/// A provider that calls HTTP is tested by routing what it asks for:
///
/// ```
/// use payhost_plugin_kit::prelude::*;
/// use serde_json::json;
///
/// let fake = FakeHost::new();
/// fake.route("GET", "/v2/payments/tr_1", 200, &json!({"id": "tr_1", "status": "paid"}));
/// let http = HttpClient::new(fake.host(), "https://api.example.com/v2");
/// let paid: serde_json::Value = http.get("/payments/tr_1").send().unwrap().json().unwrap();
/// assert_eq!(paid["status"], "paid");
/// // Routed again, the same path answers the object's new state.
/// fake.route("GET", "/v2/payments/tr_1", 200, &json!({"id": "tr_1", "status": "refunded"}));
/// assert_eq!(fake.requests_to("GET", "/v2/payments/tr_1").len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct FakeHost {
    state: Arc<Mutex<State>>,
}

impl FakeHost {
    /// A fake host whose clock reads 2023-11-14 22:13:20 UTC (1,700,000,000 s).
    pub fn new() -> Self {
        let fake = Self::default();
        fake.state().now_ms = 1_700_000_000_000;
        fake
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The [`Host`] to give a plugin.
    pub fn host(&self) -> Host {
        Host::from_raw(Arc::new(self.clone()))
    }

    /// Answers the next unanswered request with `status` and `body`.
    pub fn respond(&self, status: u16, body: &str) -> &Self {
        self.state().scripted.push_back(Ok(HttpResponse {
            status,
            headers: Default::default(),
            body: body.into(),
        }));
        self
    }

    /// Answers the next unanswered request with `status` and a JSON body.
    pub fn respond_json(&self, status: u16, body: &Value) -> &Self {
        self.state().scripted.push_back(Ok(HttpResponse {
            status,
            headers: crate::api::Headers::new().with("content-type", "application/json"),
            body: body.to_string().into(),
        }));
        self
    }

    /// Answers every `method` request to `path` (the URL's path, without its query) with
    /// `status` and a JSON body, until routed again.
    pub fn route(&self, method: &str, path: &str, status: u16, body: &Value) -> &Self {
        self.route_raw(method, path, status, "application/json", &body.to_string())
    }

    /// Answers every `method` request to `path` with `status` and a form-encoded body.
    pub fn route_form(&self, method: &str, path: &str, status: u16, form: &crate::Form) -> &Self {
        self.route_raw(
            method,
            path,
            status,
            "application/x-www-form-urlencoded",
            &form.encode(),
        )
    }

    /// Answers every `method` request to `path` with `status`, `content_type` and `body`.
    pub fn route_raw(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> &Self {
        let answer = HttpResponse {
            status,
            headers: crate::api::Headers::new().with("content-type", content_type),
            body: body.into(),
        };
        let mut st = self.state();
        st.routes
            .retain(|(m, p, _)| !(m.eq_ignore_ascii_case(method) && p == path));
        st.routes
            .push((method.to_ascii_uppercase(), path.to_owned(), answer));
        self
    }

    /// The requests made so far to `path` with `method` (their bodies decode with
    /// `serde_json::from_slice` or [`Form::decode`](crate::Form::decode)).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<HttpRequest> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && url_path(&r.url) == path)
            .cloned()
            .collect()
    }

    /// The next unanswered request fails as the host's HTTP service fails (no answer).
    pub fn fail_http(&self, error: PluginError) -> &Self {
        self.state().scripted.push_back(Err(error));
        self
    }

    /// Answers requests the script does not cover (a fake provider in a closure).
    pub fn on_http(
        &self,
        handler: impl FnMut(&HttpRequest) -> Result<HttpResponse, PluginError> + Send + 'static,
    ) -> &Self {
        self.state().handler = Some(Box::new(handler));
        self
    }

    /// Plays the buyer: `handler` gets each URL a buyer would open (a redirect's approval
    /// page) and does at the fake provider what the buyer would (approve, pay), so the
    /// in-process conformance suite reaches redirects and what follows them (refunds of a
    /// redirected payment).
    pub fn on_visit(
        &self,
        handler: impl FnMut(&str) -> Result<(), String> + Send + 'static,
    ) -> &Self {
        self.state().visitor = Some(Box::new(handler));
        self
    }

    /// Opens `url` as a buyer would, through [`FakeHost::on_visit`]'s handler.
    ///
    /// # Errors
    /// The handler's error, or that no handler plays the buyer.
    pub fn visit(&self, url: &str) -> Result<(), String> {
        let visitor = self.state().visitor.take();
        match visitor {
            Some(mut v) => {
                let outcome = v(url);
                self.state().visitor.get_or_insert(v);
                outcome
            }
            None => Err(format!(
                "FakeHost: nothing plays the buyer to open {url} (FakeHost::on_visit)"
            )),
        }
    }

    /// Every HTTP request made so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.state().requests.clone()
    }

    /// Every event emitted so far.
    pub fn events(&self) -> Vec<DomainEventReport> {
        self.state().events.clone()
    }

    /// Every log line written so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.state().logs.clone()
    }

    /// Every sleep asked for.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state().sleeps.clone()
    }

    /// The clock, in Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        self.state().now_ms
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.state().now_ms += i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
    }
}

/// The fake's host operations, answered through the contract's one dispatch
/// ([`host_ops::serve`]) as the host answers them.
/// A URL's path: after the scheme and host, before the query (`/v2/payments/tr_1`).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or(path)
}

impl HostServices for FakeHost {
    fn http(&self, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let scripted = {
            let mut st = self.state();
            st.requests.push(request.clone());
            st.scripted.pop_front()
        };
        if let Some(answer) = scripted {
            return answer;
        }
        let routed = self
            .state()
            .routes
            .iter()
            .find(|(m, p, _)| request.method.eq_ignore_ascii_case(m) && url_path(&request.url) == p)
            .map(|(.., answer)| answer.clone());
        if let Some(answer) = routed {
            return Ok(answer);
        }
        // The handler runs without the lock: it may call back into the fake.
        let handler = self.state().handler.take();
        match handler {
            Some(mut h) => {
                let answer = h(&request);
                self.state().handler.get_or_insert(h);
                answer
            }
            None => Err(PluginError::new(
                codes::UNAVAILABLE,
                format!(
                    "FakeHost: no answer scripted for {} {}",
                    request.method, request.url
                ),
            )
            .retryable(true)),
        }
    }

    fn emit(&self, event: DomainEventReport) -> Result<Empty, PluginError> {
        self.state().events.push(event);
        Ok(Empty {})
    }

    fn log(&self, record: LogRecord) -> Result<Empty, PluginError> {
        self.state().logs.push(record);
        Ok(Empty {})
    }

    fn now(&self, _: Empty) -> Result<NowMillis, PluginError> {
        Ok(NowMillis {
            millis: self.now_millis(),
        })
    }

    fn sleep(&self, SleepFor { millis }: SleepFor) -> Result<Empty, PluginError> {
        let d = Duration::from_millis(millis);
        self.state().sleeps.push(d);
        self.advance(d);
        Ok(Empty {})
    }

    fn cache_get(&self, CacheKey { key }: CacheKey) -> Result<CacheValue, PluginError> {
        let mut st = self.state();
        let now = st.now_ms;
        let fresh = match st.cache.get(&key) {
            Some((v, exp)) if exp.is_none_or(|e| e > now) => Some(v.clone()),
            _ => None,
        };
        if fresh.is_none() {
            st.cache.remove(&key);
        }
        Ok(CacheValue { value: fresh })
    }

    fn cache_put(
        &self,
        CacheEntry {
            key,
            value,
            ttl_secs,
        }: CacheEntry,
    ) -> Result<Empty, PluginError> {
        let mut st = self.state();
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2000);
        let expires = (ttl > 0).then(|| st.now_ms + ttl * 1000);
        st.cache.insert(key, (value, expires));
        Ok(Empty {})
    }
}

impl RawHost for FakeHost {
    fn call(&self, op: &str, message: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        host_ops::serve(self, op, message).map_err(|e| serde_json::to_vec(&e).unwrap_or_default())
    }
}

/// Makes a plugin instance from a JSON configuration with `host`, exactly as the host does
/// (unknown keys refused, required keys checked, strings coerced where the type asks).
///
/// # Errors
/// The configuration error or the plugin's own.
pub fn instance<P: Plugin>(config: Value, host: &FakeHost) -> Result<P, PluginError> {
    crate::export::instantiate::<P>(&config, host.host())
}

/// Runs operation `O` on `provider` through the JSON dispatch the boundary uses, so a test
/// also checks that requests and answers travel.
///
/// # Errors
/// The provider's error, or `protocol_error` when its answer does not decode.
pub fn call<O: Operation>(
    provider: &impl Provider,
    ctx: &CallCtx,
    request: &O::Request,
) -> Result<O::Response, PluginError>
where
    O::Request: Serialize,
    O::Response: DeserializeOwned,
{
    let message = serde_json::to_vec(&Envelope { ctx, request }).unwrap_or_default();
    let bytes = crate::export::raw_call(provider, O::NAME, &message)?;
    decode(&bytes, O::NAME)
}
