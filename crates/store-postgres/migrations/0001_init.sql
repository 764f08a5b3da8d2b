-- 0001: provider records, export ledger, run journal and sealed secrets: the SQLite
-- store's tables with PostgreSQL's types. Times are timestamptz (microseconds); JSON stays
-- text, returned byte for byte as written.

CREATE TABLE provider_records (
    tenant       text NOT NULL,
    provider_key text NOT NULL,
    record_json  text NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, provider_key)
);

-- The primary key's prefix (tenant, provider, container_id) is the index `all(scope)` reads.
CREATE TABLE ledger (
    tenant       text NOT NULL,
    provider     text NOT NULL,
    container_id text NOT NULL,
    finding_id   text NOT NULL,
    item_id      text NOT NULL,
    item_url     text,
    fingerprint  text NOT NULL,
    target       text NOT NULL,
    observed     text NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, provider, container_id, finding_id)
);

CREATE TABLE runs (
    id           bigserial PRIMARY KEY,
    tenant       text NOT NULL,
    kind         text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    summary_json text
);
CREATE INDEX runs_by_tenant_kind ON runs (tenant, kind, id);

CREATE TABLE intents (
    id          bigserial PRIMARY KEY,
    run         bigint NOT NULL REFERENCES runs (id),
    finding_id  text NOT NULL,
    action      text NOT NULL,
    recorded_at timestamptz NOT NULL,
    outcome     text,
    settled_by  bigint REFERENCES runs (id)
);
-- Only open intents are ever searched, and there are few of them.
CREATE INDEX intents_open ON intents (run) WHERE outcome IS NULL AND settled_by IS NULL;

-- Sealed by webriskops-sealing, as in the SQLite store: the key's id and origin name the
-- key a later run must provide.
CREATE TABLE secrets (
    reference  text PRIMARY KEY,
    nonce      bytea NOT NULL,
    ciphertext bytea NOT NULL,
    binding    text NOT NULL,
    created_at timestamptz NOT NULL,
    key_id     text NOT NULL,
    key_origin text NOT NULL
);
