/*
 * runner.h - one import, start to finish: reader -> mapper (rules, hooks)
 * -> batches -> executor, with the limits, progress and results.
 *
 * Threads work at once: the calling thread reads, maps and runs hooks
 * for the next batch while a writer thread applies the current one (COPY
 * + upserts in one short transaction, committed per batch). Batches are
 * applied in order, so a later batch's rows win over an earlier one's
 * and a child always finds the parents of earlier batches.
 *
 * A transient database failure (connection lost, server restarting,
 * deadlock, serialization failure) retries the batch on a fresh connection
 * with backoff; when the connection died during COMMIT the transaction's
 * fate is asked of the server (pg_xact_status), so a batch is never
 * applied twice and never lost. Cancel and timeout stop at the next batch
 * boundary. --dry-run runs everything in one transaction that is rolled
 * back at the end.
 *
 * A single-target pipeline may have several batches in flight at once
 * (opts.writers), each in its own transaction on its own connection, but
 * only batches that share no conflict key, and not while the import only
 * inserts (insert-first COPYs go one at a time): a key's later version
 * still lands last, and the writers do not contend for the target's rows.
 * Outcomes are accounted in batch order. When a batch fails, the batches
 * already in flight beside it still commit and are counted; no later one
 * starts. Multi-target pipelines, pipelines with lookups, dry runs and
 * runs with on_commit (the worker's checkpoints, which must commit in
 * order) keep one writer: a row looked up must be committed by an earlier
 * batch first. So does a file of fewer than four batches.
 */
#ifndef IG_RUNNER_H
#define IG_RUNNER_H

#include <stdio.h>
#include <libpq-fe.h>

#include "batch.h"
#include "err.h"
#include "pipeline.h"
#include "pool.h"
#include "results.h"

typedef enum {
    IG_RUN_DONE = 0,  /* every row was processed (some may have failed) */
    IG_RUN_TIMED_OUT, /* IMPORT_TIMEOUT_SECONDS reached */
    IG_RUN_CANCELED,  /* *cancel was set */
    IG_RUN_LIMIT,     /* IMPORT_MAX_ROWS exceeded */
    IG_RUN_FAILED     /* could not go on: see err */
} ig_run_status;

const char *ig_run_status_name(ig_run_status s); /* "done", ... static */

typedef struct ig_run_progress {
    long long batches;     /* committed */
    long long rows;        /* rows read and applied so far */
    long long total_rows;  /* -1 when not counted: stdin, or an input
                              whose line count alone proved it within
                              max_rows (use bytes for a percentage) */
    long long bytes;       /* source bytes consumed */
    long long bytes_total; /* 0 when unknown */
    long long last_row;    /* last data row of the last committed batch */
    long long end_offset;  /* source offset after it */
    double elapsed;        /* seconds since the start */
    ig_counts counts;      /* overall so far */
} ig_run_progress;

/* Called inside each batch's transaction, just before COMMIT, on the
 * batch's connection (jobs write their checkpoint and row results there).
 * after holds the progress including this batch; failed lists the batch's
 * failed rows (before or in the database), sorted by row, borrowed for the
 * call. Returning non-IG_OK rolls the batch back and stops the import
 * (IG_DB_RETRY retries the batch like any transient failure). */
typedef int (*ig_run_commit_fn)(PGconn *conn, const ig_run_progress *after,
                                const ig_batch_failure *failed,
                                size_t nfailed, void *ud, ig_err *err);

typedef struct ig_run_opts {
    const ig_pipeline *pipeline; /* borrowed */
    ig_pool *pool;               /* borrowed */
    FILE *file;                  /* borrowed input, or NULL and: */
    const char *buf;             /* borrowed memory input */
    size_t buf_len;
    const char *input_name;      /* for messages */
    long long bytes_total;       /* input size when known, else 0 */
    long batch_size;             /* >= 1; twice that while batches only
                                    insert (see exec.h, insert-first) */
    long long max_rows;          /* >= 1 */
    long timeout_seconds;        /* 0 = none */
    int dry_run;
    int seekable;                /* input can be read twice: count lines
                                    (and rows, if the lines are over
                                    max_rows) first and refuse over
                                    max_rows before
                                    writing anything */
    long long skip_rows;         /* resume: data rows already committed */
    const char *reject;          /* reject file path (created at the first
                                    failed row), or NULL */
    void (*progress)(const ig_run_progress *p, void *ud);
    void *progress_ud;
    ig_run_commit_fn on_commit;
    void *commit_ud;
    volatile int *cancel;        /* borrowed; nonzero = stop */
    int writers;                 /* batches in flight at once
                                    (1..IG_RUN_MAX_WRITERS); used only for
                                    single-target pipelines without
                                    on_commit or dry_run; 0 or 1 = one
                                    writer. The pool needs writers + 1
                                    connections. */
    int no_insert_first;         /* never try the executor's insert-first
                                    path (IMPORT_INSERT_FIRST=0); default
                                    0 = try it while batches only insert */
    int no_merge;                /* never try the executor's MERGE form
                                    (IMPORT_MERGE=0); default 0 = try it
                                    for whole batches where it applies */
} ig_run_opts;

#define IG_RUN_MAX_WRITERS 16

/* Run the import into results (borrowed; created by the caller with the
 * pipeline's target names). Returns IG_OK with *status set for every
 * outcome that has results (done, timed out, canceled, limit), or an error
 * (*status = IG_RUN_FAILED) when the import could not start or go on.
 * A database that cannot be reached before the first batch is waited for
 * within the pool's budget; once cancel is set or timeout_seconds have
 * passed the run stops waiting: IG_OK, canceled / timed out, nothing
 * read, and *err says what the database answered. */
int ig_run(const ig_run_opts *o, ig_results *results, ig_run_status *status,
           ig_run_progress *final, ig_err *err) IG_MUSTCHECK;

/* Check an in-memory input against o->pipeline without touching the
 * database or running hooks: read the header (IG_DATA for an empty input,
 * no header or a malformed one), map it to the pipeline's columns
 * (IG_CONFIG when the input lacks a column the pipeline reads or has one
 * it refuses), and count the data records into *rows. Only o->pipeline,
 * o->buf, o->buf_len and o->input_name are used. The HTTP API calls it to
 * answer 422 / 413 before it runs or queues anything. */
int ig_run_preflight(const ig_run_opts *o, long long *rows,
                     ig_err *err) IG_MUSTCHECK;

#endif /* IG_RUNNER_H */
