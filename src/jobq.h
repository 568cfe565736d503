/*
 * jobq.h - the PostgreSQL-backed import job queue (tables import_jobs and
 * import_results, migrations 0004 and 0005).
 *
 * Producers (the HTTP API, `ingot run` above IMPORT_BACKGROUND_THRESHOLD)
 * enqueue a job with its source bytes; workers claim one with FOR UPDATE
 * SKIP LOCKED, heartbeat while running, checkpoint after every committed
 * batch, and finish, retry, or release it. A rescuer returns jobs whose
 * lease expired (the worker died) to the queue.
 *
 * Fencing: a claim hands out a lease (job id, worker id, attempt). Every
 * write a worker makes is an UPDATE fenced by all three plus
 * state = 'running'. When it touches no row the lease was lost (rescued and
 * re-claimed by another worker, or the job was finished by someone else):
 * the call returns IG_STATE and the worker must stop that job at once,
 * rolling back whatever it has not committed.
 *
 * Connections: every function takes a borrowed PGconn and opens none of its
 * own. Functions that say "in the caller's transaction" run inside whatever
 * transaction the caller opened (checkpoint, add_results); the others are
 * single statements and autocommit when no transaction is open. The module
 * holds no state and is thread-safe as long as each thread uses its own
 * connection (STYLE rule 12).
 *
 * Nothing here logs; error messages never contain conninfo.
 */
#ifndef IG_JOBQ_H
#define IG_JOBQ_H

#include <stddef.h>
#include <libpq-fe.h>

#include "err.h"

/* The NOTIFY channel workers LISTEN on (payload: the job id). */
#define IG_JOBQ_CHANNEL "ingot_jobs"
/* Longest worker id accepted, bytes without the NUL. */
#define IG_JOBQ_WORKER_ID_MAX 127
/* Backoff: base 2^attempt seconds, capped, then +-25% jitter. */
#define IG_JOBQ_BACKOFF_CAP_SECONDS 300.0

/* Job states, in the order of the name table; the text forms are the
 * values of import_jobs.state. */
#define IG_JOBQ_STATES(X)                                                      \
    X(QUEUED, "queued")                                                        \
    X(RUNNING, "running")                                                      \
    X(RETRYABLE, "retryable")                                                  \
    X(SUCCEEDED, "succeeded")                                                  \
    X(PARTIALLY_SUCCEEDED, "partially_succeeded")                              \
    X(FAILED, "failed")                                                        \
    X(CANCELLED, "cancelled")

typedef enum {
#define IG_JOBQ_STATE_ENUM(name, text) IG_JOBQ_##name,
    IG_JOBQ_STATES(IG_JOBQ_STATE_ENUM)
#undef IG_JOBQ_STATE_ENUM
        IG_JOBQ__STATE_COUNT
} ig_jobq_state;

/* "queued"...; static string ("?" for a bad value). Cannot fail. */
const char *ig_jobq_state_name(ig_jobq_state s);
/* Parse a state name; IG_OK and *out, or IG_NOTFOUND for unknown text. */
int ig_jobq_state_parse(const char *s, ig_jobq_state *out) IG_MUSTCHECK;
/* 1 for succeeded, partially_succeeded, failed and cancelled. */
int ig_jobq_state_is_final(ig_jobq_state s);
/* Parse a comma-separated list of state names ("queued,running") into a
 * bitmask of (1u << state). IG_OK, or IG_NOTFOUND naming the unknown one
 * and listing the valid names. */
int ig_jobq_states_parse(const char *list, unsigned *mask, ig_err *err)
    IG_MUSTCHECK;

/* Row counters, as stored in import_jobs.rows_*. The database checks that
 * inserted + updated + unchanged + skipped + failed <= processed. */
typedef struct ig_jobq_counts {
    long long processed, inserted, updated, unchanged, skipped, failed;
} ig_jobq_counts;

/* Where a job resumes: the last committed batch, the source byte offset
 * just after it, and the number of source rows it covered. */
typedef struct ig_jobq_position {
    long long batch, offset, row;
} ig_jobq_position;

