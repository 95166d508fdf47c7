//! The host services one provider instance receives (`payhost_plugin_api::host_ops`): HTTP
//! with an egress allowlist and the call's deadline, event emission, structured logging,
//! the host clock, sleeping within the deadline, and a per-instance cache.
//! Every entry point catches its own panics: an unwind must never cross into a plugin.

use crate::clock::Clock;
use crate::events::{Dispatcher, DomainEvent, Event};
use crate::locks::{Locked, ReadWriteLocked};
use crate::outgoing::{http_client, HttpClient};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use payhost_plugin_api::abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use payhost_plugin_api::ffi::{encode, HostFfi};
use payhost_plugin_api::host_ops::{
    self, CacheEntry, CacheKey, CacheValue, HostServices, LogRecord, NowMillis, SleepFor,
};
use payhost_plugin_api::{
    codes, DomainEventReport, Effect, Empty, Headers, HttpRequest, HttpResponse, LogLevel,
    PluginError,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What the host knows about the call running on this thread.
#[derive(Default)]
struct CurrentCall {
    /// Reports emitted during the call, recorded with its result.
    reports: Vec<DomainEventReport>,
    /// Unix milliseconds (host clock) by which the call must answer; 0: none.
    deadline_ms: i64,
    /// Whether one of the call's HTTP requests got past connecting (it may have reached
    /// the provider). A call none of whose requests did cannot have acted there.
    contacted: bool,
}

/// What the host saw of a call besides its result.
#[derive(Debug, Default)]
pub struct CallTrace {
    /// Reports emitted during the call, recorded with its result.
    pub reports: Vec<DomainEventReport>,
    /// One of its HTTP requests got past connecting.
    pub contacted: bool,
}

thread_local! {
    static CALL: RefCell<Option<CurrentCall>> = const { RefCell::new(None) };
}

/// Runs `f` (a provider call) with its deadline known to the services it uses; returns what
/// it returned with what the host saw of it (the reports the plugin emitted, whether its
/// HTTP requests reached anyone).
pub fn within_call<T>(deadline_ms: i64, f: impl FnOnce() -> T) -> (T, CallTrace) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CALL.with(|c| *c.borrow_mut() = None);
        }
    }
    CALL.with(|c| {
        *c.borrow_mut() = Some(CurrentCall {
            reports: Vec::new(),
            deadline_ms,
            contacted: false,
        })
    });
    let _reset = Reset;
    let out = f();
    let trace = CALL
        .with(|c| c.borrow_mut().take())
        .map(|c| CallTrace {
            reports: c.reports,
            contacted: c.contacted,
        })
        .unwrap_or_default();
    (out, trace)
}

/// Notes that the call running on this thread may have reached its provider.
fn note_contact() {
    CALL.with(|c| {
        if let Some(call) = c.borrow_mut().as_mut() {
            call.contacted = true;
        }
    });
}

fn current_deadline() -> i64 {
    CALL.with(|c| c.borrow().as_ref().map_or(0, |c| c.deadline_ms))
}

/// Where reports emitted outside a host call (from a plugin's own threads) go: the payment
/// service's recorder once the host is wired, the dispatcher before that.
pub type ReportHandler = Arc<dyn Fn(&str, DomainEventReport) + Send + Sync>;

pub struct ReportSink {
    dispatcher: Arc<Dispatcher>,
    handler: RwLock<Option<ReportHandler>>,
}

impl ReportSink {
    pub fn new(dispatcher: Arc<Dispatcher>) -> Self {
        Self {
            dispatcher,
            handler: RwLock::new(None),
        }
    }

    pub fn set(&self, handler: ReportHandler) {
        *self.handler.write_locked() = Some(handler);
    }

    pub fn report(&self, instance: &str, report: DomainEventReport) {
        let handler = self.handler.read_locked().clone();
        match handler {
            Some(h) => h(instance, report),
            None => self
                .dispatcher
                .dispatch(Event::Domain(Box::new(DomainEvent::from_report(
                    instance, &report,
                )))),
        }
    }
}

