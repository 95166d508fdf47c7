//! Subscriptions.

use super::json::{metadata, next_action_view, NextActionView};
use super::page::{Filters, Listed, Order, Page};
use super::record::record;
use super::{Arg, Store, StoreError, Unit};
use payhost_plugin_api::SubscriptionStatus;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

record! {
    /// A subscription as payhost records it.
    #[derive(Debug, Clone)]
    pub struct SubscriptionRow in "subscriptions";
    /// A subscription to a price.
    #[derive(Debug, Clone, Serialize, ToSchema)]
    pub struct SubscriptionView of |s| {
        api id: String,
        /// Always `subscription`.
        view object: &'static str = "subscription",
        row tenant: String,
        api customer_id as customer: String,
        api provider: String,
        api provider_id: String,
        api price_id as price: String,
        /// `incomplete`, `trialing`, `active`, `past_due`, `unpaid`, `paused`, `canceled`,
        /// or a status a newer provider reports.
        #[api(schema(value_type = String))]
        api status: SubscriptionStatus,
        api cancel_at_period_end: bool,
        api current_period_start: i64,
        api current_period_end: i64,
        api trial_end: Option<i64>,
        api canceled_at: Option<i64>,
        /// The approval redirect a subscriber must follow (JSON), never a client secret.
        row next_action: Option<String>,
        view next_action: Option<NextActionView> = next_action_view(s.next_action.as_deref()),
        /// JSON object.
        row metadata: String,
        view metadata: BTreeMap<String, String> = metadata(&s.metadata),
        /// For the browser to finish the first payment; only in the answer that creates.
        view client_secret: Option<String> = None,
        api created_at: i64,
        api updated_at: i64,
        /// The provider time of the newest state applied (a webhook older than it changes
        /// nothing).
        row synced_at: i64,
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
        self.record(
            "id = $1 AND ($2 IS NULL OR tenant = $2)",
            vec![id.into(), Arg::from(tenant)],
        )
        .await
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
        self.page_of(filters, Order::NewestFirst, page).await
    }
}

/// A new subscription (`synced_at`: the provider time of its state).
pub fn insert_subscription(unit: &mut Unit, s: &SubscriptionRow) {
    super::record::insert(unit, s);
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
            s.status.as_str().into(),
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
