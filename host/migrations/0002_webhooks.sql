-- The webhook inbox: every verified delivery, once per (provider, provider event id),
-- committed before the 2xx; processed asynchronously, retried with backoff.
CREATE TABLE webhook_inbox (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    processed_at BIGINT,
    UNIQUE (provider, event_id)
);
CREATE INDEX webhook_inbox_due ON webhook_inbox (status, next_attempt_at);
-- The provider time of the newest fact applied to a record: an older event never
-- overwrites a newer state.
ALTER TABLE payments ADD COLUMN synced_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN synced_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN synced_at BIGINT NOT NULL DEFAULT 0;
