-- The audit trail: every operator action and every failed authentication, appended only.
-- Each row carries the SHA-256 of its contents and of the row before it (`prev_hash`), so
-- `payhost audit verify` finds a row altered or removed. `seq` is the chain's order: a
-- host appends `seq` = last + 1, and of two hosts appending at once one retries.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at_millis BIGINT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_millis);
