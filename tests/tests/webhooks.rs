//! The webhook endpoint and inbox over the real binary: signatures checked by each
//! provider's plugin (valid, invalid, missing, expired, rotated secrets) for mock and stripe;
//! a delivered event syncs the record it names unless the record holds a newer state;
//! duplicates — also 100 at once — are one event; a kill -9 during a burst loses nothing
//! that was acknowledged and applies nothing twice.

use payhost_plugin_api::signature;
use payhost_tests::api::{Api, Resp};
use payhost_tests::db::TestDb;
use payhost_tests::fake_stripe::FakeStripe;
use payhost_tests::*;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn deliver(api: &Api, provider: &str, header: Option<(&str, &str)>, body: &str) -> Resp {
    let headers: Vec<(&str, &str)> = header.into_iter().collect();
    api.send(
        "POST",
        &format!("/webhooks/payments/{provider}"),
        &headers,
        Some(body),
    )
}

fn mock_event(secret: &str, t: i64, id: &str, kind: &str, object: &Value) -> (String, String) {
    payhost_plugin_mock::webhook::signed_event(secret, t, id, kind, object)
}

fn count(db: &TestDb, sql: &str, args: &[&str]) -> usize {
    db.value(sql, args).unwrap().parse().unwrap()
}

const MOCK: &str = "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = [\"whsec_new\", \"whsec_old\"] }\n\
    [[webhook_endpoints]]\nname = \"app\"\nurl = \"http://127.0.0.1:9/down\"\nsecret = \"whsec_app_0123456789abcdef\"\n";

fn mock_host() -> (Scratch, HostProcess, Api, TestDb) {
    mock_host_on(None)
}

/// A host with the mock on `db` (None: SQLite in the scratch folder).
fn mock_host_on(db: Option<TestDb>) -> (Scratch, HostProcess, Api, TestDb) {
    let mut host_lines = "default_provider = \"mock\"\n".to_owned();
    if let Some(db) = &db {
        host_lines.push_str(&db.host_line());
    }
    let s = Scratch::with_host(&[(&mock_so(), "mock.so")], &host_lines, MOCK);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let db = db.unwrap_or_else(|| TestDb::sqlite(s.dir.path()));
    (s, host, api, db)
}

