-- 0002: which master key sealed each secret: its fingerprint (`key_id`, 16 hex digits of a
-- SHA-256 of the key) and its origin (`env`, `file` or `given`). Rows sealed before this
-- migration keep NULL in both: their key is unknown, and a new key is still never created
-- while any secret is stored.
ALTER TABLE secrets ADD COLUMN key_id TEXT;
ALTER TABLE secrets ADD COLUMN key_origin TEXT;