/* A worker's lease on one running job; a small value, copy it freely. */
typedef struct ig_jobq_lease {
    long long job_id;
    int attempt;
    char worker_id[IG_JOBQ_WORKER_ID_MAX + 1];
} ig_jobq_lease;

/* One job row. Every pointer field is owned by the job and freed by
 * ig_jobq_job_free(); NULL means SQL NULL. Times are Unix epoch seconds,
 * 0 when unset. */
typedef struct ig_jobq_job {
    long long id;
    char *pipeline;
    ig_jobq_state state;
    char *source_name;     /* may be NULL */
    char *format;          /* "csv" or "json" */
    unsigned char *source; /* claim only (NULL from get/list); a NUL
                              follows the last byte, not counted */
    size_t source_len;
    long long source_bytes; /* stored length, always set */
    char *options;          /* jsonb as text, e.g. "{}" */
    int priority, attempt, max_attempts;
    char *worker_id;      /* NULL unless running */
    int cancel_requested; /* cancel_requested_at IS NOT NULL */
    ig_jobq_position checkpoint;
    ig_jobq_counts counts;
    long long total_rows; /* -1 when unknown */
    char *last_error;     /* may be NULL */
    char *errors;         /* jsonb array as text: [{attempt,at,error}] */
    double created_at, updated_at, run_after, started_at, finished_at;
    double heartbeat_at, lease_expires_at, cancel_requested_at;
    double attempt_started_at;   /* the current attempt's claim, or 0 */
    long long attempt_base_rows; /* rows processed before that attempt */
    ig_jobq_lease lease; /* claim only: the lease to fence with */
} ig_jobq_job;

/* Free a job; NULL is a no-op. */
void ig_jobq_job_free(ig_jobq_job *job);

/* ---- producing -------------------------------------------------------- */

/* What to enqueue; zero-initialise and set at least pipeline. */
typedef struct ig_jobq_enqueue_opts {
    const char *pipeline; /* copied; [A-Za-z0-9_-]{1,64} */
    const void *source;   /* copied; source_len bytes, any content */
    size_t source_len;
    const char *source_name;  /* copied; NULL allowed (e.g. upload name) */
    const char *format;       /* "csv" or "json"; NULL = "csv" */
    const char *options_json; /* a JSON object as text; NULL = "{}" */
    long long total_rows;     /* 0 = unknown */
    int max_attempts;         /* 0 = 3 */
    int priority;             /* higher first; 0 default */
    double delay_seconds;     /* run_after = now() + delay; 0 = now */
} ig_jobq_enqueue_opts;

/* Insert a queued job and (trigger, migration 0005) NOTIFY ingot_jobs in
 * the same transaction. The source goes as a binary parameter, so any bytes
 * survive. IG_OK and *id, or IG_DB (bad pipeline name, format, JSON) /
 * IG_DB_RETRY. */
int ig_jobq_enqueue(PGconn *conn, const ig_jobq_enqueue_opts *opts,
                    long long *id, ig_err *err) IG_MUSTCHECK;

/* ---- working (every write below is fenced by the lease) ---------------- */

/* Claim the next runnable job (queued or retryable, run_after reached, no
 * cancel requested; highest priority, then oldest) in one statement, and
 * lease it to worker_id for lease_seconds. IG_OK with *out set to an owned
 * job (free with ig_jobq_job_free(); its lease field is filled), or IG_OK
 * with *out NULL when nothing is runnable; else a database error code.
 * Never blocks on a job another worker is claiming (SKIP LOCKED). */
int ig_jobq_claim(PGconn *conn, const char *worker_id, int lease_seconds,
                  ig_jobq_job **out, ig_err *err) IG_MUSTCHECK;

/* Extend the lease to now() + lease_seconds. *cancel_requested (NULL
 * allowed) is set to 1 when someone asked to cancel the job: stop at the
 * next batch boundary, then ig_jobq_finish(..., IG_JOBQ_CANCELLED, ...).
 * IG_STATE when the lease was lost. */
int ig_jobq_heartbeat(PGconn *conn, const ig_jobq_lease *lease,
                      int lease_seconds, int *cancel_requested,
                      ig_err *err) IG_MUSTCHECK;