fn open_payment(api: &Api, user: &str) -> (String, String) {
    let p = api.post(
        "/v1/payments",
        &json!({"user_id": user, "email": format!("{user}@example.com"), "amount": 1500, "currency": "usd"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    (p.s("id"), p.s("provider_id"))
}

#[test]
fn mock_webhooks_are_verified_stored_once_and_synced() {
    let (s, host, api, db) = mock_host();
    let (pay, provider_pay) = open_payment(&api, "w1");
    let object =
        json!({"id": provider_pay, "amount": 1500, "currency": "usd", "status": "succeeded"});
    let hdr = "X-Webhook-Signature";

    // Signed with the old secret of a rotation: accepted, stored, processed.
    let (body, sig) = mock_event("whsec_old", now(), "evt_m1", "payment.succeeded", &object);
    let ok = deliver(&api, "mock", Some((hdr, &sig)), &body);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body["duplicate"], false);
    eventually("the payment synced", || {
        db.value("SELECT status FROM payments WHERE id = $1", &[&pay])
            .as_deref()
            == Some("succeeded")
    });
    let again = deliver(&api, "mock", Some((hdr, &sig)), &body);
    assert_eq!(
        (again.status, again.body["duplicate"].clone()),
        (200, json!(true))
    );
    let (body2, sig2) = mock_event("whsec_new", now(), "evt_m2", "payment.succeeded", &object);
    assert_eq!(
        deliver(&api, "mock", Some((hdr, &sig2)), &body2).status,
        200,
        "the new secret too"
    );
    // A provider's event can be larger than an API request (64 KiB here): a signed 200 KB
    // event is taken; past the webhook limit (1 MiB) it is a 413 in the API's error shape.
    let big = json!({"id": provider_pay, "amount": 1500, "currency": "usd", "status": "succeeded",
                     "description": "x".repeat(200_000)});
    let (big_body, big_sig) = mock_event("whsec_new", now(), "evt_big", "payment.succeeded", &big);
    let taken = deliver(&api, "mock", Some((hdr, &big_sig)), &big_body);
    assert_eq!(taken.status, 200, "{}", taken.body);
    let huge = json!({"id": provider_pay, "description": "x".repeat(1_100_000)});
    let (huge_body, huge_sig) =
        mock_event("whsec_new", now(), "evt_huge", "payment.succeeded", &huge);
    let refused = deliver(&api, "mock", Some((hdr, &huge_sig)), &huge_body);
    assert_eq!(
        (refused.status, refused.code()),
        (413, "body_too_large"),
        "{}",
        refused.body
    );
    let api_big = api.post(
        "/v1/customers",
        &json!({"user_id": "big", "email": "a@b.co", "name": "x".repeat(70_000)}),
    );
    assert_eq!(api_big.status, 413, "API requests keep their own limit");

    // The media type is the provider's business (curl -d sends a form type): only the
    // signature over the raw bytes decides.
    let (body3, sig3) = mock_event("whsec_new", now(), "evt_m3", "payment.succeeded", &object);
    let form_typed = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[
            (hdr, sig3.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(&body3),
    );
    assert_eq!(form_typed.status, 200, "{form_typed:?}");

    // Refusals: nothing stored.
    let (bad_body, bad_sig) = mock_event(
        "whsec_wrong",
        now(),
        "evt_bad",
        "payment.succeeded",
        &object,
    );
    let wrong = deliver(&api, "mock", Some((hdr, &bad_sig)), &bad_body);
    assert_eq!(
        (wrong.status, wrong.code()),
        (400, "invalid_signature"),
        "{wrong:?}"
    );
    let missing = deliver(&api, "mock", None, &bad_body);
    assert_eq!((missing.status, missing.code()), (400, "invalid_signature"));
    let (old_body, old_sig) = mock_event(
        "whsec_new",
        now() - 400,
        "evt_old",
        "payment.succeeded",
        &object,
    );
    let expired = deliver(&api, "mock", Some((hdr, &old_sig)), &old_body);
    assert_eq!(expired.status, 400);
    assert!(
        expired.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tolerance"),
        "{expired:?}"
    );
    let tampered = deliver(&api, "mock", Some((hdr, &sig)), &body.replace("1500", "1"));
    assert_eq!(tampered.status, 400);
    assert_eq!(
        deliver(&api, "paypal", Some((hdr, &sig)), &body).status,
        404
    );
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[]),
        4
    );

    // An older failure arriving late does not overwrite the newer success.
    let (late, late_sig) = mock_event(
        "whsec_new",
        now() - 120,
        "evt_late",
        "payment.failed",
        &json!({"id": provider_pay, "status": "failed", "failure_message": "declined"}),
    );
    assert_eq!(
        deliver(&api, "mock", Some((hdr, &late_sig)), &late).status,
        200
    );
    eventually("the late event processed", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status = 'processed'",
            &[],
        ) == 5
    });
    assert_eq!(
        db.value("SELECT status FROM payments WHERE id = $1", &[&pay])
            .as_deref(),
        Some("succeeded")
    );
    let succeeded = api.get(&format!("/v1/events?type=PaymentSucceeded&object_id={pay}"));
    assert_eq!(
        succeeded.body["data"].as_array().unwrap().len(),
        1,
        "one fact, one event"
    );

    // A payment created at the provider directly, for a customer payhost knows: adopted.
    let customer = api.get(&format!("/v1/payments/{pay}")).body["customer"]
        .as_str()
        .unwrap()
        .to_owned();
    let provider_customer = api
        .get(&format!("/v1/customers/{customer}"))
        .s("provider_id");
    let external = json!({"id": "mock_pi_external", "customer": provider_customer, "amount": 4000, "currency": "usd", "status": "succeeded"});
    let (ext_body, ext_sig) = mock_event(
        "whsec_new",
        now(),
        "evt_ext",
        "payment.succeeded",
        &external,
    );
    assert_eq!(
        deliver(&api, "mock", Some((hdr, &ext_sig)), &ext_body).status,
        200
    );
    eventually("the external payment recorded", || {
        db.rows(
            "SELECT status, customer_id FROM payments WHERE provider_id = 'mock_pi_external'",
            &[],
        ) == vec![vec![Some("succeeded".to_owned()), Some(customer.clone())]]
    });
    let adopted = db
        .value(
            "SELECT id FROM payments WHERE provider_id = 'mock_pi_external'",
            &[],
        )
        .unwrap();
    let ev = api.get(&format!(
        "/v1/events?type=PaymentSucceeded&object_id={adopted}"
    ));
    assert_eq!(ev.body["data"].as_array().unwrap().len(), 1, "{ev:?}");

    // An operator replays a stored webhook: processed again, its effects not duplicated.
    let (code, out, err) = s.payhost(&["events", "replay", "evt_m1"]);
    assert_eq!(code, 0, "{out}{err}");
    eventually("replayed", || {
        db.value(
            "SELECT CAST(attempts AS TEXT) FROM webhook_inbox WHERE event_id = 'evt_m1'",
            &[],
        )
        .as_deref()
            == Some("1")
            && db
                .value(
                    "SELECT status FROM webhook_inbox WHERE event_id = 'evt_m1'",
                    &[],
                )
                .as_deref()
                == Some("processed")
    });
    let succeeded = api.get(&format!("/v1/events?type=PaymentSucceeded&object_id={pay}"));
    assert_eq!(
        succeeded.body["data"].as_array().unwrap().len(),
        1,
        "still one event"
    );
    let (code, _, err) = s.payhost(&["events", "replay", "evt_nothing"]);
    assert_eq!(code, 1);
    assert!(err.contains("evt_nothing"), "{err}");
    drop(host);
}

