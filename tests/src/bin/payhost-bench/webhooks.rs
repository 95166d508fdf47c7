//! Webhook acknowledgements under load: signed Stripe-format events (unique ids) posted to
//! `/webhooks/payments/stripe` of the release `payhost serve` on SQLite (every acknowledged
//! event fsync'd in the inbox before its 2xx), then on PostgreSQL with one and two hosts,
//! N workers on keep-alive connections (split between the hosts), while the processors work
//! through the inbox at the same time; then the time the backlog takes to drain.
//!
//! First the raw ceiling: the same generator, the same events, against an axum server (a
//! process of its own, like payhost, on tokio's default runtime) that answers 200 to any
//! POST without reading further. payhost's rate is reported as a share of it.

use crate::conn::{Conn, DbCost};
use payhost_plugin_api::signature;
use payhost_tests::db::TestDb;
use payhost_tests::{stripe_so, Scratch};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec_bench_secret";

/// Acknowledgements (and processing meanwhile) on SQLite, then on PostgreSQL with one and
/// two hosts when `PAYHOST_TEST_POSTGRES` names a server. `rate`: events offered per second
/// in all (paced per worker), or as fast as answered.
pub fn run(workers: usize, duration: Duration, rate: Option<u64>) {
    let ceiling = rate.is_none().then(|| ceiling(workers, duration));
    let acked = one("sqlite", 1, None, workers, duration, rate);
    if let Some(ceiling) = ceiling {
        println!(
            "  payhost acknowledges {:.1}% of the raw HTTP ceiling ({acked:.0} of {ceiling:.0}/s; target >= 25%)",
            100.0 * acked / ceiling
        );
    }
    if rate.is_some() {
        // The sustained run is the SQLite target's.
        return;
    }
    let Some(pg) = TestDb::postgres("bench_hooks1") else {
        println!("  (PostgreSQL skipped: set PAYHOST_TEST_POSTGRES)");
        return;
    };
    one("postgres, 1 host", 1, Some(&pg), workers, duration, rate);
    drop(pg);
    let pg = TestDb::postgres("bench_hooks2").expect("the server answered a moment ago");
    one("postgres, 2 hosts", 2, Some(&pg), workers, duration, rate);
}

/// `payhost-bench ceiling-server`: answers 200 to any POST, printing its address first.
pub fn ceiling_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let app = axum::Router::new().fallback(|| async { "{\"received\":true}" });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!(
            "ceiling listening on http://{}",
            listener.local_addr().unwrap()
        );
        axum::serve(listener, app).await.unwrap();
    });
}

/// The raw ceiling's acknowledgements per second, measured as payhost's are.
fn ceiling(workers: usize, duration: Duration) -> f64 {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("ceiling-server")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("ceiling listening on http://")
        .expect("the ceiling server's address")
        .to_owned();
    let load = generate(&[addr], workers, duration, None);
    let rate = load.print("raw HTTP ceiling (axum, 200 to any POST)", workers);
    let _ = child.kill();
    let _ = child.wait();
    rate
}

/// What the generator measured.
struct Load {
    samples: Vec<Duration>,
    failed: Vec<u16>,
    elapsed: Duration,
}

impl Load {
    /// Prints the rate and latencies; answers the rate.
    fn print(&self, label: &str, workers: usize) -> f64 {
        let all = &self.samples;
        let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
        let rate = all.len() as f64 / self.elapsed.as_secs_f64();
        println!(
            "POST /webhooks/payments/stripe, {label}, concurrency {workers}: {rate:.0} acknowledged/s over {:.1} s \
             (n={}, failed={} {:?}) p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
            self.elapsed.as_secs_f64(),
            all.len(),
            self.failed.len(),
            self.failed.iter().fold(std::collections::BTreeMap::new(), |mut m, s| {
                *m.entry(*s).or_insert(0u32) += 1;
                m
            }),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            all[all.len() - 1]
        );
        rate
    }
}

