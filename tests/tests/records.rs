//! Reads from payhost's own records, over the real binary: a payment created, confirmed and
//! refunded reads the same after a restart (the mock forgets everything; SQLite and
//! PostgreSQL); lists page with cursors both ways and filter; every change a provider tells
//! by webhook (refunds and disputes made elsewhere, methods detached, customers updated or
//! deleted, subscriptions moving) updates the record; deleting a customer erases the person
//! and keeps the history; reads keep working while the provider is down; errors have one
//! shape everywhere.

use payhost_tests::api::{Api, Resp};
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec_records";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn scratch(db: Option<&TestDb>) -> Scratch {
    let mut host = "default_provider = \"mock\"\n".to_owned();
    if let Some(db) = db {
        host.push_str(&db.host_line());
    }
    Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        &host,
        &format!(
            "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"{SECRET}\" }}\n\
             [tenants]\nacme = \"mock\"\n"
        ),
    )
}

fn ok(r: &Resp, status: u16) -> &Resp {
    assert_eq!(r.status, status, "{r:?}");
    r
}

/// Posts a signed mock webhook and waits until the inbox processed it.
fn webhook(api: &Api, db: &TestDb, id: &str, kind: &str, object: Value) {
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(SECRET, now(), id, kind, &object);
    let r = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&body),
    );
    ok(&r, 200);
    eventually(&format!("{id} processed"), || {
        db.value(
            "SELECT status FROM webhook_inbox WHERE event_id = $1",
            &[id],
        )
        .as_deref()
            == Some("processed")
    });
}

fn customer(api: &Api, user: &str) -> Value {
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": user, "email": format!("{user}@example.com"), "name": "Ada Lovelace"}),
    );
    ok(&c, 201).body.clone()
}

fn paid(api: &Api, customer: &str, amount: i64) -> Value {
    let p = api.post(
        "/v1/payments",
        &json!({"customer": customer, "amount": amount, "currency": "usd", "payment_method": "pm_card_visa"}),
    );
    assert_eq!(ok(&p, 201).body["status"], "succeeded");
    p.body
}

fn survives_a_restart(db: Option<TestDb>) {
    let s = scratch(db.as_ref());
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let c = customer(&api, "restart");
    let cust = c["id"].as_str().unwrap();
    let open = api.post(
        "/v1/payments",
        &json!({"customer": cust, "amount": 5000, "currency": "usd", "description": "Order 1"}),
    );
    let pay = ok(&open, 201).s("id");
    assert_eq!(open.body["status"], "requires_payment_method");
    let confirmed = api.post(
        &format!("/v1/payments/{pay}/confirm"),
        &json!({"payment_method": "pm_card_visa"}),
    );
    assert_eq!(ok(&confirmed, 200).body["status"], "succeeded");
    let refund = api.post("/v1/refunds", &json!({"payment": pay, "amount": 1500}));
    let refund_id = ok(&refund, 201).s("id");
    let before = ok(&api.get(&format!("/v1/payments/{pay}")), 200)
        .body
        .clone();
    assert_eq!(before["amount_refunded"], 1500);
    assert_eq!(before["refund_status"], "partially_refunded");
    assert_eq!(
        before["client_secret"],
        Value::Null,
        "a read never hands it out"
    );
    let customer_before = api.get(&format!("/v1/customers/{cust}")).body;
    let events_before = api.get(&format!("/v1/events?object_id={pay}")).body;
    drop(host);

    // The mock forgot everything; payhost's records did not.
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    assert_eq!(
        ok(&api.get(&format!("/v1/payments/{pay}")), 200).body,
        before
    );
    assert_eq!(
        api.get(&format!("/v1/customers/{cust}")).body,
        customer_before
    );
    let r = ok(&api.get(&format!("/v1/refunds/{refund_id}")), 200)
        .body
        .clone();
    assert_eq!(
        (r["amount"].clone(), r["payment"].clone()),
        (json!(1500), json!(pay))
    );
    assert_eq!(
        api.get(&format!("/v1/events?object_id={pay}")).body,
        events_before
    );
    let listed = api.get(&format!("/v1/payments?customer={cust}"));
    assert_eq!(ok(&listed, 200).body["data"][0], before);
    // The provider no longer knows the payment: a refresh says so, the record stays.
    let refreshed = api.get(&format!("/v1/payments/{pay}?refresh=true"));
    assert_eq!(
        (refreshed.status, refreshed.code()),
        (404, "not_found"),
        "{refreshed:?}"
    );
    assert_eq!(api.get(&format!("/v1/payments/{pay}")).body, before);
}

