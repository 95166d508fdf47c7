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

mod addresses;
mod numbers;

pub use addresses::*;
pub use numbers::*;

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
