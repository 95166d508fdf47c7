//! The paypal plugin over the real binary and the fake PayPal: conformance (capture, void,
//! redirects, refunds, subscriptions); webhooks signed with RSA over a test CA's
//! certificate, accepted when right and refused with 400 and nothing stored when the body,
//! the webhook id, the certificate's host, its dates or its chain is wrong; the verify API
//! fallback; a payment authorized, captured in part and refunded in part through `/v1` on
//! paypal, stripe (fake) and mock, with a token revoked mid-run costing no failed call;
//! amounts in USD, JPY and a three-decimal currency; PayPal's refusals named.

use payhost_tests::api::{Api, Resp};
use payhost_tests::db::TestDb;
use payhost_tests::fake_paypal::{
    FakePaypal, Running, Signer, CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID,
};
use payhost_tests::fake_stripe::{self, FakeStripe};
use payhost_tests::*;
use serde_json::{json, Value};
use std::process::Command;

fn paypal_so() -> std::path::PathBuf {
    plugin("payhost_plugin_paypal")
}

/// The instance's TOML for `fake`.
fn paypal_instance(fake: &Running, extra: &str) -> String {
    format!(
        "[providers.paypal]\nplugin = \"paypal\"\nallow_hosts = [\"127.0.0.1\"]\n\
         config = {{ client_id = \"{CLIENT_ID}\", client_secret = \"{CLIENT_SECRET}\", webhook_id = \"{WEBHOOK_ID}\", \
         api_base = \"{}\", trusted_roots = \"{}\", return_url = \"https://shop.example/paid\"{extra} }}\n",
        fake.base,
        fake.roots_file.display()
    )
}

fn paypal_host(fake: &Running, extra: &str) -> (Scratch, HostProcess, Api) {
    let s = Scratch::with_host(
        &[(&paypal_so(), "paypal.so")],
        "default_provider = \"paypal\"\n",
        &paypal_instance(fake, extra),
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    (s, host, api)
}

/// The buyer's browser opening an approval URL.
fn visit(url: &str) {
    let rest = url.split_once("://").unwrap().1;
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let (status, body) = http(addr, "GET", path, None, None);
    assert_eq!(status, 200, "approving at {url}: {body}");
}

fn redirect_url(r: &Resp) -> String {
    assert_eq!(r.body["next_action"]["type"], "redirect_to_url", "{r:?}");
    r.body["next_action"]["url"].as_str().unwrap().to_owned()
}

fn customer(api: &Api, user: &str, provider: &str) -> String {
    let c = api.post(
        "/v1/customers",
        &json!({"user_id": user, "email": format!("{user}@example.com"), "name": "Ada", "provider": provider}),
    );
    assert_eq!(c.status, 201, "{c:?}");
    c.s("id")
}

#[test]
fn conformance_passes_on_the_fake_paypal() {
    let fake = FakePaypal::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("paypal.toml");
    std::fs::write(
        &config,
        format!(
            "allow_hosts = [\"127.0.0.1\"]\n[config]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
             webhook_id = \"{WEBHOOK_ID}\"\napi_base = \"{}\"\ntrusted_roots = \"{}\"\n",
            fake.base,
            fake.roots_file.display()
        ),
    )
    .unwrap();
    let out = Command::new(payhost_bin())
        .args(["plugins", "conformance"])
        .arg(paypal_so())
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
        "PASS  redirects.next_action",
        "PASS  redirects.confirm_before_approval_refused",
        "PASS  redirects.approve_then_confirm",
        "PASS  manual_capture.capture_part",
        "PASS  manual_capture.refused_above_capturable",
        "PASS  manual_capture.void",
        "PASS  refunds.partial_then_rest",
        "PASS  refunds.refused_above_remaining",
        "PASS  subscriptions.create_change_cancel",
        "PASS  webhooks.unsigned_refused",
        "PASS  webhooks.forged_thin_refused",
        "PASS  capability.subscriptions.implemented",
        "PASS  capability.manual_capture.implemented",
        "SKIP  customers.create_get_update: no customers capability",
    ] {
        assert!(report.contains(check), "missing '{check}' in:\n{report}");
    }
    // Every POST carried a PayPal-Request-Id; the token was fetched once for the whole run.
    let seen = fake.fake.seen();
    assert!(seen
        .iter()
        .filter(|r| r.method == "POST" && r.path != "/v1/oauth2/token")
        .all(|r| r.request_id.is_some()));
    // Two instances (the suite restarts one to check ids never repeat): two tokens.
    let calls = seen.iter().filter(|r| r.path != "/v1/oauth2/token").count();
    assert!(calls > 30, "{calls} calls");
    assert_eq!(
        fake.fake.token_requests(),
        2,
        "the token is cached per instance, never fetched per call"
    );
}

