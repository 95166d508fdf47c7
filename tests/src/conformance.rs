//! The conformance suite: the same behaviour asked of every provider, through the host, over
//! real HTTP. A provider passes when the whole payment lifecycle works on it, with the rows
//! in the database and the events in the log that payhost promises: customer → payment
//! method → payment → confirm → partial refund → the rest → a third refund refused;
//! subscription with trial → change price → cancel at period end → reactivate → cancel now;
//! invoices; a declined card recorded as failed; checkout; the event log's paging. The mock
//! and the stripe plugin (on the fake Stripe server) both run it.

use crate::api::{Api, Resp};
use crate::db::TestDb;
use crate::{Scratch, API_KEY};
use serde_json::{json, Value};

/// The provider a walk runs against: its instance name and how its customer ids start.
pub struct Provider {
    pub name: &'static str,
    pub customer_prefix: &'static str,
}

pub const MOCK_PROVIDER: Provider = Provider {
    name: "mock",
    customer_prefix: "mock_cus_",
};

fn ok(r: &Resp, status: u16) -> &Resp {
    assert_eq!(r.status, status, "unexpected answer: {r:?}");
    r
}

fn event_types(api: &Api, query: &str) -> Vec<String> {
    let r = api.get(&format!("/v1/events?limit=100{query}"));
    ok(&r, 200);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

fn events_for(api: &Api, object: &str) -> Vec<String> {
    event_types(api, &format!("&object_id={object}"))
}

/// Runs the whole lifecycle against the host configured in `s`, whose default provider is
/// `provider`, checking `db`.
pub fn lifecycle(s: &Scratch, db: &TestDb, provider: &Provider) {
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);

    // ---------------------------------------------------------------- customer
    let new_user = json!({"user_id": "user_42", "email": "ada@example.com", "name": "Ada"});
    let c = api.post_idem("/v1/customers", "cust-1", &new_user);
    ok(&c, 201);
    let cust = c.s("id");
    assert!(cust.starts_with("cust_"), "{c:?}");
    assert_eq!(c.s("provider"), provider.name);
    assert!(
        c.s("provider_id").starts_with(provider.customer_prefix),
        "{c:?}"
    );
    let again = api.post("/v1/customers", &new_user);
    ok(&again, 200);
    assert_eq!(again.s("id"), cust, "one customer per user and provider");
    assert_eq!(
        db.value("SELECT email FROM users WHERE user_id = $1", &["user_42"])
            .as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(
        db.value(
            "SELECT CAST(COUNT(*) AS TEXT) FROM customers WHERE user_id = $1",
            &["user_42"]
        )
        .as_deref(),
        Some("1")
    );

    let renamed = api.post(
        &format!("/v1/customers/{cust}"),
        &json!({"email": "ada@lovelace.example", "name": "Ada L."}),
    );
    ok(&renamed, 200);
    assert_eq!(renamed.s("email"), "ada@lovelace.example");
    let fetched = api.get(&format!("/v1/customers/{cust}"));
    ok(&fetched, 200);
    assert_eq!(fetched.s("name"), "Ada L.");
    assert_eq!(
        db.value("SELECT email FROM customers WHERE id = $1", &[&cust])
            .as_deref(),
        Some("ada@lovelace.example")
    );

    // ---------------------------------------------------------------- payment method
    let pm = api.post(
        &format!("/v1/customers/{cust}/payment_methods"),
        &json!({"payment_method": "pm_card_visa"}),
    );
    ok(&pm, 200);
    let pm_id = pm.s("id");
    assert_eq!(
        (pm.s("brand"), pm.s("last4")),
        ("visa".into(), "4242".into())
    );
    let listed = api.get(&format!("/v1/customers/{cust}/payment_methods"));
    ok(&listed, 200);
    assert_eq!(listed.body["data"][0]["id"], Value::String(pm_id.clone()));
    let def = api.post(
        &format!("/v1/customers/{cust}/default_payment_method"),
        &json!({"payment_method": pm_id}),
    );
    ok(&def, 200);
    assert_eq!(def.s("default_payment_method"), pm_id);

    // ---------------------------------------------------------------- payment → confirm
    let body =
        json!({"customer": cust, "amount": 5000, "currency": "USD", "description": "order 1"});
    let p = api.post_idem("/v1/payments", "pay-1", &body);
    ok(&p, 201);
    let pay = p.s("id");
    assert_eq!(p.s("status"), "requires_payment_method");
    assert_eq!(p.s("currency"), "usd");
    assert!(p.body["client_secret"].is_string(), "{p:?}");
    let replay = api.post_idem("/v1/payments", "pay-1", &body);
    ok(&replay, 201);
    assert_eq!(replay.s("id"), pay, "a replay returns the stored answer");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let other = api.post_idem(
        "/v1/payments",
        "pay-1",
        &json!({"customer": cust, "amount": 6000, "currency": "usd"}),
    );
    ok(&other, 422);
    assert_eq!(other.code(), "idempotency_key_reused");
    assert_eq!(
        db.value("SELECT CAST(COUNT(*) AS TEXT) FROM payments", &[])
            .as_deref(),
        Some("1"),
        "neither the replay nor the refused request wrote a payment"
    );
    let confirmed = api.post(
        &format!("/v1/payments/{pay}/confirm"),
        &json!({"payment_method": pm_id}),
    );
    ok(&confirmed, 200);
    assert_eq!(confirmed.s("status"), "succeeded");
    assert_eq!(
        db.value("SELECT status FROM payments WHERE id = $1", &[&pay])
            .as_deref(),
        Some("succeeded")
    );
    let fetched = api.get(&format!("/v1/payments/{pay}"));
    ok(&fetched, 200);
    assert_eq!(fetched.s("status"), "succeeded");
    assert!(
        fetched.body["client_secret"].is_null(),
        "a read does not hand out the secret"
    );
    assert_eq!(
        events_for(&api, &pay),
        ["PaymentCreated", "PaymentSucceeded"],
        "one event per fact"
    );

    let abandoned = api.post(
        "/v1/payments",
        &json!({"customer": cust, "amount": 900, "currency": "usd"}),
    );
    ok(&abandoned, 201);
    let abandoned_id = abandoned.s("id");
    let canceled = api.post(&format!("/v1/payments/{abandoned_id}/cancel"), &json!({}));
    ok(&canceled, 200);
    assert_eq!(canceled.s("status"), "canceled");
    assert_eq!(
        db.value(
            "SELECT status FROM payments WHERE id = $1",
            &[&abandoned_id]
        )
        .as_deref(),
        Some("canceled")
    );

    // ---------------------------------------------------------------- refunds
    let r1 = api.post(
        "/v1/refunds",
        &json!({"payment": pay, "amount": 2000, "reason": "requested_by_customer"}),
    );
    ok(&r1, 201);
    assert_eq!(r1.body["amount"], 2000);
    let too_much = api.post("/v1/refunds", &json!({"payment": pay, "amount": 3001}));
    ok(&too_much, 409);
    assert_eq!(too_much.param(), "amount");
    let r2 = api.post("/v1/refunds", &json!({"payment": pay}));
    ok(&r2, 201);
    assert_eq!(
        r2.body["amount"], 3000,
        "a refund without amount takes the rest"
    );
    let r3 = api.post("/v1/refunds", &json!({"payment": pay, "amount": 1}));
    ok(&r3, 409);
    assert!(
        r3.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fully refunded"),
        "{r3:?}"
    );
    assert_eq!(
        db.value(
            "SELECT CAST(amount_refunded AS TEXT) FROM payments WHERE id = $1",
            &[&pay]
        )
        .as_deref(),
        Some("5000")
    );
    assert_eq!(
        db.value(
            "SELECT CAST(COUNT(*) AS TEXT) FROM refunds WHERE payment_id = $1",
            &[&pay]
        )
        .as_deref(),
        Some("2")
    );
    ok(&api.get(&format!("/v1/refunds/{}", r1.s("id"))), 200);
    assert_eq!(event_types(&api, "&type=RefundProcessed").len(), 2);

    // ---------------------------------------------------------------- subscription
    let sub = api.post(
        "/v1/subscriptions",
        &json!({"customer": cust, "price": "price_pro", "trial_days": 14}),
    );
    ok(&sub, 201);
    let sub_id = sub.s("id");
    assert_eq!(sub.s("status"), "trialing");
    assert!(
        sub.body["trial_end"].as_i64().unwrap()
            > sub.body["current_period_start"].as_i64().unwrap()
    );
    let read = api.get(&format!("/v1/subscriptions/{sub_id}"));
    ok(&read, 200);
    assert_eq!(read.s("price"), "price_pro");
    let changed = api.post(
        &format!("/v1/subscriptions/{sub_id}/price"),
        &json!({"price": "price_enterprise"}),
    );
    ok(&changed, 200);
    assert_eq!(changed.s("price"), "price_enterprise");
    let at_end = api.post(
        &format!("/v1/subscriptions/{sub_id}/cancel"),
        &json!({"at_period_end": true}),
    );
    ok(&at_end, 200);
    assert_eq!(at_end.body["cancel_at_period_end"], true);
    assert_eq!(at_end.s("status"), "trialing");
    let back = api.post(
        &format!("/v1/subscriptions/{sub_id}/reactivate"),
        &json!({}),
    );
    ok(&back, 200);
    assert_eq!(back.body["cancel_at_period_end"], false);
    let now = api.post(&format!("/v1/subscriptions/{sub_id}/cancel"), &json!({}));
    ok(&now, 200);
    assert_eq!(now.s("status"), "canceled");
    assert_eq!(
        db.rows("SELECT status, price_id, CAST(cancel_at_period_end AS TEXT) FROM subscriptions WHERE id = $1", &[&sub_id]),
        vec![vec![Some("canceled".into()), Some("price_enterprise".into()), Some("0".into())]]
    );
    assert_eq!(
        events_for(&api, &sub_id),
        [
            "SubscriptionCreated",
            "SubscriptionUpdated",
            "SubscriptionUpdated",
            "SubscriptionUpdated",
            "SubscriptionCancelled"
        ]
    );
    let cancel_again = api.post(&format!("/v1/subscriptions/{sub_id}/cancel"), &json!({}));
    ok(&cancel_again, 409);

    // ---------------------------------------------------------------- invoices
    let billed = api.post(
        "/v1/subscriptions",
        &json!({"customer": cust, "price": "price_basic"}),
    );
    ok(&billed, 201);
    assert_eq!(
        billed.s("status"),
        "active",
        "billed at once with the default method"
    );
    // The provider issued the invoice: payhost learns of it by webhook, or by a refresh.
    let invoices = api.get(&format!(
        "/v1/customers/{cust}/invoices?limit=10&refresh=true"
    ));
    ok(&invoices, 200);
    let first = &invoices.body["data"][0];
    assert_eq!(first["amount_due"], 999);
    assert_eq!(first["status"], "paid");
    assert_eq!(first["subscription"], billed.body["id"]);
    let inv = api.get(&format!("/v1/invoices/{}", first["id"].as_str().unwrap()));
    ok(&inv, 200);
    assert_eq!(inv.body["id"], first["id"]);
    assert_eq!(
        db.value(
            "SELECT status FROM invoices WHERE id = $1",
            &[first["id"].as_str().unwrap()]
        )
        .as_deref(),
        Some("paid")
    );

    // ---------------------------------------------------------------- a declined card
    let declined = api.post(
        "/v1/payments",
        &json!({"customer": cust, "amount": 1200, "currency": "eur", "payment_method": "pm_card_chargeDeclined"}),
    );
    ok(&declined, 201);
    assert_eq!(declined.s("status"), "failed");
    assert_eq!(declined.s("failure_code"), "generic_decline");
    let declined_id = declined.s("id");
    assert_eq!(
        db.value(
            "SELECT failure_code FROM payments WHERE id = $1",
            &[&declined_id]
        )
        .as_deref(),
        Some("generic_decline")
    );
    assert_eq!(
        events_for(&api, &declined_id),
        ["PaymentCreated", "PaymentFailed"]
    );

    // ---------------------------------------------------------------- checkout
    let plan = api.post_idem(
        "/v1/checkout",
        "checkout-1",
        &json!({"user_id": "user_77", "email": "grace@example.com", "price": "price_basic"}),
    );
    ok(&plan, 201);
    assert_eq!(plan.s("mode"), "subscription");
    assert_eq!(plan.body["customer"]["user_id"], "user_77");
    assert_eq!(
        plan.body["subscription"]["status"], "incomplete",
        "no payment method yet"
    );
    assert!(plan.body["client_secret"].is_string(), "{plan:?}");
    let replayed = api.post_idem(
        "/v1/checkout",
        "checkout-1",
        &json!({"user_id": "user_77", "email": "grace@example.com", "price": "price_basic"}),
    );
    assert_eq!(replayed.body, plan.body);
    let once = api.post(
        "/v1/checkout",
        &json!({"user_id": "user_77", "amount": 4200, "currency": "jpy"}),
    );
    ok(&once, 201);
    assert_eq!(once.s("mode"), "payment");
    assert_eq!(
        once.body["customer"]["id"], plan.body["customer"]["id"],
        "the user's customer is reused"
    );
    assert_eq!(once.body["payment"]["amount"], 4200);
    assert!(once.body["client_secret"].is_string());
    ok(
        &api.post("/v1/checkout", &json!({"user_id": "user_77"})),
        400,
    );

    // ---------------------------------------------------------------- the event log
    let all = api.get("/v1/events?limit=3");
    ok(&all, 200);
    assert_eq!(all.body["has_more"], true);
    let cursor = all.body["data"][2]["id"].as_str().unwrap().to_owned();
    let next = api.get(&format!("/v1/events?limit=3&starting_after={cursor}"));
    ok(&next, 200);
    assert!(next.body["data"][0]["seq"].as_i64() > all.body["data"][2]["seq"].as_i64());
    let logged: usize = db
        .value("SELECT CAST(COUNT(*) AS TEXT) FROM events", &[])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(logged, event_types(&api, "").len());
    let succeeded = &api.get("/v1/events?type=PaymentSucceeded").body["data"][0];
    assert_eq!(succeeded["object_id"], Value::String(pay.clone()));
    assert_eq!(succeeded["data"]["customer"], Value::String(cust.clone()));
    assert_eq!(succeeded["provider"], provider.name);

    let (code, _) = host.terminate();
    assert_eq!(code, 0);
}
