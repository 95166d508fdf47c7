//! Money as the decimal strings most providers' APIs use: `"10.00"` EUR, `"1000"` JPY,
//! `"1.234"` BHD — exactly the currency's minor-unit digits (ISO 4217), both ways.
//!
//! payhost carries money as an integer of minor units ([`Money`]); a provider that wants
//! `{"currency": "EUR", "value": "10.00"}` (Mollie, PayPal) converts at its edge with
//! these two functions. A currency whose digits this contract version does not know is
//! refused rather than guessed: a wrong guess moves money by a factor of ten.
//!
//! ```
//! use payhost_plugin_kit::money::{from_decimal, to_decimal};
//! use payhost_plugin_kit::{Currency, Money};
//!
//! let eur = Currency::parse("eur").unwrap();
//! assert_eq!(to_decimal(&Money::new(1050, eur.clone())).unwrap(), "10.50");
//! assert_eq!(from_decimal("10.50", &eur).unwrap(), Money::new(1050, eur));
//! ```

use crate::api::{codes, Currency, Money, PluginError};

/// The currency's digits, or an error naming it.
fn digits(currency: &Currency) -> Result<u32, PluginError> {
    currency
        .minor_digits()
        .map(u32::from)
        .ok_or_else(|| unknown_digits(currency))
}

fn unknown_digits(currency: &Currency) -> PluginError {
    PluginError::new(
        codes::UNSUPPORTED,
        format!(
            "the number of minor-unit digits of '{}' is not known to this plugin",
            currency.as_str()
        ),
    )
    .with_param("currency")
}

/// `money` as a decimal string with exactly its currency's digits (`1050` EUR →
/// `"10.50"`, `1000` JPY → `"1000"`, `1234` BHD → `"1.234"`, `-5` EUR → `"-0.05"`).
///
/// # Errors
/// `unsupported_operation` (param `currency`) for a currency whose digits are not known.
pub fn to_decimal(money: &Money) -> Result<String, PluginError> {
    money
        .decimal()
        .ok_or_else(|| unknown_digits(&money.currency))
}

/// The money a decimal string names in `currency`: `"10.50"` EUR → 1050. Fewer digits than
/// the currency's are read as they are meant (`"10.5"` → 1050, `"10"` → 1000); more are
/// accepted only when they are zeros (`"10.500"`), never rounded.
///
/// # Errors
/// `plugin_internal` naming the value when it is not a decimal number, carries a fraction
/// finer than the currency's minor unit, or does not fit; `unsupported_operation` (param
/// `currency`) for a currency whose digits are not known.
pub fn from_decimal(value: &str, currency: &Currency) -> Result<Money, PluginError> {
    let d = digits(currency)?;
    let bad = |why: &str| {
        PluginError::new(
            codes::INTERNAL,
            format!(
                "the provider's amount '{value}' {} is not a valid amount: {why}",
                currency.as_str().to_ascii_uppercase()
            ),
        )
    };
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(fraction) {
        return Err(bad("not a decimal number"));
    }
    if unsigned.ends_with('.') {
        return Err(bad("a decimal point without digits after it"));
    }
    let width = d as usize;
    let (kept, beyond) = fraction.split_at(fraction.len().min(width));
    if beyond.bytes().any(|b| b != b'0') {
        return Err(bad(&format!(
            "finer than the currency's {d} decimal digit(s)"
        )));
    }
    let overflow = || bad("too large");
    let whole: i64 = whole.parse().map_err(|_| overflow())?;
    let minor: i64 = format!("{kept:0<width$}")
        .parse::<i64>()
        .or_else(|e| if width == 0 { Ok(0) } else { Err(e) })
        .map_err(|_| overflow())?;
    let amount = whole
        .checked_mul(10i64.pow(d))
        .and_then(|w| w.checked_add(minor))
        .ok_or_else(overflow)?;
    Ok(Money::new(
        if negative { -amount } else { amount },
        currency.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn each_currency_gets_exactly_its_digits() {
        for (code, amount, text) in [
            ("eur", 1050, "10.50"),
            ("eur", 5, "0.05"),
            ("eur", 0, "0.00"),
            ("eur", -5, "-0.05"),
            ("jpy", 1000, "1000"),
            ("jpy", 0, "0"),
            ("bhd", 1234, "1.234"),
            ("bhd", 5, "0.005"),
            ("huf", 150_000, "1500.00"),
            ("usd", i64::MAX, "92233720368547758.07"),
        ] {
            let m = Money::new(amount, cur(code));
            assert_eq!(to_decimal(&m).unwrap(), text, "{code} {amount}");
            assert_eq!(from_decimal(text, &cur(code)).unwrap(), m, "{code} {text}");
        }
    }

    #[test]
    fn fewer_digits_read_as_meant_and_zeros_beyond_are_harmless() {
        for (code, text, amount) in [
            ("eur", "10", 1000),
            ("eur", "10.5", 1050),
            ("eur", "10.500", 1050),
            ("jpy", "1000.00", 1000),
            ("bhd", "1.2", 1200),
            ("huf", "1500", 150_000),
        ] {
            assert_eq!(
                from_decimal(text, &cur(code)).unwrap().amount,
                amount,
                "{code} {text}"
            );
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_value() {
        for (code, text) in [
            ("eur", "10.001"),
            ("jpy", "1000.5"),
            ("bhd", "1.2345"),
            ("eur", ""),
            ("eur", "."),
            ("eur", "10."),
            ("eur", ".5"),
            ("eur", "1,00"),
            ("eur", "+1.00"),
            ("eur", "1e3"),
            ("eur", " 1.00"),
            ("eur", "--1"),
            ("usd", "92233720368547758.08"),
            ("jpy", "99999999999999999999"),
        ] {
            let e = from_decimal(text, &cur(code)).unwrap_err();
            assert_eq!(e.code, codes::INTERNAL, "{code} {text}");
            assert!(e.message.contains(&format!("'{text}'")), "{}", e.message);
        }
    }

    #[test]
    fn a_currency_without_known_digits_is_refused_not_guessed() {
        // A code a newer contract knows travels through this one unchanged, digits unknown.
        let newer: Currency = serde_json::from_str("\"xts\"").unwrap();
        let e = to_decimal(&Money::new(100, newer.clone())).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.param.as_deref()),
            (codes::UNSUPPORTED, Some("currency"))
        );
        assert!(from_decimal("1.00", &newer).is_err());
    }
}