/// A payment authorized, captured in part (600 of 1000), refunded in part (200), through
/// `/v1`; `approve` does what the buyer or the method does to get it authorized.
fn authorize_capture_refund(
    api: &Api,
    customer: &str,
    method: Option<&str>,
    approve: &dyn Fn(&Resp),
) -> String {
    let mut body = json!({"customer": customer, "amount": 1000, "currency": "usd",
                          "capture_method": "manual", "return_url": "https://shop.example/back"});
    if let Some(m) = method {
        body["payment_method"] = json!(m);
    }
    let created = api.post_idem("/v1/payments", &format!("order-{customer}"), &body);
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.s("id");
    approve(&created);
    let p = api.get(&format!("/v1/payments/{id}"));
    let p = if p.body["status"] == "requires_capture" {
        p
    } else {
        api.post(&format!("/v1/payments/{id}/confirm"), &json!({}))
    };
    assert_eq!(p.body["status"], "requires_capture", "{p:?}");
    assert_eq!(p.body["capture_method"], "manual", "{p:?}");

    let over = api.post(
        &format!("/v1/payments/{id}/capture"),
        &json!({"amount": 1001}),
    );
    assert_eq!(
        (over.status, over.code(), over.param()),
        (409, "invalid_state", "amount"),
        "{over:?}"
    );
    let captured = api.post(
        &format!("/v1/payments/{id}/capture"),
        &json!({"amount": 600}),
    );
    assert_eq!(captured.status, 200, "{captured:?}");
    assert_eq!(captured.body["status"], "succeeded", "{captured:?}");
    assert_eq!(captured.body["amount_received"], 600, "{captured:?}");

    let too_much = api.post("/v1/refunds", &json!({"payment": id, "amount": 601}));
    assert_eq!(
        (too_much.status, too_much.param()),
        (409, "amount"),
        "{too_much:?}"
    );
    let refund = api.post("/v1/refunds", &json!({"payment": id, "amount": 200}));
    assert_eq!(refund.status, 201, "{refund:?}");
    let read = api.get(&format!("/v1/payments/{id}"));
    assert_eq!(
        (
            read.body["amount_received"].clone(),
            read.body["amount_refunded"].clone(),
            read.body["refund_status"].clone()
        ),
        (json!(600), json!(200), json!("partially_refunded")),
        "{read:?}"
    );
    let fresh = api.get(&format!("/v1/payments/{id}?refresh=true"));
    assert_eq!(fresh.status, 200, "{fresh:?}");
    assert_eq!(
        (
            fresh.body["amount_received"].clone(),
            fresh.body["amount_refunded"].clone()
        ),
        (json!(600), json!(200)),
        "the provider agrees: {fresh:?}"
    );
    id
}

#[test]
fn authorize_capture_part_refund_part_on_paypal_with_a_token_revoked_mid_run() {
    let fake = FakePaypal::start();
    let (_s, _host, api) = paypal_host(&fake, "");
    let cus = customer(&api, "pp-1", "paypal");
    let revoke = fake.fake.clone();
    let id = authorize_capture_refund(&api, &cus, None, &|created| {
        assert_eq!(created.body["status"], "requires_action", "{created:?}");
        visit(&redirect_url(created));
        // PayPal revokes every token while the flow goes on: the next call renews it.
        revoke.expire_tokens();
    });
    assert_eq!(
        fake.fake.token_requests(),
        2,
        "one token, then one renewal after the revocation"
    );
    let order = fake
        .fake
        .order(&api.get(&format!("/v1/payments/{id}")).s("provider_id"))
        .unwrap();
    assert_eq!(order["intent"], "AUTHORIZE");
    let payments = &order["purchase_units"][0]["payments"];
    assert_eq!(payments["captures"][0]["amount"]["value"], "6.00");
    assert_eq!(payments["refunds"][0]["amount"]["value"], "2.00");
    // Every POST of the flow carried a PayPal-Request-Id.
    assert!(fake
        .fake
        .seen()
        .iter()
        .filter(|r| r.method == "POST" && r.path != "/v1/oauth2/token")
        .all(|r| r.request_id.is_some()));
}

