//! `POST /v1/payments` under load: the release `payhost serve` on SQLite (WAL,
//! `synchronous = FULL`: every answered payment is fsync'd), the mock provider, unique
//! idempotency keys, N workers each on its own keep-alive connection.

use payhost_tests::api::Api;
use payhost_tests::{mock_so, Scratch, API_KEY};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// Sends a POST and reads the whole answer; returns the status.
    fn post(&mut self, path: &str, key: &str, body: &str) -> u16 {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {API_KEY}\r\n\
             Idempotency-Key: {key}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        status
    }
}

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
