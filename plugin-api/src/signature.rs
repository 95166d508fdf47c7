//! The `t=<unix seconds>,v1=<hex>` webhook signature scheme (HMAC-SHA256 over `"{t}.{body}"`),
//! as Stripe defines it. Providers that sign this way (Stripe, mock) and the host's outgoing
//! webhooks share this one implementation.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// Stripe's default: events older than five minutes are refused.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a signature header was refused. The messages are the official SDKs' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// No timestamp, or a header that is not `k=v` pairs.
    Malformed,
    /// No `v1` signature (only `v0` or other schemes, which never count).
    NoV1,
    /// No `v1` signature matches any secret.
    Mismatch,
    /// The timestamp is older than the tolerance.
    TooOld,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "Unable to extract timestamp and signatures from header",
            Self::NoV1 => "No signatures found with expected scheme",
            Self::Mismatch => "No signatures found matching the expected signature for payload",
            Self::TooOld => "Timestamp outside the tolerance zone",
        })
    }
}

impl std::error::Error for SignatureError {}

/// HMAC-SHA256 of `"{timestamp}.{body}"` keyed by the whole secret, lowercase hex.
pub fn compute(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut m =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// A header value `t=..,v1=..` with one `v1` per secret (several during a rotation).
pub fn header(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut h = format!("t={timestamp}");
    for s in secrets {
        h.push_str(",v1=");
        h.push_str(&compute(s, timestamp, body));
    }
    h
}

/// Verifies a header against the body with any of `secrets`.
/// `tolerance_secs == 0` turns the age check off; timestamps in the future are accepted.
///
/// # Errors
/// The [`SignatureError`] that explains the refusal, in the SDKs' order of checks.
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" => timestamp = v.parse::<i64>().ok(),
            "v1" => v1.push(v),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1);
    }
    let matched = secrets.iter().any(|secret| {
        let expected = mac(secret, timestamp, body);
        v1.iter().any(|candidate| match hex::decode(candidate) {
            Ok(bytes) => bool::from(bytes.ct_eq(&expected)),
            Err(_) => false,
        })
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if tolerance_secs > 0 && timestamp < now - tolerance_secs {
        return Err(SignatureError::TooOld);
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = r#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}"#;
    const TEST: &str = "67da5088c63e080c71bd2bb0cb5c03d85a8fc6a21ce3aaf484df809654745b92";
    const ROTATED: &str = "315a047cbd02b84a2249d1635324029efb5441283e318caa28a890daa6314595";

    fn raw_hmac(secret: &str, bytes: &[u8]) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(bytes);
        hex::encode(m.finalize().into_bytes())
    }

    #[test]
    fn matches_the_reference_vectors() {
        assert_eq!(
            raw_hmac("test_secret", b""),
            "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd"
        );
        assert_eq!(
            raw_hmac("test_secret", br#"{"obj1":"hello","obj2":"world"}"#),
            "bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363"
        );
        assert_eq!(
            compute("whsec_test_secret", 1_700_000_000, P.as_bytes()),
            TEST
        );
        assert_eq!(
            compute("whsec_rotated_secret", 1_700_000_000, P.as_bytes()),
            ROTATED
        );
        assert_eq!(
            compute("whsec_test_secret", 1_492_774_577, b"{}"),
            "53140ab8fa70c511cc40d5c9198af7dde7bbaee877038c056d8250c3bd3b2e11"
        );
    }

    #[test]
    fn a_rotation_header_is_valid_for_either_secret() {
        let h = format!("t=1700000000,v1={TEST},v1={ROTATED}");
        for secret in ["whsec_test_secret", "whsec_rotated_secret"] {
            assert_eq!(
                verify(&h, P.as_bytes(), &[secret], 1_700_000_010, 300),
                Ok(1_700_000_000)
            );
        }
        assert_eq!(
            verify(&h, P.as_bytes(), &["whsec_other"], 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_malformed_v0_only_tampered_and_old() {
        let body = P.as_bytes();
        let s = ["whsec_test_secret"];
        let now = 1_700_000_000;
        assert_eq!(
            verify("garbage", body, &s, now, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&format!("v1={TEST}"), body, &s, now, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&format!("t=1700000000,v0={TEST}"), body, &s, now, 300),
            Err(SignatureError::NoV1)
        );
        let h = format!("t=1700000000,v1={TEST}");
        assert_eq!(
            verify(&h, b"{}", &s, now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, body, &s, now + 301, 300),
            Err(SignatureError::TooOld)
        );
        assert_eq!(verify(&h, body, &s, now + 300, 300), Ok(now));
        assert_eq!(
            verify(&h, body, &s, now + 10_000, 0),
            Ok(now),
            "tolerance 0 disables the check"
        );
        assert_eq!(
            verify(&h, body, &s, now - 10_000, 300),
            Ok(now),
            "future timestamps pass"
        );
    }

    #[test]
    fn header_round_trips() {
        let h = header(&["a", "b"], 42, b"body");
        assert_eq!(verify(&h, b"body", &["b"], 42, 300), Ok(42));
    }
}
