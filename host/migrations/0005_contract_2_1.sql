-- Plugin contract 2.x: what a payment received (manual capture takes part of it), how it
-- is captured, the redirect a buyer must follow, disputes; customers erased on deletion;
-- refund metadata.
ALTER TABLE payments ADD COLUMN amount_received BIGINT NOT NULL DEFAULT 0;
UPDATE payments SET amount_received = amount WHERE status = 'succeeded';
ALTER TABLE payments ADD COLUMN capture_method TEXT NOT NULL DEFAULT 'automatic';
ALTER TABLE payments ADD COLUMN next_action TEXT;
ALTER TABLE payments ADD COLUMN dispute_status TEXT;
ALTER TABLE customers ADD COLUMN deleted_at BIGINT;
ALTER TABLE refunds ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
