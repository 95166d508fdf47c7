//! Accountability, against the real binary: every operator action through `/admin`, the
//! console's forms and the CLI lands once in the audit trail with its actor and target; a
//! row altered or removed in the database makes `payhost audit verify` exit 1 naming it;
//! wrong keys from one address are slowed then refused (429, Retry-After) while a right key
//! from another address works at once; weak keys stay on loopback; no key's value is ever
//! in the trail, the log or an answer. (The console's browser test does its actions through
//! chromium and reads them back on the Audit page.)

use payhost_tests::api::Api;
use payhost_tests::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Admin keys nobody could guess, one named.
const OPS_KEY: &str = "phk_Mx3Rv8Tn1Lq6Wz4Kp9Yd2Fh7Bc0Gs5Ju";
const WEBHOOK_SECRET: &str = "whsec_audit";

fn scratch(host_extra: &str) -> Scratch {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        &format!("default_provider = \"mock\"\n{host_extra}"),
        &format!(
            "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{WEBHOOK_SECRET}\" }}\n"
        ),
    );
    // Two admin keys: the named one, and the harness's (labelled by its place).
    let config = std::fs::read_to_string(s.config()).unwrap().replace(
        &format!("admin_keys = [\"{ADMIN_KEY}\"]"),
        &format!("admin_keys = [\"{ADMIN_KEY}\", {{ name = \"ops\", key = \"{OPS_KEY}\" }}]"),
    );
    std::fs::write(s.config(), config).unwrap();
    s
}

/// One HTTP exchange from `from` (a loopback address of this machine: 127.0.0.2 is another
/// client to the host) with raw headers; the status, the head and the body.
fn exchange(
    addr: &str,
    from: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    let target: SocketAddr = addr.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&target.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (
        head[9..12].parse().unwrap(),
        head.to_owned(),
        body.to_owned(),
    )
}

fn sign_in(addr: &str, from: &str, key: &str) -> (u16, String, String) {
    exchange(
        addr,
        from,
        "POST",
        "/console/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &format!("key={key}&next=%2Fconsole"),
    )
}

fn cookie_of(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: payhost_console=")
                .then(|| {
                    l["set-cookie: ".len()..]
                        .split(';')
                        .next()
                        .unwrap()
                        .to_owned()
                })
        })
        .unwrap_or_else(|| panic!("no session cookie in:\n{head}"))
}

/// The audit rows, newest first (every page), read by `admin` from 127.0.0.9 (an address
/// no test throttles).
fn audit(admin: &Api, query: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let (status, _, body) = exchange(
            &admin.addr,
            "127.0.0.9",
            "GET",
            &format!("/admin/audit?limit=100&{query}{after}"),
            &format!("Authorization: Bearer {}\r\n", admin.key),
            "",
        );
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let page = body["data"].as_array().unwrap().clone();
        let more = body["has_more"] == json!(true);
        if let Some(last) = page.last() {
            after = format!("&starting_after={}", last["seq"]);
        }
        rows.extend(page);
        if !more {
            return rows;
        }
    }
}

fn rows_of<'a>(rows: &'a [Value], action: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["action"] == action).collect()
}

