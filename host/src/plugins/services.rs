//! The host services one provider instance receives: HTTP with an egress allowlist and
//! deadlines, event emission into the dispatcher, structured logging, the host clock.
//! Every entry point catches its own panics: an unwind must never cross into a plugin.

use crate::clock::Clock;
use crate::events::{Dispatcher, DomainEvent, Event};
use abi_stable::std_types::{RResult, RStr, RVec};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use payhost_plugin_api::{
    codes, guard, DomainEventReport, HostServices, HttpRequest, HttpResponse, KeyValue, LogLevel,
    PluginError,
};
use std::cell::RefCell;
use std::sync::{Arc, RwLock};
use std::time::Duration;

thread_local! {
    /// Reports emitted on this thread during a host call, collected for that call's result.
    static CALL_REPORTS: RefCell<Option<Vec<DomainEventReport>>> = const { RefCell::new(None) };
}

/// Runs `f` (a provider call) and returns what it returned with the domain event reports the
/// plugin emitted synchronously while it ran, so the host records them with the result.
pub fn collect_reports<T>(f: impl FnOnce() -> T) -> (T, Vec<DomainEventReport>) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CALL_REPORTS.with(|c| *c.borrow_mut() = None);
        }
    }
    CALL_REPORTS.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let _reset = Reset;
    let out = f();
    let reports = CALL_REPORTS
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    (out, reports)
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
        *self.handler.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    pub fn report(&self, instance: &str, report: DomainEventReport) {
        let handler = self
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
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

/// The host's one outgoing HTTP client type: hyper over rustls (webpki roots).
pub type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// A client for https:// and http:// (local endpoints: tests, a proxy on localhost); who
/// may be reached is the caller's decision (allowlists, configured endpoints).
pub fn http_client(connect_timeout: Duration) -> HttpClient {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Default upper bound for one HTTP exchange when the plugin gives none.
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct InstanceServices {
    instance: String,
    allow_hosts: Vec<String>,
    sink: Arc<ReportSink>,
    clock: Arc<dyn Clock>,
    runtime: tokio::runtime::Handle,
    client: HttpClient,
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
        }
    }

    fn exchange(&self, req: HttpRequest) -> Result<HttpResponse, PluginError> {
        let uri: hyper::Uri = req
            .url
            .parse()
            .map_err(|_| PluginError::invalid("url", format!("'{}' is not a URL", req.url)))?;
        let host = uri.host().unwrap_or_default();
        if !self
            .allow_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
        {
            return Err(PluginError::invalid(
                "url",
                format!("host '{host}' is not in this provider instance's allow_hosts"),
            ));
        }
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(PluginError::invalid(
                "url",
                format!("'{}' is neither http:// nor https://", req.url),
            ));
        }
        let mut builder = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(uri);
        for h in &req.headers {
            builder = builder.header(h.key.as_str(), h.value.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body.into_vec())))
            .map_err(|e| PluginError::invalid("headers", e.to_string()))?;
        let timeout = match req.timeout_ms {
            0 => DEFAULT_HTTP_TIMEOUT,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let unavailable = |m: String| PluginError::new(codes::UNAVAILABLE, m).retryable(true);
        self.runtime.block_on(async {
            let send = async {
                let resp = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.as_str(), v.to_str().unwrap_or_default()))
                    .collect::<Vec<_>>();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| unavailable(e.to_string()))?
                    .to_bytes();
                Ok(HttpResponse {
                    status,
                    headers: headers.into(),
                    body: body.to_vec().into(),
                })
            };
            tokio::time::timeout(timeout, send)
                .await
                .unwrap_or_else(|_| {
                    Err(unavailable(format!(
                        "no answer within {} ms",
                        timeout.as_millis()
                    )))
                })
        })
    }
}

impl HostServices for InstanceServices {
    fn http(&self, request: HttpRequest) -> RResult<HttpResponse, PluginError> {
        guard("host.http", || self.exchange(request))
    }

    fn emit(&self, event: DomainEventReport) {
        let _ = guard("host.emit", || {
            let pending = CALL_REPORTS.with(|c| match c.borrow_mut().as_mut() {
                Some(collected) => {
                    collected.push(event.clone());
                    false
                }
                None => true,
            });
            if pending {
                self.sink.report(&self.instance, event);
            }
            Ok(())
        });
    }

    fn log(&self, level: LogLevel, message: RStr<'_>, fields: RVec<KeyValue>) {
        let _ = guard("host.log", || {
            let fields: Vec<String> = fields
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            let (instance, message) = (&self.instance, message.as_str());
            match level {
                LogLevel::Error => tracing::error!(%instance, ?fields, "{message}"),
                LogLevel::Warn => tracing::warn!(%instance, ?fields, "{message}"),
                LogLevel::Info => tracing::info!(%instance, ?fields, "{message}"),
                LogLevel::Debug => tracing::debug!(%instance, ?fields, "{message}"),
                LogLevel::Trace => tracing::trace!(%instance, ?fields, "{message}"),
            }
            Ok(())
        });
    }

    fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }
}
