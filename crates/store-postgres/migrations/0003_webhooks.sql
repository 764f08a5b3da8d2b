-- 0003: the webhooks `webriskops serve` registered with trackers, found by the opaque id of
-- their callback URL, and the delivery ids already accepted (a retried delivery, whichever
-- replica it reaches, is counted once). Signing secrets are sealed in `secrets`.
CREATE TABLE webhooks (
    opaque_id        text PRIMARY KEY,
    tenant           text NOT NULL,
    provider_key     text NOT NULL,
    webhook_id       text NOT NULL,
    callback_url     text NOT NULL,
    scope_id         text NOT NULL,
    created_at       timestamptz NOT NULL,
    last_delivery_at timestamptz,
    deliveries       bigint NOT NULL DEFAULT 0,
    rejected         bigint NOT NULL DEFAULT 0,
    UNIQUE (tenant, provider_key)
);

CREATE TABLE webhook_deliveries (
    opaque_id   text NOT NULL REFERENCES webhooks (opaque_id) ON DELETE CASCADE,
    delivery_id text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (opaque_id, delivery_id)
);
