//! Log lines and traces: the process's one `tracing` subscriber.
//!
//! Log lines always go to stderr (a thread of their own writes them). Traces are off unless
//! `[telemetry] otlp_endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) names a collector; then
//! the spans of the `payhost` crate go to it over OTLP (HTTP/protobuf) through the host's
//! own hyper client, batched by a thread of the OpenTelemetry SDK.
//!
//! Invariants:
//! - Off means the subscriber is exactly the log-only one: the trace spans are `debug`
//!   spans the log filter (`info` unless `RUST_LOG` says more) leaves out, so a disabled span
//!   costs one relaxed load at its call site, and [`inject`]/[`current_traceparent`] return
//!   at once ([`enabled`] is false).
//! - Spans carry ids (request, tenant, provider instance, payment, event), operation names,
//!   statuses and durations; never a secret, card data, a query string or a body.
//! - W3C trace context (`traceparent`) is read from API requests and written on the
//!   provider calls plugins make and on deliveries to the application's endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static ON: AtomicBool = AtomicBool::new(false);

/// Where traces go and what the host calls itself there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The collector's base URL (`http://127.0.0.1:4318`); spans are posted to
    /// `<base>/v1/traces`.
    pub endpoint: String,
    /// `service.name` on every span (default `payhost`).
    pub service_name: String,
}

impl Settings {
    /// The configured endpoint, unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` names
    /// another (an empty variable does not count); `None`: traces are off.
    pub fn resolve(configured: Option<&str>, service_name: &str) -> Option<Self> {
        let env = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let endpoint = env.or_else(|| configured.map(str::to_owned))?;
        Some(Self {
            endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
            service_name: service_name.to_owned(),
        })
    }

    fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint)
    }
}

/// Whether spans are exported (the subscriber was installed with [`Settings`]).
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Keeps the log writer and the span exporter; [`Guard::finish`] flushes both.
pub struct Guard {
    _log: tracing_appender::non_blocking::WorkerGuard,
    traces: Option<SdkTracerProvider>,
}

impl Guard {
    /// Exports the spans still batched (bounded: the exporter's own timeout), off the
    /// runtime's threads.
    pub async fn finish(mut self) {
        if let Some(provider) = self.traces.take() {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
            if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(10), flushed).await {
                tracing::warn!(error = %e, "spans not exported at shutdown");
            }
        }
    }
}

/// Installs the process's subscriber: log lines always; spans to the collector when
/// `traces` is given (this needs a Tokio runtime: the exporter's requests run on it). A
/// second call changes nothing (the first subscriber stays).
///
/// # Errors
/// The exporter cannot be built (a malformed endpoint).
pub fn install(traces: Option<&Settings>) -> anyhow::Result<Guard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Log lines (one per request) are written to stderr by a thread of their own, off the
    // request path; a full buffer makes callers wait rather than drop lines. That thread
    // writes every line waiting in its queue into one buffer and flushes it when the queue
    // is empty: one write per burst, not per line (measured: ~10% of webhook
    // acknowledgements).
    let (stderr, log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("payhost-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = std::env::var("PAYHOST_LOG_FORMAT").as_deref() == Ok("json");
    let Some(settings) = traces else {
        // The log-only subscriber, as before traces existed: nothing else on the path.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(stderr)
            .with_ansi(ansi);
        let _ = if json {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
        return Ok(Guard {
            _log: log_guard,
            traces: None,
        });
    };
    let provider = tracer_provider(settings)?;
    let tracer = provider.tracer("payhost");
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(stderr)
        .with_ansi(ansi);
    let logs: Box<dyn Layer<_> + Send + Sync> = if json {
        logs.json().with_filter(filter).boxed()
    } else {
        logs.with_filter(filter).boxed()
    };
    // Only the host's own spans become OpenTelemetry spans: no events (they are log lines),
    // nothing from the libraries underneath.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.target().starts_with("payhost")
        }));
    if tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok()
    {
        ON.store(true, Ordering::Relaxed);
        tracing::info!(endpoint = %settings.endpoint, "exporting traces");
    }
    Ok(Guard {
        _log: log_guard,
        traces: Some(provider),
    })
}

