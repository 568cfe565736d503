/*
 * progress.h - live progress of running imports: a Redis hash per job with
 * an in-memory fallback.
 *
 * Producers (workers, `ingot run`) call ig_progress_update() once per
 * batch; readers (GET /api/imports/<id>/progress) call ig_progress_get().
 * Each job is one Redis hash "ingot:progress:<job id>" with the fields
 * state, total, processed, inserted, updated, unchanged, skipped, failed,
 * percent, rows_per_sec, eta_seconds, started_at, updated_at (numbers as
 * decimal text; times as Unix epoch seconds; -1 for an unknown percent or
 * ETA). Every update rewrites the hash and refreshes its TTL
 * (REDIS_PROGRESS_EXPIRY) in one MULTI/EXEC.
 *
 * Fallback: every update is also kept in process memory (same data, same
 * expiry). When Redis cannot be reached or a command fails, the store
 * switches to memory, logs one warning for the outage (never the password),
 * and carries on: updates and gets never wait on a dead Redis longer than
 * one command timeout (opts.timeout_ms, 200 ms by default), and after the
 * switch they do no network I/O at all. A background thread (only when a
 * redis_url is set) tries to reconnect at most once every opts.retry_ms;
 * when it succeeds it writes every job updated during the outage to Redis,
 * then switches back. Progress is advisory: the job row keeps the durable
 * counters, and callers fall back to them when get says IG_NOTFOUND.
 *
 * Thread-safety: an ig_progress is shared by all threads of a process. It
 * locks internally (one mutex around the memory table and the Redis
 * connection), so every function may be called from any thread.
 */
#ifndef IG_PROGRESS_H
#define IG_PROGRESS_H

#include <stddef.h>

#include "err.h"

typedef struct ig_progress ig_progress; /* opaque */

/* Key prefix of the per-job hashes. */
#define IG_PROGRESS_KEY_PREFIX "ingot:progress:"

typedef enum {
    IG_PROGRESS_MEMORY, /* no Redis configured, or Redis is down */
    IG_PROGRESS_REDIS   /* updates go to Redis (and memory) */
} ig_progress_backend;

/* "memory" / "redis"; static string. Cannot fail. */
const char *ig_progress_backend_name(ig_progress_backend b);

typedef struct ig_progress_opts {
    const char *redis_url; /* copied; redis://[[user]:password@]host[:port]
                              [/db]; NULL or "" = memory only. Never logged
                              with its password. */
    long expiry_seconds;   /* hash TTL; 0 = 86400 */
    int timeout_ms;        /* connect and command timeout; 0 = 200 */
    int retry_ms;          /* min gap between reconnect attempts; 0 = 1000 */
    size_t max_jobs;       /* memory table cap (oldest evicted); 0 = 10000 */
} ig_progress_opts;

/* One job's progress. The caller fills state and the counters (and
 * started_at); ig_progress_compute() fills the derived fields. */
typedef struct ig_progress_info {
    char state[24];  /* a job state name: "running", "succeeded"... */
    long long total; /* rows expected; 0 = unknown */
    long long processed, inserted, updated, unchanged, skipped, failed;
    double started_at; /* epoch seconds; 0 = unknown */
    /* Which job row and attempt wrote it (the job's created_at, epoch
     * seconds, and its attempt): a reader trusts the figures only when
     * both match the job, so another database's job of the same id
     * sharing the Redis, or an earlier attempt's last figures, are not
     * shown. 0 = unknown. */
    double job_created_at;
    int attempt;
    /* derived */
    double percent;      /* 0..100; -1 when total is unknown */
    double rows_per_sec; /* processed / elapsed; 0 before any time passed */
    double eta_seconds;  /* -1 when unknown; 0 when finished */
    double updated_at;   /* epoch seconds of the update */
} ig_progress_info;

/* Fill the derived fields of *info for time now (epoch seconds): percent
 * from processed/total (clamped to 100), rows_per_sec from started_at (0,
 * and no ETA, when started_at is 0 or the job is queued or retryable), ETA from the
 * remaining rows at that rate. A finished state (succeeded,
 * partially_succeeded, failed, cancelled) has ETA 0, and 100 percent when
 * it succeeded. Pure; cannot fail. */
void ig_progress_compute(ig_progress_info *info, double now);

/* A parsed redis:// URL. */
typedef struct ig_progress_url {
    char host[256];
    int port;           /* 6379 when absent */
    char user[128];     /* "" = none (password-only AUTH) */
    char password[256]; /* "" = none */
    int db;             /* 0 when absent */
} ig_progress_url;

/* Parse a redis:// URL into *out. IG_OK or IG_CONFIG with a message that
 * does not contain the password. */
int ig_progress_parse_url(const char *url, ig_progress_url *out,
                          ig_err *err) IG_MUSTCHECK;

/* Create a store. With a redis_url, connects once (waiting at most
 * timeout_ms) and starts the reconnect thread; an unreachable Redis is not
 * an error (the store starts in memory). Returns an owned store (free with
 * ig_progress_free()), or NULL with *err for a bad URL or no memory. */
ig_progress *ig_progress_new(const ig_progress_opts *opts,
                             ig_err *err) IG_MUSTCHECK;

/* Stop the reconnect thread, close Redis, free everything. NULL is a
 * no-op. Must not race with other calls on p. */
void ig_progress_free(ig_progress *p);

/* Record the progress of job_id: copies *info, computes the derived
 * fields at the current time, keeps it in memory and writes it to Redis
 * when Redis is the active backend. Cannot fail: a Redis failure switches
 * to memory (see above). */
void ig_progress_update(ig_progress *p, long long job_id,
                        const ig_progress_info *info);

/* Read the progress of job_id into *out: from Redis when it is active
 * (so other processes' jobs are visible), else from memory. IG_OK, or
 * IG_NOTFOUND when the active backend has nothing (expired or never
 * written): use the job row's durable counters then. */
int ig_progress_get(ig_progress *p, long long job_id, ig_progress_info *out,
                    ig_err *err) IG_MUSTCHECK;

/* Which backend serves updates right now (for /metrics). */
ig_progress_backend ig_progress_active(ig_progress *p);

/* The same after asking Redis (PING, within the command timeout): an
 * idle store notices Redis went away and falls back to memory (for
 * /healthz and /metrics). Cannot fail. */
ig_progress_backend ig_progress_check(ig_progress *p);

/* Counters for /metrics. */
typedef struct ig_progress_stats {
    ig_progress_backend backend;
    long long fallbacks;  /* switches from Redis to memory */
    long long reconnects; /* switches back to Redis */
    size_t memory_jobs;   /* entries in the memory table */
} ig_progress_stats;

void ig_progress_get_stats(ig_progress *p, ig_progress_stats *out);

#endif /* IG_PROGRESS_H */
