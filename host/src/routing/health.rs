//! Health per provider instance, from the outcomes of real calls: a circuit breaker and
//! the last hour in minutes. Technical failures (unreachable, timeouts, server errors,
//! 429, panics, no free call slot) count against an instance; declines and refused input
//! do not. `failures` of them within `window_secs` open the circuit: routing skips the
//! instance for `cooldown_secs`, then lets `probes` calls through at once; a success
//! closes it (so does any call that works meanwhile: one for a record bound to the
//! instance, the resolver's), a failure opens it again. Each host keeps its own view (it is about what
//! this host can reach).

use crate::config::BreakerSection;
use crate::events::{Dispatcher, Event, LifecycleEvent};
use crate::locks::Locked;
use crate::plugins::CallError;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// An instance's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Circuit {
    Closed,
    /// Skipped until `until` (Unix ms).
    Open {
        until: i64,
    },
    /// Cooled down: probe calls go through.
    HalfOpen,
}

impl Circuit {
    /// 0 closed, 1 half-open, 2 open (the metric's value).
    pub fn level(self) -> i64 {
        match self {
            Circuit::Closed => 0,
            Circuit::HalfOpen => 1,
            Circuit::Open { .. } => 2,
        }
    }
}

/// One minute of an instance's calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Minute {
    /// Unix seconds of the minute's start.
    pub at: i64,
    pub calls: u32,
    /// Technical failures among them.
    pub failures: u32,
    /// Payments this instance handed to the next one of their route.
    pub failovers: u32,
}

/// What `GET /admin/routing` and the console show of an instance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstanceHealth {
    pub instance: String,
    pub circuit: Circuit,
    /// Technical failures within the window.
    pub recent_failures: u32,
    /// Calls within the window.
    pub recent_calls: u32,
    /// `recent_failures / recent_calls` (0 without calls).
    pub failure_rate: f64,
    /// The code of the last technical failure.
    pub last_error: Option<String>,
    /// Unix ms the circuit last opened.
    pub opened_at: Option<i64>,
    /// The last hour, oldest first (minutes without calls left out).
    pub minutes: Vec<Minute>,
}

/// The width of the window's slices.
const SLICE_MS: i64 = 100;

#[derive(Debug, Default)]
struct Breaker {
    /// The calls within the window, per 100 ms: (its start in Unix ms, calls, technical
    /// failures). Bounded by the window, whatever the rate of calls.
    recent: VecDeque<(i64, u32, u32)>,
    open_until: Option<i64>,
    opened_at: Option<i64>,
    half_open: bool,
    probes: u32,
    /// When the probes in flight were let through (a probe whose call never came back to
    /// be recorded frees its place after a cool-down).
    probes_since: i64,
    last_error: Option<String>,
    minutes: VecDeque<Minute>,
}

impl Breaker {
    fn minute(&mut self, now_ms: i64) -> &mut Minute {
        let at = now_ms.div_euclid(60_000) * 60;
        if self.minutes.back().is_none_or(|m| m.at != at) {
            self.minutes.push_back(Minute {
                at,
                ..Minute::default()
            });
        }
        while self.minutes.front().is_some_and(|m| m.at <= at - 3600) {
            self.minutes.pop_front();
        }
        self.minutes.back_mut().unwrap_or_else(|| unreachable!())
    }

    fn circuit(&self, now_ms: i64) -> Circuit {
        match self.open_until {
            Some(until) if now_ms < until => Circuit::Open { until },
            Some(_) => Circuit::HalfOpen,
            None if self.half_open => Circuit::HalfOpen,
            None => Circuit::Closed,
        }
    }
}

pub struct Health {
    policy: BreakerSection,
    dispatcher: Arc<Dispatcher>,
    /// One per configured instance, made at the start: a call to a name nobody configured
    /// (a flood of made-up ones) keeps nothing.
    breakers: Mutex<BTreeMap<String, Breaker>>,
}

