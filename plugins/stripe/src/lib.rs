//! `stripe`: Stripe as a payhost provider, over Stripe's real v1 protocol.
//!
//! `client` speaks HTTP through the host (form bodies with bracket notation, Bearer auth, a
//! pinned `Stripe-Version`, an `Idempotency-Key` on every POST, retries as Stripe's SDKs do
//! them); `wire` holds Stripe's objects and statuses and their mapping into payhost's types;
//! `webhook` verifies `Stripe-Signature` and maps events; `provider` is the operations.

mod client;
mod config;
pub mod form;
mod provider;
pub mod webhook;
pub mod wire;

pub use config::StripeConfig;
pub use provider::StripeProvider;

payhost_plugin_api::export_plugin!(StripeProvider);
