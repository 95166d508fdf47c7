//! Validated request fields. Each type states its rule once, here: its `Deserialize`
//! enforces the rule and its schema documents the same constants, so what `/openapi.json`
//! promises and what the API accepts cannot drift apart.

use payhost_plugin_api::{Currency, DomainEventKind};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// The pattern of every free-text field: any text without NUL characters (PostgreSQL
/// cannot store them).
pub const TEXT_PATTERN: &str = "^[^\\u0000]*$";

/// Whether `s` holds between `min` and `max` characters and no NUL.
fn check_text(s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if s.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if n < min {
        return Err(if min == 1 {
            "must not be empty".into()
        } else {
            format!("must be at least {min} characters")
        });
    }
    if n > max {
        return Err(format!("must be at most {max} characters, got {n}"));
    }
    Ok(())
}

fn string_schema(min: usize, max: usize, pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// A text type: `min..=max` characters, no NUL.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $description:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MIN: usize = $min;
            pub const MAX: usize = $max;

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                check_text(&s, $min, $max).map_err(D::Error::custom)?;
                Ok(Self(s))
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                check_text(s, $min, $max)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_schema($min, $max, TEXT_PATTERN, $description)
            }
        }

        impl ToSchema for $name {}
    };
}

text_type!(
    /// The application's own id for a user.
    UserId,
    1,
    255,
    "The application's own id for the user: any text, 1 to 255 characters."
);
text_type!(
    /// A person's name.
    Name,
    0,
    256,
    "A name, up to 256 characters."
);
text_type!(
    /// A description shown to the payer and in the provider's dashboard.
    Description,
    0,
    1000,
    "Up to 1000 characters."
);
text_type!(
    /// The provider's price (plan) id.
    PriceId,
    1,
    255,
    "The provider's id of the price (plan), 1 to 255 characters."
);
text_type!(
    /// A payment method: payhost's id (`pmeth_…`) or the provider's.
    PaymentMethodRef,
    1,
    255,
    "payhost's id of a saved payment method (pmeth_…), or the provider's id of one."
);
text_type!(
    /// A provider instance's name, as `plugins.toml` configures it.
    ProviderName,
    1,
    64,
    "The name of a configured provider instance."
);
text_type!(
    /// A tenant's id.
    TenantId,
    1,
    64,
    "A tenant's id, as its X-Tenant-Id."
);
text_type!(
    /// An Idempotency-Key given as a parameter.
    KeyParam,
    1,
    255,
    "An Idempotency-Key."
);
text_type!(
    /// An actor or an action of the audit trail, to filter it by.
    AuditText,
    1,
    128,
    "An actor or an action of the audit trail, as its rows show it."
);
text_type!(
    /// A status to filter a list by.
    StatusFilter,
    1,
    64,
    "Only the records with this status."
);

/// A kind of domain event this version knows, to filter the event log by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EventType(String);

impl EventType {
    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if DomainEventKind::KNOWN.contains(&s.as_str()) {
            Ok(Self(s))
        } else {
            Err(D::Error::custom(format!(
                "unknown event type '{}' (known: {})",
                s.escape_debug(),
                DomainEventKind::KNOWN.join(", ")
            )))
        }
    }
}

impl PartialSchema for EventType {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(DomainEventKind::KNOWN.iter().copied()))
            .description(Some("A kind of domain event."))
            .into()
    }
}

impl ToSchema for EventType {}

/// The pattern of the ids payhost gives its records, in paths and cursors.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_]{1,64}$";

/// Whether `s` has the shape of a payhost id; anything else names no record.
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A payhost id (`pay_…`, `cust_…`) naming a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    /// `s` when it has the shape of a payhost id.
    pub fn parse(s: &str) -> Option<Self> {
        is_id(s).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if is_id(&s) {
            Ok(Self(s))
        } else {
            Err(D::Error::custom(format!(
                "'{}' is not a payhost id (letters, digits and '_', 1 to 64 characters)",
                s.escape_debug()
            )))
        }
    }
}

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(ID_PATTERN))
            .description(Some("A payhost id, e.g. pay_2mKx9…"))
            .into()
    }
}

impl ToSchema for Id {}

/// Largest amount accepted, in minor units.
pub const MAX_AMOUNT: i64 = 99_999_999_999;

