//! Routing: which provider instances may take a new record, in which order. The table is
//! `[tenants]` (one-instance routes) then `[[routing.rules]]` then the default route,
//! compiled once from the config; a decision is a pure function of the table, what the
//! request carries, and what each instance can do and how healthy it is now — no provider
//! is called to make it, so `explain` shows exactly what a request would get.
//!
//! Candidates are tried in order by the payment service: one that did nothing (unreachable,
//! circuit open, no free slot) hands over to the next; one whose outcome is unknown never
//! does (see `service::attempts`).

pub mod health;

pub use health::{Circuit, Health, InstanceHealth};

use crate::config::routing::{tenant_rules, Facts, RouteSpec};
use crate::config::Config;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What the router asks about an instance.
pub trait Instances {
    /// The first of `needs` its plugin does not declare (`None`: it declares them all);
    /// `Err` with the reason when it is not running.
    fn lacks(&self, instance: &str, needs: &[&str]) -> Result<Option<String>, String>;
    /// Its circuit now.
    fn circuit(&self, instance: &str) -> Circuit;
}

/// Why a candidate of the route is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Skip {
    /// The instance is configured but not running.
    NotRunning { detail: String },
    /// Its plugin does not declare a capability the request needs.
    Lacks { capability: String },
    /// Its circuit is open after its failures; probes go through from `until` (Unix ms).
    CircuitOpen { until: i64 },
}

