//! `mock`: an in-memory payment provider that behaves like a real one, offline.
//!
//! Stripe's test payment methods drive outcomes (`pm_card_visa` succeeds,
//! `pm_card_chargeDeclined` is declined, `pm_card_authenticationRequired` needs action),
//! state is tracked per instance, ids are deterministic, asynchronous outcomes are reported
//! through the host's emit service, and webhooks are signed and verified with the same
//! `t=..,v1=..` HMAC-SHA256 scheme Stripe uses, in the `X-Webhook-Signature` header.

mod catalog;
mod provider;
pub mod webhook;

pub use provider::MockProvider;

payhost_plugin_api::export_plugin!(MockProvider);
