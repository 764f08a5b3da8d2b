-- 0004: the webhooks `webriskops serve` registered with trackers, found by the opaque id of
-- their callback URL, and the delivery ids already accepted (a retried delivery is seen
-- once). Signing secrets are sealed in `secrets`.
CREATE TABLE webhooks (
    opaque_id        TEXT PRIMARY KEY NOT NULL,
    tenant           TEXT NOT NULL,
    provider_key     TEXT NOT NULL,
    webhook_id       TEXT NOT NULL,
    callback_url     TEXT NOT NULL,
    scope_id         TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    last_delivery_at TEXT,
    deliveries       INTEGER NOT NULL DEFAULT 0,
    rejected         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant, provider_key)
) WITHOUT ROWID;

CREATE TABLE webhook_deliveries (
    opaque_id   TEXT NOT NULL REFERENCES webhooks (opaque_id) ON DELETE CASCADE,
    delivery_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (opaque_id, delivery_id)
) WITHOUT ROWID;
