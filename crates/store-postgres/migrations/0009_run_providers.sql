-- 0009: each run names its tracker (`provider_key`), so that a tracker's last export,
-- sync and revoke are its own, not the tenant's last run with any tracker. Runs recorded
-- before have none (NULL) and count for no tracker.
ALTER TABLE runs ADD COLUMN provider_key text;
CREATE INDEX runs_by_tenant_provider_kind ON runs (tenant, provider_key, kind, id);
