-- 0004: jobs run through the queue (`JobQueue`) on whichever replica claims them, so a job's
-- upload is kept in the database (`JobUploads`), in numbered chunks, until the job ends.
CREATE TABLE job_uploads (
    job_id text NOT NULL,
    seq    integer NOT NULL,
    bytes  bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);
-- A job an older build left running holds no lease and would never be claimed: it is queued
-- again (its upload is then read from the file that build left, on the replica that has it).
UPDATE export_jobs SET state = 'queued' WHERE state = 'running' AND lease_owner IS NULL;
