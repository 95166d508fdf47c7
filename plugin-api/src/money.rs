//! Currencies as ISO 4217 codes, and money as minor units of one currency.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// ISO 4217 codes payhost knows, with the number of minor-unit digits of each.
///
/// The list is the set of currencies card providers settle in. The API refuses a code
/// outside it ([`Currency::parse`]); the contract carries any three-letter code, so a
/// currency added in a later version passes through an older plugin or host unchanged.
const CURRENCIES: &[(&str, u8)] = &[
    ("aed", 2),
    ("ars", 2),
    ("aud", 2),
    ("bgn", 2),
    ("bhd", 3),
    ("brl", 2),
    ("cad", 2),
    ("chf", 2),
    ("clp", 0),
    ("cny", 2),
    ("cop", 2),
    ("czk", 2),
    ("dkk", 2),
    ("egp", 2),
    ("eur", 2),
    ("gbp", 2),
    ("hkd", 2),
    ("huf", 2),
    ("idr", 2),
    ("ils", 2),
    ("inr", 2),
    ("isk", 0),
    ("jod", 3),
    ("jpy", 0),
    ("krw", 0),
    ("kwd", 3),
    ("mad", 2),
    ("mxn", 2),
    ("myr", 2),
    ("ngn", 2),
    ("nok", 2),
    ("nzd", 2),
    ("omr", 3),
    ("php", 2),
    ("pkr", 2),
    ("pln", 2),
    ("qar", 2),
    ("ron", 2),
    ("rsd", 2),
    ("sar", 2),
    ("sek", 2),
    ("sgd", 2),
    ("thb", 2),
    ("try", 2),
    ("twd", 2),
    ("uah", 2),
    ("ugx", 0),
    ("usd", 2),
    ("vnd", 0),
    ("xaf", 0),
    ("xof", 0),
    ("zar", 2),
];

/// A lowercase three-letter currency code, e.g. `usd`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(String);

/// The currency code given is not one payhost knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCurrency(pub String);

impl fmt::Display for InvalidCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a supported ISO 4217 currency code", self.0)
    }
}

impl std::error::Error for InvalidCurrency {}

impl Currency {
    /// Parses a three-letter ISO 4217 code payhost knows, in either case.
    ///
    /// # Errors
    /// [`InvalidCurrency`] when the code is not in payhost's list.
    pub fn parse(code: &str) -> Result<Self, InvalidCurrency> {
        let lower = code.to_ascii_lowercase();
        if CURRENCIES.iter().any(|(c, _)| *c == lower) {
            Ok(Self(lower))
        } else {
            Err(InvalidCurrency(code.to_owned()))
        }
    }

    /// The lowercase code, e.g. `usd`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits after the decimal point (2 for USD, 0 for JPY, 3 for KWD), or `None` for a
    /// code this version does not know: never guess, a wrong guess moves money by 10×.
    pub fn minor_digits(&self) -> Option<u8> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == self.as_str())
            .map(|(_, d)| *d)
    }

    /// Every code [`Currency::parse`] accepts.
    pub fn known() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(c, _)| *c)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    /// Any three ASCII letters: a currency a newer peer knows is carried, not refused.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(serde::de::Error::custom(format!(
                "'{s}' is not a three-letter currency code"
            )))
        }
    }
}

/// An amount in the smallest unit of its currency (cents for USD, yen for JPY).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units: `5000` is 50.00 USD or 5,000 JPY.
    pub amount: i64,
    /// The currency of `amount`.
    pub currency: Currency,
}

impl Money {
    /// `amount` minor units of `currency`.
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// The amount as a decimal string with exactly its currency's digits: `"12.34"` USD,
    /// `"500"` JPY, `"1.500"` KWD, `"-0.05"` EUR; `None` for a currency whose digits this
    /// version does not know (since 2.2).
    pub fn decimal(&self) -> Option<String> {
        let digits = self.currency.minor_digits().map(u32::from)?;
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        if digits == 0 {
            return Some(format!("{sign}{abs}"));
        }
        let scale = 10u64.pow(digits);
        Some(format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = digits as usize
        ))
    }

    /// The amount written for people: `12.34 USD`, `500 JPY`, `1.500 KWD`; a currency of
    /// unknown precision shows its minor units: `1234 (minor units) XYZ`.
    pub fn display(&self) -> String {
        let code = self.currency.as_str().to_ascii_uppercase();
        match self.decimal() {
            Some(d) => format!("{d} {code}"),
            None => format!("{} (minor units) {code}", self.amount),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_codes_in_any_case() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "usd");
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "eur");
    }

    #[test]
    fn refuses_unknown_and_malformed_codes() {
        for bad in ["", "us", "usdd", "xxx", "12$"] {
            assert!(Currency::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn carries_codes_it_does_not_know_without_guessing_their_precision() {
        let c: Currency = serde_json::from_str("\"XYZ\"").unwrap();
        assert_eq!((c.as_str(), c.minor_digits()), ("xyz", None));
        assert_eq!(
            Money::new(1234, c).display(),
            "1234 (minor units) XYZ",
            "never shown as 12.34"
        );
        assert!(serde_json::from_str::<Currency>("\"us\"").is_err());
    }

    #[test]
    fn displays_amounts_with_the_currency_minor_digits() {
        let m = |a, c| Money::new(a, Currency::parse(c).unwrap()).display();
        assert_eq!(m(1234, "usd"), "12.34 USD");
        assert_eq!(m(5, "eur"), "0.05 EUR");
        assert_eq!(m(500, "jpy"), "500 JPY");
        assert_eq!(m(1500, "kwd"), "1.500 KWD");
        assert_eq!(m(-250, "usd"), "-2.50 USD");
    }
}
