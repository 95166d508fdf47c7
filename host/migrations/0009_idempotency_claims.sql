-- An Idempotency-Key whose first request is still running, shared by every host on one
-- database: status 0 and the time (ms) until which the claim holds (a killed host's claim
-- lapses then). NULL once the answer is stored.
ALTER TABLE idempotency_keys ADD COLUMN locked_until BIGINT;
