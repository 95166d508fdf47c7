//! payhost: a payment-provider plugin host.
//!
//! `config` reads plugins.toml; `plugins` loads provider libraries and runs their calls;
//! `events` dispatches lifecycle and domain events; `http` serves the API; `cli` is the
//! command line. The binary is a thin `main` over [`cli::run`].

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod events;
pub mod history;
pub mod http;
pub mod lease;
pub mod locks;
pub mod metrics;
pub mod operator;
pub mod outbox;
pub mod outgoing;
pub mod pace;
pub mod plugins;
pub mod resolver;
pub mod retention;
pub mod routing;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod webhooks;
