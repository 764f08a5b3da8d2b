-- 0002: what `webriskops serve` keeps for many tenants: tenants, people (password hashes
-- only), API tokens and sessions (SHA-256 digests only), held setup tokens' expiry (the
-- token itself is sealed in `secrets`), export jobs with their leases, and the
-- status-event log.
CREATE TABLE tenants (
    name       text PRIMARY KEY,
    created_at timestamptz NOT NULL
);

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    tenant        text NOT NULL REFERENCES tenants (name),
    email         text NOT NULL,
    role          text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);
-- E-mails are unique across tenants, compared without case.
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE api_tokens (
    id         bigserial PRIMARY KEY,
    tenant     text NOT NULL REFERENCES tenants (name),
    role       text NOT NULL,
    digest     text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

CREATE TABLE sessions (
    digest     text PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

CREATE TABLE held_tokens (
    tenant       text NOT NULL,
    provider_key text NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, provider_key)
);

CREATE TABLE pending_choices (
    tenant       text NOT NULL,
    provider_key text NOT NULL,
    choices_json text NOT NULL,
    PRIMARY KEY (tenant, provider_key)
);

-- A job is claimed under a lease (`JobQueue`): lease_owner and lease_until say who holds
-- it until when; attempts counts the claims and fences a holder after a takeover.
CREATE TABLE export_jobs (
    id            text PRIMARY KEY,
    tenant        text NOT NULL,
    provider_key  text NOT NULL,
    state         text NOT NULL,
    progress_json text NOT NULL,
    summary_json  text,
    bundle_dir    text,
    input_path    text NOT NULL,
    fallback      text NOT NULL DEFAULT 'auto',
    created_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    lease_owner   text,
    lease_until   timestamptz,
    attempts      bigint NOT NULL DEFAULT 0
);
CREATE INDEX export_jobs_by_tenant ON export_jobs (tenant, created_at);
CREATE INDEX export_jobs_claimable ON export_jobs (created_at, id)
    WHERE state IN ('queued', 'running');

-- Cursors of one tenant are handed out and committed in order: each append holds the
-- tenant's advisory lock until it commits (see the store's EventLog).
CREATE TABLE status_events (
    cursor     bigserial PRIMARY KEY,
    tenant     text NOT NULL,
    event_json text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX status_events_by_tenant ON status_events (tenant, cursor);
