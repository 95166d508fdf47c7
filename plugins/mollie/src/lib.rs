//! `mollie`: Mollie as a payhost provider, over Mollie's Payments API v2, built on the
//! author kit alone.
//!
//! - `config`: the instance's API key, base URL and default return URL.
//! - `wire`: Mollie's payment and refund objects, and what they are in payhost's words
//!   (the status tables are there).
//! - `provider`: the operations. Payments go through Mollie's hosted checkout (the
//!   payment's `next_action` is the checkout page; the buyer picks the method there);
//!   `Idempotency-Key` on every POST; refunds settle later (`pending` → `succeeded` or
//!   `failed`, read back by the host through `get_refund`); Mollie's errors (`detail`,
//!   `field`) become payhost's.
//! - `webhook`: thin webhooks: `id=tr_…`, authenticated by reading the payment with the
//!   instance's own key, stored once per state.
//!
//! Capabilities: payments, redirects, refunds, webhooks. Not yet: customers and mandates
//! (recurring payments), manual capture, orders.
//!
//! Built against contract 2.2 and needing it: the webhook URL comes from the host
//! (`CallCtx.webhook_url`, from `host.public_url`), thin events are mapped from what was
//! read (`VerifiedEvent.fetched`), refunds are read back (`get_refund`).

pub mod config;
mod provider;
pub mod webhook;
pub mod wire;

pub use config::MollieConfig;
pub use provider::MollieProvider;

payhost_plugin_kit::export_plugin!(MollieProvider);
