//! Three hosts on one PostgreSQL database, over the real binary: a burst of signed webhooks
//! and payments spread over them, one host killed with SIGKILL mid-burst. Every host
//! processes the inbox (rows claimed with SKIP LOCKED; the killed host's come back when its
//! claims pass); each outbox lane and the dunning retries are leased to one host at a
//! time. So: every
//! acknowledged webhook is processed once (one domain event per fact), every application
//! webhook and receipt email is sent at least once — a second copy only for a delivery in
//! flight on the killed host, with the same `Payhost-Event-Id` or `Message-ID` — and each
//! record's events reach the endpoint in order. The copies are counted and reported.

use payhost_tests::api::Api;
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec_several_hosts";
const APP_SECRET: &str = "whsec_app_several_hosts_0123";
/// Webhooks and payments each host is sent.
const BURST: usize = 120;
/// The host killed mid-burst.
const KILLED: usize = 0;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn count(db: &TestDb, sql: &str) -> usize {
    db.value(sql, &[]).unwrap().parse().unwrap()
}

/// Waits up to `limit` (a killed host's leases expire after 15 s).
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `Message-ID` of each message in `dir`.
fn message_ids(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    text.lines()
                        .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_owned))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn three_hosts_share_one_postgres_and_lose_nothing_when_one_is_killed() {
    let Some(pg) = TestDb::postgres("hosts") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = receiver(listener);
    let scratches: Vec<Scratch> = (0..3)
        .map(|_| {
            Scratch::with_host(
                &[(&mock_so(), "mock.so")],
                &format!(
                    "default_provider = \"mock\"\nwebhook_retry_base_ms = 100\n{}",
                    pg.host_line()
                ),
                &format!(
                    "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{SECRET}\" }}\n\
                     [[webhook_endpoints]]\nname = \"app\"\nurl = \"http://127.0.0.1:{port}/hooks\"\n\
                     secret = \"{APP_SECRET}\"\n"
                ),
            )
        })
        .collect();
    // The host killed is the one holding the outbox leases: it starts first and takes them
    // before the others start.
    let holders = |pg: &TestDb| {
        count(
            pg,
            "SELECT CAST(COUNT(*) AS TEXT) FROM leases \
             WHERE name IN ('outbox:webhook:app', 'outbox:email')",
        )
    };
    let mut hosts: Vec<Option<HostProcess>> = vec![Some(scratches[KILLED].serve())];
    within(
        Duration::from_secs(30),
        "the first host takes the outbox leases",
        || holders(&pg) == 2,
    );
    hosts.extend(scratches.iter().skip(1).map(|s| Some(s.serve())));
    let addrs: Vec<String> = hosts
        .iter()
        .map(|h| h.as_ref().unwrap().addr.clone())
        .collect();
    // A customer per host: the mock keeps its customers in its own process, as a provider
    // account would not; payments go to the host whose mock knows their customer.
    let customers: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(h, addr)| {
            Api::new(addr, API_KEY)
                .post(
                    "/v1/customers",
                    &json!({"user_id": format!("ada{h}"), "email": format!("ada{h}@example.com")}),
                )
                .s("id")
        })
        .collect();
    let holder = |lease: &str| {
        pg.value("SELECT owner FROM leases WHERE name = $1", &[lease])
            .unwrap_or_else(|| panic!("nobody holds {lease}"))
    };
    let before = ["outbox:webhook:app", "outbox:email"].map(holder);
    let acked_hooks = Mutex::new(Vec::<String>::new());
    let acked_payments = Mutex::new(Vec::<String>::new());
    let killed = AtomicBool::new(false);
    let progress = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (h, addr) in addrs.iter().enumerate() {
            let (acked_hooks, acked_payments, killed, customer, progress) = (
                &acked_hooks,
                &acked_payments,
                &killed,
                &customers[h],
                &progress,
            );
            scope.spawn(move || {
                let api = Api::new(addr, API_KEY);
                for n in 0..BURST {
                    if h == KILLED && killed.load(Ordering::Relaxed) {
                        return;
                    }
                    if h == KILLED {
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    let object = format!("mock_pi_elsewhere_{h}_{n}");
                    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
                        SECRET,
                        now(),
                        &format!("evt_hosts_{h}_{n}"),
                        "payment.succeeded",
                        &json!({"id": object, "amount": 100, "currency": "usd", "status": "succeeded"}),
                    );
                    // The killed host stops answering mid-request; nothing it did not
                    // acknowledge counts.
                    let send = |path: &str, headers: &[(&str, &str)], body: &str| {
                        // (status 0: the connection died before an answer was read)
                        match api.try_send("POST", path, headers, Some(body)) {
                            Ok(r) if r.status == 0 && h == KILLED => None,
                            Ok(r) => Some(r),
                            Err(_) if h == KILLED => None,
                            Err(e) => panic!("host {h}: {e}"),
                        }
                    };
                    let Some(r) = send(
                        "/webhooks/payments/mock",
                        &[("X-Webhook-Signature", &sig)],
                        &body,
                    ) else {
                        return;
                    };
                    // Every answer is an acknowledgement: a host that answers anything else
                    // (a 503 while another host dies) fails the test.
                    assert_eq!(r.status, 200, "host {h}, webhook {n}: {r:?}");
                    acked_hooks.lock().unwrap().push(object);
                    let payment = json!({"customer": customer, "amount": 500 + n, "currency": "usd", "payment_method": "pm_card_visa"});
                    let Some(p) = send("/v1/payments", &[], &payment.to_string()) else {
                        return;
                    };
                    assert_eq!(p.status, 201, "host {h}, payment {n}: {p:?}");
                    acked_payments.lock().unwrap().push(p.s("id"));
                }
            });
        }
        // A third into its burst, the host holding the leases dies without a word.
        within(
            Duration::from_secs(60),
            "the killed host a third into its burst",
            || progress.load(Ordering::Relaxed) >= BURST / 3,
        );
        killed.store(true, Ordering::Relaxed);
        hosts[KILLED].take().unwrap().kill9();
    });
    let acked_hooks = acked_hooks.into_inner().unwrap();
    let acked_payments = acked_payments.into_inner().unwrap();
    // The surviving hosts acknowledged all of theirs; the killed one's burst was cut short.
    assert!(
        acked_hooks.len() >= 2 * BURST + BURST / 3 - 1 && acked_hooks.len() < 3 * BURST,
        "the killed host's burst was cut short, the others' not: {}",
        acked_hooks.len()
    );
    assert!(
        acked_payments.len() >= 2 * BURST,
        "{}",
        acked_payments.len()
    );

    // Everything acknowledged is processed and delivered, the dead host's share too.
    let limit = Duration::from_secs(90);
    within(limit, "every stored webhook processed", || {
        count(
            &pg,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status <> 'processed'",
        ) == 0
    });
    within(limit, "every handler's work done", || {
        count(
            &pg,
            "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE status <> 'done'",
        ) == 0
    });

    // The inbox was processed by more than one host.
    let processors = count(
        &pg,
        "SELECT CAST(COUNT(DISTINCT claimed_by) AS TEXT) FROM webhook_inbox",
    );
    eprintln!("inbox rows were processed by {processors} hosts");
    assert!(
        processors >= 2,
        "the hosts processed the inbox together: {processors}"
    );

    // The killed host's leases went to the others once they expired.
    within(limit, "the killed host's leases taken over", || {
        ["outbox:webhook:app", "outbox:email"]
            .map(holder)
            .iter()
            .zip(&before)
            .all(|(now, then)| now != then)
    });

    // Processed once: one domain event per fact.
    for object in &acked_hooks {
        assert_eq!(
            pg.value(
                "SELECT CAST(COUNT(*) AS TEXT) FROM events \
                 WHERE provider_object_id = $1 AND type = 'PaymentSucceeded'",
                &[object]
            )
            .as_deref(),
            Some("1"),
            "{object}"
        );
    }
    for pay in &acked_payments {
        assert_eq!(
            pg.value(
                "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE object_id = $1 AND type = 'PaymentSucceeded'",
                &[pay]
            )
            .as_deref(),
            Some("1"),
            "{pay}"
        );
    }

    // Application webhooks: every event at least once; copies only with the same id.
    let events: BTreeMap<String, (i64, String)> = pg
        .rows(
            "SELECT id, CAST(seq AS TEXT), COALESCE(object_id, provider_object_id) FROM events",
            &[],
        )
        .into_iter()
        .map(|r| {
            let id = r[0].clone().unwrap();
            (
                id,
                (
                    r[1].as_deref().unwrap().parse().unwrap(),
                    r[2].clone().unwrap(),
                ),
            )
        })
        .collect();
    let delivered: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, _)| {
            headers
                .iter()
                .find(|(k, _)| k == "payhost-event-id")
                .map(|(_, v)| v.clone())
                .expect("every delivery names its event")
        })
        .collect();
    let distinct: BTreeSet<&String> = delivered.iter().collect();
    for id in events.keys() {
        assert!(distinct.contains(id), "event {id} was never delivered");
    }
    let webhook_copies = delivered.len() - distinct.len();
    // Each record's events arrive in the order they happened.
    let mut last_seq: BTreeMap<&str, i64> = BTreeMap::new();
    for id in &delivered {
        let (seq, object) = &events[id];
        let before = last_seq.insert(object.as_str(), *seq).unwrap_or(i64::MIN);
        assert!(
            *seq >= before,
            "{object}: event {id} (seq {seq}) arrived after seq {before}"
        );
    }

    // Receipts: one per payment, a copy only with the same Message-ID.
    let mut ids: Vec<String> = scratches
        .iter()
        .flat_map(|s| message_ids(&s.dir.path().join("data").join("mail")))
        .collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    let email_copies = all - ids.len();
    // Receipts for payments of a customer payhost knows (the webhooks' payments have none).
    let receipts = count(
        &pg,
        "SELECT CAST(COUNT(*) AS TEXT) FROM outbox o JOIN events e ON e.id = o.event_id \
         JOIN payments p ON p.id = e.object_id WHERE o.handler = 'receipt_email'",
    );
    assert_eq!(ids.len(), receipts, "one message per receipt");
    eprintln!(
        "{} webhooks and {} payments acknowledged over 3 hosts (one killed); {} application \
         webhooks delivered for {} events ({webhook_copies} copies), {} receipts \
         ({email_copies} copies)",
        acked_hooks.len(),
        acked_payments.len(),
        delivered.len(),
        events.len(),
        receipts
    );
    // At most the delivery each lane had in flight on the killed host.
    assert!(webhook_copies <= 1, "{webhook_copies} copies");
    assert!(email_copies <= 1, "{email_copies} copies");
    for h in hosts.into_iter().flatten() {
        h.terminate();
    }
}