/* In the caller's transaction (the one that applied the batch): record
 * the position after the batch and the counters so far. The caller commits
 * both together, so a retry resumes after the last committed batch and
 * applies no row twice. IG_STATE when the lease was lost: roll back. */
int ig_jobq_checkpoint(PGconn *conn, const ig_jobq_lease *lease,
                       const ig_jobq_position *pos,
                       const ig_jobq_counts *counts, ig_err *err) IG_MUSTCHECK;

/* Finish the job in final state (succeeded, partially_succeeded, failed or
 * cancelled), storing counts (NULL = keep the checkpointed ones) and
 * last_error (copied; NULL allowed). IG_STATE when the lease was lost;
 * IG_INTERNAL when final is not a final state. */
int ig_jobq_finish(PGconn *conn, const ig_jobq_lease *lease,
                   ig_jobq_state final, const ig_jobq_counts *counts,
                   const char *last_error, ig_err *err) IG_MUSTCHECK;

/* Record a failure of this attempt: error (copied) becomes last_error and
 * is appended to the errors history as {attempt, at, error}. A transient
 * failure with attempts left (and no cancel requested) makes the job
 * retryable with run_after = now() + ig_jobq_backoff(attempt); anything
 * else fails it. *new_state (NULL allowed) says which. IG_STATE when the
 * lease was lost. */
int ig_jobq_fail_or_retry(PGconn *conn, const ig_jobq_lease *lease,
                          const char *error, int transient,
                          ig_jobq_state *new_state, ig_err *err) IG_MUSTCHECK;

/* Graceful shutdown: hand the job back to queued without burning an
 * attempt (attempt - 1, lease cleared, runnable now); a job whose cancel
 * was requested becomes cancelled instead ("cancelled at a batch
 * boundary", as a cancel at a batch boundary says). The checkpoint stays,
 * so the next worker resumes. *new_state (NULL allowed): which of the two.
 * IG_STATE when the lease was lost. */
int ig_jobq_release(PGconn *conn, const ig_jobq_lease *lease,
                    ig_jobq_state *new_state, ig_err *err) IG_MUSTCHECK;

/* Seconds to wait before retrying after failed attempt number attempt
 * (1-based): min(2^attempt, IG_JOBQ_BACKOFF_CAP_SECONDS) scaled by
 * 0.75 + 0.5 * jitter, where jitter in [0, 1) is the caller's random draw
 * (so tests are deterministic). Pure; cannot fail. */
double ig_jobq_backoff(int attempt, double jitter);

/* ---- housekeeping ------------------------------------------------------ */

/* One statement: every running job whose lease expired goes back to
 * retryable (attempts left), or to failed with last_error "lease expired
 * (worker died?) after N attempts" (attempts used up), or to cancelled
 * (cancel had been requested). Each gets an errors entry. *count (NULL
 * allowed) is the number of jobs rescued. The nlive jobs in live (the
 * caller's own import threads are running them: they are alive, only the
 * database was away) are left to their heartbeats, which renew the lease
 * once the database answers. */
int ig_jobq_rescue(PGconn *conn, const long long *live, size_t nlive,
                   long long *count, ig_err *err) IG_MUSTCHECK;

typedef enum {
    IG_JOBQ_CANCEL_DONE,      /* was queued/retryable: cancelled now */
    IG_JOBQ_CANCEL_REQUESTED, /* running: the worker stops at a batch end */
    IG_JOBQ_CANCEL_FINISHED   /* already final: nothing changed (HTTP 409) */
} ig_jobq_cancel_result;

/* Cancel job id. IG_OK with *result (and *state, NULL allowed: the state
 * after the call), or IG_NOTFOUND for an unknown id. */
int ig_jobq_cancel(PGconn *conn, long long id, ig_jobq_cancel_result *result,
                   ig_jobq_state *state, ig_err *err) IG_MUSTCHECK;

/* Read one job without its source bytes. IG_OK and *out (owned, free with
 * ig_jobq_job_free()), or IG_NOTFOUND. */
int ig_jobq_get(PGconn *conn, long long id, ig_jobq_job **out,
                ig_err *err) IG_MUSTCHECK;

