/*
 * jobq.c - the import job queue on PostgreSQL: enqueue, claim, lease-fenced
 * worker writes, rescue, cancel, listing and row outcomes.
 *
 * Every statement is a single parameterised SQL command (no values are ever
 * spliced into SQL text), so each is atomic on its own and the CHECK
 * constraints of migration 0004 see consistent rows: a state change always
 * moves the lease, finished_at and attempt together.
 *
 * Job rows are read with a binary result format so the source bytea comes
 * back as raw bytes; every other column is cast to text in SQL, whose binary
 * form is its plain text, so one row parser serves claim, get and list.
 */
#include "jobq.h"
#include "clock.h"

#include "db.h"
#include "rules.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ------------------------------------------------------------------------
 * States
 */

static const char *const state_names[] = {
#define STATE_NAME(name, text) text,
    IG_JOBQ_STATES(STATE_NAME)
#undef STATE_NAME
};

const char *ig_jobq_state_name(ig_jobq_state s)
{
    if ((int)s < 0 || s >= IG_JOBQ__STATE_COUNT)
        return "?";
    return state_names[s];
}

int ig_jobq_state_parse(const char *s, ig_jobq_state *out)
{
    for (int i = 0; s != NULL && i < IG_JOBQ__STATE_COUNT; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (ig_jobq_state)i;
            return IG_OK;
        }
    }
    return IG_NOTFOUND;
}

int ig_jobq_states_parse(const char *list, unsigned *mask, ig_err *err)
{
    char buf[256], *save = NULL, *tok;

    *mask = 0;
    snprintf(buf, sizeof(buf), "%s", list);
    for (tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        ig_jobq_state st;
        if (ig_jobq_state_parse(tok, &st) != IG_OK)
            return ig_err_set(err, IG_NOTFOUND,
                              "unknown state '%s' (queued, running, "
                              "retryable, succeeded, partially_succeeded, "
                              "failed, cancelled)",
                              tok);
        *mask |= 1u << st;
    }
    return IG_OK;
}

int ig_jobq_state_is_final(ig_jobq_state s)
{
    switch (s) {
    case IG_JOBQ_QUEUED:
    case IG_JOBQ_RUNNING:
    case IG_JOBQ_RETRYABLE:
        return 0;
    case IG_JOBQ_SUCCEEDED:
    case IG_JOBQ_PARTIALLY_SUCCEEDED:
    case IG_JOBQ_FAILED:
    case IG_JOBQ_CANCELLED:
        return 1;
    case IG_JOBQ__STATE_COUNT:
    default:
        break;
    }
    return 0; /* not a state: treat as not final (callers validate) */
}

/* ------------------------------------------------------------------------
 * Backoff
 */

double ig_jobq_backoff(int attempt, double jitter)
{
    double base = 1.0;

    if (attempt < 1)
        attempt = 1;
    for (int i = 0; i < attempt && base < IG_JOBQ_BACKOFF_CAP_SECONDS; i++)
        base *= 2.0;
    if (base > IG_JOBQ_BACKOFF_CAP_SECONDS)
        base = IG_JOBQ_BACKOFF_CAP_SECONDS;
    if (!(jitter >= 0.0)) /* also catches NaN */
        jitter = 0.0;
    if (jitter >= 1.0)
        jitter = 0.999999;
    return base * (0.75 + 0.5 * jitter);
}

/* A uniform draw in [0, 1) for the backoff jitter. getrandom() is
 * thread-safe and needs no seeded global; the clock is a fallback. */
static double jitter_draw(void)
{
    uint32_t r;
    struct timespec ts;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r = (uint32_t)ts.tv_nsec * 2654435761u;
    }
    return (double)r / 4294967296.0;
}

/* ------------------------------------------------------------------------
 * Job rows
 */

/* The columns of a job row, all as text except the source (bytea). The
 * order must match enum job_col. */
#define JOB_COLS(source_expr)                                                  \
    "j.id::text, j.pipeline, j.state, j.source_name, "                         \
    "j.source_format, " source_expr                                            \
    ", j.source_bytes::text, j.options::text, "                                \
    "j.priority::text, j.attempt::text, j.max_attempts::text, j.worker_id, "   \
    "(j.cancel_requested_at IS NOT NULL)::int::text, "                         \
    "j.checkpoint_batch::text, j.checkpoint_offset::text, "                    \
    "j.checkpoint_row::text, j.total_rows::text, "                             \
    "j.rows_processed::text, j.rows_inserted::text, j.rows_updated::text, "    \
    "j.rows_unchanged::text, j.rows_skipped::text, j.rows_failed::text, "      \
    "j.last_error, j.errors::text, "                                           \
    "extract(epoch FROM j.created_at)::text, "                                 \
    "extract(epoch FROM j.updated_at)::text, "                                 \
    "extract(epoch FROM j.run_after)::text, "                                  \
    "extract(epoch FROM j.started_at)::text, "                                 \
    "extract(epoch FROM j.finished_at)::text, "                                \
    "extract(epoch FROM j.heartbeat_at)::text, "                               \
    "extract(epoch FROM j.lease_expires_at)::text, "                           \
    "extract(epoch FROM j.cancel_requested_at)::text, "                        \
    "extract(epoch FROM j.attempt_started_at)::text, "                         \
    "j.attempt_base_rows::text"