/// An amount of money in minor units (cents), 1 to [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = whole_number(d)?;
        if (1..=MAX_AMOUNT).contains(&v) {
            Ok(Self(v))
        } else {
            Err(D::Error::custom(format!(
                "must be a positive number of minor units up to {MAX_AMOUNT}, got {v}"
            )))
        }
    }
}

impl PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_AMOUNT))
            .description(Some(
                "An amount in the currency's smallest unit (cents for usd, yen for jpy).",
            ))
            .into()
    }
}

impl ToSchema for Amount {}

/// A currency payhost knows, as its ISO 4217 code in lower or upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyCode(Currency);

impl CurrencyCode {
    pub fn currency(&self) -> &Currency {
        &self.0
    }
}

impl Serialize for CurrencyCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let one_case = s == s.to_ascii_lowercase() || s == s.to_ascii_uppercase();
        match Currency::parse(&s) {
            Ok(c) if one_case => Ok(Self(c)),
            _ => Err(D::Error::custom(format!(
                "'{}' is not a supported ISO 4217 currency code (e.g. usd, eur, jpy)",
                s.escape_debug()
            ))),
        }
    }
}

impl PartialSchema for CurrencyCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            // One case, as answers carry it: an enum listing both spellings of each code
            // makes client generators emit duplicate members (and refuse). Requests may still
            // give a code in upper case; the description says so.
            .enum_values(Some(Currency::known()))
            .description(Some(
                "An ISO 4217 currency code payhost supports, in lower case as answers carry \
                 it; requests may also give it in upper case (USD).",
            ))
            .into()
    }
}

impl ToSchema for CurrencyCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Currency")
    }
}

/// Longest email address (RFC 5321).
const MAX_EMAIL: usize = 254;
/// An email address: a dot-atom local part (RFC 5322) of at most 64 characters — up to 64
/// without a dot, two atoms of up to 31 and 32, or three of up to 20 (a regular expression
/// cannot count the whole) — and a domain of two or more DNS labels, ASCII. Every address it
/// matches is one the mailer accepts (tested).
pub const EMAIL_PATTERN: &str = concat!(
    "^(",
    "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}|",
    "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,31}\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}|",
    "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}",
    ")@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
    "(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
);

/// A character of a dot-atom's atoms (RFC 5322 `atext`).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b)
}

/// A DNS label: 1 to 63 letters, digits and hyphens, not starting or ending with one.
fn is_label(l: &str) -> bool {
    let b = l.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Whether `s` matches [`EMAIL_PATTERN`] (checked by hand, the same rule).
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let atoms: Vec<usize> = local.split('.').map(str::len).collect();
    let sized = match atoms.as_slice() {
        [a] => *a <= 64,
        [a, b] => *a <= 31 && *b <= 32,
        [a, b, c] => *a <= 20 && *b <= 20 && *c <= 20,
        _ => false,
    };
    let labels: Vec<&str> = domain.split('.').collect();
    sized
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
        && labels.len() >= 2
        && labels.iter().all(|l| is_label(l))
}

/// An email address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() <= MAX_EMAIL && is_email(&s) {
            Ok(Self(s))
        } else {
            Err(D::Error::custom(format!(
                "'{}' is not an email address",
                s.escape_debug()
            )))
        }
    }
}

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        string_schema(
            0,
            MAX_EMAIL,
            EMAIL_PATTERN,
            "An email address (ASCII, e.g. ada@example.com): a dot-atom local part and a \
             domain of two or more labels.",
        )
    }
}

impl ToSchema for Email {}

/// Longest URL accepted.
const MAX_URL: usize = 2048;
/// An absolute http(s) URL of printable ASCII.
pub const URL_PATTERN: &str = "^https?://[!-~]+$";

/// Where the provider sends the buyer back after an approval page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Url(String);

impl Url {
    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"));
        match rest {
            Some(r)
                if !r.is_empty()
                    && s.len() <= MAX_URL
                    && r.bytes().all(|b| (b'!'..=b'~').contains(&b)) =>
            {
                Ok(Self(s))
            }
            _ => Err(D::Error::custom(format!(
                "'{}' is not an absolute http(s) URL",
                s.escape_debug()
            ))),
        }
    }
}

impl PartialSchema for Url {
    fn schema() -> RefOr<Schema> {
        string_schema(
            0,
            MAX_URL,
            URL_PATTERN,
            "An absolute http or https URL, printable ASCII.",
        )
    }
}