impl Skip {
    pub fn describe(&self) -> String {
        match self {
            Skip::NotRunning { detail } => format!("not running: {detail}"),
            Skip::Lacks { capability } => format!("does not support {capability}"),
            Skip::CircuitOpen { until } => {
                format!(
                    "its circuit is open after repeated failures (probed again from {until} ms)"
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Skipped {
    pub instance: String,
    #[serde(flatten)]
    pub why: Skip,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// The rule that matched: its name, `tenants.<tenant>`, `default`, or `provider` (the
    /// request named its instance).
    pub rule: String,
    /// `priority`, `split` or `provider`.
    pub kind: &'static str,
    /// The instances to try, in order; the first that answers takes the request.
    pub candidates: Vec<String>,
    /// Instances of the route left out, and why.
    pub skipped: Vec<Skipped>,
    /// For a split: the bucket (0–99) the request's key falls in, and the weights.
    pub bucket: Option<u32>,
    pub weights: Option<BTreeMap<String, u32>>,
}

impl Decision {
    /// The first instance of the route, admissible or not: the one whose error a caller
    /// gets when no candidate is left.
    pub fn first(&self) -> Option<&str> {
        self.candidates
            .first()
            .or_else(|| self.skipped.first().map(|s| &s.instance))
            .map(String::as_str)
    }
}

/// One rule as the router keeps it.
#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    when: crate::config::When,
    route: RouteSpec,
}

/// The routing table, compiled from the config.
#[derive(Debug, Clone)]
pub struct Router {
    rules: Vec<Compiled>,
    default: Vec<String>,
    soft_declines: BTreeMap<String, Vec<String>>,
}

impl Router {
    pub fn new(c: &Config) -> Self {
        let rules = tenant_rules(c)
            .into_iter()
            .chain(c.routing.rules.iter().cloned())
            .map(|r| Compiled {
                route: r.spec(),
                name: r.name,
                when: r.when,
            })
            .collect();
        Self {
            rules,
            default: c.routing.default_route(c.host.default_provider.as_deref()),
            soft_declines: c
                .providers
                .iter()
                .map(|(name, p)| (name.clone(), p.soft_declines.clone()))
                .collect(),
        }
    }

    /// Whether `code` is a decline `instance`'s operator listed as soft: the payment may go
    /// on at the next instance.
    pub fn is_soft_decline(&self, instance: &str, code: &str) -> bool {
        self.soft_declines
            .get(instance)
            .is_some_and(|l| l.iter().any(|c| c == code))
    }

    /// The route for a request: the instance it names (`explicit`), else the first rule
    /// whose conditions hold, else the default; candidates in order, those that cannot
    /// take it now left out with the reason.
    ///
    /// `split_key` places the request in a volume split: its Idempotency-Key when it has
    /// one (a retry lands where the first try did), else something unique to it.
    pub fn decide(
        &self,
        facts: &Facts,
        needs: &[&str],
        split_key: &str,
        explicit: Option<&str>,
        instances: &dyn Instances,
    ) -> Decision {
        let tenant_rule = self
            .rules
            .iter()
            .take_while(|r| r.name.starts_with("tenants."))
            .find(|r| r.when.matches(facts));
        let (rule, spec) = match (tenant_rule, explicit) {
            // A tenant's own instance wins over the one a request names (as it always has).
            (Some(r), _) => (r.name.clone(), r.route.clone()),
            (None, Some(p)) => (
                "provider".to_owned(),
                RouteSpec::Priority(vec![p.to_owned()]),
            ),
            (None, None) => match self.rules.iter().find(|r| r.when.matches(facts)) {
                Some(r) => (r.name.clone(), r.route.clone()),
                None => (
                    "default".to_owned(),
                    RouteSpec::Priority(self.default.clone()),
                ),
            },
        };
        let kind = match (&spec, rule.as_str()) {
            (_, "provider") => "provider",
            (RouteSpec::Priority(_), _) => "priority",
            (RouteSpec::Split(_), _) => "split",
        };
        let (order, bucket, weights) = match spec {
            RouteSpec::Priority(list) => (list, None, None),
            RouteSpec::Split(weights) => {
                let bucket = bucket_of(split_key);
                (
                    split_order(&weights, bucket),
                    Some(bucket),
                    Some(weights.into_iter().collect()),
                )
            }
        };
        let mut candidates = Vec::new();
        let mut skipped = Vec::new();
        for instance in order {
            let why = match instances.lacks(&instance, needs) {
                Err(detail) => Some(Skip::NotRunning { detail }),
                Ok(Some(capability)) => Some(Skip::Lacks { capability }),
                Ok(None) => match instances.circuit(&instance) {
                    Circuit::Open { until } => Some(Skip::CircuitOpen { until }),
                    Circuit::Closed | Circuit::HalfOpen => None,
                },
            };
            match why {
                Some(why) => skipped.push(Skipped { instance, why }),
                None => candidates.push(instance),
            }
        }
        Decision {
            rule,
            kind,
            candidates,
            skipped,
            bucket,
            weights,
        }
    }
}

impl Router {
    /// A one-instance route that is not the router's to choose (a record bound to its
    /// instance): skipped only when it is not running or lacks what the request needs —
    /// with nowhere else to go, an open circuit does not stop the call.
    pub fn single(
        &self,
        rule: &str,
        instance: &str,
        needs: &[&str],
        instances: &dyn Instances,
    ) -> Decision {
        let why = match instances.lacks(instance, needs) {
            Err(detail) => Some(Skip::NotRunning { detail }),
            Ok(lacking) => lacking.map(|capability| Skip::Lacks { capability }),
        };
        let (candidates, skipped) = match why {
            None => (vec![instance.to_owned()], Vec::new()),
            Some(why) => (
                Vec::new(),
                vec![Skipped {
                    instance: instance.to_owned(),
                    why,
                }],
            ),
        };
        Decision {
            rule: rule.to_owned(),
            kind: "provider",
            candidates,
            skipped,
            bucket: None,
            weights: None,
        }
    }
}

/// A request's place in a volume split, 0–99, the same on every host and every release.
pub fn bucket_of(key: &str) -> u32 {
    let d = Sha256::digest(key.as_bytes());
    let n = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    u32::try_from(n % 100).unwrap_or(0)
}

/// The split's instances for `bucket`: the one whose share holds it, then the others by
/// weight (heaviest first) to take over when it cannot.
fn split_order(weights: &[(String, u32)], bucket: u32) -> Vec<String> {
    let mut edge = 0;
    let chosen = weights
        .iter()
        .find(|(_, w)| {
            edge += w;
            bucket < edge
        })
        .or(weights.last())
        .map(|(i, _)| i.clone());
    let mut rest: Vec<&(String, u32)> = weights
        .iter()
        .filter(|(i, _)| Some(i) != chosen.as_ref())
        .collect();
    rest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    chosen
        .into_iter()
        .chain(rest.into_iter().map(|(i, _)| i.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
