"""The payment lifecycle through a client generated from payhost's /openapi.json by
openapi-python-client: every call goes through the generated functions and every answer is
parsed into the generated models (an answer the models cannot read fails, as it would for
an application). Admin calls included.

    python lifecycle.py <base-url> <api-key>    (the generated package on PYTHONPATH)
"""

import sys
import uuid

from payhost_client import AuthenticatedClient
from payhost_client.api.admin import audit, explain, plugins, routing
from payhost_client.api.customers import (
    attach_payment_method,
    create_customer,
    list_payment_methods,
    set_default_payment_method,
)
from payhost_client.api.events import list_events
from payhost_client.api.invoices import list_customer_invoices
from payhost_client.api.payments import (
    capture_payment,
    create_payment,
    get_payment,
    list_payments,
)
from payhost_client.api.refunds import create_refund, list_refunds
from payhost_client.api.subscriptions import cancel_subscription, create_subscription
from payhost_client.models import (
    CancelSubscription,
    CaptureMethod,
    CapturePayment,
    CreateCustomer,
    CreatePayment,
    CreateRefund,
    CreateSubscription,
    Currency,
    CustomerView,
    Decision,
    PaymentMethodBody,
    PaymentMethodView,
    PaymentView,
    PluginsView,
    RefundView,
    RoutingView,
    SubscriptionView,
)

steps = []


def ok(what, response, status, model):
    """The answer has `status` and parsed into `model`."""
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, model):
        sys.exit(
            f"FAIL {what}: {response.status_code} {type(parsed).__name__}: "
            f"{response.content[:400]!r}"
        )
    steps.append(what)
    print(f"ok   {what}")
    return parsed


def main():
    base, key = sys.argv[1], sys.argv[2]
    client = AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)
    run = uuid.uuid4().hex[:8]

    customer = ok(
        "create a customer",
        create_customer.sync_detailed(
            client=client,
            body=CreateCustomer(user_id=f"py-{run}", email=f"py-{run}@example.com"),
        ),
        201,
        CustomerView,
    )
    card = ok(
        "save a card",
        attach_payment_method.sync_detailed(
            customer.id, client=client, body=PaymentMethodBody(payment_method="pm_card_visa")
        ),
        200,
        PaymentMethodView,
    )
    ok(
        "make it the default",
        set_default_payment_method.sync_detailed(
            customer.id, client=client, body=PaymentMethodBody(payment_method=card.id)
        ),
        200,
        CustomerView,
    )
    methods = list_payment_methods.sync_detailed(customer.id, client=client).parsed
    assert [m.id for m in methods.data] == [card.id], methods

    payment = ok(
        "pay with it",
        create_payment.sync_detailed(
            client=client,
            body=CreatePayment(
                amount=2000, currency=Currency.USD, customer=customer.id, payment_method=card.id
            ),
            idempotency_key=f"order-{run}",
        ),
        201,
        PaymentView,
    )
    assert payment.status == "succeeded", payment
    replay = create_payment.sync_detailed(
        client=client,
        body=CreatePayment(
            amount=2000, currency=Currency.USD, customer=customer.id, payment_method=card.id
        ),
        idempotency_key=f"order-{run}",
    )
    assert replay.parsed.id == payment.id, "the same key, the same payment"
    assert replay.headers.get("idempotent-replayed") == "true"
    ok("read it back", get_payment.sync_detailed(payment.id, client=client), 200, PaymentView)

    refund = ok(
        "refund part of it",
        create_refund.sync_detailed(
            client=client, body=CreateRefund(payment=payment.id, amount=500)
        ),
        201,
        RefundView,
    )
    refunds = list_refunds.sync_detailed(client=client).parsed
    assert refund.id in [r.id for r in refunds.data], refunds
    payments = list_payments.sync_detailed(client=client).parsed
    assert payment.id in [p.id for p in payments.data], payments
    again = get_payment.sync_detailed(payment.id, client=client).parsed
    assert again.amount_refunded == 500, again

    held = ok(
        "authorize only",
        create_payment.sync_detailed(
            client=client,
            body=CreatePayment(
                amount=1200,
                currency=Currency.EUR,
                customer=customer.id,
                payment_method="pm_card_visa",
                capture_method=CaptureMethod.MANUAL,
            ),
        ),
        201,
        PaymentView,
    )
    assert held.status == "requires_capture", held
    captured = ok(
        "capture part of it",
        capture_payment.sync_detailed(held.id, client=client, body=CapturePayment(amount=1000)),
        200,
        PaymentView,
    )
    assert captured.status == "succeeded" and captured.amount_received == 1000, captured

    sub = ok(
        "subscribe",
        create_subscription.sync_detailed(
            client=client, body=CreateSubscription(price="price_basic", customer=customer.id)
        ),
        201,
        SubscriptionView,
    )
    ok(
        "cancel at period end",
        cancel_subscription.sync_detailed(
            sub.id, client=client, body=CancelSubscription(at_period_end=True)
        ),
        200,
        SubscriptionView,
    )
    invoices = list_customer_invoices.sync_detailed(customer.id, client=client)
    assert invoices.status_code == 200 and invoices.parsed is not None, invoices.content
    events = list_events.sync_detailed(client=client)
    assert events.status_code == 200 and events.parsed.data, events.content
    steps.append("invoices and events listed")

    # The operator's side: the plugins view (with its lifecycle events, one object per kind),
    # the routing table, where a payment would go, and the audit trail.
    view = ok("admin: plugins", plugins.sync_detailed(client=client), 200, PluginsView)
    assert view.instances and view.events, view
    assert all(type(e).__name__.startswith("LifecycleView") for e in view.events), view.events
    ok("admin: routing", routing.sync_detailed(client=client), 200, RoutingView)
    decision = ok(
        "admin: explain",
        explain.sync_detailed(
            client=client, body=CreatePayment(amount=700, currency=Currency.USD, user_id="u")
        ),
        200,
        Decision,
    )
    assert decision.candidates, decision
    trail = audit.sync_detailed(client=client)
    assert trail.status_code == 200 and trail.parsed is not None, trail.content
    steps.append("admin: audit")
    print(f"python client: {len(steps)} of {len(steps)} steps")


if __name__ == "__main__":
    main()
