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
use std::sync::Arc;
use std::time::Duration;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Default upper bound for one HTTP exchange when the plugin gives none.
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct InstanceServices {
    instance: String,
    allow_hosts: Vec<String>,
    dispatcher: Arc<Dispatcher>,
    clock: Arc<dyn Clock>,
    runtime: tokio::runtime::Handle,
    client: HttpClient,
}

impl InstanceServices {
    pub fn new(
        instance: &str,
        allow_hosts: Vec<String>,
        dispatcher: Arc<Dispatcher>,
        clock: Arc<dyn Clock>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        Self {
            instance: instance.to_owned(),
            allow_hosts,
            dispatcher,
            clock,
            runtime,
            client: Client::builder(TokioExecutor::new()).build(connector),
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
        if uri.scheme_str() != Some("http") {
            return Err(PluginError::new(
                codes::UNAVAILABLE,
                "only http:// egress is available in this build of the host",
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
            self.dispatcher
                .dispatch(Event::Domain(Box::new(DomainEvent::from_report(
                    &self.instance,
                    &event,
                ))));
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
