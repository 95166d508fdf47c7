//! Provider selection: the tenant's provider, else the one named, else the default; and
//! provider switching — a tenant moved to another provider gets new customers there while
//! existing records keep using theirs. Two instances of the real mock `.so`, in-process.

use payhost::api::requests::{CreateCustomer, CreatePayment, CreateRefund};
use payhost::app::AppState;
use payhost::clock::ManualClock;
use payhost::config;
use payhost::service::{Ctx, PaymentService};
use payhost_tests::*;
use serde_json::json;
use std::sync::Arc;

const PROVIDERS: &str =
    "[providers.mock_a]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_a\" }\n\
    [providers.mock_b]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_b\" }\n";

fn user(id: &str, provider: Option<&str>) -> CreateCustomer {
    serde_json::from_value(
        json!({"user_id": id, "email": format!("{id}@example.com"), "provider": provider}),
    )
    .unwrap()
}

fn payment(customer: Option<&str>, user_id: Option<&str>) -> CreatePayment {
    serde_json::from_value(json!({
        "customer": customer, "user_id": user_id, "amount": 2500, "currency": "usd",
        "payment_method": "pm_card_visa",
    }))
    .unwrap()
}

fn tenant(t: &str) -> Ctx {
    Ctx {
        tenant: Some(t.into()),
        ..Ctx::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_pick_providers_and_records_keep_theirs() {
    let s = Scratch::with_host(
        &[(&mock_so(), "libpayhost_plugin_mock.so")],
        "default_provider = \"mock_a\"\n",
        &format!("{PROVIDERS}[tenants]\nacme = \"mock_b\"\n"),
    );
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let state = AppState::start(config::load(&s.config()).unwrap(), clock.clone())
        .await
        .unwrap();
    let svc = &state.service;
    let none = Ctx::default();

    let acme_user = svc
        .create_customer(&tenant("acme"), user("u1", None))
        .await
        .unwrap();
    assert_eq!(acme_user.body.provider, "mock_b", "the tenant's provider");
    assert_eq!(acme_user.body.tenant.as_deref(), Some("acme"));
    let plain = svc.create_customer(&none, user("u2", None)).await.unwrap();
    assert_eq!(plain.body.provider, "mock_a", "the default provider");
    let named = svc
        .create_customer(&none, user("u3", Some("mock_b")))
        .await
        .unwrap();
    assert_eq!(named.body.provider, "mock_b", "the provider named");
    let tenant_wins = svc
        .create_customer(&tenant("acme"), user("u4", Some("mock_a")))
        .await
        .unwrap();
    assert_eq!(
        tenant_wins.body.provider, "mock_b",
        "the tenant's mapping comes first"
    );

    // acme moves to mock_a: the same instances and database under the new mapping.
    let moved_file = s.dir.path().join("moved.toml");
    let text = std::fs::read_to_string(s.config())
        .unwrap()
        .replace("acme = \"mock_b\"", "acme = \"mock_a\"");
    std::fs::write(&moved_file, text).unwrap();
    let moved = PaymentService::new(
        state.registry.clone(),
        svc.store().clone(),
        clock,
        Arc::new(config::load(&moved_file).unwrap()),
    );
    let acme = tenant("acme");
    let old_customer = acme_user.body.id.as_str();
    let kept = moved
        .create_payment(&acme, payment(Some(old_customer), None))
        .await
        .unwrap();
    assert_eq!(
        kept.body.provider, "mock_b",
        "an existing customer keeps its provider"
    );
    assert_eq!(
        kept.body.status,
        payhost_plugin_api::PaymentStatus::Succeeded
    );
    let fresh = moved
        .create_payment(&acme, payment(None, Some("u1")))
        .await
        .unwrap();
    assert_eq!(
        fresh.body.provider, "mock_a",
        "the moved tenant's user gets a customer on the new provider"
    );
    assert_ne!(fresh.body.customer, acme_user.body.id);
    let again = moved
        .create_payment(&acme, payment(None, Some("u1")))
        .await
        .unwrap();
    assert_eq!(
        again.body.customer, fresh.body.customer,
        "created once, then reused"
    );
    let refund_old = moved
        .create_refund(
            &acme,
            serde_json::from_value::<CreateRefund>(json!({"payment": kept.body.id})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        refund_old.body.provider, "mock_b",
        "operations on a record go to its provider"
    );
}
