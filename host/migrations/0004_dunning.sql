-- Dunning: a failed payment attempted again on a schedule (days after the failure),
-- until it succeeds or the schedule ends.
CREATE TABLE dunning (
    payment_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    failed_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX dunning_due ON dunning (status, next_at);