/// A thin event (contract 2.2), as Mollie sends them: an unsigned form body that names a
/// payment, authenticated by the plugin reading it. A forged id is refused with nothing
/// stored; the same state delivered twice is one delivery; after a refund the same id is
/// news again, not swallowed as a duplicate; the mapping gets what was read.
#[test]
fn thin_events_are_authenticated_by_a_read_and_deduplicated_per_state() {
    let (_s, _host, api, db) = mock_host();
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": "thin", "email": "thin@example.com"}),
    );
    assert_eq!(c.status, 201, "{c:?}");
    let p = api.post(
        "/v1/payments",
        &json!({"customer": c.s("id"), "amount": 3000, "currency": "eur",
                "payment_method": "pm_card_visa"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    let (pay, provider_pay) = (p.s("id"), p.s("provider_id"));
    let thin = |id: &str| {
        api.send(
            "POST",
            "/webhooks/payments/mock",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(&format!("id={id}")),
        )
    };
    let inbox = || count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[]);

    let forged = thin("mock_pi_never_made");
    assert_eq!(
        (forged.status, forged.code()),
        (400, "invalid_signature"),
        "{forged:?}"
    );
    assert_eq!(inbox(), 0, "a forged thin event stores nothing");

    let first = thin(&provider_pay);
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["duplicate"], false);
    let again = thin(&provider_pay);
    assert_eq!(
        again.body["duplicate"], true,
        "the same state twice: {again:?}"
    );

    let r = api.post("/v1/refunds", &json!({"payment": pay, "amount": 1000}));
    assert_eq!(r.status, 201, "{r:?}");
    let after_refund = thin(&provider_pay);
    assert_eq!(
        after_refund.body["duplicate"], false,
        "a new state of the same payment is news: {after_refund:?}"
    );
    assert_eq!(inbox(), 2);
    // Both were mapped from what the plugin read (without it the mapping refuses), and
    // each keeps the provider's own id beside its key.
    eventually("both thin deliveries processed", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox \
             WHERE status = 'processed' AND event_ref = $1 AND fetched IS NOT NULL",
            &[&provider_pay],
        ) == 2
    });
    let events = api.get(&format!("/v1/events?type=PaymentSucceeded&object_id={pay}"));
    assert_eq!(
        events.body["data"].as_array().unwrap().len(),
        1,
        "{events:?}"
    );
}

