//! The fake Mollie of the tests as a program, to try the mollie plugin by hand (README's
//! "Mollie" section): serves until killed and prints its API base URL and key. Commands on
//! stdin: `settle` (pending refunds are refunded), `fail` (they fail), `expire <tr_…>` (an
//! open payment expires); each change calls the payment's webhook, as Mollie does.

use payhost_tests::fake_mollie::{FakeMollie, API_KEY};
use std::io::Write;

fn main() {
    let fake = FakeMollie::start();
    println!("fake Mollie at {}", fake.api_base);
    println!("api_key = \"{API_KEY}\"");
    println!("commands: settle | fail | expire <payment id>");
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["settle"] => fake.fake.settle_refunds(false),
            ["fail"] => fake.fake.settle_refunds(true),
            ["expire", id] if fake.fake.payment(id).is_some_and(|p| p["status"] == "open") => {
                fake.fake.expire(id);
            }
            _ => {
                println!("commands: settle | fail | expire <open payment id>");
                continue;
            }
        }
        println!("done; the webhooks are on their way");
    }
    // stdin closed (e.g. started in the background): serve until killed.
    loop {
        std::thread::park();
    }
}
