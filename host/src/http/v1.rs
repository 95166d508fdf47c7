//! `/v1`: the API an application's backend calls. Each handler is one service operation,
//! annotated with what it takes and answers; `/openapi.json` is generated from these
//! annotations and the types they name. Writes go through the idempotency protocol in
//! [`super::call::post`]; reads answer from payhost's records.
//!
//! What every `/v1` operation shares (the bearer key, `X-Tenant-Id`, `Idempotency-Key` on
//! writes, the error answers) is added to the description in [`super::openapi`].

use super::call::{get, post, ApiQuery, ListQuery, RawBody, ReqMeta};
use super::ApiError;
use crate::api::fields::Id;
use crate::api::requests::{
    CancelSubscription, CapturePayment, ChangePrice, Checkout, ConfirmPayment, CreateCustomer,
    CreatePayment, CreateRefund, CreateSubscription, CustomerFilters, Empty, EventFilters,
    InvoiceFilters, PageParams, PaymentFilters, PaymentMethodBody, Refresh, RefundFilters,
    SubscriptionFilters, UpdateCustomer,
};
use crate::api::views::{
    CheckoutView, CustomerView, DeletedView, EventView, InvoiceView, List, PaymentMethodView,
    PaymentView, ProviderView, RefundView, SubscriptionView,
};
use crate::app::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(get_customer, update_customer, delete_customer))
        .routes(routes!(list_payment_methods, attach_payment_method))
        .routes(routes!(detach_payment_method))
        .routes(routes!(set_default_payment_method))
        .routes(routes!(list_customer_invoices))
        .routes(routes!(create_payment, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(confirm_payment))
        .routes(routes!(capture_payment))
        .routes(routes!(cancel_payment))
        .routes(routes!(create_refund, list_refunds))
        .routes(routes!(get_refund))
        .routes(routes!(create_subscription, list_subscriptions))
        .routes(routes!(get_subscription))
        .routes(routes!(change_price))
        .routes(routes!(cancel_subscription))
        .routes(routes!(reactivate_subscription))
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(checkout))
        .routes(routes!(list_events))
        .routes(routes!(list_providers))
}

/// The user's customer on a provider: created there when new (201), else the existing one
/// (200).
#[utoipa::path(post, path = "/v1/customers", tag = "customers",
    request_body = CreateCustomer,
    responses(
        (status = 201, description = "Created", body = CustomerView),
        (status = 200, description = "The user already had a customer on this provider", body = CustomerView),
    ))]
async fn create_customer(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: CreateCustomer| async move {
        svc.create_customer(&ctx, req).await
    })
    .await
}

/// Customers, newest first; by user or email.
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    params(PageParams, CustomerFilters),
    responses((status = 200, description = "A page", body = List<CustomerView>)))]
async fn list_customers(
    State(s): State<AppState>,
    meta: ReqMeta,
    ListQuery(page, f): ListQuery<CustomerFilters>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_customers(&ctx, f, &page).await
    })
    .await
}

/// A customer, from payhost's records (`refresh=true`: the provider's state synced first).
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = Id, Path, description = "The customer's id"), Refresh),
    responses((status = 200, description = "The customer", body = CustomerView)))]
async fn get_customer(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Refresh>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        Ok(svc.get_customer(&ctx, &id, q.refresh.get()).await?.body)
    })
    .await
}

/// Changes a customer's email, name or metadata (at the provider too).
#[utoipa::path(post, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = Id, Path, description = "The customer's id")),
    request_body = UpdateCustomer,
    responses((status = 200, description = "The customer", body = CustomerView)))]
async fn update_customer(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: UpdateCustomer| async move {
        svc.update_customer(&ctx, &id, req).await
    })
    .await
}

/// Deletes a customer: at the provider when it can, and its personal data here; payments,
/// subscriptions, refunds and invoices stay, anonymized.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = Id, Path, description = "The customer's id")),
    responses((status = 200, description = "Deleted", body = DeletedView)))]
async fn delete_customer(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, _: Empty| async move {
        svc.delete_customer(&ctx, &id).await
    })
    .await
}

