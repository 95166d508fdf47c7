//! The mollie plugin over the real binary and the fake Mollie: conformance through
//! `payhost plugins conformance --approve-redirects` and in process (the kit's suite, its
//! HTTP going to the same fake); a payment that is paid, refunded (the refund settles
//! later), fails with its reason, expires, is canceled or cannot be, all through `/v1` and
//! Mollie's thin webhooks (`id=tr_…`, authenticated by a read); a delivery repeated after a
//! refund is news, the same state twice is not; a forged id is refused with nothing
//! stored; a delivery the host cannot authenticate yet (Mollie's API down) is retried by
//! Mollie until it lands.

use payhost_plugin_kit::conformance::{in_process, run, Outcome};
use payhost_plugin_kit::{Headers, HttpRequest, HttpResponse};
use payhost_plugin_mollie::MollieProvider;
use payhost_tests::api::{Api, Resp};
use payhost_tests::db::TestDb;
use payhost_tests::fake_mollie::{Chaos, FakeMollie, Running, API_KEY};
use payhost_tests::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::Command;

/// A host serving mollie on a port chosen first, so `host.public_url` (the `webhookUrl`
/// Mollie is given) names it.
fn mollie_host(fake: &Running) -> (Scratch, HostProcess, Api, TestDb) {
    let port = closed_port();
    let s = Scratch::with_host(
        &[(&mollie_so(), "mollie.so")],
        &format!("default_provider = \"mollie\"\npublic_url = \"http://127.0.0.1:{port}\"\n"),
        &format!(
            "[providers.mollie]\nplugin = \"mollie\"\nallow_hosts = [\"127.0.0.1\"]\n\
             config = {{ api_key = \"{API_KEY}\", api_base = \"{}\", max_retries = 0 }}\n",
            fake.api_base
        ),
    );
    let text = std::fs::read_to_string(s.config()).unwrap();
    let pinned = text.replace(
        "bind = \"127.0.0.1:0\"",
        &format!("bind = \"127.0.0.1:{port}\""),
    );
    assert_ne!(text, pinned, "the scratch config binds port 0");
    std::fs::write(s.config(), pinned).unwrap();
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY_FOR_API);
    let db = TestDb::sqlite(s.dir.path());
    (s, host, api, db)
}

/// The key payhost's API takes (not Mollie's).
const API_KEY_FOR_API: &str = payhost_tests::API_KEY;

fn ok(r: &Resp, status: u16) -> &Resp {
    assert_eq!(r.status, status, "{r:?}");
    r
}

/// The buyer's browser on Mollie's checkout page, picking the outcome (`paid`, `failed`...).
fn checkout(url: &str, outcome: &str) {
    let rest = url.split_once("://").unwrap().1;
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let (status, body) = http(addr, "GET", &format!("{path}?{outcome}"), None, None);
    assert_eq!(status, 200, "checkout at {url}: {body}");
}

fn pay(api: &Api, customer: &str, amount: i64, method: Option<&str>) -> Value {
    let mut body = json!({"customer": customer, "amount": amount, "currency": "eur",
        "return_url": "https://shop.example/back", "description": "Order 7"});
    if let Some(m) = method {
        body["payment_method"] = json!(m);
    }
    let p = api.post("/v1/payments", &body);
    let p = ok(&p, 201).body.clone();
    assert_eq!(p["status"], "requires_action", "{p}");
    assert_eq!(p["next_action"]["type"], "redirect_to_url", "{p}");
    p
}

fn status_of(api: &Api, path: &str) -> Value {
    api.get(path).body
}

fn until_status(api: &Api, path: &str, want: &str) -> Value {
    let mut last = Value::Null;
    eventually(&format!("{path} is {want}"), || {
        last = status_of(api, path);
        last["status"] == want
    });
    last
}

fn events(api: &Api, kind: &str, object: &str) -> usize {
    let r = api.get(&format!("/v1/events?type={kind}&object_id={object}"));
    ok(&r, 200).body["data"].as_array().unwrap().len()
}

fn inbox_rows(db: &TestDb, payment: &str) -> String {
    db.value(
        "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE event_ref = $1 OR event_id = $1",
        &[payment],
    )
    .unwrap()
}

/// A thin delivery as Mollie posts it.
fn post_thin(addr: &str, body: &str) -> (u16, String) {
    post_form(
        &format!("http://{addr}/webhooks/payments/mollie"),
        &[],
        body,
    )
    .unwrap()
}

