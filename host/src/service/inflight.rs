//! Idempotency keys whose first request is still being served on this host (SQLite: one
//! host, so its memory is the only place a second request with the key can meet the first;
//! on PostgreSQL the claim is a row all hosts share). A claim holds until its guard drops,
//! however the request ends.

use crate::locks::Locked;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The keys being served, per caller scope.
#[derive(Default)]
pub struct Inflight(Mutex<HashSet<(String, String)>>);

/// A claim on (scope, key), given up when dropped.
pub struct InflightGuard {
    set: Arc<Inflight>,
    key: (String, String),
}

impl Inflight {
    /// Claims (`scope`, `key`), or `None` while another request holds it.
    pub fn claim(self: &Arc<Self>, scope: &str, key: &str) -> Option<InflightGuard> {
        let slot = (scope.to_owned(), key.to_owned());
        self.0.locked().insert(slot.clone()).then(|| InflightGuard {
            set: self.clone(),
            key: slot,
        })
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.set.0.locked().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_until_its_guard_drops() {
        let set = Arc::new(Inflight::default());
        let first = set.claim("tenant", "k").expect("free");
        assert!(set.claim("tenant", "k").is_none(), "held");
        assert!(set.claim("other", "k").is_some(), "scopes apart");
        drop(first);
        assert!(set.claim("tenant", "k").is_some(), "given up");
    }
}
