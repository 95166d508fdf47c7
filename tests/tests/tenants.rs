//! API keys bound to tenants and scopes, over the real binary: a tenant-bound key sees and
//! touches only its tenant's records (the others are 404), its idempotency keys never meet
//! another tenant's, its event feed is its own; an unknown `X-Tenant-Id` is refused; a key
//! stored as its SHA-256 works, two keys of one tenant are valid at once (rotation); a
//! read-only key cannot write; events born from a provider's webhook carry the tenant of the
//! record they are about. On SQLite, and on PostgreSQL when it is configured.

use payhost_tests::api::{Api, Resp};
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec_tenants";
const ACME: &str = "sk_acme_current_2026";
const ACME_PREVIOUS: &str = "sk_acme_previous_2025";
const ACME_READER: &str = "sk_acme_reports_only";
const GLOBEX: &str = "sk_globex_key_2026";

fn scratch(db: Option<&TestDb>) -> Scratch {
    let previous = hex::encode(Sha256::digest(ACME_PREVIOUS.as_bytes()));
    let keys = format!(
        "[\n  \"{API_KEY}\",\n\
         {{ name = \"acme-2026\", key = \"{ACME}\", tenant = \"acme\" }},\n\
         {{ name = \"acme-2025\", sha256 = \"{previous}\", tenant = \"acme\" }},\n\
         {{ name = \"acme-reports\", key = \"{ACME_READER}\", tenant = \"acme\", scopes = [\"read\"] }},\n\
         {{ name = \"globex\", key = \"{GLOBEX}\", tenant = \"globex\" }},\n]"
    );
    let mut host = "default_provider = \"mock\"\n".to_owned();
    if let Some(db) = db {
        host.push_str(&db.host_line());
    }
    Scratch::with_api_keys(
        &[(&mock_so(), "mock.so")],
        &keys,
        &host,
        &format!(
            "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{SECRET}\" }}\n\
             [tenants]\ninitech = \"mock\"\n"
        ),
    )
}

fn ok(r: &Resp, status: u16) -> &Resp {
    assert_eq!(r.status, status, "{r:?}");
    r
}

fn refused(r: &Resp, status: u16, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{r:?}");
}