/// One `Idempotency-Key` sent to two hosts at once: the first request claims it in the
/// database they share, so the operation runs once; the others are told it is in flight
/// (409) or get the first answer replayed, on either host.
#[test]
fn an_idempotency_key_runs_once_across_hosts() {
    let Some(pg) = TestDb::postgres("idem_hosts") else {
        return;
    };
    let scratches: Vec<Scratch> = (0..2)
        .map(|_| {
            Scratch::with_host(
                &[(&mock_so(), "mock.so")],
                &format!("default_provider = \"mock\"\n{}", pg.host_line()),
                &format!(
                    "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{SECRET}\" }}\n"
                ),
            )
        })
        .collect();
    let hosts: Vec<HostProcess> = scratches.iter().map(Scratch::serve).collect();
    for round in 0..5 {
        let key = format!("same-key-{round}");
        let body = json!({"user_id": format!("grace{round}"), "email": "grace@example.com"});
        let start = std::sync::Barrier::new(16);
        let answers = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for i in 0..16 {
                let (addr, key, body, start, answers) =
                    (&hosts[i % 2].addr, &key, &body, &start, &answers);
                scope.spawn(move || {
                    let api = Api::new(addr, API_KEY);
                    start.wait();
                    let r = api.post_idem("/v1/customers", key, body);
                    answers.lock().unwrap().push(r);
                });
            }
        });
        let answers = answers.into_inner().unwrap();
        let ran: Vec<_> = answers
            .iter()
            .filter(|r| r.status < 300 && r.header("idempotent-replayed").is_none())
            .collect();
        assert_eq!(ran.len(), 1, "the operation ran once: {answers:#?}");
        let id = ran[0].s("id");
        for r in &answers {
            match r.status {
                409 => assert_eq!(r.code(), "idempotency_key_in_use", "{r:?}"),
                200 | 201 => assert_eq!(r.s("id"), id, "{r:?}"),
                _ => panic!("{r:?}"),
            }
        }
        // Afterwards, either host replays the answer.
        for h in &hosts {
            let again = Api::new(&h.addr, API_KEY).post_idem("/v1/customers", &key, &body);
            assert_eq!(
                again.header("idempotent-replayed"),
                Some("true"),
                "{again:?}"
            );
            assert_eq!(again.s("id"), id);
        }
    }
}

