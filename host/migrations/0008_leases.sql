-- Who does a piece of shared work (an outbox lane, the dunning retries, the webhook inbox)
-- when several hosts share one database: the owner renews its lease while it works; once
-- it expires (the host died), another host takes the work over.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