fn ids(r: &Resp) -> Vec<String> {
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

fn payment_body(customer: &str) -> Value {
    json!({"customer": customer, "amount": 1200, "currency": "usd", "payment_method": "pm_card_visa"})
}

fn run(db: &TestDb, s: &Scratch) {
    let host = s.serve();
    let acme = Api::new(&host.addr, ACME);
    let acme_previous = Api::new(&host.addr, ACME_PREVIOUS);
    let reader = Api::new(&host.addr, ACME_READER);
    let globex = Api::new(&host.addr, GLOBEX);
    let backend = Api::new(&host.addr, API_KEY);

    // acme's records, made with its key and no X-Tenant-Id: they are acme's.
    let c = acme.post(
        "/v1/customers",
        &json!({"user_id": "wile", "email": "wile@example.com"}),
    );
    let cust = ok(&c, 201).s("id");
    assert_eq!(c.body["tenant"], "acme");
    let p = acme.post_idem("/v1/payments", "order-1", &payment_body(&cust));
    let pay = ok(&p, 201).s("id");

    // Rotation: the previous key, held as its SHA-256, is still acme's; its retry of the
    // same request replays acme's answer.
    ok(&acme_previous.get(&format!("/v1/payments/{pay}")), 200);
    let again = acme_previous.post_idem("/v1/payments", "order-1", &payment_body(&cust));
    ok(&again, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.s("id"), pay);

    // globex cannot see, refund or replay acme's records: they do not exist for it.
    refused(
        &globex.get(&format!("/v1/payments/{pay}")),
        404,
        "not_found",
    );
    refused(
        &globex.get(&format!("/v1/customers/{cust}")),
        404,
        "not_found",
    );
    refused(
        &globex.post("/v1/refunds", &json!({"payment": pay})),
        404,
        "not_found",
    );
    refused(
        &globex.post(&format!("/v1/payments/{pay}/cancel"), &json!({})),
        404,
        "not_found",
    );
    // Nor any other of acme's records: its refund, subscription, invoice, saved card and a
    // payment awaiting capture are 404 for globex, for reads and for every change.
    let rfnd = ok(
        &acme.post("/v1/refunds", &json!({"payment": pay, "amount": 100})),
        201,
    )
    .s("id");
    let pm = ok(
        &acme.post(
            &format!("/v1/customers/{cust}/payment_methods"),
            &json!({"payment_method": "pm_card_visa"}),
        ),
        200,
    )
    .s("id");
    ok(
        &acme.post(
            &format!("/v1/customers/{cust}/default_payment_method"),
            &json!({"payment_method": pm}),
        ),
        200,
    );
    let sub = ok(
        &acme.post(
            "/v1/subscriptions",
            &json!({"customer": cust, "price": "price_basic"}),
        ),
        201,
    )
    .s("id");
    eventually("acme's subscription invoiced", || {
        !ids(&acme.get(&format!("/v1/customers/{cust}/invoices"))).is_empty()
    });
    let inv = ids(&acme.get(&format!("/v1/customers/{cust}/invoices")))[0].clone();
    let held = acme.post(
        "/v1/payments",
        &json!({"customer": cust, "amount": 700, "currency": "usd",
                "payment_method": "pm_card_visa", "capture_method": "manual"}),
    );
    let held_status = ok(&held, 201).s("status");
    let held = held.s("id");
    for (method, path, body) in [
        ("GET", format!("/v1/refunds/{rfnd}"), None),
        ("GET", format!("/v1/subscriptions/{sub}"), None),
        (
            "POST",
            format!("/v1/subscriptions/{sub}/cancel"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/v1/subscriptions/{sub}/price"),
            Some(json!({"price": "price_pro"})),
        ),
        (
            "POST",
            format!("/v1/subscriptions/{sub}/reactivate"),
            Some(json!({})),
        ),
        ("GET", format!("/v1/invoices/{inv}"), None),
        ("GET", format!("/v1/customers/{cust}/invoices"), None),
        ("GET", format!("/v1/customers/{cust}/payment_methods"), None),
        (
            "POST",
            format!("/v1/customers/{cust}/payment_methods"),
            Some(json!({"payment_method": "pm_card_visa"})),
        ),
        (
            "POST",
            format!("/v1/customers/{cust}/default_payment_method"),
            Some(json!({"payment_method": pm})),
        ),
        (
            "DELETE",
            format!("/v1/customers/{cust}/payment_methods/{pm}"),
            None,
        ),
        (
            "POST",
            format!("/v1/payments/{held}/capture"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/v1/payments/{held}/confirm"),
            Some(json!({"payment_method": "pm_card_visa"})),
        ),
        ("DELETE", format!("/v1/customers/{cust}"), None),
    ] {
        let body = body.map(|b| b.to_string());
        let r = globex.send(method, &path, &[], body.as_deref());
        assert_eq!(
            (r.status, r.code()),
            (404, "not_found"),
            "globex {method} {path}: {r:?}"
        );
    }
    for list in ["/v1/refunds", "/v1/subscriptions", "/v1/invoices"] {
        assert!(ids(&globex.get(list)).is_empty(), "globex's {list}");
        assert!(!ids(&acme.get(list)).is_empty(), "acme's {list}");
    }
    // ...and acme's records are as acme left them.
    assert_eq!(
        ok(&acme.get(&format!("/v1/subscriptions/{sub}")), 200).s("status"),
        "active"
    );
    assert_eq!(
        ok(&acme.get(&format!("/v1/payments/{held}")), 200).s("status"),
        held_status
    );
    assert_eq!(
        ok(&acme.get(&format!("/v1/customers/{cust}")), 200).body["default_payment_method"],
        json!(pm)
    );
    let replay = globex.post_idem("/v1/payments", "order-1", &payment_body(&cust));
    assert_eq!(replay.header("idempotent-replayed"), None, "{replay:?}");
    refused(&replay, 404, "not_found");
    assert!(ids(&globex.get("/v1/payments")).is_empty());
    assert!(ids(&globex.get("/v1/customers")).is_empty());
    assert!(ids(&globex.get("/v1/events")).is_empty());
    // Nor by naming acme.
    let named = globex
        .for_tenant("acme")
        .get(&format!("/v1/payments/{pay}"));
    refused(&named, 403, "tenant_forbidden");
    assert_eq!(named.param(), "X-Tenant-Id");
    // globex's own idempotency key of the same name is its own.
    let gc = globex.post(
        "/v1/customers",
        &json!({"user_id": "wile", "email": "w@globex.example"}),
    );
    let gcust = ok(&gc, 201).s("id");
    assert_ne!(gcust, cust, "one user id, two tenants, two customers");
    let gp = globex.post_idem("/v1/payments", "order-1", &payment_body(&gcust));
    assert_eq!(gp.header("idempotent-replayed"), None);
    ok(&gp, 201);
    assert_eq!(ids(&globex.get("/v1/payments")), vec![gp.s("id")]);

    // A read-only key reads and cannot write.
    ok(&reader.get(&format!("/v1/payments/{pay}")), 200);
    let write = reader.post("/v1/refunds", &json!({"payment": pay}));
    refused(&write, 403, "insufficient_scope");
    assert!(write.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("acme-reports"));

    // Keys nobody configured, and tenants nobody configured.
    refused(
        &Api::new(&host.addr, "sk_acme_current_2027").get("/v1/payments"),
        401,
        "unauthorized",
    );
    let unknown = backend.for_tenant("umbrella").get("/v1/payments");
    refused(&unknown, 400, "unknown_tenant");
    assert_eq!(unknown.param(), "X-Tenant-Id");
    refused(
        &globex.for_tenant("umbrella").get("/v1/payments"),
        403,
        "tenant_forbidden",
    );
    // A provider the request names must exist, even where the tenant's own provider is
    // the one used (it was taken silently).
    let ghost = backend.for_tenant("initech").post(
        "/v1/customers",
        &json!({"user_id": "ghostly", "email": "g@example.com", "provider": "nope"}),
    );
    refused(&ghost, 400, "invalid_request");
    assert_eq!(ghost.param(), "provider", "{ghost:?}");
    // A configured tenant with no key of its own: the backend's key acts for it.
    ok(&backend.for_tenant("initech").get("/v1/payments"), 200);
    assert!(ids(&backend.for_tenant("initech").get("/v1/payments")).is_empty());
    // The backend's key without a tenant sees every tenant; naming one, only that one's.
    // (acme's: its payment, the one awaiting capture, its subscription's first; globex's)
    assert_eq!(ids(&backend.get("/v1/payments")).len(), 4);
    let acme_payments = ids(&backend.for_tenant("acme").get("/v1/payments"));
    assert_eq!(acme_payments, ids(&acme.get("/v1/payments")));
    assert!(
        acme_payments.contains(&pay) && acme_payments.len() == 3,
        "{acme_payments:?}"
    );

    // A refund made at the provider reaches payhost as a webhook, with no tenant on the
    // request: its events carry the tenant of the payment it is about.
    let provider_pay = p.s("provider_id");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let refund = json!({"id": "mock_re_dashboard", "payment": provider_pay, "amount": 200, "currency": "usd"});
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        SECRET,
        now,
        "evt_tenant_refund",
        "refund.succeeded",
        &refund,
    );
    ok(
        &backend.send(
            "POST",
            "/webhooks/payments/mock",
            &[("X-Webhook-Signature", &sig)],
            Some(&body),
        ),
        200,
    );
    // (acme's feed also holds the refund made through the API above: this one is found by
    // the provider's refund id, not by being the only one.)
    let dashboard = |feed: &Resp| -> Vec<Value> {
        feed.body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["provider_object_id"] == "mock_re_dashboard")
            .cloned()
            .collect()
    };
    eventually("the webhook's refund event in acme's feed", || {
        !dashboard(&acme.get("/v1/events?type=RefundProcessed")).is_empty()
    });
    let feed = acme.get("/v1/events?type=RefundProcessed");
    let found = dashboard(&feed);
    assert_eq!(found.len(), 1, "{feed:?}");
    assert_eq!(found[0]["tenant"], "acme", "{feed:?}");
    assert_eq!(
        ids(&feed).len(),
        2,
        "the API's refund and the webhook's: {feed:?}"
    );
    assert!(ids(&globex.get("/v1/events?type=RefundProcessed")).is_empty());
    let untenanted = db.value(
        "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE tenant IS NULL",
        &[],
    );
    assert_eq!(
        untenanted.as_deref(),
        Some("0"),
        "every event is some tenant's"
    );
}

#[test]
fn tenant_bound_keys_see_and_touch_only_their_tenant_sqlite() {
    let s = scratch(None);
    let db = TestDb::sqlite(s.dir.path());
    run(&db, &s);
}

#[test]
fn tenant_bound_keys_see_and_touch_only_their_tenant_postgres() {
    let Some(db) = TestDb::postgres("tenants") else {
        return;
    };
    let s = scratch(Some(&db));
    run(&db, &s);
}

#[test]
fn a_malformed_key_entry_is_named() {
    let s = Scratch::with_api_keys(
        &[(&mock_so(), "mock.so")],
        "[{ name = \"acme\", sha256 = \"not-hex\", tenant = \"acme\" }]",
        "",
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_x_123\" }\n",
    );
    let (code, _, err) = s.payhost(&["plugins", "list"]);
    assert_ne!(code, 0);
    assert!(err.contains("host.api_keys[0].sha256"), "{err}");
    let s = Scratch::with_api_keys(
        &[],
        "[{ key = \"sk_both_given\", sha256 = \"00\" }]",
        "",
        "",
    );
    let (_, _, err) = s.payhost(&["plugins", "list"]);
    assert!(
        err.contains("host.api_keys[0]") && err.contains("exactly one"),
        "{err}"
    );
    let s = Scratch::with_api_keys(&[], "[{ key = \"sk_typo_here\", tennant = \"a\" }]", "", "");
    let (_, _, err) = s.payhost(&["plugins", "list"]);
    assert!(err.contains("tennant"), "{err}");
}
