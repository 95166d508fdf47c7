//! Calls into real `.so` plugins through the host's registry, in-process: a panic or a
//! missed deadline inside a plugin is an error for that call and a PluginError event,
//! never a dead host; instances of one plugin are independent; the mock behaves like a
//! provider.

use payhost::app::AppState;
use payhost::clock::ManualClock;
use payhost::config;
use payhost::events::{Event, LifecycleEvent};
use payhost::plugins::CallError;
use payhost_plugin_api::abi_stable::std_types::{ROption, RVec};
use payhost_plugin_api::{
    capabilities as cap, CallCtx, Currency, Money, NewCustomer, NewPayment, NewRefund,
    PaymentStatus,
};
use payhost_tests::*;
use std::sync::Arc;

async fn start(s: &Scratch) -> AppState {
    let loaded = config::load(&s.config()).unwrap();
    AppState::start(loaded, Arc::new(ManualClock::new(1_700_000_000_000)))
        .await
        .expect("the host starts")
}

fn customer(email: &str) -> NewCustomer {
    NewCustomer {
        email: email.into(),
        name: ROption::RNone,
        metadata: RVec::new(),
    }
}

/// Creates a customer on `instance` through the registry.
async fn create_customer(
    registry: &payhost::plugins::Registry,
    instance: &str,
    email: &str,
) -> Result<payhost_plugin_api::Customer, CallError> {
    let req = customer(email);
    registry
        .call(instance, cap::CUSTOMERS, "create_customer", move |p| {
            p.create_customer(CallCtx::default(), req)
        })
        .await
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
    let r = state
        .registry
        .call("bad", cap::CUSTOMERS, "get_customer", |p| {
            p.get_customer(CallCtx::default(), "cus_1".into())
        })
        .await;
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
    let r = state
        .registry
        .call("bad", cap::REFUNDS, "create_refund", |p| {
            p.create_refund(CallCtx::default(), NewRefund::default())
        })
        .await;
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
    let id = c.id.clone();
    let in_b = state
        .registry
        .call("mock_b", cap::CUSTOMERS, "get_customer", move |p| {
            p.get_customer(CallCtx::default(), id)
        })
        .await;
    assert!(
        matches!(&in_b, Err(CallError::Plugin(e)) if e.code == "not_found"),
        "{in_b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_charges_declines_and_refunds_like_a_provider_and_reports_events() {
    let s = scratch();
    let state = start(&s).await;
    let reg = &state.registry;
    let c = create_customer(reg, "mock", "a@b.c").await.unwrap();
    let pay = |pm: &'static str, amount: i64| {
        let customer_id = c.id.clone();
        reg.call("mock", cap::PAYMENTS, "create_payment", move |p| {
            p.create_payment(
                CallCtx::default(),
                NewPayment {
                    customer_id,
                    amount: Money::new(amount, Currency::parse("usd").unwrap()),
                    payment_method: ROption::RSome(pm.into()),
                    description: ROption::RNone,
                    metadata: RVec::new(),
                },
            )
        })
    };
    let ok = pay("pm_card_visa", 1000).await.unwrap();
    assert_eq!(ok.status, PaymentStatus::Succeeded);
    let declined = pay("pm_card_chargeDeclined", 500).await.unwrap();
    assert_eq!(declined.status, PaymentStatus::Failed);
    assert_eq!(
        declined
            .failure_code
            .as_ref()
            .map(|c| c.as_str())
            .into_option(),
        Some("generic_decline")
    );

    let refund = |amount: Option<i64>| {
        let payment_id = ok.id.clone();
        reg.call("mock", cap::REFUNDS, "create_refund", move |p| {
            p.create_refund(
                CallCtx::default(),
                NewRefund {
                    payment_id,
                    amount: amount.into(),
                    reason: ROption::RNone,
                },
            )
        })
    };
    assert_eq!(refund(Some(400)).await.unwrap().amount.amount, 400);
    assert_eq!(refund(None).await.unwrap().amount.amount, 600, "the rest");
    let third = refund(Some(1)).await;
    assert!(
        matches!(&third, Err(CallError::Plugin(e)) if e.code == "invalid_request"),
        "{third:?}"
    );

    // Reports emitted through the registry are recorded (persisted, then dispatched) by
    // the host's recorder task: wait for them to arrive.
    let domain_kinds = || -> Vec<&'static str> {
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
    while domain_kinds().len() < 6 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kinds = domain_kinds();
    assert_eq!(
        kinds,
        [
            "PaymentCreated",
            "PaymentSucceeded",
            "PaymentCreated",
            "PaymentFailed",
            "RefundProcessed",
            "RefundProcessed"
        ]
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
    let slow = tokio::spawn(async move {
        reg.call("bad", cap::CUSTOMERS, "get_customer", |p| {
            p.get_customer(CallCtx::default(), "c".into())
        })
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let cfg = state.config.config.providers["bad"].clone();
    state.registry.start_instance("bad", &cfg).await.unwrap();
    // The slow call ran to its own answer on the old instance: not cut off by the swap.
    let slow = slow.await.unwrap();
    assert!(
        matches!(&slow, Err(CallError::Plugin(e)) if e.code == "not_found"),
        "{slow:?}"
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
    use payhost_plugin_api::{NewSubscription, SubscriptionStatus};
    let s = scratch();
    let state = start(&s).await;
    let reg = &state.registry;
    let c = create_customer(reg, "mock", "s@b.c").await.unwrap();
    let customer_id = c.id.clone();
    let sub = reg
        .call(
            "mock",
            cap::SUBSCRIPTIONS,
            "create_subscription",
            move |p| {
                p.create_subscription(
                    CallCtx::default(),
                    NewSubscription {
                        customer_id,
                        price_id: "price_basic".into(),
                        trial_days: 14,
                        metadata: RVec::new(),
                    },
                )
            },
        )
        .await
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Trialing);
    assert_eq!(
        sub.trial_end.into_option(),
        Some(1_700_000_000 + 14 * 86_400)
    );

    let id = sub.id.clone();
    let sub_call = |op: &'static str, f: fn(&payhost_plugin_api::ProviderBox, String) -> _| {
        let id = id.to_string();
        reg.call("mock", cap::SUBSCRIPTIONS, op, move |p| f(p, id))
    };
    let changed = sub_call("change_subscription_price", |p, id| {
        p.change_subscription_price(CallCtx::default(), id.into(), "price_pro".into())
    })
    .await
    .unwrap();
    assert_eq!(changed.price_id.as_str(), "price_pro");
    let at_end = sub_call("cancel_subscription", |p, id| {
        p.cancel_subscription(CallCtx::default(), id.into(), true)
    })
    .await
    .unwrap();
    assert!(at_end.cancel_at_period_end);
    assert_eq!(
        at_end.status,
        SubscriptionStatus::Trialing,
        "still running until the period ends"
    );
    let back = sub_call("reactivate_subscription", |p, id| {
        p.reactivate_subscription(CallCtx::default(), id.into())
    })
    .await
    .unwrap();
    assert!(!back.cancel_at_period_end);
    let now = sub_call("cancel_subscription", |p, id| {
        p.cancel_subscription(CallCtx::default(), id.into(), false)
    })
    .await
    .unwrap();
    assert_eq!(now.status, SubscriptionStatus::Canceled);
    let again = sub_call("reactivate_subscription", |p, id| {
        p.reactivate_subscription(CallCtx::default(), id.into())
    })
    .await;
    assert!(
        matches!(&again, Err(CallError::Plugin(e)) if e.code == "conflict"),
        "{again:?}"
    );

    let unknown_price = reg
        .call(
            "mock",
            cap::SUBSCRIPTIONS,
            "create_subscription",
            move |p| {
                p.create_subscription(
                    CallCtx::default(),
                    NewSubscription {
                        customer_id: c.id.clone(),
                        price_id: "price_nope".into(),
                        trial_days: 0,
                        metadata: RVec::new(),
                    },
                )
            },
        )
        .await;
    assert!(
        matches!(&unknown_price, Err(CallError::Plugin(e)) if e.code == "not_found" && e.param.as_ref().map(|p| p.as_str()).into_option() == Some("price")),
        "{unknown_price:?}"
    );
}
