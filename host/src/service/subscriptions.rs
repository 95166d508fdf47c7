//! Subscriptions and checkout.

use super::payments::{check_money, Charge, Payer};
use super::rows::{new_id, subscription_cols, CustomerRow, SubscriptionRow};
use super::{metadata_json, Ctx, Ids, Kind, PaymentService, Reply, ServiceError};
use crate::store::{Arg, Unit};
use payhost_plugin_api::{
    ops, CancelSubscription as CancelRequest, ChangeSubscriptionPrice, DomainEventKind,
    DomainEventReport, NewSubscription, ObjectRef, Operation, Subscription, SubscriptionStatus,
};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Longest trial accepted, in days (Stripe's limit).
const MAX_TRIAL_DAYS: u32 = 730;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    pub customer: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub provider: Option<String>,
    pub price: String,
    #[serde(default)]
    pub trial_days: u32,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePrice {
    pub price: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscription {
    #[serde(default)]
    pub at_period_end: bool,
}

/// `POST /v1/checkout`: a user and a plan (`price`) or an amount.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkout {
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub provider: Option<String>,
    pub price: Option<String>,
    #[serde(default)]
    pub trial_days: u32,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// What a checkout creates.
enum Plan {
    Subscription(String),
    Payment(payhost_plugin_api::Money),
}

fn sub_report(kind: DomainEventKind, s: &Subscription, now: i64) -> DomainEventReport {
    let mut r = DomainEventReport::new(kind, &s.id, now);
    r.customer_id = s.customer_id.clone();
    r.subscription_id = Some(s.id.clone());
    r.plan_id = Some(s.price_id.clone());
    r.status = Some(s.status.as_str().into());
    r.cancel_at_period_end = s.cancel_at_period_end;
    r
}

fn check_trial(days: u32) -> Result<(), ServiceError> {
    if days > MAX_TRIAL_DAYS {
        return Err(ServiceError::invalid(
            "trial_days",
            format!("trial_days must be at most {MAX_TRIAL_DAYS}, got {days}"),
        ));
    }
    Ok(())
}

impl PaymentService {
    async fn subscription(&self, id: &str) -> Result<SubscriptionRow, ServiceError> {
        let row = self
            .store
            .one(
                concat!(
                    "SELECT ",
                    subscription_cols!(),
                    " FROM subscriptions WHERE id = $1"
                ),
                vec![id.into()],
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "subscription",
                param: "id",
                id: id.to_owned(),
            })?;
        Ok(SubscriptionRow::from_row(&row)?)
    }

    /// `POST /v1/subscriptions`, with an optional trial.
    ///
    /// # Errors
    /// Invalid input, an unknown customer, price or provider, or the provider's error.
    pub async fn create_subscription(
        &self,
        ctx: &Ctx,
        req: CreateSubscription,
    ) -> Result<Reply, ServiceError> {
        check_trial(req.trial_days)?;
        if req.price.trim().is_empty() {
            return Err(ServiceError::invalid("price", "price must not be empty"));
        }
        let payer = Payer {
            customer: req.customer,
            user_id: req.user_id,
            email: req.email,
            name: req.name,
            provider: req.provider,
        };
        let customer = self.resolve_payer(ctx, payer).await?;
        self.subscribe(ctx, &customer, req.price, req.trial_days, &req.metadata, "")
            .await
    }

    async fn subscribe(
        &self,
        ctx: &Ctx,
        customer: &CustomerRow,
        price: String,
        trial_days: u32,
        metadata: &BTreeMap<String, String>,
        step: &str,
    ) -> Result<Reply, ServiceError> {
        let new = NewSubscription {
            customer_id: Some(customer.provider_id.clone()),
            price_id: price,
            trial_days,
            metadata: metadata.clone(),
            ..NewSubscription::default()
        };
        let (s, emitted) = self
            .call::<ops::CreateSubscription>(&customer.provider, ctx.call_ctx(step), new)
            .await?;
        self.check_new_provider_id(Kind::Subscription, &customer.provider, &s.id)
            .await?;
        let now = self.now();
        let row = SubscriptionRow {
            id: new_id("subs"),
            tenant: ctx.tenant_key(),
            customer_id: customer.id.clone(),
            provider: customer.provider.clone(),
            provider_id: s.id.to_string(),
            price_id: s.price_id.to_string(),
            status: s.status.as_str().to_owned(),
            cancel_at_period_end: s.cancel_at_period_end,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            trial_end: s.trial_end,
            canceled_at: s.canceled_at,
            metadata: metadata_json(&s.metadata),
            created_at: now,
            updated_at: now,
        };
        let mut unit = Unit::new();
        unit.push(
            concat!(
                "INSERT INTO subscriptions (",
                subscription_cols!(),
                ", synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)"
            ),
            vec![
                row.id.clone().into(),
                row.tenant.clone().into(),
                row.customer_id.clone().into(),
                row.provider.clone().into(),
                row.provider_id.clone().into(),
                row.price_id.clone().into(),
                row.status.clone().into(),
                row.cancel_at_period_end.into(),
                row.current_period_start.into(),
                row.current_period_end.into(),
                Arg::from(row.trial_end),
                Arg::from(row.canceled_at),
                row.metadata.clone().into(),
                now.into(),
                now.into(),
            ],
        );
        let mut events = vec![sub_report(DomainEventKind::SubscriptionCreated, &s, now)];
        events.extend(emitted);
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        let reply = Reply {
            status: 201,
            body: row.view(
                s.next_action
                    .as_ref()
                    .and_then(|a| a.client_secret())
                    .map(str::to_owned),
            ),
        };
        self.finish(ctx, unit, &customer.provider, events, &ids, reply)
            .await
    }

    /// Runs a subscription operation on the provider and writes the new state with the
    /// events its change tells.
    async fn sync_subscription<O: Operation<Response = Subscription>>(
        &self,
        ctx: &Ctx,
        id: &str,
        request: impl FnOnce(String) -> O::Request,
    ) -> Result<Reply, ServiceError> {
        let mut row = self.subscription(id).await?;
        let (s, emitted) = self
            .call::<O>(
                &row.provider,
                ctx.call_ctx(""),
                request(row.provider_id.clone()),
            )
            .await?;
        Self::check_same_object(Kind::Subscription, &row.provider, &row.provider_id, &s.id)?;
        let now = self.now();
        let mut events = Vec::new();
        let canceled = s.status == SubscriptionStatus::Canceled;
        if canceled && row.status != SubscriptionStatus::Canceled.as_str() {
            events.push(sub_report(DomainEventKind::SubscriptionCancelled, &s, now));
        } else if row.status != s.status.as_str()
            || row.price_id != s.price_id.as_str()
            || row.cancel_at_period_end != s.cancel_at_period_end
        {
            let mut r = sub_report(DomainEventKind::SubscriptionUpdated, &s, now);
            if row.price_id != s.price_id.as_str() {
                r.previous_plan_id = Some(row.price_id.clone());
            }
            events.push(r);
        }
        events.extend(emitted);
        row.price_id = s.price_id.to_string();
        row.status = s.status.as_str().to_owned();
        row.cancel_at_period_end = s.cancel_at_period_end;
        row.current_period_start = s.current_period_start;
        row.current_period_end = s.current_period_end;
        row.trial_end = s.trial_end;
        row.canceled_at = s.canceled_at;
        row.updated_at = now;
        let mut unit = Unit::new();
        unit.push(
            "UPDATE subscriptions SET price_id = $2, status = $3, cancel_at_period_end = $4, \
             current_period_start = $5, current_period_end = $6, trial_end = $7, \
             canceled_at = $8, updated_at = $9, synced_at = $9 WHERE id = $1",
            vec![
                row.id.clone().into(),
                row.price_id.clone().into(),
                row.status.clone().into(),
                row.cancel_at_period_end.into(),
                row.current_period_start.into(),
                row.current_period_end.into(),
                Arg::from(row.trial_end),
                Arg::from(row.canceled_at),
                now.into(),
            ],
        );
        let customer = self.customer(&row.customer_id, "customer").await?;
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        let reply = Reply {
            status: 200,
            body: row.view(None),
        };
        let provider = row.provider.clone();
        self.finish(ctx, unit, &provider, events, &ids, reply).await
    }

    /// `GET /v1/subscriptions/{id}`: refreshed from the provider.
    ///
    /// # Errors
    /// Unknown id, or the provider's error.
    pub async fn get_subscription(&self, ctx: &Ctx, id: &str) -> Result<Reply, ServiceError> {
        self.sync_subscription::<ops::GetSubscription>(ctx, id, ObjectRef::new)
            .await
    }

    /// `POST /v1/subscriptions/{id}/price`: moves the subscription to another price.
    ///
    /// # Errors
    /// Unknown id or price, a canceled subscription, or the provider's error.
    pub async fn change_price(
        &self,
        ctx: &Ctx,
        id: &str,
        req: ChangePrice,
    ) -> Result<Reply, ServiceError> {
        if req.price.trim().is_empty() {
            return Err(ServiceError::invalid("price", "price must not be empty"));
        }
        self.sync_subscription::<ops::ChangeSubscriptionPrice>(ctx, id, |pid| {
            ChangeSubscriptionPrice {
                id: pid,
                price_id: req.price,
            }
        })
        .await
    }

    /// `POST /v1/subscriptions/{id}/cancel`: now, or at the end of the period.
    ///
    /// # Errors
    /// Unknown id, an already canceled subscription, or the provider's error.
    pub async fn cancel_subscription(
        &self,
        ctx: &Ctx,
        id: &str,
        req: CancelSubscription,
    ) -> Result<Reply, ServiceError> {
        self.sync_subscription::<ops::CancelSubscription>(ctx, id, |pid| CancelRequest {
            id: pid,
            at_period_end: req.at_period_end,
        })
        .await
    }

    /// `POST /v1/subscriptions/{id}/reactivate`: undoes a cancellation at period end.
    ///
    /// # Errors
    /// Unknown id, a subscription not scheduled for cancellation, or the provider's error.
    pub async fn reactivate_subscription(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<Reply, ServiceError> {
        self.sync_subscription::<ops::ReactivateSubscription>(ctx, id, ObjectRef::new)
            .await
    }

    /// `POST /v1/checkout`: customer ensured, then a subscription (`price`) or a payment
    /// (`amount` + `currency`); answers with what the client needs to finish paying.
    ///
    /// # Errors
    /// Neither or both of price and amount, invalid input, or the provider's error.
    pub async fn checkout(&self, ctx: &Ctx, req: Checkout) -> Result<Reply, ServiceError> {
        let plan = match (req.price.clone(), req.amount) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid(
                    "amount",
                    "give either 'price' or 'amount', not both",
                ))
            }
            (None, None) => {
                return Err(ServiceError::invalid(
                    "price",
                    "give a 'price' (subscription) or an 'amount' (one payment)",
                ))
            }
            (Some(price), None) => {
                check_trial(req.trial_days)?;
                Plan::Subscription(price)
            }
            (None, Some(a)) => {
                let currency = req.currency.as_deref().ok_or_else(|| {
                    ServiceError::invalid("currency", "currency is required with amount")
                })?;
                Plan::Payment(check_money(a, currency)?)
            }
        };
        let provider = self.pick_provider(ctx, req.provider.as_deref())?;
        let payer = Payer {
            customer: None,
            user_id: Some(req.user_id.clone()),
            email: req.email.clone(),
            name: req.name.clone(),
            provider: Some(provider.clone()),
        };
        let customer = self.resolve_payer(ctx, payer).await?;
        // The inner operation writes its own records; the checkout answer is what a retry
        // with the same key gets back.
        let inner = Ctx {
            defer_reply: true,
            ..ctx.clone()
        };
        let (mode, object) = match plan {
            Plan::Subscription(price) => {
                let r = self
                    .subscribe(
                        &inner,
                        &customer,
                        price,
                        req.trial_days,
                        &req.metadata,
                        "subscription",
                    )
                    .await?;
                ("subscription", r.body)
            }
            Plan::Payment(money) => {
                let pm = match &req.payment_method {
                    Some(pm) => Some(self.pm_provider_id(&customer, pm).await?),
                    None => None,
                };
                let charge = Charge {
                    amount: money,
                    payment_method: pm,
                    description: req.description,
                    metadata: req.metadata,
                };
                let r = self.charge(&inner, &customer, charge, "payment").await?;
                ("payment", r.body)
            }
        };
        let reply = Reply {
            status: 201,
            body: json!({
                "object": "checkout", "mode": mode, "provider": customer.provider,
                "customer": customer.view(),
                "client_secret": object["client_secret"].clone(),
                mode: object,
            }),
        };
        self.finish(
            ctx,
            Unit::new(),
            &customer.provider,
            Vec::new(),
            &Ids::default(),
            reply,
        )
        .await
    }
}
