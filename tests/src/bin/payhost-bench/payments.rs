//! `POST /v1/payments` under load: the release `payhost serve` on SQLite (WAL,
//! `synchronous = FULL`: every answered payment is fsync'd), the mock provider, unique
//! idempotency keys, N workers each on its own keep-alive connection.

use crate::conn::Conn;
use payhost_tests::api::Api;
use payhost_tests::{mock_so, Scratch, API_KEY};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(workers: usize, duration: Duration) {
    let s = Scratch::with_host(
        &[(&mock_so(), "libpayhost_plugin_mock.so")],
        "default_provider = \"mock\"\n",
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_bench\" }\n",
    );
    // The host's default log level (info: one line per request), unless told otherwise.
    let log = std::env::var("PAYHOST_BENCH_LOG").unwrap_or_else(|_| "info".into());
    let host = s.serve_with_env(&[("RUST_LOG", log.as_str())]);
    let api = Api::new(&host.addr, API_KEY);
    let c = api.post(
        "/v1/customers",
        &serde_json::json!({"user_id": "bench", "email": "bench@example.com"}),
    );
    assert_eq!(c.status, 201, "{c:?}");
    let body = format!(
        "{{\"customer\":\"{}\",\"amount\":1999,\"currency\":\"usd\",\"payment_method\":\"pm_card_visa\"}}",
        c.s("id")
    );

    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (addr, body, stop, measuring) = (
                host.addr.clone(),
                body.clone(),
                stop.clone(),
                measuring.clone(),
            );
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                let mut samples = Vec::new();
                let mut failures = 0u64;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    let status = conn.post("/v1/payments", &format!("bench-{w}-{n}"), &body);
                    let took = t.elapsed();
                    if measuring.load(Ordering::Relaxed) {
                        samples.push(took);
                        if status != 201 {
                            failures += 1;
                        }
                    }
                }
                (samples, failures)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2)); // warm-up
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    std::thread::sleep(duration);
    measuring.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    let mut failures = 0;
    for t in threads {
        let (samples, f) = t.join().unwrap();
        all.extend(samples);
        failures += f;
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "POST /v1/payments, sqlite, concurrency {workers}: {:.0} payments/s over {:.1} s \
         (n={}, failed={failures}) p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
        all.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        all.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        all[all.len() - 1],
    );
    let (code, _) = host.terminate();
    assert_eq!(code, 0);
}
