//! One-time payments.

use super::attempts::AttemptView;
use super::json::{metadata, next_action_view, NextActionView};
use super::page::{Filters, Listed, Order, Page};
use super::record::record;
use super::{Arg, RowExt, Store, StoreError, Unit};
use payhost_plugin_api::PaymentStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

record! {
    /// A payment as payhost records it.
    #[derive(Debug, Clone)]
    pub struct PaymentRow in "payments";
    /// A one-time payment.
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct PaymentView of |p| {
        api id: String,
        /// Always `payment`.
        view object: &'static str = "payment",
        row tenant: String,
        api customer_id as customer: String,
        api provider: String,
        /// The provider's id; payhost's own id while the outcome of its creation is in
        /// doubt ([`PaymentRow::provider_id_unknown`]).
        row provider_id: String,
        /// The provider's id; null while the outcome of its creation is in doubt.
        view provider_id: Option<String> =
            (!p.provider_id_unknown()).then(|| p.provider_id.clone()),
        api amount: i64,
        api currency: String,
        /// What was taken: the amount on success, what was captured for a manual capture.
        api amount_received: i64,
        api amount_refunded: i64,
        /// `partially_refunded` or `refunded` once refunds were made (here or at the
        /// provider), else null.
        view refund_status: Option<&'static str> = refund_status(p),
        /// `requires_payment_method`, `requires_confirmation`, `requires_action`,
        /// `processing`, `requires_capture`, `succeeded`, `failed`, `canceled`, `expired`
        /// (not completed in time; `failure_code` / `failure_message` say why when the
        /// provider does), or a status a newer provider reports.
        #[api(schema(value_type = String))]
        api status: PaymentStatus,
        /// `automatic` or `manual`.
        api capture_method: String,
        /// The redirect the buyer must follow (JSON), never a client secret.
        row next_action: Option<String>,
        view next_action: Option<NextActionView> = next_action_view(p.next_action.as_deref()),
        /// payhost's id of the method charged, or the provider's when payhost has not seen it.
        api payment_method: Option<String>,
        api failure_code: Option<String>,
        api failure_message: Option<String>,
        /// The state of a dispute over the payment, when there is one.
        api dispute_status: Option<String>,
        api description: Option<String>,
        /// JSON object.
        row metadata: String,
        view metadata: BTreeMap<String, String> = metadata(&p.metadata),
        /// For the browser to finish paying; only in the answers that create or confirm.
        view client_secret: Option<String> = None,
        api created_at: i64,
        api updated_at: i64,
        /// The provider time of the newest state applied (a webhook older than it changes
        /// nothing).
        row synced_at: i64,
        /// The provider calls that made it (JSON, as its answers show them); NULL for a
        /// payment made before attempts were recorded.
        row attempts: Option<String>,
        /// The provider calls that made the payment, oldest first: more than one when an
        /// instance could not take it and the next one of its route did; one `in_doubt` while
        /// its outcome is not known (the payment is `processing` meanwhile).
        view attempts: Vec<AttemptView> = attempts_view(p),
        /// The W3C `traceparent` of the request that created it, when traces were on (a
        /// webhook's processing links to it; the console shows its trace id).
        row trace_parent: Option<String>,
    }
}

impl PaymentRow {
    /// Whether the provider's id for it is not known yet (the outcome of its creation is
    /// in doubt): payhost keeps its own id in `provider_id` meanwhile, as for customers it
    /// keeps alone.
    pub fn provider_id_unknown(&self) -> bool {
        self.provider_id == self.id
    }
}

/// Whether a payment's money went back, in part or whole.
fn refund_status(p: &PaymentRow) -> Option<&'static str> {
    let received = match p.amount_received {
        0 => p.amount,
        r => r,
    };
    match p.amount_refunded {
        0 => None,
        r if r >= received => Some("refunded"),
        _ => Some("partially_refunded"),
    }
}

