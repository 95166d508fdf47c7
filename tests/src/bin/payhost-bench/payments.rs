//! `POST /v1/payments` and `GET /v1/payments/{id}` under load against the release
//! `payhost serve`, the mock provider, unique idempotency keys, N workers each on its own
//! keep-alive connection: on SQLite (WAL, `synchronous = FULL`: every answered payment is
//! fsync'd), and on PostgreSQL with one host and with two hosts sharing the database (the
//! workers split between them) when `PAYHOST_TEST_POSTGRES` names a server.

use crate::conn::{Conn, DbCost};
use payhost_tests::api::Api;
use payhost_tests::db::{TestDb, POSTGRES_VAR};
use payhost_tests::{mock_so, payhost_bin, HostProcess, Scratch, API_KEY};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `hosts` hosts on `db` (SQLite in the first host's folder when `None`).
fn start(hosts: usize, db: Option<&TestDb>) -> (Vec<Scratch>, Vec<HostProcess>) {
    start_with(hosts, db, "")
}

/// [`start`] with more configuration after the mock instance (instances, routes).
pub fn start_with(
    hosts: usize,
    db: Option<&TestDb>,
    extra: &str,
) -> (Vec<Scratch>, Vec<HostProcess>) {
    start_on(hosts, db, extra, None)
}

/// [`start_with`] on build `bin` (this one when `None`; another build's folder may hold its
/// own `libpayhost_plugin_mock.so`, of its contract, which is then used).
fn start_on(
    hosts: usize,
    db: Option<&TestDb>,
    extra: &str,
    bin: Option<&Path>,
) -> (Vec<Scratch>, Vec<HostProcess>) {
    let host_line = db.map(TestDb::host_line).unwrap_or_default();
    let mock = bin
        .and_then(Path::parent)
        .map(|d| d.join("libpayhost_plugin_mock.so"))
        .filter(|m| m.exists())
        .unwrap_or_else(mock_so);
    let scratches: Vec<Scratch> = (0..hosts)
        .map(|_| {
            let stripe = payhost_tests::stripe_so();
            let mut plugins = vec![(mock.clone(), "libpayhost_plugin_mock.so")];
            if extra.contains("\"stripe\"") {
                plugins.push((stripe, "libpayhost_plugin_stripe.so"));
            }
            let plugins: Vec<(&Path, &str)> =
                plugins.iter().map(|(f, n)| (f.as_path(), *n)).collect();
            Scratch::with_host(
                &plugins,
                // A routing table names its own default route.
                &if extra.contains("[routing]") {
                    host_line.clone()
                } else {
                    format!("default_provider = \"mock\"\n{host_line}")
                },
                &format!(
                    "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"whsec_bench\" }}\n{extra}"
                ),
            )
        })
        .collect();
    // The host's default log level (info: one line per request), unless told otherwise;
    // traces off whatever the environment says.
    let log = std::env::var("PAYHOST_BENCH_LOG").unwrap_or_else(|_| "info".into());
    let env = [
        ("RUST_LOG", log.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
    ];
    let processes = scratches
        .iter()
        .map(|s| s.serve_binary(bin.unwrap_or(&payhost_bin()), &env))
        .collect();
    (scratches, processes)
}

/// A customer on `addr`'s mock (the mock keeps its customers in its own process).
pub fn customer(addr: &str) -> String {
    let c = Api::new(addr, API_KEY).post(
        "/v1/customers",
        &serde_json::json!({"user_id": format!("bench-{addr}"), "email": "bench@example.com"}),
    );
    assert_eq!(c.status, 201, "{c:?}");
    c.s("id")
}

/// What one [`load`] measured.
pub struct Measured {
    pub rate: f64,
    pub p99: Duration,
}

/// Runs `request` on `workers` connections spread over `addrs` for `duration` after a
/// warm-up, and prints the rate and latencies.
pub fn load(
    label: &str,
    addrs: &[String],
    workers: usize,
    duration: Duration,
    request: impl Fn(&mut Conn, usize, u64) -> bool + Send + Sync + 'static,
) -> Measured {
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (addr, stop, measuring, request) = (
                addrs[w % addrs.len()].clone(),
                stop.clone(),
                measuring.clone(),
                request.clone(),
            );
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                let mut samples = Vec::new();
                let mut failures = 0u64;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    let ok = request(&mut conn, w, n);
                    let took = t.elapsed();
                    if measuring.load(Ordering::Relaxed) {
                        samples.push(took);
                        if !ok {
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
        "{label}, concurrency {workers}: {:.0}/s over {:.1} s (n={}, failed={failures}) \
         p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
        all.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        all.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        all[all.len() - 1],
    );
    Measured {
        rate: all.len() as f64 / elapsed.as_secs_f64(),
        p99: pct(0.99),
    }
}

/// `POST /v1/payments` on one SQLite host of build `bin` (this one when `None`) with the
/// mock and `extra` configuration (more mock instances, routes, telemetry), after the last
/// run's writes reached the disk: for runs of two builds or configurations in turn.
pub fn one_host(
    label: &str,
    bin: Option<&Path>,
    extra: &str,
    workers: usize,
    duration: Duration,
) -> Measured {
    let _ = std::process::Command::new("sync").status();
    payments_on(label, 1, None, workers, duration, extra, bin)
}

/// The middle value (of an odd count; the upper middle of an even one).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn payments(label: &str, hosts: usize, db: Option<&TestDb>, workers: usize, duration: Duration) {
    payments_with(label, hosts, db, workers, duration, "");
}

/// `POST /v1/payments` with more configuration (instances, routes).
pub fn payments_with(
    label: &str,
    hosts: usize,
    db: Option<&TestDb>,
    workers: usize,
    duration: Duration,
    extra: &str,
) -> Measured {
    payments_on(label, hosts, db, workers, duration, extra, None)
}

/// [`payments_with`] on build `bin` (this one when `None`).
fn payments_on(
    label: &str,
    hosts: usize,
    db: Option<&TestDb>,
    workers: usize,
    duration: Duration,
    extra: &str,
    bin: Option<&Path>,
) -> Measured {
    let (_scratches, processes) = start_on(hosts, db, extra, bin);
    let addrs: Vec<String> = processes.iter().map(|p| p.addr.clone()).collect();
    let bodies: Vec<String> = addrs
        .iter()
        .map(|a| {
            format!(
                "{{\"customer\":\"{}\",\"amount\":1999,\"currency\":\"usd\",\"payment_method\":\"pm_card_visa\"}}",
                customer(a)
            )
        })
        .collect();
    let hosts_n = addrs.len();
    let before = DbCost::of(&addrs);
    let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = made.clone();
    let m = load(label, &addrs, workers, duration, move |conn, w, n| {
        let ok = conn.post(
            "/v1/payments",
            &format!("bench-{w}-{n}"),
            &bodies[w % hosts_n],
        ) == 201;
        counted.fetch_add(u64::from(ok), Ordering::Relaxed);
        ok
    });
    DbCost::of(&addrs).print_per(before, made.load(Ordering::Relaxed) as f64, "payment");
    for p in processes {
        let (code, _) = p.terminate();
        assert_eq!(code, 0);
    }
    m
}

/// `POST /v1/payments` on SQLite, then on PostgreSQL with one and two hosts.
pub fn run(workers: usize, duration: Duration) {
    payments("POST /v1/payments, sqlite", 1, None, workers, duration);
    let Some(pg) = TestDb::postgres("bench_pay1") else {
        println!("POST /v1/payments on PostgreSQL: SKIPPED, set {POSTGRES_VAR}");
        return;
    };
    payments(
        "POST /v1/payments, postgres, 1 host",
        1,
        Some(&pg),
        workers,
        duration,
    );
    drop(pg);
    let pg = TestDb::postgres("bench_pay2").expect("the server answered a moment ago");
    payments(
        "POST /v1/payments, postgres, 2 hosts",
        2,
        Some(&pg),
        workers,
        duration,
    );
}

/// `GET /v1/payments/{id}` from payhost's records on SQLite.
pub fn reads(workers: usize, duration: Duration) {
    let (_scratches, processes) = start(1, None);
    let addr = processes[0].addr.clone();
    let p = Api::new(&addr, API_KEY).post(
        "/v1/payments",
        &serde_json::json!({"customer": customer(&addr), "amount": 1999, "currency": "usd", "payment_method": "pm_card_visa"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    let path = format!("/v1/payments/{}", p.s("id"));
    load(
        "GET /v1/payments/{id}, sqlite",
        &[addr],
        workers,
        duration,
        move |conn, _, _| conn.get(&path).0 == 200,
    );
    for p in processes {
        let (code, _) = p.terminate();
        assert_eq!(code, 0);
    }
}
