-- Each outbox lane (an endpoint's deliveries, emails, dunning schedules) reads its own rows.
CREATE INDEX outbox_lane ON outbox (status, handler, target, next_attempt_at)
