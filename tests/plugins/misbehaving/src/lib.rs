//! A test-only plugin that misbehaves on purpose: `create_customer` panics (except for
//! `@calm.example` addresses), `get_customer` outlives any sane deadline, `create_payment`
//! is slow and echoes the call context it received into the payment's metadata, `new`
//! fails when told to. Everything else is unsupported.

use payhost_plugin_api::abi_stable::std_types::{ROption, RVec};
use payhost_plugin_api::{
    capabilities, CallCtx, Customer, HostBox, KeyValue, NewCustomer, NewPayment, Payment,
    PaymentStatus, Plugin, PluginConfig, PluginError, PluginMetadata, Provider,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct Misbehaving {
    slow: Duration,
    next: AtomicU64,
}

impl Plugin for Misbehaving {
    fn metadata() -> PluginMetadata {
        PluginMetadata::new("misbehaving", "0.0.1")
            .capabilities(&[capabilities::CUSTOMERS, capabilities::PAYMENTS])
    }

    fn new(config: PluginConfig, _host: HostBox) -> Result<Self, PluginError> {
        if config.get("fail_init") == Some("true") {
            return Err(PluginError::new(
                payhost_plugin_api::codes::CONFIG,
                "told to fail",
            ));
        }
        let slow = config
            .get("slow_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(800);
        Ok(Self {
            slow: Duration::from_millis(slow),
            next: AtomicU64::new(1),
        })
    }
}

impl Provider for Misbehaving {
    fn create_customer(&self, _ctx: &CallCtx, req: NewCustomer) -> Result<Customer, PluginError> {
        if !req.email.ends_with("@calm.example") {
            panic!("misbehaving plugin panics in create_customer");
        }
        Ok(Customer {
            id: format!("bad_cus_{}", self.next.fetch_add(1, Ordering::SeqCst)).into(),
            email: req.email,
            name: req.name,
            default_payment_method: ROption::RNone,
            metadata: RVec::new(),
        })
    }

    fn create_payment(&self, ctx: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        std::thread::sleep(self.slow);
        let key = ctx.idempotency_key.as_ref().map_or("", |k| k.as_str());
        Ok(Payment {
            id: format!("bad_pi_{}", self.next.fetch_add(1, Ordering::SeqCst)).into(),
            customer_id: ROption::RSome(req.customer_id),
            amount: req.amount,
            amount_refunded: 0,
            status: PaymentStatus::RequiresPaymentMethod,
            client_secret: ROption::RNone,
            payment_method: ROption::RNone,
            failure_code: ROption::RNone,
            failure_message: ROption::RNone,
            created: 0,
            metadata: vec![
                KeyValue::new("seen_idempotency_key", key),
                KeyValue::new("seen_request_id", ctx.request_id.as_str()),
            ]
            .into(),
        })
    }

    fn get_customer(&self, _ctx: &CallCtx, _id: &str) -> Result<Customer, PluginError> {
        std::thread::sleep(Duration::from_secs(3));
        Err(PluginError::not_found("customer", "slow"))
    }
}

payhost_plugin_api::export_plugin!(Misbehaving);
