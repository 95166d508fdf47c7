//! Dunning on the host's clock (a test clock, so no waiting for days): a failed payment is
//! attempted again after 1, 3 and 5 days, stops as soon as it succeeds, and the customer is
//! told when the last attempt fails. The real mock `.so`, in-process.

use payhost::api::requests::{CreateCustomer, CreatePayment, PaymentMethodBody};
use payhost::app::AppState;
use payhost::clock::ManualClock;
use payhost::config;
use payhost::service::Ctx;
use payhost_tests::db::TestDb;
use payhost_tests::*;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

fn pm(id: &str) -> PaymentMethodBody {
    serde_json::from_value(json!({ "payment_method": id })).unwrap()
}

/// The payment's status and its dunning state, read from the database the host writes.
async fn status(dir: &Path, payment: &str) -> (String, Option<String>, i64) {
    let (dir, payment) = (dir.to_path_buf(), payment.to_owned());
    let row = tokio::task::spawn_blocking(move || {
        TestDb::sqlite(&dir).rows(
            "SELECT p.status, d.status, CAST(d.attempts AS TEXT) FROM payments p \
             LEFT JOIN dunning d ON d.payment_id = p.id WHERE p.id = $1",
            &[&payment],
        )
    })
    .await
    .unwrap()
    .remove(0);
    (
        row[0].clone().unwrap(),
        row[1].clone(),
        row[2].as_deref().map_or(0, |a| a.parse().unwrap()),
    )
}

async fn until(dir: &Path, payment: &str, want: (&str, Option<&str>, i64)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = status(dir, payment).await;
        if (got.0.as_str(), got.1.as_deref(), got.2) == want {
            return;
        }
        assert!(Instant::now() < deadline, "wanted {want:?}, got {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn declined_payment(state: &AppState, user: &str) -> (String, String) {
    let svc = &state.service;
    let ctx = Ctx::default();
    let c = svc
        .create_customer(
            &ctx,
            serde_json::from_value::<CreateCustomer>(
                json!({"user_id": user, "email": format!("{user}@example.com")}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let cust = c.body.id.clone();
    let declining = svc
        .attach_payment_method(&ctx, &cust, pm("pm_card_chargeDeclined"))
        .await
        .unwrap();
    svc.set_default_payment_method(&ctx, &cust, pm(&declining.body.id))
        .await
        .unwrap();
    let p = svc
        .create_payment(
            &ctx,
            serde_json::from_value::<CreatePayment>(json!({
                "customer": cust, "amount": 2500, "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(p.body.status, payhost_plugin_api::PaymentStatus::Failed);
    (cust, p.body.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_payments_are_retried_on_schedule_until_they_succeed_or_run_out() {
    let s = Scratch::with_host(
        &[(&mock_so(), "mock.so")],
        "default_provider = \"mock\"\n",
        "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_d\" }\n[dunning]\nretry_days = [1, 3, 5]\n",
    );
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let state = AppState::start(config::load(&s.config()).unwrap(), clock.clone())
        .await
        .unwrap();
    let ctx = Ctx::default();
    let dir = s.dir.path().to_path_buf();

    let (fixed_customer, recovers) = declined_payment(&state, "fixes-card").await;
    let (_, never) = declined_payment(&state, "never-pays").await;
    until(&dir, &recovers, ("failed", Some("scheduled"), 0)).await;
    until(&dir, &never, ("failed", Some("scheduled"), 0)).await;

    // Not yet due: nothing happens before a day has passed.
    clock.advance_secs(DAY - 60);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        status(&dir, &recovers).await,
        ("failed".into(), Some("scheduled".into()), 0)
    );

    // Day 1: both fail again.
    clock.advance_secs(60);
    until(&dir, &recovers, ("failed", Some("scheduled"), 1)).await;
    until(&dir, &never, ("failed", Some("scheduled"), 1)).await;

    // One customer puts a working card on file; day 3 collects that payment and stops.
    let visa = state
        .service
        .attach_payment_method(&ctx, &fixed_customer, pm("pm_card_visa"))
        .await
        .unwrap();
    state
        .service
        .set_default_payment_method(&ctx, &fixed_customer, pm(&visa.body.id))
        .await
        .unwrap();
    clock.advance_secs(2 * DAY);
    until(&dir, &recovers, ("succeeded", Some("recovered"), 2)).await;
    until(&dir, &never, ("failed", Some("scheduled"), 2)).await;

    // Day 5: the last attempt fails; the customer gets the final notice.
    clock.advance_secs(2 * DAY);
    until(&dir, &never, ("failed", Some("exhausted"), 3)).await;
    clock.advance_secs(10 * DAY);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        status(&dir, &recovers).await.2,
        2,
        "no attempt after recovery"
    );
    assert_eq!(
        status(&dir, &never).await.2,
        3,
        "no attempt after the schedule ended"
    );

    let mail = s.dir.path().join("data").join("mail");
    let deadline = Instant::now() + Duration::from_secs(20);
    let notices = loop {
        let notices: Vec<String> = std::fs::read_dir(&mail)
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let finals: Vec<String> = notices
            .into_iter()
            .filter(|m| m.contains("Subject: We could not collect 25.00 USD"))
            .collect();
        if !finals.is_empty() || Instant::now() > deadline {
            break finals;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(notices.len(), 1, "one final notice");
    assert!(
        notices[0].contains("To: never-pays@example.com"),
        "{}",
        notices[0]
    );
    let receipts = std::fs::read_dir(&mail)
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains("To: fixes-card@example.com")
                && std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .contains("Receipt: 25.00 USD")
        })
        .count();
    assert_eq!(receipts, 1, "the recovered payment sends its receipt");
}