enum job_col {
    C_ID,
    C_PIPELINE,
    C_STATE,
    C_SOURCE_NAME,
    C_FORMAT,
    C_SOURCE,
    C_SOURCE_BYTES,
    C_OPTIONS,
    C_PRIORITY,
    C_ATTEMPT,
    C_MAX_ATTEMPTS,
    C_WORKER,
    C_CANCEL,
    C_CK_BATCH,
    C_CK_OFFSET,
    C_CK_ROW,
    C_TOTAL,
    C_PROCESSED,
    C_INSERTED,
    C_UPDATED,
    C_UNCHANGED,
    C_SKIPPED,
    C_FAILED,
    C_LAST_ERROR,
    C_ERRORS,
    C_CREATED,
    C_UPDATED_AT,
    C_RUN_AFTER,
    C_STARTED,
    C_FINISHED,
    C_HEARTBEAT,
    C_LEASE,
    C_CANCEL_AT,
    C_ATTEMPT_STARTED,
    C_ATTEMPT_BASE,
    C__COUNT
};

static const char *col_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static char *col_dup(const PGresult *res, int row, int col)
{
    return ig_strdup(col_str(res, row, col));
}

static long long col_ll(const PGresult *res, int row, int col, long long def)
{
    const char *s = col_str(res, row, col);
    return s ? strtoll(s, NULL, 10) : def;
}

static double col_time(const PGresult *res, int row, int col)
{
    const char *s = col_str(res, row, col);
    return s ? strtod(s, NULL) : 0.0;
}

void ig_jobq_job_free(ig_jobq_job *job)
{
    if (job == NULL)
        return;
    free(job->pipeline);
    free(job->source_name);
    free(job->format);
    free(job->source);
    free(job->options);
    free(job->worker_id);
    free(job->last_error);
    free(job->errors);
    free(job);
}

/* Build an owned job from row of a JOB_COLS result. Aborts on OOM like
 * the other bookkeeping allocations (ig_xmalloc). */
static ig_jobq_job *job_from_row(const PGresult *res, int row)
{
    ig_jobq_job *j = ig_xcalloc(1, sizeof(*j));

    j->id = col_ll(res, row, C_ID, 0);
    j->pipeline = col_dup(res, row, C_PIPELINE);
    if (ig_jobq_state_parse(col_str(res, row, C_STATE), &j->state) != IG_OK)
        j->state = IG_JOBQ_FAILED; /* impossible: the CHECK constraint */
    j->source_name = col_dup(res, row, C_SOURCE_NAME);
    j->format = col_dup(res, row, C_FORMAT);
    if (!PQgetisnull(res, row, C_SOURCE)) {
        size_t n = (size_t)PQgetlength(res, row, C_SOURCE);
        j->source = ig_xmalloc(n + 1);
        memcpy(j->source, PQgetvalue(res, row, C_SOURCE), n);
        j->source[n] = '\0';
        j->source_len = n;
    }
    j->source_bytes = col_ll(res, row, C_SOURCE_BYTES, 0);
    j->options = col_dup(res, row, C_OPTIONS);
    j->priority = (int)col_ll(res, row, C_PRIORITY, 0);
    j->attempt = (int)col_ll(res, row, C_ATTEMPT, 0);
    j->max_attempts = (int)col_ll(res, row, C_MAX_ATTEMPTS, 0);
    j->worker_id = col_dup(res, row, C_WORKER);
    j->cancel_requested = (int)col_ll(res, row, C_CANCEL, 0);
    j->checkpoint.batch = col_ll(res, row, C_CK_BATCH, 0);
    j->checkpoint.offset = col_ll(res, row, C_CK_OFFSET, 0);
    j->checkpoint.row = col_ll(res, row, C_CK_ROW, 0);
    j->total_rows = col_ll(res, row, C_TOTAL, -1);
    j->counts.processed = col_ll(res, row, C_PROCESSED, 0);
    j->counts.inserted = col_ll(res, row, C_INSERTED, 0);
    j->counts.updated = col_ll(res, row, C_UPDATED, 0);
    j->counts.unchanged = col_ll(res, row, C_UNCHANGED, 0);
    j->counts.skipped = col_ll(res, row, C_SKIPPED, 0);
    j->counts.failed = col_ll(res, row, C_FAILED, 0);
    j->last_error = col_dup(res, row, C_LAST_ERROR);
    j->errors = col_dup(res, row, C_ERRORS);
    j->created_at = col_time(res, row, C_CREATED);
    j->updated_at = col_time(res, row, C_UPDATED_AT);
    j->run_after = col_time(res, row, C_RUN_AFTER);
    j->started_at = col_time(res, row, C_STARTED);
    j->finished_at = col_time(res, row, C_FINISHED);
    j->heartbeat_at = col_time(res, row, C_HEARTBEAT);
    j->lease_expires_at = col_time(res, row, C_LEASE);
    j->cancel_requested_at = col_time(res, row, C_CANCEL_AT);
    j->attempt_started_at = col_time(res, row, C_ATTEMPT_STARTED);
    j->attempt_base_rows = col_ll(res, row, C_ATTEMPT_BASE, 0);
    if (j->worker_id != NULL) {
        j->lease.job_id = j->id;
        j->lease.attempt = j->attempt;
        snprintf(j->lease.worker_id, sizeof(j->lease.worker_id), "%s",
                 j->worker_id);
    }
    return j;
}

/* ------------------------------------------------------------------------
 * Statement helpers
 */

/* Run one parameterised statement. lengths/formats may be NULL (all text
 * parameters); binary_result selects the binary result format. IG_OK with
 * *out owned (PQclear), else the ig_db_err() code and *out NULL. */
