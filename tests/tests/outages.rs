//! The database going away under load, over the real binary. On PostgreSQL its connections
//! are terminated and new ones refused (as a restart or a failover does) during a burst of
//! signed webhooks and API writes. While it is away, `/readyz` says so, writes answer 503
//! `database_unavailable` with `Retry-After`, webhooks are refused with a 5xx so the
//! provider retries; once it is back, writes work again within 5 s, and every acknowledged
//! webhook is processed exactly once and every acknowledged payment is there once (a
//! payment retried with its key is replayed, never made twice). On SQLite, another
//! connection holds the write lock past the host's busy timeout: the same 503s, and the
//! retries write once.

use payhost_tests::api::{Api, Resp};
use payhost_tests::db::{TestDb, POSTGRES_VAR};
use payhost_tests::*;
use serde_json::json;
use sqlx::{AnyConnection, Connection, Executor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MOCK: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_outage\" }\n";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs statements on the server's maintenance database (the test's own refuses
/// connections during the outage).
fn on_server(sql: &[String]) {
    let base = std::env::var(POSTGRES_VAR).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = AnyConnection::connect(&base).await.unwrap();
            for s in sql {
                c.execute(s.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        });
}

fn webhook(api: &Api, id: &str) -> Resp {
    let object = json!({"id": format!("mock_pi_{id}"), "amount": 100, "currency": "usd", "status": "succeeded"});
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        "whsec_outage",
        now(),
        id,
        "payment.succeeded",
        &object,
    );
    api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&body),
    )
}

/// Stops the burst when dropped, so a failed assertion in the scope ends the workers
/// (and the test) instead of leaving them retrying forever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How long a worker keeps retrying one refused request before the test fails: the outage
/// lasts a few seconds; a request refused for longer than this means the host never came back.
const GIVE_UP: Duration = Duration::from_secs(60);

/// A refusal: status, error code, Retry-After.
type Refusal = (u16, String, Option<String>);

