//! Refunds, and what they do to their payment's `amount_refunded`.

use super::page::{Filters, Listed, Order, Page};
use super::{Arg, Row, RowExt, Store, StoreError, Unit};

const COLS: &str = "r.id, r.payment_id, r.provider, r.provider_id, r.amount, r.currency, \
    r.status, r.reason, r.metadata, r.created_at, p.tenant";

/// A refund as payhost records it.
#[derive(Debug, Clone)]
pub struct RefundRow {
    pub id: String,
    pub payment_id: String,
    pub provider: String,
    pub provider_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    /// JSON object.
    pub metadata: String,
    pub created_at: i64,
    /// The payment's tenant.
    pub tenant: String,
}

impl RefundRow {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            payment_id: r.text("payment_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            amount: r.int("amount")?,
            currency: r.text("currency")?,
            status: r.text("status")?,
            reason: r.opt_text("reason")?,
            metadata: r.text("metadata")?,
            created_at: r.int("created_at")?,
            tenant: r.text("tenant")?,
        })
    }
}

/// The filters of a refund list.
#[derive(Debug, Clone, Default)]
pub struct RefundQuery {
    pub tenant: Option<String>,
    pub payment_id: Option<String>,
}

const FROM: &str = "refunds r JOIN payments p ON p.id = r.payment_id";

impl Store {
    /// The refund `id` (within `tenant` when given).
    pub async fn refund(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<RefundRow>, StoreError> {
        let row = self
            .one(
                &format!(
                    "SELECT {COLS} FROM {FROM} WHERE r.id = $1 AND ($2 IS NULL OR p.tenant = $2)"
                ),
                vec![id.into(), Arg::from(tenant)],
            )
            .await?;
        row.as_ref().map(RefundRow::from_row).transpose()
    }

    /// The refund with the provider's id `provider_id`.
    pub async fn refund_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<RefundRow>, StoreError> {
        let row = self
            .one(
                &format!("SELECT {COLS} FROM {FROM} WHERE r.provider = $1 AND r.provider_id = $2"),
                vec![provider.into(), provider_id.into()],
            )
            .await?;
        row.as_ref().map(RefundRow::from_row).transpose()
    }

    /// One page of refunds, newest first.
    pub async fn refunds(
        &self,
        q: &RefundQuery,
        page: &Page,
    ) -> Result<Listed<RefundRow>, StoreError> {
        // A view keeps the paging code's plain column names (created_at, id) unambiguous.
        let filters = Filters::default()
            .eq("tenant", q.tenant.clone())
            .eq("payment_id", q.payment_id.clone());
        self.page(
            "(SELECT r.*, p.tenant FROM refunds r JOIN payments p ON p.id = r.payment_id) r",
            "r.id, r.payment_id, r.provider, r.provider_id, r.amount, r.currency, r.status, \
             r.reason, r.metadata, r.created_at, r.tenant",
            filters,
            Order::NewestFirst,
            page,
        )
        .await?
        .try_map(|r| RefundRow::from_row(&r))
    }
}

/// A refund the provider made, recorded once whichever of the API answer and the webhook
/// comes first; the payment's `amount_refunded` rises only with the row that is new.
pub fn insert_refund(unit: &mut Unit, r: &RefundRow) {
    unit.push(
        "INSERT INTO refunds (id, payment_id, provider, provider_id, amount, currency, status, \
         reason, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (provider, provider_id) DO NOTHING",
        vec![
            r.id.clone().into(),
            r.payment_id.clone().into(),
            r.provider.clone().into(),
            r.provider_id.clone().into(),
            r.amount.into(),
            r.currency.clone().into(),
            r.status.clone().into(),
            Arg::from(r.reason.clone()),
            r.metadata.clone().into(),
            r.created_at.into(),
        ],
    );
    unit.push_if_changed(
        "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at = $3 WHERE id = $1",
        vec![
            r.payment_id.clone().into(),
            r.amount.into(),
            r.created_at.into(),
        ],
    );
}

/// A refund told by a webhook (made in the provider's dashboard, say), for a payment
/// payhost knows by the provider's id; as [`insert_refund`], once.
#[allow(clippy::too_many_arguments)]
pub fn adopt_refund(
    unit: &mut Unit,
    id: &str,
    provider: &str,
    provider_id: &str,
    provider_payment_id: &str,
    amount: i64,
    currency: &str,
    reason: Option<&str>,
    now: i64,
) {
    unit.push(
        "INSERT INTO refunds (id, payment_id, provider, provider_id, amount, currency, status, \
         reason, created_at) SELECT $1, p.id, $2, $3, $4, $5, 'succeeded', $6, $7 \
         FROM payments p WHERE p.provider = $2 AND p.provider_id = $8 \
         ON CONFLICT (provider, provider_id) DO NOTHING",
        vec![
            id.into(),
            provider.into(),
            provider_id.into(),
            amount.into(),
            currency.into(),
            Arg::from(reason),
            now.into(),
            provider_payment_id.into(),
        ],
    );
    unit.push_if_changed(
        "UPDATE payments SET amount_refunded = amount_refunded + $3, updated_at = $4 \
         WHERE provider = $1 AND provider_id = $2",
        vec![
            provider.into(),
            provider_payment_id.into(),
            amount.into(),
            now.into(),
        ],
    );
}