static int run(PGconn *conn, const char *sql, int nparams,
               const char *const *values, const int *lengths,
               const int *formats, int binary_result, PGresult **out,
               const char *what, ig_err *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, values, lengths,
                                 formats, binary_result);
    ExecStatusType st = PQresultStatus(res);

    *out = NULL;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        int rc = ig_db_err(err, conn, res, "%s", what);
        PQclear(res);
        return rc;
    }
    *out = res;
    return IG_OK;
}

/* The three fence parameters $1 id, $2 worker, $3 attempt, as text. */
typedef struct fence {
    char id[24];
    char attempt[16];
} fence;

static int fence_init(fence *f, const ig_jobq_lease *lease, const char **p,
                      ig_err *err)
{
    if (lease == NULL || lease->worker_id[0] == '\0')
        return ig_err_set(err, IG_INTERNAL, "jobq: no lease given");
    snprintf(f->id, sizeof(f->id), "%lld", lease->job_id);
    snprintf(f->attempt, sizeof(f->attempt), "%d", lease->attempt);
    p[0] = f->id;
    p[1] = lease->worker_id;
    p[2] = f->attempt;
    return IG_OK;
}

#define FENCE_WHERE                                                            \
    " WHERE id = $1::bigint AND worker_id = $2 AND attempt = $3::int"          \
    " AND state = 'running'"

/* After a fenced UPDATE: IG_OK when it touched a row, IG_STATE when the
 * lease was lost. */
static int fenced_result(PGresult *res, const ig_jobq_lease *lease,
                         const char *what, ig_err *err)
{
    const char *n = PQcmdTuples(res);

    if (n[0] != '\0' && strcmp(n, "0") != 0)
        return IG_OK;
    return ig_err_set(err, IG_STATE,
                      "%s: job %lld: lease of worker %s (attempt %d) was "
                      "lost; stop working on this job",
                      what, lease->job_id, lease->worker_id, lease->attempt);
}

/* ------------------------------------------------------------------------
 * Producing
 */

int ig_jobq_enqueue(PGconn *conn, const ig_jobq_enqueue_opts *o, long long *id,
                    ig_err *err)
{
    static const char sql[] =
        "INSERT INTO import_jobs (pipeline, source_name, source_format,"
        " source, source_bytes, options, total_rows, max_attempts, priority,"
        " run_after)"
        " VALUES ($1, $2, $3, $4::bytea, $5::bigint, $6::jsonb,"
        " $7::bigint, $8::int, $9::smallint,"
        " now() + make_interval(secs => $10::float8))"
        " RETURNING id::text";
    char len[24], total[24], maxa[16], prio[16], delay[32];
    const char *p[10];
    int lengths[10] = {0};
    int formats[10] = {0};
    PGresult *res = NULL;
    int rc;

    *id = 0;
    if (o == NULL || o->pipeline == NULL)
        return ig_err_set(err, IG_INTERNAL, "enqueue: no pipeline given");
    snprintf(len, sizeof(len), "%zu", o->source_len);
    snprintf(total, sizeof(total), "%lld", o->total_rows);
    snprintf(maxa, sizeof(maxa), "%d",
             o->max_attempts > 0 ? o->max_attempts : 3);
    snprintf(prio, sizeof(prio), "%d", o->priority);
    snprintf(delay, sizeof(delay), "%.6f",
             o->delay_seconds > 0 ? o->delay_seconds : 0.0);
    p[0] = o->pipeline;
    p[1] = o->source_name;
    p[2] = o->format ? o->format : "csv";
    /* A zero-length binary value still needs a non-NULL pointer. */
    p[3] = o->source ? (const char *)o->source : "";
    lengths[3] = (int)o->source_len;
    formats[3] = 1;
    p[4] = len;
    p[5] = o->options_json ? o->options_json : "{}";
    p[6] = o->total_rows > 0 ? total : NULL;
    p[7] = maxa;
    p[8] = prio;
    p[9] = delay;
    if (o->source_len > (size_t)INT32_MAX)
        return ig_err_set(err, IG_LIMIT,
                          "enqueue: source of %zu bytes is "
                          "too large for one job",
                          o->source_len);

    rc = run(conn, sql, 10, p, lengths, formats, 0, &res,
             "enqueue into import_jobs", err);
    if (rc == IG_OK)
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------------
 * Working
 */

int ig_jobq_claim(PGconn *conn, const char *worker_id, int lease_seconds,
                  ig_jobq_job **out, ig_err *err)
{
    static const char sql[] =
        "WITH next AS MATERIALIZED ("
        "  SELECT id FROM import_jobs"
        "  WHERE state IN ('queued', 'retryable') AND run_after <= now()"
        "    AND cancel_requested_at IS NULL AND attempt < max_attempts"
        "  ORDER BY priority DESC, run_after, id"
        "  LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " UPDATE import_jobs j SET state = 'running',"
        "  attempt = j.attempt + 1, worker_id = $1,"
        "  lease_expires_at = now() + make_interval(secs => $2::float8),"
        "  heartbeat_at = now(), started_at = coalesce(j.started_at, now()),"
        "  attempt_started_at = now(), attempt_base_rows = j.rows_processed,"
        "  updated_at = now()"
        " FROM next WHERE j.id = next.id"
        " RETURNING " JOB_COLS("j.source");
    char secs[16];
    const char *p[2];
    PGresult *res = NULL;
    int rc;

    *out = NULL;
    if (worker_id == NULL || worker_id[0] == '\0' ||
        strlen(worker_id) > IG_JOBQ_WORKER_ID_MAX)
        return ig_err_set(err, IG_INTERNAL,
                          "claim: worker id must be 1..%d bytes",
                          IG_JOBQ_WORKER_ID_MAX);
    snprintf(secs, sizeof(secs), "%d", lease_seconds > 0 ? lease_seconds : 1);
    p[0] = worker_id;
    p[1] = secs;
    rc = run(conn, sql, 2, p, NULL, NULL, 1, &res, "claim from import_jobs",
             err);
    if (rc == IG_OK && PQntuples(res) == 1)
        *out = job_from_row(res, 0);
    PQclear(res);
    return rc;
}

int ig_jobq_heartbeat(PGconn *conn, const ig_jobq_lease *lease,
                      int lease_seconds, int *cancel_requested, ig_err *err)
{
    static const char sql[] =
        "UPDATE import_jobs SET"
        " lease_expires_at = now() + make_interval(secs => $4::float8),"
        " heartbeat_at = now(), updated_at = now()" FENCE_WHERE
        " RETURNING (cancel_requested_at IS NOT NULL)::int";
    fence f;
    char secs[16];
    const char *p[4];
    PGresult *res = NULL;
    int rc;

    if (cancel_requested)
        *cancel_requested = 0;
    rc = fence_init(&f, lease, p, err);
    if (rc != IG_OK)
        return rc;
    snprintf(secs, sizeof(secs), "%d", lease_seconds > 0 ? lease_seconds : 1);
    p[3] = secs;
    rc = run(conn, sql, 4, p, NULL, NULL, 0, &res, "heartbeat", err);
    if (rc == IG_OK)
        rc = fenced_result(res, lease, "heartbeat", err);
    if (rc == IG_OK && cancel_requested)
        *cancel_requested = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
    PQclear(res);
    return rc;
}

/* Format the six counters as text parameters into bufs, pointing p at
 * them; counts NULL gives six NULL parameters ("keep"). */
static void counts_params(const ig_jobq_counts *c, char bufs[6][24],
                          const char **p)
{
    long long v[6];

    if (c == NULL) {
        for (int i = 0; i < 6; i++)
            p[i] = NULL;
        return;
    }
    v[0] = c->processed;
    v[1] = c->inserted;
    v[2] = c->updated;
    v[3] = c->unchanged;
    v[4] = c->skipped;
    v[5] = c->failed;
    for (int i = 0; i < 6; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "%lld", v[i]);
        p[i] = bufs[i];
    }
}

