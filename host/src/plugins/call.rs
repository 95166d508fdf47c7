//! How the host calls a provider instance: on the blocking pool, holding one of the
//! instance's call slots, under the call's deadline, with panics caught on this side too;
//! the call context says which instance is called and where its webhooks arrive; what the
//! plugin emitted while the call ran comes back with its outcome. Kept apart from the
//! registry's maps and lifecycle (`registry.rs`), which it reads an instance from.

use super::errors::CallError;
use super::registry::{CallObserver, Registry};
use super::services::within_call;
use crate::events::ErrorType;
use payhost_plugin_api::{codes, CallCtx, DomainEventReport, Operation};
use payhost_plugin_kit::export::panic_message;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// How long past a call's deadline the host still waits for the plugin's own answer: the
/// deadline travels with the call, so a plugin whose HTTP budget ended there answers at
/// once (with its own error, which says more than a timeout).
const CALL_GRACE: Duration = Duration::from_secs(1);
/// How long a call waits for a free slot of its instance before it is refused with
/// `provider_busy`: long enough for a burst of quick calls to take turns, short enough that
/// callers of a plugin whose calls hang are answered at once.
pub const SLOT_WAIT: Duration = Duration::from_millis(100);

impl Registry {
    /// Calls operation `O` on the blocking pool, under the instance's deadline; reports the
    /// plugin emitted while it ran go to the report sink.
    ///
    /// # Errors
    /// [`CallError`]: unknown provider, undeclared capability, the provider's own error,
    /// a caught panic or a missed deadline (the last two also dispatch a PluginError).
    pub async fn call<O: Operation>(
        &self,
        name: &str,
        ctx: CallCtx,
        request: O::Request,
    ) -> Result<O::Response, CallError> {
        let (outcome, reports) = self.call_reporting::<O>(name, ctx, request).await;
        for r in reports {
            self.reports.report(name, r);
        }
        outcome
    }

    /// [`Registry::call`], also returning the domain event reports the plugin emitted while
    /// the call ran (also when it failed), for the caller to record with the result.
    pub async fn call_reporting<O: Operation>(
        &self,
        name: &str,
        ctx: CallCtx,
        request: O::Request,
    ) -> (Result<O::Response, CallError>, Vec<DomainEventReport>) {
        let started = Instant::now();
        let (outcome, reports) = self.call_inner::<O>(name, ctx, request).await;
        if let Some(observer) = self.observer.get() {
            observer(name, O::NAME, started.elapsed(), outcome.as_ref().err());
        }
        (outcome, reports)
    }

    async fn call_inner<O: Operation>(
        &self,
        name: &str,
        mut ctx: CallCtx,
        request: O::Request,
    ) -> (Result<O::Response, CallError>, Vec<DomainEventReport>) {
        let instance = match self.get(name) {
            Ok(i) => i,
            Err(e) => return (Err(e), Vec::new()),
        };
        if !instance.supports(O::CAPABILITY) {
            let e = CallError::Unsupported {
                provider: name.to_owned(),
                capability: O::CAPABILITY.to_owned(),
            };
            return (Err(e), Vec::new());
        }
        let timeout = instance.timeout;
        ctx.instance = name.to_owned();
        ctx.webhook_url = self.webhook_base.get().map(|base| format!("{base}/{name}"));
        if ctx.deadline_ms == 0 {
            let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 2);
            ctx.deadline_ms = self.clock.now_millis().saturating_add(ms);
        }
        // A burst of quick calls waits an instant for a slot; a plugin whose calls hang
        // keeps its slots, and callers are refused once this short wait passes.
        let Ok(Ok(slot)) =
            tokio::time::timeout(SLOT_WAIT, instance.slots.clone().acquire_owned()).await
        else {
            let e = CallError::Busy {
                provider: name.to_owned(),
                limit: instance.max_calls,
            };
            return (Err(e), Vec::new());
        };
        let held = instance.clone();
        // The call's span is entered on the thread that runs it: the plugin's HTTP calls
        // (through the host's services, on that thread) become its children.
        let span = tracing::debug_span!(
            "plugin.call",
            otel.name = %format_args!("{name} {}", O::NAME),
            provider = name,
            operation = O::NAME,
            error = tracing::field::Empty,
        );
        let inside = span.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _entered = inside.enter();
            within_call(ctx.deadline_ms, || {
                catch_unwind(AssertUnwindSafe(|| held.call_direct::<O>(&ctx, &request)))
            })
        });
        let mut reports = Vec::new();
        let outcome = match tokio::time::timeout(timeout + CALL_GRACE, task).await {
            Err(_) => Err(CallError::Timeout {
                provider: name.to_owned(),
                operation: O::NAME.to_owned(),
                ms: timeout.as_millis(),
            }),
            Ok(Err(join)) => Err(self.panicked(name, O::NAME, &join.to_string())),
            Ok(Ok((result, trace))) => {
                reports = trace.reports;
                match result {
                    Err(payload) => Err(self.panicked(name, O::NAME, &panic_message(&*payload))),
                    Ok(Err(e)) if e.is(codes::PANICKED) => {
                        Err(self.panicked(name, O::NAME, &e.message))
                    }
                    Ok(Err(e)) => Err(CallError::Plugin(super::outcome::settle_effect(
                        e,
                        trace.contacted,
                    ))),
                    Ok(Ok(v)) => Ok(v),
                }
            }
        };
        if let Err(e @ CallError::Timeout { .. }) = &outcome {
            self.plugin_error(name, e.to_string(), ErrorType::Operation);
        }
        if let Err(e) = &outcome {
            span.record("error", e.code());
        }
        (outcome, reports)
    }

    /// Tells every instance where its webhooks arrive: `public_url` is the host's public
    /// URL (`host.public_url`). Set once, at start.
    pub fn set_public_url(&self, public_url: &str) {
        let base = format!("{}/webhooks/payments", public_url.trim_end_matches('/'));
        let _ = self.webhook_base.set(base);
    }

    /// Installs the function told about every call (provider, operation, time, error); for
    /// metrics. Set once.
    pub fn observe_calls(&self, observer: CallObserver) {
        let _ = self.observer.set(observer);
    }

    fn panicked(&self, name: &str, operation: &str, detail: &str) -> CallError {
        // The panic text goes to the event log for operators, never to API callers.
        self.plugin_error(
            name,
            format!("{operation} panicked: {detail}"),
            ErrorType::Operation,
        );
        CallError::Panicked {
            provider: name.to_owned(),
            operation: operation.to_owned(),
        }
    }
}