/* Which jobs ig_jobq_list() returns; zero-initialise. */
typedef struct ig_jobq_filter {
    unsigned states;      /* bitmask of 1u << ig_jobq_state; 0 = any */
    const char *pipeline; /* borrowed for the call; NULL = any */
    long limit;           /* 0 = 50 */
    long offset;
} ig_jobq_filter;

/* List jobs, newest first, without source bytes. IG_OK with *jobs (owned
 * array of owned jobs; free with ig_jobq_jobs_free(*jobs, *n)) and *n. */
int ig_jobq_list(PGconn *conn, const ig_jobq_filter *filter,
                 ig_jobq_job ***jobs, size_t *n, ig_err *err) IG_MUSTCHECK;
void ig_jobq_jobs_free(ig_jobq_job **jobs, size_t n);

/* Delete finished jobs whose finished_at is older than older_than_seconds
 * (their import_results go with them: ON DELETE CASCADE). *count (NULL
 * allowed) is the number of jobs deleted. */
int ig_jobq_prune(PGconn *conn, double older_than_seconds, long long *count,
                  ig_err *err) IG_MUSTCHECK;

/* Number of jobs in each state (for /metrics): counts[s] for every
 * ig_jobq_state s, zero when none. One statement. */
int ig_jobq_count_by_state(PGconn *conn,
                           long long counts[IG_JOBQ__STATE_COUNT],
                           ig_err *err) IG_MUSTCHECK;

/* ---- row outcomes (import_results) ------------------------------------- */

typedef enum {
    IG_JOBQ_OUTCOME_FAILED,
    IG_JOBQ_OUTCOME_SKIPPED
} ig_jobq_outcome;

/* One row outcome. As input every string is borrowed for the call (NULL =
 * SQL NULL; code and message are required). As output (ig_jobq_rows_get)
 * the strings are borrowed from the ig_jobq_rows they came from. */
typedef struct ig_jobq_result {
    long long source_row;  /* >= 1 */
    int seq;               /* 0.. when a row failed on several columns */
    long long source_line; /* 0 = unknown */
    ig_jobq_outcome outcome;
    const char *target;
    const char *column;
    const char *code;
    const char *constraint_name;
    const char *message;
    const char *source_values; /* JSON text */
} ig_jobq_result;

/* In the caller's transaction: append n outcomes for job_id with one
 * COPY import_results FROM STDIN (text format, every field escaped;
 * strings must be valid UTF-8, the database encoding). A
 * duplicate (job, row, seq) or bad JSON fails the whole call with IG_DB;
 * the caller rolls back. n == 0 is a no-op. */
int ig_jobq_add_results(PGconn *conn, long long job_id,
                        const ig_jobq_result *rows, size_t n,
                        ig_err *err) IG_MUSTCHECK;

typedef struct ig_jobq_rows ig_jobq_rows; /* opaque: one page of outcomes */

/* Read outcomes of job_id ordered by (source_row, seq); limit 0 = 100.
 * IG_OK and *out (owned, free with ig_jobq_rows_free()). */
int ig_jobq_results(PGconn *conn, long long job_id, long limit, long offset,
                    ig_jobq_rows **out, ig_err *err) IG_MUSTCHECK;
size_t ig_jobq_rows_count(const ig_jobq_rows *rows);
/* Fill *out with row i (< count); strings borrowed from rows. */
void ig_jobq_rows_get(const ig_jobq_rows *rows, size_t i, ig_jobq_result *out);
void ig_jobq_rows_free(ig_jobq_rows *rows);

/* ---- waking up --------------------------------------------------------- */

/* LISTEN ingot_jobs on conn (keep it out of transactions and use it only
 * for waiting or for the worker's short statements). */
int ig_jobq_listen(PGconn *conn, ig_err *err) IG_MUSTCHECK;

/* Wait up to timeout_ms for a notification on conn (poll() on PQsocket),
 * draining every pending one. *notified = 1 if at least one arrived, else
 * 0 (timed out). Returns at once when one is already buffered. IG_DB_RETRY
 * when the connection broke. */
int ig_jobq_wait(PGconn *conn, int timeout_ms, int *notified,
                 ig_err *err) IG_MUSTCHECK;

#endif /* IG_JOBQ_H */
