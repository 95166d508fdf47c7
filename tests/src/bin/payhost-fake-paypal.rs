//! The fake PayPal of the tests as a program, to try the paypal plugin by hand (README's
//! "PayPal" section): serves until killed, prints its base URL, the credentials, and the
//! test CA's root file for `trusted_roots`. `--sign <event.json>` prints a curl command
//! delivering that event to a local payhost, signed as PayPal signs webhooks.

use payhost_tests::fake_paypal::{FakePaypal, Signer, CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID};
use std::io::Write;

fn main() {
    let fake = FakePaypal::start();
    let roots = std::env::temp_dir().join("payhost-fake-paypal-root.pem");
    std::fs::copy(&fake.roots_file, &roots).expect("write the root");
    println!("fake PayPal at {}", fake.base);
    println!("client_id = \"{CLIENT_ID}\"  client_secret = \"{CLIENT_SECRET}\"  webhook_id = \"{WEBHOOK_ID}\"");
    println!("trusted_roots = \"{}\"", roots.display());
    println!("type a webhook event's JSON on one line to get a signed curl command for it");
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            println!("not JSON");
            continue;
        };
        let body = serde_json::to_string(&event).unwrap();
        let headers = fake.fake.sign(body.as_bytes(), WEBHOOK_ID, Signer::Valid);
        let h: String = headers
            .iter()
            .map(|(k, v)| format!(" -H '{k}: {v}'"))
            .collect();
        println!("curl -s localhost:8080/webhooks/payments/paypal -H 'Content-Type: application/json'{h} -d '{body}'");
    }
    // stdin closed (e.g. started in the background): serve until killed.
    loop {
        std::thread::park();
    }
}
