/*
 * runner.c - one import from source to database; see runner.h.
 *
 * Threads: the caller's thread owns the reader, the mapper and the Lua
 * hook; each writer thread (one, or IMPORT_WRITERS) owns the connection
 * it borrows from the pool for a batch. They share writers + 1 batch
 * buffers (mutex + condition variable): the caller fills one while the
 * writers apply the others, and queues it as soon as it is full, so a
 * writer goes from one batch to the next without waiting for the caller's
 * thread to be scheduled. Writers take batches in order and account them
 * in order; two batches are in flight at once only when no conflict key
 * is in both (see writer_main). A watchdog thread (watch_main) drops the
 * run's connections when the run has been asked to stop, or ran out of
 * time, and the database still has not answered STOP_GRACE_MS later.
 */
#define _GNU_SOURCE /* fallocate */
#include "runner.h"
#include "clock.h"

#include "batch.h"
#include "db.h"
#include "exec.h"
#include "hook.h"
#include "keyset.h"
#include "log.h"
#include "mapper.h"
#include "reader.h"
#include "sql.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRY_ATTEMPTS 8
/* A batch ends at IMPORT_BATCH_SIZE rows or once its arena holds this
 * much, whichever comes first (see fill_batch). */
#define BATCH_MAX_BYTES ((size_t)8 << 20)
/* After a cancel or the time limit, how long past its statement timeout a
 * server may send nothing before the watchdog drops the run's
 * connections (see watch_main). */
#define STOP_GRACE_MS 5000
#define WATCH_TICK_MS 200

