-- The W3C traceparent of the request that created a payment, kept while traces are on: the
-- processing of its webhooks links to that span, and the console shows its trace id.
ALTER TABLE payments ADD COLUMN trace_parent TEXT;
