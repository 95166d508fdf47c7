-- payhost schema, shared by both backends (the per-backend files add the event log).
-- Times are Unix seconds; money is minor units (BIGINT) with an ISO currency code.
CREATE TABLE users (
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, user_id)
);
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT,
    default_payment_method TEXT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (provider, provider_id),
    UNIQUE (tenant, user_id, provider)
);
CREATE TABLE payment_methods (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    provider TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    brand TEXT,
    last4 TEXT,
    exp_month BIGINT NOT NULL,
    exp_year BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (provider, provider_id)
);
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    provider TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    amount_refunded BIGINT NOT NULL,
    status TEXT NOT NULL,
    payment_method TEXT,
    failure_code TEXT,
    failure_message TEXT,
    description TEXT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (provider, provider_id)
);
CREATE INDEX payments_customer ON payments (customer_id);
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    provider TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    price_id TEXT NOT NULL,
    status TEXT NOT NULL,
    cancel_at_period_end BIGINT NOT NULL,
    current_period_start BIGINT NOT NULL,
    current_period_end BIGINT NOT NULL,
    trial_end BIGINT,
    canceled_at BIGINT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (provider, provider_id)
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);
CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    provider TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (provider, provider_id)
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    provider TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider_subscription_id TEXT,
    provider_payment_id TEXT,
    amount_due BIGINT NOT NULL,
    amount_paid BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    pdf_url TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (provider, provider_id)
);
CREATE INDEX invoices_customer ON invoices (customer_id);
-- The last recorded state per (provider, kind, object): "one fact, one event".
CREATE TABLE event_facts (
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (provider, kind, object_id)
);
-- Stored answers to POSTs that carried an Idempotency-Key, per API key.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
