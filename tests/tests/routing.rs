//! Routing and failover through the real binary: two fake Stripe accounts and the mock on
//! one route. The first account is unreachable, then fails before doing anything, then
//! charges and never answers in time, then recovers — while payments keep coming. Every
//! payment must end succeeded with exactly one charge in exactly one ledger: failover only
//! where nothing was done, and a payment whose outcome was unknown resolved at the instance
//! that holds it.

use payhost_tests::api::{Api, Resp};
use payhost_tests::db::TestDb;
use payhost_tests::fake_stripe::{FakeStripe, Mode, API_KEY as STRIPE_KEY};
use payhost_tests::{mock_so, stripe_so, Scratch, ADMIN_KEY, API_KEY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAYMENTS: usize = 2_000;
const WORKERS: usize = 32;
const USERS: usize = 40;

fn stripe_instance(name: &str, base: &str, extra: &str) -> String {
    format!(
        "[providers.{name}]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n{extra}\
         config = {{ api_key = \"{STRIPE_KEY}\", webhook_secret = \"whsec_{name}\", api_base = \"{base}\" }}\n"
    )
}

fn plugins() -> Vec<(std::path::PathBuf, &'static str)> {
    vec![
        (stripe_so(), "libpayhost_plugin_stripe.so"),
        (mock_so(), "libpayhost_plugin_mock.so"),
    ]
}

/// Polls `done` until it holds, for up to `limit`.
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < end, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn order_of(pi: &Value) -> usize {
    pi["metadata"]["order"]
        .as_str()
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("a charge without its order: {pi}"))
}