/// The attempts a payment's row keeps, or the one call that answered (a payment made
/// before attempts were recorded, or one whose only attempt answered: its row keeps no
/// copy of it).
fn attempts_view(p: &PaymentRow) -> Vec<AttemptView> {
    match p.attempts.as_deref() {
        Some(a) => serde_json::from_str(a).unwrap_or_default(),
        None => vec![AttemptView {
            id: format!("att_{}", p.id.strip_prefix("pay_").unwrap_or(&p.id)),
            provider: p.provider.clone(),
            state: "answered".into(),
            error_code: None,
            error_message: None,
            checks: 0,
            next_check_at: None,
            created_at: p.created_at,
            updated_at: p.created_at,
        }],
    }
}

/// The filters of a payment list.
#[derive(Debug, Clone, Default)]
pub struct PaymentQuery {
    pub tenant: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<String>,
    pub provider: Option<String>,
    pub created_gte: Option<i64>,
    pub created_lte: Option<i64>,
}

impl Store {
    /// The payment `id` (within `tenant` when given).
    pub async fn payment(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<PaymentRow>, StoreError> {
        self.record(
            "id = $1 AND ($2 IS NULL OR tenant = $2)",
            vec![id.into(), Arg::from(tenant)],
        )
        .await
    }

    /// One page of payments, newest first.
    pub async fn payments(
        &self,
        q: &PaymentQuery,
        page: &Page,
    ) -> Result<Listed<PaymentRow>, StoreError> {
        let filters = Filters::default()
            .eq("tenant", q.tenant.clone())
            .eq("customer_id", q.customer_id.clone())
            .eq("status", q.status.clone())
            .eq("provider", q.provider.clone())
            .cmp("created_at", ">=", q.created_gte)
            .cmp("created_at", "<=", q.created_lte);
        self.page_of(filters, Order::NewestFirst, page).await
    }
}

impl Store {
    /// The `traceparent` of the request that created payment `id`, if it was traced.
    ///
    /// # Errors
    /// A database failure.
    pub async fn payment_trace(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .one(
                "SELECT trace_parent FROM payments WHERE id = $1",
                vec![id.into()],
            )
            .await?
            .map(|r| r.opt_text("trace_parent"))
            .transpose()?
            .flatten())
    }
}

/// A new payment (`synced_at`: the provider time of its state).
pub fn insert_payment(unit: &mut Unit, p: &PaymentRow) {
    super::record::insert(unit, p);
}

/// A payment whose creation was in doubt, once the provider's answer is known: its
/// provider id, state and attempts.
pub fn settle_in_doubt(unit: &mut Unit, p: &PaymentRow) {
    unit.push(
        "UPDATE payments SET provider_id = $2, status = $3, amount_received = $4, \
         amount_refunded = $5, payment_method = $6, failure_code = $7, failure_message = $8, \
         next_action = $9, updated_at = $10, synced_at = $10, attempts = $11 WHERE id = $1",
        vec![
            p.id.clone().into(),
            p.provider_id.clone().into(),
            p.status.as_str().into(),
            p.amount_received.into(),
            p.amount_refunded.into(),
            Arg::from(p.payment_method.clone()),
            Arg::from(p.failure_code.clone()),
            Arg::from(p.failure_message.clone()),
            Arg::from(p.next_action.clone()),
            p.updated_at.into(),
            Arg::from(p.attempts.clone()),
        ],
    );
}

/// A payment's attempts, as its answers show them.
pub fn set_attempts(unit: &mut Unit, id: &str, attempts: Option<&str>) {
    unit.push(
        "UPDATE payments SET attempts = $2 WHERE id = $1",
        vec![id.into(), Arg::from(attempts)],
    );
}