impl ToSchema for Url {}

/// Most metadata keys.
pub const MAX_METADATA_KEYS: usize = 50;
/// Longest metadata key.
pub const MAX_METADATA_KEY: usize = 40;
/// Longest metadata value.
pub const MAX_METADATA_VALUE: usize = 500;

/// Key-value pairs the application attaches to a record (the provider keeps them too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        if map.len() > MAX_METADATA_KEYS {
            return Err(D::Error::custom(format!(
                "at most {MAX_METADATA_KEYS} keys, got {}",
                map.len()
            )));
        }
        for (k, v) in &map {
            check_text(k, 1, MAX_METADATA_KEY)
                .map_err(|e| D::Error::custom(format!("key '{}' {e}", k.escape_debug())))?;
            check_text(v, 0, MAX_METADATA_VALUE)
                .map_err(|e| D::Error::custom(format!("value of '{}' {e}", k.escape_debug())))?;
        }
        Ok(Self(map))
    }
}

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        let value = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_METADATA_VALUE))
            .pattern(Some(TEXT_PATTERN));
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_METADATA_KEY))
            .pattern(Some(TEXT_PATTERN));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::Object(
                value.build(),
            )))))
            .property_names(Some(key))
            .max_properties(Some(MAX_METADATA_KEYS))
            .description(Some(
                "Up to 50 keys of at most 40 characters, each with a text value of at most \
                 500 characters.",
            ))
            .into()
    }
}

impl ToSchema for Metadata {}

/// Longest trial, in days.
pub const MAX_TRIAL_DAYS: u32 = 730;

/// Days of free trial before the first charge, 0 to [`MAX_TRIAL_DAYS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TrialDays(u32);

impl TrialDays {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for TrialDays {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = whole_number(d)?;
        match u32::try_from(v) {
            Ok(v) if v <= MAX_TRIAL_DAYS => Ok(Self(v)),
            _ => Err(D::Error::custom(format!(
                "must be 0 to {MAX_TRIAL_DAYS} days, got {v}"
            ))),
        }
    }
}

impl PartialSchema for TrialDays {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_TRIAL_DAYS))
            .description(Some("Days of free trial before the first charge."))
            .into()
    }
}

impl ToSchema for TrialDays {}

/// Largest page.
pub const MAX_LIMIT: u32 = 100;
/// The page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 10;

/// How many records a page holds, 1 to [`MAX_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Limit(u32);

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

impl Limit {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Query strings carry text; a number is parsed from it.
        let raw = NumberOrText::deserialize(d)?;
        let v = raw.as_i64().map_err(D::Error::custom)?;
        match u32::try_from(v) {
            Ok(v) if (1..=MAX_LIMIT).contains(&v) => Ok(Self(v)),
            _ => Err(D::Error::custom(format!(
                "must be 1 to {MAX_LIMIT}, got {v}"
            ))),
        }
    }
}

impl PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(DEFAULT_LIMIT.into()))
            .description(Some("How many records a page holds."))
            .into()
    }
}

impl ToSchema for Limit {}

/// A number as JSON gives it (`5` or `5.0`: JSON Schema's integers) or as a query string
/// spells it.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Integer(i64),
    Float(f64),
    Text(String),
}

/// The largest magnitude below which every integer is exact in an f64.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

impl NumberOrText {
    fn as_i64(&self) -> Result<i64, String> {
        match self {
            NumberOrText::Integer(n) => Ok(*n),
            #[allow(clippy::cast_possible_truncation)]
            NumberOrText::Float(f) if f.fract() == 0.0 && f.abs() <= EXACT_F64 => Ok(*f as i64),
            NumberOrText::Float(f) => Err(format!("{f} is not an integer")),
            NumberOrText::Text(t) => t
                .parse()
                .map_err(|_| format!("'{}' is not an integer", t.escape_debug())),
        }
    }
}

/// A whole number from a JSON body (`5` or `5.0`), never from text.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    // Through serde_json's Number, so a missing field still says "missing field".
    let n = serde_json::Number::deserialize(d)?;
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Ok(i),
        (None, Some(f)) => NumberOrText::Float(f).as_i64().map_err(D::Error::custom),
        (None, None) => Err(D::Error::custom(format!("{n} is out of range"))),
    }
}