#[test]
fn a_hundred_copies_at_once_are_one_event() {
    hundred_copies(None);
}

#[test]
fn a_hundred_copies_at_once_are_one_event_on_postgres() {
    let Some(pg) = TestDb::postgres("webhooks") else {
        return;
    };
    hundred_copies(Some(pg));
}

/// 100 concurrent deliveries of one event: one inbox row, one domain event, one receipt,
/// one delivery owed to the application's endpoint.
fn hundred_copies(db: Option<TestDb>) {
    let (_s, _host, api, db) = mock_host_on(db);
    let (pay, provider_pay) = open_payment(&api, "w2");
    let object =
        json!({"id": provider_pay, "amount": 1500, "currency": "usd", "status": "succeeded"});
    let (body, sig) = mock_event(
        "whsec_new",
        now(),
        "evt_storm",
        "payment.succeeded",
        &object,
    );
    let answers: Vec<Resp> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                scope.spawn(|| deliver(&api, "mock", Some(("X-Webhook-Signature", &sig)), &body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|a| a.status == 200),
        "every copy is acknowledged"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.body["duplicate"] == false)
            .count(),
        1
    );
    eventually("processed", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status = 'processed'",
            &[],
        ) == 1
    });
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[]),
        1
    );
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE type = 'PaymentSucceeded' AND object_id = $1", &[&pay]),
        1
    );
    // One event: one receipt, one delivery to the application's endpoint.
    let event = db
        .value(
            "SELECT id FROM events WHERE type = 'PaymentSucceeded' AND object_id = $1",
            &[&pay],
        )
        .unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE event_id = $1 AND handler = 'webhook'",
            &[&event]
        ),
        1
    );
    assert_eq!(count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE event_id = $1 AND handler = 'receipt_email'", &[&event]), 1);
    let mail = _s.dir.path().join("data").join("mail");
    // Every email row done (a message is written before its row is): what is in the folder
    // is all there will be.
    eventually("the receipt, and no email work left", || {
        std::fs::read_dir(&mail).map(|d| d.count()).unwrap_or(0) >= 1
            && count(
                &db,
                "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE handler LIKE '%email' AND status <> 'done'",
                &[],
            ) == 0
    });
    assert_eq!(std::fs::read_dir(&mail).unwrap().count(), 1, "one email");
}