fn tracer_provider(settings: &Settings) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Exporting::new())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(settings.traces_url())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_endpoint: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(settings.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: the host's hyper client, its requests run on the runtime
/// (the SDK's batch thread waits for them; it is not a runtime thread).
#[derive(Debug)]
struct Exporting {
    runtime: tokio::runtime::Handle,
    client: crate::outgoing::HttpClient,
}

impl Exporting {
    fn new() -> Self {
        Self {
            runtime: tokio::runtime::Handle::current(),
            client: crate::outgoing::http_client(Duration::from_secs(5)),
        }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Exporting {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        use http_body_util::BodyExt;
        let (parts, body) = request.into_parts();
        let request = hyper::Request::from_parts(parts, http_body_util::Full::new(body));
        let client = self.client.clone();
        let exchange = async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, 1024 * 1024)
                .collect()
                .await?
                .to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(opentelemetry_http::Response::from_parts(
                parts, body,
            ))
        };
        // Timers belong to the runtime: the deadline is made inside the task.
        let sent = self
            .runtime
            .spawn(async move { tokio::time::timeout(Duration::from_secs(10), exchange).await });
        match sent.await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the collector did not answer within 10 s".into()),
            Err(e) => Err(e.to_string().into()),
        }
    }
}

/// Continues the caller's trace on `span` when `headers` carry a valid `traceparent`.
pub fn continue_from(span: &tracing::Span, headers: &hyper::HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The current span's `traceparent` (W3C), when traces are on.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Writes the current span's trace context into `headers` (when traces are on).
pub fn inject(headers: &mut hyper::HeaderMap) {
    if let Some(v) = current_traceparent() {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            headers.insert("traceparent", v);
        }
    }
}

/// The trace id of a stored `traceparent` (32 hex digits), for the console's link.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, id) = (parts.next()?, parts.next()?);
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// Links `span` to the span a stored `traceparent` names (a webhook's processing to the
/// request that created its payment).
pub fn link(span: &tracing::Span, traceparent: &str) {
    if !enabled() {
        return;
    }
    let mut carrier = std::collections::HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    let linked = TraceContextPropagator::new().extract(&carrier);
    let context = linked.span().span_context().clone();
    if context.is_valid() {
        span.add_link(context);
    }
}

/// Names on the current span (the request's, the round's) what became known on the way,
/// when traces are on: a field the span does not declare is left alone.
pub fn note(field: &'static str, value: &str) {
    if enabled() {
        tracing::Span::current().record(field, value);
    }
}

/// [`note`] for the request span's OpenTelemetry name, kind and status: recorded only
/// when traces are on, so log lines read as they do without traces.
pub fn name_request(span: &tracing::Span, method: &str, route: &str) {
    if enabled() {
        span.record("otel.name", format!("{method} {route}"));
        span.record("otel.kind", "server");
    }
}

/// The answer's status on a request span (when traces are on).
pub fn answered(span: &tracing::Span, status: u16) {
    if enabled() {
        span.record("http.response.status_code", status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_second_part_of_a_traceparent() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id("00-short-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id(""), None);
    }

    #[test]
    fn the_environment_overrides_the_configured_endpoint() {
        // One test touches the variable (tests in this binary run in parallel).
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
        assert_eq!(Settings::resolve(None, "payhost"), None);
        let s = Settings::resolve(Some("http://127.0.0.1:4318/"), "payhost").unwrap();
        assert_eq!(s.traces_url(), "http://127.0.0.1:4318/v1/traces");
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let s = Settings::resolve(Some("http://127.0.0.1:4318"), "payhost").unwrap();
        assert_eq!(s.endpoint, "http://collector:4318");
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", " ");
        let s = Settings::resolve(Some("http://127.0.0.1:4318"), "payhost").unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:4318");
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
    }
}