/// A customer's saved payment methods (`refresh=true`: the provider's list synced first).
#[utoipa::path(get, path = "/v1/customers/{id}/payment_methods", tag = "customers",
    params(("id" = Id, Path, description = "The customer's id"), Refresh),
    responses((status = 200, description = "The methods, oldest first", body = List<PaymentMethodView>)))]
async fn list_payment_methods(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Refresh>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_payment_methods(&ctx, &id, q.refresh.get()).await
    })
    .await
}

/// Attaches a payment method (a token from the provider's client SDK) to a customer.
#[utoipa::path(post, path = "/v1/customers/{id}/payment_methods", tag = "customers",
    params(("id" = Id, Path, description = "The customer's id")),
    request_body = PaymentMethodBody,
    responses((status = 200, description = "The saved method", body = PaymentMethodView)))]
async fn attach_payment_method(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: PaymentMethodBody| async move {
        svc.attach_payment_method(&ctx, &id, req).await
    })
    .await
}

/// Detaches a saved payment method at the provider and removes it here.
#[utoipa::path(delete, path = "/v1/customers/{id}/payment_methods/{payment_method}",
    tag = "customers",
    params(
        ("id" = Id, Path, description = "The customer's id"),
        ("payment_method" = Id, Path, description = "payhost's id of the saved method"),
    ),
    responses((status = 200, description = "Detached", body = DeletedView)))]
async fn detach_payment_method(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path((id, pm)): Path<(String, String)>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, _: Empty| async move {
        svc.detach_payment_method(&ctx, &id, &pm).await
    })
    .await
}

/// Makes a method the customer's default (charged by subscriptions and dunning).
#[utoipa::path(post, path = "/v1/customers/{id}/default_payment_method", tag = "customers",
    params(("id" = Id, Path, description = "The customer's id")),
    request_body = PaymentMethodBody,
    responses((status = 200, description = "The customer", body = CustomerView)))]
async fn set_default_payment_method(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: PaymentMethodBody| async move {
        svc.set_default_payment_method(&ctx, &id, req).await
    })
    .await
}

/// A customer's invoices, newest first (`refresh=true`: pulled from the provider first).
#[utoipa::path(get, path = "/v1/customers/{id}/invoices", tag = "invoices",
    params(("id" = Id, Path, description = "The customer's id"), PageParams, Refresh),
    responses((status = 200, description = "A page", body = List<InvoiceView>)))]
async fn list_customer_invoices(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ListQuery(page, q): ListQuery<Refresh>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        let customer = Id::parse(&id).ok_or(crate::service::ServiceError::NotFound {
            what: "customer",
            param: "id",
            id,
        })?;
        let f = InvoiceFilters {
            customer: Some(customer),
            status: None,
        };
        svc.list_invoices(&ctx, f, q.refresh.get(), &page).await
    })
    .await
}

/// Creates a payment for a customer or an application user; confirmed now when a payment
/// method is given, on the first instance of its route that can take it (see the routing
/// table: `GET /admin/routing`). A declined card is recorded as a failed payment (201), not
/// an error. When the provider's answer never came (a timeout after the request left), the
/// payment is recorded `processing` with its attempt `in_doubt` and answered 202: payhost
/// asks the same instance again until it knows, and a retry with the same Idempotency-Key
/// asks at once (never another instance).
#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    request_body = CreatePayment,
    responses(
        (status = 201, description = "Created", body = PaymentView),
        (status = 202, description = "Taken, its outcome unknown yet: `processing`, the last attempt `in_doubt`", body = PaymentView),
    ))]
async fn create_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: CreatePayment| async move {
        svc.create_payment(&ctx, req).await
    })
    .await
}

/// Payments, newest first; by customer, status, provider and time.
#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    params(PageParams, PaymentFilters),
    responses((status = 200, description = "A page", body = List<PaymentView>)))]
async fn list_payments(
    State(s): State<AppState>,
    meta: ReqMeta,
    ListQuery(page, f): ListQuery<PaymentFilters>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_payments(&ctx, f, &page).await
    })
    .await
}