#[test]
fn a_payment_reads_the_same_after_a_restart_on_sqlite() {
    survives_a_restart(None);
}

#[test]
fn a_payment_reads_the_same_after_a_restart_on_postgres() {
    // Without a server, TestDb::postgres says so loudly (and fails under CI).
    if let Some(db) = TestDb::postgres("records_restart") {
        survives_a_restart(Some(db));
    }
}

fn ids(r: &Resp) -> Vec<String> {
    r.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:?}"))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn lists_page_both_ways_and_filter() {
    let s = scratch(None);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let a = customer(&api, "lister-a")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = customer(&api, "lister-b")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut created = Vec::new();
    for i in 0..12 {
        let who = if i % 3 == 0 { &b } else { &a };
        created.push(paid(&api, who, 100 + i)["id"].as_str().unwrap().to_owned());
    }
    let declined = api.post(
        "/v1/payments",
        &json!({"customer": a, "amount": 999, "currency": "usd", "payment_method": "pm_card_chargeDeclined"}),
    );
    let failed = ok(&declined, 201).s("id");

    // Newest first, five at a time, forward then back.
    let newest: Vec<String> = std::iter::once(failed.clone())
        .chain(created.iter().rev().cloned())
        .collect();
    let p1 = api.get("/v1/payments?limit=5");
    assert_eq!(ids(ok(&p1, 200)), newest[..5]);
    assert_eq!(p1.body["has_more"], true);
    let p2 = api.get(&format!(
        "/v1/payments?limit=5&starting_after={}",
        newest[4]
    ));
    assert_eq!(ids(&p2), newest[5..10]);
    let p3 = api.get(&format!(
        "/v1/payments?limit=5&starting_after={}",
        newest[9]
    ));
    assert_eq!(ids(&p3), newest[10..]);
    assert_eq!(p3.body["has_more"], false);
    let back = api.get(&format!(
        "/v1/payments?limit=5&ending_before={}",
        newest[10]
    ));
    assert_eq!(ids(&back), newest[5..10], "the page before, in list order");
    assert_eq!(back.body["has_more"], true);
    let between = api.get(&format!(
        "/v1/payments?starting_after={}&ending_before={}",
        newest[2], newest[6]
    ));
    assert_eq!(ids(&between), newest[3..6]);

    // Filters.
    let of_b = ids(&api.get(&format!("/v1/payments?customer={b}&limit=100")));
    assert_eq!(of_b.len(), 4);
    let failed_only = ids(&api.get("/v1/payments?status=failed"));
    assert_eq!(failed_only, std::slice::from_ref(&failed));
    let none_yet = api.get(&format!("/v1/payments?created_gte={}", now() + 3600));
    assert_eq!(ids(ok(&none_yet, 200)), Vec::<String>::new());
    let by_user = ids(&api.get("/v1/customers?user_id=lister-b"));
    assert_eq!(by_user, std::slice::from_ref(&b));
    let by_email = ids(&api.get("/v1/customers?email=lister-a@example.com"));
    assert_eq!(by_email, std::slice::from_ref(&a));
    let refund = api.post("/v1/refunds", &json!({"payment": created[0], "amount": 10}));
    let refund_id = ok(&refund, 201).s("id");
    assert_eq!(
        ids(&api.get(&format!("/v1/refunds?payment={}", created[0]))),
        [refund_id]
    );
    let sub = api.post(
        "/v1/subscriptions",
        &json!({"customer": a, "price": "price_basic", "trial_days": 7}),
    );
    let sub_id = ok(&sub, 201).s("id");
    assert_eq!(
        ids(&api.get(&format!("/v1/subscriptions?customer={a}&status=trialing"))),
        std::slice::from_ref(&sub_id)
    );
    assert!(ids(&api.get("/v1/subscriptions?status=active")).is_empty());
    let created_events = api.get(&format!(
        "/v1/events?type=SubscriptionCreated&object_id={sub_id}"
    ));
    assert_eq!(
        ok(&created_events, 200).body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A cursor that names no row of the list, and bad parameters, are clear errors.
    let unknown = api.get("/v1/payments?starting_after=pay_nothing");
    assert_eq!((unknown.status, unknown.param()), (404, "starting_after"));
    let wrong = api.get("/v1/payments?limit=0");
    assert_eq!((wrong.status, wrong.param()), (400, "limit"));
    let typo = api.get("/v1/payments?custmer=x");
    assert_eq!((typo.status, typo.param()), (400, "custmer"));
    assert!(typo.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("customer"));
}