#[test]
fn every_operator_action_is_recorded_once_with_its_actor_and_target() {
    let s = scratch("");
    let host = s.serve();
    let addr = host.addr.clone();
    let ops = Api::new(&addr, OPS_KEY);
    let first_admin = Api::new(&addr, ADMIN_KEY);

    // Through /admin, as "ops".
    assert_eq!(ops.post("/admin/plugins/mock/stop", &json!({})).status, 200);
    assert_eq!(
        ops.post("/admin/plugins/mock/reload", &json!({})).status,
        200
    );
    assert_eq!(ops.post("/admin/plugins/rescan", &json!({})).status, 200);
    // A stored webhook to replay.
    let api = Api::new(&addr, API_KEY);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        WEBHOOK_SECRET,
        now,
        "evt_audit_1",
        "payment.succeeded",
        &json!({"id": "mock_pay_x", "amount": 100, "currency": "usd", "status": "succeeded"}),
    );
    let delivered = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&body),
    );
    assert_eq!(delivered.status, 200, "{:?}", delivered.body);
    assert_eq!(
        ops.post("/admin/inbox/evt_audit_1/replay", &json!({}))
            .status,
        200
    );
    // A failed action is recorded with what went wrong, by the other key.
    assert_eq!(
        first_admin
            .post("/admin/outbox/obx_nothing/retry", &json!({}))
            .status,
        404
    );
    // Reads and the read-only explain are not actions.
    assert_eq!(ops.get("/admin/plugins").status, 200);
    assert_eq!(
        ops.post(
            "/admin/routing/explain",
            &json!({"user_id": "u", "amount": 100, "currency": "usd"})
        )
        .status,
        200
    );

    // Through the console's forms, as "console:ops".
    let (status, head, _) = sign_in(&addr, "127.0.0.1", OPS_KEY);
    assert_eq!(status, 303, "{head}");
    let cookie = cookie_of(&head);
    let (_, _, page) = exchange(
        &addr,
        "127.0.0.1",
        "GET",
        "/console/plugins",
        &format!("Cookie: {cookie}\r\n"),
        "",
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token in the plugins page")
        .to_owned();
    let form = |path: &str| {
        exchange(
            &addr,
            "127.0.0.1",
            "POST",
            path,
            &format!("Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"),
            &format!("csrf={csrf}"),
        )
        .0
    };
    assert_eq!(form("/console/plugins/mock/stop"), 303);
    assert_eq!(form("/console/plugins/mock/reload"), 303);
    assert_eq!(form("/console/logout"), 303);

    // Through the CLI, as "cli:<user>" from "local".
    let (code, out, err) = s.payhost(&["events", "replay", "evt_audit_1"]);
    assert_eq!(code, 0, "{out}{err}");

    let rows = audit(&ops, "");
    let one = |action: &str, actor: &str, target: &str, outcome: &str| {
        let found: Vec<&Value> = rows_of(&rows, action)
            .into_iter()
            .filter(|r| r["actor"] == actor && r["target"] == target)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{action} by {actor} on {target}: {found:?}\nall: {rows:#?}"
        );
        assert_eq!(found[0]["outcome"], outcome, "{:?}", found[0]);
        found[0]["source"].as_str().unwrap().to_owned()
    };
    assert_eq!(one("plugin.stop", "ops", "plugin:mock", "ok"), "127.0.0.1");
    one("plugin.reload", "ops", "plugin:mock", "ok");
    one("plugins.rescan", "ops", "/admin/plugins/rescan", "ok");
    one("inbox.replay", "ops", "id:evt_audit_1", "ok");
    one(
        "outbox.retry",
        "host.admin_keys[0]",
        "id:obx_nothing",
        "404 not_found",
    );
    one("console.sign_in", "console:ops", "console", "ok");
    one("plugin.stop", "console:ops", "plugin:mock", "ok");
    one("plugin.reload", "console:ops", "plugin:mock", "ok");
    one("console.sign_out", "console:ops", "/console/logout", "ok");
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    assert_eq!(
        one(
            "inbox.replay",
            &format!("cli:{user}"),
            "id:evt_audit_1",
            "ok"
        ),
        "local"
    );
    assert!(
        rows.iter()
            .all(|r| !r["action"].as_str().unwrap().contains("explain")),
        "{rows:#?}"
    );
    assert_eq!(rows.len(), 10, "nothing else, nothing twice: {rows:#?}");
    // Each row carries a request id (the CLI's none), and the filters work.
    assert!(rows
        .iter()
        .filter(|r| r["source"] != "local")
        .all(|r| r["request_id"].as_str().unwrap().starts_with("req")));
    let by_console = audit(&ops, "actor=console:ops");
    assert_eq!(by_console.len(), 4, "{by_console:#?}");
    assert_eq!(audit(&ops, "action=plugin.stop").len(), 2);
    let since = rows.last().unwrap()["at_millis"].as_i64().unwrap() / 1000;
    assert_eq!(audit(&ops, &format!("since={since}")).len(), rows.len());
    assert_eq!(audit(&ops, "until=1").len(), 0);
    // Newest first, a chain: each row's prev_hash is the hash of the one before it.
    for pair in rows.windows(2) {
        assert_eq!(
            pair[0]["seq"].as_i64().unwrap(),
            pair[1]["seq"].as_i64().unwrap() + 1
        );
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"]);
    }
    let (code, out, err) = s.payhost(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("holds: 10 rows"), "{out}");

    // No key's value anywhere: not the trail, not the log, not an answer.
    let listed = serde_json::to_string(&rows).unwrap();
    let (_, log) = host.terminate();
    for key in [OPS_KEY, ADMIN_KEY, API_KEY] {
        assert!(!listed.contains(key), "a key in the trail");
        assert!(!log.contains(key), "a key in the log");
    }
    // The log has a line per row for shipping elsewhere.
    assert_eq!(
        log.lines().filter(|l| l.contains("payhost::audit")).count(),
        9,
        "the server's rows (the CLI's row is its own process's)"
    );
}

