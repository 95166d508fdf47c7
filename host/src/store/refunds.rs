//! Refunds, and what they do to their payment's `amount_refunded`.

use super::json::metadata;
use super::page::{Filters, Listed, Order, Page};
use super::record::record;
use super::{Arg, Store, StoreError, Unit};
use payhost_plugin_api::RefundStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

record! {
    /// A refund as payhost records it.
    #[derive(Debug, Clone)]
    pub struct RefundRow in "refunds" as "r" from "(SELECT r.*, p.tenant FROM refunds r \
        JOIN payments p ON p.id = r.payment_id) r" on conflict "(provider, provider_id) DO NOTHING";
    /// A refund of a payment, whole or partial.
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct RefundView of |r| {
        api id: String,
        /// Always `refund`.
        view object: &'static str = "refund",
        api payment_id as payment: String,
        api provider: String,
        api provider_id: String,
        api amount: i64,
        api currency: String,
        /// `pending`, `succeeded`, `failed`, `canceled`.
        #[api(schema(value_type = String))]
        api status: RefundStatus,
        api reason: Option<String>,
        /// JSON object.
        row metadata: String,
        view metadata: BTreeMap<String, String> = metadata(&r.metadata),
        api created_at: i64,
        /// How often payhost has read the refund back from its provider while it was
        /// `pending` or `requires_action`.
        api checks: i64,
        /// Unix seconds of the next read, while the refund is unsettled (null once it
        /// settled, or when its plugin cannot be asked and only webhooks settle it).
        api next_check_at: Option<i64>,
        /// The payment's tenant.
        joined row tenant = "r.tenant": String,
    }
}

/// The filters of a refund list.
#[derive(Debug, Clone, Default)]
pub struct RefundQuery {
    pub tenant: Option<String>,
    pub payment_id: Option<String>,
}

impl Store {
    /// The refund `id` (within `tenant` when given).
    pub async fn refund(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<RefundRow>, StoreError> {
        self.record(
            "r.id = $1 AND ($2 IS NULL OR r.tenant = $2)",
            vec![id.into(), Arg::from(tenant)],
        )
        .await
    }

    /// The refund with the provider's id `provider_id`.
    pub async fn refund_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> Result<Option<RefundRow>, StoreError> {
        self.record(
            "r.provider = $1 AND r.provider_id = $2",
            vec![provider.into(), provider_id.into()],
        )
        .await
    }

    /// The unsettled refunds whose next read is due, the longest due first.
    pub async fn due_refunds(&self, now: i64, limit: i64) -> Result<Vec<RefundRow>, StoreError> {
        self.records(
            "r.next_check_at <= $1",
            "ORDER BY r.next_check_at, r.id LIMIT $2",
            vec![now.into(), limit.into()],
        )
        .await
    }

    /// One page of refunds, newest first.
    pub async fn refunds(
        &self,
        q: &RefundQuery,
        page: &Page,
    ) -> Result<Listed<RefundRow>, StoreError> {
        // Read through a subquery, which keeps the paging code's plain column names
        // (created_at, id) unambiguous.
        let filters = Filters::default()
            .eq("tenant", q.tenant.clone())
            .eq("payment_id", q.payment_id.clone());
        self.page_of(filters, Order::NewestFirst, page).await
    }
}

/// A refund the provider made, recorded once whichever of the API answer and the webhook
/// comes first; the payment's `amount_refunded` rises only with the row that is new.
/// A refund that failed at once (or was canceled) is kept, and refunded nothing.
pub fn insert_refund(unit: &mut Unit, r: &RefundRow) {
    super::record::insert(unit, r);
    if matches!(r.status, RefundStatus::Failed | RefundStatus::Canceled) {
        return;
    }
    unit.push_if_changed(
        "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at = $3 WHERE id = $1",
        vec![
            r.payment_id.clone().into(),
            r.amount.into(),
            r.created_at.into(),
        ],
    );
}

/// The refund's statuses that may still change: it has not settled.
pub fn unsettled(status: &RefundStatus) -> bool {
    matches!(status, RefundStatus::Pending | RefundStatus::RequiresAction)
}

/// What its provider now says of refund `provider_id`, once, whichever of a read and a
/// webhook tells first: an unsettled refund takes any other status, a succeeded one only
/// `failed` (a bank can return a refund it had accepted); a settled status is never
/// undone otherwise. A refund that failed or was canceled gives its amount back to what
/// remains refundable of its payment. Returns the index of the refund's update, which
/// changed a row only if the status did change.
pub fn settle_refund(
    unit: &mut Unit,
    provider: &str,
    provider_id: &str,
    status: &RefundStatus,
    now: i64,
) -> usize {
    // Whether the refund's row changes: the same test in both statements.
    macro_rules! changes {
        () => {
            "status <> $3 AND (status IN ('pending', 'requires_action') \
             OR (status = 'succeeded' AND $3 = 'failed'))"
        };
    }
    let mut args = vec![provider.into(), provider_id.into(), status.as_str().into()];
    if matches!(status, RefundStatus::Failed | RefundStatus::Canceled) {
        let mut with_now = args.clone();
        with_now.push(now.into());
        unit.push(
            concat!(
                "UPDATE payments SET amount_refunded = amount_refunded - (SELECT amount FROM \
                 refunds WHERE provider = $1 AND provider_id = $2), updated_at = $4 WHERE id = \
                 (SELECT payment_id FROM refunds WHERE provider = $1 AND provider_id = $2 AND ",
                changes!(),
                ")"
            ),
            with_now,
        );
    }
    args.truncate(3);
    unit.push(
        concat!(
            "UPDATE refunds SET status = $3, next_check_at = CASE WHEN $3 IN ('pending', \
             'requires_action') THEN next_check_at ELSE NULL END \
             WHERE provider = $1 AND provider_id = $2 AND ",
            changes!()
        ),
        args,
    )
}

/// A read of unsettled refund `id` that did not settle it: the next one at `next` (or
/// never, `None`), after `checks` reads.
pub fn reschedule_refund(unit: &mut Unit, id: &str, checks: i64, next: Option<i64>) {
    unit.push(
        "UPDATE refunds SET checks = $2, next_check_at = $3 WHERE id = $1",
        vec![id.into(), checks.into(), Arg::from(next)],
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
