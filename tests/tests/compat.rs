//! The plugin contract's promise, proved with real builds (`payhost-compat` makes them
//! before the tests run):
//!
//! - the mock built from the tagged 2.0 tree (outside the workspace) loads in this host
//!   through the normal path and passes the conformance suite; what 2.1 added — an
//!   operation (`detach_payment_method`), a request field (`NewRefund.metadata`), response
//!   fields and event variants — is answered by it as `unsupported_operation` or refused
//!   naming the field, never dropped or panicked on;
//! - the current mock loads in the 2.0 host, passes its conformance suite, and a 2.1
//!   event variant reaches the 2.0 host's event log as it came (kept, not mapped);
//! - a plugin built against a contract whose binary layer was changed is refused, naming
//!   the type and what differs.

use payhost::app::AppState;
use payhost::clock::SystemClock;
use payhost::config;
use payhost::plugins::CallError;
use payhost_plugin_api::{
    codes, ops, CallCtx, Currency, DetachPaymentMethod, Money, NewCustomer, NewPayment, NewRefund,
    CONTRACT_VERSION,
};
use payhost_tests::api::Api;
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const MOCK: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_compat\" }\n";

fn mock_2_0() -> std::path::PathBuf {
    compat(&format!("libmock-2.0.{}", std::env::consts::DLL_EXTENSION))
}

fn mock_2_1() -> std::path::PathBuf {
    compat(&format!("libmock-2.1.{}", std::env::consts::DLL_EXTENSION))
}

