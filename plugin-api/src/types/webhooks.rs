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
    /// What verifying fetched from the provider, as it answered (JSON text), for a thin
    /// event: one that only names an object (Mollie posts `id=tr_…`; Stripe's v2 event
    /// notifications) and is authenticated by reading that object with the instance's own
    /// key. The host keeps it with the delivery and hands it to `map_webhook` as
    /// [`WebhookEvent::fetched`], so mapping needs no second read (since 2.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched: Option<String>,
    /// What makes this delivery news, when the provider's id is not unique per change
    /// (Mollie posts the same payment id for every change of the payment): the host stores
    /// each key once per instance, instead of each `id`. Derive it from what was fetched —
    /// the object's id and the state that matters (`tr_1:paid:refunded=500`) — so a
    /// repeated delivery of the same state changes nothing and a new state is never
    /// swallowed. `None`: the `id` is the key (since 2.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
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
    /// What `verify_webhook` fetched for a thin event ([`VerifiedEvent::fetched`]): map
    /// from it rather than reading the object again (since 2.2; set only when verification
    /// gave it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched: Option<String>,
}

/// The answer of `map_webhook`: the facts the event tells (none for event types payhost
/// has no domain event for).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookReports {
    /// One report per fact.
    pub events: Vec<DomainEventReport>,
}
