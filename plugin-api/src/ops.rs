//! The operations: what the host asks a provider to do, each a name, the capability that
//! gates it, a request type and a response type. The list is written once, in
//! [`for_each_operation!`](crate::for_each_operation); the contract's operation types and
//! the author kit's `Provider` trait are both generated from it, so adding an operation is
//! one entry here (and a default body that answers `unsupported_operation` comes with it).

use serde::{de::DeserializeOwned, Serialize};

/// One operation: its wire name, the capability that gates it, what it takes and answers.
pub trait Operation {
    /// The name the operation travels under, e.g. `create_payment`.
    const NAME: &'static str;
    /// The capability a plugin must declare for the host to call it.
    const CAPABILITY: &'static str;
    /// The request.
    type Request: Serialize + DeserializeOwned + Send + 'static;
    /// The answer.
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

/// Calls `$callback! { ... }` with every operation of this contract version, one entry per
/// operation: its doc comment, `method_name: TypeName(capability) Request => Response;`.
///
/// The contract generates its operation types from it; the author kit generates its
/// `Provider` trait (a method per operation, each defaulting to `unsupported_operation`)
/// and the dispatch of incoming calls.
#[macro_export]
macro_rules! for_each_operation {
    ($callback:ident) => {
        $callback! {
            /// Creates the provider's customer for an application user.
            ///
            /// - Capability: `customers`.
            /// - Called by: `POST /v1/customers`, and by any payment, subscription or checkout
            ///   that names a `user_id` who has no customer on this provider yet. The host
            ///   creates one customer per (tenant, user, provider instance), once.
            /// - The host records the answer as a new customer row keyed by `id`. An `id` the
            ///   host already holds for another customer is refused (`provider_id_conflict`,
            ///   502) and nothing is written: ids must never repeat, across instances and
            ///   restarts.
            /// - Errors reach the API caller with their code and message (`invalid_request`
            ///   naming `email`, for instance).
            /// - Emit nothing: there is no customer event.
            create_customer: CreateCustomer(customers) $crate::types::NewCustomer => $crate::types::Customer;

            /// Reads a customer as the provider holds it now.
            ///
            /// - Capability: `customers`.
            /// - Called by: `GET /v1/customers/{id}?refresh=true`; the host syncs its row
            ///   (email, name, default payment method, metadata) from the answer.
            /// - An answer whose `id` differs from the one asked for is refused: the host
            ///   never writes one record's data into another.
            /// - `not_found` when the provider has no such customer.
            get_customer: GetCustomer(customers) $crate::types::ObjectRef => $crate::types::Customer;

            /// Changes a customer's email, name or metadata.
            ///
            /// - Capability: `customers`.
            /// - Called by: `POST /v1/customers/{id}`; the host syncs its row from the answer.
            update_customer: UpdateCustomer(customers) $crate::types::CustomerUpdate => $crate::types::Customer;

            /// Attaches a payment method (a token or id the client got from the provider's
            /// SDK) to a customer.
            ///
            /// - Capability: `payment_methods`.
            /// - Called by: `POST /v1/customers/{id}/payment_methods`; the host records the
            ///   method (brand, last4, expiry) and answers with its own id for it.
            /// - `not_found` (param `payment_method`) for an unknown token.
            attach_payment_method: AttachPaymentMethod(payment_methods) $crate::types::AttachPaymentMethod => $crate::types::PaymentMethod;

            /// Lists a customer's saved payment methods.
            ///
            /// - Capability: `payment_methods`.
            /// - Called by: `GET /v1/customers/{id}/payment_methods`.
            list_payment_methods: ListPaymentMethods(payment_methods) $crate::types::CustomerRef => $crate::types::PaymentMethodList;

            /// Makes a method the customer's default (charged by subscriptions and dunning).
            ///
            /// - Capability: `payment_methods`.
            /// - Called by: `POST /v1/customers/{id}/default_payment_method`; the host syncs
            ///   the customer from the answer.
            set_default_payment_method: SetDefaultPaymentMethod(payment_methods) $crate::types::SetDefaultPaymentMethod => $crate::types::Customer;

            /// Creates a one-time payment, charged at once when `payment_method` is given.
            ///
            /// - Capability: `payments` (`manual_capture` for `capture_method: manual`;
            ///   refuse a capture method you do not support with `unsupported_operation`,
            ///   param `capture_method`).
            /// - Called by: `POST /v1/payments`, `POST /v1/checkout` with an amount.
            /// - The host records the payment and derives the events from its status:
            ///   `PaymentCreated`, then `PaymentSucceeded`, `PaymentFailed` or
            ///   `PaymentAuthorized`. A declined card is an ANSWER (status `failed` with
            ///   `failure_code`), not an error: the API caller gets 201 and a failed payment.
            /// - When the buyer must act, answer `requires_action` with a `next_action`
            ///   (`redirect_to_url` with the provider's approval URL, or
            ///   `use_client_secret`); the host hands it to the API caller.
            /// - Send `ctx.idempotency_key` to the provider: the host retries with it.
            /// - Emit only what the answer does not show (e.g. a charge that completes
            ///   asynchronously on your provider's side, later, from a webhook instead).
            create_payment: CreatePayment(payments) $crate::types::NewPayment => $crate::types::Payment;

            /// Reads a payment as the provider holds it now.
            ///
            /// - Capability: `payments`.
            /// - Called by: `GET /v1/payments/{id}?refresh=true` and dunning; the host syncs
            ///   its row and records the events a status change tells.
            get_payment: GetPayment(payments) $crate::types::ObjectRef => $crate::types::Payment;

            /// Attempts a payment now (after the buyer approved a redirect, or with a method).
            ///
            /// - Capability: `payments`.
            /// - Called by: `POST /v1/payments/{id}/confirm`, and by dunning retries with the
            ///   customer's default method. For a redirect flow this is where an approved
            ///   order is captured (or authorized, for manual capture).
            /// - A decline is an answer with status `failed`; `conflict` when the payment's
            ///   state does not allow it (already succeeded, canceled, not approved yet).
            confirm_payment: ConfirmPayment(payments) $crate::types::ConfirmPayment => $crate::types::Payment;

            /// Cancels a payment that has not taken money: voids an authorization, abandons
            /// an unapproved order.
            ///
            /// - Capability: `payments`.
            /// - Called by: `POST /v1/payments/{id}/cancel`; the host records `canceled` and
            ///   a `PaymentCanceled` event.
            /// - `conflict` for a payment that already succeeded (refund it instead).
            cancel_payment: CancelPayment(payments) $crate::types::ObjectRef => $crate::types::Payment;

            /// Takes the money of an authorized payment (`requires_capture`), all or part.
            ///
            /// - Capability: `manual_capture`.
            /// - Called by: `POST /v1/payments/{id}/capture` with an optional `amount`. The
            ///   host checks the amount against what is capturable first.
            /// - Answer the payment with `succeeded` and `amount_received` the captured part;
            ///   the host records `PaymentSucceeded`.
            capture_payment: CapturePayment(manual_capture) $crate::types::CapturePayment => $crate::types::Payment;

            /// Refunds all of what remains of a payment, or part of it.
            ///
            /// - Capability: `refunds`.
            /// - Called by: `POST /v1/refunds`. The host refuses an amount above what remains
            ///   before calling (its caller gets `409 invalid_state`, param `amount`). Refuse
            ///   one that reaches you all the same — the host's count may lag the provider's
            ///   when refunds were made in the provider's dashboard: `invalid_request` (param
            ///   `amount`) or `conflict`, as your provider words it. The conformance suite
            ///   checks that you refuse with one of the two.
            /// - The host records the refund, raises the payment's `amount_refunded`, and
            ///   records `RefundProcessed` once the refund's status is `succeeded`.
            create_refund: CreateRefund(refunds) $crate::types::NewRefund => $crate::types::Refund;

            /// Reads a refund as the provider holds it now (since 2.2).
            ///
            /// - Capability: `refunds`.
            /// - Called by: the host, for every refund it holds `pending` or
            ///   `requires_action`, on a growing pause (a minute, then ten, an hour, six,
            ///   then daily) until it settles; and by `GET /v1/refunds/{id}?refresh=true`.
            ///   The host records `RefundProcessed` when it reaches `succeeded`,
            ///   `RefundFailed` when it reaches `failed` or `canceled` (and lowers the
            ///   payment's `amount_refunded` again).
            /// - `not_found` when the provider has no such refund; an answer whose `id`
            ///   differs from the one asked for is refused.
            /// - A plugin built before 2.2 answers `unsupported_operation`: its refunds settle
            ///   only through webhooks.
            get_refund: GetRefund(refunds) $crate::types::RefundRef => $crate::types::Refund;

            /// Starts a subscription to a price (plan), with an optional trial.
            ///
            /// - Capability: `subscriptions`.
            /// - Called by: `POST /v1/subscriptions`, `POST /v1/checkout` with a price.
            /// - The host records it and `SubscriptionCreated` (a welcome email follows).
            /// - What your provider cannot do (a per-subscription trial length, for one)
            ///   must be refused with `unsupported_operation` naming the reason and the
            ///   param — never silently ignored.
            /// - Emit the invoice facts the creation caused (`InvoicePaid`,
            ///   `InvoicePaymentFailed`) if your answer cannot show them.
            create_subscription: CreateSubscription(subscriptions) $crate::types::NewSubscription => $crate::types::Subscription;

            /// Reads a subscription as the provider holds it now.
            ///
            /// - Capability: `subscriptions`.
            /// - Called by: `GET /v1/subscriptions/{id}?refresh=true`; the host syncs its row
            ///   and records `SubscriptionUpdated`/`SubscriptionCancelled` for a change.
            get_subscription: GetSubscription(subscriptions) $crate::types::ObjectRef => $crate::types::Subscription;

            /// Moves a subscription to another price (plan).
            ///
            /// - Capability: `subscriptions`.
            /// - Called by: `POST /v1/subscriptions/{id}/price`; the host records
            ///   `SubscriptionUpdated` with the previous price.
            change_subscription_price: ChangeSubscriptionPrice(subscriptions) $crate::types::ChangeSubscriptionPrice => $crate::types::Subscription;

            /// Cancels a subscription now, or at the end of its period.
            ///
            /// - Capability: `subscriptions`.
            /// - Called by: `POST /v1/subscriptions/{id}/cancel`; the host records
            ///   `SubscriptionCancelled` (now) or `SubscriptionUpdated` (at period end).
            /// - No "at period end" at your provider: refuse it with `unsupported_operation`
            ///   (param `at_period_end`) rather than canceling now.
            cancel_subscription: CancelSubscription(subscriptions) $crate::types::CancelSubscription => $crate::types::Subscription;

            /// Undoes a cancellation scheduled for the end of the period.
            ///
            /// - Capability: `subscriptions`.
            /// - Called by: `POST /v1/subscriptions/{id}/reactivate`.
            /// - `conflict` when nothing is scheduled or the subscription already ended.
            reactivate_subscription: ReactivateSubscription(subscriptions) $crate::types::ObjectRef => $crate::types::Subscription;

            /// Reads an invoice.
            ///
            /// - Capability: `invoices`.
            /// - Called by: `GET /v1/invoices/{id}?refresh=true`; the host syncs its row.
            get_invoice: GetInvoice(invoices) $crate::types::ObjectRef => $crate::types::Invoice;

            /// Lists a customer's invoices, newest first, one page at a time.
            ///
            /// - Capability: `invoices`.
            /// - Called by: `GET /v1/customers/{id}/invoices?refresh=true`; the host records
            ///   every invoice on the page.
            list_invoices: ListInvoices(invoices) $crate::types::InvoiceQuery => $crate::types::InvoicePage;

            /// Checks a webhook delivery's signature and reads its envelope.
            ///
            /// - Capability: `webhooks`.
            /// - Called by: `POST /webhooks/payments/{instance}`, before anything is stored.
            ///   `invalid_signature` (missing, malformed, stale or wrong) is a 400 for the
            ///   provider and nothing is stored; an answer is stored in the inbox, once per
            ///   event id, and acknowledged with 200.
            /// - You get the raw body and every header; you may use the host's HTTP service
            ///   (to fetch a signing certificate, say) and its per-instance cache.
            verify_webhook: VerifyWebhook(webhooks) $crate::types::WebhookDelivery => $crate::types::VerifiedEvent;

            /// Turns a stored, verified event into the facts it tells.
            ///
            /// - Capability: `webhooks`.
            /// - Called by: the host's inbox processor, possibly long after the delivery and
            ///   again after a failure (so it must not depend on anything but the event).
            ///   The host syncs the records the facts name, never with a state older than
            ///   the one it holds, and records one event per fact.
            /// - Event types you have no fact for: answer no events (not an error).
            map_webhook: MapWebhook(webhooks) $crate::types::WebhookEvent => $crate::types::WebhookReports;

            /// Detaches a saved payment method from its customer (since 2.1).
            ///
            /// - Capability: `payment_methods`.
            /// - Called by: `DELETE /v1/customers/{id}/payment_methods/{pm}`; the host removes
            ///   the method from its records (and from the customer's default).
            /// - A plugin built before 2.1 answers `unsupported_operation`.
            detach_payment_method: DetachPaymentMethod(payment_methods) $crate::types::DetachPaymentMethod => $crate::types::PaymentMethod;

            /// Deletes a customer at the provider, with the personal data it holds (since 2.1).
            ///
            /// - Capability: `customers`.
            /// - Called by: `DELETE /v1/customers/{id}`: the host erases the customer's
            ///   personal data from its own records too, keeping the financial history,
            ///   anonymized. A provider that cannot delete answers `unsupported_operation`
            ///   and the host still erases its own copy.
            delete_customer: DeleteCustomer(customers) $crate::types::ObjectRef => $crate::types::Deleted;
        }
    };
}

macro_rules! define_operations {
    ($(
        $(#[$meta:meta])*
        $method:ident : $ty:ident ($cap:ident) $req:ty => $resp:ty;
    )*) => {
        $(
            $(#[$meta])*
            pub struct $ty;

            impl Operation for $ty {
                const NAME: &'static str = stringify!($method);
                const CAPABILITY: &'static str = stringify!($cap);
                type Request = $req;
                type Response = $resp;
            }
        )*

        /// Every operation of this contract version: (name, capability).
        pub const ALL: &[(&str, &str)] = &[$((stringify!($method), stringify!($cap))),*];
    };
}

crate::for_each_operation!(define_operations);

/// The contract version that added each operation after 2.0: a plugin built against an
/// older version does not know them (it answers `unsupported_operation`), and that is not
/// a broken promise.
const ADDED: &[(&str, &str)] = &[
    ("detach_payment_method", "2.1.0"),
    ("delete_customer", "2.1.0"),
    ("get_refund", "2.2.0"),
];

/// The contract version that added operation `op` ("2.0.0" for the first ones).
pub fn since(op: &str) -> &'static str {
    ADDED
        .iter()
        .find(|(name, _)| *name == op)
        .map_or("2.0.0", |(_, v)| v)
}

/// Whether a plugin built against contract `contract` knows operation `op`.
pub fn known_to(op: &str, contract: &str) -> bool {
    let parse = |v: &str| -> (u32, u32) {
        let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    parse(since(op)) <= parse(contract)
}

/// The operation answered for an instance being stopped: releases what it holds. Not
/// gated by a capability; called once, after the last call has finished.
pub const SHUTDOWN: &str = "shutdown";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::capabilities;

    #[test]
    fn every_operation_names_a_known_capability_once() {
        let mut names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
        for (name, cap) in ALL {
            assert!(capabilities::ALL.contains(cap), "{name}: {cap}");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(CreatePayment::NAME, "create_payment");
        assert_eq!(CapturePayment::CAPABILITY, capabilities::MANUAL_CAPTURE);
    }

    #[test]
    fn operations_added_later_are_unknown_to_older_plugins() {
        assert!(known_to("create_payment", "2.0.0"));
        assert!(!known_to("detach_payment_method", "2.0.0"));
        assert!(known_to("detach_payment_method", "2.1.0"));
        assert!(known_to("detach_payment_method", "2.3.1"));
        for (op, _) in ADDED {
            assert!(
                ALL.iter().any(|(name, _)| name == op),
                "{op} is an operation"
            );
        }
    }
}
