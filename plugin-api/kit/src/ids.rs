//! Ids that never repeat, and a little randomness, without a dependency.
//!
//! The host keys its records on the ids a provider returns: an id that comes back for a
//! second object (a counter restarting with a new instance, a restart of the host) would
//! make the host refuse the new object. A real provider's ids never repeat; an in-memory
//! provider (a mock, a template) must make them the same way.

use crate::Host;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A random `u64` from the standard library's per-process hash keys and a counter.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random number in `[0, 1)`.
pub fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn base36(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.iter().rev().collect()
}

/// Makes ids `<prefix>_<tag><counter>`, unique across instances, restarts and processes:
/// the tag is the host clock's milliseconds and random bits, fixed per generator.
///
/// ```
/// use payhost_plugin_kit::{ids::IdGen, testing::FakeHost};
/// let host = FakeHost::new();
/// let (a, b) = (IdGen::new(&host.host()), IdGen::new(&host.host()));
/// assert_ne!(a.next("cus"), b.next("cus"), "two instances, same clock: still distinct");
/// assert!(a.next("pi").starts_with("pi_"));
/// ```
pub struct IdGen {
    tag: String,
    seq: AtomicU64,
}

impl IdGen {
    /// A generator for one instance.
    pub fn new(host: &Host) -> Self {
        let millis = u64::try_from(host.now_millis()).unwrap_or_default();
        let random = base36(random_u64());
        let tag = format!("{}{}", base36(millis), &random[..random.len().min(6)]);
        Self {
            tag,
            seq: AtomicU64::new(0),
        }
    }

    /// The next id with `prefix`.
    pub fn next(&self, prefix: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{prefix}_{}{n:06}", self.tag)
    }
}
