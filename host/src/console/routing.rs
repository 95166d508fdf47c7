//! The console's Routing page: the routing table in the order it is evaluated, each
//! provider instance's circuit and its last hour (calls, technical failures, payments it
//! handed to the next instance), and the payments whose outcome is not known yet.

use super::chart::{self, Line};
use super::pages::{failed, series_of, state_badge, when};
use super::{Page, View};
use crate::app::AppState;
use crate::http::ApiError;
use crate::routing::Circuit;
use axum::extract::State;
use maud::{html, Markup};

fn circuit(c: Circuit) -> Markup {
    match c {
        Circuit::Closed => state_badge("closed"),
        Circuit::HalfOpen => state_badge("half_open"),
        Circuit::Open { .. } => state_badge("open"),
    }
}

fn route_of(r: &crate::service::RuleView) -> String {
    match (&r.route, &r.split) {
        (_, Some(split)) => split
            .iter()
            .map(|(i, w)| format!("{i} {w}%"))
            .collect::<Vec<_>>()
            .join(", "),
        (Some(route), None) => route.join(" → "),
        (None, None) => String::new(),
    }
}

pub async fn routing(State(s): State<AppState>, v: View) -> Page {
    const TITLE: &str = "Routing";
    let view = match s.service.routing_view().await {
        Ok(view) => view,
        Err(e) => return failed(&v, TITLE, "routing", ApiError::from(e)),
    };
    let now = s.clock.now_secs();
    let body = html! {
        h2 { "Rules, in the order they are evaluated" }
        table #routing-rules {
            thead { tr { th { "Rule" } th { "When" } th { "Route" } } }
            tbody {
                @for r in &view.rules {
                    tr { td { code { (r.name) } } td { code { (serde_json::to_string(&r.when).unwrap_or_default()) } }
                         td { (route_of(r)) } }
                }
                tr #routing-default { td { code { "default" } } td { "no rule matched" } td { (view.default.join(" → ")) } }
            }
        }
        p.hint { "A circuit opens after " (view.breaker.failures) " technical failures within "
            (view.breaker.window_secs) " s and skips its instance for " (view.breaker.cooldown_secs)
            " s; then " (view.breaker.probes) " probe call(s) at a time; a call that works closes it." }
        h2 { "Instances (this host's view)" }
        table #routing-instances {
            thead { tr { th { "Instance" } th { "Circuit" } th { "Failures / calls in the window" } th { "Last error" } th { "Opened" } } }
            tbody {
                @for h in &view.instances {
                    tr id=(format!("instance-{}", h.instance)) {
                        td { (h.instance) } td { (circuit(h.circuit)) }
                        td.num { (h.recent_failures) " / " (h.recent_calls) }
                        td { (h.last_error.as_deref().unwrap_or("—")) }
                        td { @match h.opened_at { Some(ms) => (when(ms / 1000)), None => "—" } }
                    }
                }
            }
        }
        section.charts {
            @for h in &view.instances {
                @let calls = series_of(now, h.minutes.iter().map(|m| (m.at / 60, f64::from(m.calls))));
                @let failures = series_of(now, h.minutes.iter().map(|m| (m.at / 60, f64::from(m.failures))));
                @let failovers = series_of(now, h.minutes.iter().map(|m| (m.at / 60, f64::from(m.failovers))));
                (chart::lines(&format!("chart-{}", h.instance), &h.instance, "per minute", &[
                    Line { name: "calls".into(), values: &calls },
                    Line { name: "technical failures".into(), values: &failures },
                    Line { name: "failovers to the next instance".into(), values: &failovers },
                ]))
            }
        }
        h2 { "Payments whose outcome is not known yet" }
        table #routing-in-doubt {
            thead { tr { th { "Payment" } th { "Instance" } th { "State" } th { "Asked" } th { "Next ask" } th { "Last error" } } }
            tbody {
                @for d in &view.in_doubt {
                    tr { td { a href=(format!("/console/payments/{}", d.payment)) { code { (d.payment) } } }
                         td { (d.attempt.provider) } td { (state_badge(&d.attempt.state)) }
                         td.num { (d.attempt.checks) } td { @match d.attempt.next_check_at { Some(t) => (when(t)), None => "—" } }
                         td { (d.attempt.error_message.as_deref().unwrap_or("—")) } }
                }
            }
        }
        @if view.in_doubt.is_empty() { p.empty #no-doubt { "None: every payment's outcome is known." } }
    };
    v.page(TITLE, "routing", body)
}
