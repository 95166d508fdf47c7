//! Calls into real `.so` plugins through the host's registry, in-process: a panic or a
//! missed deadline inside a plugin is an error for that call and a PluginError event,
//! never a dead host; instances of one plugin are independent; the mock behaves like a
//! provider.

use payhost::app::AppState;
use payhost::clock::ManualClock;
use payhost::config;
use payhost::events::{Event, LifecycleEvent};
use payhost::plugins::CallError;
use payhost_plugin_api::{
    ops, AttachPaymentMethod, CallCtx, CancelSubscription, ChangeSubscriptionPrice, Currency,
    Money, NewCustomer, NewPayment, NewRefund, NewSubscription, ObjectRef, Operation,
    PaymentStatus, SetDefaultPaymentMethod, SubscriptionStatus,
};
use payhost_tests::*;
use std::sync::Arc;

async fn start(s: &Scratch) -> AppState {
    let loaded = config::load(&s.config()).unwrap();
    AppState::start(loaded, Arc::new(ManualClock::new(1_700_000_000_000)))
        .await
        .expect("the host starts")
}

/// Calls operation `O` on `instance` through the registry.
async fn call<O: Operation>(
    registry: &payhost::plugins::Registry,
    instance: &str,
    request: O::Request,
) -> Result<O::Response, CallError> {
    registry
        .call::<O>(instance, CallCtx::default(), request)
        .await
}

/// Creates a customer on `instance` through the registry.
async fn create_customer(
    registry: &payhost::plugins::Registry,
    instance: &str,
    email: &str,
) -> Result<payhost_plugin_api::Customer, CallError> {
    let req = NewCustomer {
        email: email.into(),
        ..NewCustomer::default()
    };
    call::<ops::CreateCustomer>(registry, instance, req).await
}

fn operation_errors(state: &AppState, name: &str) -> Vec<String> {
    state
        .registry
        .dispatcher()
        .recent_lifecycle()
        .into_iter()
        .filter_map(|s| match s.event {
            Event::Lifecycle(LifecycleEvent::PluginError {
                name: n,
                error,
                error_type,
                ..
            }) if n == name && error_type == payhost::events::ErrorType::Operation => Some(error),
            _ => None,
        })
        .collect()
}

const PROVIDERS: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_a\" }\n\
    [providers.mock_b]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_b\" }\n\
    [providers.bad]\nplugin = \"misbehaving\"\ncall_timeout_ms = 300\n";

