//! Where a new record goes: the router's decision for a request, and the loop that tries
//! its candidates in turn for records whose creation moves no money (customers) or whose
//! unknown outcome is answered as an error (subscriptions). Payments go through
//! `attempts`, which records each call first.

use super::{Ctx, PaymentService, ServiceError};
use crate::config::routing::Facts;
use crate::plugins::{CallError, Registry};
use crate::routing::{Circuit, Decision, Health, Instances, Skip};

/// The registry and this host's health view, as the router asks about instances.
pub(super) struct Live<'a> {
    pub registry: &'a Registry,
    pub health: &'a Health,
}

impl Instances for Live<'_> {
    fn lacks(&self, instance: &str, needs: &[&str]) -> Result<Option<String>, String> {
        match self.registry.get(instance) {
            Ok(i) => Ok(needs
                .iter()
                .find(|n| !i.supports(n))
                .map(|n| (*n).to_owned())),
            Err(e) => Err(e.to_string()),
        }
    }

    fn circuit(&self, instance: &str) -> Circuit {
        self.health.circuit(instance)
    }
}

/// Why one candidate did not take a request, for the answer when none did.
pub(super) struct Miss {
    pub instance: String,
    pub error: ServiceError,
}

impl PaymentService {
    /// The route for a new record of the caller's: `explicit` (an instance the request
    /// names) is refused when it is not configured; `split_key` places it in a split.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for an unknown `explicit` instance.
    pub(super) fn decide(
        &self,
        ctx: &Ctx,
        mut facts: Facts,
        needs: &[&str],
        explicit: Option<&str>,
        split_key: &str,
    ) -> Result<Decision, ServiceError> {
        if let Some(p) = explicit {
            self.check_provider(p)?;
        }
        facts.tenant = ctx.tenant.clone();
        let live = Live {
            registry: &self.registry,
            health: &self.health,
        };
        Ok(self
            .router
            .decide(&facts, needs, split_key, explicit, &live))
    }

