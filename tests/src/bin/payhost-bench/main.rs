//! `make bench`: plugin load time, the host-side overhead of one provider call through the
//! blocking pool, and `POST /v1/payments` throughput against the real release binary on
//! SQLite, and live plugin replacement (file landing → serving, latency during swaps).
//! Prints medians and percentiles; BENCHMARKS.md records the results with the machine they
//! ran on. `payhost-bench [plugins|payments|routing|traces|reads|live|webhooks|lists|flood|processing]` runs one
//! part; `processing` offers 5,000 events/s for 60 s and reports the backlog left.

use payhost::clock::SystemClock;
use payhost::config::ProviderConfig;
use payhost::events::Dispatcher;
use payhost::plugins::{loader, Registry};
use payhost_plugin_api::{ops, CallCtx, NewCustomer, ObjectRef};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<44} n={:<6} p50={:>10.3?} p90={:>10.3?} p99={:>10.3?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99)
    );
}

fn main() {
    let only = std::env::args().nth(1);
    // The raw HTTP ceiling the webhooks part measures payhost against, as a process.
    if only.as_deref() == Some("ceiling-server") {
        webhooks::ceiling_server();
        return;
    }
    if only.as_deref().is_none_or(|o| o == "plugins") {
        plugins();
    }
    if only.as_deref().is_none_or(|o| o == "payments") {
        payments::run(64, Duration::from_secs(10));
    }
    if only.as_deref().is_none_or(|o| o == "routing") {
        routing::run(64, Duration::from_secs(10));
    }
    if only.as_deref().is_none_or(|o| o == "traces") {
        traces::run(64, Duration::from_secs(10));
    }
    if only.as_deref().is_none_or(|o| o == "reads") {
        payments::reads(64, Duration::from_secs(10));
    }
    if only.as_deref().is_none_or(|o| o == "live") {
        live::run();
    }
    if only.as_deref().is_none_or(|o| o == "webhooks") {
        webhooks::run(64, Duration::from_secs(10), None);
    }
    // Processing keeping up: a steady 5,000 events/s for 60 s, then the backlog left.
    if only.as_deref().is_none_or(|o| o == "processing") {
        webhooks::run(64, Duration::from_secs(60), Some(5_000));
    }
    if only.as_deref().is_none_or(|o| o == "lists") {
        lists::run();
    }
    if only.as_deref().is_none_or(|o| o == "flood") {
        flood::run(64, 20_000);
    }
}

fn plugins() {
    let mock = payhost_tests::mock_so();
    let scratch = tempfile::tempdir().unwrap();
    let private = scratch.path().join("copies");

    // First load of a build: read + hash + private copy + dlopen + ABI check + metadata.
    // Each variant is the mock with a different trailing byte (ELF ignores it), so each is a
    // build the host has not mapped yet.
    let bytes = std::fs::read(&mock).unwrap();
    let variants = scratch.path().join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    let loads: Vec<Duration> = (0..50u8)
        .map(|i| {
            let file = variants.join(format!("mock-{i}.so"));
            let mut b = bytes.clone();
            b.push(i);
            std::fs::write(&file, b).unwrap();
            let t = Instant::now();
            loader::load(&file, &private, &Default::default()).expect("mock loads");
            t.elapsed()
        })
        .collect();
    report(
        "plugin load, new build (copy+dlopen+abi check+metadata)",
        loads,
    );
    // The same, each build signed and the signature required: the trust checks add reading
    // the .minisig, BLAKE2b over the file and one Ed25519 verification.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let secret = std::fs::read_to_string(root.join("deploy/dev/dev-plugin-signing.key")).unwrap();
    let public = std::fs::read_to_string(root.join("deploy/dev/dev-plugin-signing.pub")).unwrap();
    let policy = payhost::plugins::trust::Policy {
        keys: vec![payhost::plugins::trust::TrustedKey::parse(
            "payhost-dev",
            public.lines().nth(1).unwrap(),
        )
        .unwrap()],
        require_signature: true,
        lock_file: None,
    };
    let signed: Vec<Duration> = (50..100u8)
        .map(|i| {
            let file = variants.join(format!("mock-{i}.so"));
            let mut b = bytes.clone();
            b.push(i);
            let sig =
                payhost::plugins::trust::sign(&secret, &b, "plugin=mock version=2.1.0").unwrap();
            std::fs::write(&file, b).unwrap();
            std::fs::write(payhost::plugins::trust::signature_file(&file), sig).unwrap();
            let t = Instant::now();
            let l = loader::load(&file, &private, &policy).expect("mock loads");
            let elapsed = t.elapsed();
            assert_eq!(l.trust.status(), "signed (payhost-dev)");
            elapsed
        })
        .collect();
    report("plugin load, new signed build (+ signature check)", signed);
    // A reload of a build already mapped: read + hash + metadata, no new mapping.
    let reloads: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            loader::load(&mock, &private, &Default::default()).expect("mock loads");
            t.elapsed()
        })
        .collect();
    report(
        "plugin load, build already mapped (read+hash+metadata)",
        reloads,
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = Arc::new(SystemClock);
        let registry = Registry::new(
            Arc::new(Dispatcher::new(clock.clone())),
            clock,
            scratch.path(),
            Duration::from_secs(10),
            Default::default(),
        );
        let folder = scratch.path().join("plugins");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(&mock, folder.join("mock.so")).unwrap();
        let cfg: ProviderConfig =
            toml::from_str("plugin = \"mock\"\nconfig = { webhook_secret = \"w\" }").unwrap();
        let synced = registry
            .sync(&folder, &[("mock".to_owned(), cfg)].into())
            .await;
        assert_eq!(synced.loaded, ["mock"], "{synced:?}");
        let customer = registry
            .call::<ops::CreateCustomer>(
                "mock",
                CallCtx::default(),
                NewCustomer {
                    email: "a@b.c".into(),
                    ..NewCustomer::default()
                },
            )
            .await
            .unwrap();
        let instance = registry.get("mock").unwrap();

        // The plugin work alone: a direct call on this thread (the JSON messages both ways
        // and the FFI call).
        let request = ObjectRef::new(&customer.id);
        let direct: Vec<Duration> = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                let _ = instance.call_direct::<ops::GetCustomer>(&CallCtx::default(), &request);
                t.elapsed()
            })
            .collect();
        report("mock get_customer, direct FFI call", direct);

        // Through the host: lookup, capability check, spawn_blocking, deadline, result.
        let mut through = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let request = ObjectRef::new(&customer.id);
            let t = Instant::now();
            registry
                .call::<ops::GetCustomer>("mock", CallCtx::default(), request)
                .await
                .unwrap();
            through.push(t.elapsed());
        }
        report("mock get_customer, through registry.call", through);
    });
}

mod conn;
mod flood;
mod lists;
mod live;
mod payments;
mod routing;
mod traces;
mod webhooks;
