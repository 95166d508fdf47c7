//! Subscriptions and checkout.

use super::customers::Who;
use super::customers::{page, NewUser};
use super::payments::Charge;
use super::{
    list, metadata_json, new_id, Ctx, Facts, Ids, PaymentService, Reply, ServiceError, Status,
};
use crate::api::fields::{is_id, Metadata, Url};
use crate::api::requests::{self, PageParams, SubscriptionFilters};
use crate::api::views::{next_action_of, CheckoutView, CustomerView, List, SubscriptionView};
use crate::store::{subscriptions, CustomerRow, Record, SubscriptionQuery, SubscriptionRow, Unit};
use payhost_plugin_api::{
    ops, CancelSubscription as CancelRequest, ChangeSubscriptionPrice, DomainEventKind,
    DomainEventReport, Money, NewSubscription, ObjectRef, Operation, Subscription,
    SubscriptionStatus,
};

fn sub_report(kind: DomainEventKind, s: &Subscription, now: i64) -> DomainEventReport {
    let mut r = DomainEventReport::new(kind, &s.id, now);
    r.customer_id = s.customer_id.clone();
    r.subscription_id = Some(s.id.clone());
    r.plan_id = Some(s.price_id.clone());
    r.status = Some(s.status.as_str().into());
    r.cancel_at_period_end = s.cancel_at_period_end;
    r.current_period_start = Some(s.current_period_start);
    r.current_period_end = Some(s.current_period_end);
    r.trial_end = s.trial_end;
    r
}

/// What a new subscription is to.
#[derive(Clone)]
struct Plan {
    price: String,
    trial_days: u32,
    return_url: Option<Url>,
    cancel_url: Option<Url>,
    metadata: Metadata,
}

fn stored_next_action(s: &Subscription) -> Option<String> {
    s.next_action
        .as_ref()
        .and_then(|a| serde_json::to_string(&next_action_of(a)).ok())
}

impl PaymentService {
    /// A checkout's answer, before what it made is added: the customer who pays.
    async fn checkout_view(
        &self,
        mode: &'static str,
        customer_id: &str,
    ) -> Result<CheckoutView, ServiceError> {
        let customer = self.owner(customer_id).await?;
        Ok(CheckoutView {
            object: "checkout",
            mode,
            provider: customer.provider.clone(),
            customer: CustomerView::from(&customer),
            client_secret: None,
            next_action: None,
            subscription: None,
            payment: None,
        })
    }

    async fn subscription(&self, ctx: &Ctx, id: &str) -> Result<SubscriptionRow, ServiceError> {
        let row = if is_id(id) {
            self.store.subscription(id, ctx.scope()).await?
        } else {
            None
        };
        row.ok_or_else(|| ServiceError::not_found("subscription", "id", id))
    }

    /// `POST /v1/subscriptions`, with an optional trial.
    ///
    /// # Errors
    /// An unknown customer, price or provider, or the provider's error.
    pub async fn create_subscription(
        &self,
        ctx: &Ctx,
        req: requests::CreateSubscription,
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let user = req.user_id.map(|user_id| NewUser {
            user_id,
            email: req.email,
            name: req.name,
            metadata: Default::default(),
        });
        let (who, _) = self
            .who_pays(
                ctx,
                req.customer.map(|c| c.into_string()),
                user,
                req.provider.map(|p| p.into_string()),
                None,
            )
            .await?;
        let plan = Plan {
            price: req.price.into_string(),
            trial_days: req.trial_days.get(),
            return_url: req.return_url,
            cancel_url: req.cancel_url,
            metadata: req.metadata,
        };
        self.subscribe_routed(ctx, who, plan, "").await
    }

    /// Creates a subscription on its route: an instance that did nothing hands over to the
    /// next; one whose outcome is unknown is answered as an error (retry with the same
    /// Idempotency-Key).
    async fn subscribe_routed(
        &self,
        ctx: &Ctx,
        who: Who,
        plan: Plan,
        step: &str,
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let (tenant, user, explicit, country) = match who {
            Who::Bound(c) => return self.subscribe(ctx, &c, plan, step).await,
            Who::User {
                tenant,
                user,
                explicit,
                country,
            } => (tenant, user, explicit, country),
        };
        let facts = crate::config::routing::Facts {
            redirect: plan.return_url.is_some(),
            metadata: plan.metadata.clone().into_map(),
            country,
            ..Default::default()
        };
        let split_key = ctx
            .call_ctx(step)
            .idempotency_key
            .unwrap_or_else(|| user.user_id.as_str().to_owned());
        let decision = self.decide(
            ctx,
            facts,
            &["subscriptions"],
            explicit.as_deref(),
            &split_key,
        )?;
        let mut tries = self.tries(&decision)?;
        while let Some((instance, here)) = tries.next(ctx) {
            let outcome = match self
                .ensure_customer_in(&here, &tenant, user.clone(), &instance)
                .await
            {
                Ok((customer, _)) => self.subscribe(&here, &customer, plan.clone(), step).await,
                Err(e) => Err(e),
            };
            if let Some(made) = tries.outcome(&instance, outcome)? {
                return Ok(made);
            }
        }
        Err(tries.exhausted())
    }