const char *ig_run_status_name(ig_run_status s)
{
    switch (s) {
    case IG_RUN_DONE: return "done";
    case IG_RUN_TIMED_OUT: return "timed_out";
    case IG_RUN_CANCELED: return "canceled";
    case IG_RUN_LIMIT: return "limit";
    case IG_RUN_FAILED: return "failed";
    }
    return "?";
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the caller asked the import to stop: a batch that failed for
 * a transient reason is then not retried (the caller, stopping, would
 * otherwise wait for a database that is down). */
static int stop_asked(const ig_run_opts *o)
{
    return o->cancel != NULL && *o->cancel;
}

/* ------------------------------------------------------------------ */
/* The database thread                                                 */

/* Where a batch buffer is in its round: filled by the map thread,
 * queued, applied by a writer, accounted in order, free again. */
typedef enum { SLOT_FREE, SLOT_QUEUED, SLOT_APPLYING } slot_state;

/* One of the batch buffers, and the hook summary of its last run
 * (written by a writer, read by the map thread once the buffer is free
 * again). */
typedef struct slot {
    ig_batch *b;
    long long seq;     /* the batch's number, from 1 */
    slot_state state;
    ig_keyset *keys;   /* its key hashes, while several writers may run
                          (NULL otherwise) */
    ig_hook_summary last;
    int have_last;
} slot;

typedef struct dbside {
    const ig_run_opts *o;
    const ig_exec *ex;
    ig_results *results;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *slots;         /* nslots = nwriters + 1; batch seq is in slot
                            (seq - 1) % nslots */
    int nslots;
    long long next_take;    /* seq of the next batch for a writer */
    long long next_account; /* seq of the next batch to account */
    int quit;
    int failed;          /* a batch could not be applied: stop */
    ig_err err;
    ig_pool_conn *dry;   /* dry run: the one connection and transaction */
    pthread_mutex_t dry_mu; /* held by whoever uses dry: the writer for a
                               batch, the map thread to hash keys */
    ig_run_progress prog;
    double t0;
    int nwriters;        /* batches in flight at most */
    /* Per target: rows this import inserted, and that count when the
     * table was last analyzed (parents only, see refresh_parent_stats). */
    long long *grown, *analyzed_at;
    int *is_parent;
    int insert_first;    /* the last batch only inserted: expect new keys
                            (IG_EXEC_INSERT_FIRST); on at the start */
    int inserting;       /* ... and that was seen, not only expected */
    /* Batch sizes follow outcomes at a fixed lag, so that they (and with
     * them which rows share a batch) do not depend on timing: the map
     * thread sizes batch k by the outcomes of batches up to k - lag, all
     * accounted by then. outcome[seq % OUTCOME_RING]: 0 no rows, 1 only
     * inserted, 2 not (under mu). lag: the slots of a run with the same
     * input and settings that is not dry, so a dry run sizes as it would. */
    unsigned char outcome[64];
    int lag;
    int spool_fd;        /* a pipe's copy for the reject file, or -1 */
    off_t spool_punched; /* its bytes before this are given back */
    int proven;          /* a batch with rows was applied: the upsert can
                            run (else IG_EXEC_PROVE) */
    /* The watchdog (watch_main); aborted: it dropped the run's
     * connections, so nothing is retried any more (atomic). */
    int aborted;
    pthread_t watch_th;
    int watching;
    int watch_quit;      /* under watch_mu */
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
} dbside;

static int aborted(const dbside *d)
{
    return d != NULL && __atomic_load_n(&d->aborted, __ATOMIC_ACQUIRE);
}

/* ig_pool_acquire_owned's stop after the watchdog gave up on the
 * database. ud: the dbside. */
static int aborted_stop(const void *ud)
{
    return aborted(ud);
}

/* The stop for the connections of batches, and whether a batch that
 * failed for a transient reason is not retried: a cancel, or the
 * watchdog gave up on the database. ud: the dbside. */
static int batch_stop(const void *ud)
{
    const dbside *d = ud;
    return stop_asked(d->o) || aborted(d);
}

/* What a fresh connection says about a transaction whose COMMIT lost its
 * connection. */
typedef enum { XACT_COMMITTED, XACT_ABORTED, XACT_UNKNOWN } xact_fate;

/* Ask (for up to ~10 s while the server still calls it in progress)
 * whether transaction xid committed. XACT_UNKNOWN when no connection could
 * be had or the server no longer knows (xid too old). */
static xact_fate xact_status(dbside *d, const char *xid)
{
    const char *params[1] = {xid};
    xact_fate fate = XACT_UNKNOWN;

    for (int attempt = 0; attempt < 50; attempt++) {
        ig_pool_conn *pc = NULL;
        PGresult *res = NULL;
        ig_err err;
        int again = 0, rc;

        if (ig_pool_acquire_owned(d->o->pool, d, aborted_stop, d, &pc,
                                  &err) != IG_OK)
            return XACT_UNKNOWN; /* the pool already retried for 30 s */
        rc = ig_db_query(ig_pool_conn_pg(pc), "SELECT pg_xact_status($1::xid8)",
                         1, params, &res, "asking for a transaction's fate",
                         &err);
        if (rc != IG_OK) {
            again = rc == IG_DB_RETRY; /* this connection died too: ask anew */
        } else if (PQgetisnull(res, 0, 0)) {
            fate = XACT_UNKNOWN; /* too old: the server no longer knows */
        } else if (strcmp(PQgetvalue(res, 0, 0), "committed") == 0) {
            fate = XACT_COMMITTED;
        } else if (strcmp(PQgetvalue(res, 0, 0), "aborted") == 0) {
            fate = XACT_ABORTED;
        } else {
            again = 1; /* in progress: the old backend is still finishing */
        }
        PQclear(res);
        ig_pool_release(d->o->pool, pc,
                        rc == IG_OK ? IG_POOL_KEEP : IG_POOL_DISCARD);
        if (!again || aborted(d)) /* the watchdog gave up: so do we */
            break;
        sleep_ms(200);
    }
    return fate;
}

/* The overall counts this batch adds once committed: rows read and
 * failed, and the primary (last) target's outcomes. */
static ig_counts batch_delta(const dbside *d, ig_batch *b,
                             const ig_counts *per_target, size_t nfailed)
{
    size_t nt = ig_pipeline_ntargets(d->o->pipeline);
    ig_counts all = {0, 0, 0, 0, 0, 0};

    all.read = ig_batch_read(b);
    all.failed = (long long)nfailed;
    if (nt > 0) {
        all.inserted = per_target[nt - 1].inserted;
        all.updated = per_target[nt - 1].updated;
        all.unchanged = per_target[nt - 1].unchanged;
    }
    all.skipped = all.read - all.failed - all.inserted - all.updated -
                  all.unchanged;
    return all;
}

/* Progress as it will be once b is committed. */
static ig_run_progress progress_after(const dbside *d, ig_batch *b,
                                      const ig_counts *delta)
{
    ig_run_progress p = d->prog;

    p.batches++;
    p.rows += delta->read;
    p.last_row = ig_batch_last_row(b);
    p.end_offset = ig_batch_end_offset(b);
    p.bytes = ig_batch_end_offset(b);
    p.elapsed = ig_clock_s() - d->t0;
    p.counts.read += delta->read;
    p.counts.inserted += delta->inserted;
    p.counts.updated += delta->updated;
    p.counts.unchanged += delta->unchanged;
    p.counts.skipped += delta->skipped;
    p.counts.failed += delta->failed;
    return p;
}

/* One attempt at applying batch seq, b. Fills per_target. */
static int apply_once(dbside *d, ig_batch *b, long long seq,
                      ig_counts *per_target, ig_err *err)
{
    ig_pool_conn *pc = d->dry;
    PGconn *c;
    char xid[IG_EXEC_XID_LEN] = "";
    int rc, flags, insert_first, proven, has_stage = 0;

    if (pc == NULL) {
        rc = ig_pool_acquire_owned(d->o->pool, d, batch_stop, d, &pc, err);
        if (rc != IG_OK)
            return rc;
    }
    c = ig_pool_conn_pg(pc);
    flags = ig_pool_conn_tag(pc) == ig_exec_stage_id(d->ex)
                ? IG_EXEC_STAGE_EXISTS
                : 0;
    if (d->dry != NULL && seq > 1)
        flags |= IG_EXEC_STAGE_DIRTY;
    pthread_mutex_lock(&d->mu); /* other writers set them */
    insert_first = d->insert_first;
    proven = d->proven;
    pthread_mutex_unlock(&d->mu);
    if (insert_first)
        flags |= IG_EXEC_INSERT_FIRST;
    if (!proven)
        flags |= IG_EXEC_PROVE;
    if (d->o->no_merge)
        flags |= IG_EXEC_NO_MERGE;
    if (d->dry == NULL)
        flags |= IG_EXEC_BEGIN; /* BEGIN rides with the first statements */
    rc = ig_exec_batch(d->ex, c, b, NULL, 0, ig_batch_arena(b), flags, xid,
                       &has_stage, per_target, err);
    if (rc == IG_OK && d->o->on_commit) {
        size_t nf;
        const ig_batch_failure *f = ig_batch_failures(b, &nf);
        ig_counts delta = batch_delta(d, b, per_target, nf);
        ig_run_progress after = progress_after(d, b, &delta);
        rc = d->o->on_commit(c, &after, f, nf, d->o->commit_ud, err);
    }
    if (rc == IG_OK && d->dry == NULL) {
        rc = ig_db_exec(c, "COMMIT", "committing the batch", err);
        if (rc == IG_OK && has_stage) /* now it outlives transactions */
            ig_pool_conn_set_tag(pc, ig_exec_stage_id(d->ex));
        if (rc == IG_DB_RETRY && xid[0]) {
            /* Give the dead connection back first: with a pool of one, the
             * question below needs its slot. */
            xact_fate fate;
            ig_pool_release(d->o->pool, pc, IG_POOL_DISCARD);
            pc = NULL;
            fate = xact_status(d, xid);
            if (fate == XACT_COMMITTED) {
                ig_log(IG_LOG_WARN, "the connection died during COMMIT, but "
                                    "the batch was committed");
                rc = IG_OK;
            } else if (fate == XACT_UNKNOWN) {
                /* Retrying could apply the batch twice: stop instead. */
                rc = ig_err_set(err, IG_DB,
                                "the connection died during the COMMIT of "
                                "batch %lld and the server could not say "
                                "whether it committed; the batches counted "
                                "are committed, re-running the import is "
                                "safe (upserts) but may count that batch's "
                                "rows as unchanged",
                                seq);
            }
        }
    } else if (rc == IG_OK && has_stage) {
        ig_pool_conn_set_tag(pc, ig_exec_stage_id(d->ex));
    }
    if (d->dry == NULL && pc == NULL) {
        /* released above (COMMIT lost its connection) */
    } else if (d->dry == NULL) {
        if (rc != IG_OK && PQstatus(c) == CONNECTION_OK) {
            PGresult *r = PQexec(c, "ROLLBACK");
            PQclear(r);
        }
        ig_pool_release(d->o->pool, pc,
                        rc == IG_DB_RETRY ? IG_POOL_DISCARD : IG_POOL_KEEP);
    } else if (rc == IG_DB_RETRY) {
        ig_err_prefix(err, "dry run cannot retry (its one transaction "
                           "was lost)");
        if (err)
            err->code = IG_DB;
        rc = IG_DB;
    }
    return rc;
}

/* Record the batch's outcome in the results (after it committed). */
static void account(dbside *d, slot *sl, const ig_counts *per_target)
{
    ig_batch *b = sl->b;
    size_t nt = ig_pipeline_ntargets(d->o->pipeline);
    size_t nf;
    const ig_batch_failure *f = ig_batch_failures(b, &nf);
    ig_counts delta = batch_delta(d, b, per_target, nf);
    ig_counts add = delta;

    for (size_t i = 0; i < nf; i++)
        ig_results_fail_row(d->results, f[i].row, f[i].line, f[i].offset,
                            f[i].end, f[i].values,
                            f[i].nvalues, f[i].reasons, f[i].nreasons);
    if (d->spool_fd >= 0) {
        /* Batches are accounted in order, and a later one's rows start
         * past this one's end: its bytes in the pipe's copy are not read
         * again, so the copy holds about the batches in flight. Where the
         * file system cannot punch holes, it keeps them. */
        off_t upto = (off_t)(ig_batch_end_offset(b) & ~4095LL);
        if (upto > d->spool_punched &&
            fallocate(d->spool_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      0, upto) == 0)
            d->spool_punched = upto;
    }
    for (size_t t = 0; t < nt; t++) {
        ig_results_add(d->results, (int)t, &per_target[t]);
        d->grown[t] += per_target[t].inserted;
    }
    add.failed = 0;  /* ig_results_fail_row counted them */
    add.skipped = 0; /* derived from the others when read */
    ig_results_add(d->results, -1, &add);
    {
        ig_run_progress p = progress_after(d, b, &delta);
        p.counts = ig_results_counts(d->results);
        pthread_mutex_lock(&d->mu); /* the map thread reads it meanwhile */
        d->prog = p;
        pthread_mutex_unlock(&d->mu);
    }
    memset(&sl->last, 0, sizeof(sl->last));
    sl->last.batch = d->prog.batches;
    sl->last.rows = delta.read;
    sl->last.inserted = delta.inserted;
    sl->last.updated = delta.updated;
    sl->last.unchanged = delta.unchanged;
    sl->last.skipped = delta.skipped;
    sl->last.failed = delta.failed;
    sl->have_last = 1;
}

/* Keep the planner's picture of parent tables true while this import
 * grows them. A table analyzed while empty makes every session plan its
 * foreign-key checks (cached per backend) as sequential scans, and keeps
 * them when the table has grown to thousands of rows: a parent-heavy
 * import ran 2.3x slower. ANALYZE sends an invalidation, so those plans are
 * made again. Runs when a parent target's rows inserted by this import
 * doubled (and at 64), outside any batch transaction; a role that does
 * not own the table only gets a warning, so failures are ignored.
 * SKIP_LOCKED: its SHARE UPDATE EXCLUSIVE lock blocks no reads or writes,
 * but waits behind a VACUUM, a CREATE INDEX CONCURRENTLY or another
 * ANALYZE; the import skips the refresh instead of waiting with them. */
static void refresh_parent_stats(dbside *d)
{
    size_t nt = ig_pipeline_ntargets(d->o->pipeline);

    for (size_t t = 0; t < nt; t++) {
        ig_pool_conn *pc = NULL;
        ig_err err;
        char *sql, *q;
        long long floor = d->analyzed_at[t] > 32 ? d->analyzed_at[t] : 32;

        if (!d->is_parent[t] || d->grown[t] < 2 * floor)
            continue;
        if (ig_pool_acquire_owned(d->o->pool, d, aborted_stop, d, &pc,
                                  &err) != IG_OK)
            return;
        q = ig_sql_qualified(ig_pipeline_target(d->o->pipeline, t)->table);
        /* A skipped table is a WARNING to the client: not news here.
         * SET LOCAL ends with the transaction, failed or not (a failed
         * one makes the pool discard the connection). */
        sql = ig_xasprintf("BEGIN; SET LOCAL client_min_messages = error; "
                           "ANALYZE (SKIP_LOCKED) %s; COMMIT", q);
        if (ig_db_exec(ig_pool_conn_pg(pc), sql, "refreshing statistics",
                       &err) != IG_OK)
            ig_log(IG_LOG_DEBUG, "%s", err.msg);
        ig_pool_release(d->o->pool, pc, IG_POOL_KEEP);
        d->analyzed_at[t] = d->grown[t];
        free(sql);
        free(q);
    }
}

/* Wait *delay ms before a retry, and double it for the next (at most
 * 5 s). */
static void back_off(long *delay)
{
    sleep_ms(*delay);
    *delay = *delay * 2 > 5000 ? 5000 : *delay * 2;
}

/* Apply batch seq, b, with retries on transient failures. */
static int apply_rows(dbside *d, ig_batch *b, long long seq, ig_counts *per,
                      ig_err *err)
{
    size_t nt = ig_pipeline_ntargets(d->o->pipeline);
    long delay = 200;
    int rc = IG_OK;

    if (aborted(d))
        return ig_err_set(err, IG_DB, "batch %lld not applied: the import "
                          "dropped its connections", seq);
    for (int attempt = 1; attempt <= RETRY_ATTEMPTS; attempt++) {
        memset(per, 0, (nt ? nt : 1) * sizeof(*per));
        for (size_t i = 0; i < ig_batch_nrows(b); i++)
            ig_batch_row_at(b, i)->failed = 0;
        if (d->dry)
            pthread_mutex_lock(&d->dry_mu);
        rc = apply_once(d, b, seq, per, err);
        if (d->dry)
            pthread_mutex_unlock(&d->dry_mu);
        if (rc != IG_DB_RETRY || batch_stop(d))
            break;
        ig_log(IG_LOG_WARN, "batch %lld, attempt %d: %s; retrying in %ld ms",
               seq, attempt, err ? err->msg : "", delay);
        back_off(&delay);
    }
    return rc;
}

/* Expect new keys in the next batch when this one only inserted (no row
 * updated, unchanged or rejected by PostgreSQL): the executor then tries
 * its insert-first path. A batch that hit existing keys turns it off until
 * a batch inserts everything again, so a wasted attempt costs at most one
 * batch per change of pattern. */
static void note_outcome(dbside *d, ig_batch *b, long long seq,
                         const ig_counts *per)
{
    size_t nt = ig_pipeline_ntargets(d->o->pipeline);
    long long old = 0, rejected = 0;
    unsigned char outcome = 0;

    if (nt > 0) {
        old = per[nt - 1].updated + per[nt - 1].unchanged;
        for (size_t i = 0; i < ig_batch_nrows(b); i++)
            rejected += ig_batch_row_at(b, i)->failed != 0;
        if (per[nt - 1].inserted + old + rejected > 0)
            outcome = old == 0 && rejected == 0 ? 1 : 2;
    }
    pthread_mutex_lock(&d->mu); /* the map thread reads them */
    d->outcome[seq % (long long)sizeof(d->outcome)] = outcome;
    if (outcome != 0 && !d->o->no_insert_first)
        d->insert_first = d->inserting = outcome == 1;
    pthread_mutex_unlock(&d->mu);
}

/* Why batch sl must wait for the batches being applied, or WAIT_NOT:
 * while the import only inserts (insert-first: the batches are COPYed
 * straight into the table, and two COPYs appending to the same table and
 * index pages ran slower than one), or when it shares a conflict key (by
 * hash) with one of them. A shared hash that is not a shared key only
 * costs waiting. */
enum { WAIT_NOT, WAIT_INSERTING, WAIT_KEY };

static int clashes(const dbside *d, const slot *sl)
{
    size_t n = ig_batch_nrows(sl->b);

    if (sl->keys == NULL)
        return 0;
    for (int i = 0; i < d->nslots; i++) {
        const slot *o = &d->slots[i];
        if (o == sl || o->state != SLOT_APPLYING || o->keys == NULL)
            continue;
        if (d->insert_first && ig_exec_can_insert_first(d->ex))
            return WAIT_INSERTING;
        for (size_t r = 0; r < n; r++) {
            const ig_batch_row *row = ig_batch_row_at(sl->b, r);
            if (row->elig[0] &&
                ig_keyset_find(o->keys, &row->khash[0], sizeof(row->khash[0])))
                return WAIT_KEY;
        }
    }
    return WAIT_NOT;
}

/* A writer. Takes the batches in order; a batch goes into flight beside
 * the others only when no conflict key of it is in theirs, so two
 * versions of one key are never written at once and the later one always
 * lands last. Each batch is its own transaction on its own connection;
 * concurrent batches touch disjoint rows, so they never wait on each
 * other's row locks. Outcomes are accounted in batch order (counts,
 * failed rows, the reject file, progress), whatever order the commits
 * came in. With one writer this is the plain sequence. */
static void *writer_main(void *arg)
{
    dbside *d = arg;
    size_t nt = ig_pipeline_ntargets(d->o->pipeline);
    ig_counts *per = ig_xcalloc(nt ? nt : 1, sizeof(*per));
    long long said = 0; /* the last batch whose wait was logged */

    pthread_mutex_lock(&d->mu);
    for (;;) {
        slot *sl = &d->slots[(d->next_take - 1) % d->nslots];
        ig_err err;
        int rc = IG_OK, applied = 0, stop, why;

        if (!(sl->state == SLOT_QUEUED && sl->seq == d->next_take)) {
            if (d->quit)
                break;
            pthread_cond_wait(&d->cv, &d->mu);
            continue;
        }
        if (!d->failed && (why = clashes(d, sl)) != WAIT_NOT) {
            if (sl->seq != said) /* once per batch */
                ig_log(IG_LOG_DEBUG, "batch %lld waits: %s", sl->seq,
                       why == WAIT_KEY
                           ? "a key of it is in a batch being applied"
                           : "batches that only insert go one at a time");
            said = sl->seq;
            pthread_cond_wait(&d->cv, &d->mu);
            continue;
        }
        d->next_take++;
        sl->state = SLOT_APPLYING;
        stop = d->failed; /* a batch failed: queued ones are not applied */
        pthread_cond_broadcast(&d->cv); /* the next batch may go too */
        pthread_mutex_unlock(&d->mu);

        ig_err_clear(&err);
        if (!stop) {
            rc = apply_rows(d, sl->b, sl->seq, per, &err);
            applied = rc == IG_OK;
        }

        pthread_mutex_lock(&d->mu);
        while (d->next_account != sl->seq)
            pthread_cond_wait(&d->cv, &d->mu);
        if (rc != IG_OK && !d->failed) {
            d->failed = 1;
            d->err = err;
        }
        if (applied) {
            ig_log(IG_LOG_DEBUG, "batch %lld committed (%zu rows)", sl->seq,
                   ig_batch_nrows(sl->b));
            if (ig_batch_nrows(sl->b) > 0)
                d->proven = 1; /* its upsert was planned or run */
            pthread_mutex_unlock(&d->mu); /* its turn: nobody else counts */
            account(d, sl, per);
            if (d->dry == NULL)
                refresh_parent_stats(d);
            note_outcome(d, sl->b, sl->seq, per);
            pthread_mutex_lock(&d->mu);
        }
        d->next_account++;
        sl->state = SLOT_FREE;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    free(per);
    return NULL;
}

/* Wait until sl is free (not queued, not being applied or accounted),
 * and report its last batch (hooks' after_batch, progress). IG_DB once a
 * batch failed. */
static int wait_free(dbside *d, ig_mapper *m, slot *sl)
{
    ig_hook_summary last;
    ig_run_progress prog;
    int have, failed;

    pthread_mutex_lock(&d->mu);
    while (sl->state != SLOT_FREE)
        pthread_cond_wait(&d->cv, &d->mu);
    have = sl->have_last;
    sl->have_last = 0;
    last = sl->last;
    prog = d->prog;
    failed = d->failed;
    pthread_mutex_unlock(&d->mu);
    if (have) {
        ig_mapper_after_batch(m, &last);
        if (d->o->progress)
            d->o->progress(&prog, d->o->progress_ud);
    }
    return failed ? IG_DB : IG_OK;
}

/* Queue sl (free, filled) as batch seq for the writers. With several
 * writers, its key hashes go in a set first (see clashes). */
static void hand_over(dbside *d, slot *sl, long long seq)
{
    if (d->nwriters > 1) {
        size_t n = ig_batch_nrows(sl->b);
        ig_keyset_free(sl->keys);
        sl->keys = ig_keyset_new();
        for (size_t r = 0; r < n; r++) {
            const ig_batch_row *row = ig_batch_row_at(sl->b, r);
            if (row->elig[0])
                ig_keyset_add(sl->keys, &row->khash[0],
                              sizeof(row->khash[0]), 1);
        }
    }
    pthread_mutex_lock(&d->mu);
    sl->seq = seq;
    sl->state = SLOT_QUEUED;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* ------------------------------------------------------------------ */
/* The reading side                                                    */

static void reader_opts(const ig_run_opts *o, ig_reader_opts *ro)
{
    const ig_source *src = ig_pipeline_source(o->pipeline);

    memset(ro, 0, sizeof(*ro));
    ro->file = o->file;
    ro->buf = o->buf;
    ro->buf_len = o->buf_len;
    ro->name = o->input_name;
    ro->delimiter = src->delimiter;
    ro->quote = src->quote;
    ro->header = src->header;
    ro->encoding = src->encoding;
    ro->max_field_bytes = src->max_field_bytes;
}

/* Count the data records of a seekable input, then rewind it. */
static int count_rows(const ig_run_opts *o, long long *n, ig_err *err)
{
    ig_reader_opts ro;
    ig_reader *r;
    ig_arena *a = ig_arena_new(0);
    ig_record rec;
    int got = 1, rc = IG_OK;

    *n = 0;
    reader_opts(o, &ro);
    r = ig_reader_new(&ro, err);
    if (r == NULL) {
        ig_arena_free(a);
        return err ? err->code : IG_IO;
    }
    while (rc == IG_OK) {
        rc = ig_reader_next(r, a, &rec, &got, err);
        if (rc != IG_OK || !got)
            break;
        (*n)++;
        if (*n % 4096 == 0)
            ig_arena_reset(a);
    }
    ig_reader_free(r);
    ig_arena_free(a);
    if (rc == IG_OK && o->file != NULL && fseek(o->file, 0, SEEK_SET) != 0)
        rc = ig_err_set(err, IG_IO, "%s: cannot rewind the input",
                        o->input_name);
    return rc;
}

/* An upper bound of the records of a seekable input: its physical lines
 * (CR, LF or CRLF; a record spans one line or more; a last line without
 * a terminator counts), then rewind it. A byte scan, about 20x cheaper
 * than the exact count's CSV parse, which is then only needed for an
 * input that may be over the limit. */
static int line_bound(const ig_run_opts *o, long long *n, ig_err *err)
{
    char chunk[65536];
    const char *p;
    size_t len;
    int prev_cr = 0, open_line = 0; /* bytes after the last terminator */

    *n = 0;
    for (size_t off = 0;;) {
        if (o->file != NULL) {
            len = fread(chunk, 1, sizeof(chunk), o->file);
            p = chunk;
            if (len == 0 && ferror(o->file))
                return ig_err_set(err, IG_IO, "%s: read error",
                                  o->input_name);
        } else {
            len = o->buf_len - off < sizeof(chunk) ? o->buf_len - off
                                                   : sizeof(chunk);
            p = o->buf + off;
            off += len;
        }
        if (len == 0)
            break;
        for (size_t i = 0; i < len; i++) {
            if (p[i] == '\n')
                *n += !prev_cr; /* CRLF was counted at its CR */
            else if (p[i] == '\r')
                (*n)++;
            prev_cr = p[i] == '\r';
        }
        open_line = p[len - 1] != '\n' && p[len - 1] != '\r';
    }
    *n += open_line;
    if (o->file != NULL && fseek(o->file, 0, SEEK_SET) != 0)
        return ig_err_set(err, IG_IO, "%s: cannot rewind the input",
                          o->input_name);
    return IG_OK;
}

int ig_run_preflight(const ig_run_opts *o, long long *rows, ig_err *err)
{
    ig_reader_opts ro;
    ig_reader *r = NULL;
    ig_results *res = NULL;
    ig_mapper *m = NULL;
    const char **hdr = NULL;
    size_t ncols;
    int rc;

    *rows = 0;
    reader_opts(o, &ro);
    ro.file = NULL;
    r = ig_reader_new(&ro, err);
    if (r == NULL) {
        rc = err ? err->code : IG_DATA;
        goto out;
    }
    ncols = ig_reader_ncolumns(r);
    hdr = ig_xcalloc(ncols ? ncols : 1, sizeof(*hdr));
    for (size_t i = 0; i < ncols; i++)
        hdr[i] = ig_reader_column(r, i);
    {
        size_t nt = ig_pipeline_ntargets(o->pipeline);
        const char **names = ig_xcalloc(nt ? nt : 1, sizeof(char *));
        ig_results_opts rop = {nt, names, 1};
        for (size_t t = 0; t < nt; t++)
            names[t] = ig_pipeline_target(o->pipeline, t)->name;
        res = ig_results_new(&rop);
        free(names);
    }
    m = ig_mapper_new(o->pipeline, hdr, ncols, NULL, res, err);
    if (m == NULL) {
        rc = err ? ig_err_prefix(err, "%s", o->input_name) : IG_CONFIG;
        goto out;
    }
    rc = count_rows(o, rows, err);
out:
    ig_mapper_free(m);
    ig_results_free(res);
    free(hdr);
    ig_reader_free(r);
    return rc;
}

static ig_hook *open_hook(const ig_pipeline *p, ig_err *err, int *rc)
{
    ig_hook_opts ho;
    ig_hook *hook;

    *rc = IG_OK;
    if (!ig_pipeline_hook_opts(p, &ho))
        return NULL;
    hook = ig_hook_new(&ho, err);
    if (hook == NULL)
        *rc = err ? err->code : IG_SCRIPT;
    return hook;
}

/* ig_pool_acquire_owned's stop before the first batch: a cancel, or
 * the run's time limit passed (a run must not wait out the pool's
 * connect budget past it), or the run gave up before it needed the
 * database (abandon, set by another thread). */
typedef struct start_clock {
    const ig_run_opts *o;
    double t0;
    const int *abandon; /* NULL, or read atomically */
    dbside *d;          /* owner of the connections; its watchdog */
} start_clock;

static int start_stop(const void *ud)
{
    const start_clock *c = ud;
    return stop_asked(c->o) || aborted(c->d) ||
           (c->abandon && __atomic_load_n(c->abandon, __ATOMIC_ACQUIRE)) ||
           (c->o->timeout_seconds > 0 &&
            ig_clock_s() - c->t0 >= (double)c->o->timeout_seconds);
}

/* ig_reader_opts.stop: start_stop for the reader's waits on a pipe. */
static int input_stop(void *ud)
{
    return start_stop(ud);
}

/* build_exec gave up on a database it could not reach because the run
 * was canceled or out of time: set that status and say so, with what the
 * database answered. */
static void stopped_connecting(const ig_run_opts *o, ig_run_status *status,
                               ig_err *err)
{
    char why[sizeof(err->msg)];

    *status = stop_asked(o) ? IG_RUN_CANCELED : IG_RUN_TIMED_OUT;
    if (err == NULL)
        return;
    snprintf(why, sizeof(why), "%s", err->msg);
    if (*status == IG_RUN_CANCELED)
        ig_err_set(err, IG_CANCELED, "canceled while connecting: %s", why);
    else
        ig_err_set(err, IG_TIMEOUT, "timed out after %ld s "
                   "(IMPORT_TIMEOUT_SECONDS) while connecting: %s",
                   o->timeout_seconds, why);
}

/* The executor, planned on a connection of the pool. A connection lost
 * meanwhile is retried like a batch. */
static int build_exec(const start_clock *clk, ig_exec **ex, ig_err *err)
{
    const ig_run_opts *o = clk->o;
    long delay = 200;
    int rc = IG_OK;

    *ex = NULL;
    for (int attempt = 1; attempt <= RETRY_ATTEMPTS; attempt++) {
        ig_pool_conn *pc = NULL;

        rc = ig_pool_acquire_owned(o->pool, clk->d, start_stop, clk, &pc,
                                   err);
        if (rc != IG_OK)
            return rc; /* the pool retried within its budget */
        *ex = ig_exec_new(o->pipeline, ig_pool_conn_pg(pc), err);
        rc = *ex != NULL ? IG_OK : err ? (int)err->code : IG_DB;
        ig_pool_release(o->pool, pc,
                        rc == IG_OK ? IG_POOL_KEEP : IG_POOL_DISCARD);
        if (rc != IG_DB_RETRY || start_stop(clk))
            break;
        ig_log(IG_LOG_WARN, "planning the import, attempt %d: %s; retrying "
               "in %ld ms", attempt, err ? err->msg : "", delay);
        back_off(&delay);
    }
    return rc;
}

/* The executor planned by a thread of its own while the caller maps the
 * first batch: connecting, authenticating and reading the catalog take
 * about as long as mapping 5000 rows, and the database would otherwise
 * wait for both in turn. */
typedef struct planner {
    start_clock clk;
    int abandon;      /* the caller no longer needs it (atomic) */
    ig_exec *ex;
    ig_err err;
    int rc;
    pthread_t th;
    int running;
} planner;

static void *plan_main(void *arg)
{
    planner *pl = arg;

    pl->rc = build_exec(&pl->clk, &pl->ex, &pl->err);
    return NULL;
}

static void plan_start(planner *pl, const ig_run_opts *o, dbside *d,
                       double t0)
{
    memset(pl, 0, sizeof(*pl));
    pl->clk.o = o;
    pl->clk.t0 = t0;
    pl->clk.abandon = &pl->abandon;
    pl->clk.d = d;
    pl->running = pthread_create(&pl->th, NULL, plan_main, pl) == 0;
}

/* Wait for the planner; with give_up, stop its waiting for a database
 * that is down first, and drop what it made. Its result in *ex, *err. */
static int plan_join(planner *pl, int give_up, ig_exec **ex, ig_err *err)
{
    if (!pl->running)
        return build_exec(&pl->clk, ex, err);
    if (give_up)
        __atomic_store_n(&pl->abandon, 1, __ATOMIC_RELEASE);
    pthread_join(pl->th, NULL);
    pl->running = 0;
    if (give_up) {
        ig_exec_free(pl->ex);
        return IG_OK;
    }
    *ex = pl->ex;
    if (pl->rc != IG_OK && err)
        *err = pl->err;
    return pl->rc;
}

/* ig_mapper_hash_fn: the database's hashes of keys, on a connection of
 * the pool (with retries, as a batch) or the dry run's. Called by the map
 * thread. */
static int hash_keys(void *ud, size_t ti, const ig_value *keys, size_t n,
                     unsigned long long *out, ig_err *err)
{
    dbside *d = ud;
    long delay = 200;
    int rc = IG_OK;

    if (d->dry) {
        pthread_mutex_lock(&d->dry_mu);
        rc = ig_exec_key_hashes(d->ex, ig_pool_conn_pg(d->dry), ti, keys, n,
                                out, err);
        pthread_mutex_unlock(&d->dry_mu);
        return rc == IG_DB_RETRY ? IG_DB : rc;
    }
    for (int attempt = 1; attempt <= RETRY_ATTEMPTS; attempt++) {
        ig_pool_conn *pc = NULL;
        rc = ig_pool_acquire_owned(d->o->pool, d, batch_stop, d, &pc, err);
        if (rc == IG_OK) {
            rc = ig_exec_key_hashes(d->ex, ig_pool_conn_pg(pc), ti, keys, n,
                                    out, err);
            ig_pool_release(d->o->pool, pc,
                            rc == IG_DB_RETRY ? IG_POOL_DISCARD
                                              : IG_POOL_KEEP);
        }
        if (rc != IG_DB_RETRY || batch_stop(d))
            break;
        ig_log(IG_LOG_WARN, "hashing keys, attempt %d: %s; retrying in %ld "
                            "ms", attempt, err ? err->msg : "", delay);
        back_off(&delay);
    }
    return rc;
}

/* The reader stopped waiting on a pipe that had nothing to read: the run
 * was canceled or ran out of time (the watchdog acts only after that).
 * Set that status and say so; what was read before is applied. */
static void stopped_reading(const ig_run_opts *o, ig_run_status *status,
                            ig_err *err)
{
    const char *from = o->input_name && strcmp(o->input_name, "-") != 0
                           ? o->input_name
                           : "standard input";

    *status = stop_asked(o) ? IG_RUN_CANCELED : IG_RUN_TIMED_OUT;
    if (*status == IG_RUN_CANCELED)
        ig_err_set(err, IG_CANCELED, "canceled while waiting for more "
                   "input from %s; stopped at a batch boundary", from);
    else
        ig_err_set(err, IG_TIMEOUT, "timed out after %ld s "
                   "(IMPORT_TIMEOUT_SECONDS) while waiting for more input "
                   "from %s; stopped at a batch boundary",
                   o->timeout_seconds, from);
}

/* Fill b with up to limit records. *eof set at end of input. */
static int fill_batch(const ig_run_opts *o, long limit, ig_reader *r,
                      ig_mapper *m, ig_batch *b, int resolve, int *eof,
                      ig_run_status *status, ig_err *err)
{
    long n = 0;
    ig_record rec;
    int got, rc = IG_OK;

    ig_batch_reserve(b, (size_t)limit);
    ig_mapper_reserve(m, (size_t)limit);
    while (n < limit) {
        rc = ig_reader_next(r, ig_batch_arena(b), &rec, &got, err);
        if (rc == IG_CANCELED) { /* the rows read so far make a batch */
            stopped_reading(o, status, err);
            *eof = 1;
            rc = IG_OK;
            break;
        }
        if (rc != IG_OK)
            return rc;
        if (!got) {
            *eof = 1;
            break;
        }
        if (rec.recno > o->max_rows) {
            *status = IG_RUN_LIMIT;
            ig_err_set(err, IG_LIMIT,
                       "%s: stopped at IMPORT_MAX_ROWS=%lld: the input has "
                       "more rows; the first %lld were imported",
                       o->input_name, o->max_rows, o->max_rows);
            *eof = 1;
            break;
        }
        if (rec.recno <= o->skip_rows) {
            /* Committed by an earlier attempt: its keys must still count
             * for duplicates: error / first. Skipped rows come first, so
             * the batch is empty and its arena can be reused. */
            rc = ig_mapper_remember(m, &rec, b, err);
            if (rc == IG_OK && ig_batch_read(b) == 0 &&
                rec.recno % 1024 == 0) {
                rc = ig_mapper_resolve(m, b, err); /* before the reset */
                ig_batch_reset(b);
            }
            if (rc != IG_OK)
                return rc;
            continue;
        }
        n++;
        ig_batch_note_read(b, 1);
        ig_batch_set_end(b, ig_reader_bytes(r), rec.recno);
        rc = ig_mapper_row(m, &rec, b, err);
        if (rc == IG_CONFIG) /* the input does not fit: name it */
            return ig_err_prefix(err, "%s", o->input_name);
        if (rc != IG_OK)
            return rc;
        /* Wide rows (a few hundred columns, most of them unmapped but
         * kept for the reject file) end a batch early, so memory stays
         * flat whatever the row width. */
        if (ig_arena_used(ig_batch_arena(b)) >= BATCH_MAX_BYTES)
            break;
    }
    return resolve ? ig_mapper_resolve(m, b, err) : IG_OK;
}

/* Open a dry run's single transaction. */
static int begin_dry(dbside *d, ig_err *err)
{
    int rc = ig_pool_acquire_owned(d->o->pool, d, batch_stop, d, &d->dry,
                                   err);
    if (rc == IG_OK)
        rc = ig_db_exec(ig_pool_conn_pg(d->dry),
                        "BEGIN; SET CONSTRAINTS ALL IMMEDIATE; SET LOCAL "
                        "idle_in_transaction_session_timeout = 0",
                        "starting the dry run", err);
    return rc;
}

static void end_dry(dbside *d)
{
    PGresult *r;
    if (d->dry == NULL)
        return;
    r = PQexec(ig_pool_conn_pg(d->dry), "ROLLBACK");
    PQclear(r);
    ig_pool_conn_set_tag(d->dry, 0); /* the rollback dropped the stage */
    ig_pool_release(d->o->pool, d->dry, IG_POOL_KEEP);
    d->dry = NULL;
}

/* The map thread's view of the outcomes, for next_batch_size. */
typedef struct sizing {
    long long upto; /* outcomes of batches 1..upto read */
    int inserting;  /* the last of them with rows only inserted */
} sizing;

/* Rows for the next batch: IMPORT_BATCH_SIZE, or twice that while the
 * import only inserts new keys (insert-first). Batches are small so that
 * the row locks of updated rows are held briefly; rows a transaction
 * inserts are invisible to other sessions and block nobody but an
 * inserter of the same new key, and COPY ran about 15% faster per row in
 * batches of 10000 than of 5000 (docs/performance.md). Every batch is a
 * whole number of IMPORT_BATCH_SIZE rows from the start of the input, so
 * the rows of one such window always share a batch (the README's advice
 * for duplicate keys). A smaller first batch let the database start
 * sooner (2-3% at 10k rows) but moved every boundary after it. */
static long next_batch_size(dbside *d, long long seq, sizing *z)
{
    long size = d->o->batch_size;

    /* The outcomes up to seq - lag, in order: the last batch with rows
     * says (seen, not only hoped for). */
    pthread_mutex_lock(&d->mu);
    for (; z->upto < seq - d->lag; z->upto++) {
        unsigned char oc =
            d->outcome[(z->upto + 1) % (long long)sizeof(d->outcome)];
        if (oc != 0)
            z->inserting = oc == 1;
    }
    pthread_mutex_unlock(&d->mu);
    if (z->inserting && !d->o->no_insert_first &&
        ig_exec_can_insert_first(d->ex))
        size *= 2;
    return size;
}

/* Whether a target looks rows up (possibly in its own table, where a
 * batch must see the rows of the batches before it committed). */
static int has_lookups(const ig_pipeline *p)
{
    for (size_t t = 0; t < ig_pipeline_ntargets(p); t++) {
        const ig_target *tg = ig_pipeline_target(p, t);
        for (size_t c = 0; c < tg->n_cols; c++)
            if (tg->cols[c].source == IG_COLSRC_LOOKUP)
                return 1;
    }
    return 0;
}

/* The watchdog. Every WATCH_TICK_MS once the run was canceled or ran out
 * of time: a connection of the run whose server has sent nothing for its
 * statement_timeout plus STOP_GRACE_MS is waiting for an answer that is
 * not coming (a server stopped, or stuck on its storage, answers neither
 * the statement nor its statement_timeout; a lost network takes
 * keepalives a minute to notice). Then mark the run aborted (retry
 * nothing, start no batch) and shut the run's connections down, so that
 * each wait ends as a lost connection. A batch that is only slow, or a
 * run waiting on its input, is left alone. */
static void *watch_main(void *arg)
{
    dbside *d = arg;
    const ig_run_opts *o = d->o;
    double stop_at = -1;

    pthread_mutex_lock(&d->watch_mu);
    while (!d->watch_quit) {
        struct timespec until = ig_clock_cond_deadline(WATCH_TICK_MS);
        double now;

        pthread_cond_timedwait(&d->watch_cv, &d->watch_mu, &until);
        if (d->watch_quit)
            break;
        now = ig_clock_s();
        if (stop_at < 0 &&
            (stop_asked(o) || (o->timeout_seconds > 0 &&
                               now - d->t0 >= (double)o->timeout_seconds)))
            stop_at = now;
        if (stop_at < 0)
            continue;
        if (!aborted(d)) {
            if (ig_pool_silent_owned(o->pool, d, STOP_GRACE_MS) == 0)
                continue;
            ig_log(IG_LOG_WARN, "%s, and the database has sent nothing for "
                   "longer than its statement timeout and %d s: dropping "
                   "the import's connections",
                   stop_asked(o) ? "canceled" : "out of time",
                   STOP_GRACE_MS / 1000);
            __atomic_store_n(&d->aborted, 1, __ATOMIC_RELEASE);
        }
        /* every tick: a connection borrowed since is dropped too */
        ig_pool_abort_owned(o->pool, d, -1);
    }
    pthread_mutex_unlock(&d->watch_mu);
    return NULL;
}

static void watch_start(dbside *d)
{
    pthread_mutex_init(&d->watch_mu, NULL);
    pthread_cond_init(&d->watch_cv, NULL);
    d->watching = pthread_create(&d->watch_th, NULL, watch_main, d) == 0;
    if (!d->watching)
        ig_log(IG_LOG_WARN, "cannot start the import's watchdog thread: a "
               "database that stops answering will hold the import up");
}

static void watch_stop(dbside *d)
{
    if (d->watching) {
        pthread_mutex_lock(&d->watch_mu);
        d->watch_quit = 1;
        pthread_cond_signal(&d->watch_cv);
        pthread_mutex_unlock(&d->watch_mu);
        pthread_join(d->watch_th, NULL);
        d->watching = 0;
    }
    pthread_cond_destroy(&d->watch_cv);
    pthread_mutex_destroy(&d->watch_mu);
}

/* Whether the run must stop before its next batch (canceled, out of
 * time): then *status and *err say so. */
static int stop_before_batch(const ig_run_opts *o, double t0,
                             ig_run_status *status, ig_err *err)
{
    if (o->cancel && *o->cancel) {
        *status = IG_RUN_CANCELED;
        ig_err_set(err, IG_CANCELED, "canceled; stopped at a batch "
                   "boundary");
        return 1;
    }
    if (o->timeout_seconds > 0 && ig_clock_s() - t0 >= (double)o->timeout_seconds) {
        *status = IG_RUN_TIMED_OUT;
        ig_err_set(err, IG_TIMEOUT, "timed out after %ld s "
                   "(IMPORT_TIMEOUT_SECONDS); stopped at a batch boundary",
                   o->timeout_seconds);
        return 1;
    }
    return 0;
}

/* first: the first batch is already in slot 0 (mapped while the
 * executor was planned, resolved after stop_before_batch said go on),
 * first_eof whether it ended the input. */
static int read_loop(const ig_run_opts *o, dbside *d, ig_reader *r,
                     ig_mapper *m, int first, int first_eof,
                     ig_run_status *status, ig_err *err)
{
    int eof = 0, rc = IG_OK, width_told = 0;
    long long batch_no = 0, queued = 0;
    sizing z = {0, 0};

    /* Fill one buffer while the writers apply the others; the next batch
     * is queued before the current ones are done, so a writer never waits
     * for this thread to wake up. Batch seq lives in slot (seq - 1) %
     * nslots. */
    while (!eof && rc == IG_OK) {
        slot *sl = &d->slots[queued % d->nslots];
        rc = wait_free(d, m, sl);
        if (rc != IG_OK)
            break;
        if (!(first && batch_no == 0) &&
            stop_before_batch(o, d->t0, status, err))
            break;
        if (first && batch_no == 0) {
            batch_no++;
            eof = first_eof;
        } else {
            ig_batch_reset(sl->b);
            ig_mapper_before_batch(m, ++batch_no);
            rc = fill_batch(o, next_batch_size(d, queued + 1, &z), r, m,
                            sl->b, 1, &eof, status, err);
        }
        if (rc != IG_OK)
            break;
        /* Before the batch's failed rows are written: a ragged row of an
         * input without a header is padded to this width. */
        if (o->reject && !width_told && ig_reader_ncolumns(r) == 0 &&
            ig_reader_width(r) >= 0) {
            ig_results_set_reject_width(d->results,
                                        (size_t)ig_reader_width(r));
            width_told = 1;
        }
        if (ig_batch_read(sl->b) > 0)
            hand_over(d, sl, ++queued);
    }
    /* The oldest batch first, so hooks see them in order. */
    for (int i = 0; i < d->nslots; i++)
        if (wait_free(d, m, &d->slots[(queued + i) % d->nslots]) != IG_OK &&
            rc == IG_OK)
            rc = IG_DB;
    return rc;
}

/* A temporary file in $TMPDIR (else /tmp), already unlinked, open for
 * reading and writing; NULL with errno on failure. */
static FILE *spool_file(void)
{
    const char *dir = getenv("TMPDIR");
    char *path;
    int fd;
    FILE *f;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    path = ig_xasprintf("%s/ingot-input-XXXXXX", dir);
    fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    free(path);
    if (fd < 0)
        return NULL;
    f = fdopen(fd, "w+");
    if (f == NULL)
        close(fd);
    return f;
}

int ig_run(const ig_run_opts *o, ig_results *results, ig_run_status *status,
           ig_run_progress *final, ig_err *err)
{
    ig_reader_opts ro;
    ig_reader *r = NULL;
    ig_hook *hook = NULL;
    ig_mapper *m = NULL;
    ig_exec *ex = NULL;
    dbside d;
    pthread_t th[IG_RUN_MAX_WRITERS];
    int started = 0, rc;
    long long total = -1;
    const char **hdr = NULL; /* header names, borrowed from the reader */
    size_t ncols = 0;
    /* The first batch is mapped while the executor is planned (planner),
     * except on a resumed run, whose skipped rows need the database's key
     * comparison as they are read. */
    int early = o->skip_rows == 0, first_eof = 0;
    planner pl;
    start_clock clk = {o, 0, NULL, &d};
    FILE *spool = NULL; /* a copy of a pipe, for the reject file */
    ig_batch *first = NULL;
    ig_run_status first_status = IG_RUN_DONE;
    long first_size = o->batch_size;

    memset(&pl, 0, sizeof(pl));
    memset(&d, 0, sizeof(d));
    d.o = o;
    d.results = results;
    d.t0 = ig_clock_s();
    d.prog.total_rows = -1;
    d.prog.bytes_total = o->bytes_total;
    d.nwriters = 1;
    d.insert_first = !o->no_insert_first; /* new keys expected at first,
                                             in an empty table */
    if (o->writers > 1 && ig_pipeline_ntargets(o->pipeline) == 1 &&
        !has_lookups(o->pipeline) && o->on_commit == NULL)
        d.nwriters = o->writers > IG_RUN_MAX_WRITERS ? IG_RUN_MAX_WRITERS
                                                     : o->writers;
    d.next_take = d.next_account = 1;
    d.spool_fd = -1;
    {
        size_t nt = ig_pipeline_ntargets(o->pipeline);
        d.grown = ig_xcalloc(nt ? nt : 1, sizeof(*d.grown));
        d.analyzed_at = ig_xcalloc(nt ? nt : 1, sizeof(*d.analyzed_at));
        d.is_parent = ig_xcalloc(nt ? nt : 1, sizeof(*d.is_parent));
        for (size_t t = 0; t < nt; t++)
            d.is_parent[t] = ig_pipeline_is_parent(o->pipeline, t);
    }
    *status = IG_RUN_FAILED;
    pthread_mutex_init(&d.mu, NULL);
    pthread_mutex_init(&d.dry_mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    watch_start(&d);

    /* The connection is made while the input is checked and the first
     * batch read (the planner below, or build_exec for a resumed run,
     * takes it): connecting and authenticating take longer than either. */
    ig_pool_warm(o->pool);
    if (o->seekable) {
        long long bound = 0;
        rc = line_bound(o, &bound, err);
        if (rc == IG_OK && bound > o->max_rows)
            rc = count_rows(o, &total, err); /* may be over: count exactly */
        if (rc != IG_OK)
            goto out;
        /* A second writer opens and warms its own connection: on a file
         * of a few batches that costs more than it saves (at 10k rows two
         * writers ran 0.27-0.30 s, one 0.25-0.27 s). */
        if (bound < 4 * o->batch_size)
            d.nwriters = 1;
        /* An input of at most two batch windows goes as one batch
         * (unless the pipeline has a hook, see below): a second
         * transaction costs its round trips, statements and commit
         * (about 2% at 10k rows), where overlapping the reading of the
         * second window with the first one's upsert saves less. */
        if (bound - (ig_pipeline_source(o->pipeline)->header ? 1 : 0) <=
            2 * (long long)o->batch_size)
            first_size = 2 * o->batch_size;
        if (total > o->max_rows) {
            *status = IG_RUN_LIMIT;
            rc = ig_err_set(err, IG_LIMIT,
                            "%s has %lld data rows, more than "
                            "IMPORT_MAX_ROWS=%lld: refused before writing "
                            "anything (raise IMPORT_MAX_ROWS, --max-rows)",
                            o->input_name, total, o->max_rows);
            goto out;
        }
        d.prog.total_rows = total;
    }
    clk.t0 = d.t0;
    reader_opts(o, &ro);
    ro.stop = input_stop;
    ro.stop_ud = &clk;
    if (o->reject && o->file != NULL && !o->seekable) {
        /* The reject file copies a row the reader could not parse from
         * the input as it was: a pipe's bytes are gone once read, so
         * they are kept in a temporary file in $TMPDIR (deleted at once;
         * the bytes of accounted batches are given back as it goes).
         * Without one such rows are written from their values. */
        spool = spool_file();
        if (spool == NULL)
            ig_log(IG_LOG_WARN, "%s: no temporary file for a copy of the "
                   "input (%s): rows that cannot be parsed go to the reject "
                   "file as their fields, not as they were",
                   o->input_name, strerror(errno));
        ro.spool = spool;
    }
    r = ig_reader_new(&ro, err);
    if (r == NULL) {
        rc = err ? err->code : IG_IO;
        if (rc == IG_CANCELED) { /* stopped while the header was awaited */
            stopped_reading(o, status, err);
            rc = IG_OK;
        }
        goto out;
    }
    hook = open_hook(o->pipeline, err, &rc);
    if (rc != IG_OK)
        goto out;
    /* A hook's per-row work on this thread is better overlapped with the
     * first window's upsert than added before it (a trivial one cost 7%
     * at 10k rows as one batch, 3% as two: docs/performance.md). */
    if (hook != NULL)
        first_size = o->batch_size;
    ncols = ig_reader_ncolumns(r);
    hdr = ig_xcalloc(ncols ? ncols : 1, sizeof(*hdr));
    for (size_t i = 0; i < ncols; i++)
        hdr[i] = ig_reader_column(r, i);
    m = ig_mapper_new(o->pipeline, hdr, ncols, hook, results, err);
    if (m == NULL) {
        rc = err ? ig_err_prefix(err, "%s", o->input_name) : IG_CONFIG;
        goto out;
    }
    if (early) {
        /* Not before the input's header and the hook are known good: a
         * planner must be waited for, and a database that does not
         * answer would hold up their errors. The first batch's
         * duplicate-key decisions wait for the catalog (below). */
        plan_start(&pl, o, &d, d.t0);
        ig_mapper_defer_keys(m);
        first = ig_batch_new_huge(); /* read while connecting: waited for */
        ig_mapper_before_batch(m, 1);
        rc = fill_batch(o, first_size, r, m, first, 0, &first_eof,
                        &first_status, err);
        if (rc != IG_OK)
            goto out;
        rc = plan_join(&pl, 0, &ex, err);
    } else {
        rc = build_exec(&clk, &ex, err);
    }
    if (rc != IG_OK) {
        /* The database was away and the caller's cancel or time limit
         * ended the wait for it: that, not a failure, is the outcome. */
        if (rc == IG_DB_RETRY && start_stop(&clk))
            stopped_connecting(o, status, err);
        goto out;
    }
    d.ex = ex;
    if (!ig_exec_target_was_empty(ex)) /* expect existing keys at first */
        d.insert_first = 0;
    {
        size_t nt = ig_pipeline_ntargets(o->pipeline);
        unsigned char *hashed = ig_xcalloc(nt ? nt : 1, 1);
        for (size_t t = 0; t < nt; t++)
            hashed[t] = (unsigned char)ig_exec_hashes_keys(ex, t);
        ig_mapper_hash_keys(m, hashed, hash_keys, &d);
        free(hashed);
    }
    if (first != NULL) {
        /* Resolving counts its skipped rows: not for a batch that will not
         * be applied. A batch the stop cut short while the input had
         * nothing to read is applied, as later batches are. */
        if (first_status != IG_RUN_CANCELED &&
            first_status != IG_RUN_TIMED_OUT &&
            stop_before_batch(o, d.t0, status, err)) {
            rc = IG_OK;
            goto out;
        }
        if ((rc = ig_mapper_resolve(m, first, err)) != IG_OK)
            goto out;
    }
    if (ig_exec_inexact_key(ex) != NULL) {
        /* Two writers could hold two spellings of one key at once. */
        ig_log(IG_LOG_WARN,
               "%s: the database may find keys equal whose mapped values "
               "differ, and ingot can only compare their bytes for this "
               "type: such rows are not duplicates to the `duplicates` "
               "policy, they are applied one after the other in file "
               "order (the last one wins, counted as updated); one writer",
               ig_exec_inexact_key(ex));
        d.nwriters = 1;
    }
    if (o->reject)
        ig_results_set_reject(
            results, o->reject, hdr, ncols,
            ig_pipeline_source(o->pipeline)->delimiter,
            ig_pipeline_source(o->pipeline)->quote,
            ig_pipeline_source(o->pipeline)->encoding == IG_ENCODING_LATIN1
                ? "ISO-8859-1"
            : ig_pipeline_source(o->pipeline)->encoding == IG_ENCODING_WIN1252
                ? "WINDOWS-1252"
                : NULL);
    if (o->reject && (o->buf != NULL || (o->seekable && o->file != NULL)))
        ig_results_set_reject_source(results,
                                     o->buf ? -1 : fileno(o->file), o->buf,
                                     o->buf_len);
    else if (spool != NULL) {
        ig_results_set_reject_source(results, fileno(spool), NULL, 0);
        d.spool_fd = fileno(spool);
    }
    /* The writer count is final: one buffer more than the batches that can
     * be in flight (a third buffer for one writer would only touch fresh
     * memory, and fresh pages cost a page fault each). A dry run has one
     * writer, but sizes its batches as the real run would. */
    d.lag = d.nwriters + 1;
    if (o->dry_run)
        d.nwriters = 1;
    d.nslots = d.nwriters + 1;
    d.slots = ig_xcalloc((size_t)d.nslots, sizeof(*d.slots));
    for (int i = 0; i < d.nslots; i++)
        d.slots[i].b = ig_batch_new();
    if (first != NULL) { /* batch 1 goes from slot 0 */
        ig_batch_free(d.slots[0].b);
        d.slots[0].b = first;
        first = NULL;
        early = 2;
    }
    if (o->dry_run) {
        rc = begin_dry(&d, err);
        if (rc != IG_OK)
            goto out;
    }
    for (; started < d.nwriters; started++)
        if (pthread_create(&th[started], NULL, writer_main, &d) != 0)
            break;
    if (started == 0) {
        rc = ig_err_set(err, IG_INTERNAL, "cannot start a writer thread");
        goto out;
    }
    if (started < d.nwriters) /* the batches still go, fewer at once */
        ig_log(IG_LOG_WARN, "only %d of %d writer threads could be started",
               started, d.nwriters);
    *status = first_status; /* IG_RUN_DONE, or the first batch met the
                               row limit */
    rc = read_loop(o, &d, r, m, early == 2, first_eof, status, err);
    if (rc == IG_DB || d.failed) {
        if (err && d.failed)
            *err = d.err;
        rc = d.err.code != IG_OK ? (int)d.err.code : IG_DB;
        *status = IG_RUN_FAILED;
    } else if (rc != IG_OK) {
        *status = IG_RUN_FAILED;
    }

out:
    if (pl.running) /* an early failure: the plan is not needed */
        (void)plan_join(&pl, 1, NULL, NULL);
    ig_pool_unwarm(o->pool); /* refused before planning: not needed */
    ig_batch_free(first);
    if (started) {
        pthread_mutex_lock(&d.mu);
        d.quit = 1;
        pthread_cond_broadcast(&d.cv);
        pthread_mutex_unlock(&d.mu);
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
    }
    end_dry(&d);
    watch_stop(&d);
    if (aborted(&d) && *status != IG_RUN_DONE && *status != IG_RUN_LIMIT) {
        /* What failed then failed because its connection was dropped. */
        char why[sizeof(err->msg)] = "";

        if (err)
            snprintf(why, sizeof(why), "%.*s", (int)strcspn(err->msg, "\n"),
                     err->msg); /* libpq's ends in a second line */
        *status = stop_asked(o) ? IG_RUN_CANCELED : IG_RUN_TIMED_OUT;
        if (*status == IG_RUN_CANCELED)
            rc = ig_err_set(err, IG_CANCELED, "canceled, and the database "
                            "sent nothing for longer than its statement "
                            "timeout and %d s: the import dropped its "
                            "connections (%s)",
                            STOP_GRACE_MS / 1000, why);
        else
            rc = ig_err_set(err, IG_TIMEOUT, "timed out after %ld s "
                            "(IMPORT_TIMEOUT_SECONDS), and the database sent "
                            "nothing for longer than its statement timeout "
                            "and %d s: the import dropped its connections "
                            "(%s)",
                            o->timeout_seconds, STOP_GRACE_MS / 1000, why);
    }
    if (o->reject) {
        ig_err cerr;
        if (ig_results_close_reject(results, &cerr) != IG_OK &&
            rc == IG_OK) {
            rc = cerr.code;
            if (err)
                *err = cerr;
            *status = IG_RUN_FAILED;
        }
    }
    if (final) {
        *final = d.prog;
        final->total_rows = total;
        final->elapsed = ig_clock_s() - d.t0;
        final->bytes = r ? ig_reader_bytes(r) : 0;
        final->counts = ig_results_counts(results);
    }
    ig_exec_free(ex);
    ig_mapper_free(m);
    ig_hook_free(hook);
    ig_reader_free(r);
    if (spool != NULL) {
        ig_results_set_reject_source(results, -1, NULL, 0);
        fclose(spool);
    }
    free(hdr);
    for (int i = 0; i < d.nslots; i++) {
        ig_batch_free(d.slots[i].b);
        ig_keyset_free(d.slots[i].keys);
    }
    free(d.slots);
    free(d.grown);
    free(d.analyzed_at);
    free(d.is_parent);
    pthread_cond_destroy(&d.cv);
    pthread_mutex_destroy(&d.dry_mu);
    pthread_mutex_destroy(&d.mu);
    if (*status != IG_RUN_FAILED && rc != IG_OK)
        rc = IG_OK; /* timed out / canceled / limit: results are valid */
    return rc;
}
