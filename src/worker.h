/*
 * worker.h - `ingot worker`'s import threads: drain the PostgreSQL job
 * queue (src/jobq.h), run each job with the runner, heartbeat, rescue and
 * prune.
 *
 * A worker owns opts.threads import threads. Each thread owns two PGconn
 * (one for queue calls that also LISTENs for new jobs, one its heartbeat
 * thread uses while a job runs) and an ig_pool the runner borrows from; the
 * runner builds its own Lua state per import on that thread. A thread
 * claims a job (FOR UPDATE SKIP LOCKED), runs it from its checkpoint, and
 * finishes it; when the queue is empty it waits for a NOTIFY and polls once
 * a second anyway, so a lost notification only delays a job. Every batch
 * commits its rows, the job's checkpoint and the batch's failed rows
 * (import_results) in one transaction, all fenced by the lease: a worker
 * that lost its lease stops at once and never touches the job again.
 *
 * One more thread is the housekeeper: ig_jobq_rescue() every lease/2 s
 * (jobs of dead workers go back to the queue and resume from their
 * checkpoint) and ig_jobq_prune() at start and then hourly.
 *
 * Shutdown (ig_worker_stop): no new claims; running imports stop at their
 * next batch boundary and are released back to the queue without burning
 * an attempt.
 *
 * Thread-safety: ig_worker_stop and ig_worker_get_stats may be called from
 * any thread; one mutex inside guards the shared state.
 */
#ifndef IG_WORKER_H
#define IG_WORKER_H

#include "conf.h"
#include "err.h"
#include "jobq.h"
#include "progress.h"

typedef struct ig_worker ig_worker; /* opaque */

typedef struct ig_worker_opts {
    const ig_conf *conf;      /* borrowed: must outlive the worker (database
                                 URL, batch size, limits, lease, retention) */
    int threads;              /* import threads, >= 1 */
    const char *worker_id;    /* copied; 1..100 bytes; each thread uses
                                 "<worker_id>/<n>" as its lease owner */
    const char *pipeline_dir; /* copied; where "<pipeline>.yaml" files are */
    ig_progress *progress;    /* borrowed, shared; must outlive the worker */
} ig_worker_opts;

/* Counters since start, for /metrics. */
typedef struct ig_worker_stats {
    int threads;
    int busy; /* threads running an import now */
    /* Imports this process ended, by how: index by final job state for
     * succeeded / partially_succeeded / failed / cancelled; retried counts
     * attempts handed back as retryable, released graceful hand-backs,
     * lease_lost imports abandoned because another worker took over. */
    long long finished[IG_JOBQ__STATE_COUNT];
    long long retried, released, lease_lost;
    /* Rows of the attempts this process ran. */
    long long rows_processed, rows_inserted, rows_updated, rows_unchanged;
    long long rows_skipped, rows_failed;
    double duration_sum; /* seconds, over ended attempts */
    long long duration_count;
    long long rescued, pruned;
} ig_worker_stats;

/* Start the threads. Returns an owned worker (stop, then free with
 * ig_worker_free()), or NULL with *err (bad options, no thread). Database
 * trouble is not an error here: threads reconnect with backoff. */
ig_worker *ig_worker_start(const ig_worker_opts *opts,
                           ig_err *err) IG_MUSTCHECK;

/* Ask for a graceful stop and return at once (see the file comment).
 * Idempotent. */
void ig_worker_stop(ig_worker *w);

/* Stop (if not yet), join every thread, free. NULL is a no-op. */
void ig_worker_free(ig_worker *w);

/* Snapshot of the counters. Cannot fail. */
void ig_worker_get_stats(ig_worker *w, ig_worker_stats *out);

#endif /* IG_WORKER_H */
