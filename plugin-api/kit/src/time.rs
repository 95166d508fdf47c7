//! Times as providers write them (RFC 3339: `2026-11-28T10:00:00Z`, `...+01:00`, with or
//! without fractions) and as payhost carries them (Unix seconds), both ways.
//!
//! ```
//! use payhost_plugin_kit::time::{parse_rfc3339, to_rfc3339};
//!
//! assert_eq!(parse_rfc3339("2026-11-28T11:00:00.250+01:00").unwrap(), 1_795_860_000);
//! assert_eq!(to_rfc3339(1_795_860_000), "2026-11-28T10:00:00Z");
//! ```

use crate::api::{codes, PluginError};
use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

/// Unix seconds of an RFC 3339 time (a fraction of a second is dropped).
///
/// # Errors
/// `plugin_internal` naming the value when it is not an RFC 3339 time (the provider
/// answered something unexpected).
pub fn parse_rfc3339(value: &str) -> Result<i64, PluginError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|e| {
            PluginError::new(
                codes::INTERNAL,
                format!("the provider's time '{value}' is not an RFC 3339 time: {e}"),
            )
        })
}

/// Unix seconds as an RFC 3339 time in UTC (`2026-11-28T10:00:00Z`); a time outside
/// years 0000–9999 is clamped to the nearest one RFC 3339 can write.
pub fn to_rfc3339(secs: i64) -> String {
    let min = OffsetDateTime::parse("0000-01-01T00:00:00Z", &Rfc3339)
        .map_or(i64::MIN, OffsetDateTime::unix_timestamp);
    let max = OffsetDateTime::parse("9999-12-31T23:59:59Z", &Rfc3339)
        .map_or(i64::MAX, OffsetDateTime::unix_timestamp);
    OffsetDateTime::from_unix_timestamp(secs.clamp(min, max))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_as_unix_seconds() {
        for (text, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-11-28T10:00:00Z", 1_795_860_000),
            ("2026-11-28T10:00:00.123456Z", 1_795_860_000),
            ("2026-11-28T11:00:00+01:00", 1_795_860_000),
            ("2026-11-28T05:30:00-04:30", 1_795_860_000),
            ("2024-02-29T00:00:00z", 1_709_164_800),
            ("1969-12-31T23:59:59Z", -1),
        ] {
            assert_eq!(parse_rfc3339(text).unwrap(), secs, "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_value() {
        for text in [
            "",
            "2026-11-28",
            "2026-11-28 10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T10:00:00",
            "1795863600",
        ] {
            let e = parse_rfc3339(text).unwrap_err();
            assert_eq!(e.code, codes::INTERNAL);
            assert!(e.message.contains(&format!("'{text}'")), "{}", e.message);
        }
    }

    #[test]
    fn unix_seconds_write_as_utc_and_read_back() {
        for secs in [0, 1_795_860_000, -1, 253_402_300_799] {
            assert_eq!(parse_rfc3339(&to_rfc3339(secs)).unwrap(), secs);
        }
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(to_rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }
}