#[test]
fn changes_told_by_webhooks_update_the_records() {
    let s = scratch(None);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let db = TestDb::sqlite(s.dir.path());
    let c = customer(&api, "synced");
    let (cust, provider_cust) = (
        c["id"].as_str().unwrap().to_owned(),
        c["provider_id"].as_str().unwrap().to_owned(),
    );
    let p = paid(&api, &cust, 5000);
    let (pay, provider_pay) = (
        p["id"].as_str().unwrap().to_owned(),
        p["provider_id"].as_str().unwrap().to_owned(),
    );

    // A refund made in the provider's dashboard: the payment's refunded amount follows,
    // once, however often the webhook comes.
    let refund = json!({"id": "mock_re_dash", "payment": provider_pay, "amount": 2000, "currency": "usd", "reason": "requested_by_customer"});
    webhook(&api, &db, "evt_refund", "refund.succeeded", refund.clone());
    webhook(&api, &db, "evt_refund_again", "refund.succeeded", refund);
    let after = api.get(&format!("/v1/payments/{pay}")).body;
    assert_eq!(after["amount_refunded"], 2000);
    assert_eq!(after["refund_status"], "partially_refunded");
    let refunds = api.get(&format!("/v1/refunds?payment={pay}"));
    assert_eq!(ids(&refunds).len(), 1);
    assert_eq!(refunds.body["data"][0]["provider_id"], "mock_re_dash");
    let rest =
        json!({"id": "mock_re_dash2", "payment": provider_pay, "amount": 3000, "currency": "usd"});
    webhook(&api, &db, "evt_refund_rest", "refund.succeeded", rest);
    assert_eq!(
        api.get(&format!("/v1/payments/{pay}")).body["refund_status"],
        "refunded"
    );
    let too_much = api.post("/v1/refunds", &json!({"payment": pay}));
    assert_eq!((too_much.status, too_much.code()), (409, "invalid_state"));

    // Disputes opened and closed.
    let dispute = json!({"id": "dp_1", "payment": provider_pay, "amount": 5000, "currency": "usd", "reason": "fraudulent", "status": "needs_response"});
    webhook(&api, &db, "evt_dp_open", "dispute.created", dispute);
    assert_eq!(
        api.get(&format!("/v1/payments/{pay}")).body["dispute_status"],
        "needs_response"
    );
    let closed = json!({"id": "dp_1", "payment": provider_pay, "status": "won"});
    webhook(&api, &db, "evt_dp_closed", "dispute.closed", closed);
    assert_eq!(
        api.get(&format!("/v1/payments/{pay}")).body["dispute_status"],
        "won"
    );
    for kind in ["DisputeOpened", "DisputeClosed", "RefundProcessed"] {
        let events = api.get(&format!("/v1/events?type={kind}"));
        let data = ok(&events, 200).body["data"].as_array().unwrap().clone();
        let expected = if kind == "RefundProcessed" { 2 } else { 1 };
        assert_eq!(data.len(), expected, "{kind}: {events:?}");
        assert_eq!(
            data[0]["data"]["payment"],
            json!(pay),
            "{kind} names the payment"
        );
    }

    // A method detached at the provider leaves the customer's list (and its default).
    let pm = api.post(
        &format!("/v1/customers/{cust}/payment_methods"),
        &json!({"payment_method": "pm_card_mastercard"}),
    );
    let (pm_id, pm_provider) = (ok(&pm, 200).s("id"), pm.s("provider_id"));
    ok(
        &api.post(
            &format!("/v1/customers/{cust}/default_payment_method"),
            &json!({"payment_method": pm_id}),
        ),
        200,
    );
    webhook(
        &api,
        &db,
        "evt_pm_gone",
        "payment_method.detached",
        json!({"id": pm_provider, "customer": provider_cust}),
    );
    let methods = api.get(&format!("/v1/customers/{cust}/payment_methods"));
    assert!(!ids(&methods).contains(&pm_id), "{methods:?}");
    assert_eq!(
        api.get(&format!("/v1/customers/{cust}")).body["default_payment_method"],
        Value::Null
    );

    // The customer's details changed at the provider.
    webhook(
        &api,
        &db,
        "evt_cus_upd",
        "customer.updated",
        json!({"id": provider_cust, "email": "ada@new.example", "name": "Ada King"}),
    );
    let updated = api.get(&format!("/v1/customers/{cust}")).body;
    assert_eq!(
        (updated["email"].clone(), updated["name"].clone()),
        (json!("ada@new.example"), json!("Ada King"))
    );

    // A subscription falls past due and renews: status and periods follow.
    let sub = api.post(
        "/v1/subscriptions",
        &json!({"customer": cust, "price": "price_basic", "trial_days": 3}),
    );
    let (sub_id, provider_sub) = (ok(&sub, 201).s("id"), sub.s("provider_id"));
    let (start, end) = (now() + 10 * 86_400, now() + 40 * 86_400);
    webhook(
        &api,
        &db,
        "evt_sub_past_due",
        "subscription.updated",
        json!({"id": provider_sub, "customer": provider_cust, "status": "past_due", "price": "price_basic", "current_period_start": start, "current_period_end": end}),
    );
    let s1 = api.get(&format!("/v1/subscriptions/{sub_id}")).body;
    assert_eq!(s1["status"], "past_due");
    assert_eq!(
        (
            s1["current_period_start"].clone(),
            s1["current_period_end"].clone()
        ),
        (json!(start), json!(end))
    );
    webhook(
        &api,
        &db,
        "evt_sub_paused",
        "subscription.updated",
        json!({"id": provider_sub, "customer": provider_cust, "status": "paused", "price": "price_basic"}),
    );
    assert_eq!(
        api.get(&format!("/v1/subscriptions/{sub_id}")).body["status"],
        "paused"
    );

    // Deleted at the provider: the person is erased here, the history stays.
    webhook(
        &api,
        &db,
        "evt_cus_del",
        "customer.deleted",
        json!({"id": provider_cust}),
    );
    let gone = api.get(&format!("/v1/customers/{cust}"));
    assert_eq!(gone.status, 404, "{gone:?}");
    assert_eq!(
        api.get(&format!("/v1/payments/{pay}")).body["customer"],
        json!(cust)
    );
    assert_eq!(
        db.rows("SELECT email, name FROM customers WHERE id = $1", &[&cust]),
        vec![vec![Some(String::new()), None]]
    );
}

