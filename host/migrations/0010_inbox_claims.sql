-- Several hosts process the webhook inbox at once on PostgreSQL: each claims the rows it
-- works on (FOR UPDATE SKIP LOCKED) until `claimed_until` (unix seconds; 0: not claimed);
-- rows a killed host claimed come back when that passes. `claimed_by` is the lease owner
-- id of the host that claimed a row last (the one that processed it, once processed).
ALTER TABLE webhook_inbox ADD COLUMN claimed_by TEXT;
ALTER TABLE webhook_inbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
