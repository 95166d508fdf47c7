//! A test-only plugin that misbehaves on purpose: `create_customer` panics, `get_customer`
//! outlives any sane deadline, `new` fails when told to. Everything else is unsupported.

use payhost_plugin_api::{
    capabilities, CallCtx, Customer, HostBox, NewCustomer, Plugin, PluginConfig, PluginError,
    PluginMetadata, Provider,
};
use std::time::Duration;

pub struct Misbehaving;

impl Plugin for Misbehaving {
    fn metadata() -> PluginMetadata {
        PluginMetadata::new("misbehaving", "0.0.1").capabilities(&[capabilities::CUSTOMERS])
    }

    fn new(config: PluginConfig, _host: HostBox) -> Result<Self, PluginError> {
        if config.get("fail_init") == Some("true") {
            return Err(PluginError::new(
                payhost_plugin_api::codes::CONFIG,
                "told to fail",
            ));
        }
        Ok(Self)
    }
}

impl Provider for Misbehaving {
    fn create_customer(&self, _ctx: &CallCtx, _req: NewCustomer) -> Result<Customer, PluginError> {
        panic!("misbehaving plugin panics in create_customer");
    }

    fn get_customer(&self, _ctx: &CallCtx, _id: &str) -> Result<Customer, PluginError> {
        std::thread::sleep(Duration::from_secs(3));
        Err(PluginError::not_found("customer", "slow"))
    }
}

payhost_plugin_api::export_plugin!(Misbehaving);
