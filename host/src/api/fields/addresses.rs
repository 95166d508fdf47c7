//! Addresses and maps: email addresses, URLs, metadata.

use super::*;

/// Longest email address (RFC 5321).
pub(super) const MAX_EMAIL: usize = 254;
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
pub(super) fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b)
}

/// A DNS label: 1 to 63 letters, digits and hyphens, not starting or ending with one.
pub(super) fn is_label(l: &str) -> bool {
    let b = l.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Whether `s` matches [`EMAIL_PATTERN`] (checked by hand, the same rule).
pub(super) fn is_email(s: &str) -> bool {
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
pub(super) const MAX_URL: usize = 2048;
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