/// Sends until `accepted`, as a provider retries a refused delivery and a client a refused
/// write with the same Idempotency-Key; keeps each refusal; fails after [`GIVE_UP`].
fn until_accepted(
    refused: &Mutex<Vec<Refusal>>,
    what: &str,
    send: impl Fn() -> Resp,
    accepted: impl Fn(&Resp) -> bool,
) -> Resp {
    let since = Instant::now();
    loop {
        let r = send();
        if accepted(&r) {
            return r;
        }
        refused.lock().unwrap().push((
            r.status,
            r.code().to_owned(),
            r.header("retry-after").map(str::to_owned),
        ));
        assert!(
            since.elapsed() < GIVE_UP,
            "{what} refused for a minute: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(db: &TestDb, sql: &str) -> usize {
    db.value(sql, &[]).unwrap().parse().unwrap()
}

#[test]
fn postgres_going_away_mid_burst_loses_nothing_acknowledged() {
    let Some(pg) = TestDb::postgres("outage") else {
        return;
    };
    let name = pg.url.rsplit('/').next().unwrap().to_owned();
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        &format!("default_provider = \"mock\"\n{}", pg.host_line()),
        MOCK,
    );
    let host = s.serve();
    let addr = host.addr.clone();
    // Each worker pays for its own customer: a payment applied twice is two payments (a
    // customer would not show it: POST /v1/customers answers an existing one with 200).
    let customers: Vec<String> = (0..4)
        .map(|w| {
            let r = Api::new(&addr, API_KEY).post(
                "/v1/customers",
                &json!({"user_id": format!("payer_{w}"), "email": format!("payer{w}@example.com")}),
            );
            assert_eq!(r.status, 201, "{r:?}");
            r.s("id")
        })
        .collect();
    let acked_events = Mutex::new(Vec::new());
    let acked_payments = Mutex::new(Vec::new());
    let refused = Mutex::new(Vec::<Refusal>::new());
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        for (w, customer) in customers.iter().enumerate() {
            let (addr, acked_events, acked_payments, refused, stop) = (
                addr.clone(),
                &acked_events,
                &acked_payments,
                &refused,
                &stop,
            );
            scope.spawn(move || {
                let api = Api::new(&addr, API_KEY);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = format!("evt_outage_{w}_{n}");
                    until_accepted(refused, &id, || webhook(&api, &id), |r| r.status == 200);
                    acked_events.lock().unwrap().push(id.clone());
                    let key = format!("idem_outage_{w}_{n}");
                    let body = json!({"customer": customer, "amount": 100 + n, "currency": "usd",
                        "payment_method": "pm_card_visa", "metadata": {"order": key}});
                    // Retried with its key until answered: a write whose answer the outage
                    // cut is replayed (201 again), never made twice.
                    let r = until_accepted(
                        refused,
                        &key,
                        || api.post_idem("/v1/payments", &key, &body),
                        |r| r.status == 201,
                    );
                    acked_payments
                        .lock()
                        .unwrap()
                        .push((r.s("id"), key.clone()));
                }
            });
        }

        let _stop_workers = StopOnDrop(&stop);
        eventually("the burst under way", || {
            acked_events.lock().unwrap().len() > 5
        });
        // The outage: every connection to the host's database cut, new ones refused.
        on_server(&[
            format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ),
        ]);
        let api = Api::new(&addr, API_KEY);
        eventually("/readyz says the database is away", || {
            let r = api.get("/readyz");
            r.status == 503 && r.body["database"] == "unreachable"
        });
        let w = api.post(
            "/v1/customers",
            &json!({"user_id": "during", "email": "d@example.com"}),
        );
        assert_eq!(w.status, 503, "{w:?}");
        assert_eq!(w.code(), "database_unavailable", "{w:?}");
        assert_eq!(w.header("retry-after"), Some("1"), "{w:?}");
        assert!(
            !w.body.to_string().contains("pg_") && !w.body.to_string().contains("connection"),
            "no database detail in the answer: {w:?}"
        );
        let hook = webhook(&api, "evt_during_outage");
        assert_eq!(hook.status, 503, "a 5xx, so the provider retries: {hook:?}");
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(api.get("/readyz").status, 503, "still honest");

        // Back: writes work again within 5 s.
        on_server(&[format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")]);
        let back = Instant::now();
        loop {
            let r = api.post(
                "/v1/customers",
                &json!({"user_id": "after", "email": "a@example.com"}),
            );
            if r.status == 201 {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(5),
                "writes are not back 5 s after the database: {r:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "writes back {} ms after the database",
            back.elapsed().as_millis()
        );
        assert_eq!(api.get("/readyz").status, 200);
        std::thread::sleep(Duration::from_millis(500));
    });

    let refused = refused.into_inner().unwrap();
    assert!(!refused.is_empty(), "the burst met the outage");
    // 503 while the database is away; on PostgreSQL, a write retried just after it came
    // back may find its key still claimed by the attempt the outage cut (409, retry) until
    // that claim is given up. Both say when to retry.
    for (status, code, retry_after) in &refused {
        assert!(
            (*status, code.as_str()) == (503, "database_unavailable")
                || (*status, code.as_str()) == (409, "idempotency_key_in_use"),
            "{refused:?}"
        );
        assert_eq!(retry_after.as_deref(), Some("1"), "{refused:?}");
    }
    let in_use = refused.iter().filter(|r| r.0 == 409).count();
    let acked = acked_events.into_inner().unwrap();
    eventually("every stored webhook processed", || {
        count(
            &pg,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status <> 'processed'",
        ) == 0
    });
    let inbox = count(&pg, "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox");
    assert_eq!(
        inbox,
        acked.len(),
        "every acknowledged event stored once, nothing refused stored"
    );
    for id in &acked {
        assert_eq!(
            pg.value(
                "SELECT status FROM webhook_inbox WHERE event_id = $1",
                &[id]
            )
            .as_deref(),
            Some("processed"),
            "{id} was acknowledged"
        );
    }
    let events = count(
        &pg,
        "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE type = 'PaymentSucceeded' \
         AND provider_object_id LIKE 'mock_pi_evt_%'",
    );
    assert_eq!(
        events, inbox,
        "one domain event per stored webhook, none twice"
    );
    let payments = acked_payments.into_inner().unwrap();
    for (id, key) in &payments {
        assert_eq!(
            pg.value(
                "SELECT CAST(COUNT(*) AS TEXT) FROM payments WHERE metadata = $1",
                &[&json!({ "order": key }).to_string()]
            )
            .as_deref(),
            Some("1"),
            "{key} ({id}) is there once"
        );
    }
    // Nothing refused was kept: every payment made is one a client was answered for.
    let made = count(
        &pg,
        "SELECT CAST(COUNT(*) AS TEXT) FROM payments WHERE metadata LIKE '{\"order\":%'",
    );
    assert_eq!(made, payments.len(), "payments made, payments answered");
    eprintln!(
        "{} webhooks and {} writes acknowledged, {} refusals during the outage ({in_use} of \
         them a key still claimed)",
        acked.len(),
        payments.len(),
        refused.len()
    );
    let log = host.terminate().1;
    assert!(log.contains("database writer connected again"), "{log}");
}

