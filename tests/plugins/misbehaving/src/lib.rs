//! A test-only plugin that misbehaves on purpose: `create_customer` panics (except for
//! `@calm.example` addresses) and hands out ids from a counter that starts again with
//! every instance (they repeat after a restart), `get_customer` outlives any sane deadline
//! and names the instance that answered,
//! `create_payment` is slow and echoes the call context it received into the payment's
//! metadata, `new` fails when told to; its webhooks are unsigned (the body is the event id)
//! and mapping one takes `map_ms` and reports nothing. Everything else is unsupported.
//!
//! It blocks its thread with `std::thread::sleep` on purpose: it stands for a plugin that
//! hangs, which the host must survive. Real plugins sleep through the host.

use payhost_plugin_kit::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The misbehaving plugin's configuration.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `new` fails with invalid_config.
    #[serde(default)]
    fail_init: bool,
    /// How long `create_payment` takes (default 800 ms).
    #[serde(default)]
    slow_ms: Option<u64>,
    /// How long `map_webhook` takes (default 0).
    #[serde(default)]
    map_ms: Option<u64>,
}

pub struct Misbehaving {
    slow: Duration,
    map: Duration,
    next: AtomicU64,
    /// Which instance of this library this is (1, 2, ... in the order they were made):
    /// `get_customer`'s answer names it, so a test can tell which instance served a call.
    instance: u64,
}

/// Instances made from this library so far.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Plugin for Misbehaving {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("misbehaving", "0.0.1").capabilities(&[
            capabilities::CUSTOMERS,
            capabilities::PAYMENTS,
            capabilities::WEBHOOKS,
        ])
    }

    fn new(config: Config, _host: Host) -> Result<Self, PluginError> {
        if config.fail_init {
            return Err(PluginError::config("fail_init", "told to fail"));
        }
        Ok(Self {
            slow: Duration::from_millis(config.slow_ms.unwrap_or(800)),
            map: Duration::from_millis(config.map_ms.unwrap_or(0)),
            next: AtomicU64::new(1),
            instance: INSTANCES.fetch_add(1, Ordering::SeqCst) + 1,
        })
    }
}

impl Provider for Misbehaving {
    fn create_customer(&self, _ctx: &CallCtx, req: NewCustomer) -> Result<Customer, PluginError> {
        if !req.email.ends_with("@calm.example") {
            panic!("misbehaving plugin panics in create_customer");
        }
        Ok(Customer {
            id: format!("bad_cus_{}", self.next.fetch_add(1, Ordering::SeqCst)),
            email: req.email,
            name: req.name,
            ..Customer::default()
        })
    }

    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        std::thread::sleep(self.slow);
        let mut p = Payment::new(
            format!("bad_pi_{}", self.next.fetch_add(1, Ordering::SeqCst)),
            req.amount,
            PaymentStatus::RequiresPaymentMethod,
        );
        p.customer_id = req.customer_id;
        p.metadata = [
            (
                "seen_idempotency_key".to_owned(),
                ctx.idempotency_key.clone().unwrap_or_default(),
            ),
            ("seen_request_id".to_owned(), ctx.request_id.clone()),
            ("seen_deadline_ms".to_owned(), ctx.deadline_ms.to_string()),
            ("seen_instance".to_owned(), ctx.instance.clone()),
            (
                "seen_webhook_url".to_owned(),
                ctx.webhook_url.clone().unwrap_or_default(),
            ),
        ]
        .into();
        Ok(p)
    }

    fn get_customer(&self, _ctx: &CallCtx, _req: ObjectRef) -> Result<Customer, PluginError> {
        std::thread::sleep(Duration::from_secs(3));
        Err(PluginError::not_found(
            "customer",
            &format!("slow, answered by instance {}", self.instance),
        ))
    }

    fn verify_webhook(
        &self,
        _ctx: &CallCtx,
        d: WebhookDelivery,
    ) -> Result<VerifiedEvent, PluginError> {
        Ok(VerifiedEvent {
            id: String::from_utf8_lossy(&d.body).into_owned(),
            event_type: "misbehaving.event".into(),
            created: d.now,
            ..VerifiedEvent::default()
        })
    }

    fn map_webhook(
        &self,
        _ctx: &CallCtx,
        _event: WebhookEvent,
    ) -> Result<WebhookReports, PluginError> {
        std::thread::sleep(self.map);
        Ok(WebhookReports { events: Vec::new() })
    }
}

payhost_plugin_kit::export_plugin!(Misbehaving);
