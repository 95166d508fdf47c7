//! One-time payments.

use super::page::{Filters, Listed, Order, Page};
use super::{Arg, Row, RowExt, Store, StoreError, Unit};

const COLS: &str = "id, tenant, customer_id, provider, provider_id, amount, currency, \
    amount_received, amount_refunded, status, capture_method, next_action, payment_method, \
    failure_code, failure_message, dispute_status, description, metadata, created_at, updated_at, \
    attempts, trace_parent";

/// A payment as payhost records it.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub id: String,
    pub tenant: String,
    pub customer_id: String,
    pub provider: String,
    pub provider_id: String,
    pub amount: i64,
    pub currency: String,
    pub amount_received: i64,
    pub amount_refunded: i64,
    pub status: String,
    pub capture_method: String,
    /// The redirect the buyer must follow (JSON), never a client secret.
    pub next_action: Option<String>,
    /// payhost's id of the method charged, or the provider's when payhost has not seen it.
    pub payment_method: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub dispute_status: Option<String>,
    pub description: Option<String>,
    /// JSON object.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The provider calls that made it (JSON, as its answers show them); NULL for a
    /// payment made before attempts were recorded.
    pub attempts: Option<String>,
    /// The W3C `traceparent` of the request that created it, when traces were on (a
    /// webhook's processing links to it; the console shows its trace id).
    pub trace_parent: Option<String>,
}

impl PaymentRow {
    /// Whether the provider's id for it is not known yet (the outcome of its creation is
    /// in doubt): payhost keeps its own id in `provider_id` meanwhile, as for customers it
    /// keeps alone.
    pub fn provider_id_unknown(&self) -> bool {
        self.provider_id == self.id
    }

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            tenant: r.text("tenant")?,
            customer_id: r.text("customer_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            amount: r.int("amount")?,
            currency: r.text("currency")?,
            amount_received: r.int("amount_received")?,
            amount_refunded: r.int("amount_refunded")?,
            status: r.text("status")?,
            capture_method: r.text("capture_method")?,
            next_action: r.opt_text("next_action")?,
            payment_method: r.opt_text("payment_method")?,
            failure_code: r.opt_text("failure_code")?,
            failure_message: r.opt_text("failure_message")?,
            dispute_status: r.opt_text("dispute_status")?,
            description: r.opt_text("description")?,
            metadata: r.text("metadata")?,
            created_at: r.int("created_at")?,
            updated_at: r.int("updated_at")?,
            attempts: r.opt_text("attempts")?,
            trace_parent: r.opt_text("trace_parent")?,
        })
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
        let row = self
            .one(
                &format!(
                    "SELECT {COLS} FROM payments WHERE id = $1 AND ($2 IS NULL OR tenant = $2)"
                ),
                vec![id.into(), Arg::from(tenant)],
            )
            .await?;
        row.as_ref().map(PaymentRow::from_row).transpose()
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
        self.page("payments", COLS, filters, Order::NewestFirst, page)
            .await?
            .try_map(|r| PaymentRow::from_row(&r))
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

/// A new payment, with the provider time of its state (`synced_at`).
pub fn insert_payment(unit: &mut Unit, p: &PaymentRow) {
    unit.push(
        "INSERT INTO payments (id, tenant, customer_id, provider, provider_id, amount, currency, \
         amount_received, amount_refunded, status, capture_method, next_action, payment_method, \
         failure_code, failure_message, dispute_status, description, metadata, created_at, \
         updated_at, synced_at, attempts, trace_parent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $19, $21, $22)",
        vec![
            p.id.clone().into(),
            p.tenant.clone().into(),
            p.customer_id.clone().into(),
            p.provider.clone().into(),
            p.provider_id.clone().into(),
            p.amount.into(),
            p.currency.clone().into(),
            p.amount_received.into(),
            p.amount_refunded.into(),
            p.status.clone().into(),
            p.capture_method.clone().into(),
            Arg::from(p.next_action.clone()),
            Arg::from(p.payment_method.clone()),
            Arg::from(p.failure_code.clone()),
            Arg::from(p.failure_message.clone()),
            Arg::from(p.dispute_status.clone()),
            Arg::from(p.description.clone()),
            p.metadata.clone().into(),
            p.created_at.into(),
            p.updated_at.into(),
            Arg::from(p.attempts.clone()),
            Arg::from(p.trace_parent.clone()),
        ],
    );
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
            p.status.clone().into(),
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
            p.status.clone().into(),
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
pub fn sync_payment_status(
    unit: &mut Unit,
    provider: &str,
    provider_id: &str,
    status: &str,
    error: Option<&str>,
    created: i64,
    now: i64,
) {
    unit.push(
        "UPDATE payments SET status = $3, failure_message = COALESCE($4, failure_message), \
         amount_received = CASE WHEN $3 = 'succeeded' AND amount_received = 0 THEN amount \
         ELSE amount_received END, next_action = NULL, synced_at = $5, updated_at = $6 \
         WHERE provider = $1 AND provider_id = $2 AND synced_at <= $5",
        vec![
            provider.into(),
            provider_id.into(),
            status.into(),
            Arg::from(error),
            created.into(),
            now.into(),
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
