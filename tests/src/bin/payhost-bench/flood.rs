//! A flood of unauthenticated webhooks to made-up provider names (200-character random
//! names, 64 keep-alive connections) against the release binary: requests answered per
//! second, the host's RSS before and after, and the size of `/metrics` after.

use crate::conn::Conn;
use payhost_tests::{mock_so, rss_kib, Scratch};
use rand::distributions::{Alphanumeric, DistString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub fn run(workers: usize, requests: u64) {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_bench_flood\" }\n",
    );
    let host = s.serve_with_env(&[("RUST_LOG", "warn")]);
    let before = rss_kib(host.pid());
    let sent = Arc::new(AtomicU64::new(0));
    let not_found = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (addr, sent, not_found) = (host.addr.clone(), sent.clone(), not_found.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                let mut rng = rand::thread_rng();
                while sent.fetch_add(1, Ordering::Relaxed) < requests {
                    let name = Alphanumeric.sample_string(&mut rng, 200);
                    if conn.post_with(&format!("/webhooks/payments/{name}"), "", "{}") == 404 {
                        not_found.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let took = started.elapsed();
    let after = rss_kib(host.pid());
    let metrics = payhost_tests::http(&host.addr, "GET", "/metrics", None, None).1;
    let size = metrics.as_str().map_or(0, str::len);
    println!(
        "flood: {requests} webhooks to made-up providers, concurrency {workers}: {:.0} answered/s \
         ({} were 404); RSS {before} KiB -> {after} KiB ({:+} KiB); /metrics {size} bytes",
        requests as f64 / took.as_secs_f64(),
        not_found.load(Ordering::Relaxed),
        after as i64 - before as i64,
    );
}