#[test]
fn a_row_altered_or_removed_fails_verify_naming_it() {
    let s = scratch("");
    let host = s.serve();
    let ops = Api::new(&host.addr, OPS_KEY);
    for _ in 0..3 {
        assert_eq!(ops.post("/admin/plugins/rescan", &json!({})).status, 200);
    }
    assert_eq!(ops.post("/admin/plugins/mock/stop", &json!({})).status, 200);
    drop(host);
    let (code, out, _) = s.payhost(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("holds: 4 rows, 1 to 4"), "{out}");

    let db = s.dir.path().join("data/payhost.db");
    let sql = |statement: &str| {
        let conn = rusqlite_like::open(&db);
        conn(statement);
    };
    // An actor rewritten: row 2 no longer matches its hash.
    sql("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2");
    let (code, out, _) = s.payhost(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("row 2 was altered"), "{out}");
    // Its hash recomputed by someone who knows the scheme: row 3 no longer follows it.
    let forged: String = {
        let rows = rusqlite_like::query(&db, "SELECT seq, at_millis, actor, source, action, target, outcome, request_id, prev_hash FROM audit_log WHERE seq = 2");
        hash_like_payhost(&rows[0])
    };
    sql(&format!(
        "UPDATE audit_log SET hash = '{forged}' WHERE seq = 2"
    ));
    let (code, out, _) = s.payhost(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("row 3 does not follow"), "{out}");
    // A row removed.
    sql("DELETE FROM audit_log WHERE seq IN (2, 3)");
    let (code, out, _) = s.payhost(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rows 2 to 3 are missing"), "{out}");
    // The start removed (no sweep of the trail's own said so).
    sql("DELETE FROM audit_log WHERE seq = 1");
    let (code, out, _) = s.payhost(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("begins at row 4"), "{out}");
}

/// SQLite from the test, through the sqlx the tests already use.
mod rusqlite_like {
    use std::path::Path;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    pub fn open(db: &Path) -> impl Fn(&str) + '_ {
        move |statement: &str| {
            run(async {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                    .await
                    .unwrap();
                sqlx::query(statement).execute(&mut c).await.unwrap();
            });
        }
    }

    pub fn query(db: &Path, statement: &str) -> Vec<Vec<String>> {
        run(async {
            use sqlx::{Connection, Row};
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            sqlx::query(statement)
                .fetch_all(&mut c)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<String, _>(i)
                                .or_else(|_| r.try_get::<i64, _>(i).map(|n| n.to_string()))
                                .unwrap()
                        })
                        .collect()
                })
                .collect()
        })
    }
}

