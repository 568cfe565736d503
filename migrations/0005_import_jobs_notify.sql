-- 0005_import_jobs_notify: wake idle workers when a job becomes runnable.
--
-- Every row that enters (or is inserted in) the queued or retryable state
-- sends NOTIFY ingot_jobs with the job id as payload. It fires inside the
-- writing transaction, so listeners hear of a job only once it is committed
-- (PostgreSQL delivers notifications at commit), whoever wrote it: enqueue,
-- a worker's release or retry, the rescuer, or an operator's SQL. Workers
-- also poll, so a missed notification only delays a job, never loses it.

-- ingot:up
CREATE FUNCTION import_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ingot_jobs', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER import_jobs_notify_insert
    AFTER INSERT ON import_jobs
    FOR EACH ROW WHEN (NEW.state IN ('queued', 'retryable'))
    EXECUTE FUNCTION import_jobs_notify();

CREATE TRIGGER import_jobs_notify_requeue
    AFTER UPDATE OF state ON import_jobs
    FOR EACH ROW WHEN (NEW.state IN ('queued', 'retryable')
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION import_jobs_notify();

-- ingot:down
DROP TRIGGER import_jobs_notify_requeue ON import_jobs;
DROP TRIGGER import_jobs_notify_insert ON import_jobs;
DROP FUNCTION import_jobs_notify();
