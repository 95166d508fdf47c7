//! Services the host offers a plugin: HTTP, event emission, logging and the clock.
//!
//! A plugin has its own std, tokio and logger globals, so it does no I/O of its own and
//! does not log through `tracing`: it goes through these. The host implements them; every
//! implementation catches its own panics, so calling one never unwinds into the plugin.

use crate::{error::PluginError, events::DomainEventReport, types::KeyValue};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString, RVec},
    StableAbi,
};

#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct HttpRequest {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: RString,
    /// Absolute URL. The host allows only the hosts the instance was configured for.
    pub url: RString,
    pub headers: RVec<KeyValue>,
    pub body: RVec<u8>,
    /// Upper bound for the whole exchange, in milliseconds (0: the host default).
    pub timeout_ms: u32,
}

#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: RVec<KeyValue>,
    pub body: RVec<u8>,
}

#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// What the host does for a plugin.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Performs one HTTP exchange. Errors: `provider_unavailable` (connect, timeout, TLS),
    /// `invalid_request` (a URL outside the instance's allowlist).
    fn http(&self, request: HttpRequest) -> RResult<HttpResponse, PluginError>;

    /// Reports a fact that happened asynchronously (outside any operation's result).
    fn emit(&self, event: DomainEventReport);

    /// Writes one structured log line under the plugin's name. Never pass secrets.
    fn log(&self, level: LogLevel, message: RStr<'_>, fields: RVec<KeyValue>);

    /// Milliseconds since the Unix epoch, from the host's (replaceable) clock.
    #[sabi(last_prefix_field)]
    fn now_millis(&self) -> i64;
}

/// The host services as a plugin holds them.
pub type HostBox = HostServices_TO<'static, RBox<()>>;

/// Convenience methods for plugin code.
pub trait HostExt {
    /// Unix seconds from the host clock.
    fn now_secs(&self) -> i64;
    fn info(&self, message: &str);
    fn warn(&self, message: &str);
}

impl HostExt for HostBox {
    fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
    fn info(&self, message: &str) {
        self.log(LogLevel::Info, message.into(), RVec::new());
    }
    fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message.into(), RVec::new());
    }
}
