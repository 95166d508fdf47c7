//! Secrets never leave: the whole lifecycle runs with distinctive secret values (API and
//! admin keys, the provider's webhook secret, an application endpoint's signing secret),
//! then the host's log at debug level, its lifecycle events, `/admin`, `/metrics`, the
//! event feed, error bodies, the mail files and the database's event, inbox, outbox and
//! idempotency tables are searched for them: none may appear.

use payhost_tests::api::Api;
use payhost_tests::conformance::{lifecycle, MOCK_PROVIDER};
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::json;

const WEBHOOK_SECRET: &str = "whsec_DISTINCT_mock_7f3a9c";
const ENDPOINT_SECRET: &str = "whsec_DISTINCT_endpoint_91bc4e";

#[test]
fn no_secret_appears_in_logs_events_answers_or_tables() {
    let dead = closed_port();
    let s = Scratch::with_host(
        &[(&mock_so(), "libpayhost_plugin_mock.so")],
        "default_provider = \"mock\"\nwebhook_retry_base_ms = 50\n",
        &format!(
            "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{WEBHOOK_SECRET}\" }}\n\
             [[webhook_endpoints]]\nname = \"app\"\nurl = \"http://127.0.0.1:{dead}/hooks\"\nsecret = \"{ENDPOINT_SECRET}\"\n"
        ),
    );
    let db = TestDb::sqlite(s.dir.path());
    lifecycle(&s, &db, &MOCK_PROVIDER);

    let host = s.serve_with_env(&[("RUST_LOG", "debug")]);
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let mut seen = String::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let object = json!({"id": "mock_pi_secret_test", "amount": 100, "currency": "usd", "status": "succeeded"});
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        WEBHOOK_SECRET,
        now,
        "evt_secret_1",
        "payment.succeeded",
        &object,
    );
    let ok = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&body),
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    let (forged, _) = payhost_plugin_mock::webhook::signed_event(
        "whsec_wrong_one",
        now,
        "evt_secret_2",
        "payment.succeeded",
        &object,
    );
    let refused = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&forged),
    );
    assert_eq!(refused.status, 400);
    seen.push_str(&refused.body.to_string());
    for r in [
        api.get("/v1/payments/pay_nope"),
        api.post("/v1/payments", &json!({"amount": -1})),
        Api::new(&host.addr, "wrong_key").get("/v1/payments"),
        api.get("/admin/plugins"),
        api.get("/v1/events?limit=100"),
        admin.get("/admin/plugins"),
        admin.get("/admin/inbox"),
        admin.get("/admin/outbox"),
        api.get("/metrics"),
    ] {
        seen.push_str(&r.body.to_string());
        for (k, v) in &r.headers {
            seen.push_str(&format!("{k}: {v}\n"));
        }
    }
    eventually("the endpoint's delivery failed at least once", || {
        admin.get("/admin/outbox").body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == "app" && r["attempts"].as_i64() > Some(0))
    });
    let (_, log) = host.terminate();
    assert!(log.contains("DEBUG"), "the log ran at debug level");
    seen.push_str(&log);
    for table in ["events", "webhook_inbox", "outbox", "idempotency_keys"] {
        for row in db.rows(
            &format!("SELECT * FROM {table}").replace('*', &columns(&db, table)),
            &[],
        ) {
            seen.push_str(&format!("{row:?}\n"));
        }
    }
    let mail = s.dir.path().join("data").join("mail");
    for entry in std::fs::read_dir(&mail).unwrap().flatten() {
        seen.push_str(&std::fs::read_to_string(entry.path()).unwrap());
    }
    assert!(
        seen.len() > 10_000,
        "there was much to search: {}",
        seen.len()
    );
    // The search reaches what it should: the event the secret signed, in the tables and
    // the log, and the endpoint's failed delivery.
    assert!(seen.contains("evt_secret_1") && seen.contains("webhook received"));
    assert!(seen.contains("cannot reach the endpoint"));
    for secret in [API_KEY, ADMIN_KEY, WEBHOOK_SECRET, ENDPOINT_SECRET] {
        if let Some(at) = seen.find(secret) {
            let from = seen[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            panic!(
                "the secret '{secret}' appears: ...{}",
                &seen[from..(at + secret.len() + 100).min(seen.len())]
            );
        }
    }
}

/// The table's columns, each cast to text (the rows helper reads text).
fn columns(db: &TestDb, table: &str) -> String {
    db.rows("SELECT name FROM pragma_table_info($1)", &[table])
        .into_iter()
        .map(|r| format!("CAST({} AS TEXT)", r[0].clone().unwrap()))
        .collect::<Vec<_>>()
        .join(", ")
}
