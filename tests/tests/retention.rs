//! Retention over the real binary (SQLite, and PostgreSQL when a server answers): after
//! their time, stored idempotent answers are deleted, processed webhooks lose their payload
//! but stay duplicates, outbox rows done and old mail files are deleted — and pending work
//! is untouched.

use payhost_tests::api::Api;
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::json;

const SECRET: &str = "whsec_retention";

fn count(db: &TestDb, sql: &str) -> usize {
    db.value(sql, &[]).unwrap().parse().unwrap()
}

#[test]
fn old_records_go_and_pending_work_stays_on_sqlite() {
    sweeps(None);
}

#[test]
fn old_records_go_and_pending_work_stays_on_postgres() {
    let Some(pg) = TestDb::postgres("retention") else {
        return;
    };
    sweeps(Some(pg));
}

fn sweeps(pg: Option<TestDb>) {
    let dead = closed_port();
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        &format!(
            "default_provider = \"mock\"\n{}",
            pg.as_ref().map(TestDb::host_line).unwrap_or_default()
        ),
        &format!(
            "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{SECRET}\" }}\n\
             [[webhook_endpoints]]\nname = \"down\"\nurl = \"http://127.0.0.1:{dead}/x\"\nsecret = \"whsec_down_0123456789\"\n"
        ),
    );
    let db = pg.unwrap_or_else(|| TestDb::sqlite(s.dir.path()));
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let c = api.post_idem(
        "/v1/customers",
        "keep-for-a-day",
        &json!({"user_id": "r1", "email": "r1@example.com"}),
    );
    assert_eq!(c.status, 201);
    let p = api.post("/v1/payments", &json!({"customer": c.s("id"), "amount": 700, "currency": "usd", "payment_method": "pm_card_visa"}));
    assert_eq!(p.s("status"), "succeeded");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let object =
        json!({"id": "mock_pi_retention", "amount": 100, "currency": "usd", "status": "succeeded"});
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        SECRET,
        now,
        "evt_retention",
        "payment.succeeded",
        &object,
    );
    let hook = |api: &Api| {
        api.send(
            "POST",
            "/webhooks/payments/mock",
            &[("X-Webhook-Signature", &sig)],
            Some(&body),
        )
    };
    assert_eq!(hook(&api).status, 200);
    let mail = s.dir.path().join("data").join("mail");
    eventually("processed, receipt written", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status = 'processed'",
        ) == 1
            && count(
                &db,
                "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE status = 'done'",
            ) >= 1
            && std::fs::read_dir(&mail).map(|d| d.count()).unwrap_or(0) >= 1
    });
    let _ = host.terminate();
    let pending = count(
        &db,
        "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE status <> 'done'",
    );
    assert!(pending > 0, "the dead endpoint's deliveries are pending");

    // Time passes: 40 days for everything.
    let ago = 40 * 86_400;
    db.execute(&format!(
        "UPDATE idempotency_keys SET created_at = created_at - {ago}"
    ));
    db.execute(&format!(
        "UPDATE webhook_inbox SET processed_at = processed_at - {ago}, received_at = received_at - {ago}"
    ));
    db.execute(&format!(
        "UPDATE outbox SET done_at = done_at - {ago}, created_at = created_at - {ago}"
    ));
    let mails = std::fs::read_dir(&mail).unwrap().count();
    let status = std::process::Command::new("touch")
        .args(["-d", "41 days ago"])
        .args(
            std::fs::read_dir(&mail)
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        )
        .status()
        .unwrap();
    assert!(status.success());

    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    eventually("swept at start", || {
        count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM idempotency_keys") == 0
            && count(
                &db,
                "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE status = 'done'",
            ) == 0
    });
    assert_eq!(
        db.value(
            "SELECT payload FROM webhook_inbox WHERE event_id = 'evt_retention'",
            &[]
        )
        .as_deref(),
        Some(""),
        "the payload is cleared, the row stays"
    );
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE status <> 'done'"
        ),
        pending,
        "pending work is untouched"
    );
    eventually("old mail rotated", || {
        std::fs::read_dir(&mail).unwrap().count() == 0
    });
    let again = hook(&api);
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body["duplicate"], true,
        "still a duplicate: {again:?}"
    );
    let metrics = api.get("/metrics").body.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("payhost_retention_swept_total{kind=\"idempotency_keys\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("payhost_retention_swept_total{kind=\"inbox_payloads\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "payhost_retention_swept_total{{kind=\"mail_files\"}} {mails}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("payhost_retention_swept_total{kind=\"outbox_rows\"}"),
        "{metrics}"
    );
}
