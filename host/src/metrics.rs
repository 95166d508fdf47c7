//! Prometheus metrics through `prometheus-client` (the OpenMetrics text format): HTTP
//! requests and latencies per route, provider calls, latencies and errors per provider
//! instance and operation, what the retention sweeper removed, the process (resident
//! memory, CPU, open files, threads) and the build.
//!
//! Every label has a bounded set of values, whatever callers send: routes are the router's
//! templates (`unmatched` for the rest), methods the standard ones (`other`), instances the
//! configured ones (`unknown`), error codes the contract's (`other`). A flood of requests
//! to made-up paths or provider names adds nothing.

use crate::access::throttle::Surface;
use payhost_plugin_api::codes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    provider: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failed {
    provider: String,
    operation: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Instance {
    provider: String,
}

/// A gauge per provider instance, read at scrape time: (name, help, (instance, value)...).
pub type InstanceGauge<'a> = (&'a str, &'a str, Vec<(String, f64)>);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// Why plugin files are refused (the trust checks' kinds): every one is always rendered.
pub const REFUSAL_REASONS: [&str; 4] = ["invalid signature", "modified", "unsigned", "not locked"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Swept {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthSurface {
    surface: &'static str,
}

fn latency() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<Answered, Counter>,
    http_latency: Family<Route, Histogram, fn() -> Histogram>,
    calls: Family<Call, Counter>,
    call_latency: Family<Call, Histogram, fn() -> Histogram>,
    call_errors: Family<Failed, Counter>,
    swept: Family<Swept, Counter>,
    auth_failures: Family<AuthSurface, Counter>,
    auth_refusals: Family<AuthSurface, Counter>,
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Metrics {
    /// Metrics whose provider labels are these instances (others count as `unknown`).
    pub fn new(instances: impl IntoIterator<Item = String>) -> Self {
        let m = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency),
            calls: Family::default(),
            call_latency: Family::new_with_constructor(latency),
            call_errors: Family::default(),
            swept: Family::default(),
            auth_failures: Family::default(),
            auth_refusals: Family::default(),
            instances: instances.into_iter().collect(),
        };
        // Every surface shown from the start, at 0.
        for surface in Surface::ALL {
            let label = AuthSurface {
                surface: surface.as_str(),
            };
            m.auth_failures.get_or_create(&label).inc_by(0);
            m.auth_refusals.get_or_create(&label).inc_by(0);
        }
        let mut registry = Registry::default();
        registry.register(
            "payhost_http_requests",
            "HTTP requests by route and status",
            m.http_requests.clone(),
        );
        registry.register(
            "payhost_http_request_duration_seconds",
            "HTTP request latency by route",
            m.http_latency.clone(),
        );
        registry.register(
            "payhost_provider_calls",
            "Provider calls by instance and operation",
            m.calls.clone(),
        );
        registry.register(
            "payhost_provider_call_errors",
            "Failed provider calls by error code",
            m.call_errors.clone(),
        );
        registry.register(
            "payhost_provider_call_duration_seconds",
            "Provider call latency",
            m.call_latency.clone(),
        );
        registry.register(
            "payhost_retention_swept",
            "Rows and files the retention sweeper removed",
            m.swept.clone(),
        );
        registry.register(
            "payhost_auth_failures",
            "Wrong keys presented (API, admin, console sign-in), by surface",
            m.auth_failures.clone(),
        );
        registry.register(
            "payhost_auth_refusals",
            "Requests answered 429 because their address sent too many wrong keys",
            m.auth_refusals.clone(),
        );
        registry.register(
            "payhost_build",
            "The running build",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("contract", payhost_plugin_api::CONTRACT_VERSION),
            ]),
        );
        registry.register_collector(Box::new(Process::start()));
        Self { registry, ..m }
    }

    fn instance<'a>(&'a self, name: &'a str) -> &'a str {
        if self.instances.iter().any(|i| i == name) {
            name
        } else {
            "unknown"
        }
    }

    /// `route` must be a route template (or `unmatched`), never a request's path.
    pub fn http(&self, method: &str, route: &str, status: u16, took: Duration) {
        let method = bounded(method, &METHODS, "other").to_owned();
        self.http_latency
            .get_or_create(&Route {
                method: method.clone(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
        self.http_requests
            .get_or_create(&Answered {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// `operation` is one of the host's operation names (a fixed set).
    pub fn call(&self, instance: &str, operation: &str, took: Duration, error: Option<&str>) {
        let call = Call {
            provider: self.instance(instance).to_owned(),
            operation: operation.to_owned(),
        };
        self.calls.get_or_create(&call).inc();
        self.call_latency
            .get_or_create(&call)
            .observe(took.as_secs_f64());
        if let Some(code) = error {
            self.call_errors
                .get_or_create(&Failed {
                    provider: call.provider,
                    operation: call.operation,
                    code: bounded(code, &ERROR_CODES, "other").to_owned(),
                })
                .inc();
        }
    }

    /// A wrong key on `surface`.
    pub fn auth_failed(&self, surface: Surface) {
        self.auth_failures
            .get_or_create(&AuthSurface {
                surface: surface.as_str(),
            })
            .inc();
    }

    /// A request refused by the sign-in throttle.
    pub fn auth_refused(&self, surface: Surface) {
        self.auth_refusals
            .get_or_create(&AuthSurface {
                surface: surface.as_str(),
            })
            .inc();
    }

    /// Counts what the retention sweeper removed (`kind` is one of a fixed set).
    pub fn swept(&self, kind: &'static str, n: u64) {
        self.swept
            .get_or_create(&Swept { kind: kind.into() })
            .inc_by(n);
    }

    /// The text exposition; `extra` are gauges the caller reads at scrape time (name,
    /// help, value), `per_instance` gauges with a `provider` label (name, help, and a value
    /// per configured instance: others are left out).
    /// The registry's series and, read now: `extra` gauges, `per_instance` gauges of the
    /// configured instances, and `refused`, the plugin files refused by reason (see
    /// [`REFUSAL_REASONS`]).
    ///
    /// `counters` are counts the caller keeps (name without `_total`, help, value).
    pub fn render(
        &self,
        extra: &[(&str, &str, f64)],
        counters: &[(&str, &str, u64)],
        per_instance: &[InstanceGauge],
        refused: &dyn Fn(&str) -> f64,
    ) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let mut now = Registry::default();
        for (name, help, value) in counters {
            now.register(*name, help.trim_end_matches('.'), ConstCounter::new(*value));
        }
        for (name, help, value) in extra {
            let g: Gauge<f64, AtomicU64> = Gauge::default();
            g.set(*value);
            now.register(*name, help.trim_end_matches('.'), g);
        }
        for (name, help, values) in per_instance {
            let family: Family<Instance, Gauge<f64, AtomicU64>> = Family::default();
            for (instance, value) in values {
                if self.instances.iter().any(|i| i == instance) {
                    family
                        .get_or_create(&Instance {
                            provider: instance.clone(),
                        })
                        .set(*value);
                }
            }
            now.register(*name, help.trim_end_matches('.'), family);
        }
        let by_reason: Family<Reason, Gauge<f64, AtomicU64>> = Family::default();
        for reason in REFUSAL_REASONS {
            by_reason
                .get_or_create(&Reason {
                    reason: reason.to_owned(),
                })
                .set(refused(reason));
        }
        now.register(
            "payhost_plugin_files_refused",
            "Plugin files in the folder refused by the trust checks, by reason",
            by_reason,
        );
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &now);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

/// The process's own figures, read from `/proc/self` at each scrape (Linux).
#[derive(Debug)]
struct Process {
    started: f64,
}

impl Process {
    fn start() -> Self {
        Self {
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// `Name:   value kB` from `/proc/self/status`.
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU seconds from `/proc/self/stat` (fields 14 and 15, in the kernel's
/// USER_HZ ticks, 100 per second on Linux).
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        let gauges: [(&str, &str, Option<f64>); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                status_field(&status, "VmRSS").map(|kb| (kb * 1024) as f64),
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                Some(fds as f64),
            ),
            (
                "process_threads",
                "Threads of the process",
                status_field(&status, "Threads").map(|n| n as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                Some(self.started),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        if let Some(cpu) = cpu_seconds(&stat) {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        Ok(())
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
        let text = m.render(&[], &[("payhost_db_reads", "Reads.", 7)], &[], &|_| 0.0);
        assert!(text.contains("payhost_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1000"), "{text}");
        assert!(text.contains("payhost_provider_call_errors_total{provider=\"unknown\",operation=\"verify_webhook\",code=\"other\"} 1000"), "{text}");
        assert!(
            text.contains(
                "provider=\"mock\",operation=\"create_payment\",code=\"card_declined\"} 1"
            ),
            "{text}"
        );
        assert!(text.len() < 12_000, "{} bytes", text.len());
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
        let text = m.render(
            &[("payhost_up", "Always 1.", 1.0)],
            &[("payhost_db_reads", "Reads of the database.", 7)],
            &[(
                "payhost_instance_circuit_state",
                "Circuits.",
                vec![("mock".into(), 2.0), ("made_up".into(), 1.0)],
            )],
            &|reason| if reason == "modified" { 1.0 } else { 0.0 },
        );
        assert!(
            text.contains("payhost_plugin_files_refused{reason=\"modified\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE payhost_db_reads counter\npayhost_db_reads_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("payhost_plugin_files_refused{reason=\"not locked\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("payhost_instance_circuit_state{provider=\"mock\"} 2"),
            "{text}"
        );
        assert!(
            !text.contains("made_up"),
            "only configured instances are labels: {text}"
        );
        // The process and the build.
        for name in [
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_cpu_seconds_total ",
            "process_threads ",
            "payhost_build_info{version=\"",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains(
            "payhost_http_requests_total{method=\"POST\",route=\"/v1/payments\",status=\"201\"} 2"
        ));
        assert!(text.contains(
            "payhost_http_request_duration_seconds_bucket{le=\"0.005\",method=\"POST\",route=\"/v1/payments\"} 1"
        ));
        assert!(text.contains(
            "payhost_http_request_duration_seconds_bucket{le=\"0.05\",method=\"POST\",route=\"/v1/payments\"} 2"
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
