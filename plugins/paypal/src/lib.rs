//! `paypal`: PayPal as a payhost provider, over PayPal's REST APIs, built on the author kit
//! alone.
//!
//! `client` speaks HTTP (OAuth 2.0 client credentials, a cached token, `PayPal-Request-Id`,
//! retries, PayPal's errors); `money` converts amounts to PayPal's decimal strings;
//! `wire` holds PayPal's objects and their mapping; `webhook` verifies RSA/X.509 signatures
//! and maps events; `provider` is the operations; `config` the instance's keys.
//!
//! Capabilities: payments (Orders v2, the buyer approving on PayPal), manual capture,
//! redirects, refunds (against the capture behind a payment), subscriptions (Billing
//! Subscriptions v1; the price id is the plan id), webhooks. No `customers`: payhost keeps
//! the customers and hands the payer's email and name to each order and subscription.

mod client;
mod config;
pub mod money;
mod provider;
pub mod webhook;
pub mod wire;

pub use config::{PaypalConfig, Verification};
pub use provider::PaypalProvider;

payhost_plugin_kit::export_plugin!(PaypalProvider);
