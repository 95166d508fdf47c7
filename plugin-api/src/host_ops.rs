//! What a plugin may ask of the host. A plugin has its own std, allocator-side globals,
//! logger and no async runtime, so it does no I/O of its own: HTTP, logging, event emission,
//! the clock, sleeping and a small cache all go through these. A host that does not know an
//! operation (an older host) answers `unsupported_operation`.

use crate::error::{codes, PluginError};
use crate::types::{DomainEventReport, Empty, HttpRequest, HttpResponse, LogLevel};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

/// One host operation: its name, what it takes and answers.
pub trait HostOperation {
    /// The name it travels under.
    const NAME: &'static str;
    /// The request.
    type Request: Serialize + DeserializeOwned;
    /// The answer.
    type Response: Serialize + DeserializeOwned;
}

/// The host operations, written once: each one's marker type and [`HostOperation`] impl,
/// the [`HostServices`] trait a host implements (one method each), [`ALL`], and
/// [`serve`], which decodes a request, runs the method and encodes its answer. The host and
/// the kit's `FakeHost` both answer plugins through [`serve`]: a new operation added here
/// does not compile until each of them does it.
macro_rules! host_operations {
    ($(
        $(#[$meta:meta])*
        $method:ident: $ty:ident = $name:literal: $req:ty => $resp:ty;
    )*) => {
        $(
            $(#[$meta])*
            pub struct $ty;
            impl HostOperation for $ty {
                const NAME: &'static str = $name;
                type Request = $req;
                type Response = $resp;
            }
        )*

        /// What a host does for its plugins: one method per host operation.
        pub trait HostServices {
            $(
                #[doc = concat!("[`", stringify!($ty), "`]: ", $name, ".")]
                ///
                /// # Errors
                /// As the operation documents.
                fn $method(&self, request: $req) -> Result<$resp, PluginError>;
            )*
        }

        /// Every host operation of this contract version, by the name it travels under.
        pub const ALL: &[&str] = &[$($name),*];

        /// Answers host operation `op` from `services`: decodes `message`, runs the method,
        /// encodes its answer.
        ///
        /// # Errors
        /// `protocol_error` for a message that does not decode, `unsupported_operation`
        /// for an operation this contract version does not have, or the method's error.
        pub fn serve<S: HostServices + ?Sized>(
            services: &S,
            op: &str,
            message: &[u8],
        ) -> Result<Vec<u8>, PluginError> {
            match op {
                $(
                    $name => {
                        let request: $req = crate::ffi::decode(message, $name)?;
                        let answer = services.$method(request)?;
                        Ok(crate::ffi::encode(&answer).into_vec())
                    }
                )*
                other => Err(PluginError::new(
                    codes::UNSUPPORTED,
                    format!(
                        "this host (plugin contract {}) has no host operation '{other}'",
                        crate::CONTRACT_VERSION
                    ),
                )),
            }
        }
    };
}

host_operations! {
    /// One HTTP exchange, with the instance's egress allowlist (`allow_hosts`) and never
    /// past the current call's deadline. Errors: `provider_unavailable` (connect, TLS,
    /// timeout; retryable), `invalid_request` (a URL outside the allowlist),
    /// `deadline_exceeded`. Any HTTP status is an answer, not an error.
    http: Http = "http": HttpRequest => HttpResponse;

    /// Reports a fact that happened outside any operation's answer. During a call, the host
    /// records it with that call's result; outside a call, on its own.
    emit: Emit = "emit": DomainEventReport => Empty;

    /// Writes one structured log line under the instance's name. Never pass secrets.
    log: Log = "log": LogRecord => Empty;

    /// The host clock (replaceable in tests): read time only through it.
    now: Now = "now": Empty => NowMillis;

    /// Sleeps the calling thread (a retry's backoff). Errors with `deadline_exceeded`, at
    /// once, when the sleep would end past the current call's deadline.
    sleep: Sleep = "sleep": SleepFor => Empty;

    /// A value from the instance's cache (e.g. a downloaded certificate), if present and not
    /// expired. The cache lives as long as the instance; it is not persistent.
    cache_get: CacheGet = "cache_get": CacheKey => CacheValue;

    /// Stores a value in the instance's cache for `ttl_secs` seconds (0: the instance's life).
    cache_put: CachePut = "cache_put": CacheEntry => Empty;
}

/// A log line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogRecord {
    /// The severity.
    pub level: Option<LogLevel>,
    /// A short sentence.
    pub message: String,
    /// Structured fields (ids, counts), never secrets.
    pub fields: BTreeMap<String, String>,
}

/// The answer of [`Now`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NowMillis {
    /// Milliseconds since the Unix epoch.
    pub millis: i64,
}

/// The request of [`Sleep`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SleepFor {
    /// How long.
    pub millis: u64,
}

/// The request of [`CacheGet`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheKey {
    /// The key.
    pub key: String,
}

/// The answer of [`CacheGet`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheValue {
    /// The value, when present and fresh.
    pub value: Option<String>,
}

/// The request of [`CachePut`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheEntry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Lifetime in seconds; 0 keeps it for the instance's life.
    pub ttl_secs: u64,
}
