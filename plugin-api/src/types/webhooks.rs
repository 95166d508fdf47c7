use super::{Bytes, DomainEventReport, Headers};
use serde::{Deserialize, Serialize};

/// `verify_webhook`: one delivery as the host received it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDelivery {
    /// The raw body, byte for byte: signatures are computed over it.
    pub body: Bytes,
    /// Every header of the request, names lowercase.
    pub headers: Headers,
    /// Unix seconds, from the host clock (for timestamp tolerance checks).
    pub now: i64,
}

/// The answer of `verify_webhook`: the delivery is authentic, and this is its envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifiedEvent {
    /// The provider's event id: the host stores each id once (a repeated delivery is
    /// acknowledged and changes nothing).
    pub id: String,
    /// The provider's event type, e.g. `payment_intent.succeeded`.
    pub event_type: String,
    /// Unix seconds at which the provider created the event: the host never lets an older
    /// event overwrite a newer state.
    pub created: i64,
}

/// `map_webhook`: a stored, verified event to turn into domain events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    /// The provider's event id.
    pub id: String,
    /// The provider's event type.
    pub event_type: String,
    /// Unix seconds at which the provider created it.
    pub created: i64,
    /// The delivery's body as text.
    pub payload: String,
}

/// The answer of `map_webhook`: the facts the event tells (none for event types payhost
/// has no domain event for).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookReports {
    /// One report per fact.
    pub events: Vec<DomainEventReport>,
}
