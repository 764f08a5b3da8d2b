-- 0003: what `webriskops serve` keeps for many tenants: tenants, people (password hashes
-- only), API tokens and sessions (SHA-256 digests only), held setup tokens' expiry (the
-- token itself is sealed in `secrets`), export jobs and the status-event log.
CREATE TABLE tenants (
    name       TEXT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant        TEXT NOT NULL REFERENCES tenants (name),
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT NOT NULL REFERENCES tenants (name),
    role       TEXT NOT NULL,
    digest     TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE sessions (
    digest     TEXT PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE held_tokens (
    tenant       TEXT NOT NULL,
    provider_key TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (tenant, provider_key)
) WITHOUT ROWID;

CREATE TABLE pending_choices (
    tenant       TEXT NOT NULL,
    provider_key TEXT NOT NULL,
    choices_json TEXT NOT NULL,
    PRIMARY KEY (tenant, provider_key)
) WITHOUT ROWID;

CREATE TABLE export_jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant        TEXT NOT NULL,
    provider_key  TEXT NOT NULL,
    state         TEXT NOT NULL,
    progress_json TEXT NOT NULL,
    summary_json  TEXT,
    bundle_dir    TEXT,
    input_path    TEXT NOT NULL,
    fallback      TEXT NOT NULL DEFAULT 'auto',
    created_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX export_jobs_by_tenant ON export_jobs (tenant, created_at);

CREATE TABLE status_events (
    cursor     INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT NOT NULL,
    event_json TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX status_events_by_tenant ON status_events (tenant, cursor);