#[test]
fn failover_never_charges_twice_and_unknown_outcomes_resolve_where_they_happened() {
    let mut a = FakeStripe::start_switched();
    let b = FakeStripe::start();
    let a_fake = a.fake.clone();
    let providers = format!(
        "{}{}[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"whsec_mock_routing\" }}\n\
         [routing]\ndefault = [\"stripe_a\", \"stripe_b\", \"mock\"]\n\
         [routing.breaker]\nfailures = 3\nwindow_secs = 10\ncooldown_secs = 1\nprobes = 1\n\
         [routing.resolver]\nbackoff_secs = [1]\n",
        stripe_instance("stripe_a", &a.base, "call_timeout_ms = 1500\n"),
        stripe_instance("stripe_b", &b.base, ""),
    );
    let p = plugins();
    let refs: Vec<(&std::path::Path, &str)> = p.iter().map(|(f, n)| (f.as_path(), *n)).collect();
    let scratch = Scratch::new(&refs, &providers);
    let host = scratch.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    // The users are customers of both accounts already (a payment then needs no customer
    // created at the instance it goes to: its attempt is the first call there).
    for u in 0..USERS {
        for instance in ["stripe_a", "stripe_b"] {
            let r = api.post(
                "/v1/customers",
                &json!({"user_id": format!("user-{u}"), "email": format!("user{u}@example.com"), "provider": instance}),
            );
            assert_eq!(r.status, 201, "{r:?}");
        }
    }
    a.off();

    // The payments, at concurrency 32, each retried with its key as a client would when
    // nothing was done anywhere (503) or its key is still being served (409).
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let recovered = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<Vec<(usize, Resp)>>> = Arc::default();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (api, next, done, recovered, answers) = (
                api.clone(),
                next.clone(),
                done.clone(),
                recovered.clone(),
                answers.clone(),
            );
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= PAYMENTS && recovered.load(Ordering::SeqCst) {
                    break;
                }
                let body = json!({
                    "user_id": format!("user-{}", n % USERS),
                    "amount": 1000 + n,
                    "currency": "usd",
                    "payment_method": "pm_card_visa",
                    "metadata": {"order": n.to_string()},
                });
                let key = format!("order-{n}");
                let give_up = Instant::now() + Duration::from_secs(60);
                let mut r = api.post_idem("/v1/payments", &key, &body);
                while matches!(r.status, 503 | 409) && Instant::now() < give_up {
                    std::thread::sleep(Duration::from_millis(100));
                    r = api.post_idem("/v1/payments", &key, &body);
                }
                answers.lock().unwrap().push((n, r));
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();

    // The first account's story, each chapter at least 3 s of traffic long.
    let chapter = |at_least: usize| {
        let start = Instant::now();
        within(
            Duration::from_secs(120),
            "payments keep being answered",
            || done.load(Ordering::SeqCst) >= at_least && start.elapsed() >= Duration::from_secs(3),
        );
    };
    chapter(200); // unreachable: connections refused
    a_fake.set_mode(Mode::FailBeforeApplying(500));
    a.on(); // reachable, answering 500 before doing anything
    chapter(500);
    a_fake.set_mode(Mode::ApplyThenHang(Duration::from_secs(3))); // charges, answers too late
    chapter(800);
    a_fake.set_mode(Mode::Normal); // healthy again
    chapter(1100);
    recovered.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }

    // Every payment in doubt is resolved, at the instance that holds it.
    within(Duration::from_secs(60), "no payment left in doubt", || {
        let r = admin.get("/admin/routing");
        r.status == 200 && r.body["in_doubt"].as_array().is_some_and(Vec::is_empty)
    });

    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert!(answers.len() >= PAYMENTS, "{} answers", answers.len());
    let mut payments: BTreeMap<usize, Value> = BTreeMap::new();
    let (mut accepted, mut rerouted, mut resolved_at_a) = (0, 0, 0);
    for (n, r) in &answers {
        assert!(
            matches!(r.status, 201 | 202),
            "order {n}: every payment is taken somewhere or in doubt, got {r:?}"
        );
        accepted += usize::from(r.status == 202);
        let id = r.s("id");
        let p = api.get(&format!("/v1/payments/{id}"));
        assert_eq!(p.status, 200, "{p:?}");
        assert_eq!(p.body["status"], "succeeded", "order {n}: {}", p.body);
        let attempts = p.body["attempts"].as_array().unwrap();
        assert!(!attempts.is_empty(), "{}", p.body);
        rerouted += usize::from(attempts.len() > 1);
        let last = attempts.last().unwrap();
        assert_eq!(last["provider"], p.body["provider"], "{}", p.body);
        if last["state"] == "resolved" && p.body["provider"] == "stripe_a" {
            resolved_at_a += 1;
        }
        for earlier in &attempts[..attempts.len() - 1] {
            assert!(
                matches!(
                    earlier["state"].as_str(),
                    Some("not_sent" | "soft_declined")
                ),
                "order {n}: only an attempt that did nothing is followed by another: {}",
                p.body
            );
        }
        payments.insert(*n, p.body);
    }

    // The ledgers: one charge per payment, in the ledger of the instance that holds it.
    let mut charged: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    let (a_charges, b_charges) = (a.fake.charges(), b.fake.charges());
    for (ledger, charges) in [("stripe_a", &a_charges), ("stripe_b", &b_charges)] {
        for pi in charges {
            charged.entry(order_of(pi)).or_default().push(ledger);
        }
    }
    for (n, p) in &payments {
        if p["provider"] == "mock" {
            charged.entry(*n).or_default().push("mock");
        }
    }
    for (n, p) in &payments {
        let ledgers = charged.get(n).cloned().unwrap_or_default();
        assert_eq!(
            ledgers,
            vec![p["provider"].as_str().unwrap()],
            "order {n}: charged in {ledgers:?}, recorded at {}",
            p["provider"]
        );
    }
    assert!(
        charged.keys().all(|n| payments.contains_key(n)),
        "no charge without its payment"
    );

    // What happened underneath did happen: failovers, doubts resolved where the hanging
    // account had charged, the circuit opened and closed.
    assert!(rerouted > 0, "some payments went on at the next instance");
    assert!(
        accepted > 0 && resolved_at_a > 0,
        "{accepted} in doubt, {resolved_at_a} resolved at stripe_a"
    );
    assert!(!a_charges.is_empty() && !b_charges.is_empty());
    let lifecycle = admin.get("/admin/plugins").body["events"].clone();
    let told = |kind: &str| {
        lifecycle
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == kind && e["name"] == "stripe_a")
    };
    assert!(
        told("InstanceUnhealthy") && told("InstanceRecovered"),
        "{lifecycle}\n{}",
        admin.get("/admin/routing").body
    );
    let routing = admin.get("/admin/routing").body;
    let health = routing["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == "stripe_a")
        .unwrap()
        .clone();
    assert_eq!(health["circuit"]["state"], "closed", "{health}");
    let failovers: u64 = health["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["failovers"].as_u64().unwrap())
        .sum();
    assert!(failovers > 0, "{health}");
    // The application sees each payment's own story: its attempts' events, under its id.
    let rerouted_payment = payments
        .values()
        .find(|p| p["attempts"].as_array().unwrap().len() > 1)
        .unwrap();
    let events = api.get(&format!(
        "/v1/events?object_id={}&limit=50",
        rerouted_payment["id"].as_str().unwrap()
    ));
    let kinds: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "PaymentAttemptFailed",
        "PaymentRerouted",
        "PaymentCreated",
        "PaymentSucceeded",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[test]
fn explain_names_the_rule_the_candidates_and_why_others_are_skipped() {
    let p = plugins();
    let refs: Vec<(&std::path::Path, &str)> = p.iter().map(|(f, n)| (f.as_path(), *n)).collect();
    let down = payhost_tests::closed_port();
    let providers = format!(
        "{}[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"whsec_mock_routing\" }}\n\
         [providers.mock_eu]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"whsec_mock_routing_eu\" }}\n\
         [tenants]\ninitech = \"mock_eu\"\n\
         [routing]\ndefault = [\"mock\", \"stripe_us\"]\n\
         [[routing.rules]]\nname = \"eur-to-eu\"\nwhen = {{ currency = [\"eur\"], amount_max = 100000 }}\nroute = [\"mock_eu\", \"mock\"]\n\
         [[routing.rules]]\nname = \"manual-share\"\nwhen = {{ capture_method = \"manual\" }}\nsplit = {{ stripe_us = 50, mock = 50 }}\n",
        stripe_instance("stripe_us", &format!("http://127.0.0.1:{down}"), ""),
    );
    let scratch = Scratch::new(&refs, &providers);
    let host = scratch.serve();
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let explain =
        |query: &str, body: Value| admin.post(&format!("/admin/routing/explain{query}"), &body);
    let r = explain(
        "",
        json!({"user_id": "u1", "amount": 5000, "currency": "eur"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["rule"], "eur-to-eu");
    assert_eq!(r.body["candidates"], json!(["mock_eu", "mock"]));
    let r = explain(
        "",
        json!({"user_id": "u1", "amount": 500_000, "currency": "eur"}),
    );
    assert_eq!(r.body["rule"], "default", "{r:?}");
    let r = explain(
        "?tenant=initech",
        json!({"user_id": "u1", "amount": 5, "currency": "eur"}),
    );
    assert_eq!(r.body["rule"], "tenants.initech", "{r:?}");
    assert_eq!(r.body["candidates"], json!(["mock_eu"]));
    // Manual capture: the split; stripe lacks nothing here, the mock both.
    let r = explain(
        "?idempotency_key=order-1",
        json!({"user_id": "u1", "amount": 5, "currency": "usd", "capture_method": "manual"}),
    );
    assert_eq!(
        (r.body["rule"].as_str(), r.body["kind"].as_str()),
        (Some("manual-share"), Some("split")),
        "{r:?}"
    );
    assert!(r.body["bucket"].as_u64().unwrap() < 100);
    let again = explain(
        "?idempotency_key=order-1",
        json!({"user_id": "u1", "amount": 5, "currency": "usd", "capture_method": "manual"}),
    );
    assert_eq!(again.body, r.body, "the same key, the same place");

    // An instance whose circuit is open is skipped, with the reason; nothing was called.
    let api = Api::new(&host.addr, API_KEY);
    for n in 0..6 {
        let r = api.post(
            "/v1/payments",
            &json!({"user_id": format!("u{n}"), "email": "u@example.com", "amount": 100, "currency": "usd", "provider": "stripe_us"}),
        );
        assert_eq!(r.status, 503, "{r:?}");
    }
    let r = explain("", json!({"user_id": "u1", "amount": 5, "currency": "usd"}));
    assert_eq!(r.body["candidates"], json!(["mock"]), "{r:?}");
    let skipped = &r.body["skipped"][0];
    assert_eq!(
        (skipped["instance"].as_str(), skipped["reason"].as_str()),
        (Some("stripe_us"), Some("circuit_open")),
        "{r:?}"
    );
    // Unknown tenant, bad body: named.
    let r = explain(
        "?tenant=ghost",
        json!({"user_id": "u1", "amount": 5, "currency": "usd"}),
    );
    assert_eq!((r.status, r.param()), (400, "tenant"), "{r:?}");
    let r = explain(
        "",
        json!({"user_id": "u1", "amount": -5, "currency": "usd"}),
    );
    assert_eq!((r.status, r.param()), (400, "amount"), "{r:?}");

    let routing = admin.get("/admin/routing");
    assert_eq!(routing.status, 200);
    let names: Vec<&str> = routing.body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tenants.initech", "eur-to-eu", "manual-share"]);
    assert_eq!(routing.body["default"], json!(["mock", "stripe_us"]));

    // The same from the command line, against the running host.
    let (code, out, err) = scratch.payhost(&[
        "routing",
        "explain",
        "--tenant",
        "initech",
        r#"{"user_id": "u1", "amount": 5, "currency": "eur"}"#,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("tenants.initech") && out.contains("mock_eu"),
        "{out}"
    );
}

#[test]
fn routing_mistakes_are_refused_at_start_and_by_config_check_naming_the_rule() {
    let p = plugins();
    let refs: Vec<(&std::path::Path, &str)> = p.iter().map(|(f, n)| (f.as_path(), *n)).collect();
    let scratch = Scratch::new(
        &refs,
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_mock_routing\" }\n\
         [routing]\ndefault = [\"mock\", \"ghost\"]\n\
         [[routing.rules]]\nname = \"all-eur\"\nwhen = { currency = [\"eur\"] }\nroute = [\"mock\"]\n\
         [[routing.rules]]\nname = \"small-eur\"\nwhen = { currency = [\"eur\"], amount_max = 10 }\nroute = [\"mock\"]\n\
         [[routing.rules]]\nname = \"half\"\nwhen = { currency = [\"usd\"] }\nsplit = { mock = 60 }\n\
         [[routing.rules]]\nname = \"nowhere\"\nwhen = { currency = [\"gbp\"] }\nroute = []\n",
    );
    let (code, out, err) = scratch.payhost(&["config", "check"]);
    assert_eq!(code, 1, "{out}{err}");
    let all = format!("{out}{err}");
    for needle in [
        "routing.default",
        "'ghost' is not a configured provider",
        "'small-eur'",
        "can never match: rule 'all-eur'",
        "'half'",
        "add up to 60",
        "'nowhere'",
    ] {
        assert!(all.contains(needle), "{needle} in {all}");
    }
    let (code, _, err) = scratch.payhost(&["serve"]);
    assert_ne!(code, 0);
    assert!(err.contains("routing"), "{err}");
}

#[test]
fn a_retry_and_a_restart_resolve_at_the_instance_that_holds_the_payment_never_elsewhere() {
    resolves_where_it_happened(None);
}

#[test]
fn a_retry_and_a_restart_resolve_at_the_instance_that_holds_the_payment_on_postgres() {
    // Without a server, TestDb::postgres says so loudly (and fails under CI).
    if let Some(db) = TestDb::postgres("routing_restart") {
        resolves_where_it_happened(Some(&db));
    }
}

fn resolves_where_it_happened(db: Option<&TestDb>) {
    let mut a = FakeStripe::start_switched();
    let b = FakeStripe::start();
    let providers = format!(
        "{}{}[routing]\ndefault = [\"stripe_a\", \"stripe_b\"]\n\
         [routing.breaker]\nfailures = 1\ncooldown_secs = 600\n\
         [routing.resolver]\nbackoff_secs = [600]\n",
        stripe_instance("stripe_a", &a.base, "call_timeout_ms = 1000\n"),
        stripe_instance("stripe_b", &b.base, ""),
    );
    let p = plugins();
    let refs: Vec<(&std::path::Path, &str)> = p.iter().map(|(f, n)| (f.as_path(), *n)).collect();
    let host_line = db.map(TestDb::host_line).unwrap_or_default();
    let scratch = Scratch::with_host(&refs, &host_line, &providers);
    let host = scratch.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    for instance in ["stripe_a", "stripe_b"] {
        let r = api.post(
            "/v1/customers",
            &json!({"user_id": "ada", "email": "ada@example.com", "provider": instance}),
        );
        assert_eq!(r.status, 201, "{r:?}");
    }
    let pay = |order: &str| {
        json!({"user_id": "ada", "amount": 4200, "currency": "usd", "payment_method": "pm_card_visa",
               "metadata": {"order": order}})
    };
    let charges_of = |fake: &FakeStripe, order: &str| {
        fake.charges()
            .iter()
            .filter(|pi| pi["metadata"]["order"] == order)
            .count()
    };

    // The first account charges and answers too late: the payment is in doubt there.
    a.fake.set_mode(Mode::ApplyThenHang(Duration::from_secs(3)));
    let first = api.post_idem("/v1/payments", "order-1", &pay("1"));
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!(first.body["status"], "processing");
    assert_eq!(first.body["provider"], "stripe_a");
    assert_eq!(first.body["provider_id"], Value::Null);
    assert_eq!(first.body["attempts"][0]["state"], "in_doubt", "{first:?}");
    // Its circuit is open now: a new payment would go to the second account...
    let route = admin.post("/admin/routing/explain", &pay("x"));
    assert_eq!(route.body["candidates"], json!(["stripe_b"]), "{route:?}");
    // ...but the retry of this one asks the first account again (its request is still
    // being served there: 409), and stays in doubt. Nothing happens at the second.
    let retry = api.post_idem("/v1/payments", "order-1", &pay("1"));
    assert_eq!(
        (retry.status, retry.s("id")),
        (202, first.s("id")),
        "{retry:?}"
    );
    assert_eq!(charges_of(&b.fake, "1"), 0);
    // The same key for another request is refused while the payment is resolved.
    let other = api.post_idem("/v1/payments", "order-1", &pay("2"));
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused"),
        "{other:?}"
    );
    // Once the account answers, the retry learns the charge: one, where it happened.
    a.fake.set_mode(Mode::Normal);
    let mut done = retry;
    within(
        Duration::from_secs(30),
        "the retry resolves the payment",
        || {
            done = api.post_idem("/v1/payments", "order-1", &pay("1"));
            done.status == 201
        },
    );
    assert_eq!(done.s("id"), first.s("id"));
    assert_eq!(
        (done.body["status"].as_str(), done.body["provider"].as_str()),
        (Some("succeeded"), Some("stripe_a")),
        "{done:?}"
    );
    assert_eq!(done.body["attempts"][0]["state"], "resolved");
    assert!(done.body["provider_id"]
        .as_str()
        .unwrap()
        .starts_with("pi_"));
    assert_eq!((charges_of(&a.fake, "1"), charges_of(&b.fake, "1")), (1, 0));

    // A host killed while its call is out: the attempt it recorded first is the evidence;
    // after the restart payhost asks the same account and records the charge once.
    drop(host);
    let host = scratch.serve(); // a new process: every circuit closed again
    let api = Api::new(&host.addr, API_KEY);
    a.fake
        .set_mode(Mode::ApplyThenHang(Duration::from_secs(30)));
    a.fake.clear_seen();
    let sender = {
        let api = api.clone();
        let body = pay("3");
        std::thread::spawn(move || {
            api.try_send(
                "POST",
                "/v1/payments",
                &[("Idempotency-Key", "order-3")],
                Some(&body.to_string()),
            )
        })
    };
    within(
        Duration::from_secs(10),
        "the charge reaches the first account",
        || {
            a.fake.seen().iter().any(|s| {
                s.idempotency_key.as_deref() == Some("order-3") && s.path == "/v1/payment_intents"
            })
        },
    );
    host.kill9();
    let _ = sender.join();
    a.off(); // the hanging request ends with its connections
    a.fake.set_mode(Mode::Normal);
    a.on();
    let host = scratch.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    within(
        Duration::from_secs(30),
        "the resolver settles the attempt the killed host left",
        || {
            let r = admin.get("/admin/routing");
            r.status == 200 && r.body["in_doubt"].as_array().is_some_and(Vec::is_empty)
        },
    );
    // Found by its order (a retry with its key would wait, on PostgreSQL, for the killed
    // host's claim on the key to lapse).
    let list = api.get("/v1/payments?limit=100");
    let found: Vec<&Value> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["order"] == "3")
        .collect();
    assert_eq!(found.len(), 1, "{list:?}");
    assert_eq!(
        (found[0]["status"].as_str(), found[0]["provider"].as_str()),
        (Some("succeeded"), Some("stripe_a")),
        "{list:?}"
    );
    assert_eq!(found[0]["attempts"][0]["state"], "resolved", "{list:?}");
    assert_eq!((charges_of(&a.fake, "3"), charges_of(&b.fake, "3")), (1, 0));
}
