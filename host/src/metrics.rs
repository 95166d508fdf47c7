//! Prometheus metrics, kept in memory and rendered in the text exposition format:
//! HTTP requests and latencies per route, provider calls, latencies and errors per provider
//! instance and operation.
//!
//! Every label has a bounded set of values, whatever callers send: routes are the router's
//! templates (`unmatched` for the rest), methods the standard ones (`other`), instances the
//! configured ones (`unknown`), error codes the contract's (`other`). A flood of requests
//! to made-up paths or provider names adds nothing.

use payhost_plugin_api::codes;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    /// (method, route) → latency; (method, route, status) → count.
    http_latency: BTreeMap<(String, String), Histogram>,
    http_requests: BTreeMap<(String, String, u16), u64>,
    /// (instance, operation) → latency; (instance, operation, error code) → count.
    call_latency: BTreeMap<(String, String), Histogram>,
    call_errors: BTreeMap<(String, String, String), u64>,
    /// Rows or files the retention sweeper removed, by kind.
    swept: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// The provider instances that may appear as labels.
    instances: Vec<String>,
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

const ERROR_CODES: [&str; 17] = [
    codes::INVALID_REQUEST,
    codes::NOT_FOUND,
    codes::CARD_DECLINED,
    codes::UNSUPPORTED,
    codes::CONFIG,
    codes::AUTHENTICATION,
    codes::RATE_LIMITED,
    codes::UNAVAILABLE,
    codes::CONFLICT,
    codes::INVALID_SIGNATURE,
    codes::DEADLINE,
    codes::PANICKED,
    codes::PROTOCOL,
    codes::INTERNAL,
    "provider_not_running",
    "provider_timeout",
    "provider_busy",
];

