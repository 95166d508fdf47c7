//! The stripe plugin's protocol, through the host's registry and the real `.so`, against
//! the fake Stripe server: retries exactly as Stripe's SDKs make them (with the same
//! Idempotency-Key), idempotent replays and `idempotency_error`, error mapping, deadlines,
//! and the fake itself refusing what Stripe refuses.

use payhost::app::AppState;
use payhost::clock::SystemClock;
use payhost::config;
use payhost::plugins::CallError;
use payhost_plugin_api::{
    codes, ops, CallCtx, Currency, Money, NewCustomer, NewPayment, PaymentStatus,
};
use payhost_tests::fake_stripe::{Chaos, FakeStripe, Running, API_KEY};
use payhost_tests::*;
use std::sync::Arc;
use std::time::Duration;

fn scratch(fake: &Running, api_key: &str, extra: &str) -> Scratch {
    Scratch::new(
        &[(&stripe_so(), "libpayhost_plugin_stripe.so")],
        &format!(
            "[providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n{extra}\
             config = {{ api_key = \"{api_key}\", webhook_secret = \"whsec_x\", api_base = \"{}\" }}\n",
            fake.base
        ),
    )
}

/// On the system clock: call deadlines are measured on the host clock, and these tests
/// need them to pass.
async fn start(s: &Scratch) -> AppState {
    AppState::start(config::load(&s.config()).unwrap(), Arc::new(SystemClock))
        .await
        .unwrap()
}

fn ctx(key: Option<&str>) -> CallCtx {
    CallCtx {
        idempotency_key: key.map(Into::into),
        request_id: "req_test".into(),
        ..CallCtx::default()
    }
}

async fn create_customer(state: &AppState, key: Option<&str>) -> Result<String, CallError> {
    state
        .registry
        .call::<ops::CreateCustomer>(
            "stripe",
            ctx(key),
            NewCustomer {
                email: "a@example.com".into(),
                ..NewCustomer::default()
            },
        )
        .await
        .map(|c| c.id)
}