/// Default upper bound for one HTTP exchange when the plugin gives none.
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body a plugin gets (a provider answering more is misbehaving).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

pub struct InstanceServices {
    instance: String,
    allow_hosts: Vec<String>,
    sink: Arc<ReportSink>,
    clock: Arc<dyn Clock>,
    runtime: tokio::runtime::Handle,
    client: HttpClient,
    /// The instance's cache: key → (value, expiry in Unix ms, 0 for none).
    cache: Mutex<HashMap<String, (String, i64)>>,
}

impl InstanceServices {
    pub fn new(
        instance: &str,
        allow_hosts: Vec<String>,
        sink: Arc<ReportSink>,
        clock: Arc<dyn Clock>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            instance: instance.to_owned(),
            allow_hosts,
            sink,
            clock,
            runtime,
            client: http_client(Duration::from_secs(10)),
            cache: Mutex::default(),
        }
    }

    /// The hosts this instance may reach.
    pub fn allows(&self, host: &str) -> bool {
        self.allow_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }

    /// One HTTP exchange for the plugin (also used to follow a conformance redirect).
    pub fn exchange(&self, req: HttpRequest) -> Result<HttpResponse, PluginError> {
        let uri: hyper::Uri = req
            .url
            .parse()
            .map_err(|_| PluginError::invalid("url", format!("'{}' is not a URL", req.url)))?;
        let host = uri.host().unwrap_or_default();
        if !self.allows(host) {
            return Err(PluginError::invalid(
                "url",
                format!("host '{host}' is not in this provider instance's allow_hosts"),
            ));
        }
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(PluginError::invalid(
                "url",
                format!("'{}' is neither http:// nor https://", uri.path()),
            ));
        }
        // A child of the plugin's call (entered on this thread): method, host and path;
        // never the query or the body.
        let span = tracing::debug_span!(
            "provider.http",
            otel.name = %format_args!("{} {host}", req.method.as_str()),
            otel.kind = "client",
            http.request.method = req.method.as_str(),
            server.address = host,
            url.path = uri.path(),
            http.response.status_code = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let _entered = span.enter();
        let mut builder = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(uri.clone());
        for (k, v) in req.headers.iter() {
            builder = builder.header(k, v);
        }
        let mut request = builder
            .body(Full::new(Bytes::from(req.body.0)))
            .map_err(|e| PluginError::invalid("headers", e.to_string()))?;
        crate::telemetry::inject(request.headers_mut());
        let mut timeout = match req.timeout_ms {
            0 => DEFAULT_HTTP_TIMEOUT,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let deadline = current_deadline();
        if deadline > 0 {
            let left = deadline - self.clock.now_millis();
            if left <= 0 {
                return Err(PluginError::new(
                    codes::DEADLINE,
                    "the call's deadline passed before the request was sent",
                ));
            }
            timeout = timeout.min(Duration::from_millis(left.unsigned_abs()));
        }
        // A connection that never opened sent nothing; anything later may have reached the
        // provider (a reset mid-answer, a timeout after the request left).
        let unavailable = |m: String, effect: Effect| {
            PluginError::new(codes::UNAVAILABLE, m)
                .retryable(true)
                .with_effect(effect)
        };
        let outcome = self.runtime.block_on(async {
            let send = async {
                let resp = self.client.request(request).await.map_err(|e| {
                    if e.is_connect() {
                        unavailable(e.to_string(), Effect::Nothing)
                    } else {
                        unavailable(e.to_string(), Effect::Uncertain)
                    }
                })?;
                let status = resp.status().as_u16();
                let mut headers = Headers::new();
                for (k, v) in resp.headers() {
                    headers.push(k.as_str(), v.to_str().unwrap_or_default());
                }
                let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| {
                        unavailable(format!("reading the answer: {e}"), Effect::Uncertain)
                    })?
                    .to_bytes();
                Ok(HttpResponse {
                    status,
                    headers,
                    body: body.to_vec().into(),
                })
            };
            tokio::time::timeout(timeout, send)
                .await
                .unwrap_or_else(|_| {
                    Err(unavailable(
                        format!("no answer within {} ms", timeout.as_millis()),
                        Effect::Uncertain,
                    ))
                })
        });
        if !matches!(&outcome, Err(e) if e.effect == Some(Effect::Nothing)) {
            note_contact();
        }
        match &outcome {
            Ok(answer) => span.record("http.response.status_code", answer.status),
            Err(e) => span.record("error", e.code.as_str()),
        };
        outcome
    }
}

