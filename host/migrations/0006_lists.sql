-- Reads and lists from payhost's own records: every list is a range scan on one of these
-- (newest first by (created_at, id), or the event log by seq).
ALTER TABLE subscriptions ADD COLUMN next_action TEXT;
-- A customer payhost keeps alone, for a provider without customers (its provider_id is
-- payhost's own id).
ALTER TABLE customers ADD COLUMN host_kept BIGINT NOT NULL DEFAULT 0;
CREATE INDEX events_by_tenant ON events (tenant, seq);
CREATE INDEX payments_list ON payments (created_at, id);
CREATE INDEX payments_by_customer ON payments (customer_id, created_at, id);
CREATE INDEX payments_by_tenant ON payments (tenant, created_at, id);
CREATE INDEX payments_by_status ON payments (status, created_at, id);
CREATE INDEX payments_by_provider ON payments (provider, created_at, id);
CREATE INDEX customers_list ON customers (created_at, id);
CREATE INDEX customers_by_tenant ON customers (tenant, created_at, id);
CREATE INDEX customers_by_user ON customers (user_id, created_at, id);
CREATE INDEX customers_by_email ON customers (email, created_at, id);
CREATE INDEX subscriptions_list ON subscriptions (created_at, id);
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_id, created_at, id);
CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at, id);
CREATE INDEX invoices_by_customer ON invoices (customer_id, created_at, id);
CREATE INDEX events_by_object ON events (object_id, seq);
CREATE INDEX events_by_time ON events (created_at, seq);
-- Prefixes of the indexes above.
DROP INDEX payments_customer;
DROP INDEX subscriptions_customer;
DROP INDEX refunds_payment;
DROP INDEX invoices_customer;