fn posts(fake: &FakeStripe) -> Vec<Option<String>> {
    fake.seen()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.idempotency_key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_as_the_sdks_do_with_one_idempotency_key() {
    let fake = FakeStripe::start();
    let s = scratch(&fake, API_KEY, "");
    let state = start(&s).await;

    // Two 500s, then the answer: two retries, all with the same key.
    fake.fake
        .chaos([Chaos::Status(500, None), Chaos::Status(500, None)]);
    create_customer(&state, Some("k-retry")).await.unwrap();
    assert_eq!(posts(&fake.fake), vec![Some("k-retry".to_owned()); 3]);

    // Three 500s: at most two retries, then a retryable provider_unavailable.
    fake.fake.clear_seen();
    fake.fake.chaos([
        Chaos::Status(500, None),
        Chaos::Status(503, None),
        Chaos::Status(500, None),
    ]);
    let e = create_customer(&state, None).await.unwrap_err();
    assert!(
        matches!(&e, CallError::Plugin(p) if p.code == codes::UNAVAILABLE && p.retryable),
        "{e:?}"
    );
    let keys = posts(&fake.fake);
    assert_eq!(keys.len(), 3);
    assert!(
        keys[0].is_some() && keys.iter().all(|k| *k == keys[0]),
        "a generated key, reused: {keys:?}"
    );

    // 429 is retried only when Stripe says so; Stripe-Should-Retry: false stops a 500.
    fake.fake.clear_seen();
    fake.fake.chaos([Chaos::Status(429, None)]);
    let limited = create_customer(&state, None).await.unwrap_err();
    assert!(
        matches!(&limited, CallError::Plugin(p) if p.code == codes::RATE_LIMITED),
        "{limited:?}"
    );
    assert_eq!(posts(&fake.fake).len(), 1);
    fake.fake.clear_seen();
    fake.fake.chaos([Chaos::Status(429, Some(true))]);
    create_customer(&state, None).await.unwrap();
    assert_eq!(posts(&fake.fake).len(), 2);
    fake.fake.clear_seen();
    fake.fake.chaos([Chaos::Status(500, Some(false))]);
    assert!(create_customer(&state, None).await.is_err());
    assert_eq!(
        posts(&fake.fake).len(),
        1,
        "Stripe-Should-Retry: false is final"
    );

    // A dropped connection is retried with the same key.
    fake.fake.clear_seen();
    fake.fake.chaos([Chaos::Drop]);
    create_customer(&state, Some("k-drop")).await.unwrap();
    assert_eq!(posts(&fake.fake), vec![Some("k-drop".to_owned()); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_replays_errors_and_deadlines() {
    let fake = FakeStripe::start();
    let s = scratch(&fake, API_KEY, "call_timeout_ms = 1500\n");
    let state = start(&s).await;
    let customer = create_customer(&state, None).await.unwrap();

    let pay = |key: &'static str, amount: i64, pm: Option<&'static str>| {
        let (c, customer) = (ctx(Some(key)), customer.clone());
        let reg = state.registry.clone();
        async move {
            let req = NewPayment {
                customer_id: Some(customer),
                payment_method: pm.map(Into::into),
                ..NewPayment::new(Money::new(amount, Currency::parse("usd").unwrap()))
            };
            reg.call::<ops::CreatePayment>("stripe", c, req).await
        }
    };
    let first = pay("order-1", 1000, Some("pm_card_visa")).await.unwrap();
    assert_eq!(first.status, PaymentStatus::Succeeded);
    let again = pay("order-1", 1000, Some("pm_card_visa")).await.unwrap();
    assert_eq!(
        again.id, first.id,
        "Stripe replays the first answer for a repeated key"
    );
    let other = pay("order-1", 2000, Some("pm_card_visa"))
        .await
        .unwrap_err();
    assert!(
        matches!(&other, CallError::Plugin(p) if p.code == codes::CONFLICT),
        "{other:?}"
    );

    // A declined card is a failed payment, with Stripe's decline code.
    let declined = pay(
        "order-2",
        500,
        Some("pm_card_chargeDeclinedInsufficientFunds"),
    )
    .await
    .unwrap();
    assert_eq!(declined.status, PaymentStatus::Failed);
    assert_eq!(declined.failure_code.as_deref(), Some("insufficient_funds"));

    // Stripe's own validation comes back with its param.
    let bad = pay("order-3", 500, Some("pm_card_unknown"))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, CallError::Plugin(p) if p.code == codes::NOT_FOUND),
        "{bad:?}"
    );

    // A slow answer past the instance's deadline: the deadline travels with the call, so
    // the plugin's own HTTP budget ends there and it answers (no retry could fit); the host
    // carries on.
    fake.fake.chaos([Chaos::Slow(Duration::from_millis(2500))]);
    let started = std::time::Instant::now();
    let slow = create_customer(&state, None).await.unwrap_err();
    assert!(
        matches!(&slow, CallError::Plugin(p) if p.code == codes::UNAVAILABLE && p.message.contains("no answer within")),
        "{slow:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "{:?}",
        started.elapsed()
    );
    create_customer(&state, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_an_authentication_error_that_never_echoes_it() {
    let fake = FakeStripe::start();
    let s = scratch(&fake, "sk_test_wrong_key_123456", "");
    let state = start(&s).await;
    let e = create_customer(&state, None).await.unwrap_err();
    match e {
        CallError::Plugin(p) => {
            assert_eq!(p.code, codes::AUTHENTICATION);
            assert!(!p.message.contains("sk_test"), "{}", p.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_fake_refuses_what_stripe_refuses() {
    let fake = FakeStripe::start();
    let addr = fake.base.trim_start_matches("http://").to_owned();
    let send = |auth: &str, ctype: &str, body: &str| {
        let api = api::Api::new(&addr, auth);
        api.send(
            "POST",
            "/v1/customers",
            &[("Content-Type", ctype)],
            Some(body),
        )
    };
    let form = "application/x-www-form-urlencoded";
    assert_eq!(send("sk_test_nope", form, "email=a%40b.c").status, 401);
    let json = send(API_KEY, "application/json", "{\"email\":\"a@b.c\"}");
    assert_eq!(json.status, 400, "{json:?}");
    let unknown = send(API_KEY, form, "email=a%40b.c&colour=red");
    assert_eq!(
        (unknown.status, unknown.body["error"]["param"].as_str()),
        (400, Some("colour"))
    );
    assert_eq!(unknown.body["error"]["type"], "invalid_request_error");
    let api = api::Api::new(&addr, API_KEY);
    let missing = api.send(
        "POST",
        "/v1/payment_intents",
        &[("Content-Type", form)],
        Some("currency=usd"),
    );
    assert_eq!(
        (missing.status, missing.body["error"]["param"].as_str()),
        (400, Some("amount"))
    );
    let first = api.send(
        "POST",
        "/v1/customers",
        &[("Content-Type", form), ("Idempotency-Key", "k1")],
        Some("email=a%40b.c"),
    );
    let replay = api.send(
        "POST",
        "/v1/customers",
        &[("Content-Type", form), ("Idempotency-Key", "k1")],
        Some("email=a%40b.c"),
    );
    assert_eq!(first.body["id"], replay.body["id"]);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let reused = api.send(
        "POST",
        "/v1/customers",
        &[("Content-Type", form), ("Idempotency-Key", "k1")],
        Some("email=z%40b.c"),
    );
    assert_eq!(reused.body["error"]["type"], "idempotency_error");
}

/// What Stripe refuses that a kinder fake would take: amounts outside Stripe's limits,
/// currencies it does not support, a refund of nothing (which would lower
/// `amount_refunded`), a saved card that was detached or is another customer's, a body that
/// is not a form. Each refused with Stripe's error shape, naming the parameter, and nothing
/// charged or changed.
#[test]
fn the_fake_refuses_amounts_currencies_cards_and_bodies_stripe_refuses() {
    let fake = FakeStripe::start();
    let addr = fake.base.trim_start_matches("http://").to_owned();
    let api = api::Api::new(&addr, API_KEY);
    let post = |path: &str, body: &str| {
        api.send(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body),
        )
    };
    let refused = |r: &api::Resp, code: &str, param: &str| {
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(r.body["error"]["type"], "invalid_request_error", "{r:?}");
        assert_eq!(r.body["error"]["code"], code, "{r:?}");
        assert_eq!(r.body["error"]["param"], param, "{r:?}");
    };
    let intent = |amount: &str, currency: &str| {
        post(
            "/v1/payment_intents",
            &format!(
                "amount={amount}&currency={currency}&payment_method=pm_card_visa&confirm=true"
            ),
        )
    };
    refused(&intent("49", "usd"), "amount_too_small", "amount");
    refused(&intent("29", "gbp"), "amount_too_small", "amount");
    refused(&intent("0", "usd"), "amount_too_small", "amount");
    refused(
        &intent("-100", "usd"),
        "parameter_invalid_integer",
        "amount",
    );
    refused(&intent("100000000", "usd"), "amount_too_large", "amount");
    refused(&intent("1000", "xyz"), "", "currency");
    refused(&intent("1000", "bhd"), "", "currency");
    assert!(
        fake.fake.charges().is_empty(),
        "nothing refused was charged"
    );
    let paid = intent("50", "USD");
    assert_eq!(
        (
            paid.status,
            paid.s("status").as_str(),
            paid.s("currency").as_str()
        ),
        (200, "succeeded", "usd"),
        "the minimum itself is charged; the code is read in either case"
    );
    assert_eq!(intent("99999999", "jpy").status, 200);

    // A refund of nothing, or less than nothing, does not lower what was refunded.
    let pi = paid.s("id");
    refused(
        &post("/v1/refunds", &format!("payment_intent={pi}&amount=0")),
        "parameter_invalid_integer",
        "amount",
    );
    refused(
        &post("/v1/refunds", &format!("payment_intent={pi}&amount=-20")),
        "parameter_invalid_integer",
        "amount",
    );
    let after = api.get(&format!("/v1/payment_intents/{pi}"));
    assert_eq!(
        after.body["latest_charge"]["amount_refunded"], 0,
        "{after:?}"
    );

    // Saved cards pay only for their own customer, and never once detached.
    let alice = post("/v1/customers", "email=alice%40example.com").s("id");
    let bob = post("/v1/customers", "email=bob%40example.com").s("id");
    let card = post(
        "/v1/payment_methods/pm_card_visa/attach",
        &format!("customer={alice}"),
    )
    .s("id");
    let charges = fake.fake.charges().len();
    let pay_with = |customer: Option<&str>| {
        let who = customer
            .map(|c| format!("&customer={c}"))
            .unwrap_or_default();
        post(
            "/v1/payment_intents",
            &format!("amount=1000&currency=usd&payment_method={card}&confirm=true{who}"),
        )
    };
    refused(&pay_with(Some(&bob)), "", "payment_method");
    refused(&pay_with(None), "", "payment_method");
    assert_eq!(pay_with(Some(&alice)).s("status"), "succeeded");
    assert_eq!(
        post(&format!("/v1/payment_methods/{card}/detach"), "").status,
        200
    );
    refused(&pay_with(Some(&alice)), "", "payment_method");
    assert_eq!(
        fake.fake.charges().len(),
        charges + 1,
        "only alice's own card, while attached, was charged"
    );
    // A test token pays for anyone (Stripe makes a new card of it each time).
    let token = post(
        "/v1/payment_intents",
        &format!(
            "amount=1000&currency=usd&payment_method=pm_card_visa&confirm=true&customer={bob}"
        ),
    );
    assert_eq!(token.s("status"), "succeeded", "{token:?}");

    // A body that is not a form is refused, not read as an empty one.
    let garbled = post("/v1/customers", "email=%zz");
    assert_eq!(garbled.status, 400, "{garbled:?}");
    assert_eq!(garbled.body["error"]["type"], "invalid_request_error");
}

/// Stripe's refusals of an amount reach the caller as what they are: `invalid_request`
/// naming `amount` or `currency`, not retried (one request each), nothing charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_stripe_refuses_are_invalid_requests_naming_the_field() {
    let fake = FakeStripe::start();
    let s = scratch(&fake, API_KEY, "");
    let state = start(&s).await;
    let customer = create_customer(&state, None).await.unwrap();
    for (amount, currency, param) in [
        (10, "usd", "amount"),
        (100_000_000, "usd", "amount"),
        (1000, "bhd", "currency"),
    ] {
        fake.fake.clear_seen();
        let req = NewPayment {
            customer_id: Some(customer.clone()),
            payment_method: Some("pm_card_visa".into()),
            ..NewPayment::new(Money::new(amount, Currency::parse(currency).unwrap()))
        };
        let e = state
            .registry
            .call::<ops::CreatePayment>("stripe", ctx(Some(&format!("k-{amount}-{currency}"))), req)
            .await
            .unwrap_err();
        match e {
            CallError::Plugin(p) => {
                assert_eq!(p.code, codes::INVALID_REQUEST, "{amount} {currency}: {p:?}");
                assert_eq!(
                    p.param.as_deref(),
                    Some(param),
                    "{amount} {currency}: {p:?}"
                );
            }
            other => panic!("{amount} {currency}: {other:?}"),
        }
        assert_eq!(posts(&fake.fake).len(), 1, "refused, not retried");
    }
    assert!(fake.fake.charges().is_empty());
}
