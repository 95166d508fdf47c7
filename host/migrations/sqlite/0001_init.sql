CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    tenant TEXT,
    provider TEXT NOT NULL,
    object_id TEXT,
    provider_object_id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- (provider, kind, object) for the facts that happen once per object; NULL for the
    -- ones whose state is tracked in event_facts.
    fact_key TEXT UNIQUE
);
CREATE INDEX events_type ON events (type, seq);
