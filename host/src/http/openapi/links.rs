//! The links between operations: after a write answers, what its answer lets a client do
//! next (stateful clients and testers follow them).

use serde_json::{json, Value};

/// Links: after `source` answers `statuses`, these operations can use its answer.
pub(super) struct LinkSpec {
    pub(super) source: &'static str,
    pub(super) statuses: &'static [&'static str],
    pub(super) name: &'static str,
    pub(super) target: &'static str,
    pub(super) parameters: Value,
    pub(super) body: Option<Value>,
}

fn link(
    source: &'static str,
    statuses: &'static [&'static str],
    name: &'static str,
    target: &'static str,
    parameters: Value,
    body: Option<Value>,
) -> LinkSpec {
    LinkSpec {
        source,
        statuses,
        name,
        target,
        parameters,
        body,
    }
}

/// Every link: each record a write creates leads to what can be done with it.
pub(super) fn links() -> Vec<LinkSpec> {
    const CREATED: &[&str] = &["200", "201"];
    const OK: &[&str] = &["200"];
    let id = || json!({"id": "$response.body#/id"});
    let first = || json!({"id": "$response.body#/data/0/id"});
    let mut out = Vec::new();
    // Customers.
    for (target, name) in [
        ("get_customer", "GetCustomer"),
        ("update_customer", "UpdateCustomer"),
        ("list_payment_methods", "ListPaymentMethods"),
        ("attach_payment_method", "AttachPaymentMethod"),
        ("set_default_payment_method", "SetDefaultPaymentMethod"),
        ("list_customer_invoices", "ListCustomerInvoices"),
        ("delete_customer", "DeleteCustomer"),
    ] {
        out.push(link("create_customer", CREATED, name, target, id(), None));
        out.push(link("list_customers", OK, name, target, first(), None));
    }
    for (source, statuses) in [("create_customer", CREATED), ("get_customer", OK)] {
        out.push(link(
            source,
            statuses,
            "PayAsCustomer",
            "create_payment",
            json!({}),
            Some(json!({"customer": "$response.body#/id", "user_id": null})),
        ));
        out.push(link(
            source,
            statuses,
            "SubscribeCustomer",
            "create_subscription",
            json!({}),
            Some(json!({"customer": "$response.body#/id", "user_id": null})),
        ));
        out.push(link(
            source,
            statuses,
            "ListPaymentsOfCustomer",
            "list_payments",
            json!({"customer": "$response.body#/id"}),
            None,
        ));
        out.push(link(
            source,
            statuses,
            "ListInvoicesOfCustomer",
            "list_invoices",
            json!({"customer": "$response.body#/id"}),
            None,
        ));
    }
    out.push(link(
        "attach_payment_method",
        OK,
        "DetachPaymentMethod",
        "detach_payment_method",
        json!({"id": "$response.body#/customer", "payment_method": "$response.body#/id"}),
        None,
    ));
    out.push(link(
        "list_payment_methods",
        OK,
        "DetachPaymentMethod",
        "detach_payment_method",
        json!({"id": "$response.body#/data/0/customer", "payment_method": "$response.body#/data/0/id"}),
        None,
    ));
    // Payments.
    for (target, name) in [
        ("get_payment", "GetPayment"),
        ("confirm_payment", "ConfirmPayment"),
        ("capture_payment", "CapturePayment"),
        ("cancel_payment", "CancelPayment"),
    ] {
        out.push(link("create_payment", CREATED, name, target, id(), None));
        out.push(link("list_payments", OK, name, target, first(), None));
    }
    for (source, statuses) in [
        ("create_payment", CREATED),
        ("confirm_payment", OK),
        ("capture_payment", OK),
        ("get_payment", OK),
    ] {
        out.push(link(
            source,
            statuses,
            "RefundPayment",
            "create_refund",
            json!({}),
            Some(json!({"payment": "$response.body#/id"})),
        ));
        out.push(link(
            source,
            statuses,
            "ListRefundsOfPayment",
            "list_refunds",
            json!({"payment": "$response.body#/id"}),
            None,
        ));
        out.push(link(
            source,
            statuses,
            "EventsOfPayment",
            "list_events",
            json!({"object_id": "$response.body#/id"}),
            None,
        ));
    }
    // Refunds.
    out.push(link(
        "create_refund",
        CREATED,
        "GetRefund",
        "get_refund",
        id(),
        None,
    ));
    out.push(link(
        "list_refunds",
        OK,
        "GetRefund",
        "get_refund",
        first(),
        None,
    ));
    // Subscriptions.
    for (target, name) in [
        ("get_subscription", "GetSubscription"),
        ("change_price", "ChangePrice"),
        ("cancel_subscription", "CancelSubscription"),
        ("reactivate_subscription", "ReactivateSubscription"),
    ] {
        out.push(link(
            "create_subscription",
            CREATED,
            name,
            target,
            id(),
            None,
        ));
        out.push(link("list_subscriptions", OK, name, target, first(), None));
    }
    out.push(link(
        "cancel_subscription",
        OK,
        "ReactivateSubscription",
        "reactivate_subscription",
        id(),
        None,
    ));
    // Checkout.
    out.push(link(
        "checkout",
        CREATED,
        "GetCheckoutPayment",
        "get_payment",
        json!({"id": "$response.body#/payment/id"}),
        None,
    ));
    out.push(link(
        "checkout",
        CREATED,
        "GetCheckoutSubscription",
        "get_subscription",
        json!({"id": "$response.body#/subscription/id"}),
        None,
    ));
    out.push(link(
        "checkout",
        CREATED,
        "GetCheckoutCustomer",
        "get_customer",
        json!({"id": "$response.body#/customer/id"}),
        None,
    ));
    // Invoices.
    for source in ["list_invoices", "list_customer_invoices"] {
        out.push(link(source, OK, "GetInvoice", "get_invoice", first(), None));
    }
    // Events.
    out.push(link(
        "list_events",
        OK,
        "EventsAfter",
        "list_events",
        json!({"starting_after": "$response.body#/data/0/id"}),
        None,
    ));
    // Webhooks go to a provider instance by name.
    out.push(link(
        "list_providers",
        OK,
        "ProviderWebhook",
        "receive",
        json!({"provider": "$response.body#/data/0/name"}),
        None,
    ));
    // Admin: the outbox's rows can be retried, the inbox's replayed; plugins reloaded.
    out.push(link(
        "outbox_list",
        OK,
        "RetryWork",
        "outbox_retry",
        first(),
        None,
    ));
    out.push(link(
        "inbox_list",
        OK,
        "ReplayDelivery",
        "inbox_replay",
        first(),
        None,
    ));
    for (name, target) in [("ReloadPlugin", "reload"), ("StopPlugin", "stop")] {
        out.push(link(
            "plugins",
            OK,
            name,
            target,
            json!({"name": "$response.body#/plugins/0/name"}),
            None,
        ));
    }
    // From the plugins view to the operator's other views and the rescan.
    for (name, target) in [
        ("Rescan", "rescan"),
        ("Outbox", "outbox_list"),
        ("Inbox", "inbox_list"),
        ("Routing", "routing"),
        ("Audit", "audit"),
    ] {
        out.push(link("plugins", OK, name, target, json!({}), None));
    }
    // An operator's action, then what the audit trail recorded of it.
    for source in ["stop", "reload", "rescan", "outbox_retry", "inbox_replay"] {
        out.push(link(source, OK, "AuditTrail", "audit", json!({}), None));
    }
    // Where a payment to the routing table's first default instance would go.
    out.push(link(
        "routing",
        OK,
        "ExplainPayment",
        "explain",
        json!({}),
        Some(json!({"provider": "$response.body#/default/0"})),
    ));
    out
}