/// A Unix time in seconds, for list filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = NumberOrText::deserialize(d)?;
        raw.as_i64().map(Self).map_err(D::Error::custom)
    }
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .description(Some("Unix time in seconds."))
            .into()
    }
}

impl ToSchema for Timestamp {}

/// `true` or `false` in a query string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Flag(bool);

impl Flag {
    pub fn get(self) -> bool {
        self.0
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum BoolOrText {
            Bool(bool),
            Text(String),
        }
        match BoolOrText::deserialize(d)? {
            BoolOrText::Bool(b) => Ok(Self(b)),
            BoolOrText::Text(t) if t == "true" => Ok(Self(true)),
            BoolOrText::Text(t) if t == "false" => Ok(Self(false)),
            BoolOrText::Text(t) => Err(D::Error::custom(format!(
                "'{}' is not true or false",
                t.escape_debug()
            ))),
        }
    }
}

impl PartialSchema for Flag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .default(Some(false.into()))
            .into()
    }
}

impl ToSchema for Flag {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn text_refuses_nul_and_lengths_outside_the_rule() {
        assert!(parse::<UserId>("\"u1\"").is_ok());
        assert!(parse::<UserId>("\"\"").unwrap_err().contains("empty"));
        assert!(parse::<UserId>("\"a\\u0000b\"")
            .unwrap_err()
            .contains("NUL"));
        let long = format!("\"{}\"", "é".repeat(256));
        assert!(parse::<UserId>(&long).unwrap_err().contains("at most 255"));
        assert!(parse::<Name>("\"\"").is_ok(), "a name may be empty");
    }

    #[test]
    fn emails_follow_the_documented_pattern() {
        for ok in [
            "a@b.co",
            "ada.lovelace+x@example.com",
            "0@A.B",
            "o'neil@x-y.z0",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        let bad = [
            "",
            "a",
            "a@b",
            "a@.b",
            "a@b.",
            "a b@c.d",
            "a@@b.c",
            "@b.c",
            "ü@b.c",
            ">]RQ-SN@Sh.0",
            "a..b@c.d",
            ".a@c.d",
            "a@-b.c",
            "a@b-.c",
        ];
        for bad in bad {
            assert!(!is_email(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// What the pattern documents, the hand-written check accepts and the mailer takes.
        #[test]
        fn every_documented_email_is_accepted_and_mailable(
            s in EMAIL_PATTERN.trim_start_matches('^').trim_end_matches('$')
        ) {
            proptest::prop_assume!(s.len() <= MAX_EMAIL);
            proptest::prop_assert!(is_email(&s), "{}", s);
            let mailbox: Result<lettre::message::Mailbox, _> = s.parse();
            proptest::prop_assert!(mailbox.is_ok(), "lettre refuses {}: {:?}", s, mailbox);
        }
    }

    #[test]
    fn amounts_currencies_and_limits() {
        assert!(parse::<Amount>("0").is_err());
        assert!(parse::<Amount>("1").is_ok());
        assert_eq!(
            parse::<Amount>("250.0").unwrap().get(),
            250,
            "JSON Schema's integer"
        );
        assert!(parse::<Amount>("2.5").is_err());
        assert!(
            parse::<Amount>("\"5\"").is_err(),
            "a body's number is not text"
        );
        assert!(parse::<Amount>(&(MAX_AMOUNT + 1).to_string()).is_err());
        assert_eq!(
            parse::<CurrencyCode>("\"USD\"")
                .unwrap()
                .currency()
                .as_str(),
            "usd"
        );
        assert!(parse::<CurrencyCode>("\"uSd\"").is_err(), "one case only");
        assert!(parse::<CurrencyCode>("\"xyz\"").is_err());
        assert!(parse::<Limit>("\"50\"").is_ok());
        assert!(parse::<Limit>("0").is_err());
        assert!(parse::<Limit>("\"101\"").is_err());
        assert!(parse::<Id>("\"pay_x1\"").is_ok());
        assert!(parse::<Id>("\"pay-x1\"").is_err());
    }

    #[test]
    fn metadata_limits() {
        assert!(parse::<Metadata>(r#"{"a": "b"}"#).is_ok());
        assert!(parse::<Metadata>(r#"{"": "b"}"#).is_err());
        assert!(parse::<Metadata>(r#"{"a": 1}"#).is_err());
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(parse::<Metadata>(&serde_json::to_string(&many).unwrap()).is_err());
    }
}
