//! `stripe`: Stripe as a payhost provider, over Stripe's real v1 protocol.
//!
//! `client` speaks HTTP through the author kit's client (form bodies with bracket notation,
//! Bearer auth, a pinned `Stripe-Version`, an `Idempotency-Key` on every POST, retries as
//! Stripe's SDKs make them); `wire` holds Stripe's objects and statuses and their mapping
//! into payhost's types; `webhook` verifies `Stripe-Signature` and maps events; `provider`
//! is the operations; `config` the instance's keys.

mod client;
mod config;
mod provider;
pub mod webhook;
pub mod wire;

pub use config::StripeConfig;
pub use provider::StripeProvider;

payhost_plugin_kit::export_plugin!(StripeProvider);
