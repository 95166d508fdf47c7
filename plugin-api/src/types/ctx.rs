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
}

impl CallCtx {
    /// Milliseconds left before the deadline at `now_ms` (`None`: no deadline).
    pub fn remaining_ms(&self, now_ms: i64) -> Option<i64> {
        (self.deadline_ms > 0).then(|| (self.deadline_ms - now_ms).max(0))
    }
}