#[test]
fn conformance_passes_on_the_fake_mollie() {
    let fake = FakeMollie::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mollie.toml");
    std::fs::write(
        &config,
        format!(
            "allow_hosts = [\"127.0.0.1\"]\n[config]\napi_key = \"{API_KEY}\"\napi_base = \"{}\"\n",
            fake.api_base
        ),
    )
    .unwrap();
    let out = Command::new(payhost_bin())
        .args(["plugins", "conformance"])
        .arg(mollie_so())
        .args(["--config", config.to_str().unwrap(), "--approve-redirects"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "PASS  payments.succeeds",
        "PASS  payments.requires_action",
        "PASS  payments.cancel",
        "PASS  redirects.next_action",
        "PASS  redirects.confirm_before_approval_refused",
        "PASS  redirects.approve_then_confirm",
        "PASS  refunds.partial_then_rest",
        "PASS  refunds.refused_above_remaining",
        "PASS  webhooks.unsigned_refused",
        "PASS  webhooks.forged_thin_refused",
        "PASS  capability.refunds.implemented",
        "PASS  capability.redirects.implemented",
    ] {
        assert!(report.contains(check), "missing '{check}' in:\n{report}");
    }
    // Every POST carried an Idempotency-Key.
    let posts: Vec<_> = fake
        .fake
        .seen()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(posts.len() > 5, "{posts:?}");
    assert!(
        posts.iter().all(|r| r.idempotency_key.is_some()),
        "{posts:?}"
    );
}

/// One HTTP exchange with the fake, as the host's HTTP service would make it.
fn exchange(req: &HttpRequest) -> HttpResponse {
    let rest = req.url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        req.method
    );
    for (k, v) in req.headers.iter() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", req.body.0.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&req.body.0).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut headers = Headers::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.push(k.trim().to_ascii_lowercase(), v.trim());
        }
    }
    HttpResponse {
        status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        headers,
        body: raw[split + 4..].to_vec().into(),
    }
}

#[test]
fn conformance_passes_in_process_against_the_same_fake() {
    let fake = FakeMollie::start();
    let target =
        in_process::<MollieProvider>(Some(json!({"api_key": API_KEY, "api_base": fake.api_base})));
    target.host().on_http(|req| Ok(exchange(req)));
    target.host().on_visit(|url| {
        let answer = exchange(&HttpRequest {
            method: "GET".into(),
            url: url.to_owned(),
            ..HttpRequest::default()
        });
        (answer.status == 200)
            .then_some(())
            .ok_or_else(|| format!("checkout at {url} answered {}", answer.status))
    });
    let report = run(&target);
    report.assert_passed();
    for reached in [
        "payments.succeeds",
        "redirects.approve_then_confirm",
        "refunds.partial_then_rest",
        "refunds.refused_above_remaining",
        "payments.cancel",
    ] {
        assert_eq!(
            report.outcome(reached).cloned(),
            Some(Outcome::Pass),
            "{reached}:\n{report}"
        );
    }
}

