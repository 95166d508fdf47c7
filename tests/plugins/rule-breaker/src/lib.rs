//! A test-only provider (payments and refunds, in memory) that keeps every conformance rule
//! but the one its `breaks` key names:
//!
//! - `repeat_ids`: ids from a counter that starts again with every instance (after a
//!   restart, the first payment gets the id an earlier one had);
//! - `refund_above_remaining`: refunds of any amount are accepted;
//! - `refusal_as_outage`: a refund above what remains is refused, but as
//!   `provider_unavailable` (an outage says nothing about the rule: it is no refusal);
//! - `unimplemented_capability`: `refunds` is declared, `create_refund` left at the kit's
//!   default (`unsupported_operation`);
//! - `refund_read_back_wrong`: `get_refund` answers another amount than the refund's;
//! - `nothing`: no rule broken.

use payhost_plugin_kit::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(serde::Deserialize, schemars::JsonSchema, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Nothing,
    RepeatIds,
    RefundAboveRemaining,
    RefusalAsOutage,
    UnimplementedCapability,
    RefundReadBackWrong,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The rule to break.
    pub breaks: Rule,
}

pub struct RuleBreaker {
    breaks: Rule,
    ids: IdGen,
    counter: AtomicU64,
    payments: Mutex<HashMap<String, Payment>>,
    refunds: Mutex<HashMap<String, Refund>>,
}

impl RuleBreaker {
    fn id(&self) -> String {
        match self.breaks {
            Rule::RepeatIds => format!("rb_{}", self.counter.fetch_add(1, Ordering::SeqCst) + 1),
            Rule::Nothing
            | Rule::RefundAboveRemaining
            | Rule::RefusalAsOutage
            | Rule::UnimplementedCapability
            | Rule::RefundReadBackWrong => self.ids.next("rb"),
        }
    }
}

impl Plugin for RuleBreaker {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new("rule_breaker", "0.0.1")
            .capabilities(&[capabilities::PAYMENTS, capabilities::REFUNDS])
            .fixtures(Fixtures {
                payment_method_succeeds: Some("ok".into()),
                config: [("breaks".into(), "nothing".into())].into(),
                ..Fixtures::default()
            })
    }

    fn new(config: Config, host: Host) -> Result<Self, PluginError> {
        Ok(Self {
            breaks: config.breaks,
            ids: IdGen::new(&host),
            counter: AtomicU64::new(0),
            payments: Mutex::default(),
            refunds: Mutex::default(),
        })
    }
}

impl Provider for RuleBreaker {
    fn create_payment(&self, _: &CallCtx, req: NewPayment) -> Result<Payment, PluginError> {
        let mut p = Payment::new(self.id(), req.amount, PaymentStatus::RequiresPaymentMethod);
        if req.payment_method.is_some() {
            (p.status, p.amount_received) = (PaymentStatus::Succeeded, p.amount.amount);
        }
        self.payments.lock().unwrap().insert(p.id.clone(), p.clone());
        Ok(p)
    }

    fn get_payment(&self, _: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        let all = self.payments.lock().unwrap();
        all.get(&req.id).cloned().ok_or_else(|| PluginError::not_found("payment", &req.id))
    }

    fn confirm_payment(&self, _: &CallCtx, req: ConfirmPayment) -> Result<Payment, PluginError> {
        Err(PluginError::conflict(format!("payment '{}' cannot be confirmed", req.id)))
    }

    fn cancel_payment(&self, _: &CallCtx, req: ObjectRef) -> Result<Payment, PluginError> {
        let mut all = self.payments.lock().unwrap();
        let p = all.get_mut(&req.id).ok_or_else(|| PluginError::not_found("payment", &req.id))?;
        if p.status == PaymentStatus::Succeeded {
            return Err(PluginError::conflict("succeeded"));
        }
        p.status = PaymentStatus::Canceled;
        Ok(p.clone())
    }

    fn create_refund(&self, _: &CallCtx, req: NewRefund) -> Result<Refund, PluginError> {
        if self.breaks == Rule::UnimplementedCapability {
            return Err(PluginError::unsupported("create_refund"));
        }
        let mut all = self.payments.lock().unwrap();
        let p = all
            .get_mut(&req.payment_id)
            .ok_or_else(|| PluginError::not_found("payment", &req.payment_id))?;
        let amount = req.amount.unwrap_or(p.refundable());
        let checked = self.breaks != Rule::RefundAboveRemaining;
        if checked && (amount <= 0 || amount > p.refundable()) {
            if self.breaks == Rule::RefusalAsOutage {
                return Err(PluginError::new(codes::UNAVAILABLE, "the provider is away"));
            }
            return Err(PluginError::invalid("amount", "above what remains"));
        }
        p.amount_refunded += amount;
        let r = Refund {
            id: self.id(),
            payment_id: p.id.clone(),
            amount: Money::new(amount, p.amount.currency.clone()),
            status: RefundStatus::Succeeded,
            reason: None,
            created: 0,
            metadata: req.metadata,
        };
        self.refunds.lock().unwrap().insert(r.id.clone(), r.clone());
        Ok(r)
    }

    fn get_refund(&self, _: &CallCtx, req: RefundRef) -> Result<Refund, PluginError> {
        let mut r = self.refunds.lock().unwrap().get(&req.id).cloned();
        let r = r.as_mut().ok_or_else(|| PluginError::not_found("refund", &req.id))?;
        if self.breaks == Rule::RefundReadBackWrong {
            r.amount.amount += 1;
        }
        Ok(r.clone())
    }
}

payhost_plugin_kit::export_plugin!(RuleBreaker);

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_plugin_kit::conformance::{in_process, run, Outcome};
    use serde_json::json;

    fn outcome(breaks: &str, check: &str) -> Outcome {
        let report = run(&in_process::<RuleBreaker>(Some(json!({ "breaks": breaks }))));
        report.outcome(check).cloned().unwrap_or_else(|| panic!("no check {check}:\n{report}"))
    }

    #[test]
    fn each_broken_rule_fails_its_check_and_only_then() {
        assert_eq!(outcome("nothing", "ids.never_repeat"), Outcome::Pass);
        assert!(matches!(outcome("repeat_ids", "ids.never_repeat"), Outcome::Fail(_)));
        assert_eq!(outcome("nothing", "refunds.refused_above_remaining"), Outcome::Pass);
        assert!(matches!(
            outcome("refund_above_remaining", "refunds.refused_above_remaining"),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            outcome("refusal_as_outage", "refunds.refused_above_remaining"),
            Outcome::Fail(why) if why.contains("provider_unavailable")
        ));
        assert_eq!(outcome("nothing", "capability.refunds.implemented"), Outcome::Pass);
        assert!(matches!(
            outcome("unimplemented_capability", "capability.refunds.implemented"),
            Outcome::Fail(why) if why.contains("create_refund")
        ));
        assert!(run(&in_process::<RuleBreaker>(None)).passed(), "keeping every rule passes");
    }
}
