//! Routing's costs (issue 23's targets): one routing decision in process (a table of a
//! tenant mapping, three rules and a default; a split among them); `POST /v1/payments` with
//! three rules and two candidates beside the plain run; the latency a failover from an
//! instance refusing connections adds; and an instance whose circuit is open, skipped.

use crate::payments::{customer, median, one_host, payments_with, start_with};
use payhost::config::routing::Facts;
use payhost::config::Config;
use payhost::routing::{Circuit, Instances, Router};
use payhost_tests::closed_port;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Fleet;

impl Instances for Fleet {
    fn lacks(&self, _: &str, needs: &[&str]) -> Result<Option<String>, String> {
        let declared = ["payments", "manual_capture", "refunds"];
        Ok(needs
            .iter()
            .find(|n| !declared.contains(n))
            .map(|n| (*n).to_owned()))
    }
    fn circuit(&self, _: &str) -> Circuit {
        Circuit::Closed
    }
}

/// Three rules (the last a split) and two candidates on the default route.
const RULES: &str = "[routing]\ndefault = [\"mock\", \"mock_b\"]\n\
    [[routing.rules]]\nname = \"eur-small\"\nwhen = { currency = [\"eur\"], amount_max = 1000 }\nroute = [\"mock_b\", \"mock\"]\n\
    [[routing.rules]]\nname = \"manual\"\nwhen = { capture_method = \"manual\", metadata = { channel = \"pos\" } }\nroute = [\"mock_b\"]\n\
    [[routing.rules]]\nname = \"acme\"\nwhen = { tenant = [\"acme\"] }\nsplit = { mock = 90, mock_b = 10 }\n";

const MOCK_B: &str =
    "[providers.mock_b]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_bench_b\" }\n";

fn decisions() {
    let c: Config = toml::from_str(&format!(
        "[providers.mock]\nplugin = \"mock\"\n[providers.mock_b]\nplugin = \"mock\"\n\
         [tenants]\ninitech = \"mock_b\"\n{RULES}"
    ))
    .unwrap();
    let router = Router::new(&c);
    let facts = [
        Facts {
            currency: Some("usd".into()),
            amount: Some(1999),
            ..Facts::default()
        },
        Facts {
            tenant: Some("acme".into()),
            currency: Some("usd".into()),
            amount: Some(1999),
            ..Facts::default()
        },
    ];
    for (label, f) in [("default route", &facts[0]), ("split", &facts[1])] {
        let samples: Vec<Duration> = (0..100_000)
            .map(|i| {
                let key = format!("bench-{i}");
                let t = Instant::now();
                let d = router.decide(f, &["payments"], &key, None, &Fleet);
                let took = t.elapsed();
                assert!(!d.candidates.is_empty());
                took
            })
            .collect();
        crate::report(&format!("routing decision, 3 rules, {label}"), samples);
    }
}

/// Latency of single payments (no concurrency): what one request costs through `route`.
fn latency(label: &str, extra: &str, n: usize) {
    let (_scratches, processes) = start_with(1, None, extra);
    let addr = processes[0].addr.clone();
    let body = format!(
        "{{\"customer\":\"{}\",\"amount\":1999,\"currency\":\"usd\",\"payment_method\":\"pm_card_visa\"}}",
        customer(&addr)
    );
    let mut conn = crate::conn::Conn::open(&addr);
    for i in 0..50 {
        assert_eq!(conn.post("/v1/payments", &format!("warm-{i}"), &body), 201);
    }
    let samples: Vec<Duration> = (0..n)
        .map(|i| {
            let t = Instant::now();
            let status = conn.post("/v1/payments", &format!("lat-{i}"), &body);
            let took = t.elapsed();
            assert_eq!(status, 201, "{label}");
            took
        })
        .collect();
    crate::report(label, samples);
    for p in processes {
        let (code, _) = p.terminate();
        assert_eq!(code, 0);
    }
}

/// With `PAYHOST_BENCH_BASELINE_ROUTING=<payhost binary>` (a build from before routing):
/// five rounds in turn of that build, this build with three rules and two candidates, and
/// this build without routes, each round in another order; the medians side by side (the
/// target: within 5%).
fn against_the_build_before(workers: usize, duration: Duration) {
    let Some(before) = std::env::var_os("PAYHOST_BENCH_BASELINE_ROUTING").map(PathBuf::from) else {
        println!(
            "POST /v1/payments against the build before routing: not run \
             (PAYHOST_BENCH_BASELINE_ROUTING names no binary)"
        );
        return;
    };
    // `PAYHOST_BENCH_CONNECTIONS` loads harder: a closed loop of 64 connections turns one
    // more durable write per payment (latency) into fewer payments a second.
    let workers = std::env::var("PAYHOST_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(workers);
    let rules = format!("{MOCK_B}{RULES}");
    let kinds: [(&str, Option<&Path>, &str); 3] = [
        (
            "POST /v1/payments, build before routing",
            Some(before.as_path()),
            "",
        ),
        ("POST /v1/payments, 3 rules, 2 candidates", None, &rules),
        ("POST /v1/payments, no routes", None, ""),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    // Each round starts with the next kind: no kind always runs first or after another.
    for round in 0..5 {
        for k in 0..kinds.len() {
            let i = (round + k) % kinds.len();
            let (label, bin, extra) = kinds[i];
            rates[i].push(one_host(label, bin, extra, workers, duration).rate);
        }
    }
    let base = median(rates[0].clone());
    for (i, (label, _, _)) in kinds.iter().enumerate() {
        let m = median(rates[i].clone());
        println!(
            "{label}: median {m:.0}/s ({:+.1}% against the build before; runs {})",
            (m / base - 1.0) * 100.0,
            rates[i]
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
}

pub fn run(workers: usize, duration: Duration) {
    decisions();
    against_the_build_before(workers, duration);
    payments_with(
        "POST /v1/payments, sqlite, no routes",
        1,
        None,
        workers,
        duration,
        "",
    );
    payments_with(
        "POST /v1/payments, sqlite, 3 rules, 2 candidates",
        1,
        None,
        workers,
        duration,
        &format!("{MOCK_B}{RULES}"),
    );
    // An instance refusing connections first on the route: every payment fails over.
    let down = closed_port();
    let stripe_down = format!(
        "[providers.down]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
         config = {{ api_key = \"sk_test_down\", webhook_secret = \"whsec_down\", api_base = \"http://127.0.0.1:{down}\" }}\n"
    );
    latency(
        "payment latency, the mock alone",
        "[routing]\ndefault = [\"mock\"]\n",
        2_000,
    );
    latency(
        "payment latency, failover from a refused instance",
        &format!(
            "{stripe_down}[routing]\ndefault = [\"down\", \"mock\"]\n\
             [routing.breaker]\nfailures = 1000000\n"
        ),
        2_000,
    );
    latency(
        "payment latency, that instance's circuit open",
        &format!(
            "{stripe_down}[routing]\ndefault = [\"down\", \"mock\"]\n\
             [routing.breaker]\nfailures = 1\ncooldown_secs = 3600\n"
        ),
        2_000,
    );
}
