//! Lists at scale: a million payments (10,000 customers with 100 each), then
//! `GET /v1/payments?customer=<id>&limit=100` for random customers, one keep-alive
//! connection, against the release `payhost serve` on SQLite and on PostgreSQL (when
//! `PAYHOST_TEST_POSTGRES` names a server). The rows are written straight into the database
//! the host then opens (the bench is not a test of the write path), spread over a year.

use crate::conn::Conn;
use payhost_tests::db::TestDb;
use payhost_tests::{mock_so, Scratch};
use rand::Rng;
use std::time::{Duration, Instant};

const CUSTOMERS: i64 = 10_000;
const PER_CUSTOMER: i64 = 100;
const PAGES: usize = 2_000;

pub fn run() {
    let providers =
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_b\" }\n";
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        providers,
    );
    bench("sqlite", &s, &TestDb::sqlite(s.dir.path()));
    match TestDb::postgres("bench_lists") {
        Some(pg) => {
            let s = Scratch::with_host(
                &[(&mock_so(), "mock.so")],
                &format!("default_provider = \"mock\"\n{}", pg.host_line()),
                providers,
            );
            bench("postgres", &s, &pg);
        }
        None => eprintln!(
            "SKIPPED LOUDLY: {} is not set; the PostgreSQL list bench did not run",
            payhost_tests::db::POSTGRES_VAR
        ),
    }
}

fn bench(backend: &str, s: &Scratch, db: &TestDb) {
    // The host migrates the database; stop it, fill the tables, start it again.
    let log = std::env::var("PAYHOST_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    drop(s.serve_with_env(&[("RUST_LOG", log.as_str())]));
    let t = Instant::now();
    fill(backend, db);
    println!(
        "lists, {backend}: {} payments of {CUSTOMERS} customers written in {:.1?}",
        CUSTOMERS * PER_CUSTOMER,
        t.elapsed()
    );
    let host = s.serve_with_env(&[("RUST_LOG", log.as_str())]);
    let mut conn = Conn::open(&host.addr);
    let mut rng = rand::thread_rng();
    let mut page = |customer: i64| {
        let t = Instant::now();
        let (status, body) = conn.get(&format!(
            "/v1/payments?customer=cust_bench{customer:06}&limit=100"
        ));
        let took = t.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"].as_array().map(Vec::len), Some(100));
        took
    };
    for _ in 0..200 {
        page(rng.gen_range(0..CUSTOMERS)); // warm-up
    }
    let mut samples: Vec<Duration> = (0..PAGES)
        .map(|_| page(rng.gen_range(0..CUSTOMERS)))
        .collect();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "GET /v1/payments?customer=..&limit=100, {backend}, 1M payments: n={PAGES} \
         p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        samples[samples.len() - 1]
    );
    // The newest-first walk through the whole table stays a range scan too.
    let mut conn = Conn::open(&host.addr);
    let mut cursor = String::new();
    let t = Instant::now();
    for _ in 0..100 {
        let (status, body) = conn.get(&format!("/v1/payments?limit=100{cursor}"));
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let last = v["data"][99]["id"].as_str().unwrap().to_owned();
        cursor = format!("&starting_after={last}");
    }
    println!(
        "GET /v1/payments?limit=100 paged 100 times from the newest, {backend}: {:.2?} per page",
        t.elapsed() / 100
    );
    drop(host);
}

/// Writes the customers and their payments with the database's own row generator.
fn fill(backend: &str, db: &TestDb) {
    let total = CUSTOMERS * PER_CUSTOMER;
    let (series, customers, payments) = match backend {
        "postgres" => (
            "",
            format!(
                "INSERT INTO customers (id, tenant, user_id, provider, provider_id, email, \
                 metadata, created_at, updated_at) SELECT 'cust_bench' || lpad(n::text, 6, '0'), \
                 '', 'user' || n, 'mock', 'mock_cus_bench' || n, 'u' || n || '@example.com', '{{}}', \
                 1700000000, 1700000000 FROM generate_series(0, {}) AS n",
                CUSTOMERS - 1
            ),
            format!(
                "INSERT INTO payments (id, tenant, customer_id, provider, provider_id, amount, \
                 currency, amount_refunded, status, metadata, created_at, updated_at) \
                 SELECT 'pay_bench' || lpad(n::text, 8, '0'), '', \
                 'cust_bench' || lpad((n % {CUSTOMERS})::text, 6, '0'), 'mock', 'mock_pi_bench' || n, \
                 1000 + n % 5000, 'usd', 0, 'succeeded', '{{}}', 1700000000 + n * 31, \
                 1700000000 + n * 31 FROM generate_series(0, {}) AS n",
                total - 1
            ),
        ),
        _ => (
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {max}) ",
            String::new(),
            String::new(),
        ),
    };
    if backend == "postgres" {
        db.execute(&customers);
        db.execute(&payments);
        db.execute("ANALYZE");
        return;
    }
    let customers = format!(
        "{}INSERT INTO customers (id, tenant, user_id, provider, provider_id, email, metadata, \
         created_at, updated_at) SELECT 'cust_bench' || substr('000000' || n, -6), '', \
         'user' || n, 'mock', 'mock_cus_bench' || n, 'u' || n || '@example.com', '{{}}', \
         1700000000, 1700000000 FROM seq",
        series.replace("{max}", &(CUSTOMERS - 1).to_string())
    );
    let payments = format!(
        "{}INSERT INTO payments (id, tenant, customer_id, provider, provider_id, amount, \
         currency, amount_refunded, status, metadata, created_at, updated_at) \
         SELECT 'pay_bench' || substr('00000000' || n, -8), '', \
         'cust_bench' || substr('000000' || (n % {CUSTOMERS}), -6), 'mock', 'mock_pi_bench' || n, \
         1000 + n % 5000, 'usd', 0, 'succeeded', '{{}}', 1700000000 + n * 31, \
         1700000000 + n * 31 FROM seq",
        series.replace("{max}", &(total - 1).to_string())
    );
    db.execute(&customers);
    db.execute(&payments);
    db.execute("ANALYZE");
}
