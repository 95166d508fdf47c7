//! The console's record pages: payments, customers and subscriptions, listed (with the
//! API's own filters) and one by one with the events about each.

use super::*;

pub async fn payments(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    const TITLE: &str = "Payments";
    let listed = match given(&q, "id") {
        Some(id) => found(s.service.get_payment(&v.ctx(), &id, false).await),
        None => match list_query::<PaymentFilters>(&q, &["customer", "status", "provider"]) {
            Ok((page, f)) => listed(s.service.list_payments(&v.ctx(), f, &page).await),
            Err(e) => Err(e),
        },
    };
    let (rows, has_more) = match listed {
        Ok(l) => l,
        Err(e) => return failed(&v, TITLE, "payments", e),
    };
    let body = html! {
        form.filters method="get" action="/console/payments" {
            (text_filter("search-id", "id", "Id", &q))
            (text_filter("search-customer", "customer", "Customer", &q))
            (text_filter("search-status", "status", "Status", &q))
            (text_filter("search-provider", "provider", "Provider", &q))
            button #search type="submit" { "Search" }
        }
        table #payments {
            thead { tr { th { "Payment" } th { "Customer" } th { "Amount" } th { "Status" } th { "Provider" } th { "Provider id" } th { "Created" } } }
            tbody {
                @for p in &rows {
                    tr id=(format!("payment-{}", p.id)) {
                        td { a href=(format!("/console/payments/{}", p.id)) { code { (p.id) } } }
                        td { (object_link(Some(&p.customer))) }
                        td.num { (money(p.amount, &p.currency)) }
                        td { (state_badge(p.status.as_str())) }
                        td { (p.provider) }
                        td { code { (p.provider_id.as_deref().unwrap_or("in doubt")) } }
                        td { (when(p.created_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.empty { "No payment matches." } }
        (next_page("/console/payments", &q, rows.last().map(|p| p.id.as_str()), has_more))
    };
    v.page(TITLE, "payments", body)
}

pub async fn payment(State(s): State<AppState>, v: View, Path(id): Path<String>) -> Page {
    match s.service.get_payment(&v.ctx(), &id, false).await {
        Ok(r) => {
            // The trace of the request that created it (kept while traces were on).
            let trace = s.service.store().payment_trace(&id).await.ok().flatten();
            let trace_id = trace.as_deref().and_then(crate::telemetry::trace_id);
            let link = trace_id.and_then(|t| s.config.config.telemetry.trace_link(t));
            let attempts = html! {
                @if let Some(t) = trace_id {
                    h2 { "Trace" }
                    p #trace {
                        "Created in trace "
                        @if let Some(href) = &link {
                            a href=(href) { code { (t) } }
                        } @else {
                            code { (t) }
                        }
                    }
                }
                h2 { "Attempts" }
                table #attempts {
                    thead { tr { th { "Attempt" } th { "Instance" } th { "State" } th { "Error" } th { "Asked again" } th { "At" } } }
                    tbody {
                        @for a in &r.body.attempts {
                            tr { td { code { (a.id) } } td { (a.provider) } td { (state_badge(&a.state)) }
                                 td { (a.error_message.as_deref().unwrap_or("—")) } td.num { (a.checks) } td { (when(a.created_at)) } }
                        }
                    }
                }
                @if r.body.attempts.is_empty() { p.empty { "Made before payhost recorded attempts." } }
            };
            record(
                &s,
                &v,
                format!("Payment {id}"),
                "payments",
                &id,
                attempts,
                r.body,
            )
            .await
        }
        Err(e) => failed(&v, "Payment", "payments", e.into()),
    }
}

pub async fn customers(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    const TITLE: &str = "Customers";
    let listed = match given(&q, "id") {
        Some(id) => found(s.service.get_customer(&v.ctx(), &id, false).await),
        None => match list_query::<CustomerFilters>(&q, &["email", "user_id", "provider"]) {
            Ok((page, f)) => listed(s.service.list_customers(&v.ctx(), f, &page).await),
            Err(e) => Err(e),
        },
    };
    let (rows, has_more) = match listed {
        Ok(l) => l,
        Err(e) => return failed(&v, TITLE, "customers", e),
    };
    let body = html! {
        form.filters method="get" action="/console/customers" {
            (text_filter("search-id", "id", "Id", &q))
            (text_filter("search-email", "email", "Email", &q))
            (text_filter("search-user", "user_id", "User id", &q))
            (text_filter("search-provider", "provider", "Provider", &q))
            button #search type="submit" { "Search" }
        }
        table #customers {
            thead { tr { th { "Customer" } th { "Email" } th { "Name" } th { "User id" } th { "Tenant" } th { "Provider" } th { "Created" } } }
            tbody {
                @for c in &rows {
                    tr id=(format!("customer-{}", c.id)) {
                        td { a href=(format!("/console/customers/{}", c.id)) { code { (c.id) } } }
                        td { (c.email) }
                        td { (c.name.as_deref().unwrap_or("—")) }
                        td { (c.user_id) }
                        td { (c.tenant.as_deref().unwrap_or("—")) }
                        td { (c.provider) }
                        td { (when(c.created_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.empty { "No customer matches." } }
        (next_page("/console/customers", &q, rows.last().map(|c| c.id.as_str()), has_more))
    };
    v.page(TITLE, "customers", body)
}

pub async fn customer(State(s): State<AppState>, v: View, Path(id): Path<String>) -> Page {
    match s.service.get_customer(&v.ctx(), &id, false).await {
        Ok(r) => {
            record(
                &s,
                &v,
                format!("Customer {id}"),
                "customers",
                &id,
                html! {},
                r.body,
            )
            .await
        }
        Err(e) => failed(&v, "Customer", "customers", e.into()),
    }
}

pub async fn subscriptions(
    State(s): State<AppState>,
    v: View,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    const TITLE: &str = "Subscriptions";
    let listed = match given(&q, "id") {
        Some(id) => found(s.service.get_subscription(&v.ctx(), &id, false).await),
        None => match list_query::<SubscriptionFilters>(&q, &["customer", "status"]) {
            Ok((page, f)) => listed(s.service.list_subscriptions(&v.ctx(), f, &page).await),
            Err(e) => Err(e),
        },
    };
    let (rows, has_more) = match listed {
        Ok(l) => l,
        Err(e) => return failed(&v, TITLE, "subscriptions", e),
    };
    let body = html! {
        form.filters method="get" action="/console/subscriptions" {
            (text_filter("search-id", "id", "Id", &q))
            (text_filter("search-customer", "customer", "Customer", &q))
            (text_filter("search-status", "status", "Status", &q))
            button #search type="submit" { "Search" }
        }
        table #subscriptions {
            thead { tr { th { "Subscription" } th { "Customer" } th { "Price" } th { "Status" } th { "Period ends" } th { "Provider" } th { "Created" } } }
            tbody {
                @for x in &rows {
                    tr id=(format!("subscription-{}", x.id)) {
                        td { a href=(format!("/console/subscriptions/{}", x.id)) { code { (x.id) } } }
                        td { (object_link(Some(&x.customer))) }
                        td { (x.price) }
                        td { (state_badge(x.status.as_str())) @if x.cancel_at_period_end { " (cancels at period end)" } }
                        td { (when(x.current_period_end)) }
                        td { (x.provider) }
                        td { (when(x.created_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.empty { "No subscription matches." } }
        (next_page("/console/subscriptions", &q, rows.last().map(|x| x.id.as_str()), has_more))
    };
    v.page(TITLE, "subscriptions", body)
}

pub async fn subscription(State(s): State<AppState>, v: View, Path(id): Path<String>) -> Page {
    match s.service.get_subscription(&v.ctx(), &id, false).await {
        Ok(r) => {
            record(
                &s,
                &v,
                format!("Subscription {id}"),
                "subscriptions",
                &id,
                html! {},
                r.body,
            )
            .await
        }
        Err(e) => failed(&v, "Subscription", "subscriptions", e.into()),
    }
}