    async fn subscribe(
        &self,
        ctx: &Ctx,
        customer: &CustomerRow,
        plan: Plan,
        step: &str,
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let new = NewSubscription {
            customer_id: (!customer.host_kept).then(|| customer.provider_id.clone()),
            payer: payhost_plugin_api::Payer {
                email: Some(customer.email.clone()).filter(|e| !e.is_empty()),
                name: customer.name.clone(),
            },
            price_id: plan.price,
            trial_days: plan.trial_days,
            return_url: plan.return_url.map(Url::into_string),
            cancel_url: plan.cancel_url.map(Url::into_string),
            metadata: plan.metadata.into_map(),
        };
        let (s, emitted) = self
            .call::<ops::CreateSubscription>(&customer.provider, ctx.call_ctx(step), new)
            .await?;
        self.check_new_provider_id(Record::Subscription, &customer.provider, &s.id)
            .await?;
        let now = self.now();
        let row = SubscriptionRow {
            id: new_id("subs"),
            tenant: ctx.tenant_key(),
            customer_id: customer.id.clone(),
            provider: customer.provider.clone(),
            provider_id: s.id.clone(),
            price_id: s.price_id.clone(),
            status: s.status.clone(),
            cancel_at_period_end: s.cancel_at_period_end,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            trial_end: s.trial_end,
            canceled_at: s.canceled_at,
            next_action: stored_next_action(&s),
            metadata: metadata_json(&s.metadata),
            created_at: now,
            updated_at: now,
            synced_at: now,
        };
        let mut unit = Unit::new();
        subscriptions::insert_subscription(&mut unit, &row);
        let facts = Facts {
            own: vec![sub_report(DomainEventKind::SubscriptionCreated, &s, now)],
            emitted,
            ..Facts::default()
        };
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        let mut view = SubscriptionView::from(&row);
        view.client_secret = s
            .next_action
            .as_ref()
            .and_then(|a| a.client_secret())
            .map(str::to_owned);
        let reply = Reply {
            status: Status::Created,
            body: view,
            stored: false,
        };
        self.finish(ctx, unit, &customer.provider, facts, &ids, reply)
            .await
    }

    /// Runs a subscription operation on the provider and writes the new state with the
    /// events its change tells.
    async fn sync_subscription<O: Operation<Response = Subscription>>(
        &self,
        ctx: &Ctx,
        mut row: SubscriptionRow,
        request: O::Request,
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let (s, emitted) = self
            .call::<O>(&row.provider, ctx.call_ctx(""), request)
            .await?;
        Self::check_same_object(Record::Subscription, &row.provider, &row.provider_id, &s.id)?;
        let now = self.now();
        let mut own = Vec::new();
        let canceled = s.status == SubscriptionStatus::Canceled;
        if canceled && row.status != SubscriptionStatus::Canceled {
            own.push(sub_report(DomainEventKind::SubscriptionCancelled, &s, now));
        } else if row.status != s.status
            || row.price_id != s.price_id
            || row.cancel_at_period_end != s.cancel_at_period_end
        {
            let mut r = sub_report(DomainEventKind::SubscriptionUpdated, &s, now);
            if row.price_id != s.price_id {
                r.previous_plan_id = Some(row.price_id.clone());
            }
            own.push(r);
        }
        let facts = Facts {
            own,
            emitted,
            ..Facts::default()
        };
        row.price_id = s.price_id.clone();
        row.status = s.status.clone();
        row.cancel_at_period_end = s.cancel_at_period_end;
        row.current_period_start = s.current_period_start;
        row.current_period_end = s.current_period_end;
        row.trial_end = s.trial_end;
        row.canceled_at = s.canceled_at;
        row.next_action = stored_next_action(&s);
        row.updated_at = now;
        let mut unit = Unit::new();
        subscriptions::update_subscription(&mut unit, &row);
        let customer = self.owner(&row.customer_id).await?;
        let ids = Ids::default()
            .with(&customer.provider_id, &customer.id)
            .with(&row.provider_id, &row.id);
        let reply = Reply::ok(SubscriptionView::from(&row));
        let provider = row.provider.clone();
        self.finish(ctx, unit, &provider, facts, &ids, reply).await
    }

    /// `GET /v1/subscriptions/{id}`: payhost's record; with `refresh`, the provider's state
    /// synced first.
    ///
    /// # Errors
    /// Unknown id, or (refreshing) the provider's error.
    pub async fn get_subscription(
        &self,
        ctx: &Ctx,
        id: &str,
        refresh: bool,
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let row = self.subscription(ctx, id).await?;
        if !refresh {
            return Ok(Reply::ok(SubscriptionView::from(&row)));
        }
        let request = ObjectRef::new(&row.provider_id);
        self.sync_subscription::<ops::GetSubscription>(ctx, row, request)
            .await
    }