int ig_jobq_checkpoint(PGconn *conn, const ig_jobq_lease *lease,
                       const ig_jobq_position *pos,
                       const ig_jobq_counts *counts, ig_err *err)
{
    static const char sql[] =
        "UPDATE import_jobs SET checkpoint_batch = $4::bigint,"
        " checkpoint_offset = $5::bigint, checkpoint_row = $6::bigint,"
        " rows_processed = $7::bigint, rows_inserted = $8::bigint,"
        " rows_updated = $9::bigint, rows_unchanged = $10::bigint,"
        " rows_skipped = $11::bigint, rows_failed = $12::bigint,"
        " updated_at = now()" FENCE_WHERE;
    static const ig_jobq_counts zero;
    fence f;
    char pb[3][24], cb[6][24];
    const char *p[12];
    PGresult *res = NULL;
    int rc;

    rc = fence_init(&f, lease, p, err);
    if (rc != IG_OK)
        return rc;
    if (pos == NULL)
        return ig_err_set(err, IG_INTERNAL, "checkpoint: no position");
    snprintf(pb[0], sizeof(pb[0]), "%lld", pos->batch);
    snprintf(pb[1], sizeof(pb[1]), "%lld", pos->offset);
    snprintf(pb[2], sizeof(pb[2]), "%lld", pos->row);
    p[3] = pb[0];
    p[4] = pb[1];
    p[5] = pb[2];
    counts_params(counts ? counts : &zero, cb, p + 6);
    rc = run(conn, sql, 12, p, NULL, NULL, 0, &res, "checkpoint", err);
    if (rc == IG_OK)
        rc = fenced_result(res, lease, "checkpoint", err);
    PQclear(res);
    return rc;
}

int ig_jobq_finish(PGconn *conn, const ig_jobq_lease *lease,
                   ig_jobq_state final, const ig_jobq_counts *counts,
                   const char *last_error, ig_err *err)
{
    static const char sql[] =
        "UPDATE import_jobs SET state = $4, finished_at = now(),"
        " worker_id = NULL, lease_expires_at = NULL,"
        " rows_processed = coalesce($5::bigint, rows_processed),"
        " rows_inserted = coalesce($6::bigint, rows_inserted),"
        " rows_updated = coalesce($7::bigint, rows_updated),"
        " rows_unchanged = coalesce($8::bigint, rows_unchanged),"
        " rows_skipped = coalesce($9::bigint, rows_skipped),"
        " rows_failed = coalesce($10::bigint, rows_failed),"
        " last_error = coalesce($11, last_error),"
        " updated_at = now()" FENCE_WHERE;
    fence f;
    char cb[6][24];
    const char *p[11];
    PGresult *res = NULL;
    int rc;

    if (!ig_jobq_state_is_final(final))
        return ig_err_set(err, IG_INTERNAL,
                          "finish: '%s' is not a final "
                          "state",
                          ig_jobq_state_name(final));
    rc = fence_init(&f, lease, p, err);
    if (rc != IG_OK)
        return rc;
    p[3] = ig_jobq_state_name(final);
    counts_params(counts, cb, p + 4);
    p[10] = last_error;
    rc = run(conn, sql, 11, p, NULL, NULL, 0, &res, "finish", err);
    if (rc == IG_OK)
        rc = fenced_result(res, lease, "finish", err);
    PQclear(res);
    return rc;
}

