use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Raw bytes (HTTP and webhook bodies), carried as base64 in messages.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes as UTF-8 text, when they are.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// HTTP headers in order, names as received; a name may repeat. Lookups ignore case.
/// `Debug` hides the values of credentials (Authorization, cookies, keys, tokens,
/// signatures).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Headers(pub Vec<(String, String)>);

/// Whether a header's value is a credential, by its name.
fn is_credential(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || ["key", "token", "secret", "signature", "password", "auth"]
        .iter()
        .any(|w| n.contains(w))
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_credential(k) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k, shown)
            }))
            .finish()
    }
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one header.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(name, value);
        self
    }

    /// Adds one header.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name`, ignoring case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// One HTTP exchange a plugin asks the host to make (host operation `http`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// Absolute `https://` (or `http://`, for local fakes) URL. The host allows only the
    /// hosts in the instance's `allow_hosts`.
    pub url: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "super::is_default")]
    pub headers: Headers,
    /// The body.
    #[serde(default, skip_serializing_if = "super::is_default")]
    pub body: Bytes,
    /// Upper bound for the whole exchange in milliseconds (0: the host's default). The host
    /// also never waits past the current call's deadline.
    #[serde(default, skip_serializing_if = "super::is_default")]
    pub timeout_ms: u32,
}

/// The answer to an [`HttpRequest`]: any status, including errors, is an answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers (names lowercase).
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

crate::open_enum! {
    /// Severity of a log line a plugin writes through the host.
    pub enum LogLevel {
        /// Something failed.
        Error => "error",
        /// Something is off.
        Warn => "warn",
        /// Normal operation.
        Info => "info",
        /// Detail for debugging.
        Debug => "debug",
        /// More detail.
        Trace => "trace",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_travel_as_base64_and_headers_ignore_case() {
        let b = Bytes::from("h\u{e9}llo\0");
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Bytes>(&json).unwrap(), b);
        let h = Headers::new().with("Stripe-Signature", "t=1");
        assert_eq!(h.get("stripe-signature"), Some("t=1"));
        assert_eq!(h.get("x"), None);
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn debug_hides_credentials_and_shows_the_rest() {
        let h = Headers::new()
            .with("Authorization", "Bearer sk_live_SECRET")
            .with("Stripe-Signature", "t=1,v1=SECRETSIG")
            .with("Idempotency-Key", "SECRET_KEY")
            .with("Content-Type", "application/json");
        let shown = format!(
            "{h:?} {:?}",
            HttpRequest {
                headers: h.clone(),
                ..HttpRequest::default()
            }
        );
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
    }
}