    /// `GET /v1/subscriptions`: newest first.
    ///
    /// # Errors
    /// An unknown cursor, or a database failure.
    pub async fn list_subscriptions(
        &self,
        ctx: &Ctx,
        f: SubscriptionFilters,
        p: &PageParams,
    ) -> Result<List<SubscriptionView>, ServiceError> {
        let q = SubscriptionQuery {
            tenant: ctx.tenant.clone(),
            customer_id: f.customer.map(|c| c.into_string()),
            status: f.status.map(|s| s.into_string()),
        };
        let rows = self.store.subscriptions(&q, &page(p)).await?;
        Ok(list(rows))
    }

    /// Refuses an operation on a subscription that has ended.
    fn check_not_canceled(row: &SubscriptionRow, what: &str) -> Result<(), ServiceError> {
        if row.status == SubscriptionStatus::Canceled {
            return Err(ServiceError::state(
                None,
                format!("subscription '{}' is canceled: it cannot {what}", row.id),
            ));
        }
        Ok(())
    }

    /// `POST /v1/subscriptions/{id}/price`: moves the subscription to another price.
    ///
    /// # Errors
    /// Unknown id or price, a canceled subscription, or the provider's error.
    pub async fn change_price(
        &self,
        ctx: &Ctx,
        id: &str,
        req: requests::ChangePrice,
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let row = self.subscription(ctx, id).await?;
        Self::check_not_canceled(&row, "change price")?;
        let request = ChangeSubscriptionPrice {
            id: row.provider_id.clone(),
            price_id: req.price.into_string(),
        };
        self.sync_subscription::<ops::ChangeSubscriptionPrice>(ctx, row, request)
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
        req: requests::CancelSubscription,
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let row = self.subscription(ctx, id).await?;
        Self::check_not_canceled(&row, "be canceled again")?;
        let request = CancelRequest {
            id: row.provider_id.clone(),
            at_period_end: req.at_period_end,
        };
        self.sync_subscription::<ops::CancelSubscription>(ctx, row, request)
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
    ) -> Result<Reply<SubscriptionView>, ServiceError> {
        let row = self.subscription(ctx, id).await?;
        Self::check_not_canceled(&row, "be reactivated")?;
        if !row.cancel_at_period_end {
            return Err(ServiceError::state(
                None,
                format!(
                    "subscription '{}' is not scheduled for cancellation: nothing to undo",
                    row.id
                ),
            ));
        }
        let request = ObjectRef::new(&row.provider_id);
        self.sync_subscription::<ops::ReactivateSubscription>(ctx, row, request)
            .await
    }

    /// `POST /v1/checkout`: customer ensured, then a subscription (`price`) or a payment
    /// (`amount` + `currency`); answers with what the client needs to finish paying.
    ///
    /// # Errors
    /// An unknown provider, or the provider's error.
    pub async fn checkout(
        &self,
        ctx: &Ctx,
        req: requests::Checkout,
    ) -> Result<Reply<CheckoutView>, ServiceError> {
        let user = NewUser {
            user_id: req.user_id,
            email: req.email,
            name: req.name,
            metadata: Default::default(),
        };
        let (who, pm) = self
            .who_pays(
                ctx,
                None,
                Some(user),
                req.provider.map(|p| p.into_string()),
                req.payment_method.as_ref().map(|p| p.as_str()),
            )
            .await?;
        // The inner operation writes its own records; the checkout answer is what a retry
        // with the same key gets back.
        let inner = ctx.inner();
        let mut status = Status::Created;
        let view = match (req.price, req.amount, req.currency) {
            (Some(price), _, _) => {
                let plan = Plan {
                    price: price.into_string(),
                    trial_days: req.trial_days.get(),
                    return_url: req.return_url,
                    cancel_url: req.cancel_url,
                    metadata: req.metadata,
                };
                let s = self
                    .subscribe_routed(&inner, who, plan, "subscription")
                    .await?
                    .body;
                let mut view = self.checkout_view("subscription", &s.customer).await?;
                view.client_secret = s.client_secret.clone();
                view.next_action = s.next_action.clone();
                view.subscription = Some(s);
                view
            }
            (None, Some(amount), Some(currency)) => {
                let charge = Charge {
                    amount: Money::new(amount.get(), currency.currency().clone()),
                    capture_method: req.capture_method,
                    payment_method: pm,
                    return_url: req.return_url,
                    cancel_url: req.cancel_url,
                    description: req.description,
                    metadata: req.metadata,
                };
                let made = self.charge(&inner, who, charge, "payment").await?;
                // A payment in doubt: the checkout's answer is not final either.
                status = made.status;
                let p = made.body;
                let mut view = self.checkout_view("payment", &p.customer).await?;
                view.client_secret = p.client_secret.clone();
                view.next_action = p.next_action.clone();
                view.payment = Some(p);
                view
            }
            // The body's rules (price, or amount and currency) were checked when it was
            // parsed.
            (None, _, _) => {
                return Err(ServiceError::invalid(
                    "price",
                    "give a 'price' (a subscription) or an 'amount' and a 'currency'",
                ))
            }
        };
        let provider = view.provider.clone();
        let reply = Reply {
            status,
            body: view,
            stored: false,
        };
        self.finish(
            ctx,
            Unit::new(),
            &provider,
            Facts::none(),
            &Ids::default(),
            reply,
        )
        .await
    }
}
