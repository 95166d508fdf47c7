//! The API and admin keys as the config gives them (text, a SHA-256, a table with a name,
//! tenant and scopes), whether a key could be guessed, and new keys nobody can guess.
//!
//! A bearer key is as strong as the guesses it takes. Beyond loopback, a key given as text
//! (not as its SHA-256) must carry at least [`MIN_BITS`], estimated as its length times the
//! bits of the character classes it uses, with no run, no short repeating pattern and no
//! common word to shrink the search. The estimate is generous to humans' keys and exact for
//! generated ones: `payhost keys generate` makes 32 random base62 characters (190 bits).

use super::Secret;
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a key must carry beyond loopback.
pub const MIN_BITS: f64 = 128.0;

/// Random characters in a generated key (after its `phk_` prefix): 32 × log2(62) ≈ 190 bits.
const GENERATED_LEN: usize = 32;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Words people put in keys (compared without case): a key holding one is refused.
const COMMON: &[&str] = &[
    "password", "passwd", "secret", "admin", "changeme", "payhost", "qwerty", "letmein", "12345",
    "abcde", "welcome", "default", "example",
];

/// Why `key` could be guessed, or `None` when it carries at least [`MIN_BITS`].
pub fn weakness(key: &str) -> Option<String> {
    let bits = estimated_bits(key);
    let lower = key.to_ascii_lowercase();
    if let Some(word) = COMMON.iter().find(|w| lower.contains(*w)) {
        return Some(format!("it contains the common word '{word}'"));
    }
    if let Some(period) = repeating_period(key) {
        return Some(format!(
            "it repeats a pattern of {period} character{}",
            if period == 1 { "" } else { "s" }
        ));
    }
    if has_run(key.as_bytes()) {
        return Some("it holds a run of 4 or more characters in sequence".to_owned());
    }
    (bits < MIN_BITS).then(|| {
        format!(
            "about {bits:.0} bits where {MIN_BITS:.0} are needed (e.g. 22 or more random \
             letters and digits; `payhost keys generate` makes one)"
        )
    })
}

/// Length × log2 of the alphabet its character classes span.
fn estimated_bits(key: &str) -> f64 {
    let b = key.as_bytes();
    let mut pool = 0u32;
    if b.iter().any(u8::is_ascii_lowercase) {
        pool += 26;
    }
    if b.iter().any(u8::is_ascii_uppercase) {
        pool += 26;
    }
    if b.iter().any(u8::is_ascii_digit) {
        pool += 10;
    }
    if b.iter().any(|c| !c.is_ascii_alphanumeric()) {
        pool += 33;
    }
    // Distinct characters bound what a key spans: "aaaa…" uses one, whatever its class.
    let distinct = {
        let mut seen = [false; 256];
        b.iter().for_each(|&c| seen[usize::from(c)] = true);
        seen.iter().filter(|s| **s).count() as u32
    };
    let per_char = f64::from(pool.min(distinct.max(1) * 4).max(1)).log2();
    b.len() as f64 * per_char
}

/// The shortest period (up to 8) the whole key repeats with, if it repeats one at least
/// three times ("abcabcabc", "zzzz").
fn repeating_period(key: &str) -> Option<usize> {
    let b = key.as_bytes();
    (1..=8)
        .filter(|p| b.len() >= p * 3)
        .find(|&p| b.iter().enumerate().all(|(i, c)| *c == b[i % p]))
}

/// Four or more characters ascending or descending by one ("abcd", "4321").
fn has_run(b: &[u8]) -> bool {
    b.windows(4).any(|w| {
        let up = w.windows(2).all(|p| p[1] == p[0].wrapping_add(1));
        let down = w.windows(2).all(|p| p[1] == p[0].wrapping_sub(1));
        (up || down) && w.iter().all(u8::is_ascii_alphanumeric)
    })
}

/// A new key: `phk_` and 32 random base62 characters (from the operating system's
/// generator), drawn again in the rare case the checks above would refuse it.
pub fn generate() -> String {
    let mut rng = rand::rngs::OsRng;
    loop {
        let key: String = std::iter::once("phk_".to_owned())
            .chain(
                (0..GENERATED_LEN)
                    .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]).to_string()),
            )
            .collect();
        if weakness(&key).is_none() {
            return key;
        }
    }
}

