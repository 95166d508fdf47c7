//! Event handlers through the outbox, over the real binary: receipt, failure and welcome
//! emails written as real messages; the application's webhook endpoint, down at first,
//! receives every event signed and in order once it comes back.

use payhost_plugin_api::signature;
use payhost_tests::api::Api;
use payhost_tests::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MOCK: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_mock\" }\n";
const APP_SECRET: &str = "whsec_app_0123456789abcdef";

fn messages(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn receipts_failure_notices_and_welcomes_are_real_messages() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        MOCK,
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": "ada", "email": "ada@example.com", "name": "Ada"}),
    );
    let cust = c.s("id");
    let paid = api.post("/v1/payments", &json!({"customer": cust, "amount": 1500, "currency": "usd", "payment_method": "pm_card_visa"}));
    assert_eq!(paid.s("status"), "succeeded");
    let failed = api.post("/v1/payments", &json!({"customer": cust, "amount": 1200, "currency": "eur", "payment_method": "pm_card_chargeDeclined"}));
    assert_eq!(failed.s("status"), "failed");
    let yen = api.post("/v1/payments", &json!({"customer": cust, "amount": 4200, "currency": "jpy", "payment_method": "pm_card_visa"}));
    assert_eq!(yen.status, 201);
    let sub = api.post(
        "/v1/subscriptions",
        &json!({"customer": cust, "price": "price_pro", "trial_days": 7}),
    );
    assert_eq!(sub.status, 201);

    let dir = s.dir.path().join("data").join("mail");
    eventually("four messages", || messages(&dir).len() == 4);
    let all = messages(&dir);
    let find = |subject: &str| {
        all.iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap_or_else(|| panic!("no message '{subject}' in {all:#?}"))
    };
    let receipt = find("Receipt: 15.00 USD received");
    assert!(receipt.contains("To: ada@example.com"), "{receipt}");
    assert!(
        receipt.contains("From: payhost <billing@payhost.invalid>"),
        "{receipt}"
    );
    assert!(
        receipt.contains(&paid.s("id")),
        "the receipt names the payment: {receipt}"
    );
    find("Receipt: 4200 JPY received");
    let notice = find("Payment failed: 12.00 EUR");
    assert!(notice.contains("Your card was declined"), "{notice}");
    let welcome = find("Welcome aboard");
    assert!(welcome.contains("price_pro"), "{welcome}");
    // Done once: the outbox rows are done and nothing is written again.
    // (A message's file is written before its row is recorded done: wait for the rows.)
    let admin = Api::new(&host.addr, ADMIN_KEY);
    eventually("the four email rows done", || {
        let rows = admin.get("/admin/outbox?status=done");
        let emails = rows.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["handler"].as_str().unwrap().ends_with("_email"))
            .count();
        assert!(emails <= 4, "{rows:?}");
        emails == 4
    });
    // A message is written before its row is done, and no other email work is waiting:
    // these four are all there will be (no pause to see whether more come).
    let all = admin.get("/admin/outbox");
    let emails = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["handler"].as_str().unwrap().ends_with("_email"))
        .count();
    assert_eq!(emails, 4, "{all:?}");
    assert_eq!(messages(&dir).len(), 4);
}