/// The row hash as payhost computes it (an attacker who read the source could).
fn hash_like_payhost(fields: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"payhost audit v1\0");
    for f in fields {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

#[test]
fn wrong_keys_from_one_address_are_slowed_then_refused_while_others_sign_in() {
    let s = scratch("");
    let host = s.serve();
    let addr = host.addr.clone();
    let started = Instant::now();
    let mut statuses = Vec::new();
    let mut first_refusal = None;
    for i in 0..300 {
        let (status, head, body) = sign_in(&addr, "127.0.0.1", &format!("guess-{i}"));
        assert!(
            !body.contains(&format!("guess-{i}")),
            "the key is not echoed"
        );
        if status == 429 && first_refusal.is_none() {
            first_refusal = Some((i, head.clone()));
            // Meanwhile, the right key from another address works at once.
            let t = Instant::now();
            let (status, head, _) = sign_in(&addr, "127.0.0.2", OPS_KEY);
            assert_eq!(status, 303, "{head}");
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
            let other = exchange(
                &addr,
                "127.0.0.2",
                "GET",
                "/admin/plugins",
                &format!("Authorization: Bearer {OPS_KEY}\r\n"),
                "",
            );
            assert_eq!(other.0, 200);
        }
        statuses.push(status);
    }
    let (at, head) = first_refusal.expect("never refused");
    // The first five answered at once, the next five slower, then refused.
    assert_eq!(at, 10, "{statuses:?}");
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let retry_after: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_owned)
        })
        .expect("Retry-After")
        .trim()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    // 300 guesses took the slowed ones' waits (~3.75 s), not 0.34 s; refused ones are quick.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Even the right key is refused from the throttled address (it learns nothing).
    let (status, _, _) = sign_in(&addr, "127.0.0.1", OPS_KEY);
    assert_eq!(status, 429);
    // The API and /admin count against the same address: refused there too.
    let api = exchange(
        &addr,
        "127.0.0.1",
        "GET",
        "/v1/customers",
        "Authorization: Bearer wrong\r\n",
        "",
    );
    assert_eq!(api.0, 429, "{}", api.2);
    assert!(api.2.contains("too_many_failed_attempts"), "{}", api.2);
    // Another address's wrong keys are counted on their own surface.
    for surface in ["/v1/customers", "/admin/plugins"] {
        let (status, _, _) = exchange(
            &addr,
            "127.0.0.3",
            "GET",
            surface,
            "Authorization: Bearer nope\r\n",
            "",
        );
        assert_eq!(status, 401, "{surface}");
    }

    // The trail has each failure until the refusal, and the refusal once.
    let ops = Api::new(&addr, OPS_KEY);
    // (failures are recorded without holding their answer)
    eventually("every failure recorded", || {
        rows_of(&audit(&ops, ""), "auth.failed").len() >= 12
    });
    let rows = audit(&ops, "");
    let failed = rows_of(&rows, "auth.failed");
    assert_eq!(failed.len(), 12, "{rows:#?}");
    assert!(failed.iter().all(|r| r["actor"] == "unknown"));
    assert_eq!(
        failed.iter().filter(|r| r["source"] == "127.0.0.1").count(),
        10
    );
    let throttled = rows_of(&rows, "auth.throttled");
    assert_eq!(throttled.len(), 1, "{rows:#?}");
    assert_eq!(throttled[0]["source"], "127.0.0.1");
    assert_eq!(throttled[0]["target"], "console: POST /console/login");
    assert_eq!(rows_of(&rows, "console.sign_in").len(), 1);
    // And the metric, by surface.
    let (_, _, metrics) = exchange(&addr, "127.0.0.1", "GET", "/metrics", "", "");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("{series} in /metrics"))
            .trim()
            .parse()
            .unwrap()
    };
    // Eleven wrong keys looked at: the eleventh started the refusal.
    assert_eq!(
        value("payhost_auth_failures_total{surface=\"console\"}"),
        11.0
    );
    assert_eq!(value("payhost_auth_failures_total{surface=\"api\"}"), 1.0);
    assert_eq!(value("payhost_auth_failures_total{surface=\"admin\"}"), 1.0);
    assert!(value("payhost_auth_refusals_total{surface=\"console\"}") >= 290.0);
    assert_eq!(value("payhost_auth_refusals_total{surface=\"api\"}"), 1.0);
    let (_, log) = host.terminate();
    assert_eq!(
        log.matches("too many wrong keys from one address").count(),
        1,
        "one log line per throttled source"
    );
    assert!(!log.contains("guess-1"), "no guessed key in the log");
}

