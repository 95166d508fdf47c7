-- Thin webhooks (contract 2.2): a delivery that only names an object is authenticated by
-- fetching it. `fetched` keeps what the plugin fetched, handed to its mapping. When the
-- provider's id repeats for every change of the object, the plugin gives a key per change:
-- `event_id` then holds that key (deliveries are stored once per key) and `event_ref` the
-- provider's own id.
ALTER TABLE webhook_inbox ADD COLUMN event_ref TEXT;
ALTER TABLE webhook_inbox ADD COLUMN fetched TEXT;
