-- 0001: provider records, export ledger, run journal and encrypted secrets.
-- Times are RFC 3339 UTC text with nanoseconds, so they sort as text and round-trip exactly.

CREATE TABLE provider_records (
    tenant       TEXT NOT NULL,
    provider_key TEXT NOT NULL,
    record_json  TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant, provider_key)
) WITHOUT ROWID;

-- The primary key's prefix (tenant, provider, container_id) is the index `all(scope)` reads.
CREATE TABLE ledger (
    tenant       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    container_id TEXT NOT NULL,
    finding_id   TEXT NOT NULL,
    item_id      TEXT NOT NULL,
    item_url     TEXT,
    fingerprint  TEXT NOT NULL,
    target       TEXT NOT NULL,
    observed     TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant, provider, container_id, finding_id)
) WITHOUT ROWID;

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    summary_json TEXT
);
CREATE INDEX runs_by_tenant_kind ON runs (tenant, kind, id);

CREATE TABLE intents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run         INTEGER NOT NULL REFERENCES runs (id),
    finding_id  TEXT NOT NULL,
    action      TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    outcome     TEXT,
    settled_by  INTEGER REFERENCES runs (id)
);
-- Only open intents are ever searched, and there are few of them.
CREATE INDEX intents_open ON intents (run) WHERE outcome IS NULL AND settled_by IS NULL;

CREATE TABLE secrets (
    reference  TEXT PRIMARY KEY NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    binding    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
