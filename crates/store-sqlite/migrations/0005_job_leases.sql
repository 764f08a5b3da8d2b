-- 0005: export jobs claimed under leases (`JobQueue`): who holds the job, until when, and
-- how many claims it has had (the attempt, which fences a holder after a takeover).
-- Jobs written before this migration hold no lease and are never claimed.
ALTER TABLE export_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE export_jobs ADD COLUMN lease_until TEXT;
ALTER TABLE export_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX export_jobs_claimable ON export_jobs (state, created_at);
