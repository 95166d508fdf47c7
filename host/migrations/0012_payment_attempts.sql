-- Routing and failover: every provider call that creates a payment is an attempt, recorded
-- before the call (a crash mid-call leaves evidence) and settled with its outcome. The
-- resolver asks the same instance again, under the same idempotency key, about the
-- attempts whose outcome is unknown (`in_doubt`, or `started` by a host that died).
CREATE TABLE payment_attempts (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    instance TEXT NOT NULL,
    -- The idempotency key sent to the provider (the same on every ask).
    provider_key TEXT NOT NULL,
    -- The API request's Idempotency-Key (its stored answer marks the payment resumable).
    idem_scope TEXT,
    idem_key TEXT,
    state TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    -- What the resolver sends again and records with the answer; '{}' once settled.
    request TEXT NOT NULL,
    checks BIGINT NOT NULL,
    next_check_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (payment_id, seq)
);
CREATE INDEX payment_attempts_due ON payment_attempts (state, next_check_at);
-- The payment's attempts as its answers show them (JSON), written with each settlement.
ALTER TABLE payments ADD COLUMN attempts TEXT;