fn run(bin: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_2_1_mock_loads_in_this_host_and_passes_conformance() {
    let file = mock_2_1();
    let (code, out, err) = run(
        &payhost_bin(),
        &["plugins", "check", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("contract:        2.1.0"), "{out}");
    let (code, out, _) = run(
        &payhost_bin(),
        &["plugins", "conformance", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    // get_refund came with 2.2: not a 2.1 plugin's promise, and its refunds are not read
    // back.
    assert!(
        out.contains("PASS  capability.refunds.implemented")
            && out.contains("PASS  refunds.partial_then_rest"),
        "{out}"
    );
}

#[test]
fn the_2_0_mock_loads_in_this_host_and_passes_conformance() {
    let file = mock_2_0();
    let (code, out, err) = run(
        &payhost_bin(),
        &["plugins", "check", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("contract:        2.0.0"), "{out}");
    assert_ne!(CONTRACT_VERSION, "2.0.0", "this host is a newer 2.x");
    let (code, out, _) = run(
        &payhost_bin(),
        &["plugins", "conformance", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("PASS  capability.payment_methods.implemented"),
        "an operation added after 2.0 is not a 2.0 plugin's promise:\n{out}"
    );
}

#[test]
fn an_unsigned_2_0_plugin_loads_under_the_default_local_policy() {
    let s = Scratch::new(&[(&mock_2_0(), "mock.so")], MOCK);
    let host = s.serve();
    let (status, body) = host.get("/admin/plugins", Some(ADMIN_KEY));
    assert_eq!(status, 200, "{body}");
    let mock = body["plugins"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "mock"))
        .unwrap_or_else(|| panic!("the 2.0 mock is listed: {body}"));
    assert_eq!(mock["state"], "active", "{mock}");
    assert_eq!(mock["trust"], "unsigned", "{mock}");
    assert_eq!(mock["contract"], "2.0.0", "{mock}");
}

#[test]
fn a_2_0_library_is_signed_as_built_without_a_rebuild() {
    // A signature covers the file, not the contract: an operator can sign (or lock) the
    // 2.0 builds already deployed, and this host tells the 2.0 mock signed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("libmock-2.0.so");
    std::fs::copy(mock_2_0(), &file).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let config = root.join("plugins.toml");
    let check = || {
        run(
            &payhost_bin(),
            &[
                "--config",
                config.to_str().unwrap(),
                "plugins",
                "check",
                file.to_str().unwrap(),
            ],
        )
    };
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("trust:           unsigned"), "{out}");
    let key = root.join("deploy/dev/dev-plugin-signing.key");
    let (code, _, err) = run(
        &payhost_bin(),
        &[
            "plugins",
            "sign",
            "--secret-key",
            key.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("trust:           signed (payhost-dev)"),
        "{out}"
    );
    assert!(out.contains("contract:        2.0.0"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_2_1_added_is_refused_by_the_2_0_mock_never_dropped() {
    let s = Scratch::new(&[(&mock_2_0(), "mock.so")], MOCK);
    let state = AppState::start(config::load(&s.config()).unwrap(), Arc::new(SystemClock))
        .await
        .unwrap();
    let reg = &state.registry;
    let ctx = CallCtx::default;
    let customer = reg
        .call::<ops::CreateCustomer>(
            "mock",
            ctx(),
            NewCustomer {
                email: "old@example.com".into(),
                ..NewCustomer::default()
            },
        )
        .await
        .unwrap();

    // An operation added in 2.1: the 2.0 plugin's dispatch does not know it.
    let detach = reg
        .call::<ops::DetachPaymentMethod>(
            "mock",
            ctx(),
            DetachPaymentMethod {
                customer_id: customer.id.clone(),
                payment_method: "pm_x".into(),
            },
        )
        .await;
    match detach {
        Err(CallError::Plugin(e)) => {
            assert_eq!(e.code, codes::UNSUPPORTED);
            assert!(
                e.message.contains("2.0.0") && e.message.contains("detach_payment_method"),
                "{e}"
            );
        }
        other => panic!("expected unsupported_operation, got {other:?}"),
    }

    // A request field added in 2.1: refused naming it when set, left out when not.
    let paid = reg
        .call::<ops::CreatePayment>(
            "mock",
            ctx(),
            NewPayment {
                customer_id: Some(customer.id.clone()),
                payment_method: Some("pm_card_visa".into()),
                ..NewPayment::new(Money::new(1000, Currency::parse("usd").unwrap()))
            },
        )
        .await
        .unwrap();
    let with_metadata = NewRefund {
        payment_id: paid.id.clone(),
        amount: Some(100),
        metadata: [("order".to_owned(), "1001".to_owned())].into(),
        ..NewRefund::default()
    };
    match reg
        .call::<ops::CreateRefund>("mock", ctx(), with_metadata)
        .await
    {
        Err(CallError::Plugin(e)) => {
            assert_eq!(
                (e.code.as_str(), e.param.as_deref()),
                (codes::UNSUPPORTED, Some("metadata")),
                "{e}"
            );
        }
        other => panic!("a set 2.1 field must be refused, got {other:?}"),
    }
    let plain = NewRefund {
        payment_id: paid.id.clone(),
        amount: Some(100),
        ..NewRefund::default()
    };
    let refund = reg
        .call::<ops::CreateRefund>("mock", ctx(), plain)
        .await
        .unwrap();
    assert_eq!(refund.amount.amount, 100);
    assert!(
        refund.metadata.is_empty(),
        "a 2.1 response field reads as its default from a 2.0 plugin"
    );
}

/// What 2.2 added for routing: `CallCtx.can_fail_over` reaches a 2.0 plugin (it ignores it
/// and answers as before), and its errors, which never say what they did, are given their
/// effect by the host: a refusal is an answer (nothing done, nothing to fail over for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_2_2_added_for_routing_works_with_the_2_0_mock() {
    let s = Scratch::new(&[(&mock_2_0(), "mock.so")], MOCK);
    let state = AppState::start(config::load(&s.config()).unwrap(), Arc::new(SystemClock))
        .await
        .unwrap();
    let reg = &state.registry;
    let ctx = || CallCtx {
        can_fail_over: true,
        idempotency_key: Some("k-2-2".into()),
        ..CallCtx::default()
    };
    let customer = reg
        .call::<ops::CreateCustomer>(
            "mock",
            ctx(),
            NewCustomer {
                email: "old@example.com".into(),
                ..NewCustomer::default()
            },
        )
        .await
        .unwrap();
    let paid = reg
        .call::<ops::CreatePayment>(
            "mock",
            ctx(),
            NewPayment {
                customer_id: Some(customer.id),
                payment_method: Some("pm_card_visa".into()),
                ..NewPayment::new(Money::new(1000, Currency::parse("usd").unwrap()))
            },
        )
        .await
        .unwrap();
    assert_eq!(paid.status.as_str(), "succeeded");
    let refused = reg
        .call::<ops::GetPayment>("mock", ctx(), payhost_plugin_api::ObjectRef::new("nope"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.effect(),
        payhost_plugin_api::Effect::Nothing,
        "{refused:?}"
    );
    assert!(
        !refused.can_fail_over() && !refused.is_technical(),
        "{refused:?}"
    );
    match &refused {
        CallError::Plugin(e) => assert_eq!(e.effect, Some(payhost_plugin_api::Effect::Nothing)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn through_the_api_a_2_1_field_for_a_2_0_plugin_is_a_clear_400_and_writes_nothing() {
    let s = Scratch::with_host(
        &[(&mock_2_0(), "mock.so")],
        // 2.2's call context (the instance's name and webhook URL) reaches the 2.0 mock on
        // every call: it must ignore what it does not know.
        "default_provider = \"mock\"\npublic_url = \"https://pay.example.com\"\n",
        MOCK,
    );
    let host = s.serve();
    let db = TestDb::sqlite(s.dir.path());
    let api = Api::new(&host.addr, API_KEY);
    let p = api.post(
        "/v1/payments",
        &json!({"user_id": "u1", "email": "u1@example.com", "amount": 2000, "currency": "usd",
                "payment_method": "pm_card_visa"}),
    );
    assert_eq!(p.status, 201, "{p:?}");
    let r = api.post(
        "/v1/refunds",
        &json!({"payment": p.s("id"), "amount": 500, "metadata": {"reason_code": "late"}}),
    );
    assert_eq!(
        (r.status, r.code(), r.param()),
        (400, "unsupported_operation", "metadata"),
        "{r:?}"
    );
    assert_eq!(
        db.value("SELECT CAST(COUNT(*) AS TEXT) FROM refunds", &[])
            .as_deref(),
        Some("0")
    );
    let ok = api.post("/v1/refunds", &json!({"payment": p.s("id"), "amount": 500}));
    assert_eq!(ok.status, 201, "{ok:?}");
}

#[test]
fn the_current_mock_loads_in_the_2_0_host_and_passes_its_conformance() {
    let host_2_0 = compat("payhost-2.0");
    let mock = mock_so();
    let (code, out, err) = run(&host_2_0, &["plugins", "check", mock.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("contract:        {CONTRACT_VERSION}")),
        "{out}"
    );
    let (code, out, _) = run(
        &host_2_0,
        &["plugins", "conformance", mock.to_str().unwrap()],
    );
    assert_eq!(code, 0, "the 2.0 suite on the current mock:\n{out}");
}

#[test]
fn an_event_variant_the_2_0_host_does_not_know_is_kept_as_it_came() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        MOCK,
    );
    let host = s.serve_binary(&compat("payhost-2.0"), &[("RUST_LOG", "info")]);
    let api = Api::new(&host.addr, API_KEY);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (body, sig) = payhost_plugin_mock::webhook::signed_event(
        "whsec_compat",
        now,
        "evt_dispute_1",
        "dispute.created",
        &json!({"id": "dp_1", "payment": "mock_pi_x", "reason": "fraudulent", "amount": 500, "currency": "usd"}),
    );
    let r = api.send(
        "POST",
        "/webhooks/payments/mock",
        &[("X-Webhook-Signature", &sig)],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{r:?}");
    eventually("the 2.0 host records the 2.1 event", || {
        let events = api.get("/v1/events?limit=100");
        events.body["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|e| e["type"] == "DisputeOpened"))
    });
}

#[test]
fn a_contract_broken_on_purpose_is_refused_naming_the_type() {
    let file = compat(&format!(
        "libbroken-contract.{}",
        std::env::consts::DLL_EXTENSION
    ));
    let (code, _, err) = run(
        &payhost_bin(),
        &["plugins", "check", file.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    for part in [
        "incompatible plugin ABI",
        "ProviderFfi",
        "call",
        "expected",
        "found",
    ] {
        assert!(err.contains(part), "'{part}' missing from: {err}");
    }
    assert!(
        err.lines().count() <= 2,
        "one summary line, not abi_stable's kilobytes: {err}"
    );
}
