-- 0006: jobs run through the queue (`JobQueue`) on whichever worker claims them, so a job's
-- upload is kept in the store (`JobUploads`), in numbered chunks, until the job ends.
CREATE TABLE job_uploads (
    job_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (job_id, seq)
);
-- A job an older build left running holds no lease and would never be claimed: it is queued
-- again (its upload is then read from the file that build left, where it still is).
UPDATE export_jobs SET state = 'queued' WHERE state = 'running' AND lease_owner IS NULL;
