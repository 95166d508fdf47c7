use serde::{Deserialize, Serialize};

/// What the host tells every operation besides its request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallCtx {
    /// The API caller's `Idempotency-Key`, or a key derived from it for each step of an
    /// operation that makes several provider calls. Send it to providers that accept one
    /// (Stripe's `Idempotency-Key`, PayPal's `PayPal-Request-Id`): a retried request must
    /// never charge twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The host's request id, for log lines.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// Unix milliseconds, on the host clock, by which the operation must have answered; 0
    /// when none is set. The author kit's HTTP client fits its timeouts and retries inside
    /// it; the host's HTTP service never waits past it.
    #[serde(skip_serializing_if = "super::is_default")]
    pub deadline_ms: i64,
    /// Another provider instance can take this call if it never reaches this one (since
    /// 2.2): do not spend the deadline retrying connections that fail; answer at once with
    /// the error (effect `none`) and the host sends the request elsewhere. Answers (a 5xx, a
    /// 429) are still retried as usual. The author kit's HTTP client follows it.
    #[serde(skip_serializing_if = "super::is_default")]
    pub can_fail_over: bool,
    /// The provider instance called, by the name its operator configured (`stripe_eu`)
    /// (since 2.2; empty from an older host). One plugin may run as several instances.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// Where this instance's webhooks arrive: the host's public URL (`host.public_url`)
    /// and `/webhooks/payments/<instance>` (since 2.2; `None` when the operator did not
    /// configure the public URL, and from an older host). Give it to providers that take a
    /// webhook URL with each payment (Mollie's `webhookUrl`) instead of asking the operator
    /// to write it into every instance's config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

impl CallCtx {
    /// Milliseconds left before the deadline at `now_ms` (`None`: no deadline).
    pub fn remaining_ms(&self, now_ms: i64) -> Option<i64> {
        (self.deadline_ms > 0).then(|| (self.deadline_ms - now_ms).max(0))
    }
}