/// Signed Stripe events with unique ids from `workers` keep-alive connections spread over
/// `addrs`, for 2 s of warm-up then `duration` measured (paced to `rate` in all when given).
fn generate(addrs: &[String], workers: usize, duration: Duration, rate: Option<u64>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (addr, stop, measuring, seq) = (addrs[w % addrs.len()].clone(), stop.clone(), measuring.clone(), seq.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                let (mut samples, mut failed) = (Vec::new(), Vec::<u16>::new());
                let gap = rate.map(|r| Duration::from_secs_f64(workers as f64 / r as f64));
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(gap) = gap {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                        next += gap;
                    }
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
                    let body = format!(
                        r#"{{"id":"evt_bench_{n}","object":"event","type":"payment_intent.succeeded","created":{t},"livemode":false,"api_version":"2024-06-20","data":{{"object":{{"id":"pi_bench_{n}","object":"payment_intent","amount":2000,"currency":"usd","status":"succeeded","customer":"cus_bench"}}}}}}"#
                    );
                    let header = signature::header(&[SECRET], t, body.as_bytes());
                    let started = Instant::now();
                    let status = conn.post_with("/webhooks/payments/stripe", &format!("Stripe-Signature: {header}\r\n"), &body);
                    if measuring.load(Ordering::Relaxed) {
                        samples.push(started.elapsed());
                        if status != 200 {
                            failed.push(status);
                        }
                    }
                }
                (samples, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    std::thread::sleep(duration);
    measuring.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (mut samples, mut failed) = (Vec::new(), Vec::new());
    for t in threads {
        let (s, f) = t.join().unwrap();
        samples.extend(s);
        failed.extend(f);
    }
    samples.sort();
    Load {
        samples,
        failed,
        elapsed,
    }
}

/// One run against `hosts` payhost processes; answers the acknowledgements per second.
fn one(
    label: &str,
    hosts: usize,
    db: Option<&TestDb>,
    workers: usize,
    duration: Duration,
    rate: Option<u64>,
) -> f64 {
    let mut host_lines = "default_provider = \"stripe\"\n".to_owned();
    if let Some(db) = db {
        host_lines.push_str(&db.host_line());
    }
    let scratches: Vec<Scratch> = (0..hosts)
        .map(|_| {
            Scratch::with_host(
                &[(&stripe_so(), "stripe.so")],
                &host_lines,
                &format!(
                    "[providers.stripe]\nplugin = \"stripe\"\n\
                     config = {{ api_key = \"sk_test_bench\", webhook_secret = \"{SECRET}\", api_base = \"http://127.0.0.1:9\" }}\n"
                ),
            )
        })
        .collect();
    let log = std::env::var("PAYHOST_BENCH_LOG").unwrap_or_else(|_| "info".into());
    let processes: Vec<_> = scratches
        .iter()
        .map(|s| s.serve_with_env(&[("RUST_LOG", log.as_str())]))
        .collect();
    let addrs: Vec<String> = processes.iter().map(|h| h.addr.clone()).collect();
    let before = DbCost::of(&addrs);
    let load = generate(&addrs, workers, duration, rate);
    let acked = load.print(label, workers);
    let elapsed = load.elapsed;
    // How far the processor got meanwhile, and how long the rest took once the load
    // stopped (the backlog, in seconds).
    let sqlite;
    let db = match db {
        Some(db) => db,
        None => {
            sqlite = TestDb::sqlite(scratches[0].dir.path());
            &sqlite
        }
    };
    let number =
        |sql: &str| -> u64 { db.value(sql, &[]).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let pending_sql = "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status = 'pending'";
    let stored = number("SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox");
    let pending = number(pending_sql);
    let drain = Instant::now();
    // Asked every 100 ms (precise enough for drains of seconds): the count scans the
    // pending rows, ~5 ms each on PostgreSQL with 50,000 of them.
    while number(pending_sql) > 0 && drain.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let drained = drain.elapsed();
    let offered = rate.map_or_else(
        || "as fast as answered".to_owned(),
        |r| format!("{r}/s offered"),
    );
    println!(
        "  ({offered}) inbox when the load stopped: {stored} stored, {pending} pending; \
         drained in {:.2} s; end-to-end {:.0} processed/s over the whole run",
        drained.as_secs_f64(),
        stored as f64 / (elapsed.as_secs_f64() + 2.0 + drained.as_secs_f64())
    );
    // Acknowledged and processed: every event stored went both ways by now.
    DbCost::of(&addrs).print_per(before, stored as f64, "webhook (stored and processed)");
    for host in processes {
        let (code, _) = host.terminate();
        assert_eq!(code, 0);
    }
    acked
}