fn scratch() -> Scratch {
    let (mock, bad) = (mock_so(), misbehaving_so());
    Scratch::new(&[(&mock, "mock.so"), (&bad, "bad.so")], PROVIDERS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_method_becomes_an_error_and_an_event() {
    // A generous deadline: printing a panic's backtrace can be slow in debug builds.
    let (mock, bad) = (mock_so(), misbehaving_so());
    let s = Scratch::new(
        &[(&mock, "mock.so"), (&bad, "bad.so")],
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"w\" }\n[providers.bad]\nplugin = \"misbehaving\"\n",
    );
    let state = start(&s).await;
    let r = create_customer(&state.registry, "bad", "a@b.c").await;
    assert!(matches!(r, Err(CallError::Panicked { .. })), "{r:?}");
    let errors = operation_errors(&state, "bad");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("create_customer panicked"), "{errors:?}");

    // The host and the other plugins are unaffected; the same instance can be called again.
    let ok = create_customer(&state.registry, "mock", "a@b.c").await;
    assert!(ok.is_ok(), "{ok:?}");
    let again = create_customer(&state.registry, "bad", "a@b.c").await;
    assert!(matches!(again, Err(CallError::Panicked { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_call_past_its_deadline_times_out_without_blocking_the_host() {
    let s = scratch();
    let state = start(&s).await;
    let r = call::<ops::GetCustomer>(&state.registry, "bad", ObjectRef::new("cus_1")).await;
    assert!(
        matches!(r, Err(CallError::Timeout { ms: 300, .. })),
        "{r:?}"
    );
    assert!(
        operation_errors(&state, "bad")[0].contains("did not answer get_customer within 300 ms")
    );
    let ok = create_customer(&state.registry, "mock", "x@y.z").await;
    assert!(ok.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_operations_and_unknown_providers_are_refused_before_any_call() {
    let s = scratch();
    let state = start(&s).await;
    let r = call::<ops::CreateRefund>(&state.registry, "bad", NewRefund::default()).await;
    assert!(
        matches!(&r, Err(CallError::Unsupported { capability, .. }) if capability == "refunds"),
        "{r:?}"
    );
    let r = state.registry.get("paypal").err().unwrap().to_string();
    assert!(
        r.contains("unknown provider 'paypal'") && r.contains("mock, mock_b"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_one_plugin_keep_separate_state() {
    let s = scratch();
    let state = start(&s).await;
    let c = create_customer(&state.registry, "mock", "a@b.c")
        .await
        .unwrap();
    let in_b = call::<ops::GetCustomer>(&state.registry, "mock_b", ObjectRef::new(&c.id)).await;
    assert!(
        matches!(&in_b, Err(CallError::Plugin(e)) if e.code == "not_found"),
        "{in_b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_charges_declines_and_refunds_like_a_provider() {
    let s = scratch();
    let state = start(&s).await;
    let reg = &state.registry;
    let c = create_customer(reg, "mock", "a@b.c").await.unwrap();
    let pay = |pm: &'static str, amount: i64| {
        let req = NewPayment {
            customer_id: Some(c.id.clone()),
            payment_method: Some(pm.into()),
            ..NewPayment::new(Money::new(amount, Currency::parse("usd").unwrap()))
        };
        call::<ops::CreatePayment>(reg, "mock", req)
    };
    let ok = pay("pm_card_visa", 1000).await.unwrap();
    assert_eq!(
        (ok.status.clone(), ok.amount_received),
        (PaymentStatus::Succeeded, 1000)
    );
    let declined = pay("pm_card_chargeDeclined", 500).await.unwrap();
    assert_eq!(declined.status, PaymentStatus::Failed);
    assert_eq!(declined.failure_code.as_deref(), Some("generic_decline"));

    let refund = |amount: Option<i64>| {
        let req = NewRefund {
            payment_id: ok.id.clone(),
            amount,
            ..NewRefund::default()
        };
        call::<ops::CreateRefund>(reg, "mock", req)
    };
    assert_eq!(refund(Some(400)).await.unwrap().amount.amount, 400);
    assert_eq!(refund(None).await.unwrap().amount.amount, 600, "the rest");
    let third = refund(Some(1)).await;
    assert!(
        matches!(&third, Err(CallError::Plugin(e)) if e.code == "invalid_request"),
        "{third:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_a_plugin_emits_outside_an_answer_are_recorded_by_the_host() {
    let s = scratch();
    let state = start(&s).await;
    let reg = &state.registry;
    let c = create_customer(reg, "mock", "a@b.c").await.unwrap();
    let pm = call::<ops::AttachPaymentMethod>(
        reg,
        "mock",
        AttachPaymentMethod {
            customer_id: c.id.clone(),
            payment_method: "pm_card_visa".into(),
        },
    )
    .await
    .unwrap();
    call::<ops::SetDefaultPaymentMethod>(
        reg,
        "mock",
        SetDefaultPaymentMethod {
            customer_id: c.id.clone(),
            payment_method: pm.id,
        },
    )
    .await
    .unwrap();
    // Billed at once: the invoice and its payment are facts the answer (the subscription)
    // does not show, so the mock emits them; the registry hands them to the recorder.
    let sub = call::<ops::CreateSubscription>(
        reg,
        "mock",
        NewSubscription {
            customer_id: Some(c.id.clone()),
            price_id: "price_basic".into(),
            ..NewSubscription::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    let domain_kinds = || -> Vec<String> {
        reg.dispatcher()
            .recent()
            .into_iter()
            .filter_map(|s| match s.event {
                Event::Domain(d) if d.provider == "mock" => Some(d.kind),
                _ => None,
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while domain_kinds().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        domain_kinds(),
        ["PaymentCreated", "PaymentSucceeded", "InvoicePaid"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_an_instance_lets_running_calls_finish_first() {
    let (mock, bad) = (mock_so(), misbehaving_so());
    let s = Scratch::new(
        &[(&mock, "mock.so"), (&bad, "bad.so")],
        "[providers.bad]\nplugin = \"misbehaving\"\ncall_timeout_ms = 5000\n",
    );
    let state = start(&s).await;
    let reg = state.registry.clone();
    // Held weakly: the swap's retirement of the old instance waits until nothing holds it.
    let first = Arc::downgrade(&reg.get("bad").unwrap());
    let slow =
        tokio::spawn(
            async move { call::<ops::GetCustomer>(&reg, "bad", ObjectRef::new("c")).await },
        );
    // The call is in the first instance (it holds one of its slots) before the swap.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while first.upgrade().unwrap().calls_in_flight() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // The swap publishes the new instance at once, then waits for the old one's calls.
    let swap = {
        let (reg, cfg) = (
            state.registry.clone(),
            state.config.config.providers["bad"].clone(),
        );
        tokio::spawn(async move { reg.start_instance("bad", &cfg).await })
    };
    while std::ptr::eq(
        Arc::as_ptr(&state.registry.get("bad").unwrap()),
        first.as_ptr(),
    ) {
        assert!(std::time::Instant::now() < deadline, "never replaced");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // A call made now goes to the new instance...
    let reg = state.registry.clone();
    let after =
        tokio::spawn(
            async move { call::<ops::GetCustomer>(&reg, "bad", ObjectRef::new("c")).await },
        );
    // ...while the slow call runs to its own answer on the old one: not cut off by the swap.
    let answered_by = |r: &Result<payhost_plugin_api::Customer, CallError>| match r {
        Err(CallError::Plugin(e)) if e.code == "not_found" => e
            .message
            .rsplit("instance ")
            .next()
            .map(|n| n.trim_end_matches('\'').to_owned()),
        _ => None,
    };
    let slow = slow.await.unwrap();
    let after = after.await.unwrap();
    swap.await.unwrap().unwrap();
    let (old, new) = (answered_by(&slow), answered_by(&after));
    assert!(old.is_some() && new.is_some(), "{slow:?} {after:?}");
    assert_ne!(
        old, new,
        "the running call finished on the old instance: {slow:?} {after:?}"
    );
    let order: Vec<String> = state
        .registry
        .dispatcher()
        .recent_lifecycle()
        .into_iter()
        .filter_map(|s| match s.event {
            Event::Lifecycle(LifecycleEvent::PluginInitialized { name, .. }) => {
                Some(format!("init {name}"))
            }
            Event::Lifecycle(LifecycleEvent::PluginStopped { name, reason, .. }) => {
                Some(format!("stop {name} {reason:?}"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(order, ["init bad", "init bad", "stop bad Replaced"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_subscription_lifecycle_distinguishes_cancel_at_period_end_from_cancel_now() {
    let s = scratch();
    let state = start(&s).await;
    let reg = &state.registry;
    let c = create_customer(reg, "mock", "s@b.c").await.unwrap();
    let sub = call::<ops::CreateSubscription>(
        reg,
        "mock",
        NewSubscription {
            customer_id: Some(c.id.clone()),
            price_id: "price_basic".into(),
            trial_days: 14,
            ..NewSubscription::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Trialing);
    assert_eq!(sub.trial_end, Some(1_700_000_000 + 14 * 86_400));

    let id = sub.id.clone();
    let changed = call::<ops::ChangeSubscriptionPrice>(
        reg,
        "mock",
        ChangeSubscriptionPrice {
            id: id.clone(),
            price_id: "price_pro".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(changed.price_id, "price_pro");
    let cancel = |at_period_end| {
        call::<ops::CancelSubscription>(
            reg,
            "mock",
            CancelSubscription {
                id: id.clone(),
                at_period_end,
            },
        )
    };
    let at_end = cancel(true).await.unwrap();
    assert!(at_end.cancel_at_period_end);
    assert_eq!(
        at_end.status,
        SubscriptionStatus::Trialing,
        "still running until the period ends"
    );
    let back = call::<ops::ReactivateSubscription>(reg, "mock", ObjectRef::new(&id))
        .await
        .unwrap();
    assert!(!back.cancel_at_period_end);
    let now = cancel(false).await.unwrap();
    assert_eq!(now.status, SubscriptionStatus::Canceled);
    let again = call::<ops::ReactivateSubscription>(reg, "mock", ObjectRef::new(&id)).await;
    assert!(
        matches!(&again, Err(CallError::Plugin(e)) if e.code == "conflict"),
        "{again:?}"
    );

    let unknown_price = call::<ops::CreateSubscription>(
        reg,
        "mock",
        NewSubscription {
            customer_id: Some(c.id.clone()),
            price_id: "price_nope".into(),
            ..NewSubscription::default()
        },
    )
    .await;
    assert!(
        matches!(&unknown_price, Err(CallError::Plugin(e)) if e.code == "not_found" && e.param.as_deref() == Some("price")),
        "{unknown_price:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_plugin_uses_up_its_own_call_slots_not_the_hosts() {
    let (mock, bad) = (mock_so(), misbehaving_so());
    let s = Scratch::new(
        &[(&mock, "mock.so"), (&bad, "bad.so")],
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"w\" }\n\
         [providers.bad]\nplugin = \"misbehaving\"\ncall_timeout_ms = 200\nmax_concurrent_calls = 4\n",
    );
    let state = start(&s).await;
    // Four calls that hang for 3 s: each times out for its caller, and keeps its slot
    // until the plugin's thread comes back.
    let hung = (0..4).map(|_| {
        let registry = state.registry.clone();
        tokio::spawn(async move {
            call::<ops::GetCustomer>(&registry, "bad", ObjectRef::new("cus_1")).await
        })
    });
    for h in hung.collect::<Vec<_>>() {
        let r = h.await.unwrap();
        assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
    }
    let busy = call::<ops::GetCustomer>(&state.registry, "bad", ObjectRef::new("cus_1")).await;
    assert!(
        matches!(&busy, Err(CallError::Busy { limit: 4, .. })),
        "refused at once while its four threads hang: {busy:?}"
    );
    // The other instances go on, many at once.
    let calls = (0..32).map(|i| {
        let registry = state.registry.clone();
        tokio::spawn(async move {
            create_customer(&registry, "mock", &format!("m{i}@example.com")).await
        })
    });
    for c in calls.collect::<Vec<_>>() {
        assert!(c.await.unwrap().is_ok());
    }
    // Once the plugin's threads return, its slots are free again.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let r = call::<ops::GetCustomer>(&state.registry, "bad", ObjectRef::new("cus_1")).await;
    assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
}
