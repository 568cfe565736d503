-- 0006_import_jobs_attempt: when the current attempt started, and how many
-- rows earlier attempts had processed, so that a resumed job's rate (and
-- ETA) read from the job row is this attempt's, not an average over the
-- time the job spent waiting for a rescue.

-- ingot:up
ALTER TABLE import_jobs
    ADD COLUMN attempt_started_at timestamptz,
    ADD COLUMN attempt_base_rows bigint NOT NULL DEFAULT 0;

-- ingot:down
ALTER TABLE import_jobs
    DROP COLUMN attempt_started_at,
    DROP COLUMN attempt_base_rows;