/// A payment adopted from a webhook that is in fact `keep`, a payment whose creation was
/// in doubt when the webhook came: its events and refunds move to `keep`, its record goes.
pub fn merge_adopted(unit: &mut Unit, keep: &str, adopted: &str) {
    unit.push(
        "UPDATE events SET object_id = $1 WHERE object_id = $2",
        vec![keep.into(), adopted.into()],
    );
    unit.push(
        "UPDATE refunds SET payment_id = $1 WHERE payment_id = $2",
        vec![keep.into(), adopted.into()],
    );
    unit.push("DELETE FROM payments WHERE id = $1", vec![adopted.into()]);
}

/// A payment's state as the provider answered it.
pub fn update_payment_state(unit: &mut Unit, p: &PaymentRow) {
    unit.push(
        "UPDATE payments SET status = $2, amount_received = $3, amount_refunded = $4, \
         payment_method = $5, failure_code = $6, failure_message = $7, next_action = $8, \
         updated_at = $9, synced_at = $9 WHERE id = $1",
        vec![
            p.id.clone().into(),
            p.status.as_str().into(),
            p.amount_received.into(),
            p.amount_refunded.into(),
            Arg::from(p.payment_method.clone()),
            Arg::from(p.failure_code.clone()),
            Arg::from(p.failure_message.clone()),
            Arg::from(p.next_action.clone()),
            p.updated_at.into(),
        ],
    );
}

/// A status a webhook tells, unless the row holds a newer state (`synced_at`, the provider
/// time of the newest fact applied). Money received follows a success.
/// `failure` is the (code, message) a failed or expired payment's report gives, each kept
/// where the report leaves it out.
pub fn sync_payment_status(
    unit: &mut Unit,
    provider: &str,
    provider_id: &str,
    status: &str,
    failure: (Option<&str>, Option<&str>),
    created: i64,
    now: i64,
) {
    unit.push(
        "UPDATE payments SET status = $3, failure_message = COALESCE($4, failure_message), \
         failure_code = COALESCE($7, failure_code), \
         amount_received = CASE WHEN $3 = 'succeeded' AND amount_received = 0 THEN amount \
         ELSE amount_received END, next_action = NULL, synced_at = $5, updated_at = $6 \
         WHERE provider = $1 AND provider_id = $2 AND synced_at <= $5",
        vec![
            provider.into(),
            provider_id.into(),
            status.into(),
            Arg::from(failure.1),
            created.into(),
            now.into(),
            Arg::from(failure.0),
        ],
    );
}

/// A dispute's state on the payment it is about.
pub fn set_dispute(unit: &mut Unit, provider: &str, provider_id: &str, status: &str, now: i64) {
    unit.push(
        "UPDATE payments SET dispute_status = $3, updated_at = $4 \
         WHERE provider = $1 AND provider_id = $2",
        vec![
            provider.into(),
            provider_id.into(),
            status.into(),
            now.into(),
        ],
    );
}

/// A payment made at the provider directly, for a customer payhost knows: recorded from
/// the webhook that tells it (the customer's tenant, the provider's amount and status).
#[allow(clippy::too_many_arguments)]
pub fn adopt_payment(
    unit: &mut Unit,
    id: &str,
    provider: &str,
    provider_id: &str,
    provider_customer_id: &str,
    amount: i64,
    currency: &str,
    status: &str,
    (created, now): (i64, i64),
) {
    unit.push(
        "INSERT INTO payments (id, tenant, customer_id, provider, provider_id, amount, currency, \
         amount_received, amount_refunded, status, metadata, created_at, updated_at, synced_at) \
         SELECT $1, c.tenant, c.id, $2, $3, $4, $5, \
         CASE WHEN $6 = 'succeeded' THEN $4 ELSE 0 END, 0, $6, '{}', $7, $8, $7 FROM customers c \
         WHERE c.provider = $2 AND c.provider_id = $9 \
         ON CONFLICT (provider, provider_id) DO NOTHING",
        vec![
            id.into(),
            provider.into(),
            provider_id.into(),
            amount.into(),
            currency.into(),
            status.into(),
            created.into(),
            now.into(),
            provider_customer_id.into(),
        ],
    );
}