#[test]
fn authorize_capture_part_refund_part_on_stripe_and_mock() {
    let stripe = FakeStripe::start();
    let providers = format!(
        "[providers.mock]\nplugin = \"mock\"\nconfig = {{ webhook_secret = \"whsec_m\" }}\n\
         [providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
         config = {{ api_key = \"{}\", webhook_secret = \"whsec_s\", api_base = \"{}\" }}\n",
        fake_stripe::API_KEY,
        stripe.base
    );
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so"), (&stripe_so(), "stripe.so")],
        "default_provider = \"mock\"\n",
        &providers,
    );
    let host = s.serve();
    let api = Api::new(&host.addr, API_KEY);
    for provider in ["mock", "stripe"] {
        let cus = customer(&api, &format!("{provider}-1"), provider);
        let pm = api.post(
            &format!("/v1/customers/{cus}/payment_methods"),
            &json!({"payment_method": "pm_card_visa"}),
        );
        assert_eq!(pm.status, 200, "{pm:?}");
        authorize_capture_refund(&api, &cus, Some(&pm.s("id")), &|_| {});
    }
    assert!(
        stripe
            .fake
            .seen()
            .iter()
            .any(|r| r.path.ends_with("/capture")),
        "stripe captured over its protocol"
    );
}

#[test]
fn amounts_go_to_paypal_as_decimal_strings_with_each_currencys_digits() {
    let fake = FakePaypal::start();
    let (_s, _host, api) = paypal_host(&fake, "");
    let cus = customer(&api, "pp-cur", "paypal");
    for (amount, currency, value) in [
        (5000, "usd", "50.00"),
        (5000, "jpy", "5000"),
        (12_345, "bhd", "12.345"),
    ] {
        let p = api.post(
            "/v1/payments",
            &json!({"customer": cus, "amount": amount, "currency": currency}),
        );
        assert_eq!(p.status, 201, "{p:?}");
        let order = fake.fake.order(&p.s("provider_id")).unwrap();
        assert_eq!(
            order["purchase_units"][0]["amount"]["value"], value,
            "{currency}"
        );
        assert_eq!(
            order["purchase_units"][0]["amount"]["currency_code"],
            currency.to_uppercase()
        );
        assert_eq!(p.body["amount"], amount, "read back exactly: {p:?}");
    }
    // HUF is whole at PayPal: a fraction of a forint is refused, naming the amount.
    let huf = api.post(
        "/v1/payments",
        &json!({"customer": cus, "amount": 150_050, "currency": "huf"}),
    );
    assert_eq!((huf.status, huf.param()), (400, "amount"), "{huf:?}");

    // The fake refuses what PayPal refuses: a float amount, wrong digits.
    let token = {
        let (s, v) = form_post(&fake.base, "/v1/oauth2/token");
        assert_eq!(s, 200, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    };
    let order = |amount: Value| {
        paypal_post(
            &fake.base,
            &token,
            "/v2/checkout/orders",
            &json!({"intent": "CAPTURE", "purchase_units": [{"amount": amount}]}),
        )
    };
    let (s, v) = order(json!({"currency_code": "USD", "value": 10.5}));
    assert_eq!(
        (s, v["details"][0]["issue"].as_str()),
        (400, Some("INVALID_PARAMETER_SYNTAX")),
        "{v}"
    );
    let (s, v) = order(json!({"currency_code": "JPY", "value": "100.50"}));
    assert_eq!(
        (s, v["details"][0]["issue"].as_str()),
        (422, Some("DECIMAL_PRECISION")),
        "{v}"
    );
    let (s, v) = order(json!({"currency_code": "USD", "value": "10.00"}));
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    let (s, v) = paypal_post(
        &fake.base,
        &token,
        &format!("/v2/checkout/orders/{id}/capture"),
        &json!({}),
    );
    assert_eq!(
        (s, v["details"][0]["issue"].as_str()),
        (422, Some("ORDER_NOT_APPROVED")),
        "{v}"
    );
    // A subscription is canceled with a reason (PayPal requires one): without it, 400 and
    // the subscription stays as it was.
    let (s, v) = paypal_post(
        &fake.base,
        &token,
        "/v1/billing/subscriptions",
        &json!({"plan_id": "P-BASIC"}),
    );
    assert_eq!(s, 201, "{v}");
    let sub = v["id"].as_str().unwrap().to_owned();
    let cancel = |body: Value| {
        paypal_post(
            &fake.base,
            &token,
            &format!("/v1/billing/subscriptions/{sub}/cancel"),
            &body,
        )
    };
    for body in [json!({}), json!({"reason": ""})] {
        let (s, v) = cancel(body);
        assert_eq!(
            (
                s,
                v["details"][0]["issue"].as_str(),
                v["details"][0]["field"].as_str()
            ),
            (400, Some("MISSING_REQUIRED_PARAMETER"), Some("/reason")),
            "{v}"
        );
    }
    let (s, v) = cancel(json!({"reason": "x".repeat(129)}));
    assert_eq!(
        (s, v["details"][0]["issue"].as_str()),
        (400, Some("INVALID_STRING_LENGTH")),
        "{v}"
    );
    assert_eq!(
        fake.fake.subscription(&sub).unwrap()["status"],
        "APPROVAL_PENDING"
    );
    assert_eq!(cancel(json!({"reason": "Not needed"})).0, 204);
    assert_eq!(fake.fake.subscription(&sub).unwrap()["status"], "CANCELLED");
}

/// A raw request to the fake PayPal, as any PayPal client would send it.
fn paypal_post(base: &str, token: &str, path: &str, body: &Value) -> (u16, Value) {
    raw(
        base,
        path,
        &format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"),
        &body.to_string(),
    )
}

fn form_post(base: &str, path: &str) -> (u16, Value) {
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    raw(
        base,
        path,
        &format!(
            "Authorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        "grant_type=client_credentials",
    )
}

fn raw(base: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn a_declined_funding_source_is_a_failed_payment_and_an_unapproved_order_cannot_be_confirmed() {
    let fake = FakePaypal::start();
    let (_s, _host, api) = paypal_host(&fake, "");
    let cus = customer(&api, "pp-dec", "paypal");
    let p = api.post(
        "/v1/payments",
        &json!({"customer": cus, "amount": 2500, "currency": "usd"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    let id = p.s("id");
    let early = api.post(&format!("/v1/payments/{id}/confirm"), &json!({}));
    assert_eq!(early.status, 409, "{early:?}");
    assert!(
        early.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not approved"),
        "{early:?}"
    );
    visit(&format!("{}&funding=declined", redirect_url(&p)));
    let declined = api.post(&format!("/v1/payments/{id}/confirm"), &json!({}));
    assert_eq!(declined.body["status"], "failed", "{declined:?}");
    assert_eq!(
        declined.body["failure_code"], "instrument_declined",
        "{declined:?}"
    );

    // Automatic capture: approve, confirm, succeeded.
    let p = api.post(
        "/v1/payments",
        &json!({"customer": cus, "amount": 2500, "currency": "usd"}),
    );
    visit(&redirect_url(&p));
    let paid = api.post(&format!("/v1/payments/{}/confirm", p.s("id")), &json!({}));
    assert_eq!(
        (
            paid.body["status"].clone(),
            paid.body["amount_received"].clone()
        ),
        (json!("succeeded"), json!(2500)),
        "{paid:?}"
    );

    // A saved payment method is not a thing for orders: refused, naming it.
    let m = api.post("/v1/payments", &json!({"customer": cus, "amount": 100, "currency": "usd", "payment_method": "pm_card_visa"}));
    assert_eq!(
        (m.status, m.code(), m.param()),
        (400, "unsupported_operation", "payment_method"),
        "{m:?}"
    );
}

#[test]
fn subscriptions_approve_on_paypal_and_what_paypal_lacks_is_refused_by_name() {
    let fake = FakePaypal::start();
    let (_s, _host, api) = paypal_host(&fake, "");
    let cus = customer(&api, "pp-sub", "paypal");
    let trial = api.post(
        "/v1/subscriptions",
        &json!({"customer": cus, "price": "P-BASIC", "trial_days": 14}),
    );
    assert_eq!(
        (trial.status, trial.code(), trial.param()),
        (400, "unsupported_operation", "trial_days"),
        "{trial:?}"
    );
    assert!(
        trial.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plan"),
        "{trial:?}"
    );

    let sub = api.post(
        "/v1/subscriptions",
        &json!({"customer": cus, "price": "P-BASIC"}),
    );
    assert_eq!(sub.status, 201, "{sub:?}");
    assert_eq!(sub.body["status"], "incomplete", "{sub:?}");
    let id = sub.s("id");
    visit(&redirect_url(&sub));
    let active = api.get(&format!("/v1/subscriptions/{id}?refresh=true"));
    assert_eq!(active.body["status"], "active", "{active:?}");
    assert!(
        active.body["current_period_end"].as_i64().unwrap()
            > active.body["current_period_start"].as_i64().unwrap(),
        "{active:?}"
    );
    let provider_id = active.s("provider_id");
    assert_eq!(
        fake.fake.subscription(&provider_id).unwrap()["subscriber"]["email_address"],
        "pp-sub@example.com",
        "the payer went along"
    );

    let changed = api.post(
        &format!("/v1/subscriptions/{id}/price"),
        &json!({"price": "P-PRO"}),
    );
    assert_eq!(
        (changed.status, changed.body["price"].clone()),
        (200, json!("P-PRO")),
        "{changed:?}"
    );
    let later = api.post(
        &format!("/v1/subscriptions/{id}/cancel"),
        &json!({"at_period_end": true}),
    );
    assert_eq!(
        (later.status, later.code(), later.param()),
        (400, "unsupported_operation", "at_period_end"),
        "{later:?}"
    );
    let nothing = api.post(&format!("/v1/subscriptions/{id}/reactivate"), &json!({}));
    assert_eq!(nothing.status, 409, "nothing to undo: {nothing:?}");
    let ended = api.post(&format!("/v1/subscriptions/{id}/cancel"), &json!({}));
    assert_eq!(
        (ended.status, ended.body["status"].clone()),
        (200, json!("canceled")),
        "{ended:?}"
    );
    assert_eq!(
        fake.fake.subscription(&provider_id).unwrap()["status"],
        "CANCELLED"
    );
}

/// A delivery's headers.
type Headers = Vec<(String, String)>;

/// Delivers `body` with `headers` to the paypal instance.
fn deliver(api: &Api, headers: &[(String, String)], body: &[u8]) -> Resp {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    api.send(
        "POST",
        "/webhooks/payments/paypal",
        &h,
        Some(std::str::from_utf8(body).unwrap()),
    )
}

fn inbox_count(s: &Scratch) -> usize {
    TestDb::sqlite(s.dir.path())
        .value("SELECT CAST(COUNT(*) AS TEXT) FROM webhook_inbox", &[])
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn webhooks_signed_with_the_test_ca_are_accepted_and_every_forgery_is_refused() {
    let fake = FakePaypal::start();
    let (s, _host, api) = paypal_host(&fake, "");
    let cus = customer(&api, "pp-wh", "paypal");
    let p = api.post(
        "/v1/payments",
        &json!({"customer": cus, "amount": 4200, "currency": "usd"}),
    );
    visit(&redirect_url(&p));
    // The capture happens at PayPal; payhost learns it from the webhook alone.
    let order_id = p.s("provider_id");
    let token = form_post(&fake.base, "/v1/oauth2/token").1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = paypal_post(
        &fake.base,
        &token,
        &format!("/v2/checkout/orders/{order_id}/capture"),
        &json!({}),
    );
    assert_eq!(status, 201);
    let event = fake.fake.event(
        "PAYMENT.CAPTURE.COMPLETED",
        "capture",
        fake.fake.capture_of(&order_id),
    );
    let body = serde_json::to_vec(&event).unwrap();
    let f = &fake.fake;

    let refusals: Vec<(&str, Headers, Vec<u8>)> = vec![
        (
            "a tampered body",
            f.sign(&body, WEBHOOK_ID, Signer::Valid),
            {
                let mut b = body.clone();
                let at = b
                    .windows(4)
                    .position(|w| w == b"4200".as_slice())
                    .unwrap_or(10);
                b[at] = b'9';
                b
            },
        ),
        (
            "another webhook id",
            f.sign(&body, "WH-SOMEONE-ELSE", Signer::Valid),
            body.clone(),
        ),
        (
            "a certificate from a non-PayPal host",
            {
                let mut h = f.sign(&body, WEBHOOK_ID, Signer::Valid);
                h[3].1 = "https://certs.evil.example/v1/notifications/certs/valid.pem".into();
                h
            },
            body.clone(),
        ),
        (
            "an expired certificate",
            f.sign(&body, WEBHOOK_ID, Signer::Expired),
            body.clone(),
        ),
        (
            "a certificate that does not chain to the trusted root",
            f.sign(&body, WEBHOOK_ID, Signer::Rogue),
            body.clone(),
        ),
        (
            "no signature",
            f.sign(&body, WEBHOOK_ID, Signer::Valid)
                .into_iter()
                .filter(|(k, _)| k != "PAYPAL-TRANSMISSION-SIG")
                .collect(),
            body.clone(),
        ),
    ];
    for (what, headers, b) in refusals {
        let r = deliver(&api, &headers, &b);
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_signature"),
            "{what}: {r:?}"
        );
        assert_eq!(inbox_count(&s), 0, "{what}: nothing stored");
    }
    assert_eq!(
        api.get(&format!("/v1/payments/{}", p.s("id"))).body["status"],
        "requires_action",
        "no forged delivery changed it"
    );

    let ok = deliver(&api, &f.sign(&body, WEBHOOK_ID, Signer::Valid), &body);
    assert_eq!(ok.status, 200, "{ok:?}");
    let again = deliver(&api, &f.sign(&body, WEBHOOK_ID, Signer::Valid), &body);
    assert_eq!(
        (again.status, again.body["duplicate"].clone()),
        (200, json!(true)),
        "deduplicated by PayPal's event id: {again:?}"
    );
    assert_eq!(inbox_count(&s), 1);
    let id = p.s("id");
    eventually("the payment synced from PAYMENT.CAPTURE.COMPLETED", || {
        api.get(&format!("/v1/payments/{id}")).body["status"] == "succeeded"
    });
    // The certificate was fetched once (cached per URL), from the fake's host.
    let fetched = f
        .seen()
        .iter()
        .filter(|r| r.path.ends_with("/certs/valid.pem"))
        .count();
    assert!(fetched <= 1, "fetched {fetched} times");

    // A refund made in PayPal's dashboard arrives as PAYMENT.CAPTURE.REFUNDED.
    let capture_id = f.capture_of(&order_id)["id"].as_str().unwrap().to_owned();
    let (status, refund) = paypal_post(
        &fake.base,
        &token,
        &format!("/v2/payments/captures/{capture_id}/refund"),
        &json!({"amount": {"currency_code": "USD", "value": "10.00"}}),
    );
    assert_eq!(status, 201, "{refund}");
    let event = f.event("PAYMENT.CAPTURE.REFUNDED", "refund", refund);
    let body = serde_json::to_vec(&event).unwrap();
    assert_eq!(
        deliver(&api, &f.sign(&body, WEBHOOK_ID, Signer::Valid), &body).status,
        200
    );
    eventually("the refund synced", || {
        api.get(&format!("/v1/payments/{id}")).body["amount_refunded"] == 1000
    });
}

#[test]
fn the_verify_api_decides_when_configured() {
    let fake = FakePaypal::start();
    let (s, _host, api) = paypal_host(&fake, ", webhook_verification = \"api\"");
    let f = &fake.fake;
    let event = f.event(
        "CHECKOUT.ORDER.APPROVED",
        "checkout-order",
        json!({"id": "5OFAKE", "status": "APPROVED"}),
    );
    let body = serde_json::to_vec(&event).unwrap();
    let forged = deliver(&api, &f.sign(&body, WEBHOOK_ID, Signer::Rogue), &body);
    assert_eq!(forged.status, 400, "{forged:?}");
    assert!(
        forged.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FAILURE"),
        "{forged:?}"
    );
    let ok = deliver(&api, &f.sign(&body, WEBHOOK_ID, Signer::Valid), &body);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(inbox_count(&s), 1);
    assert!(f
        .seen()
        .iter()
        .any(|r| r.path == "/v1/notifications/verify-webhook-signature"));
    assert!(
        !f.seen().iter().any(|r| r.path.contains("/certs/")),
        "the API alone decided"
    );
}

#[test]
fn secrets_never_appear_in_the_plugin_listing_or_the_log() {
    let fake = FakePaypal::start();
    let (s, host, api) = paypal_host(&fake, "");
    let cus = customer(&api, "pp-sec", "paypal");
    let p = api.post(
        "/v1/payments",
        &json!({"customer": cus, "amount": 100, "currency": "usd"}),
    );
    assert_eq!(p.status, 201);
    let admin = Api::new(&host.addr, ADMIN_KEY).get("/admin/plugins");
    let (_, log) = host.terminate();
    assert!(admin.status == 200, "{admin:?}");
    for text in [admin.body.to_string(), log] {
        assert!(
            !text.contains(CLIENT_SECRET),
            "the client secret leaked: {text}"
        );
        assert!(
            !text.contains("A21AAfake"),
            "an access token leaked: {text}"
        );
    }
    drop(s);
}

#[test]
fn rate_limits_and_outages_are_retried_with_one_request_id() {
    let fake = FakePaypal::start();
    let _s = Scratch::with_host(
        &[(&paypal_so(), "paypal.so")],
        "default_provider = \"paypal\"\n",
        &format!(
            "{}[routing.resolver]\nbackoff_secs = [1]\n",
            paypal_instance(&fake, "")
        ),
    );
    let _host = _s.serve();
    let api = Api::new(&_host.addr, API_KEY);
    let cus = customer(&api, "pp-retry", "paypal");
    fake.fake.chaos([
        payhost_tests::fake_paypal::Chaos::Status(429),
        payhost_tests::fake_paypal::Chaos::Status(503),
    ]);
    let p = api.post_idem(
        "/v1/payments",
        "retry-1",
        &json!({"customer": cus, "amount": 700, "currency": "usd"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    let orders: Vec<_> = fake
        .fake
        .seen()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/checkout/orders")
        .map(|r| r.request_id)
        .collect();
    assert_eq!(orders.len(), 3, "two retries: {orders:?}");
    assert!(
        orders.iter().all(|k| k == &orders[0] && k.is_some()),
        "one PayPal-Request-Id: {orders:?}"
    );

    // More failures than retries: PayPal answered the order's POST with 500s, so whether it
    // made the order is unknown. The payment is recorded processing, its attempt in doubt
    // (202), and PayPal is asked again under the same PayPal-Request-Id until it is known:
    // one order, never a second.
    fake.fake.chaos([
        payhost_tests::fake_paypal::Chaos::Status(500),
        payhost_tests::fake_paypal::Chaos::Status(500),
        payhost_tests::fake_paypal::Chaos::Status(500),
    ]);
    let before = fake.fake.seen().len();
    let down = api.post(
        "/v1/payments",
        &json!({"customer": cus, "amount": 700, "currency": "usd"}),
    );
    assert_eq!(down.status, 202, "{down:?}");
    assert_eq!(
        (
            down.body["status"].as_str(),
            down.body["attempts"][0]["state"].as_str()
        ),
        (Some("processing"), Some("in_doubt")),
        "{down:?}"
    );
    let id = down.s("id");
    let mut known = down.clone();
    eventually("PayPal asked again and the payment known", || {
        known = api.get(&format!("/v1/payments/{id}"));
        known.body["attempts"][0]["state"] == "resolved"
    });
    assert_eq!(known.body["status"], "requires_action", "{known:?}");
    let asks: Vec<_> = fake.fake.seen()[before..]
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/checkout/orders")
        .map(|r| r.request_id.clone())
        .collect();
    assert!(
        asks.len() >= 4,
        "three 500s, then the resolver's ask: {asks:?}"
    );
    assert!(
        asks.iter().all(|k| k == &asks[0] && k.is_some()),
        "one PayPal-Request-Id for every ask: {asks:?}"
    );
    assert_eq!(
        fake.fake
            .order(known.s("provider_id").as_str())
            .map(|o| o["id"].clone()),
        Some(json!(known.s("provider_id"))),
        "the order PayPal made is the payment's"
    );
}