/// What the host does for an instance's plugin: the contract's host operations, each
/// answered through [`host_ops::serve`].
impl HostServices for InstanceServices {
    fn http(&self, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        self.exchange(request)
    }

    fn emit(&self, event: DomainEventReport) -> Result<Empty, PluginError> {
        let pending = CALL.with(|c| match c.borrow_mut().as_mut() {
            Some(call) => {
                call.reports.push(event.clone());
                false
            }
            None => true,
        });
        if pending {
            self.sink.report(&self.instance, event);
        }
        Ok(Empty {})
    }

    fn log(&self, record: LogRecord) -> Result<Empty, PluginError> {
        let fields: Vec<String> = record
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let (instance, message) = (&self.instance, record.message.as_str());
        match record.level.unwrap_or(LogLevel::Info) {
            LogLevel::Error => tracing::error!(%instance, ?fields, "{message}"),
            LogLevel::Warn => tracing::warn!(%instance, ?fields, "{message}"),
            LogLevel::Info | LogLevel::Unknown(_) => {
                tracing::info!(%instance, ?fields, "{message}")
            }
            LogLevel::Debug => tracing::debug!(%instance, ?fields, "{message}"),
            LogLevel::Trace => tracing::trace!(%instance, ?fields, "{message}"),
        }
        Ok(Empty {})
    }

    fn now(&self, _: Empty) -> Result<NowMillis, PluginError> {
        Ok(NowMillis {
            millis: self.clock.now_millis(),
        })
    }

    fn sleep(&self, SleepFor { millis }: SleepFor) -> Result<Empty, PluginError> {
        let deadline = current_deadline();
        let wanted = i64::try_from(millis).unwrap_or(i64::MAX);
        if deadline > 0 && self.clock.now_millis().saturating_add(wanted) > deadline {
            return Err(PluginError::new(
                codes::DEADLINE,
                format!("sleeping {millis} ms would pass the call's deadline"),
            ));
        }
        // Plugin calls run on the blocking pool: sleeping here blocks no async worker.
        std::thread::sleep(Duration::from_millis(millis));
        Ok(Empty {})
    }

    fn cache_get(&self, CacheKey { key }: CacheKey) -> Result<CacheValue, PluginError> {
        let now = self.clock.now_millis();
        let mut cache = self.cache.locked();
        let value = match cache.get(&key) {
            Some((v, exp)) if *exp == 0 || *exp > now => Some(v.clone()),
            Some(_) => {
                cache.remove(&key);
                None
            }
            None => None,
        };
        Ok(CacheValue { value })
    }

    fn cache_put(&self, entry: CacheEntry) -> Result<Empty, PluginError> {
        let ttl_ms = i64::try_from(entry.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
        let expiry = if entry.ttl_secs == 0 {
            0
        } else {
            self.clock.now_millis().saturating_add(ttl_ms)
        };
        let mut cache = self.cache.locked();
        // A bounded cache: a plugin storing per-event values cannot grow the host forever.
        if cache.len() >= 1024 && !cache.contains_key(&entry.key) {
            cache.clear();
        }
        cache.insert(entry.key, (entry.value, expiry));
        Ok(Empty {})
    }
}

impl HostFfi for InstanceServices {
    fn call(&self, op: RStr<'_>, message: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>> {
        let op = op.as_str();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            host_ops::serve(self, op, message.as_slice())
        }))
        .unwrap_or_else(|_| {
            Err(PluginError::new(
                codes::INTERNAL,
                format!("the host failed inside host operation '{op}'"),
            ))
        });
        match outcome {
            Ok(bytes) => RResult::ROk(bytes.into()),
            Err(e) => RResult::RErr(encode(&e)),
        }
    }
}
