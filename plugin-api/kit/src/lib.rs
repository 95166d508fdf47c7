//! The author kit for payhost provider plugins.
//!
//! A plugin is a `cdylib` that implements [`Plugin`] (manifest, typed config, constructor)
//! and [`Provider`] (the operations its capabilities promise), on plain Rust types, then
//! calls [`export_plugin!`]. The kit writes the boundary once: messages, panics, the
//! config's keys and checks. Depend on this crate alone.
//!
//! ```
//! use payhost_plugin_kit::prelude::*;
//! use std::sync::Mutex;
//!
//! /// Configuration: the fields are the keys an operator writes in plugins.toml.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// Payments above this many minor units are declined.
//!     #[serde(default)]
//!     limit: Option<i64>,
//! }
//!
//! struct Tiny {
//!     ids: IdGen,
//!     limit: i64,
//!     payments: Mutex<Vec<Payment>>,
//! }
//!
//! impl Plugin for Tiny {
//!     type Config = Config;
//!     fn manifest() -> Manifest {
//!         Manifest::new("tiny", "0.1.0").capabilities(&[capabilities::PAYMENTS])
//!     }
//!     fn new(config: Config, host: Host) -> Result<Self, PluginError> {
//!         Ok(Tiny { ids: IdGen::new(&host), limit: config.limit.unwrap_or(i64::MAX), payments: Mutex::default() })
//!     }
//! }
//!
//! impl Provider for Tiny {
//!     fn create_payment(&self, _ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
//!         let mut p = Payment::new(self.ids.next("tp"), req.amount, PaymentStatus::RequiresPaymentMethod);
//!         if req.payment_method.is_some() {
//!             p.status = if p.amount.amount <= self.limit { PaymentStatus::Succeeded } else { PaymentStatus::Failed };
//!             p.amount_received = if p.status == PaymentStatus::Succeeded { p.amount.amount } else { 0 };
//!         }
//!         self.payments.lock().unwrap().push(p.clone());
//!         Ok(p)
//!     }
//! }
//!
//! // In the real crate: payhost_plugin_kit::export_plugin!(Tiny);
//!
//! let fake = FakeHost::new();
//! let tiny: Tiny = payhost_plugin_kit::testing::instance(serde_json::json!({"limit": "500"}), &fake).unwrap();
//! let req = NewPayment { payment_method: Some("card".into()), ..NewPayment::new(Money::new(900, Currency::parse("usd").unwrap())) };
//! let p = payhost_plugin_kit::testing::call::<ops::CreatePayment>(&tiny, &CallCtx::default(), &req).unwrap();
//! assert_eq!(p.status, PaymentStatus::Failed);
//! ```
//!
//! Where to go next: `plugins/template` in the payhost repository is a complete provider in
//! about a hundred lines; README's "Writing a provider plugin" walks from `cargo new` to a
//! loaded plugin; the operations' docs on [`Provider`] say which capability gates each,
//! which route calls it, what the host does with its answer and errors, and when to
//! [`Host::emit`].
//!
//! A plugin that calls its provider over HTTP finds the usual edge code here: [`HttpClient`]
//! (idempotency keys, retries inside the deadline), [`money`] (decimal strings with each
//! currency's digits), [`time`] (RFC 3339), [`StatusErrors`] (HTTP statuses to payhost's
//! error codes), [`path_id`] (caller ids in URL paths); and tests it without a network:
//! [`FakeHost::route`](testing::FakeHost::route) answers paths as the provider would,
//! [`FakeHost::on_visit`](testing::FakeHost::on_visit) plays the buyer on a redirect's page.
//!
//! Rules the conformance suite ([`conformance`]) enforces: provider ids never repeat (use
//! [`ids::IdGen`] for in-memory ids), every declared capability is implemented, refunds
//! never exceed what remains, a declined card is a payment with status `failed`, an
//! unsigned webhook is `invalid_signature`.

#![deny(missing_docs)]

pub mod config;
pub mod conformance;
pub mod export;
pub mod form;
mod host;
pub mod http;
pub mod ids;
pub mod money;
mod provider;
mod secret;
pub mod testing;
pub mod time;

/// The contract this kit builds on.
pub use payhost_plugin_api as api;

pub use api::{
    capabilities, codes, ops, signature, AttachPaymentMethod, Bytes, CallCtx, CancelSubscription,
    CaptureMethod, CapturePayment, ChangeSubscriptionPrice, ConfirmPayment, Currency, Customer,
    CustomerRef, CustomerUpdate, DomainEventKind, DomainEventReport, Fixtures, Headers,
    HttpRequest, HttpResponse, Invoice, InvoicePage, InvoiceQuery, InvoiceStatus, LogLevel,
    Manifest, Metadata, Money, NewCustomer, NewPayment, NewRefund, NewSubscription, NextAction,
    ObjectRef, Payer, Payment, PaymentMethod, PaymentMethodList, PaymentStatus, PluginError,
    Refund, RefundRef, RefundStatus, SetDefaultPaymentMethod, Subscription, SubscriptionStatus,
    VerifiedEvent, WebhookDelivery, WebhookEvent, WebhookReports,
};
pub use export::Plugin;
pub use form::Form;
pub use host::{Host, RawHost};
pub use http::{path_id, HttpClient, Request, Response, RetryPolicy, StatusErrors};
pub use provider::Provider;
pub use secret::Secret;

/// Everything a plugin usually needs: `use payhost_plugin_kit::prelude::*;`.
pub mod prelude {
    pub use crate::api::*;
    pub use crate::ids::IdGen;
    pub use crate::testing::FakeHost;
    pub use crate::{Form, Host, HttpClient, Plugin, Provider, RetryPolicy, Secret, StatusErrors};
}
