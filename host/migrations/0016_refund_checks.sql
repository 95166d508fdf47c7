-- Refunds that settle later (contract 2.2): a refund recorded `pending` or
-- `requires_action` is read back from its provider until it settles. `next_check_at` is
-- when it is next read (NULL once settled, or for refunds that never needed it); `checks`
-- counts the reads so far, which sets the pause before the next one.
ALTER TABLE refunds ADD COLUMN next_check_at BIGINT;
ALTER TABLE refunds ADD COLUMN checks BIGINT NOT NULL DEFAULT 0;
CREATE INDEX refunds_due ON refunds (next_check_at) WHERE next_check_at IS NOT NULL;
