//! `application/x-www-form-urlencoded` bodies and query strings, with the bracket notation
//! Stripe-style APIs use: `metadata[plan]=pro`, `items[0][price]=price_123`, booleans as
//! `true`/`false`.

/// Ordered form parameters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value`.
    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.0.push((key.to_owned(), value.to_string()));
        self
    }

    /// Adds `key=value` when there is a value; absent values are left out.
    pub fn opt(self, key: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// `metadata[k]=v` for each pair.
    pub fn metadata<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (k, v) in pairs {
            self = self.set(&format!("metadata[{k}]"), v);
        }
        self
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The encoded form, `k=v&k2=v2`.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Parses an encoded form (for fake servers and query strings).
    ///
    /// # Errors
    /// A malformed percent escape or bytes that are not UTF-8.
    pub fn decode(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((unescape(k)?, unescape(v)?));
        }
        Ok(Self(out))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-encodes everything but unreserved characters (brackets included, as the SDKs do).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|e| e.to_string())?;
                out.push(
                    u8::from_str_radix(hex, 16).map_err(|e| format!("bad escape %{hex}: {e}"))?,
                );
                i += 2;
            }
            b'%' => return Err("truncated percent escape".into()),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_brackets_and_round_trips() {
        let f = Form::new()
            .set("items[0][price]", "price_123")
            .metadata([("order id", "A&B=1")])
            .set("automatic_payment_methods[enabled]", true)
            .opt("description", None::<&str>);
        let s = f.encode();
        assert_eq!(
            s,
            "items%5B0%5D%5Bprice%5D=price_123&metadata%5Border+id%5D=A%26B%3D1&automatic_payment_methods%5Benabled%5D=true"
        );
        assert_eq!(Form::decode(&s).unwrap(), f);
        assert!(Form::decode("a=%2").is_err());
    }
}