/// A payment, from payhost's records (`refresh=true`: the provider's state synced first).
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = Id, Path, description = "The payment's id"), Refresh),
    responses((status = 200, description = "The payment", body = PaymentView)))]
async fn get_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Refresh>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        Ok(svc.get_payment(&ctx, &id, q.refresh.get()).await?.body)
    })
    .await
}

/// Confirms a payment, optionally with the method to charge.
#[utoipa::path(post, path = "/v1/payments/{id}/confirm", tag = "payments",
    params(("id" = Id, Path, description = "The payment's id")),
    request_body(content = Option<ConfirmPayment>, description = "Optional"),
    responses((status = 200, description = "The payment", body = PaymentView)))]
async fn confirm_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: ConfirmPayment| async move {
        svc.confirm_payment(&ctx, &id, req).await
    })
    .await
}

/// Captures what a manual payment authorized, or part of it (the rest is released).
#[utoipa::path(post, path = "/v1/payments/{id}/capture", tag = "payments",
    params(("id" = Id, Path, description = "The payment's id")),
    request_body(content = Option<CapturePayment>, description = "Optional"),
    responses((status = 200, description = "The payment", body = PaymentView)))]
async fn capture_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: CapturePayment| async move {
        svc.capture_payment(&ctx, &id, req).await
    })
    .await
}

/// Cancels a payment that has not succeeded.
#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments",
    params(("id" = Id, Path, description = "The payment's id")),
    request_body(content = Option<Empty>, description = "Empty"),
    responses((status = 200, description = "The payment", body = PaymentView)))]
async fn cancel_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, _: Empty| async move {
        svc.cancel_payment(&ctx, &id).await
    })
    .await
}

/// Refunds a payment: all of what remains, or part of it.
#[utoipa::path(post, path = "/v1/refunds", tag = "refunds",
    request_body = CreateRefund,
    responses((status = 201, description = "Created", body = RefundView)))]
async fn create_refund(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: CreateRefund| async move {
        svc.create_refund(&ctx, req).await
    })
    .await
}

/// Refunds, newest first; of one payment or all (made here or at the provider).
#[utoipa::path(get, path = "/v1/refunds", tag = "refunds",
    params(PageParams, RefundFilters),
    responses((status = 200, description = "A page", body = List<RefundView>)))]
async fn list_refunds(
    State(s): State<AppState>,
    meta: ReqMeta,
    ListQuery(page, f): ListQuery<RefundFilters>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_refunds(&ctx, f, &page).await
    })
    .await
}

/// A refund, from payhost's records (`refresh=true`: read from the provider first, which
/// settles a pending refund the provider has settled).
#[utoipa::path(get, path = "/v1/refunds/{id}", tag = "refunds",
    params(("id" = Id, Path, description = "The refund's id"), Refresh),
    responses((status = 200, description = "The refund", body = RefundView)))]
async fn get_refund(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Refresh>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        Ok(svc.get_refund(&ctx, &id, q.refresh.get()).await?.body)
    })
    .await
}

/// Subscribes a customer or an application user to a price, with an optional trial.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body = CreateSubscription,
    responses((status = 201, description = "Created", body = SubscriptionView)))]
async fn create_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: CreateSubscription| async move { svc.create_subscription(&ctx, req).await },
    )
    .await
}

/// Subscriptions, newest first; by customer and status.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions",
    params(PageParams, SubscriptionFilters),
    responses((status = 200, description = "A page", body = List<SubscriptionView>)))]
async fn list_subscriptions(
    State(s): State<AppState>,
    meta: ReqMeta,
    ListQuery(page, f): ListQuery<SubscriptionFilters>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_subscriptions(&ctx, f, &page).await
    })
    .await
}

/// A subscription, from payhost's records (`refresh=true`: the provider's state synced
/// first).
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = Id, Path, description = "The subscription's id"), Refresh),
    responses((status = 200, description = "The subscription", body = SubscriptionView)))]
