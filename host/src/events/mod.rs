//! The in-process event dispatcher and the events it carries: plugin lifecycle events and
//! the domain events providers report. Subscribers register handlers; a panicking handler
//! is logged and skipped, never fatal.

mod lifecycle;

pub use lifecycle::{ErrorType, LifecycleEvent, StopReason};

use crate::locks::{Locked, ReadWriteLocked};
use payhost_plugin_api::DomainEventReport;
use serde::Serialize;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, RwLock};

/// A fact reported by a provider instance (from an operation, a webhook or `emit`).
#[derive(Debug, Clone, Serialize)]
pub struct DomainEvent {
    /// The persisted event's id (`evt_...`); `None` for a report not (yet) recorded.
    pub id: Option<String>,
    pub tenant: Option<String>,
    /// The provider instance that reported it.
    pub provider: String,
    pub kind: String,
    pub object_id: String,
    pub customer_id: Option<String>,
    pub payment_id: Option<String>,
    pub subscription_id: Option<String>,
    pub invoice_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub plan_id: Option<String>,
    pub previous_plan_id: Option<String>,
    pub cancel_at_period_end: bool,
    pub error: Option<String>,
    pub occurred_at: i64,
}

impl DomainEvent {
    pub fn from_report(provider: &str, r: &DomainEventReport) -> Self {
        Self {
            id: None,
            tenant: None,
            provider: provider.to_owned(),
            kind: r.kind.as_str().to_owned(),
            object_id: r.object_id.clone(),
            customer_id: r.customer_id.clone(),
            payment_id: r.payment_id.clone(),
            subscription_id: r.subscription_id.clone(),
            invoice_id: r.invoice_id.clone(),
            amount: r.amount.as_ref().map(|m| m.amount),
            currency: r.amount.as_ref().map(|m| m.currency.to_string()),
            status: r.status.clone(),
            plan_id: r.plan_id.clone(),
            previous_plan_id: r.previous_plan_id.clone(),
            cancel_at_period_end: r.cancel_at_period_end,
            error: r.error.clone(),
            occurred_at: r.occurred_at,
        }
    }
}

/// Everything that flows through the dispatcher.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "category", rename_all = "snake_case")]
pub enum Event {
    Lifecycle(LifecycleEvent),
    Domain(Box<DomainEvent>),
}

/// An event with its sequence number and time.
#[derive(Debug, Clone, Serialize)]
pub struct Stamped {
    pub seq: u64,
    pub at_millis: i64,
    #[serde(flatten)]
    pub event: Event,
}

type Handler = Arc<dyn Fn(&Stamped) + Send + Sync>;

const RECENT: usize = 256;

/// Delivers events to subscribers, in order, and keeps the most recent ones: the last
/// [`RECENT`] events, and apart from them the last [`RECENT`] lifecycle events (a flood of
/// payments never pushes a plugin's or an instance's story out of the operator's view).
pub struct Dispatcher {
    clock: Arc<dyn crate::clock::Clock>,
    handlers: RwLock<Vec<Handler>>,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    seq: u64,
    all: VecDeque<Stamped>,
    lifecycle: VecDeque<Stamped>,
}

fn keep(ring: &mut VecDeque<Stamped>, s: &Stamped) {
    if ring.len() == RECENT {
        ring.pop_front();
    }
    ring.push_back(s.clone());
}

impl Dispatcher {
    pub fn new(clock: Arc<dyn crate::clock::Clock>) -> Self {
        Self {
            clock,
            handlers: RwLock::default(),
            recent: Mutex::default(),
        }
    }

    /// Registers a handler for every event dispatched from now on.
    pub fn subscribe(&self, handler: impl Fn(&Stamped) + Send + Sync + 'static) {
        self.handlers.write_locked().push(Arc::new(handler));
    }

    pub fn dispatch(&self, event: Event) {
        match &event {
            Event::Lifecycle(e) => e.log(),
            Event::Domain(e) => tracing::info!(
                provider = %e.provider, kind = %e.kind, object_id = %e.object_id,
                "domain event reported"
            ),
        }
        let stamped = {
            let mut recent = self.recent.locked();
            recent.seq += 1;
            let s = Stamped {
                seq: recent.seq,
                at_millis: self.clock.now_millis(),
                event,
            };
            keep(&mut recent.all, &s);
            if matches!(s.event, Event::Lifecycle(_)) {
                keep(&mut recent.lifecycle, &s);
            }
            s
        };
        let handlers = self.handlers.read_locked().clone();
        for h in handlers {
            if catch_unwind(AssertUnwindSafe(|| h(&stamped))).is_err() {
                tracing::error!(seq = stamped.seq, "an event handler panicked; skipped");
            }
        }
    }

    /// The most recent events, oldest first.
    pub fn recent(&self) -> Vec<Stamped> {
        self.recent.locked().all.iter().cloned().collect()
    }

    /// The most recent lifecycle events, oldest first.
    pub fn recent_lifecycle(&self) -> Vec<Stamped> {
        self.recent.locked().lifecycle.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn delivers_in_order_and_survives_a_panicking_handler() {
        let d = Dispatcher::new(Arc::new(ManualClock::new(5)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        d.subscribe(|_| panic!("handler bug"));
        let s = seen.clone();
        d.subscribe(move |e| s.lock().unwrap().push(e.seq));
        for reason in [StopReason::Shutdown, StopReason::Removed] {
            d.dispatch(Event::Lifecycle(LifecycleEvent::PluginStopped {
                name: "mock".into(),
                plugin_type: "payment".into(),
                reason,
            }));
        }
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
        assert_eq!(d.recent_lifecycle().len(), 2);
        assert_eq!(d.recent()[0].at_millis, 5);
    }

    #[test]
    fn a_flood_of_domain_events_keeps_the_lifecycle_in_view() {
        let d = Dispatcher::new(Arc::new(ManualClock::new(0)));
        d.dispatch(Event::Lifecycle(LifecycleEvent::PluginStopped {
            name: "mock".into(),
            plugin_type: "payment".into(),
            reason: StopReason::Removed,
        }));
        for i in 0..(RECENT * 2) {
            let r = payhost_plugin_api::DomainEventReport::new(
                payhost_plugin_api::DomainEventKind::PaymentCreated,
                &format!("p{i}"),
                0,
            );
            d.dispatch(Event::Domain(Box::new(DomainEvent::from_report(
                "mock", &r,
            ))));
        }
        assert_eq!(d.recent_lifecycle().len(), 1);
        assert!(d
            .recent()
            .iter()
            .all(|s| matches!(s.event, Event::Domain(_))));
    }

    #[test]
    fn keeps_only_the_most_recent_events() {
        let d = Dispatcher::new(Arc::new(ManualClock::new(0)));
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        d.subscribe(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        for _ in 0..(RECENT + 10) {
            d.dispatch(Event::Lifecycle(LifecycleEvent::PluginStopped {
                name: "x".into(),
                plugin_type: "payment".into(),
                reason: StopReason::Error,
            }));
        }
        assert_eq!(count.load(Ordering::SeqCst), RECENT + 10);
        let recent = d.recent();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].seq, 11);
    }
}
