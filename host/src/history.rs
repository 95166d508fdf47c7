//! The last hour of this host, minute by minute, for the console's charts: provider call
//! latency per instance (log-scale buckets, so p50 and p99 within ~10%), failed provider
//! calls, and the webhook backlog sampled every few seconds. Fixed memory: 60 minutes of
//! buckets per instance.

use crate::locks::Locked;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Minutes kept.
pub const MINUTES: usize = 60;
/// Buckets per doubling of the latency: bucket `i` holds `[2^(i/4), 2^((i+1)/4))` µs.
const PER_DOUBLING: f64 = 4.0;
/// 2^(112/4) µs is 268 s: longer calls land in the last bucket.
const BUCKETS: usize = 112;

/// Latencies of one instance in one minute.
#[derive(Clone)]
struct Latencies {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
}

impl Latencies {
    fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }

    fn add(&mut self, took: Duration) {
        let micros = took.as_micros().max(1) as f64;
        let i = ((micros.log2() * PER_DOUBLING) as usize).min(BUCKETS - 1);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
    }

    /// The `q` quantile in milliseconds: the geometric middle of its bucket.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let micros = 2f64.powf((i as f64 + 0.5) / PER_DOUBLING);
                return Some(micros / 1000.0);
            }
        }
        None
    }
}

#[derive(Clone)]
struct Minute {
    /// Unix minute (seconds / 60).
    at: i64,
    calls: BTreeMap<String, Latencies>,
    failures: u64,
    /// The largest backlog sampled in this minute.
    backlog: Option<i64>,
}

impl Minute {
    fn new(at: i64) -> Self {
        Self {
            at,
            calls: BTreeMap::new(),
            failures: 0,
            backlog: None,
        }
    }
}

/// The last hour of this host (shared by the call observer, the sampler and the pages).
#[derive(Default)]
pub struct History {
    minutes: Mutex<VecDeque<Minute>>,
}

/// One series over the last hour, oldest minute first (`None`: nothing that minute).
pub type Series = Vec<Option<f64>>;

/// What the charts draw, each series `MINUTES` long and ending at the current minute.
pub struct Snapshot {
    pub failures: Series,
    pub backlog: Series,
    /// Per instance: (p50, p99) in milliseconds.
    pub latency: BTreeMap<String, (Series, Series)>,
}

impl History {
    fn with_minute(&self, now_secs: i64, f: impl FnOnce(&mut Minute)) {
        let at = now_secs.div_euclid(60);
        let mut minutes = self.minutes.locked();
        if minutes.back().is_none_or(|m| m.at < at) {
            minutes.push_back(Minute::new(at));
        }
        while minutes.front().is_some_and(|m| m.at <= at - MINUTES as i64) {
            minutes.pop_front();
        }
        // A clock that stepped back lands in the newest minute.
        if let Some(m) = minutes.back_mut() {
            f(m);
        }
    }

    /// A provider call finished.
    pub fn call(&self, now_secs: i64, instance: &str, took: Duration, failed: bool) {
        self.with_minute(now_secs, |m| {
            match m.calls.get_mut(instance) {
                Some(l) => l.add(took),
                None => {
                    let mut l = Latencies::new();
                    l.add(took);
                    m.calls.insert(instance.to_owned(), l);
                }
            }
            if failed {
                m.failures += 1;
            }
        });
    }

    /// The webhook backlog now (pending inbox rows).
    pub fn backlog(&self, now_secs: i64, pending: i64) {
        self.with_minute(now_secs, |m| {
            m.backlog = Some(m.backlog.map_or(pending, |b| b.max(pending)));
        });
    }

    pub fn snapshot(&self, now_secs: i64) -> Snapshot {
        let now = now_secs.div_euclid(60);
        let minutes = self.minutes.locked().clone();
        let slot = |at: i64| -> Option<usize> {
            let back = now - at;
            (0..MINUTES as i64)
                .contains(&back)
                .then(|| MINUTES - 1 - back as usize)
        };
        let mut failures = vec![Some(0.0); MINUTES];
        let mut backlog = vec![None; MINUTES];
        let mut latency: BTreeMap<String, (Series, Series)> = BTreeMap::new();
        for m in &minutes {
            let Some(i) = slot(m.at) else { continue };
            failures[i] = Some(m.failures as f64);
            backlog[i] = m.backlog.map(|b| b as f64);
            for (instance, l) in &m.calls {
                let (p50, p99) = latency
                    .entry(instance.clone())
                    .or_insert_with(|| (vec![None; MINUTES], vec![None; MINUTES]));
                p50[i] = l.quantile_ms(0.50);
                p99[i] = l.quantile_ms(0.99);
            }
        }
        Snapshot {
            failures,
            backlog,
            latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_bucket_width() {
        let mut l = Latencies::new();
        for ms in 1..=100u64 {
            l.add(Duration::from_millis(ms));
        }
        let p50 = l.quantile_ms(0.5).unwrap();
        let p99 = l.quantile_ms(0.99).unwrap();
        assert!((45.0..=56.0).contains(&p50), "p50 {p50}");
        assert!((89.0..=110.0).contains(&p99), "p99 {p99}");
        assert_eq!(Latencies::new().quantile_ms(0.5), None);
    }

    #[test]
    fn keeps_the_last_hour_only_and_places_minutes_by_age() {
        let h = History::default();
        let t0 = 1_000_000 * 60;
        h.call(t0, "mock", Duration::from_millis(3), true);
        h.backlog(t0, 7);
        h.backlog(t0 + 5, 4);
        h.call(t0 + 120, "mock", Duration::from_millis(3), false);
        let s = h.snapshot(t0 + 120);
        assert_eq!(s.failures[MINUTES - 1], Some(0.0));
        assert_eq!(s.failures[MINUTES - 3], Some(1.0));
        assert_eq!(
            s.backlog[MINUTES - 3],
            Some(7.0),
            "the minute's largest sample"
        );
        assert_eq!(s.backlog[MINUTES - 2], None);
        // An hour later the first minute is gone.
        h.call(t0 + 3600, "mock", Duration::from_millis(3), false);
        let s = h.snapshot(t0 + 3600);
        assert!(s.failures.iter().all(|f| *f == Some(0.0)));
        assert_eq!(h.minutes.lock().unwrap().len(), 2);
    }
}