#[test]
fn a_trusted_proxy_names_the_client_and_nobody_else_can() {
    // (and an operator's own allowance: 4 wrong keys, the fifth refused)
    let s = scratch("trusted_proxies = [\"127.0.0.5\"]\nauth_failures_allowed = 4\n");
    let host = s.serve();
    let addr = host.addr.clone();
    // Through the proxy: the client it names is throttled, not the proxy.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            exchange(
                &addr,
                "127.0.0.5",
                "GET",
                "/admin/plugins",
                "Authorization: Bearer wrong\r\nX-Forwarded-For: 198.51.100.7\r\n",
                "",
            )
            .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
    let blocked = exchange(
        &addr,
        "127.0.0.5",
        "GET",
        "/admin/plugins",
        &format!("Authorization: Bearer {OPS_KEY}\r\nX-Forwarded-For: 198.51.100.7\r\n"),
        "",
    );
    assert_eq!(blocked.0, 429);
    let other_client = exchange(
        &addr,
        "127.0.0.5",
        "GET",
        "/admin/plugins",
        &format!("Authorization: Bearer {OPS_KEY}\r\nX-Forwarded-For: 198.51.100.8\r\n"),
        "",
    );
    assert_eq!(other_client.0, 200, "the proxy's other clients are served");
    // A client that is not a trusted proxy cannot pick its address.
    let spoofed = exchange(
        &addr,
        "127.0.0.6",
        "POST",
        "/admin/plugins/rescan",
        &format!("Authorization: Bearer {OPS_KEY}\r\nX-Forwarded-For: 203.0.113.1\r\n"),
        "",
    );
    assert_eq!(spoofed.0, 200);
    let rows = audit(&Api::new(&addr, OPS_KEY), "action=plugins.rescan");
    assert_eq!(rows[0]["source"], "127.0.0.6");
    let failed = audit(&Api::new(&addr, OPS_KEY), "action=auth.failed");
    assert!(
        failed.iter().all(|r| r["source"] == "198.51.100.7"),
        "{failed:#?}"
    );
}

#[test]
fn weak_keys_stay_on_loopback_and_generated_keys_are_taken_as_they_are() {
    // A weak named key beyond loopback: refused, named, never shown.
    let s = Scratch::with_api_keys(
        &[],
        "[{ name = \"billing\", key = \"billing-2024\" }]",
        "",
        "",
    );
    let config = std::fs::read_to_string(s.config())
        .unwrap()
        .replace("127.0.0.1:0", "0.0.0.0:0")
        .replace(
            &format!("admin_keys = [\"{ADMIN_KEY}\"]"),
            &format!("admin_keys = [\"{OPS_KEY}\"]"),
        );
    std::fs::write(s.config(), &config).unwrap();
    let (code, out, err) = s.payhost(&["serve"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("host.api_keys: the key 'billing' could be guessed"),
        "{err}"
    );
    assert!(!err.contains("billing-2024"), "{err}");
    let (code, out, _) = s.payhost(&["config", "check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("'billing' could be guessed"), "{out}");

    // On loopback: accepted, with a warning at start and in config check.
    std::fs::write(s.config(), config.replace("0.0.0.0:0", "127.0.0.1:0")).unwrap();
    let (code, out, _) = s.payhost(&["config", "check"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: host.api_keys: the key 'billing' could be guessed"),
        "{out}"
    );
    let host = s.serve();
    let (_, log) = host.terminate();
    assert!(log.contains("'billing' could be guessed"), "{log}");

    // `keys generate` prints the key once and a line the config takes as it is, beyond
    // loopback too.
    let (code, key, how) = s.payhost(&["keys", "generate", "--name", "ops", "--admin"]);
    assert_eq!(code, 0, "{how}");
    let key = key.trim().to_owned();
    let line = how
        .lines()
        .find(|l| l.trim_start().starts_with("{ name = \"ops\""))
        .unwrap_or_else(|| panic!("{how}"))
        .trim()
        .to_owned();
    assert!(
        !line.contains(&key),
        "the config line holds its digest only"
    );
    let (code, api_key, api_how) = s.payhost(&["keys", "generate", "--tenant", "acme"]);
    assert_eq!(code, 0);
    let api_line = api_how
        .lines()
        .find(|l| l.trim_start().starts_with("{ sha256"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(api_line.contains("tenant = \"acme\""), "{api_line}");
    let strong = format!(
        "[host]\nbind = \"0.0.0.0:0\"\nplugin_dir = \"plugins\"\ndata_dir = \"data\"\n\
         api_keys = [{api_line}]\nadmin_keys = [{line}]\n"
    );
    std::fs::write(s.config(), strong).unwrap();
    let (code, out, _) = s.payhost(&["config", "check"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("warning"), "{out}");
    let host = s.serve();
    let port = host.addr.rsplit(':').next().unwrap();
    let local = format!("127.0.0.1:{port}");
    let admin = Api::new(&local, &key);
    assert_eq!(admin.get("/admin/plugins").status, 200);
    let tenant_api = Api::new(&local, api_key.trim());
    assert_eq!(tenant_api.get("/v1/customers").status, 200);
    assert_eq!(admin.post("/admin/plugins/rescan", &json!({})).status, 200);
    let rows = audit(&admin, "action=plugins.rescan");
    assert_eq!(rows[0]["actor"], "ops");
}
