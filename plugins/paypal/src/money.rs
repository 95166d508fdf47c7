//! PayPal's money: `{"currency_code": "USD", "value": "50.00"}`, the value a decimal string
//! with exactly the currency's minor digits at PayPal (never a float). payhost counts minor
//! units of ISO 4217; PayPal takes HUF and TWD without decimals, so those amounts must be
//! whole.

use payhost_plugin_kit::money::from_decimal;
use payhost_plugin_kit::{Currency, Money, PluginError};
use serde::{Deserialize, Serialize};

/// PayPal's amount object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// Uppercase ISO 4217.
    pub currency_code: String,
    /// A decimal string.
    pub value: String,
}

/// Currencies PayPal takes without decimals although ISO 4217 gives them two.
const WHOLE_AT_PAYPAL: &[&str] = &["huf", "twd"];

/// `(ISO digits, PayPal digits)` of a currency.
fn digits(currency: &Currency) -> Result<(u32, u32), PluginError> {
    let iso = u32::from(currency.minor_digits().ok_or_else(|| {
        PluginError::invalid(
            "currency",
            format!("{} has no known number of minor digits", currency.as_str()),
        )
    })?);
    let paypal = if WHOLE_AT_PAYPAL.contains(&currency.as_str()) {
        0
    } else {
        iso
    };
    Ok((iso, paypal))
}

/// payhost's money as PayPal's amount.
///
/// # Errors
/// `invalid_request` (param `amount`) for a negative amount or one PayPal cannot express.
pub fn to_paypal(money: &Money) -> Result<Amount, PluginError> {
    let (iso, paypal) = digits(&money.currency)?;
    if money.amount < 0 {
        return Err(PluginError::invalid("amount", "amounts are never negative"));
    }
    let drop = 10i64.pow(iso - paypal);
    if money.amount % drop != 0 {
        return Err(PluginError::invalid(
            "amount",
            format!(
                "PayPal takes {} in whole units: {} minor units is not a whole amount",
                money.currency.as_str().to_uppercase(),
                money.amount
            ),
        ));
    }
    let units = money.amount / drop;
    let value = if paypal == 0 {
        units.to_string()
    } else {
        let scale = 10i64.pow(paypal);
        format!(
            "{}.{:0width$}",
            units / scale,
            units % scale,
            width = paypal as usize
        )
    };
    Ok(Amount {
        currency_code: money.currency.as_str().to_uppercase(),
        value,
    })
}

/// PayPal's amount as payhost's money, read with the kit's `from_decimal` (the currency's
/// ISO digits; trailing zeros beyond them, as in `"50.0"` JPY, are the same amount).
///
/// # Errors
/// `plugin_internal` for an amount PayPal would never send (a malformed or negative value,
/// a fraction finer than the currency has, an unknown currency).
pub fn from_paypal(amount: &Amount) -> Result<Money, PluginError> {
    let bad = |why: &str| {
        PluginError::new(
            payhost_plugin_kit::codes::INTERNAL,
            format!(
                "PayPal sent the amount {} {}: {why}",
                amount.value, amount.currency_code
            ),
        )
    };
    let currency = Currency::parse(&amount.currency_code.to_ascii_lowercase())
        .map_err(|_| bad("unknown currency"))?;
    if amount.value.starts_with('-') {
        return Err(bad("PayPal's amounts are never negative"));
    }
    from_decimal(&amount.value, &currency).map_err(|e| bad(&e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(amount: i64, c: &str) -> Money {
        Money::new(amount, Currency::parse(c).unwrap())
    }

    fn a(value: &str, c: &str) -> Amount {
        Amount {
            currency_code: c.into(),
            value: value.into(),
        }
    }

    #[test]
    fn amounts_carry_each_currencys_digits() {
        assert_eq!(to_paypal(&m(5000, "usd")).unwrap(), a("50.00", "USD"));
        assert_eq!(to_paypal(&m(5, "usd")).unwrap(), a("0.05", "USD"));
        assert_eq!(to_paypal(&m(5000, "jpy")).unwrap(), a("5000", "JPY"));
        assert_eq!(to_paypal(&m(12345, "bhd")).unwrap(), a("12.345", "BHD"));
        assert_eq!(to_paypal(&m(150_000, "huf")).unwrap(), a("1500", "HUF"));
        let e = to_paypal(&m(150_050, "huf")).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"));
        assert!(e.message.contains("whole units"), "{e}");
    }

    #[test]
    fn paypal_amounts_read_back_exactly() {
        for (money, amount) in [
            (m(5000, "usd"), a("50.00", "USD")),
            (m(5000, "usd"), a("50", "USD")),
            (m(5000, "jpy"), a("5000", "JPY")),
            (m(12345, "bhd"), a("12.345", "BHD")),
            (m(150_000, "huf"), a("1500", "HUF")),
            (m(5010, "usd"), a("50.1", "USD")),
            (m(50, "jpy"), a("50.0", "JPY")),
        ] {
            assert_eq!(from_paypal(&amount).unwrap(), money, "{amount:?}");
        }
        for bad in [
            a("50.001", "USD"),
            a("1e3", "USD"),
            a("-5.00", "USD"),
            a("5.", "USD"),
            a("", "USD"),
            a("50.5", "JPY"),
            a("1.00", "XXQ"),
        ] {
            assert!(from_paypal(&bad).is_err(), "{bad:?} was accepted");
        }
    }
}
