-- The inbox is worked oldest first: an index in that order, so taking the next rows reads
-- them off the index instead of sorting every pending row each round (31 ms per round with
-- 200,000 pending rows on SQLite, 0.3 ms with this index). It replaces the index by due
-- time, which sorted.
DROP INDEX webhook_inbox_due;
CREATE INDEX webhook_inbox_pending ON webhook_inbox (status, received_at, id);