/* Whether a failed attempt is retried; spelled once for the three SET
 * clauses of fail_or_retry. */
#define RETRY_COND                                                             \
    "($4::bool AND attempt < max_attempts AND cancel_requested_at IS NULL)"

int ig_jobq_fail_or_retry(PGconn *conn, const ig_jobq_lease *lease,
                          const char *error, int transient,
                          ig_jobq_state *new_state, ig_err *err)
{
    static const char sql[] =
        "UPDATE import_jobs SET"
        " state = CASE WHEN " RETRY_COND " THEN 'retryable' ELSE 'failed' END,"
        " run_after = CASE WHEN " RETRY_COND
        "   THEN now() + make_interval(secs => $6::float8) ELSE run_after END,"
        " finished_at = CASE WHEN " RETRY_COND " THEN NULL ELSE now() END,"
        " worker_id = NULL, lease_expires_at = NULL, last_error = $5,"
        " errors = errors || jsonb_build_array(jsonb_build_object("
        "   'attempt', attempt, 'at', now(), 'error', $5::text)),"
        " updated_at = now()" FENCE_WHERE " RETURNING state";
    fence f;
    char delay[32];
    const char *p[6];
    PGresult *res = NULL;
    int rc;

    rc = fence_init(&f, lease, p, err);
    if (rc != IG_OK)
        return rc;
    snprintf(delay, sizeof(delay), "%.3f",
             ig_jobq_backoff(lease->attempt, jitter_draw()));
    p[3] = transient ? "true" : "false";
    p[4] = error ? error : "unknown error";
    p[5] = delay;
    rc = run(conn, sql, 6, p, NULL, NULL, 0, &res, "fail_or_retry", err);
    if (rc == IG_OK)
        rc = fenced_result(res, lease, "fail_or_retry", err);
    if (rc == IG_OK && new_state != NULL &&
        ig_jobq_state_parse(PQgetvalue(res, 0, 0), new_state) != IG_OK)
        *new_state = IG_JOBQ_FAILED;
    PQclear(res);
    return rc;
}

