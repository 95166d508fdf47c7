//! `mock`: an in-memory payment provider that behaves like a real one, offline.
//!
//! Stripe's test payment methods drive outcomes (`pm_card_visa` succeeds,
//! `pm_card_chargeDeclined` is declined, `pm_card_authenticationRequired` and `pm_redirect`
//! send the buyer through a redirect), manual capture authorizes and captures in parts,
//! state is kept per instance, ids never repeat (across instances and restarts), the facts
//! an answer cannot show (a subscription's invoice paid) are reported through the host's
//! emit service, and webhooks are signed and verified with Stripe's `t=..,v1=..`
//! HMAC-SHA256 scheme in the `X-Webhook-Signature` header.

mod catalog;
mod provider;
mod state;
pub mod webhook;

pub use provider::MockConfig;
pub use state::MockProvider;

payhost_plugin_kit::export_plugin!(MockProvider);