/// Holds SQLite's write lock from a connection of its own (as a backup tool, a hand-run
/// migration or a stuck script would) until dropped.
struct WriteLock {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriteLock {
    fn take(url: &str) -> Self {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let url = url.to_owned();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    c.execute("BEGIN IMMEDIATE").await.unwrap();
                    held_tx.send(()).unwrap();
                    // Until the test lets go (or ends: the sender dropped).
                    let _ = release_rx.recv();
                    c.execute("ROLLBACK").await.unwrap();
                });
        });
        held_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the write lock taken");
        Self {
            release: Some(release),
            thread: Some(thread),
        }
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// SQLite busy: another connection holds the write lock past the host's `busy_timeout`.
/// A payment and a webhook are refused with `503 database_unavailable` and `Retry-After: 1`
/// (not a 500, not a hang) while reads go on; once the lock is let go, the payment retried
/// with its key is made, once, and the webhook redelivered is stored and processed once.
#[test]
fn sqlite_busy_is_a_503_and_the_retry_writes_once() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        MOCK,
    );
    let db = TestDb::sqlite(s.dir.path());
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let customer = api.post(
        "/v1/customers",
        &json!({"user_id": "busy", "email": "busy@example.com"}),
    );
    assert_eq!(customer.status, 201, "{customer:?}");
    let customer = customer.s("id");
    let body = json!({"customer": customer, "amount": 1234, "currency": "usd",
        "payment_method": "pm_card_visa", "metadata": {"order": "busy-1"}});

    let lock = WriteLock::take(&db.url);
    let started = Instant::now();
    let refused = api.post_idem("/v1/payments", "busy-1", &body);
    let waited = started.elapsed();
    assert_eq!(
        (refused.status, refused.code()),
        (503, "database_unavailable"),
        "{refused:?}"
    );
    assert_eq!(refused.header("retry-after"), Some("1"), "{refused:?}");
    assert!(
        !refused.body.to_string().contains("locked")
            && !refused.body.to_string().contains("SQLITE"),
        "no database detail in the answer: {refused:?}"
    );
    // Refused after waiting for the lock (busy_timeout, 5 s), not hung until the client gives up.
    assert!(
        waited < Duration::from_secs(30),
        "answered after {waited:?}"
    );
    let hook = webhook(&api, "evt_busy");
    assert_eq!(hook.status, 503, "a 5xx, so the provider retries: {hook:?}");
    // Reads are not held up by a writer's lock (WAL).
    let read = api.get(&format!("/v1/customers/{customer}"));
    assert_eq!(read.status, 200, "{read:?}");
    drop(lock);

    let made = until_accepted(
        &Mutex::new(Vec::new()),
        "the payment after the lock",
        || api.post_idem("/v1/payments", "busy-1", &body),
        |r| r.status == 201,
    );
    let again = api.post_idem("/v1/payments", "busy-1", &body);
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.s("id"), made.s("id"), "the retry is the same payment");
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM payments WHERE metadata LIKE '%busy-1%'"
        ),
        1,
        "made once"
    );
    until_accepted(
        &Mutex::new(Vec::new()),
        "the webhook after the lock",
        || webhook(&api, "evt_busy"),
        |r| r.status == 200,
    );
    eventually("the redelivered webhook processed", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE event_id = 'evt_busy' AND status = 'processed'",
        ) == 1
    });
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE provider_object_id = 'mock_pi_evt_busy'"
        ),
        1,
        "one event for the webhook refused and then accepted"
    );
}

