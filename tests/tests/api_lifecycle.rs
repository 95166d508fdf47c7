//! The conformance suite (`payhost_tests::conformance`) over the real `payhost` binary: the
//! mock on SQLite and on PostgreSQL (when `PAYHOST_TEST_POSTGRES` is set), and the stripe
//! plugin against the fake Stripe server.

use payhost_tests::conformance::{lifecycle, Provider, MOCK_PROVIDER};
use payhost_tests::db::TestDb;
use payhost_tests::*;

const MOCK: &str =
    "[providers.mock]\nplugin = \"mock\"\nconfig = { webhook_secret = \"whsec_test_secret\" }\n";

/// A scratch host with the mock provider on `db` (None: SQLite in the scratch folder).
fn scratch(db: Option<TestDb>) -> (Scratch, TestDb) {
    let mut host = "default_provider = \"mock\"\n".to_owned();
    if let Some(db) = &db {
        host.push_str(&db.host_line());
    }
    let s = Scratch::with_host(&[(&mock_so(), "libpayhost_plugin_mock.so")], &host, MOCK);
    let db = db.unwrap_or_else(|| TestDb::sqlite(s.dir.path()));
    (s, db)
}

#[test]
fn lifecycle_on_sqlite() {
    let (s, db) = scratch(None);
    lifecycle(&s, &db, &MOCK_PROVIDER);
}

#[test]
fn lifecycle_on_postgres() {
    let Some(pg) = TestDb::postgres("lifecycle") else {
        return;
    };
    let (s, db) = scratch(Some(pg));
    lifecycle(&s, &db, &MOCK_PROVIDER);
}

#[test]
fn lifecycle_with_stripe_on_the_fake_stripe_server() {
    let fake = payhost_tests::fake_stripe::FakeStripe::start();
    let providers = format!(
        "[providers.stripe]\nplugin = \"stripe\"\nallow_hosts = [\"127.0.0.1\"]\n\
         config = {{ api_key = \"{}\", webhook_secret = \"whsec_test_secret\", api_base = \"{}\" }}\n",
        payhost_tests::fake_stripe::API_KEY,
        fake.base
    );
    let s = Scratch::with_host(
        &[(&stripe_so(), "libpayhost_plugin_stripe.so")],
        "default_provider = \"stripe\"\n",
        &providers,
    );
    let db = TestDb::sqlite(s.dir.path());
    lifecycle(
        &s,
        &db,
        &Provider {
            name: "stripe",
            customer_prefix: "cus_",
        },
    );
    // Everything went over Stripe's protocol: pinned version, a key on every POST. Reads
    // answer from payhost's records: only the writes and the refresh reach Stripe.
    let seen = fake.fake.seen();
    assert!(seen.len() > 20, "{} requests", seen.len());
    assert!(
        !seen
            .iter()
            .any(|r| r.method == "GET" && r.path.starts_with("/v1/payment_intents/")),
        "a payment is read from payhost's records"
    );
    assert!(seen
        .iter()
        .all(|r| r.stripe_version.as_deref() == Some("2024-06-20")));
    assert!(seen
        .iter()
        .filter(|r| r.method == "POST")
        .all(|r| r.idempotency_key.is_some()));
}

/// A data folder written with `..` and not there yet (examples/fake-paypal.toml's
/// `../data/...`): created, and the SQLite file opens in it.
#[test]
fn a_relative_data_dir_with_dot_dot_segments_is_created_and_used() {
    let (s, _) = scratch(None);
    let config = std::fs::read_to_string(s.config()).unwrap();
    let config = config.replace(
        "data_dir = \"data\"",
        "data_dir = \"plugins/../state/data\"",
    );
    std::fs::write(s.config(), config).unwrap();
    let host = s.serve();
    let (status, ready) = host.get("/readyz", None);
    assert_eq!(status, 200, "{ready}");
    assert!(s.dir.path().join("state/data/payhost.db").exists());
}
