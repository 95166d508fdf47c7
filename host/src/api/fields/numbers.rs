//! Numbers: amounts, currencies, trial days, page sizes, flags, and how a number may be
//! spelt (JSON integers, whole floats, query-string text).

use super::*;

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
pub(super) enum NumberOrText {
    Integer(i64),
    Float(f64),
    Text(String),
}

/// The largest magnitude below which every integer is exact in an f64.
pub(super) const EXACT_F64: f64 = 9_007_199_254_740_992.0;

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
pub(super) fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
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
