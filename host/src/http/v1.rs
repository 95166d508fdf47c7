//! `/v1`: the API an application's backend calls. Each handler is one service operation;
//! POSTs go through the idempotency protocol in [`super::call::post`].

use super::call::{get, post, ApiQuery, RawBody, ReqMeta};
use super::ApiError;
use crate::app::AppState;
use crate::service::{customers, invoices, payments, subscriptions, EventFilter, Reply};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get as get_route, post as post_route};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post_route(create_customer))
        .route(
            "/v1/customers/{id}",
            get_route(get_customer).post(update_customer),
        )
        .route(
            "/v1/customers/{id}/payment_methods",
            get_route(list_payment_methods).post(attach_payment_method),
        )
        .route(
            "/v1/customers/{id}/default_payment_method",
            post_route(set_default_payment_method),
        )
        .route("/v1/customers/{id}/invoices", get_route(list_invoices))
        .route("/v1/payments", post_route(create_payment))
        .route("/v1/payments/{id}", get_route(get_payment))
        .route("/v1/payments/{id}/confirm", post_route(confirm_payment))
        .route("/v1/payments/{id}/cancel", post_route(cancel_payment))
        .route("/v1/refunds", post_route(create_refund))
        .route("/v1/refunds/{id}", get_route(get_refund))
        .route("/v1/subscriptions", post_route(create_subscription))
        .route("/v1/subscriptions/{id}", get_route(get_subscription))
        .route("/v1/subscriptions/{id}/price", post_route(change_price))
        .route(
            "/v1/subscriptions/{id}/cancel",
            post_route(cancel_subscription),
        )
        .route(
            "/v1/subscriptions/{id}/reactivate",
            post_route(reactivate_subscription),
        )
        .route("/v1/invoices/{id}", get_route(get_invoice))
        .route("/v1/checkout", post_route(checkout))
        .route("/v1/events", get_route(list_events))
}

async fn create_customer(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, req: customers::CreateCustomer| async move {
        svc.create_customer(&ctx, req).await
    })
    .await
}

async fn get_customer(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.get_customer(&ctx, &id).await
    })
    .await
}

async fn update_customer(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: customers::UpdateCustomer| async move {
            svc.update_customer(&ctx, &id, req).await
        },
    )
    .await
}

async fn attach_payment_method(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: customers::PaymentMethodRef| async move {
            svc.attach_payment_method(&ctx, &id, req).await
        },
    )
    .await
}

async fn list_payment_methods(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_payment_methods(&ctx, &id).await
    })
    .await
}

async fn set_default_payment_method(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: customers::PaymentMethodRef| async move {
            svc.set_default_payment_method(&ctx, &id, req).await
        },
    )
    .await
}

async fn list_invoices(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<invoices::ListInvoices>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.list_invoices(&ctx, &id, q).await
    })
    .await
}

async fn create_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: payments::CreatePayment| async move { svc.create_payment(&ctx, req).await },
    )
    .await
}

async fn get_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.get_payment(&ctx, &id).await
    })
    .await
}

async fn confirm_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: payments::ConfirmPayment| async move {
            svc.confirm_payment(&ctx, &id, req).await
        },
    )
    .await
}

/// A POST whose body must be empty or `{}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

async fn cancel_payment(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, _: NoFields| async move {
        svc.cancel_payment(&ctx, &id).await
    })
    .await
}

async fn create_refund(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: payments::CreateRefund| async move { svc.create_refund(&ctx, req).await },
    )
    .await
}

async fn get_refund(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, _| async move { svc.get_refund(&id).await }).await
}

async fn create_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: subscriptions::CreateSubscription| async move {
            svc.create_subscription(&ctx, req).await
        },
    )
    .await
}

async fn get_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.get_subscription(&ctx, &id).await
    })
    .await
}

async fn change_price(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: subscriptions::ChangePrice| async move {
            svc.change_price(&ctx, &id, req).await
        },
    )
    .await
}

async fn cancel_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: subscriptions::CancelSubscription| async move {
            svc.cancel_subscription(&ctx, &id, req).await
        },
    )
    .await
}

async fn reactivate_subscription(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(&s, meta, b, |svc, ctx, _: NoFields| async move {
        svc.reactivate_subscription(&ctx, &id).await
    })
    .await
}

async fn get_invoice(
    State(s): State<AppState>,
    meta: ReqMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, ctx| async move {
        svc.get_invoice(&ctx, &id).await
    })
    .await
}

async fn checkout(
    State(s): State<AppState>,
    meta: ReqMeta,
    RawBody(b): RawBody,
) -> Result<Response, ApiError> {
    post(
        &s,
        meta,
        b,
        |svc, ctx, req: subscriptions::Checkout| async move { svc.checkout(&ctx, req).await },
    )
    .await
}

async fn list_events(
    State(s): State<AppState>,
    meta: ReqMeta,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> Result<Response, ApiError> {
    get(&s, meta, |svc, _| async move {
        let body = svc.recorder().list(&filter).await?;
        Ok(Reply { status: 200, body })
    })
    .await
}