    /// The answer for a route none of whose instances could be tried: the reason of the
    /// first one, as the API has always answered for a lone instance.
    pub(super) fn unroutable(&self, d: &Decision) -> ServiceError {
        let Some(first) = d.skipped.first() else {
            return ServiceError::invalid(
                "provider",
                "no provider given and no default provider is configured",
            );
        };
        let instance = first.instance.clone();
        match &first.why {
            Skip::Lacks { capability } if capability == "manual_capture" => ServiceError::invalid(
                "capture_method",
                format!("provider '{instance}' does not support manual capture"),
            ),
            Skip::Lacks { capability } => ServiceError::Call(CallError::Unsupported {
                provider: instance,
                capability: capability.clone(),
            }),
            Skip::NotRunning { .. } => match self.registry.get(&instance) {
                Err(e) => ServiceError::Call(e),
                Ok(_) => ServiceError::NoInstance(format!("provider '{instance}' is not running")),
            },
            Skip::CircuitOpen { .. } => ServiceError::NoInstance(format!(
                "no provider instance can take this request now: {}",
                d.skipped
                    .iter()
                    .map(|s| format!("'{}' {}", s.instance, s.why.describe()))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }

    /// The answer when every candidate was tried and none took the request: a lone
    /// instance's own error, else one naming each.
    pub(super) fn exhausted(mut misses: Vec<Miss>) -> ServiceError {
        if misses.len() == 1 {
            return misses.remove(0).error;
        }
        ServiceError::NoInstance(format!(
            "no provider instance could take this request, and none did anything: {}",
            misses
                .iter()
                .map(|m| format!("'{}': {}", m.instance, m.error))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

/// A route's candidates, tried in turn until one takes the request: a candidate that did
/// nothing (unreachable, not running, circuit open, no free slot) hands over to the next;
/// any other outcome is the answer.
///
/// ```ignore
/// let mut tries = self.tries(&decision)?;
/// while let Some((instance, ctx)) = tries.next(ctx) {
///     let outcome = make(&instance, &ctx).await;
///     if let Some(v) = tries.outcome(&instance, outcome)? { return Ok(v) }
/// }
/// Err(tries.exhausted())
/// ```
pub(super) struct Tries<'a> {
    service: &'a PaymentService,
    decision: &'a Decision,
    next: usize,
    misses: Vec<Miss>,
    /// The step moves money: a candidate whose outcome is unknown is never followed.
    moves_money: bool,
}

impl PaymentService {
    /// The candidates of `d` to try.
    ///
    /// # Errors
    /// None can be tried: the reason of the first.
    pub(super) fn tries<'a>(&'a self, d: &'a Decision) -> Result<Tries<'a>, ServiceError> {
        if d.candidates.is_empty() {
            return Err(self.unroutable(d));
        }
        Ok(Tries {
            service: self,
            decision: d,
            next: 0,
            misses: Vec::new(),
            moves_money: true,
        })
    }

    /// [`PaymentService::tries`] for a step that moves no money (a customer): any failure
    /// of the instance's own hands over to the next, whatever it did.
    pub(super) fn tries_moving_no_money<'a>(
        &'a self,
        d: &'a Decision,
    ) -> Result<Tries<'a>, ServiceError> {
        let mut tries = self.tries(d)?;
        tries.moves_money = false;
        Ok(tries)
    }
}

impl Tries<'_> {
    /// The next candidate whose circuit lets a call through, with the context to call it
    /// in (it says whether another candidate follows).
    pub fn next(&mut self, ctx: &Ctx) -> Option<(String, Ctx)> {
        let all = &self.decision.candidates;
        while let Some(instance) = all.get(self.next) {
            self.next += 1;
            if self.service.health.admit(instance) {
                let here = Ctx {
                    fail_over: self.next < all.len(),
                    ..ctx.clone()
                };
                return Some((instance.clone(), here));
            }
            self.misses.push(Miss {
                instance: instance.clone(),
                error: ServiceError::NoInstance(format!(
                    "provider '{instance}' is skipped: its circuit is open"
                )),
            });
        }
        None
    }

    /// A candidate's outcome: `Some` is the answer, `None` goes on to the next.
    ///
    /// # Errors
    /// The candidate's error, unless it did nothing and another may take the request.
    pub fn outcome<T>(
        &mut self,
        instance: &str,
        outcome: Result<T, ServiceError>,
    ) -> Result<Option<T>, ServiceError> {
        match outcome {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.can_fail_over() || (!self.moves_money && e.is_instance_fault()) => {
                if self.next < self.decision.candidates.len() {
                    self.service.health.failover(instance);
                }
                self.misses.push(Miss {
                    instance: instance.to_owned(),
                    error: e,
                });
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The answer when no candidate took the request.
    pub fn exhausted(self) -> ServiceError {
        PaymentService::exhausted(self.misses)
    }
}

impl ServiceError {
    /// The instance did nothing, through no fault of the request: the next one may take it.
    pub(super) fn can_fail_over(&self) -> bool {
        matches!(self, ServiceError::Call(e) if e.can_fail_over())
    }

    /// The instance's fault, whatever it did: for a step that moves no money (creating a
    /// customer), reason enough to go on at the next instance.
    pub(super) fn is_instance_fault(&self) -> bool {
        matches!(self, ServiceError::Call(e) if e.can_fail_over() || e.is_technical())
    }
}

/// One rule of the routing table, as operators read it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RuleView {
    pub name: String,
    /// Its conditions (empty: every request).
    #[schema(value_type = Object)]
    pub when: crate::config::When,
    /// Instances in priority order, for a priority route.
    pub route: Option<Vec<String>>,
    /// Instance → weight, for a volume split.
    pub split: Option<std::collections::BTreeMap<String, u32>>,
}

/// A payment whose outcome is not known yet.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InDoubtView {
    pub payment: String,
    #[serde(flatten)]
    pub attempt: crate::api::views::AttemptView,
}

/// The routing table, each instance's health on this host, and the payments in doubt.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RoutingView {
    /// The route of a request no rule matches.
    pub default: Vec<String>,
    /// `[tenants]` first (one-instance routes), then `[[routing.rules]]`, in order.
    pub rules: Vec<RuleView>,
    pub breaker: crate::config::BreakerSection,
    pub instances: Vec<crate::routing::InstanceHealth>,
    /// Oldest first (up to 100).
    pub in_doubt: Vec<InDoubtView>,
}

impl PaymentService {
    /// The routing table, the instances' health and the payments in doubt.
    ///
    /// # Errors
    /// A database failure.
    pub async fn routing_view(&self) -> Result<RoutingView, ServiceError> {
        let c = &self.config.config;
        let rules = crate::config::routing::tenant_rules(c)
            .into_iter()
            .chain(c.routing.rules.iter().cloned())
            .map(|r| RuleView {
                name: r.name,
                when: r.when,
                route: r.route,
                split: r.split,
            })
            .collect();
        let names: Vec<String> = c.providers.keys().cloned().collect();
        let in_doubt = self
            .store
            .open_attempts(100)
            .await?
            .iter()
            .map(|a| InDoubtView {
                payment: a.payment_id.clone(),
                attempt: crate::api::views::AttemptView::from(a),
            })
            .collect();
        Ok(RoutingView {
            default: c.routing.default_route(c.host.default_provider.as_deref()),
            rules,
            breaker: c.routing.breaker.clone(),
            instances: self.health.snapshot(&names),
            in_doubt,
        })
    }

    /// Where a payment request would go, and why each other instance would not take it —
    /// without calling any provider. `key` stands for its Idempotency-Key in a split.
    ///
    /// # Errors
    /// The request names an unknown customer, method or instance.
    pub async fn explain(
        &self,
        ctx: &Ctx,
        req: crate::api::requests::CreatePayment,
        key: &str,
    ) -> Result<Decision, ServiceError> {
        let user = req.user_id.map(|user_id| super::customers::NewUser {
            user_id,
            email: req.email,
            name: req.name,
            metadata: Default::default(),
        });
        let (who, pm) = self
            .who_pays(
                ctx,
                req.customer.map(|c| c.into_string()),
                user,
                req.provider.map(|p| p.into_string()),
                req.payment_method.as_ref().map(|p| p.as_str()),
            )
            .await?;
        let charge = super::payments::Charge {
            amount: payhost_plugin_api::Money::new(
                req.amount.get(),
                req.currency.currency().clone(),
            ),
            capture_method: req.capture_method,
            payment_method: pm,
            return_url: req.return_url,
            cancel_url: req.cancel_url,
            description: req.description,
            metadata: req.metadata,
        };
        self.payment_route(ctx, &who, &charge, key)
    }
}