async fn get_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Refresh>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        Ok(svc.get_subscription(&ctx, &id, q.refresh.get()).await?.body)
    })
    .await
}

/// Moves a subscription to another price.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/price", tag = "subscriptions",
    params(("id" = Id, Path, description = "The subscription's id")),
    request_body = ChangePrice,
    responses((status = 200, description = "The subscription", body = SubscriptionView)))]
async fn change_price(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: ChangePrice| async move {
        svc.change_price(&ctx, &id, req).await
    })
    .await
}

/// Cancels a subscription now, or at the end of its period.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/cancel", tag = "subscriptions",
    params(("id" = Id, Path, description = "The subscription's id")),
    request_body(content = Option<CancelSubscription>, description = "Optional"),
    responses((status = 200, description = "The subscription", body = SubscriptionView)))]
async fn cancel_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: CancelSubscription| async move {
        svc.cancel_subscription(&ctx, &id, req).await
    })
    .await
}

/// Undoes a cancellation scheduled for the end of the period.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/reactivate", tag = "subscriptions",
    params(("id" = Id, Path, description = "The subscription's id")),
    request_body(content = Option<Empty>, description = "Empty"),
    responses((status = 200, description = "The subscription", body = SubscriptionView)))]
async fn reactivate_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, _: Empty| async move {
        svc.reactivate_subscription(&ctx, &id).await
    })
    .await
}

/// Invoices, newest first; by customer and status.
#[utoipa::path(get, path = "/v1/invoices", tag = "invoices",
    params(PageParams, InvoiceFilters),
    responses((status = 200, description = "A page", body = List<InvoiceView>)))]
async fn list_invoices(
    State(s): State<AppState>,
    meta: ReqMeta,
    ListQuery(page, f): ListQuery<InvoiceFilters>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_invoices(&ctx, f, false, &page).await
    })
    .await
}

/// An invoice, from payhost's records (`refresh=true`: the provider's state synced first).
#[utoipa::path(get, path = "/v1/invoices/{id}", tag = "invoices",
    params(("id" = Id, Path, description = "The invoice's id"), Refresh),
    responses((status = 200, description = "The invoice", body = InvoiceView)))]
async fn get_invoice(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Refresh>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        Ok(svc.get_invoice(&ctx, &id, q.refresh.get()).await?.body)
    })
    .await
}

/// Everything a checkout page needs in one call: the user's customer ensured, then a
/// subscription (`price`) or one payment (`amount` and `currency`).
#[utoipa::path(post, path = "/v1/checkout", tag = "checkout",
    request_body = Checkout,
    responses(
        (status = 201, description = "Created", body = CheckoutView),
        (status = 202, description = "Its payment's outcome is unknown yet (as `POST /v1/payments` answers 202)", body = CheckoutView),
    ))]
async fn checkout(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: Checkout| async move {
        svc.checkout(&ctx, req).await
    })
    .await
}

/// The domain event log, oldest first; by type, record and time.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(PageParams, EventFilters),
    responses((status = 200, description = "A page", body = List<EventView>)))]
async fn list_events(
    State(s): State<AppState>,
    meta: ReqMeta,
    ListQuery(page, f): ListQuery<EventFilters>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_events(&ctx, f, &page).await
    })
    .await
}

/// The provider instances configured, with their state and the tenants they serve.
#[utoipa::path(get, path = "/v1/providers", tag = "providers",
    responses((status = 200, description = "The instances", body = List<ProviderView>)))]
async fn list_providers(State(state): State<AppState>) -> Json<List<ProviderView>> {
    let c = &state.config.config;
    let rows = state
        .registry
        .instance_rows()
        .into_iter()
        .map(|r| ProviderView {
            tenants: c
                .tenants
                .iter()
                .filter(|(_, p)| **p == r.name)
                .map(|(t, _)| t.clone())
                .collect(),
            default: c.host.default_provider.as_deref() == Some(r.name.as_str()),
            name: r.name,
            plugin: r.plugin,
            version: r.version,
            capabilities: r.capabilities,
            state: r.state,
        })
        .collect();
    Json(List::new(rows, false))
}
