-- 0007: what the sign-in pages kept in each replica's memory, now shared by every replica.
-- Authorizations with a tracker in progress, by the digest of the value the callback
-- echoes (OAuth2 `state`, OAuth 1.0 request token): the callback may reach any replica.
-- OAuth 1.0's request-token secret is sealed like the secrets in `secrets` (reference
-- `authorization:<digest>`, binding `<tenant>/<provider>`); rows live minutes.
CREATE TABLE authorizations (
    digest       text PRIMARY KEY,
    tenant       text NOT NULL,
    provider_key text NOT NULL,
    auth_method  text,
    nonce        bytea,
    ciphertext   bytea,
    key_id       text,
    key_origin   text,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX authorizations_by_expiry ON authorizations (expires_at);
-- Failed sign-ins per key (digest of an e-mail or a client address) since `since`.
CREATE TABLE sign_in_failures (
    key      text PRIMARY KEY,
    failures integer NOT NULL,
    since    timestamptz NOT NULL
);