impl Health {
    /// The health of the configured `instances`.
    pub fn new(
        policy: BreakerSection,
        dispatcher: Arc<Dispatcher>,
        instances: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            policy,
            dispatcher,
            breakers: Mutex::new(
                instances
                    .into_iter()
                    .map(|i| (i, Breaker::default()))
                    .collect(),
            ),
        }
    }

    fn breakers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Breaker>> {
        self.breakers.locked()
    }

    fn now_ms() -> i64 {
        use crate::clock::Clock;
        crate::clock::SystemClock.now_millis()
    }

    /// An instance's circuit now.
    pub fn circuit(&self, instance: &str) -> Circuit {
        self.breakers()
            .get(instance)
            .map_or(Circuit::Closed, |b| b.circuit(Self::now_ms()))
    }

    /// Whether a new payment may be sent to `instance` now: always with its circuit
    /// closed; while it is half-open, only as one of its `probes` calls at once.
    pub fn admit(&self, instance: &str) -> bool {
        self.admit_at(instance, Self::now_ms())
    }

    fn admit_at(&self, instance: &str, now: i64) -> bool {
        let mut all = self.breakers();
        let Some(b) = all.get_mut(instance) else {
            return true;
        };
        match b.circuit(now) {
            Circuit::Closed => true,
            Circuit::Open { .. } => false,
            Circuit::HalfOpen => {
                b.open_until = None;
                b.half_open = true;
                let cooldown = i64::try_from(self.policy.cooldown_secs.saturating_mul(1000))
                    .unwrap_or(i64::MAX);
                if b.probes > 0 && now - b.probes_since > cooldown {
                    b.probes = 0;
                }
                if b.probes < self.policy.probes {
                    if b.probes == 0 {
                        b.probes_since = now;
                    }
                    b.probes += 1;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// One call's outcome (every call to the instance, routed or not).
    pub fn record(&self, instance: &str, error: Option<&CallError>) {
        let failed = error.filter(|e| e.is_technical());
        self.record_at(instance, failed.map(CallError::code), Self::now_ms());
    }

    /// A payment `instance` handed over to the next instance of its route.
    pub fn failover(&self, instance: &str) {
        let now = Self::now_ms();
        if let Some(b) = self.breakers().get_mut(instance) {
            b.minute(now).failovers += 1;
        }
    }

    fn record_at(&self, instance: &str, failure: Option<&str>, now: i64) {
        let window =
            i64::try_from(self.policy.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let event = {
            let mut all = self.breakers();
            let Some(b) = all.get_mut(instance) else {
                return;
            };
            let minute = b.minute(now);
            minute.calls += 1;
            minute.failures += u32::from(failure.is_some());
            let slice = now - now.rem_euclid(SLICE_MS);
            match b.recent.back_mut() {
                Some(last) if last.0 == slice => {
                    last.1 += 1;
                    last.2 += u32::from(failure.is_some());
                }
                _ => b.recent.push_back((slice, 1, u32::from(failure.is_some()))),
            }
            while b.recent.front().is_some_and(|(t, _, _)| *t <= now - window) {
                b.recent.pop_front();
            }
            let was = b.circuit(now);
            b.probes = b.probes.saturating_sub(1);
            match failure {
                Some(code) => {
                    b.last_error = Some(code.to_owned());
                    let failures: u32 = b.recent.iter().map(|(_, _, f)| f).sum();
                    let reopen = matches!(was, Circuit::HalfOpen);
                    if reopen || (was == Circuit::Closed && failures >= self.policy.failures) {
                        let cooldown =
                            i64::try_from(self.policy.cooldown_secs.saturating_mul(1000))
                                .unwrap_or(i64::MAX);
                        b.open_until = Some(now.saturating_add(cooldown));
                        b.half_open = false;
                        b.probes = 0;
                        if was == Circuit::Closed {
                            b.opened_at = Some(now);
                        }
                        (was == Circuit::Closed).then(|| LifecycleEvent::InstanceUnhealthy {
                            name: instance.to_owned(),
                            failures,
                            window_secs: self.policy.window_secs,
                            error: code.to_owned(),
                        })
                    } else {
                        None
                    }
                }
                // A call that worked closes the circuit, whatever let it through (a probe,
                // a call for a record bound to the instance, the resolver).
                None if was != Circuit::Closed => {
                    b.half_open = false;
                    b.open_until = None;
                    b.probes = 0;
                    // A recovered instance starts with a clean window.
                    b.recent.clear();
                    let since = b.opened_at.take().unwrap_or(now);
                    Some(LifecycleEvent::InstanceRecovered {
                        name: instance.to_owned(),
                        unhealthy_secs: u64::try_from((now - since) / 1000).unwrap_or(0),
                    })
                }
                None => None,
            }
        };
        if let Some(e) = event {
            self.dispatcher.dispatch(Event::Lifecycle(e));
        }
    }

    /// Every instance's health, for `instances` (those configured) in that order.
    pub fn snapshot(&self, instances: &[String]) -> Vec<InstanceHealth> {
        let now = Self::now_ms();
        let window =
            i64::try_from(self.policy.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let all = self.breakers();
        instances
            .iter()
            .map(|name| {
                let b = all.get(name);
                let recent: Vec<&(i64, u32, u32)> = b
                    .map(|b| {
                        b.recent
                            .iter()
                            .filter(|(t, _, _)| *t > now - window)
                            .collect()
                    })
                    .unwrap_or_default();
                let calls: u32 = recent.iter().map(|(_, c, _)| c).sum();
                let failures: u32 = recent.iter().map(|(_, _, f)| f).sum();
                InstanceHealth {
                    instance: name.clone(),
                    circuit: b.map_or(Circuit::Closed, |b| b.circuit(now)),
                    recent_failures: failures,
                    recent_calls: calls,
                    failure_rate: if calls == 0 {
                        0.0
                    } else {
                        f64::from(failures) / f64::from(calls)
                    },
                    last_error: b.and_then(|b| b.last_error.clone()),
                    opened_at: b.and_then(|b| b.opened_at),
                    minutes: b
                        .map(|b| b.minutes.iter().copied().collect())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn health(failures: u32, probes: u32) -> (Health, Arc<Dispatcher>) {
        let d = Arc::new(Dispatcher::new(Arc::new(ManualClock::new(0))));
        let policy = BreakerSection {
            failures,
            window_secs: 10,
            cooldown_secs: 5,
            probes,
        };
        (Health::new(policy, d.clone(), ["a".to_owned()]), d)
    }

    fn events(d: &Dispatcher) -> Vec<String> {
        d.recent_lifecycle()
            .into_iter()
            .map(|s| match s.event {
                Event::Lifecycle(LifecycleEvent::InstanceUnhealthy { name, .. }) => {
                    format!("unhealthy {name}")
                }
                Event::Lifecycle(LifecycleEvent::InstanceRecovered { name, .. }) => {
                    format!("recovered {name}")
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn failures_open_the_circuit_a_probe_closes_it() {
        let (h, d) = health(3, 1);
        let t = 1_000_000;
        h.record_at("a", Some("provider_unavailable"), t);
        h.record_at("a", None, t + 1);
        h.record_at("a", Some("provider_unavailable"), t + 2);
        assert!(h.admit_at("a", t + 3), "two failures: still closed");
        h.record_at("a", Some("provider_timeout"), t + 4);
        assert!(!h.admit_at("a", t + 5), "three within the window: open");
        assert!(!h.admit_at("a", t + 5_003), "cooling down");
        assert!(h.admit_at("a", t + 5_005), "cooled down: one probe");
        assert!(!h.admit_at("a", t + 5_006), "one probe at a time");
        h.record_at("a", None, t + 5_100);
        assert!(
            h.admit_at("a", t + 5_101) && h.admit_at("a", t + 5_102),
            "closed"
        );
        assert_eq!(events(&d), ["unhealthy a", "recovered a"]);
    }

    #[test]
    fn a_name_nobody_configured_keeps_nothing() {
        let (h, _) = health(1, 1);
        for n in 0..1000 {
            h.record_at(&format!("made_up_{n}"), Some("x"), 1);
            h.failover(&format!("made_up_{n}"));
        }
        assert_eq!(h.breakers().len(), 1);
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_old_failures_age_out() {
        let (h, d) = health(2, 1);
        let t = 1_000_000;
        h.record_at("a", Some("x"), t);
        h.record_at("a", Some("x"), t + 20_000);
        assert!(
            h.admit_at("a", t + 20_001),
            "the first failure left the window"
        );
        h.record_at("a", Some("x"), t + 20_002);
        assert!(!h.admit_at("a", t + 20_003));
        assert!(h.admit_at("a", t + 25_010), "probe");
        h.record_at("a", Some("x"), t + 25_020);
        assert!(!h.admit_at("a", t + 25_030), "the probe failed: open again");
        assert_eq!(events(&d), ["unhealthy a"], "still the same outage");
        assert_eq!(
            h.circuit("b"),
            Circuit::Closed,
            "an instance never seen is closed"
        );
        // A call that works while the circuit is open (the resolver's, a bound record's)
        // closes it: the instance answers again.
        h.record_at("a", None, t + 25_040);
        assert_eq!(h.circuit("a"), Circuit::Closed);
        assert_eq!(events(&d), ["unhealthy a", "recovered a"]);
    }
}