/// A small tmpfs mounted on a folder, unmounted when dropped (lazily: the host may still
/// hold a file open when a failing test unwinds).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts one on `dir`, or `None` (said loudly, failing when required) where this
    /// process may not mount.
    fn mount(dir: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                ran("tmpfs", "the full-disk test");
                Some(Self(dir.to_owned()))
            }
            Ok(o) => {
                skipped(
                    "the full-disk test",
                    &format!(
                        "cannot mount a tmpfs (root is needed): {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                    "PAYHOST_REQUIRE_MOUNT",
                );
                None
            }
            Err(e) => {
                skipped(
                    "the full-disk test",
                    &format!("no mount command: {e}"),
                    "PAYHOST_REQUIRE_MOUNT",
                );
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Writes `path` until the disk it is on is full (ENOSPC), in big pieces and then small.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    for piece in [1 << 20, 4096, 512] {
        let chunk = vec![0u8; piece];
        loop {
            match f.write_all(&chunk).and_then(|()| f.sync_all()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
}

/// A full disk under SQLite: the data folder is a small tmpfs, filled to the last byte.
/// Payments are refused with `503 database_unavailable` and `Retry-After: 1` (never a 500,
/// never a hang); each one answered 201 is stored once, each one refused is not stored, and
/// once space is freed every refused payment retried with its key is made once, and a
/// webhook redelivered is processed once.
#[test]
fn a_full_disk_is_a_503_and_nothing_is_written_twice() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        MOCK,
    );
    let data = s.dir.path().join("data");
    let Some(_disk) = SmallDisk::mount(&data, "256m") else {
        return;
    };
    let db = TestDb::sqlite(s.dir.path());
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let customer = api.post(
        "/v1/customers",
        &json!({"user_id": "full", "email": "full@example.com"}),
    );
    if customer.status != 201 {
        let log = host.terminate().1;
        panic!("{customer:?}\n{log}");
    }
    let customer = customer.s("id");
    let pay = |key: &str| {
        api.post_idem(
            "/v1/payments",
            key,
            &json!({"customer": customer, "amount": 2500, "currency": "usd",
                "payment_method": "pm_card_visa", "metadata": {"order": key}}),
        )
    };
    let before = pay("disk-before");
    if before.status != 201 {
        let log = host.terminate().1;
        panic!("{before:?}\n{log}");
    }

    let ballast = data.join("ballast");
    fill(&ballast);
    // The database may still have room in pages it owns (its WAL is reused): payments go on
    // until one needs a page the disk no longer has.
    let mut answered = Vec::new();
    let mut refused = Vec::new();
    for n in 0..2000 {
        let key = format!("disk-{n}");
        let r = pay(&key);
        match (r.status, r.code()) {
            (201, _) => answered.push((key, r.s("id"))),
            (503, "database_unavailable") => {
                assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
                assert!(
                    !r.body.to_string().contains("disk") && !r.body.to_string().contains("full"),
                    "no database detail in the answer: {r:?}"
                );
                refused.push(key);
                if refused.len() == 3 {
                    break;
                }
            }
            _ => panic!("{key} on a full disk: {r:?}"),
        }
    }
    assert_eq!(refused.len(), 3, "the full disk refused payments");
    eprintln!(
        "on the full disk: {} payments made in the database's own free pages, then refused",
        answered.len()
    );
    let hook = webhook(&api, "evt_full_disk");
    assert!(
        hook.status == 503 || hook.status == 200,
        "a webhook on a full disk: refused (the provider retries) or stored: {hook:?}"
    );

    std::fs::remove_file(&ballast).unwrap();
    for key in &refused {
        until_accepted(
            &Mutex::new(Vec::new()),
            key,
            || pay(key),
            |r| r.status == 201,
        );
    }
    for (key, id) in &answered {
        let again = pay(key);
        assert_eq!(
            (again.status, again.s("id").as_str()),
            (201, id.as_str()),
            "{key} replayed"
        );
    }
    until_accepted(
        &Mutex::new(Vec::new()),
        "the webhook after the disk",
        || webhook(&api, "evt_full_disk"),
        |r| r.status == 200,
    );
    for key in answered.iter().map(|(k, _)| k).chain(&refused) {
        assert_eq!(
            db.value(
                "SELECT CAST(COUNT(*) AS TEXT) FROM payments WHERE metadata = $1",
                &[&json!({ "order": key }).to_string()]
            )
            .as_deref(),
            Some("1"),
            "{key} is there once"
        );
    }
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM payments WHERE metadata LIKE '{\"order\":\"disk-%'"
        ),
        answered.len() + refused.len() + 1,
        "nothing else was made"
    );
    eventually("the webhook processed once", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE provider_object_id = 'mock_pi_evt_full_disk'",
        ) == 1
    });
}
