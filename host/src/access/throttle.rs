//! Failed authentication, throttled per source address across the API, `/admin` and the
//! console: of the `host.auth_failures_allowed` wrong keys a source may send in [`WINDOW`]
//! (default [`SLOWED`]) the first half are answered at once, the rest ever more slowly, and
//! past them the source is refused (`429`, `Retry-After`) for
//! [`FIRST_BLOCK`], doubling with each refusal up to [`LONGEST_BLOCK`]. Only the source that
//! failed is slowed or refused: a correct key from any other address works at once, so
//! nobody can lock another out. IPv6 sources count per /64 (one host's share of addresses).
//!
//! The state is this host's, in memory: several hosts each throttle what reaches them.

use crate::locks::Locked;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures in a window after which the source is refused, by default.
pub const SLOWED: u32 = 10;
/// Failures in a window answered without delay, by default: the first half.
pub const FREE: u32 = SLOWED / 2;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(600);
/// The added wait per failure past [`FREE`].
const STEP: Duration = Duration::from_millis(250);
pub const FIRST_BLOCK: Duration = Duration::from_secs(30);
pub const LONGEST_BLOCK: Duration = Duration::from_secs(3600);
/// Sources remembered at most (the oldest quiet ones are forgotten first).
const MAX_SOURCES: usize = 100_000;

/// Where a key was refused (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Admin,
    Console,
}

impl Surface {
    pub const ALL: [Surface; 3] = [Surface::Api, Surface::Admin, Surface::Console];

    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Api => "api",
            Surface::Admin => "admin",
            Surface::Console => "console",
        }
    }
}

/// What a failure earns its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer `401` after this wait.
    Slowed(Duration),
    /// Refused from now for this long; `first` when this failure started the refusal (the
    /// one log line and audit row of a throttled source).
    Refused { retry_after: Duration, first: bool },
}

#[derive(Debug, Clone)]
struct Source {
    failures: u32,
    window_start: Instant,
    last: Instant,
    blocked_until: Option<Instant>,
    /// Refusals so far (each doubles the next one); forgotten with the source.
    blocks: u32,
}

pub struct Throttle {
    /// Failures answered at once, and after which the source is refused.
    free: u32,
    allowed: u32,
    sources: Mutex<HashMap<IpAddr, Source>>,
    /// Sources with a refusal that may still run: while none, [`Throttle::refused`] costs an
    /// atomic load, not a lock (every API request asks).
    blocked: AtomicUsize,
}

/// The address a source is counted under: IPv6 by /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(SLOWED)
    }
}

fn block_for(blocks: u32) -> Duration {
    FIRST_BLOCK
        .saturating_mul(1 << blocks.min(16))
        .min(LONGEST_BLOCK)
}

impl Throttle {
    /// A throttle refusing a source past `allowed` failures in a window (at least 2).
    pub fn new(allowed: u32) -> Self {
        let allowed = allowed.max(2);
        Self {
            free: allowed / 2,
            allowed,
            sources: Mutex::default(),
            blocked: AtomicUsize::new(0),
        }
    }

    /// How long `ip` is still refused, if it is.
    pub fn refused(&self, ip: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let ip = key(ip?);
        if self.blocked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut sources = self.sources.locked();
        let s = sources.get_mut(&ip)?;
        let until = s.blocked_until?;
        if until > now {
            return Some(until - now);
        }
        // Run out: back to the lock-free answer once no refusal runs. (The source's next
        // failure is still refused at once: its failures stay at the limit.)
        s.blocked_until = None;
        s.failures = self.allowed;
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        None
    }

