//! [`Host`]: the services the host gives a plugin instance, as native Rust calls. A plugin
//! does no I/O of its own (it has its own std and no async runtime): HTTP, logging, events,
//! time, sleeping and a cache all go through here.

use crate::api::ffi::{decode, decode_error, encode, HostBox};
use crate::api::host_ops::{self, CacheEntry, CacheKey, HostOperation, LogRecord, SleepFor};
use crate::api::{
    abi_stable::std_types::RResult, DomainEventReport, Empty, HttpRequest, HttpResponse, LogLevel,
    PluginError,
};
use std::sync::Arc;
use std::time::Duration;

/// The host side of the boundary at the message level: an operation name and its JSON
/// request in, its JSON answer or JSON error out. The real host and
/// [`FakeHost`](crate::testing::FakeHost) implement it.
pub trait RawHost: Send + Sync {
    /// Runs host operation `op`.
    ///
    /// # Errors
    /// A JSON [`PluginError`].
    fn call(&self, op: &str, message: &[u8]) -> Result<Vec<u8>, Vec<u8>>;
}

struct FfiHost(HostBox);

impl RawHost for FfiHost {
    fn call(&self, op: &str, message: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        match self.0.call(op.into(), message.into()) {
            RResult::ROk(v) => Ok(v.into_vec()),
            RResult::RErr(e) => Err(e.into_vec()),
        }
    }
}

/// The host's services for one instance. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    raw: Arc<dyn RawHost>,
}

impl Host {
    /// A host reached across the FFI boundary (what [`export_plugin!`](crate::export_plugin)
    /// gives `Plugin::new`).
    pub fn from_ffi(host: HostBox) -> Self {
        Self {
            raw: Arc::new(FfiHost(host)),
        }
    }

    /// A host behind any [`RawHost`] (tests use [`FakeHost`](crate::testing::FakeHost)).
    pub fn from_raw(raw: Arc<dyn RawHost>) -> Self {
        Self { raw }
    }

    /// Runs one host operation.
    ///
    /// # Errors
    /// The host's error; `unsupported_operation` from a host older than the operation.
    pub fn call<O: HostOperation>(&self, request: &O::Request) -> Result<O::Response, PluginError> {
        match self.raw.call(O::NAME, &encode(request)) {
            Ok(bytes) => decode(&bytes, &format!("the host's {} answer", O::NAME)),
            Err(bytes) => Err(decode_error(&bytes)),
        }
    }

    /// One HTTP exchange (see [`HttpClient`](crate::HttpClient) for JSON, forms and retries).
    ///
    /// # Errors
    /// `provider_unavailable` (connect, TLS, timeout), `invalid_request` (a host outside the
    /// instance's `allow_hosts`), `deadline_exceeded`. Any HTTP status is an answer.
    pub fn http(&self, request: &HttpRequest) -> Result<HttpResponse, PluginError> {
        self.call::<host_ops::Http>(request)
    }

    /// Reports a fact outside any operation's answer (see the operation docs for when).
    /// A host that cannot take it logs why; the plugin goes on.
    pub fn emit(&self, report: &DomainEventReport) {
        let _ = self.call::<host_ops::Emit>(report);
    }

    /// Writes a log line under the instance's name, with structured fields. Never secrets.
    pub fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        let record = LogRecord {
            level: Some(level),
            message: message.to_owned(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let _ = self.call::<host_ops::Log>(&record);
    }

    /// An info line.
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message, &[]);
    }

    /// A warning.
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message, &[]);
    }

    /// Milliseconds since the Unix epoch, from the host clock. Read time only here.
    pub fn now_millis(&self) -> i64 {
        self.call::<host_ops::Now>(&Empty {})
            .map(|n| n.millis)
            .unwrap_or_default()
    }

    /// Unix seconds from the host clock.
    pub fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Sleeps the calling thread (a retry's backoff), through the host.
    ///
    /// # Errors
    /// `deadline_exceeded` at once when the sleep would end past the call's deadline.
    pub fn sleep(&self, duration: Duration) -> Result<(), PluginError> {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.call::<host_ops::Sleep>(&SleepFor { millis }).map(drop)
    }

    /// A value from the instance's cache, when present and fresh.
    pub fn cache_get(&self, key: &str) -> Option<String> {
        self.call::<host_ops::CacheGet>(&CacheKey {
            key: key.to_owned(),
        })
        .ok()
        .and_then(|v| v.value)
    }

    /// Stores a value in the instance's cache for `ttl` (zero: the instance's life).
    pub fn cache_put(&self, key: &str, value: &str, ttl: Duration) {
        let _ = self.call::<host_ops::CachePut>(&CacheEntry {
            key: key.to_owned(),
            value: value.to_owned(),
            ttl_secs: ttl.as_secs(),
        });
    }
}
