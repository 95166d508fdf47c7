//! The mock's fixed price catalog and test payment methods.

use payhost_plugin_kit::{Currency, Money};

/// Prices the mock knows; any other price id is `not_found`, as at a real provider.
pub fn price(id: &str) -> Option<Money> {
    let (amount, currency) = match id {
        "price_basic" => (999, "usd"),
        "price_pro" => (2999, "usd"),
        "price_enterprise" => (9999, "usd"),
        "price_basic_eur" => (899, "eur"),
        _ => return None,
    };
    Some(Money::new(
        amount,
        Currency::parse(currency).expect("catalog currency"),
    ))
}

/// What happens when a test payment method is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardBehaviour {
    Succeeds,
    Declined(&'static str),
    /// The buyer is sent to a page (3-D Secure, a wallet's approval) first.
    Redirects,
}

/// A test payment method token and what it does, with its kind, brand and last four digits.
pub fn test_method(
    token: &str,
) -> Option<(CardBehaviour, &'static str, &'static str, &'static str)> {
    Some(match token {
        "pm_card_visa" => (CardBehaviour::Succeeds, "card", "visa", "4242"),
        "pm_card_mastercard" => (CardBehaviour::Succeeds, "card", "mastercard", "4444"),
        "pm_card_chargeDeclined" => (
            CardBehaviour::Declined("generic_decline"),
            "card",
            "visa",
            "0002",
        ),
        "pm_card_chargeDeclinedInsufficientFunds" => (
            CardBehaviour::Declined("insufficient_funds"),
            "card",
            "visa",
            "9995",
        ),
        "pm_card_authenticationRequired" => (CardBehaviour::Redirects, "card", "visa", "3184"),
        "pm_redirect" => (CardBehaviour::Redirects, "wallet", "mockpay", ""),
        _ => return None,
    })
}