#[test]
fn stripe_webhooks_are_verified_and_synced() {
    let fake = FakeStripe::start();
    let providers = format!(
        "[providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
         config = {{ api_key = \"{}\", webhook_secret = [\"whsec_test_secret\", \"whsec_rotated_secret\"], api_base = \"{}\" }}\n",
        payhost_tests::fake_stripe::API_KEY,
        fake.base
    );
    let s = Scratch::with_host(
        &[(&stripe_so(), "stripe.so")],
        "default_provider = \"stripe\"\n",
        &providers,
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let db = TestDb::sqlite(s.dir.path());
    let (pay, pi) = open_payment(&api, "s1");
    let body = json!({"id": "evt_1S", "object": "event", "type": "payment_intent.succeeded", "created": now(),
        "data": {"object": {"id": pi, "object": "payment_intent", "amount": 1500, "currency": "usd", "status": "succeeded", "customer": null}}})
    .to_string();
    // Either secret of a rotation; Stripe signs each retry afresh: the second is a duplicate.
    for (secret, duplicate) in [("whsec_rotated_secret", false), ("whsec_test_secret", true)] {
        let header = signature::header(&[secret], now(), body.as_bytes());
        let r = deliver(&api, "stripe", Some(("Stripe-Signature", &header)), &body);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            (r.body["event_id"].as_str(), r.body["duplicate"].as_bool()),
            (Some("evt_1S"), Some(duplicate))
        );
    }
    eventually("the payment synced", || {
        db.value("SELECT status FROM payments WHERE id = $1", &[&pay])
            .as_deref()
            == Some("succeeded")
    });
    let wrong = signature::header(&["whsec_other"], now(), body.as_bytes());
    assert_eq!(
        deliver(&api, "stripe", Some(("Stripe-Signature", &wrong)), &body).code(),
        "invalid_signature"
    );
    let stale = signature::header(&["whsec_test_secret"], now() - 301, body.as_bytes());
    assert_eq!(
        deliver(&api, "stripe", Some(("Stripe-Signature", &stale)), &body).status,
        400
    );
    let v0 = format!(
        "t={},v0={}",
        now(),
        signature::compute("whsec_test_secret", now(), body.as_bytes())
    );
    assert_eq!(
        deliver(&api, "stripe", Some(("Stripe-Signature", &v0)), &body).status,
        400,
        "v0 never counts"
    );
    // A new event whose delivery is refused is not stored: nothing in the inbox, no event,
    // the payment untouched (each refusal tried on an event id payhost has not seen).
    let forged = json!({"id": "evt_forged_S", "object": "event", "type": "payment_intent.canceled", "created": now(), "data": {"object": {"id": pi, "object": "payment_intent", "status": "canceled", "amount": 1500, "currency": "usd"}}}).to_string();
    let sign = |secret: &str, t: i64| signature::header(&[secret], t, forged.as_bytes());
    for (what, header) in [
        ("another secret", Some(sign("whsec_other", now()))),
        ("too old", Some(sign("whsec_test_secret", now() - 301))),
        ("garbled", Some("t=abc,v1=zz".to_owned())),
        ("unsigned", None),
    ] {
        let r = deliver(
            &api,
            "stripe",
            header.as_deref().map(|h| ("Stripe-Signature", h)),
            &forged,
        );
        assert_eq!(r.status, 400, "{what}: {r:?}");
    }
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE event_id = 'evt_forged_S'",
            &[],
        ),
        0,
        "a refused delivery is not stored"
    );
    assert_eq!(
        db.value("SELECT status FROM payments WHERE id = $1", &[&pay])
            .as_deref(),
        Some("succeeded"),
        "the forged cancel changed nothing"
    );
    // An event type payhost has no domain event for: acknowledged and recorded.
    let other = json!({"id": "evt_2S", "object": "event", "type": "customer.created", "created": now(), "data": {"object": {"id": "cus_x"}}}).to_string();
    let header = signature::header(&["whsec_test_secret"], now(), other.as_bytes());
    assert_eq!(
        deliver(&api, "stripe", Some(("Stripe-Signature", &header)), &other).status,
        200
    );
    eventually("both processed", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status = 'processed'",
            &[],
        ) == 2
    });
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[]),
        2,
        "only the two signed right were stored"
    );
}

