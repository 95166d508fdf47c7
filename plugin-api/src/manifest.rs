//! What a plugin declares about itself before any instance exists: its name and version,
//! the contract version it was built against, its capabilities, its configuration keys and
//! the fixtures the conformance suite uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The plugin type payhost loads.
pub const PLUGIN_TYPE_PAYMENT: &str = "payment";

/// Operation groups a provider declares. The host refuses an operation of an undeclared
/// group before calling the plugin ("provider X does not support Y"), and the conformance
/// suite checks that every declared group works.
pub mod capabilities {
    /// The provider keeps customer objects: `create_customer`, `get_customer`,
    /// `update_customer`. Without it, the host keeps customers itself and passes the
    /// payer's email and name with each payment and subscription.
    pub const CUSTOMERS: &str = "customers";
    /// Saved payment methods: `attach_payment_method`, `list_payment_methods`,
    /// `set_default_payment_method`. Needs `customers`.
    pub const PAYMENT_METHODS: &str = "payment_methods";
    /// One-time payments: `create_payment`, `get_payment`, `confirm_payment`,
    /// `cancel_payment`.
    pub const PAYMENTS: &str = "payments";
    /// Authorize now, take the money later: `capture_method: manual` on `create_payment`,
    /// `capture_payment` (full or partial), `cancel_payment` voids the authorization.
    pub const MANUAL_CAPTURE: &str = "manual_capture";
    /// Payments may answer `requires_action` with a `redirect_to_url` next action (the buyer
    /// approves at the provider, e.g. PayPal), then `confirm_payment` completes them.
    pub const REDIRECTS: &str = "redirects";
    /// `create_refund`.
    pub const REFUNDS: &str = "refunds";
    /// `create_subscription`, `get_subscription`, `change_subscription_price`,
    /// `cancel_subscription`, `reactivate_subscription`.
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    /// `get_invoice`, `list_invoices`.
    pub const INVOICES: &str = "invoices";
    /// `verify_webhook`, `map_webhook`: the provider calls
    /// `POST /webhooks/payments/{instance}`.
    pub const WEBHOOKS: &str = "webhooks";

    /// Every capability this version knows.
    pub const ALL: [&str; 9] = [
        CUSTOMERS,
        PAYMENT_METHODS,
        PAYMENTS,
        MANUAL_CAPTURE,
        REDIRECTS,
        REFUNDS,
        SUBSCRIPTIONS,
        INVOICES,
        WEBHOOKS,
    ];
}

/// One configuration key a plugin reads, derived from its config type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigKey {
    /// The key, as written in `plugins.toml` under `[providers.<name>.config]`.
    pub name: String,
    /// An instance without it does not start.
    pub required: bool,
    /// A secret (an API key, a signing secret): never logged, shown or stored.
    pub secret: bool,
    /// What it is for (the field's doc comment).
    pub description: Option<String>,
}

/// Values the conformance suite uses to exercise a provider: payment methods with known
/// outcomes, prices, and a configuration for a test instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fixtures {
    /// A payment method (token or id) that is charged successfully.
    pub payment_method_succeeds: Option<String>,
    /// A payment method that is declined.
    pub payment_method_declines: Option<String>,
    /// A payment method that needs the buyer to act (`requires_action`).
    pub payment_method_requires_action: Option<String>,
    /// A price (plan) id subscriptions can use.
    pub price: Option<String>,
    /// A second price, for the price change check.
    pub other_price: Option<String>,
    /// The currency payments are made in (default `usd`).
    pub currency: Option<String>,
    /// The configuration of a conformance instance when none is given (offline plugins).
    pub config: BTreeMap<String, Value>,
    /// A redirect's URL can be visited with a plain GET to approve it as the buyer would
    /// (true only for fakes of a provider; never for a real one).
    pub approve_redirect_by_visiting: bool,
}

/// What a plugin declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// The contract version the plugin was built against (filled by the author kit).
    pub contract: String,
    /// The registry key: unique among loaded plugins, e.g. `stripe`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// Always [`PLUGIN_TYPE_PAYMENT`] for now.
    pub plugin_type: String,
    /// Names from [`capabilities`].
    pub capabilities: Vec<String>,
    /// The configuration keys (filled by the author kit from the config type).
    pub config: Vec<ConfigKey>,
    /// The headers the provider's webhooks are signed in, lowercase (informational).
    pub webhook_headers: Vec<String>,
    /// For the conformance suite.
    pub fixtures: Fixtures,
}

impl Manifest {
    /// A payment plugin called `name`, version `version`, with nothing declared yet.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            contract: crate::CONTRACT_VERSION.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            plugin_type: PLUGIN_TYPE_PAYMENT.to_owned(),
            ..Self::default()
        }
    }

    /// Declares capabilities (names from [`capabilities`]).
    pub fn capabilities(mut self, caps: &[&str]) -> Self {
        self.capabilities
            .extend(caps.iter().map(|c| (*c).to_owned()));
        self
    }

    /// Names the headers webhooks are signed in.
    pub fn webhook_headers(mut self, headers: &[&str]) -> Self {
        self.webhook_headers
            .extend(headers.iter().map(|h| h.to_ascii_lowercase()));
        self
    }

    /// Sets the conformance fixtures.
    pub fn fixtures(mut self, fixtures: Fixtures) -> Self {
        self.fixtures = fixtures;
        self
    }

    /// Whether `cap` is declared.
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }

    /// The required configuration keys.
    pub fn required_config(&self) -> impl Iterator<Item = &str> {
        self.config
            .iter()
            .filter(|k| k.required)
            .map(|k| k.name.as_str())
    }
}