/// A payment nobody completed in time (contract 2.2's `expired`): the provider's webhook
/// makes it `expired` with its reason kept, records `PaymentExpired` once, and a payment
/// that expired can no longer be canceled or refunded.
#[test]
fn a_payment_that_expires_keeps_its_reason() {
    let s = scratch(None);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let db = TestDb::sqlite(s.dir.path());
    let c = customer(&api, "late");
    let p = api.post(
        "/v1/payments",
        &json!({"customer": c["id"], "amount": 1200, "currency": "eur"}),
    );
    let p = &ok(&p, 201).body;
    assert_eq!(p["status"], "requires_payment_method", "{p}");
    let (pay, provider_pay) = (
        p["id"].as_str().unwrap(),
        p["provider_id"].as_str().unwrap(),
    );

    let expired = json!({"id": provider_pay, "customer": c["provider_id"], "amount": 1200,
        "currency": "eur", "status": "expired", "failure_code": "expired",
        "failure_message": "the checkout was not completed within 15 minutes"});
    webhook(&api, &db, "evt_expired", "payment.expired", expired.clone());
    webhook(&api, &db, "evt_expired_again", "payment.expired", expired);
    let after = api.get(&format!("/v1/payments/{pay}")).body;
    assert_eq!(after["status"], "expired", "{after}");
    assert_eq!(
        (
            after["failure_code"].as_str(),
            after["failure_message"].as_str()
        ),
        (
            Some("expired"),
            Some("the checkout was not completed within 15 minutes")
        )
    );
    let events = api.get(&format!("/v1/events?type=PaymentExpired&object_id={pay}"));
    let data = ok(&events, 200).body["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1, "{events:?}");
    assert_eq!(data[0]["data"]["status"], "expired");

    let cancel = api.post(&format!("/v1/payments/{pay}/cancel"), &json!({}));
    assert_eq!(
        (cancel.status, cancel.code()),
        (409, "invalid_state"),
        "{cancel:?}"
    );
    let refund = api.post("/v1/refunds", &json!({"payment": pay}));
    assert_eq!((refund.status, refund.code()), (409, "invalid_state"));
}

/// The events of `kind` about the payhost record `object`.
fn events_about(api: &Api, kind: &str, object: &str) -> Vec<Value> {
    let r = api.get(&format!("/v1/events?type={kind}&object_id={object}"));
    ok(&r, 200).body["data"].as_array().unwrap().clone()
}

#[test]
fn refunds_that_settle_later_are_read_back_and_settle_once_on_sqlite() {
    refunds_settle_once(None);
}

#[test]
fn refunds_that_settle_later_are_read_back_and_settle_once_on_postgres() {
    if let Some(db) = TestDb::postgres("records_refunds") {
        refunds_settle_once(Some(db));
    }
}

fn refunds_settle_once(db: Option<TestDb>) {
    let s = scratch(db.as_ref());
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let db = db.unwrap_or_else(|| TestDb::sqlite(s.dir.path()));
    let c = customer(&api, "refunded-later");
    let pay = paid(&api, c["id"].as_str().unwrap(), 1000);
    let (pay, provider_pay) = (
        pay["id"].as_str().unwrap(),
        pay["provider_id"].as_str().unwrap(),
    );
    let refunded = || api.get(&format!("/v1/payments/{pay}")).body["amount_refunded"].clone();

    // A bank refund: accepted, not settled. It is read back on a schedule, or on request.
    let before = now();
    let r = api.post(
        "/v1/refunds",
        &json!({"payment": pay, "amount": 300, "metadata": {"mock_refund": "pending"}}),
    );
    let r = ok(&r, 201).body.clone();
    let settles = r["id"].as_str().unwrap();
    assert_eq!(
        (r["status"].as_str(), r["checks"].as_i64()),
        (Some("pending"), Some(0)),
        "{r}"
    );
    let next = r["next_check_at"]
        .as_i64()
        .expect("an unsettled refund has a next check");
    assert!(
        (before + 60..=now() + 60).contains(&next),
        "first read a minute on: {r}"
    );
    assert_eq!(refunded(), 300);
    assert!(events_about(&api, "RefundProcessed", settles).is_empty());

    let read = api.get(&format!("/v1/refunds/{settles}?refresh=true"));
    let read = &ok(&read, 200).body;
    assert_eq!(read["status"], "succeeded", "{read}");
    assert!(read["next_check_at"].is_null(), "{read}");
    assert_eq!(
        api.get(&format!("/v1/refunds/{settles}")).body["status"],
        "succeeded"
    );
    let processed = events_about(&api, "RefundProcessed", settles);
    assert_eq!(processed.len(), 1, "{processed:?}");
    assert_eq!(processed[0]["data"]["amount"], 300);
    assert_eq!(refunded(), 300);

    // One that fails at the bank, told by a webhook (twice): the amount is refundable again,
    // once.
    let r = api.post(
        "/v1/refunds",
        &json!({"payment": pay, "amount": 200, "metadata": {"mock_refund": "fails"}}),
    );
    let r = ok(&r, 201).body.clone();
    let (fails, provider_refund) = (
        r["id"].as_str().unwrap(),
        r["provider_id"].as_str().unwrap(),
    );
    assert_eq!(r["status"], "pending");
    assert_eq!(refunded(), 500);
    let failed = json!({"id": provider_refund, "payment": provider_pay, "amount": 200,
        "currency": "usd", "status": "failed"});
    webhook(
        &api,
        &db,
        "evt_refund_failed",
        "refund.failed",
        failed.clone(),
    );
    webhook(
        &api,
        &db,
        "evt_refund_failed_again",
        "refund.failed",
        failed,
    );
    let after = api.get(&format!("/v1/refunds/{fails}")).body;
    assert_eq!(after["status"], "failed", "{after}");
    assert!(
        after["next_check_at"].is_null(),
        "a settled refund is not read again: {after}"
    );
    assert_eq!(
        refunded(),
        300,
        "a failed refund gives its amount back, once"
    );
    assert_eq!(events_about(&api, "RefundFailed", fails).len(), 1);
    // Reading it now (the mock settles it as failed too) changes nothing more.
    let read = api.get(&format!("/v1/refunds/{fails}?refresh=true"));
    assert_eq!(ok(&read, 200).body["status"], "failed");
    assert_eq!(refunded(), 300);
    assert_eq!(events_about(&api, "RefundFailed", fails).len(), 1);
    // A settled refund never goes back to pending, nor does a late success undo a failure.
    let late = json!({"id": provider_refund, "payment": provider_pay, "amount": 200,
        "currency": "usd", "status": "succeeded"});
    webhook(&api, &db, "evt_refund_late", "refund.succeeded", late);
    assert_eq!(
        api.get(&format!("/v1/refunds/{fails}")).body["status"],
        "failed"
    );
    assert_eq!(refunded(), 300);

    // What the failed refund gave back can be refunded.
    let rest = api.post("/v1/refunds", &json!({"payment": pay}));
    assert_eq!(ok(&rest, 201).body["amount"], 700, "{rest:?}");
    assert_eq!(refunded(), 1000);
}

#[test]
fn deleting_a_customer_erases_the_person_and_keeps_the_history() {
    let s = scratch(None);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let db = TestDb::sqlite(s.dir.path());
    let cust = customer(&api, "leaver")["id"].as_str().unwrap().to_owned();
    let pm = api.post(
        &format!("/v1/customers/{cust}/payment_methods"),
        &json!({"payment_method": "pm_card_visa"}),
    );
    let pm_id = ok(&pm, 200).s("id");
    let pay = paid(&api, &cust, 1200)["id"].as_str().unwrap().to_owned();

    // A saved method detached by the API.
    let detached = api.send(
        "DELETE",
        &format!("/v1/customers/{cust}/payment_methods/{pm_id}"),
        &[],
        None,
    );
    assert_eq!(
        ok(&detached, 200).body,
        json!({"id": pm_id, "object": "payment_method", "deleted": true})
    );
    assert!(ids(&api.get(&format!("/v1/customers/{cust}/payment_methods"))).is_empty());
    let again = api.send(
        "DELETE",
        &format!("/v1/customers/{cust}/payment_methods/{pm_id}"),
        &[],
        None,
    );
    assert_eq!(again.status, 404);

    let deleted = api.send("DELETE", &format!("/v1/customers/{cust}"), &[], None);
    assert_eq!(ok(&deleted, 200).body["deleted"], true);
    assert_eq!(api.get(&format!("/v1/customers/{cust}")).status, 404);
    assert!(ids(&api.get("/v1/customers?user_id=leaver")).is_empty());
    let payment = api.get(&format!("/v1/payments/{pay}"));
    assert_eq!(
        ok(&payment, 200).body["customer"],
        json!(cust),
        "the history stays"
    );
    let person = db.rows(
        "SELECT c.email, c.name, c.metadata, u.email, u.name FROM customers c \
         JOIN users u ON u.tenant = c.tenant WHERE c.id = $1",
        &[&cust],
    );
    assert_eq!(
        person,
        vec![vec![
            Some(String::new()),
            None,
            Some("{}".into()),
            Some(String::new()),
            None
        ]]
    );
    for (table, column) in [("customers", "email"), ("users", "email")] {
        let leaks = db.value(
            &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE {column} LIKE '%leaver%'"),
            &[],
        );
        assert_eq!(leaks.as_deref(), Some("0"), "{table}.{column}");
    }
    let events = api.get(&format!("/v1/events?type=CustomerDeleted&object_id={cust}"));
    assert_eq!(ok(&events, 200).body["data"].as_array().unwrap().len(), 1);
    // The user comes back later: a new customer, not the erased one.
    let back = customer(&api, "leaver");
    assert_ne!(back["id"], json!(cust));
}

#[test]
fn reads_work_while_the_provider_is_down_and_tenants_see_their_own() {
    let s = scratch(None);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let admin = Api::new(&host.addr, ADMIN_KEY);
    let acme = api.for_tenant("acme");
    let mine = customer(&acme, "tenant-user")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pay = paid(&acme, &mine, 700)["id"].as_str().unwrap().to_owned();
    let other = customer(&api, "no-tenant")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    ok(&admin.post("/admin/plugins/mock/stop", &json!({})), 200);
    assert_eq!(
        ok(&acme.get(&format!("/v1/payments/{pay}")), 200).body["amount"],
        700
    );
    assert_eq!(ids(&acme.get("/v1/payments")), std::slice::from_ref(&pay));
    let refresh = acme.get(&format!("/v1/payments/{pay}?refresh=true"));
    assert_eq!(
        (refresh.status, refresh.code()),
        (503, "provider_unavailable")
    );
    ok(&admin.post("/admin/plugins/mock/reload", &json!({})), 200);

    // A tenant sees its own records only; a caller without a tenant sees them all.
    assert_eq!(acme.get(&format!("/v1/customers/{other}")).status, 404);
    assert_eq!(ids(&acme.get("/v1/customers")), std::slice::from_ref(&mine));
    assert_eq!(ids(&api.get("/v1/customers")).len(), 2);
    let bad = api.for_tenant("no spaces allowed").get("/v1/customers");
    assert_eq!((bad.status, bad.param()), (400, "X-Tenant-Id"));
}

#[test]
fn every_error_has_the_same_shape_with_the_request_id() {
    let s = scratch(None);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let check = |r: Resp, status: u16, code: &str| {
        assert_eq!(r.status, status, "{r:?}");
        let e = &r.body["error"];
        assert_eq!(e["code"], code, "{r:?}");
        for field in ["type", "message", "param", "decline_code", "request_id"] {
            assert!(e.get(field).is_some(), "no {field}: {r:?}");
        }
        assert_eq!(
            e["request_id"].as_str(),
            r.header("x-request-id"),
            "the body names the request the header names"
        );
    };
    check(api.get("/v1/nowhere"), 404, "not_found");
    check(
        api.send("PUT", "/v1/payments", &[], Some("{}")),
        405,
        "method_not_allowed",
    );
    check(
        api.send("PATCH", "/healthz", &[], None),
        405,
        "method_not_allowed",
    );
    check(
        api.send(
            "POST",
            "/v1/customers",
            &[("Content-Type", "text/plain")],
            Some("user_id=u"),
        ),
        415,
        "unsupported_media_type",
    );
    let big = format!("{{\"user_id\": \"{}\"}}", "x".repeat(2_000_000));
    check(
        api.send("POST", "/v1/customers", &[], Some(&big)),
        413,
        "body_too_large",
    );
    check(
        Api::new(&host.addr, "wrong_key_123").get("/v1/payments"),
        401,
        "unauthorized",
    );
    let r = api.send("PUT", "/v1/payments", &[], Some("{}"));
    assert_eq!(r.header("allow"), Some("POST,GET,HEAD"), "{r:?}");
    let declined = api.post(
        "/v1/customers",
        &json!({"user_id": "d", "email": "d@example.com"}),
    );
    let cust = ok(&declined, 201).s("id");
    let attach = api.post(
        &format!("/v1/customers/{cust}/payment_methods"),
        &json!({"payment_method": "pm_nonexistent"}),
    );
    check(attach, 404, "not_found");
}

#[test]
fn the_description_is_served_with_its_reference_page() {
    let s = scratch(None);
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    let doc = api.get("/openapi.json");
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/v1/payments",
        "/v1/payments/{id}/capture",
        "/v1/customers/{id}/payment_methods/{payment_method}",
        "/admin/plugins",
        "/webhooks/payments/{provider}",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    // The configured instances are the provider names a request may give.
    assert_eq!(
        doc.body["components"]["schemas"]["ProviderName"]["enum"],
        json!(["mock"])
    );
    // Links lead from what a write creates to what can be done with it.
    let links = &doc.body["paths"]["/v1/payments"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["CapturePayment"]["operationId"], "capture_payment");
    let page = api.get("/docs/");
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap_or_default();
    assert!(html.contains("swagger"), "{html}");
    let (status, _) = http(&host.addr, "GET", "/docs/swagger-ui-bundle.js", None, None);
    assert_eq!(status, 200, "the assets are served by the host, not a CDN");
}

/// A refund's reads, by the host's own schedule: (status, checks, next_check_at).
async fn refund_checks(dir: &std::path::Path, refund: &str) -> (String, i64, Option<i64>) {
    let (dir, refund) = (dir.to_path_buf(), refund.to_owned());
    let row = tokio::task::spawn_blocking(move || {
        TestDb::sqlite(&dir).rows(
            "SELECT status, CAST(checks AS TEXT), CAST(next_check_at AS TEXT) FROM refunds \
             WHERE id = $1",
            &[&refund],
        )
    })
    .await
    .unwrap()
    .remove(0);
    (
        row[0].clone().unwrap(),
        row[1].as_deref().unwrap().parse().unwrap(),
        row[2].as_deref().map(|n| n.parse().unwrap()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsettled_refund_is_read_on_a_growing_pause_until_it_settles() {
    use payhost::api::requests::{CreateCustomer, CreatePayment, CreateRefund};
    use payhost::clock::ManualClock;
    use payhost::service::Ctx;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let s = scratch(None);
    let start = 1_700_000_000;
    let clock = Arc::new(ManualClock::new(start * 1000));
    let state =
        payhost::app::AppState::start(payhost::config::load(&s.config()).unwrap(), clock.clone())
            .await
            .unwrap();
    let (svc, ctx) = (&state.service, Ctx::default());
    fn body<T: payhost::api::requests::Body>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }
    let c = svc
        .create_customer(
            &ctx,
            body::<CreateCustomer>(json!({"user_id": "slow-bank", "email": "slow@example.com"})),
        )
        .await
        .unwrap();
    let p = svc
        .create_payment(
            &ctx,
            body::<CreatePayment>(json!({"customer": c.body.id, "amount": 900,
                "currency": "eur", "payment_method": "pm_card_visa"})),
        )
        .await
        .unwrap();
    // The bank answers on the third read.
    let r = svc
        .create_refund(
            &ctx,
            body::<CreateRefund>(json!({"payment": p.body.id, "metadata":
                {"mock_refund": "pending", "mock_refund_reads": "3"}})),
        )
        .await
        .unwrap();
    let (dir, id) = (s.dir.path(), r.body.id.clone());
    assert_eq!(
        refund_checks(dir, &id).await,
        ("pending".into(), 0, Some(start + 60))
    );
    let until = |want: (&'static str, i64, Option<i64>)| {
        let id = id.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let got = refund_checks(dir, &id).await;
                if (got.0.as_str(), got.1, got.2) == want {
                    return;
                }
                assert!(Instant::now() < deadline, "wanted {want:?}, got {got:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // Not due yet: not read.
    clock.advance_secs(59);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    until(("pending", 0, Some(start + 60))).await;
    // A minute on: read, still pending; next in ten minutes, then in an hour.
    clock.advance_secs(1);
    until(("pending", 1, Some(start + 60 + 600))).await;
    clock.advance_secs(600);
    until(("pending", 2, Some(start + 660 + 3_600))).await;
    clock.advance_secs(3_600);
    until(("succeeded", 2, None)).await;

    let (db_dir, refund) = (dir.to_path_buf(), id.clone());
    let processed = tokio::task::spawn_blocking(move || {
        TestDb::sqlite(&db_dir).value(
            "SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE type = 'RefundProcessed' \
             AND object_id = $1",
            &[&refund],
        )
    })
    .await
    .unwrap();
    assert_eq!(processed.as_deref(), Some("1"));
    // Settled: never read again.
    clock.advance_secs(86_400 * 3);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    until(("succeeded", 2, None)).await;
}
