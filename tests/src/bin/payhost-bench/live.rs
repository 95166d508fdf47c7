//! Live plugin replacement on the release binary: the time from a new build landing in the
//! folder (renamed into place) to the first request served by it, and the request latency
//! of a steady load while builds are swapped, against the same load without swaps.

use crate::conn::Conn;
use payhost_tests::api::Api;
use payhost_tests::{install, mock_next_so, mock_so, Scratch, API_KEY};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn version(api: &Api) -> String {
    api.get("/v1/providers").body["data"][0]["version"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Installs `build` and waits until a request is served by it; returns the time taken.
fn swap(api: &Api, dir: &Path, build: &Path, expect: &str) -> Duration {
    let t = Instant::now();
    install(build, dir, "mock.so");
    while version(api) != expect {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{expect} never came up"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = api.post(
        "/v1/customers",
        &serde_json::json!({"user_id": format!("swap-{}", t.elapsed().as_nanos()), "email": "s@example.com"}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    t.elapsed()
}

/// Runs `workers` connections of POST /v1/payments-like load for `window`, calling `during`
/// meanwhile; returns the sorted latencies and the failures.
fn under_load(
    addr: &str,
    body: &str,
    window: Duration,
    during: impl FnOnce(),
) -> (Vec<Duration>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    // Unique across windows: every request creates a new customer under a new key.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seq = Arc::new(AtomicU64::new(
        NEXT.fetch_add(1_000_000_000, Ordering::SeqCst),
    ));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (addr, body, stop, seq) =
                (addr.to_owned(), body.to_owned(), stop.clone(), seq.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                let mut samples = Vec::new();
                let mut failed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let body = body.replace("{n}", &n.to_string());
                    let t = Instant::now();
                    if conn.post("/v1/customers", &format!("live-{n}"), &body) != 201 {
                        failed += 1;
                    }
                    samples.push(t.elapsed());
                }
                (samples, failed)
            })
        })
        .collect();
    let started = Instant::now();
    during();
    if let Some(rest) = window.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    let mut failed = 0;
    for t in threads {
        let (s, f) = t.join().unwrap();
        all.extend(s);
        failed += f;
    }
    all.sort();
    (all, failed)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\nplugin_rescan_ms = 600000\n",
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_bench\" }\n",
    );
    let host = s.serve_with_env(&[("RUST_LOG", "warn")]);
    let api = Api::new(&host.addr, API_KEY);
    let dir = s.dir.path().join("plugins");
    let (old, new) = (mock_so(), mock_next_so());

    let mut landing = Vec::new();
    for i in 0..20 {
        let (build, v) = if i % 2 == 0 {
            (&new, "2.1.1")
        } else {
            (&old, "2.1.0")
        };
        landing.push(swap(&api, &dir, build, v));
        std::thread::sleep(Duration::from_millis(150));
    }
    landing.sort();
    println!(
        "new build lands → first request served by it (n={}): p50={:.1?} max={:.1?}",
        landing.len(),
        pct(&landing, 0.5),
        landing[landing.len() - 1]
    );

    let body = r#"{"user_id":"u{n}","email":"u{n}@example.com"}"#;
    let window = Duration::from_secs(8);
    let _warm_up = under_load(&host.addr, body, Duration::from_secs(4), || {});
    let (quiet, quiet_failed) = under_load(&host.addr, body, window, || {});
    let (swapping, swap_failed) = under_load(&host.addr, body, window, || {
        for i in 0..6 {
            let (build, v) = if i % 2 == 0 {
                (&new, "2.1.1")
            } else {
                (&old, "2.1.0")
            };
            swap(&api, &dir, build, v);
            std::thread::sleep(Duration::from_millis(1000));
        }
    });
    for (name, s, failed) in [
        ("no swaps", &quiet, quiet_failed),
        ("6 swaps", &swapping, swap_failed),
    ] {
        println!(
            "POST /v1/customers, 16 connections, {name:<8} n={:<6} failed={failed} p50={:.2?} p99={:.2?} max={:.2?}",
            s.len(),
            pct(s, 0.5),
            pct(s, 0.99),
            s[s.len() - 1]
        );
    }
    let (code, _) = host.terminate();
    assert_eq!(code, 0);
}
