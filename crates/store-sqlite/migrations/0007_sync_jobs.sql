-- 0007: scheduled syncs and webhook follow-ups are jobs of the queue too, claimed like
-- exports (one job of a tenancy at a time). Rows written before are exports.
ALTER TABLE export_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'export';
-- At most one sync of a tenancy waits (queued, not yet claimed): a delivery or a schedule
-- tick while one waits joins it (`INSERT … ON CONFLICT DO NOTHING`).
CREATE UNIQUE INDEX export_jobs_one_waiting_sync ON export_jobs (tenant, provider_key)
    WHERE kind = 'sync' AND state = 'queued';
-- The schedule asks when a tenancy's last sync was queued.
CREATE INDEX export_jobs_syncs ON export_jobs (tenant, provider_key, created_at)
    WHERE kind = 'sync';