/// Two hosts on one PostgreSQL with the Stripe plugin against one fake Stripe (one provider
/// account, as in production): failed payments whose dunning retry is due and will now
/// succeed (the customer's default card was replaced), the host doing the retries killed
/// with SIGKILL mid-round while Stripe has charged a retry whose answer it never got. Every
/// retry is charged exactly once: each reaches Stripe under one idempotency key
/// (`dunning:<payment>:<attempt>`), so the retry the new holder sends again for the payment
/// the killed host had in flight is Stripe's replay, not a second charge, and every payment
/// ends recovered and succeeded in payhost's records.
#[test]
fn dunning_retries_are_charged_once_when_their_host_is_killed() {
    use payhost_tests::fake_stripe::{Chaos, FakeStripe};
    let Some(pg) = TestDb::postgres("dunning_hosts") else {
        return;
    };
    const PAYMENTS: usize = 24;
    let stripe = FakeStripe::start();
    let scratches: Vec<Scratch> = (0..2)
        .map(|_| {
            Scratch::with_host(
                &[(&stripe_so(), "stripe.so")],
                &format!("default_provider = \"stripe\"\n{}", pg.host_line()),
                &format!(
                    "[providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
                     config = {{ api_key = \"{}\", webhook_secret = \"whsec_dunning_hosts\", api_base = \"{}\" }}\n\
                     [dunning]\nretry_days = [1, 3]\n",
                    payhost_tests::fake_stripe::API_KEY,
                    stripe.base
                ),
            )
        })
        .collect();
    let mut hosts: Vec<Option<HostProcess>> = scratches.iter().map(|s| Some(s.serve())).collect();
    let api = Api::new(&hosts[1].as_ref().unwrap().addr, API_KEY);
    let customer = api.post(
        "/v1/customers",
        &json!({"user_id": "dunned", "email": "dunned@example.com"}),
    );
    assert_eq!(customer.status, 201, "{customer:?}");
    let customer = customer.s("id");
    let pm = api.post(
        &format!("/v1/customers/{customer}/payment_methods"),
        &json!({"payment_method": "pm_card_chargeDeclined"}),
    );
    assert_eq!(pm.status, 200, "{pm:?}");
    let pm = pm.s("id");
    let default = api.post(
        &format!("/v1/customers/{customer}/default_payment_method"),
        &json!({"payment_method": pm}),
    );
    assert_eq!(default.status, 200, "{default:?}");
    for n in 0..PAYMENTS {
        let p = api.post(
            "/v1/payments",
            &json!({"customer": customer, "amount": 1000 + n, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}),
        );
        assert!(p.status == 201 || p.status == 402, "a declined card: {p:?}");
    }
    within(
        Duration::from_secs(30),
        "every failed payment scheduled for dunning",
        || {
            count(
                &pg,
                "SELECT CAST(COUNT(*) AS TEXT) FROM dunning WHERE status = 'scheduled'",
            ) == PAYMENTS
        },
    );
    let holder = || {
        pg.value(
            "SELECT owner FROM leases WHERE name = 'dunning:retries'",
            &[],
        )
    };
    within(
        Duration::from_secs(30),
        "a host holds the dunning retries",
        || holder().is_some(),
    );
    // The customer's card is replaced: each retry now charges (the money at risk).
    let visa = api.post(
        &format!("/v1/customers/{customer}/payment_methods"),
        &json!({"payment_method": "pm_card_visa"}),
    );
    assert_eq!(visa.status, 200, "{visa:?}");
    let visa = visa.s("id");
    let default = api.post(
        &format!("/v1/customers/{customer}/default_payment_method"),
        &json!({"payment_method": visa}),
    );
    assert_eq!(default.status, 200, "{default:?}");
    let charged_before = stripe.fake.charges().len();
    // Each host says its lease owner id in /readyz.
    let ids: Vec<String> = hosts
        .iter()
        .map(|h| {
            h.as_ref().unwrap().get("/readyz", None).1["host"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let killed = ids
        .iter()
        .position(|id| Some(id) == holder().as_ref())
        .expect("the holder is one of the two hosts");

    // Stripe charges each of the first retries at once and holds its answer 2 s: the
    // holder is killed while the one it waits for is charged and unanswered.
    const HELD: usize = 3;
    stripe
        .fake
        .chaos((0..HELD).map(|_| Chaos::AppliedThenHeld(Duration::from_secs(2))));
    stripe.fake.clear_seen();
    pg.execute("UPDATE dunning SET next_at = 0");
    let confirms = || -> Vec<(String, Option<String>)> {
        stripe
            .fake
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path.ends_with("/confirm"))
            .map(|s| (s.path.clone(), s.idempotency_key.clone()))
            .collect()
    };
    // Retries go one at a time: the second seen means the first was answered and the
    // second is charged, its answer held.
    within(
        Duration::from_secs(30),
        "two retries reached Stripe",
        || confirms().len() >= 2,
    );
    hosts[killed].take().unwrap().kill9();
    let at_kill = confirms().len();
    assert_eq!(
        at_kill, 2,
        "killed while the second retry's answer was held"
    );
    let charged_at_kill = stripe.fake.charges().len() - charged_before;
    assert_eq!(charged_at_kill, 2, "Stripe had charged both");

    // The other host takes the retries over once the lease expires and finishes them.
    within(
        Duration::from_secs(60),
        "every due retry attempted once",
        || {
            count(
                &pg,
                "SELECT CAST(COUNT(*) AS TEXT) FROM dunning WHERE attempts = 1",
            ) == PAYMENTS
        },
    );
    assert_ne!(
        holder(),
        Some(ids[killed].clone()),
        "the lease moved to the survivor"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT CAST(COUNT(*) AS TEXT) FROM dunning WHERE attempts <> 1"
        ),
        0,
        "no retry ran twice in payhost's records"
    );
    // Recorded as Stripe did it: every retry charged once, every payment recovered.
    assert_eq!(
        stripe.fake.charges().len() - charged_before,
        PAYMENTS,
        "one charge per retried payment"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT CAST(COUNT(*) AS TEXT) FROM dunning WHERE status = 'recovered'"
        ),
        PAYMENTS,
        "every retry recorded as the charge it was"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT CAST(COUNT(*) AS TEXT) FROM payments WHERE status = 'succeeded'"
        ),
        PAYMENTS,
        "every payment succeeded in payhost's records"
    );

    // At Stripe: every retried intent confirmed under exactly one key, the dunning key of
    // attempt 1, so it was charged once; a key seen twice is the retry the killed host had
    // in flight, sent again by the survivor and answered by Stripe's replay.
    let seen = confirms();
    let mut keys: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for (path, key) in &seen {
        keys.entry(path.clone()).or_default().insert(key.clone());
    }
    assert_eq!(
        keys.len(),
        PAYMENTS,
        "every failed payment retried: {keys:?}"
    );
    let twice: Vec<_> = keys.iter().filter(|(_, ks)| ks.len() > 1).collect();
    assert!(twice.is_empty(), "charged twice (two keys): {twice:?}");
    for (path, ks) in &keys {
        let key = ks.iter().next().unwrap().as_deref().unwrap_or_default();
        assert!(
            key.starts_with("dunning:pay_") && key.ends_with(":1"),
            "{path}: the dunning key, not {key:?}"
        );
    }
    let replays = seen.len() - keys.len();
    eprintln!(
        "{} retries charged once each over 2 hosts (holder killed after {at_kill} confirms); \
         {replays} sent again and answered by Stripe's replay",
        keys.len()
    );
    assert_eq!(
        replays, 1,
        "the retry charged but unanswered at the kill is sent again (once), and only it"
    );
    let sent: Vec<_> = seen.iter().map(|(_, key)| key.clone()).collect();
    let twice: Vec<_> = sent
        .iter()
        .filter(|k| sent.iter().filter(|o| o == k).count() == 2)
        .collect();
    assert_eq!(
        twice.first().copied(),
        Some(&sent[1]),
        "the retry sent again is the one the killed host had in flight: {sent:?}"
    );
}