#[test]
fn an_endpoint_that_was_down_gets_every_event_signed_and_in_order() {
    let port = closed_port();
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\nwebhook_retry_base_ms = 100\n",
        &format!(
            "{MOCK}[[webhook_endpoints]]\nname = \"app\"\nurl = \"http://127.0.0.1:{port}/payhost\"\nsecret = \"{APP_SECRET}\"\n"
        ),
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let p = api.post("/v1/payments", &json!({"user_id": "u", "email": "u@example.com", "amount": 800, "currency": "usd", "payment_method": "pm_card_visa"}));
    let pay = p.s("id");
    assert_eq!(
        api.post("/v1/refunds", &json!({"payment": pay, "amount": 300}))
            .status,
        201
    );
    assert_eq!(
        api.post("/v1/refunds", &json!({"payment": pay})).status,
        201
    );

    // The endpoint is down: deliveries fail and wait, the first holding the others.
    eventually("failed attempts recorded", || {
        let rows = admin.get("/admin/outbox?status=pending").body;
        rows["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["handler"] == "webhook" && r["attempts"].as_i64() >= Some(2))
    });
    let pending = admin.get("/admin/outbox?status=pending").body;
    let webhooks: Vec<&Value> = pending["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["handler"] == "webhook")
        .collect();
    assert_eq!(webhooks.len(), 4, "{pending}");
    let tried: Vec<&&Value> = webhooks
        .iter()
        .filter(|r| r["attempts"].as_i64() > Some(0))
        .collect();
    assert_eq!(
        tried.len(),
        1,
        "only the first event's delivery is tried while it fails: {pending}"
    );
    let first = (*tried[0]).clone();
    assert!(
        first["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{first}"
    );
    assert_eq!(
        admin
            .post(
                &format!("/admin/outbox/{}/retry", first["id"].as_str().unwrap()),
                &json!({})
            )
            .status,
        200
    );
    assert_eq!(
        admin
            .post("/admin/outbox/obx_nope/retry", &json!({}))
            .status,
        404
    );

    // It comes back: every event arrives, in order, signed.
    let got = receiver(TcpListener::bind(("127.0.0.1", port)).unwrap());
    eventually("four deliveries, and no delivery work left", || {
        got.lock().unwrap().len() >= 4
            && admin.get("/admin/outbox").body["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["handler"] == "webhook")
                .all(|r| r["status"] == "done")
    });
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "each event once");
    let events: Vec<Value> = got
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "PaymentCreated",
            "PaymentSucceeded",
            "RefundProcessed",
            "RefundProcessed"
        ]
    );
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    for (headers, body) in &got {
        let sig = &headers
            .iter()
            .find(|(k, _)| k == "payhost-signature")
            .unwrap()
            .1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        signature::verify(sig, body.as_bytes(), &[APP_SECRET], now, 300)
            .expect("a valid Payhost-Signature");
        assert!(
            signature::verify(sig, body.as_bytes(), &["whsec_someone_else_000"], now, 300).is_err()
        );
    }
    let metrics = api
        .get("/metrics")
        .body
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(metrics.contains("payhost_outbox_pending 0"), "{metrics}");
}

#[test]
fn an_endpoint_that_hangs_does_not_hold_up_emails() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        &format!(
            "{MOCK}[[webhook_endpoints]]\nname = \"slow\"\nurl = \"http://127.0.0.1:{port}/hang\"\nsecret = \"{APP_SECRET}\"\n"
        ),
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let p = api.post(
        "/v1/payments",
        &json!({"user_id": "h", "email": "h@example.com", "amount": 900, "currency": "usd", "payment_method": "pm_card_visa"}),
    );
    assert_eq!(p.s("status"), "succeeded");
    let dir = s.dir.path().join("data").join("mail");
    eventually("the receipt", || !messages(&dir).is_empty());
    // The receipt went out while the endpoint's first delivery was still waiting for an answer.
    let rows = admin.get("/admin/outbox?status=pending").body;
    let hanging: Vec<&Value> = rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["handler"] == "webhook")
        .collect();
    assert!(!hanging.is_empty(), "{rows}");
    assert!(hanging.iter().all(|r| r["attempts"] == 0), "{rows}");
    drop(silent);
}

/// An endpoint that answers 200 after `delay`, each request on a thread of its own; counts
/// what it received.
fn slow_receiver(listener: TcpListener, delay: Duration) -> Arc<Mutex<usize>> {
    let got = Arc::new(Mutex::new(0));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                *keep.lock().unwrap() += 1;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    got
}

/// Beside a healthy endpoint, one that answers after 9 s and one that is down: the healthy
/// one gets every delivery, and every receipt is written, as soon as the events happen —
/// not when the slow one answers.
#[test]
fn a_slow_and_a_dead_endpoint_delay_nobody_else() {
    let healthy = TcpListener::bind("127.0.0.1:0").unwrap();
    let healthy_port = healthy.local_addr().unwrap().port();
    let got = receiver(healthy);
    let slow = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let slow_got = slow_receiver(slow, Duration::from_secs(9));
    let dead_port = closed_port();
    let endpoint = |name: &str, port: u16| {
        format!("[[webhook_endpoints]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:{port}/hooks\"\nsecret = \"{APP_SECRET}\"\n")
    };
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\nwebhook_retry_base_ms = 50\n",
        &format!(
            "{MOCK}{}{}{}",
            endpoint("slow", slow_port),
            endpoint("dead", dead_port),
            endpoint("healthy", healthy_port)
        ),
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let dir = s.dir.path().join("data").join("mail");
    let started = std::time::Instant::now();
    // Payments over two seconds: each is two events (created, succeeded) and a receipt.
    for n in 0..10 {
        let p = api.post("/v1/payments", &json!({"user_id": format!("f{n}"), "email": format!("f{n}@example.com"), "amount": 500 + n, "currency": "usd", "payment_method": "pm_card_visa"}));
        assert_eq!(p.s("status"), "succeeded");
        std::thread::sleep(Duration::from_millis(200));
    }
    eventually("the healthy endpoint has all 20 deliveries", || {
        got.lock().unwrap().len() >= 20
    });
    eventually("all 10 receipts", || messages(&dir).len() >= 10);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "the healthy endpoint and the emails waited for the slow one: {took:?}"
    );
    assert!(
        *slow_got.lock().unwrap() <= 1,
        "the slow endpoint is still on its first delivery"
    );
    // The dead endpoint's first delivery is failing and holds its others; nobody else's.
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let pending = admin.get("/admin/outbox?status=pending").body;
    let dead: Vec<&serde_json::Value> = pending["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == "dead")
        .collect();
    assert_eq!(dead.len(), 20, "{pending}");
    assert!(dead.iter().any(|r| r["attempts"].as_i64() >= Some(1)));
    assert!(pending["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["target"] != "healthy" && r["handler"] != "receipt_email"));
}