/// The SHA-256 of a key in hex, as `sha256 = "…"` takes it.
pub fn digest_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_accepted_and_differ() {
        let keys: Vec<String> = (0..200).map(|_| generate()).collect();
        for k in &keys {
            assert_eq!(weakness(k), None, "{k}");
            assert_eq!(k.len(), 4 + GENERATED_LEN);
            assert!(estimated_bits(k) >= 190.0, "{k}");
        }
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
    }

    #[test]
    fn short_repeated_sequential_and_wordy_keys_are_refused() {
        for (key, why) in [
            ("prod_key_4x9q", "bits"),
            ("Xk4pQ9zR2mW7", "bits"),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "pattern"),
            ("abcabcabcabcabcabcabcabcabcabcabcabcabcabcabc", "pattern"),
            ("Q7x!Q7x!Q7x!Q7x!Q7x!Q7x!Q7x!Q7x!Q7x!", "pattern"),
            ("Zr8Ku2Pw9Lm4Tq7Vn3Yb6Xc5Hj1wxyz", "run"),
            ("Zr8Ku2Pw9Lm4Tq7Vn3Yb6Xc5Hj1password", "common word"),
            ("MyPayhostKeyForProduction2026abc", "common word"),
            ("dev_payhost_admin_key", "common word"),
        ] {
            let w = weakness(key).unwrap_or_else(|| panic!("{key} accepted"));
            assert!(w.contains(why), "{key}: {w}");
        }
    }

    #[test]
    fn random_keys_of_22_base62_characters_or_more_are_accepted() {
        for key in [
            "Zr8Ku2Pw9Lm4Tq7Vn3Yb6X",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            // openssl rand -base64 32
            "q0Vn2pS3YXh1m9Ljx8T+u0bq4n1Y7Zc2o3Wf6Rk9aE8=",
            // openssl rand -hex 32
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ] {
            assert_eq!(weakness(key), None, "{key}");
        }
    }
}

/// One entry of `host.api_keys`: a plain key, or a table (`Debug` shows neither a key nor
/// a digest: both are [`Secret`]s).
#[derive(Debug, Clone)]
pub enum ApiKey {
    Plain(Secret),
    Table(ApiKeyTable),
}

/// `{ name, key | sha256, tenant, scopes }`: several may be valid at once (rotation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyTable {
    /// Named in logs and errors instead of the key.
    #[serde(default)]
    pub name: Option<String>,
    /// The key itself (use `${VAR}`), or...
    #[serde(default)]
    pub key: Option<Secret>,
    /// ...its SHA-256 in hex (`printf %s "$KEY" | sha256sum`), so the config holds no key.
    #[serde(default)]
    pub sha256: Option<Secret>,
    /// The only tenant the key acts for; its requests see only that tenant's records.
    #[serde(default)]
    pub tenant: Option<String>,
    /// `read` (GET) and/or `write` (POST, DELETE); both when not given.
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(ApiKey::Plain(Secret::new(s))),
            t @ toml::Value::Table(_) => ApiKeyTable::deserialize(t)
                .map(ApiKey::Table)
                .map_err(|e| D::Error::custom(format!("host.api_keys: {}", e.message()))),
            _ => Err(D::Error::custom(
                "host.api_keys: each key is a string, or a table { name, key or sha256, \
                 tenant, scopes }",
            )),
        }
    }
}

impl ApiKey {
    /// The SHA-256 of the key (hex digests are checked by [`validate`]; one that is not
    /// hex gives a digest nothing hashes to).
    pub fn digest(&self) -> [u8; 32] {
        use sha2::Digest;
        match self {
            ApiKey::Plain(k) | ApiKey::Table(ApiKeyTable { key: Some(k), .. }) => {
                sha2::Sha256::digest(k.expose().as_bytes()).into()
            }
            ApiKey::Table(t) => {
                let mut out = [0u8; 32];
                let hex = t.sha256.as_ref().map(Secret::expose).unwrap_or_default();
                match hex::decode_to_slice(hex, &mut out) {
                    Ok(()) => out,
                    Err(_) => [0xff; 32],
                }
            }
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        match self {
            ApiKey::Plain(_) => None,
            ApiKey::Table(t) => t.tenant.as_deref(),
        }
    }

    /// The scopes the key holds.
    pub fn scopes(&self) -> Vec<Scope> {
        match self {
            ApiKey::Table(ApiKeyTable {
                scopes: Some(s), ..
            }) => s.clone(),
            _ => vec![Scope::Read, Scope::Write],
        }
    }

    /// How logs, errors and the audit trail name the key: its name, else its place in
    /// `list` (`api_keys`, `admin_keys`).
    pub fn label(&self, list: &str, index: usize) -> String {
        match self {
            ApiKey::Table(ApiKeyTable { name: Some(n), .. }) => n.clone(),
            _ => format!("host.{list}[{index}]"),
        }
    }

    /// The key itself, when the config holds it (not only its digest).
    pub fn text(&self) -> Option<&str> {
        match self {
            ApiKey::Plain(k) | ApiKey::Table(ApiKeyTable { key: Some(k), .. }) => Some(k.expose()),
            ApiKey::Table(_) => None,
        }
    }
}