int ig_jobq_release(PGconn *conn, const ig_jobq_lease *lease,
                    ig_jobq_state *new_state, ig_err *err)
{
    static const char sql[] =
        "UPDATE import_jobs SET"
        " state = CASE WHEN cancel_requested_at IS NULL"
        "   THEN 'queued' ELSE 'cancelled' END,"
        " attempt = CASE WHEN cancel_requested_at IS NULL"
        "   THEN attempt - 1 ELSE attempt END,"
        " finished_at = CASE WHEN cancel_requested_at IS NULL"
        "   THEN NULL ELSE now() END,"
        " last_error = CASE WHEN cancel_requested_at IS NULL"
        "   THEN last_error ELSE 'cancelled at a batch boundary' END,"
        " run_after = now(), worker_id = NULL, lease_expires_at = NULL,"
        " updated_at = now()" FENCE_WHERE " RETURNING state";
    fence f;
    const char *p[3];
    PGresult *res = NULL;
    int rc;

    rc = fence_init(&f, lease, p, err);
    if (rc != IG_OK)
        return rc;
    rc = run(conn, sql, 3, p, NULL, NULL, 0, &res, "release", err);
    if (rc == IG_OK)
        rc = fenced_result(res, lease, "release", err);
    if (rc == IG_OK && new_state != NULL &&
        ig_jobq_state_parse(PQgetvalue(res, 0, 0), new_state) != IG_OK)
        *new_state = IG_JOBQ_QUEUED;
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------------
 * Housekeeping
 */

/* live[0..n) as a PostgreSQL bigint[] literal. Owned. */
static char *id_array(const long long *live, size_t n)
{
    char *out = ig_xmalloc(n * 21 + 3);
    size_t len = 0;

    out[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(out + len, "%s%lld", i ? "," : "", live[i]);
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

int ig_jobq_rescue(PGconn *conn, const long long *live, size_t nlive,
                   long long *count, ig_err *err)
{
    /* The lease expiry itself was the delay, so a rescued job is runnable
     * at once. Column references on the right-hand side see the old row. */
    static const char sql[] =
        "UPDATE import_jobs SET"
        " state = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'"
        "   WHEN attempt < max_attempts THEN 'retryable' ELSE 'failed' END,"
        " finished_at = CASE WHEN cancel_requested_at IS NULL"
        "   AND attempt < max_attempts THEN NULL ELSE now() END,"
        " last_error = CASE WHEN cancel_requested_at IS NOT NULL"
        "   THEN last_error"
        "   WHEN attempt < max_attempts THEN format("
        "     'lease expired (worker died?) on attempt %s', attempt)"
        "   ELSE format("
        "     'lease expired (worker died?) after %s attempts', attempt) END,"
        " errors = errors || jsonb_build_array(jsonb_build_object("
        "   'attempt', attempt, 'at', now(), 'error', format("
        "     'lease of worker %s expired (worker died?)', worker_id))),"
        " run_after = now(), worker_id = NULL, lease_expires_at = NULL,"
        " updated_at = now()"
        " WHERE state = 'running' AND lease_expires_at < now()"
        "   AND id <> ALL ($1::bigint[])";
    PGresult *res = NULL;
    char *ids = id_array(live, live ? nlive : 0);
    const char *p[1] = {ids};
    int rc;

    if (count)
        *count = 0;
    rc = run(conn, sql, 1, p, NULL, NULL, 0, &res, "rescue expired leases",
             err);
    free(ids);
    if (rc == IG_OK && count)
        *count = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

int ig_jobq_cancel(PGconn *conn, long long id, ig_jobq_cancel_result *result,
                   ig_jobq_state *state, ig_err *err)
{
    /* cur locks the row and reports the state before; upd changes it
     * unless it is already final. */
    static const char sql[] =
        "WITH cur AS (SELECT id, state FROM import_jobs WHERE id = $1::bigint"
        "   FOR UPDATE),"
        " upd AS (UPDATE import_jobs j SET"
        "   state = CASE WHEN cur.state = 'running' THEN j.state"
        "     ELSE 'cancelled' END,"
        "   finished_at = CASE WHEN cur.state = 'running' THEN j.finished_at"
        "     ELSE now() END,"
        "   cancel_requested_at = coalesce(j.cancel_requested_at, now()),"
        "   updated_at = now()"
        "   FROM cur WHERE j.id = cur.id"
        "     AND cur.state IN ('queued', 'retryable', 'running')"
        "   RETURNING j.state)"
        " SELECT cur.state FROM cur";
    char idbuf[24];
    const char *p[1];
    PGresult *res = NULL;
    ig_jobq_state before = IG_JOBQ_FAILED, after = IG_JOBQ_FAILED;
    ig_jobq_cancel_result r = IG_JOBQ_CANCEL_FINISHED;
    int rc;

    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    p[0] = idbuf;
    rc = run(conn, sql, 1, p, NULL, NULL, 0, &res, "cancel", err);
    if (rc != IG_OK)
        goto out;
    if (PQntuples(res) == 0) {
        rc = ig_err_set(err, IG_NOTFOUND, "no job %lld", id);
        goto out;
    }
    if (ig_jobq_state_parse(PQgetvalue(res, 0, 0), &before) != IG_OK) {
        rc = ig_err_set(err, IG_INTERNAL,
                        "cancel: job %lld has an unknown "
                        "state",
                        id);
        goto out;
    }
    switch (before) {
    case IG_JOBQ_QUEUED:
    case IG_JOBQ_RETRYABLE:
        r = IG_JOBQ_CANCEL_DONE;
        after = IG_JOBQ_CANCELLED;
        break;
    case IG_JOBQ_RUNNING:
        r = IG_JOBQ_CANCEL_REQUESTED;
        after = IG_JOBQ_RUNNING;
        break;
    case IG_JOBQ_SUCCEEDED:
    case IG_JOBQ_PARTIALLY_SUCCEEDED:
    case IG_JOBQ_FAILED:
    case IG_JOBQ_CANCELLED:
        r = IG_JOBQ_CANCEL_FINISHED;
        after = before;
        break;
    case IG_JOBQ__STATE_COUNT:
    default:
        rc = ig_err_set(err, IG_INTERNAL, "cancel: bad state");
        goto out;
    }
    if (result)
        *result = r;
    if (state)
        *state = after;
out:
    PQclear(res);
    return rc;
}

int ig_jobq_get(PGconn *conn, long long id, ig_jobq_job **out, ig_err *err)
{
    static const char sql[] =
        "SELECT " JOB_COLS("NULL::bytea") " FROM import_jobs j"
                                          " WHERE j.id = $1::bigint";
    char idbuf[24];
    const char *p[1];
    PGresult *res = NULL;
    int rc;

    *out = NULL;
    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    p[0] = idbuf;
    rc = run(conn, sql, 1, p, NULL, NULL, 1, &res, "get job", err);
    if (rc == IG_OK && PQntuples(res) == 0)
        rc = ig_err_set(err, IG_NOTFOUND, "no job %lld", id);
    if (rc == IG_OK)
        *out = job_from_row(res, 0);
    PQclear(res);
    return rc;
}

/* "{queued,running}" for a state bitmask; NULL when 0 (any state). */
static char *states_array(unsigned states)
{
    char buf[256];
    size_t len = 0;

    if (states == 0)
        return NULL;
    buf[len++] = '{';
    for (int i = 0; i < IG_JOBQ__STATE_COUNT; i++) {
        if (states & (1u << i))
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                    len > 1 ? "," : "", state_names[i]);
    }
    snprintf(buf + len, sizeof(buf) - len, "}");
    return ig_xstrdup(buf);
}

int ig_jobq_list(PGconn *conn, const ig_jobq_filter *filter,
                 ig_jobq_job ***jobs, size_t *n, ig_err *err)
{
    /* Identity ids grow with created_at, so id DESC is newest first and
     * walks the primary key. */
    static const char sql[] = "SELECT " JOB_COLS(
        "NULL::bytea") " FROM import_jobs j"
                       " WHERE ($1::text[] IS NULL OR j.state = ANY "
                       "($1::text[]))"
                       "   AND ($2::text IS NULL OR j.pipeline = $2)"
                       " ORDER BY j.id DESC LIMIT $3::bigint OFFSET $4::bigint";
    static const ig_jobq_filter none;
    const ig_jobq_filter *f = filter ? filter : &none;
    char *states = NULL;
    char lim[24], off[24];
    const char *p[4];
    PGresult *res = NULL;
    int rc;

    *jobs = NULL;
    *n = 0;
    states = states_array(f->states);
    snprintf(lim, sizeof(lim), "%ld", f->limit > 0 ? f->limit : 50);
    snprintf(off, sizeof(off), "%ld", f->offset > 0 ? f->offset : 0);
    p[0] = states;
    p[1] = f->pipeline;
    p[2] = lim;
    p[3] = off;
    rc = run(conn, sql, 4, p, NULL, NULL, 1, &res, "list jobs", err);
    if (rc == IG_OK && PQntuples(res) > 0) {
        size_t rows = (size_t)PQntuples(res);
        *jobs = ig_xcalloc(rows, sizeof(**jobs));
        for (size_t i = 0; i < rows; i++)
            (*jobs)[i] = job_from_row(res, (int)i);
        *n = rows;
    }
    PQclear(res);
    free(states);
    return rc;
}

void ig_jobq_jobs_free(ig_jobq_job **jobs, size_t n)
{
    if (jobs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        ig_jobq_job_free(jobs[i]);
    free(jobs);
}

int ig_jobq_prune(PGconn *conn, double older_than_seconds, long long *count,
                  ig_err *err)
{
    static const char sql[] =
        "DELETE FROM import_jobs"
        " WHERE finished_at < now() - make_interval(secs => $1::float8)";
    char secs[32];
    const char *p[1];
    PGresult *res = NULL;
    int rc;

    if (count)
        *count = 0;
    snprintf(secs, sizeof(secs), "%.3f",
             older_than_seconds > 0 ? older_than_seconds : 0.0);
    p[0] = secs;
    rc = run(conn, sql, 1, p, NULL, NULL, 0, &res, "prune finished jobs", err);
    if (rc == IG_OK && count)
        *count = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

int ig_jobq_count_by_state(PGconn *conn,
                           long long counts[IG_JOBQ__STATE_COUNT], ig_err *err)
{
    static const char sql[] =
        "SELECT state, count(*) FROM import_jobs GROUP BY state";
    PGresult *res = NULL;
    int rc;

    for (int i = 0; i < IG_JOBQ__STATE_COUNT; i++)
        counts[i] = 0;
    rc = run(conn, sql, 0, NULL, NULL, NULL, 0, &res, "count jobs by state",
             err);
    for (int i = 0; rc == IG_OK && i < PQntuples(res); i++) {
        ig_jobq_state st;
        if (ig_jobq_state_parse(PQgetvalue(res, i, 0), &st) == IG_OK)
            counts[st] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    }
    PQclear(res);
    return rc;
}

/* ------------------------------------------------------------------------
 * Row outcomes
 */

/* A growing byte buffer for COPY data. */
typedef struct copybuf {
    char *data;
    size_t len, cap;
} copybuf;

static void cb_put(copybuf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n)
            cap *= 2;
        b->data = ig_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* Append one COPY text-format field: \N for NULL, otherwise the text with
 * backslash, tab, newline and carriage return escaped. sep is the byte
 * that follows (tab or newline). */
static void cb_field(copybuf *b, const char *s, char sep)
{
    char *clean = NULL;

    if (s == NULL) {
        cb_put(b, "\\N", 2);
    } else {
        const char *run_start;
        size_t n;
        /* A text column takes valid UTF-8 only: one bad byte in a message
         * would fail the COPY of every result of the batch. */
        clean = ig_utf8_scrub(s, strlen(s), &n);
        if (clean != NULL)
            s = clean;
        run_start = s;
        for (; *s; s++) {
            const char *esc = NULL;
            switch (*s) {
            case '\\':
                esc = "\\\\";
                break;
            case '\t':
                esc = "\\t";
                break;
            case '\n':
                esc = "\\n";
                break;
            case '\r':
                esc = "\\r";
                break;
            default:
                break;
            }
            if (esc != NULL) {
                cb_put(b, run_start, (size_t)(s - run_start));
                cb_put(b, esc, 2);
                run_start = s + 1;
            }
        }
        cb_put(b, run_start, (size_t)(s - run_start));
    }
    free(clean);
    cb_put(b, &sep, 1);
}

static void cb_number(copybuf *b, long long v, int null_if_zero, char sep)
{
    char num[24];

    if (null_if_zero && v == 0) {
        cb_field(b, NULL, sep);
        return;
    }
    snprintf(num, sizeof(num), "%lld", v);
    cb_field(b, num, sep);
}

static void cb_result(copybuf *b, long long job_id, const ig_jobq_result *r)
{
    cb_number(b, job_id, 0, '\t');
    cb_number(b, r->source_row, 0, '\t');
    cb_number(b, r->seq, 0, '\t');
    cb_number(b, r->source_line, 1, '\t');
    cb_field(b, r->outcome == IG_JOBQ_OUTCOME_SKIPPED ? "skipped" : "failed",
             '\t');
    cb_field(b, r->target, '\t');
    cb_field(b, r->column, '\t');
    cb_field(b, r->code ? r->code : "", '\t');
    cb_field(b, r->constraint_name, '\t');
    cb_field(b, r->message ? r->message : "", '\t');
    cb_field(b, r->source_values, '\n');
}

/* Collect every result of a finished COPY; IG_OK when the last one is
 * COMMAND_OK. Leaves the connection idle (or in the failed transaction). */
static int copy_finish(PGconn *conn, ig_err *err)
{
    PGresult *res;
    int rc = IG_OK;

    while ((res = PQgetResult(conn)) != NULL) {
        if (rc == IG_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = ig_db_err(err, conn, res, "COPY import_results");
        PQclear(res);
    }
    return rc;
}

int ig_jobq_add_results(PGconn *conn, long long job_id,
                        const ig_jobq_result *rows, size_t n, ig_err *err)
{
    static const char sql[] =
        "COPY import_results (job_id, source_row, seq, source_line, outcome,"
        " target, column_name, code, constraint_name, message, source_values)"
        " FROM STDIN";
    const size_t flush_at = 256 * 1024;
    copybuf b = {NULL, 0, 0};
    PGresult *res = NULL;
    int rc = IG_OK;

    if (n == 0)
        return IG_OK;
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = ig_db_err(err, conn, res, "COPY import_results");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        cb_result(&b, job_id, &rows[i]);
        if (b.len >= flush_at || i + 1 == n) {
            if (PQputCopyData(conn, b.data, (int)b.len) != 1) {
                rc = ig_db_err(err, conn, NULL, "COPY import_results");
                break;
            }
            b.len = 0;
        }
    }
    /* On a send failure, end the COPY with an error so the server aborts
     * it; either way collect the results to leave the connection usable. */
    if (PQputCopyEnd(conn, rc == IG_OK ? NULL : "client send failed") != 1 &&
        rc == IG_OK)
        rc = ig_db_err(err, conn, NULL, "COPY import_results");
    {
        ig_err tmp;
        int frc = copy_finish(conn, rc == IG_OK ? err : &tmp);
        if (rc == IG_OK)
            rc = frc;
    }
out:
    PQclear(res);
    free(b.data);
    return rc;
}

struct ig_jobq_rows {
    PGresult *res; /* owned; the strings handed out point into it */
};

int ig_jobq_results(PGconn *conn, long long job_id, long limit, long offset,
                    ig_jobq_rows **out, ig_err *err)
{
    static const char sql[] =
        "SELECT source_row, seq, source_line, outcome, target, column_name,"
        " code, constraint_name, message, source_values::text"
        " FROM import_results WHERE job_id = $1::bigint"
        " ORDER BY source_row, seq LIMIT $2::bigint OFFSET $3::bigint";
    char idbuf[24], lim[24], off[24];
    const char *p[3];
    PGresult *res = NULL;
    int rc;

    *out = NULL;
    snprintf(idbuf, sizeof(idbuf), "%lld", job_id);
    snprintf(lim, sizeof(lim), "%ld", limit > 0 ? limit : 100);
    snprintf(off, sizeof(off), "%ld", offset > 0 ? offset : 0);
    p[0] = idbuf;
    p[1] = lim;
    p[2] = off;
    rc = ig_db_query(conn, sql, 3, p, &res, "read import_results", err);
    if (rc == IG_OK) {
        *out = ig_xcalloc(1, sizeof(**out));
        (*out)->res = res;
    }
    return rc;
}

size_t ig_jobq_rows_count(const ig_jobq_rows *rows)
{
    return rows ? (size_t)PQntuples(rows->res) : 0;
}

void ig_jobq_rows_get(const ig_jobq_rows *rows, size_t i, ig_jobq_result *o)
{
    const PGresult *r = rows->res;
    int row = (int)i;
    const char *outcome = col_str(r, row, 3);

    memset(o, 0, sizeof(*o));
    o->source_row = col_ll(r, row, 0, 0);
    o->seq = (int)col_ll(r, row, 1, 0);
    o->source_line = col_ll(r, row, 2, 0);
    o->outcome = outcome && strcmp(outcome, "skipped") == 0
                     ? IG_JOBQ_OUTCOME_SKIPPED
                     : IG_JOBQ_OUTCOME_FAILED;
    o->target = col_str(r, row, 4);
    o->column = col_str(r, row, 5);
    o->code = col_str(r, row, 6);
    o->constraint_name = col_str(r, row, 7);
    o->message = col_str(r, row, 8);
    o->source_values = col_str(r, row, 9);
}

void ig_jobq_rows_free(ig_jobq_rows *rows)
{
    if (rows == NULL)
        return;
    PQclear(rows->res);
    free(rows);
}

/* ------------------------------------------------------------------------
 * Waking up
 */

int ig_jobq_listen(PGconn *conn, ig_err *err)
{
    return ig_db_exec(conn, "LISTEN " IG_JOBQ_CHANNEL, "LISTEN", err);
}

/* Read what the socket has and drop every queued notification; returns how
 * many there were, or -1 when the connection broke. */
static int drain_notifies(PGconn *conn)
{
    PGnotify *nf;
    int count = 0;

    if (PQconsumeInput(conn) != 1)
        return -1;
    while ((nf = PQnotifies(conn)) != NULL) {
        count++;
        PQfreemem(nf);
    }
    return count;
}

int ig_jobq_wait(PGconn *conn, int timeout_ms, int *notified, ig_err *err)
{
    long long deadline = ig_clock_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int got;

    *notified = 0;
    for (;;) {
        struct pollfd pfd;
        long long left;
        int pr;

        got = drain_notifies(conn);
        if (got < 0)
            return ig_db_err(err, conn, NULL, "wait for " IG_JOBQ_CHANNEL);
        if (got > 0) {
            *notified = 1;
            return IG_OK;
        }
        left = deadline - ig_clock_ms();
        if (left <= 0)
            return IG_OK;
        pfd.fd = PQsocket(conn);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (pfd.fd < 0)
            return ig_err_set(err, IG_DB_RETRY,
                              "wait for " IG_JOBQ_CHANNEL
                              ": connection is closed");
        pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno != EINTR)
            return ig_err_set(err, IG_DB_RETRY,
                              "wait for " IG_JOBQ_CHANNEL ": poll: %s",
                              strerror(errno));
    }
}