    /// A wrong key from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>, now: Instant) -> Verdict {
        let Some(ip) = ip.map(key) else {
            return Verdict::Slowed(Duration::ZERO);
        };
        let mut sources = self.sources.locked();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            self.forget_quiet(&mut sources, now);
        }
        let s = sources.entry(ip).or_insert(Source {
            failures: 0,
            window_start: now,
            last: now,
            blocked_until: None,
            blocks: 0,
        });
        if now.duration_since(s.window_start) > WINDOW {
            s.failures = 0;
            s.window_start = now;
        }
        s.last = now;
        if let Some(until) = s.blocked_until {
            if until > now {
                return Verdict::Refused {
                    retry_after: until - now,
                    first: false,
                };
            }
            // The refusal ran out: the next failure is refused again, for longer.
            s.blocked_until = None;
            self.blocked.fetch_sub(1, Ordering::Relaxed);
            s.failures = self.allowed;
        }
        s.failures += 1;
        if s.failures <= self.free {
            return Verdict::Slowed(Duration::ZERO);
        }
        if s.failures <= self.allowed {
            // Up to 5 s: a large allowance slows down, it does not stall.
            let step = (s.failures - self.free).min(20);
            return Verdict::Slowed(STEP * step);
        }
        let retry_after = block_for(s.blocks);
        s.blocks += 1;
        s.blocked_until = Some(now + retry_after);
        self.blocked.fetch_add(1, Ordering::Relaxed);
        Verdict::Refused {
            retry_after,
            first: true,
        }
    }

    /// A right key from `ip`: its failures are forgiven (not its refusals' doubling).
    pub fn succeeded(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip.map(key) else { return };
        if let Some(s) = self.sources.locked().get_mut(&ip) {
            s.failures = 0;
        }
    }

    /// Forgets the sources quiet for a window and not refused; if that is not enough, the
    /// ones quiet longest.
    fn forget_quiet(&self, sources: &mut HashMap<IpAddr, Source>, now: Instant) {
        sources.retain(|_, s| {
            now.duration_since(s.last) <= WINDOW || s.blocked_until.is_some_and(|u| u > now)
        });
        if sources.len() >= MAX_SOURCES {
            let mut by_age: Vec<(Instant, IpAddr)> =
                sources.iter().map(|(ip, s)| (s.last, *ip)).collect();
            by_age.sort_unstable();
            for (_, ip) in by_age.iter().take(sources.len() / 10 + 1) {
                if let Some(s) = sources.remove(ip) {
                    if s.blocked_until.is_some() {
                        self.blocked.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let blocked = sources
            .values()
            .filter(|s| s.blocked_until.is_some())
            .count();
        self.blocked.store(blocked, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn failures_slow_down_then_refuse_one_source_only() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = ip("198.51.100.7");
        for _ in 0..FREE {
            assert_eq!(t.failed(a, now), Verdict::Slowed(Duration::ZERO));
        }
        let mut last = Duration::ZERO;
        for _ in FREE..SLOWED {
            let Verdict::Slowed(wait) = t.failed(a, now) else {
                panic!("refused too early")
            };
            assert!(wait > last, "each failure waits longer");
            last = wait;
        }
        assert_eq!(t.refused(a, now), None);
        assert_eq!(
            t.failed(a, now),
            Verdict::Refused {
                retry_after: FIRST_BLOCK,
                first: true
            }
        );
        assert_eq!(t.refused(a, now), Some(FIRST_BLOCK));
        assert!(matches!(
            t.failed(a, now),
            Verdict::Refused { first: false, .. }
        ));
        // Another address is not affected, nor its /64 neighbour's for IPv6 elsewhere.
        assert_eq!(t.refused(ip("198.51.100.8"), now), None);
        assert_eq!(
            t.failed(ip("198.51.100.8"), now),
            Verdict::Slowed(Duration::ZERO)
        );
        // Once the refusal runs out, the next failure is refused again, twice as long.
        let later = now + FIRST_BLOCK + Duration::from_secs(1);
        assert_eq!(t.refused(a, later), None);
        assert_eq!(
            t.failed(a, later),
            Verdict::Refused {
                retry_after: FIRST_BLOCK * 2,
                first: true
            }
        );
        // Growing up to the longest.
        let mut at = later;
        for _ in 0..20 {
            at += LONGEST_BLOCK + Duration::from_secs(1);
            t.failed(a, at);
        }
        assert_eq!(t.refused(a, at), Some(LONGEST_BLOCK));
    }

    #[test]
    fn ipv6_sources_count_per_64_and_a_success_forgives_failures() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..=SLOWED {
            t.failed(ip(&format!("2001:db8:1:2::{i:x}")), now);
        }
        assert!(t.refused(ip("2001:db8:1:2::ffff"), now).is_some());
        assert_eq!(t.refused(ip("2001:db8:1:3::1"), now), None);
        let b = ip("192.0.2.1");
        for _ in 0..SLOWED {
            t.failed(b, now);
        }
        t.succeeded(b);
        assert_eq!(t.failed(b, now), Verdict::Slowed(Duration::ZERO));
    }

    #[test]
    fn the_failure_window_passes_and_memory_stays_bounded() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = ip("203.0.113.1");
        for _ in 0..SLOWED {
            t.failed(a, now);
        }
        let later = now + WINDOW + Duration::from_secs(1);
        assert_eq!(t.failed(a, later), Verdict::Slowed(Duration::ZERO));
        for i in 0..(MAX_SOURCES as u32 + 10) {
            t.failed(Some(IpAddr::V4(i.into())), now);
        }
        assert!(t.sources.lock().unwrap().len() <= MAX_SOURCES);
    }
}