/// `value` when it is one of `known`, else `other`.
fn bounded<'a>(value: &'a str, known: &[&'a str], other: &'a str) -> &'a str {
    known.iter().copied().find(|k| *k == value).unwrap_or(other)
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Metrics whose provider labels are these instances (others count as `unknown`).
    pub fn new(instances: impl IntoIterator<Item = String>) -> Self {
        Self {
            inner: Mutex::default(),
            instances: instances.into_iter().collect(),
        }
    }

    fn instance<'a>(&'a self, name: &'a str) -> &'a str {
        if self.instances.iter().any(|i| i == name) {
            name
        } else {
            "unknown"
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `route` must be a route template (or `unmatched`), never a request's path.
    pub fn http(&self, method: &str, route: &str, status: u16, took: Duration) {
        let method = bounded(method, &METHODS, "other");
        let mut m = self.inner();
        m.http_latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default()
            .observe(took);
        *m.http_requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// `operation` is one of the host's operation names (a fixed set).
    pub fn call(&self, instance: &str, operation: &str, took: Duration, error: Option<&str>) {
        let instance = self.instance(instance);
        let error = error.map(|code| bounded(code, &ERROR_CODES, "other"));
        let mut m = self.inner();
        m.call_latency
            .entry((instance.to_owned(), operation.to_owned()))
            .or_default()
            .observe(took);
        if let Some(code) = error {
            *m.call_errors
                .entry((instance.to_owned(), operation.to_owned(), code.to_owned()))
                .or_default() += 1;
        }
    }

    /// Counts what the retention sweeper removed (`kind` is one of a fixed set).
    pub fn swept(&self, kind: &'static str, n: u64) {
        *self.inner().swept.entry(kind).or_default() += n;
    }

    /// The text exposition; `extra` are gauges the caller adds (name, help, value).
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let m = self.inner();
        let mut out = String::new();
        out.push_str("# HELP payhost_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE payhost_http_requests_total counter\n");
        for ((method, route, status), n) in &m.http_requests {
            let _ = writeln!(
                out,
                "payhost_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                esc(method),
                esc(route)
            );
        }
        out.push_str(
            "# HELP payhost_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE payhost_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &m.http_latency {
            let labels = format!("method=\"{}\",route=\"{}\"", esc(method), esc(route));
            h.render(&mut out, "payhost_http_request_duration_seconds", &labels);
        }
        out.push_str(
            "# HELP payhost_provider_calls_total Provider calls by instance and operation.\n",
        );
        out.push_str("# TYPE payhost_provider_calls_total counter\n");
        for ((instance, op), h) in &m.call_latency {
            let _ = writeln!(
                out,
                "payhost_provider_calls_total{{provider=\"{}\",operation=\"{}\"}} {}",
                esc(instance),
                esc(op),
                h.count
            );
        }
        out.push_str(
            "# HELP payhost_provider_call_errors_total Failed provider calls by error code.\n",
        );
        out.push_str("# TYPE payhost_provider_call_errors_total counter\n");
        for ((instance, op, code), n) in &m.call_errors {
            let _ = writeln!(
                out,
                "payhost_provider_call_errors_total{{provider=\"{}\",operation=\"{}\",code=\"{}\"}} {n}",
                esc(instance),
                esc(op),
                esc(code)
            );
        }
        out.push_str("# HELP payhost_provider_call_duration_seconds Provider call latency.\n");
        out.push_str("# TYPE payhost_provider_call_duration_seconds histogram\n");
        for ((instance, op), h) in &m.call_latency {
            let labels = format!("provider=\"{}\",operation=\"{}\"", esc(instance), esc(op));
            h.render(&mut out, "payhost_provider_call_duration_seconds", &labels);
        }
        out.push_str(
            "# HELP payhost_retention_swept_total Rows and files the retention sweeper removed.\n",
        );
        out.push_str("# TYPE payhost_retention_swept_total counter\n");
        for (kind, n) in &m.swept {
            let _ = writeln!(out, "payhost_retention_swept_total{{kind=\"{kind}\"}} {n}");
        }
        for (name, help, value) in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded_whatever_callers_send() {
        let m = Metrics::new(["mock".to_owned()]);
        for n in 0..1000 {
            m.http(&format!("M{n}"), "unmatched", 404, Duration::from_millis(1));
            m.call(
                &format!("made_up_{n}"),
                "verify_webhook",
                Duration::from_millis(1),
                Some(&format!("code_{n}")),
            );
        }
        m.call(
            "mock",
            "create_payment",
            Duration::from_millis(1),
            Some("card_declined"),
        );
        let text = m.render(&[]);
        assert!(text.contains("payhost_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1000"), "{text}");
        assert!(text.contains("payhost_provider_call_errors_total{provider=\"unknown\",operation=\"verify_webhook\",code=\"other\"} 1000"), "{text}");
        assert!(
            text.contains(
                "provider=\"mock\",operation=\"create_payment\",code=\"card_declined\"} 1"
            ),
            "{text}"
        );
        assert!(text.len() < 10_000, "{} bytes", text.len());
    }

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::new(["mock".to_owned()]);
        m.http("POST", "/v1/payments", 201, Duration::from_millis(3));
        m.http("POST", "/v1/payments", 201, Duration::from_millis(30));
        m.call("mock", "create_payment", Duration::from_micros(40), None);
        m.call(
            "mock",
            "create_payment",
            Duration::from_millis(2),
            Some("card_declined"),
        );
        let text = m.render(&[("payhost_up", "Always 1.", 1.0)]);
        assert!(text.contains(
            "payhost_http_requests_total{method=\"POST\",route=\"/v1/payments\",status=\"201\"} 2"
        ));
        assert!(text.contains(
            "payhost_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/payments\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "payhost_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/payments\",le=\"0.05\"} 2"
        ));
        assert!(text.contains(
            "payhost_provider_call_errors_total{provider=\"mock\",operation=\"create_payment\",code=\"card_declined\"} 1"
        ));
        assert!(text.contains(
            "payhost_provider_calls_total{provider=\"mock\",operation=\"create_payment\"} 2"
        ));
        assert!(text.contains("payhost_up 1"));
    }
}