#[test]
fn stripe_thin_events_update_records_like_snapshot_events() {
    let fake = FakeStripe::start();
    let providers = format!(
        "[providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
         config = {{ api_key = \"{}\", webhook_secret = \"whsec_thin\", api_base = \"{}\" }}\n",
        payhost_tests::fake_stripe::API_KEY,
        fake.base
    );
    let s = Scratch::with_host(
        &[(&stripe_so(), "stripe.so")],
        "default_provider = \"stripe\"\n",
        &providers,
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let db = TestDb::sqlite(s.dir.path());
    let stripe = |path: &str, form: &str| {
        let key = format!("Bearer {}", payhost_tests::fake_stripe::API_KEY);
        let (status, answer) = post_form(
            &format!("{}{path}", fake.base),
            &[("Authorization", &key)],
            form,
        )
        .unwrap();
        assert_eq!(status, 200, "{path}: {answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        serde_json::from_str::<Value>(body).unwrap()
    };
    // A thin event notification: only the object's reference, signed like any event.
    let thin = |id: &str, kind: &str, collection: &str, object: &str| {
        let body = json!({"id": id, "object": "v2.core.event", "type": kind, "livemode": false,
            "created": payhost_plugin_kit::time::to_rfc3339(now()),
            "related_object": {"id": object, "type": kind, "url": format!("/v1/{collection}/{object}")}})
        .to_string();
        let header = signature::header(&["whsec_thin"], now(), body.as_bytes());
        deliver(&api, "stripe", Some(("Stripe-Signature", &header)), &body)
    };

    // The buyer confirms at Stripe (Stripe.js): the thin event tells payhost, which reads
    // the payment intent and syncs it as a snapshot event would.
    let (pay, pi) = open_payment(&api, "thin1");
    stripe(
        &format!("/v1/payment_intents/{pi}/confirm"),
        "payment_method=pm_card_visa",
    );
    let r = thin(
        "evt_thin_1",
        "v1.payment_intent.succeeded",
        "payment_intents",
        &pi,
    );
    assert_eq!(
        (r.status, r.body["duplicate"].as_bool()),
        (200, Some(false)),
        "{r:?}"
    );
    eventually("the payment synced from the thin event", || {
        db.value("SELECT status FROM payments WHERE id = $1", &[&pay])
            .as_deref()
            == Some("succeeded")
    });
    let events = api.get(&format!("/v1/events?type=PaymentSucceeded&object_id={pay}"));
    assert_eq!(
        events.body["data"].as_array().unwrap().len(),
        1,
        "{events:?}"
    );
    // Stored with what was read; the same event again is a duplicate.
    let fetched = db
        .value(
            "SELECT fetched FROM webhook_inbox WHERE event_id = 'evt_thin_1'",
            &[],
        )
        .unwrap();
    assert!(
        fetched.contains(&pi) && fetched.contains("succeeded"),
        "{fetched}"
    );
    let again = thin(
        "evt_thin_1",
        "v1.payment_intent.succeeded",
        "payment_intents",
        &pi,
    );
    assert_eq!(again.body["duplicate"], true, "{again:?}");

    // A refund made in Stripe's dashboard, told thin: adopted, the payment's refunded
    // amount follows.
    let refund = stripe("/v1/refunds", &format!("payment_intent={pi}&amount=500"));
    let re = refund["id"].as_str().unwrap();
    thin("evt_thin_2", "v1.refund.created", "refunds", re);
    eventually("the dashboard's refund recorded", || {
        db.value(
            "SELECT CAST(amount_refunded AS TEXT) FROM payments WHERE id = $1",
            &[&pay],
        )
        .as_deref()
            == Some("500")
    });
    assert_eq!(
        db.value("SELECT status FROM refunds WHERE provider_id = $1", &[re])
            .as_deref(),
        Some("succeeded")
    );

    // Signed, but naming what payhost never reads, or what Stripe does not have: refused,
    // nothing stored.
    for (id, collection, object) in [
        ("evt_thin_3", "accounts", "acct_1"),
        ("evt_thin_4", "payment_intents", "pi_nothere"),
    ] {
        let r = thin(id, "v1.payment_intent.succeeded", collection, object);
        assert_eq!((r.status, r.param()), (400, "related_object"), "{r:?}");
    }
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[]),
        2,
        "only the two thin events that name real objects are stored"
    );
}

#[test]
fn kill_9_during_a_burst_loses_nothing_acknowledged_and_applies_nothing_twice() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        MOCK,
    );
    let host = s.serve();
    let addr = host.addr.clone();
    let db = TestDb::sqlite(s.dir.path());
    let acked = std::sync::Mutex::new(Vec::new());
    // Answers other than 200 before the kill: each is a failure, not a quiet end.
    let failures = std::sync::Mutex::new(Vec::new());
    let killed = std::sync::atomic::AtomicBool::new(false);
    let pending_at_kill = std::thread::scope(|scope| {
        for w in 0..8 {
            let (addr, acked, failures, killed) = (addr.clone(), &acked, &failures, &killed);
            scope.spawn(move || {
                let api = Api::new(&addr, API_KEY);
                for n in 0..5000 {
                    let id = format!("evt_burst_{w}_{n}");
                    let object = json!({"id": format!("mock_pi_burst_{w}_{n}"), "amount": 100, "currency": "usd", "status": "succeeded"});
                    let (body, sig) = mock_event("whsec_new", now(), &id, "payment.succeeded", &object);
                    let sent = std::panic::catch_unwind(|| deliver(&api, "mock", Some(("X-Webhook-Signature", &sig)), &body));
                    match sent {
                        Ok(r) if r.status == 200 => acked.lock().unwrap().push(id),
                        // The host died under us: this worker ends.
                        _ if killed.load(std::sync::atomic::Ordering::SeqCst) => break,
                        Ok(r) => {
                            failures.lock().unwrap().push(format!("{id}: {r:?}"));
                            break;
                        }
                        Err(_) => {
                            failures.lock().unwrap().push(format!("{id}: no answer before the kill"));
                            break;
                        }
                    }
                }
            });
        }
        // Killed while stored webhooks wait for processing (not after the burst drained).
        eventually("a backlog of stored webhooks", || {
            acked.lock().unwrap().len() > 100
                && count(
                    &db,
                    "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status <> 'processed'",
                    &[],
                ) >= 20
        });
        killed.store(true, std::sync::atomic::Ordering::SeqCst);
        host.kill9();
        // The host is dead: what the database holds now is what the kill left.
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status <> 'processed'",
            &[],
        )
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "refused before the kill: {failures:?}");
    let acked = acked.into_inner().unwrap();
    assert!(
        acked.len() > 100,
        "the burst was acknowledged before the kill: {}",
        acked.len()
    );
    assert!(
        pending_at_kill > 0,
        "stored webhooks were still waiting at the kill"
    );
    eprintln!(
        "killed with {} acknowledged and {pending_at_kill} stored but not processed",
        acked.len()
    );

    let host = s.serve();
    eventually("every stored event processed after the restart", || {
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status <> 'processed'",
            &[],
        ) == 0
    });
    for id in &acked {
        assert_eq!(
            db.value(
                "SELECT status FROM webhook_inbox WHERE event_id = $1",
                &[id]
            )
            .as_deref(),
            Some("processed"),
            "{id} was acknowledged"
        );
    }
    let inbox = count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[]);
    let events = count(
        &db,
        "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE type = 'PaymentSucceeded'",
        &[],
    );
    assert_eq!(
        events, inbox,
        "one domain event per stored webhook, none twice"
    );
    // Each event owes the application one signed webhook: staged once, never twice.
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE handler = 'webhook'",
            &[],
        ),
        events,
        "one outgoing webhook per event"
    );
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM (SELECT event_id FROM outbox \
             GROUP BY event_id, handler HAVING COUNT(*) > 1) AS twice",
            &[],
        ),
        0,
        "no event's work staged twice"
    );
    drop(host);
}

