//! `payhost-bench traces`: what traces cost. `POST /v1/payments` on SQLite (the mock, 64
//! connections) with traces off and on (exported to a collector in this process that
//! decodes and counts the spans), three rounds in turn, each starting with the next kind,
//! so the machine's drift falls on all; with `PAYHOST_BENCH_BASELINE=<payhost binary>` (a build from before traces) that
//! build joins each round, traces off being the claim "off costs nothing".

use crate::payments::{median, one_host};
use payhost_tests::serve_in_background;
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A collector's `/v1/traces`: decodes each export and counts its spans.
fn collector() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    let spans = Arc::new(AtomicU64::new(0));
    let count = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let count = count.clone();
            async move {
                if let Ok(export) = ExportTraceServiceRequest::decode(body) {
                    let n: usize = export
                        .resource_spans
                        .iter()
                        .flat_map(|r| &r.scope_spans)
                        .map(|s| s.spans.len())
                        .sum();
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
                [("content-type", "application/x-protobuf")]
            }
        }),
    );
    (serve_in_background(app), spans)
}

pub fn run(workers: usize, duration: Duration) {
    let (addr, spans) = collector();
    let on = format!("[telemetry]\notlp_endpoint = \"http://{addr}\"\n");
    let baseline = std::env::var_os("PAYHOST_BENCH_BASELINE").map(PathBuf::from);
    let mut kinds: Vec<(&str, Option<&Path>, &str)> = Vec::new();
    if let Some(b) = &baseline {
        kinds.push((
            "POST /v1/payments, build before traces",
            Some(b.as_path()),
            "",
        ));
    }
    kinds.push(("POST /v1/payments, traces off", None, ""));
    kinds.push(("POST /v1/payments, traces on", None, on.as_str()));
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    // Each round starts with the next kind: no kind always runs first or after another.
    for round in 0..3 {
        for k in 0..kinds.len() {
            let i = (round + k) % kinds.len();
            let (label, bin, telemetry) = kinds[i];
            let m = one_host(label, bin, telemetry, workers, duration);
            rates[i].push(m.rate);
            p99s[i].push(m.p99.as_secs_f64() * 1000.0);
        }
    }
    for (i, (label, _, _)) in kinds.iter().enumerate() {
        println!(
            "{label}: median {:.0}/s (runs {}), p99 median {:.1} ms",
            median(rates[i].clone()),
            rates[i]
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            median(p99s[i].clone()),
        );
    }
    println!(
        "spans received by the collector: {}",
        spans.load(Ordering::Relaxed)
    );
}