#[test]
fn payments_and_refunds_settle_through_thin_webhooks() {
    let fake = FakeMollie::start();
    let (_s, host, api, db) = mollie_host(&fake);
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": "mollie-1", "email": "ada@example.com", "name": "Ada"}),
    );
    let cust = ok(&c, 201).s("id");

    // Paid on the checkout page; Mollie's webhook tells, authenticated by a read.
    let p = pay(&api, &cust, 1000, None);
    let (pay_id, tr) = (
        p["id"].as_str().unwrap(),
        p["provider_id"].as_str().unwrap(),
    );
    let created = fake.fake.payment(tr).unwrap();
    assert_eq!(
        created["webhookUrl"],
        format!("http://{}/webhooks/payments/mollie", host.addr),
        "the webhook URL comes from host.public_url (contract 2.2)"
    );
    assert_eq!(
        created["amount"],
        json!({"currency": "EUR", "value": "10.00"})
    );
    assert!(fake
        .fake
        .seen()
        .iter()
        .any(|r| r.method == "POST" && r.path == "/v2/payments" && r.idempotency_key.is_some()));
    checkout(p["next_action"]["url"].as_str().unwrap(), "outcome=paid");
    let paid = until_status(&api, &format!("/v1/payments/{pay_id}"), "succeeded");
    assert_eq!(paid["amount_received"], 1000, "{paid}");
    assert_eq!(events(&api, "PaymentSucceeded", pay_id), 1);
    assert_eq!(inbox_rows(&db, tr), "1");

    // The same state posted again is one delivery.
    let (status, answer) = post_thin(&host.addr, &format!("id={tr}"));
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"duplicate\":true"), "{answer}");
    assert_eq!(inbox_rows(&db, tr), "1");

    // A refund is pending until Mollie settles it; the webhook for the same payment id is
    // news then (its refunds changed), and settles it.
    let r = api.post("/v1/refunds", &json!({"payment": pay_id, "amount": 300}));
    let r = ok(&r, 201).body.clone();
    let refund = r["id"].as_str().unwrap();
    assert_eq!(r["status"], "pending", "{r}");
    assert!(r["next_check_at"].is_i64(), "{r}");
    assert_eq!(
        status_of(&api, &format!("/v1/payments/{pay_id}"))["amount_refunded"],
        300
    );
    fake.fake.settle_refunds(false);
    let settled = until_status(&api, &format!("/v1/refunds/{refund}"), "succeeded");
    assert!(settled["next_check_at"].is_null(), "{settled}");
    assert_eq!(events(&api, "RefundProcessed", refund), 1);
    assert_eq!(
        inbox_rows(&db, tr),
        "2",
        "a delivery after the refund is not swallowed"
    );

    // One that fails at the bank gives its amount back; read back with ?refresh=true too.
    let r = api.post("/v1/refunds", &json!({"payment": pay_id, "amount": 200}));
    let failing = ok(&r, 201).s("id");
    fake.fake.settle_refunds(true);
    until_status(&api, &format!("/v1/refunds/{failing}"), "failed");
    let read = api.get(&format!("/v1/refunds/{failing}?refresh=true"));
    assert_eq!(ok(&read, 200).body["status"], "failed");
    assert_eq!(
        status_of(&api, &format!("/v1/payments/{pay_id}"))["amount_refunded"],
        300
    );
    assert_eq!(events(&api, "RefundFailed", &failing), 1);

    // Declined on the checkout page, with Mollie's reason kept.
    let p = pay(&api, &cust, 500, None);
    let declined = p["id"].as_str().unwrap();
    checkout(
        p["next_action"]["url"].as_str().unwrap(),
        "outcome=failed&reason=insufficient_funds",
    );
    let failed = until_status(&api, &format!("/v1/payments/{declined}"), "failed");
    assert_eq!(failed["failure_code"], "insufficient_funds", "{failed}");
    assert_eq!(
        failed["failure_message"],
        "The payment failed: insufficient funds"
    );

    // Never completed: it expires, with its reason; it can no longer be canceled.
    let p = pay(&api, &cust, 700, None);
    let (late, late_tr) = (
        p["id"].as_str().unwrap(),
        p["provider_id"].as_str().unwrap(),
    );
    fake.fake.expire(late_tr);
    let expired = until_status(&api, &format!("/v1/payments/{late}"), "expired");
    assert_eq!(expired["failure_code"], "expired", "{expired}");
    assert_eq!(events(&api, "PaymentExpired", late), 1);
    let cancel = api.post(&format!("/v1/payments/{late}/cancel"), &json!({}));
    assert_eq!(cancel.status, 409, "{cancel:?}");

    // Canceled while Mollie allows it; an iDEAL payment it does not: Mollie's 422 without a
    // field is a conflict.
    let open = pay(&api, &cust, 800, None);
    let c = api.post(
        &format!("/v1/payments/{}/cancel", open["id"].as_str().unwrap()),
        &json!({}),
    );
    assert_eq!(ok(&c, 200).body["status"], "canceled");
    let ideal = pay(&api, &cust, 800, Some("ideal"));
    let c = api.post(
        &format!("/v1/payments/{}/cancel", ideal["id"].as_str().unwrap()),
        &json!({}),
    );
    assert_eq!((c.status, c.code()), (409, "conflict"), "{c:?}");
    assert!(
        c.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be canceled"),
        "{c:?}"
    );

    // A method Mollie does not know: its 422 names the field.
    let bad = api.post(
        "/v1/payments",
        &json!({"customer": cust, "amount": 100, "currency": "eur", "payment_method": "cheque",
            "return_url": "https://shop.example/back"}),
    );
    assert_eq!((bad.status, bad.param()), (400, "method"), "{bad:?}");
}

#[test]
fn forged_and_unauthenticated_deliveries_store_nothing_and_mollie_retries() {
    let fake = FakeMollie::start();
    let (_s, host, api, db) = mollie_host(&fake);
    let inbox = || {
        db.value("SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[])
            .unwrap()
    };

    // An id Mollie does not know, a body that is not Mollie's: 400, nothing stored.
    for body in ["id=tr_forged0001", "id=ord_123", "{\"id\":\"tr_1\"}", "id="] {
        let (status, answer) = post_thin(&host.addr, body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains("invalid_signature"), "{body}: {answer}");
    }
    assert_eq!(inbox(), "0");

    // Mollie's API is down when the delivery comes: the host cannot authenticate it, says
    // so with a 5xx, stores nothing; Mollie tries again and the delivery lands.
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": "m2", "email": "m2@example.com"}),
    );
    let cust = ok(&c, 201).s("id");
    let p = pay(&api, &cust, 1000, None);
    let (pay_id, tr) = (
        p["id"].as_str().unwrap(),
        p["provider_id"].as_str().unwrap(),
    );
    fake.fake.chaos([Chaos::Status(503)]);
    checkout(p["next_action"]["url"].as_str().unwrap(), "outcome=paid");
    until_status(&api, &format!("/v1/payments/{pay_id}"), "succeeded");
    let tries: Vec<u16> = fake
        .fake
        .deliveries()
        .into_iter()
        .filter(|d| d.payment == tr)
        .map(|d| d.status)
        .collect();
    assert!(
        tries.len() >= 2 && tries[0] >= 500 && *tries.last().unwrap() == 200,
        "{tries:?}"
    );
    assert_eq!(inbox_rows(&db, tr), "1");
}