/// A provider instance with one call slot, mapping slowly: while the processor maps one
/// stored webhook, the others of its round find no slot free. That is not their fault: they are
/// mapped in a later round without an attempt spent (before, each spent one and waited
/// out a backoff with the error on its row).
#[test]
fn a_webhook_waiting_for_a_call_slot_spends_no_attempt() {
    let s = Scratch::new(
        &[(&misbehaving_so(), "bad.so")],
        "[providers.bad]\nplugin = \"misbehaving\"\nmax_concurrent_calls = 1\n\
         config = { map_ms = 300 }\n",
    );
    // Four deliveries stored while the host was down: its first round maps them together.
    let (code, log) = s.serve().terminate();
    assert_eq!(code, 0, "{log}");
    let db = TestDb::sqlite(s.dir.path());
    for n in 0..4 {
        db.execute(&format!(
            "INSERT INTO webhook_inbox (id, provider, event_id, event_type, payload, created, \
             received_at, status, attempts, next_attempt_at) VALUES ('whin_slot_{n}', 'bad', \
             'evt_slot_{n}', 'misbehaving.event', 'evt_slot_{n}', 1, 1, 'pending', 0, 0)"
        ));
    }
    let _host = s.serve();
    eventually("every webhook processed", || {
        db.value(
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox WHERE status = 'processed'",
            &[],
        )
        .as_deref()
            == Some("4")
    });
    let attempts = db.rows(
        "SELECT event_id, CAST(attempts AS TEXT) FROM webhook_inbox ORDER BY event_id",
        &[],
    );
    for row in &attempts {
        assert_eq!(
            row[1].as_deref(),
            Some("1"),
            "processed at its first attempt: {attempts:?}"
        );
    }
}
