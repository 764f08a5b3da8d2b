-- 0010: each run names its tracker (`provider_key`), so that a tracker's last export,
-- sync and revoke are its own, not the tenant's last run with any tracker. Runs recorded
-- before have none (NULL) and count for no tracker. The same change as PostgreSQL's
-- migration 9.
ALTER TABLE runs ADD COLUMN provider_key TEXT;
CREATE INDEX runs_by_tenant_provider_kind ON runs (tenant, provider_key, kind, id);
