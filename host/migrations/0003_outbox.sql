-- The outbox: the work each new domain event owes (emails, the application's webhooks),
-- written in the same unit as the event, done at least once, recorded when done.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    handler TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    -- Unix milliseconds (retries start well under a second in tests).
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    last_status BIGINT,
    created_at BIGINT NOT NULL,
    done_at BIGINT,
    UNIQUE (event_id, handler, target)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
