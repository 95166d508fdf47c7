//! Console sessions without server-side state, so any host of a cluster with the same
//! config accepts them: the cookie is `expires.nonce.mac`, the MAC an HMAC-SHA256 keyed by a
//! digest of the admin key that signed in (of its SHA-256, so a key the config holds only
//! as `sha256` signs sessions too). Rotating that admin key out of the config ends
//! its sessions; so does the expiry. The CSRF token of a session is an HMAC of its nonce
//! under the same key: forms carry it, cookies cannot.

use crate::access::keyring::AdminKey;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "payhost_console";
/// A session lasts 12 hours.
pub const LIFETIME_SECS: i64 = 12 * 3600;

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token this session's forms must carry.
    pub csrf: String,
    /// `console:<the admin key's name>`, as the audit trail names the operator.
    pub actor: String,
}

fn key_of(admin_digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"payhost console session v2\0");
    h.update(admin_digest);
    h.finalize().into()
}

fn mac(key: &[u8; 32], message: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(message.as_bytes());
    m.finalize().into_bytes().into()
}

/// A new session's cookie value for an operator who signed in with the admin key whose
/// SHA-256 is `admin_digest`.
pub fn issue(admin_digest: &[u8; 32], now_secs: i64) -> String {
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let signed = format!("{}.{}", now_secs + LIFETIME_SECS, hex::encode(nonce));
    let tag = mac(&key_of(admin_digest), &signed);
    format!("{signed}.{}", hex::encode(tag))
}

/// The session a cookie value proves, if it is unexpired and signed by one of `admin_keys`
/// (each is checked, so the time taken does not tell which).
pub fn verify(cookie: &str, admin_keys: &[AdminKey], now_secs: i64) -> Option<Session> {
    let (signed, tag) = cookie.rsplit_once('.')?;
    let (expires, nonce) = signed.split_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    if expires <= now_secs || nonce.len() != 32 {
        return None;
    }
    let tag = hex::decode(tag).ok()?;
    let mut found = None;
    for k in admin_keys {
        let key = key_of(&k.digest);
        if bool::from(mac(&key, signed).as_slice().ct_eq(&tag)) {
            found = Some((key, k));
        }
    }
    found.map(|(key, k)| Session {
        csrf: hex::encode(mac(&key, &format!("csrf.{nonce}"))),
        actor: format!("console:{}", k.label),
    })
}

/// Whether `given` is the session's CSRF token.
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(given.as_bytes()))
}

/// The value of the cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn admin(key: &str, label: &str) -> AdminKey {
        AdminKey {
            digest: Sha256::digest(key.as_bytes()).into(),
            label: label.into(),
        }
    }

    fn digest(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    #[test]
    fn a_session_holds_for_its_key_until_it_expires() {
        let keys = vec![admin("old-key", "old"), admin("admin-key", "ops")];
        let c = issue(&digest("admin-key"), NOW);
        let s = verify(&c, &keys, NOW + 60).expect("valid");
        assert_eq!(s.actor, "console:ops");
        assert!(csrf_ok(&s, &s.csrf));
        assert!(!csrf_ok(&s, ""));
        assert!(verify(&c, &keys, NOW + LIFETIME_SECS).is_none(), "expired");
        assert!(verify(&c, &keys[..1], NOW).is_none(), "its key rotated out");
        // Another session has another CSRF token.
        let other = verify(&issue(&digest("admin-key"), NOW), &keys, NOW).unwrap();
        assert_ne!(other.csrf, s.csrf);
    }

    #[test]
    fn forged_or_altered_cookies_are_refused() {
        let keys = vec![admin("admin-key", "ops")];
        let c = issue(&digest("admin-key"), NOW);
        let (expires, rest) = c.split_once('.').unwrap();
        let later = format!("{}.{rest}", expires.parse::<i64>().unwrap() + 1);
        assert!(verify(&later, &keys, NOW).is_none(), "expiry moved");
        assert!(
            verify(&issue(&digest("guess"), NOW), &keys, NOW).is_none(),
            "other key"
        );
        for junk in ["", ".", "..", "1.2.3", &format!("{c}x"), "9999999999.a.b"] {
            assert!(verify(junk, &keys, NOW).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn cookies() {
        assert_eq!(
            cookie("a=1; payhost_console=x.y.z; b=2", COOKIE),
            Some("x.y.z")
        );
        assert_eq!(cookie("payhost_consoles=1", COOKIE), None);
    }
}
