//! Subscriptions.

use super::page::{Filters, Listed, Order, Page};
use super::{Arg, Row, RowExt, Store, StoreError, Unit};

const COLS: &str = "id, tenant, customer_id, provider, provider_id, price_id, status, \
    cancel_at_period_end, current_period_start, current_period_end, trial_end, canceled_at, \
    next_action, metadata, created_at, updated_at";

/// A subscription as payhost records it.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub id: String,
    pub tenant: String,
    pub customer_id: String,
    pub provider: String,
    pub provider_id: String,
    pub price_id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub trial_end: Option<i64>,
    pub canceled_at: Option<i64>,
    /// The approval redirect a subscriber must follow (JSON), never a client secret.
    pub next_action: Option<String>,
    /// JSON object.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SubscriptionRow {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text("id")?,
            tenant: r.text("tenant")?,
            customer_id: r.text("customer_id")?,
            provider: r.text("provider")?,
            provider_id: r.text("provider_id")?,
            price_id: r.text("price_id")?,
            status: r.text("status")?,
            cancel_at_period_end: r.int("cancel_at_period_end")? != 0,
            current_period_start: r.int("current_period_start")?,
            current_period_end: r.int("current_period_end")?,
            trial_end: r.opt_int("trial_end")?,
            canceled_at: r.opt_int("canceled_at")?,
            next_action: r.opt_text("next_action")?,
            metadata: r.text("metadata")?,
            created_at: r.int("created_at")?,
            updated_at: r.int("updated_at")?,
        })
    }
}

/// The filters of a subscription list.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionQuery {
    pub tenant: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<String>,
}

impl Store {
    /// The subscription `id` (within `tenant` when given).
    pub async fn subscription(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<SubscriptionRow>, StoreError> {
        let row = self
            .one(
                &format!(
                    "SELECT {COLS} FROM subscriptions \
                     WHERE id = $1 AND ($2 IS NULL OR tenant = $2)"
                ),
                vec![id.into(), Arg::from(tenant)],
            )
            .await?;
        row.as_ref().map(SubscriptionRow::from_row).transpose()
    }

    /// One page of subscriptions, newest first.
    pub async fn subscriptions(
        &self,
        q: &SubscriptionQuery,
        page: &Page,
    ) -> Result<Listed<SubscriptionRow>, StoreError> {
        let filters = Filters::default()
            .eq("tenant", q.tenant.clone())
            .eq("customer_id", q.customer_id.clone())
            .eq("status", q.status.clone());
        self.page("subscriptions", COLS, filters, Order::NewestFirst, page)
            .await?
            .try_map(|r| SubscriptionRow::from_row(&r))
    }
}

/// A new subscription.
pub fn insert_subscription(unit: &mut Unit, s: &SubscriptionRow) {
    unit.push(
        "INSERT INTO subscriptions (id, tenant, customer_id, provider, provider_id, price_id, \
         status, cancel_at_period_end, current_period_start, current_period_end, trial_end, \
         canceled_at, next_action, metadata, created_at, updated_at, synced_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $15)",
        vec![
            s.id.clone().into(),
            s.tenant.clone().into(),
            s.customer_id.clone().into(),
            s.provider.clone().into(),
            s.provider_id.clone().into(),
            s.price_id.clone().into(),
            s.status.clone().into(),
            s.cancel_at_period_end.into(),
            s.current_period_start.into(),
            s.current_period_end.into(),
            Arg::from(s.trial_end),
            Arg::from(s.canceled_at),
            Arg::from(s.next_action.clone()),
            s.metadata.clone().into(),
            s.created_at.into(),
            s.updated_at.into(),
        ],
    );
}

/// A subscription's state as the provider answered it.
pub fn update_subscription(unit: &mut Unit, s: &SubscriptionRow) {
    unit.push(
        "UPDATE subscriptions SET price_id = $2, status = $3, cancel_at_period_end = $4, \
         current_period_start = $5, current_period_end = $6, trial_end = $7, canceled_at = $8, \
         next_action = $9, updated_at = $10, synced_at = $10 WHERE id = $1",
        vec![
            s.id.clone().into(),
            s.price_id.clone().into(),
            s.status.clone().into(),
            s.cancel_at_period_end.into(),
            s.current_period_start.into(),
            s.current_period_end.into(),
            Arg::from(s.trial_end),
            Arg::from(s.canceled_at),
            Arg::from(s.next_action.clone()),
            s.updated_at.into(),
        ],
    );
}

/// What a webhook tells of a subscription (status, price, cancellation schedule, periods),
/// unless the row holds a newer state.
pub struct SubscriptionSync<'a> {
    pub status: Option<&'a str>,
    pub price_id: Option<&'a str>,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
}

/// Applies a [`SubscriptionSync`] (provider time `created`).
pub fn sync_subscription(
    unit: &mut Unit,
    provider: &str,
    provider_id: &str,
    s: &SubscriptionSync<'_>,
    created: i64,
    now: i64,
) {
    unit.push(
        "UPDATE subscriptions SET status = COALESCE($3, status), \
         price_id = COALESCE($4, price_id), cancel_at_period_end = $5, synced_at = $6, \
         updated_at = $7, current_period_start = COALESCE($8, current_period_start), \
         current_period_end = COALESCE($9, current_period_end), \
         trial_end = COALESCE($10, trial_end), \
         next_action = CASE WHEN $3 = 'incomplete' THEN next_action ELSE NULL END \
         WHERE provider = $1 AND provider_id = $2 AND synced_at <= $6",
        vec![
            provider.into(),
            provider_id.into(),
            Arg::from(s.status),
            Arg::from(s.price_id),
            s.cancel_at_period_end.into(),
            created.into(),
            now.into(),
            Arg::from(s.current_period_start),
            Arg::from(s.current_period_end),
            Arg::from(s.trial_end),
        ],
    );
}

/// A subscription ended, as a webhook tells.
pub fn sync_subscription_canceled(
    unit: &mut Unit,
    provider: &str,
    provider_id: &str,
    created: i64,
    now: i64,
) {
    unit.push(
        "UPDATE subscriptions SET status = 'canceled', cancel_at_period_end = 0, \
         canceled_at = COALESCE(canceled_at, $3), next_action = NULL, synced_at = $3, \
         updated_at = $4 WHERE provider = $1 AND provider_id = $2 AND synced_at <= $3",
        vec![
            provider.into(),
            provider_id.into(),
            created.into(),
            now.into(),
        ],
    );
}
