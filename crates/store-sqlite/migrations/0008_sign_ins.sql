-- 0008: what the sign-in pages kept in the process's memory, now in the store (the same
-- tables as PostgreSQL's migration 7).
-- Authorizations with a tracker in progress, by the digest of the value the callback
-- echoes (OAuth2 `state`, OAuth 1.0 request token). OAuth 1.0's request-token secret is
-- sealed like the secrets in `secrets` (reference `authorization:<digest>`, binding
-- `<tenant>/<provider>`); rows live minutes.
CREATE TABLE authorizations (
    digest       TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    provider_key TEXT NOT NULL,
    auth_method  TEXT,
    nonce        BLOB,
    ciphertext   BLOB,
    key_id       TEXT,
    key_origin   TEXT,
    expires_at   TEXT NOT NULL
);
-- Failed sign-ins per key (digest of an e-mail or a client address) since `since`.
CREATE TABLE sign_in_failures (
    key      TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    since    TEXT NOT NULL
);
