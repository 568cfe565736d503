/*
 * worker.c - the import threads, their heartbeats, and the housekeeper;
 * see worker.h for the model.
 *
 * Per import thread ("slot"): a queue connection (claim, finish, LISTEN),
 * a heartbeat connection lent to the job's heartbeat thread while a job
 * runs, and a runner pool. The slot's cancel flag is the runner's cancel
 * input; whoever sets it (heartbeat: cancel requested or lease lost;
 * on_commit: lease lost; ig_worker_stop: shutdown) records why in
 * slot->reason first, under the worker mutex, so the thread knows how to
 * end the job once the runner returns.
 *
 * Log lines that concern a job go through ig_log_job (job id + pipeline);
 * no line carries conninfo, tokens or row values.
 */
#include "worker.h"
#include "clock.h"

#include "db.h"
#include "log.h"
#include "pipeline.h"
#include "pool.h"
#include "report.h"
#include "results.h"
#include "runner.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_POLL_MS 1000    /* an idle thread polls the queue this often */
#define RECONNECT_MS 1000    /* pause before reconnecting a broken conn */
#define PRUNE_EVERY_S 3600.0 /* prune finished jobs hourly */
#define FINISH_TRIES 3       /* attempts at writing a job's end */

/* Why a running import was asked to stop. */
typedef enum {
    STOP_NONE,
    STOP_CANCEL,    /* someone requested a cancel: finish cancelled */
    STOP_SHUTDOWN,  /* the worker stops: release the job */
    STOP_LEASE_LOST /* another worker owns the job: touch nothing */
} stop_reason;

#define IG_WORKER_MAX_THREADS 64 /* INGOT_WORKER_THREADS' upper bound */

typedef struct slot {
    ig_worker *w;
    int index;
    char worker_id[IG_JOBQ_WORKER_ID_MAX + 1];
    pthread_t th;
    int started;
    PGconn *qconn;       /* queue + LISTEN; owned by the slot thread */
    PGconn *hbconn;      /* heartbeat; lent to the heartbeat thread */
    ig_pool *pool;       /* the runner's */
    volatile int cancel; /* runner's cancel input; see the file comment */
    stop_reason reason;  /* guarded by w->mu */
    int busy;            /* guarded by w->mu */
    long long job_id;    /* the job it runs while busy (guarded by w->mu) */
} slot;

struct ig_worker {
    const ig_conf *conf;
    ig_progress *progress;
    char *pipeline_dir;
    int nslots;
    slot *slots;
    pthread_t hk; /* housekeeper */
    int hk_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* broadcast on stop */
    int stopping;          /* guarded by mu */
    ig_worker_stats stats; /* guarded by mu */
};

/* One running job: what on_commit, progress and the heartbeat share. */
typedef struct jobctx {
    slot *s;
    const ig_jobq_job *job;
    ig_jobq_counts base; /* counters of earlier attempts (checkpoint) */
    long long base_batch;
    double started_at; /* epoch of this attempt */
    /* heartbeat thread */
    pthread_t hb;
    int hb_started;
    int hb_quit;          /* guarded by w->mu */
    pthread_cond_t hb_cv; /* with w->mu */
} jobctx;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static double now_epoch(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_stopping(ig_worker *w)
{
    int v;
    pthread_mutex_lock(&w->mu);
    v = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return v;
}

/* Sleep up to ms, returning early when the worker stops. */
static void pause_ms(ig_worker *w, long ms)
{
    struct timespec until = ig_clock_cond_deadline(ms);

    pthread_mutex_lock(&w->mu);
    while (!w->stopping &&
           pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&w->mu);
}

/* Make sure *conn is an open connection (LISTENing when listen = 1).
 * IG_OK, or an error with *conn NULL. */
static int ensure_conn(ig_worker *w, PGconn **conn, int listen, ig_err *err)
{
    int rc;

    if (*conn != NULL && PQstatus(*conn) == CONNECTION_OK)
        return IG_OK;
    PQfinish(*conn);
    *conn = NULL;
    rc = ig_db_connect(w->conf->database_url, conn, err);
    if (rc == IG_OK && listen)
        rc = ig_jobq_listen(*conn, err);
    if (rc != IG_OK) {
        PQfinish(*conn);
        *conn = NULL;
    }
    return rc;
}

/* Ask slot s to stop its import for reason r (lease loss wins over the
 * others; the first of cancel/shutdown sticks). Caller holds w->mu. */
static void request_stop_locked(slot *s, stop_reason r)
{
    if (s->reason == STOP_NONE || r == STOP_LEASE_LOST)
        s->reason = r;
    s->cancel = 1;
}

static void request_stop(slot *s, stop_reason r)
{
    pthread_mutex_lock(&s->w->mu);
    request_stop_locked(s, r);
    pthread_mutex_unlock(&s->w->mu);
}

static stop_reason get_reason(slot *s)
{
    stop_reason r;
    pthread_mutex_lock(&s->w->mu);
    r = s->reason;
    pthread_mutex_unlock(&s->w->mu);
    return r;
}

/* ------------------------------------------------------------------ */
/* Inside the batch transaction: checkpoint + row results              */

static ig_jobq_counts add_counts(const ig_jobq_counts *base, const ig_counts *c)
{
    ig_jobq_counts t = *base;
    t.processed += c->read;
    t.inserted += c->inserted;
    t.updated += c->updated;
    t.unchanged += c->unchanged;
    t.skipped += c->skipped;
    t.failed += c->failed;
    return t;
}

/* The original fields as a JSON array text (owned), or NULL. */
static char *values_json(const ig_batch_failure *f)
{
    json_t *a = json_array();
    char *s;

    for (size_t k = 0; k < f->nvalues; k++) {
        const ig_value *v = &f->values[k];
        /* jsonb holds no \u0000: a NUL (a CSV_NUL row's field) is U+FFFD */
        json_array_append_new(a, v->is_null ? json_null()
                                            : ig_report_text(v->p, v->len));
    }
    s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

/* Store the batch's failed rows, one import_results row per reason. */
static int store_failures(PGconn *conn, long long job_id,
                          const ig_batch_failure *failed, size_t nfailed,
                          ig_err *err)
{
    size_t n = 0, cap = 0;
    ig_jobq_result *rows = NULL;
    char **vals = ig_xcalloc(nfailed ? nfailed : 1, sizeof(char *));
    int rc;

    for (size_t i = 0; i < nfailed; i++) {
        const ig_batch_failure *f = &failed[i];
        size_t nr = f->nreasons ? f->nreasons : 1;
        vals[i] = values_json(f);
        for (size_t j = 0; j < nr; j++) {
            ig_jobq_result *r;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                rows = ig_xrealloc(rows, cap * sizeof(*rows));
            }
            r = &rows[n++];
            memset(r, 0, sizeof(*r));
            r->source_row = f->row;
            r->seq = (int)j;
            r->source_line = f->line;
            r->outcome = IG_JOBQ_OUTCOME_FAILED;
            r->source_values = vals[i];
            if (f->nreasons == 0) {
                r->code = "FAILED";
                r->message = "row failed";
                continue;
            }
            r->target = f->reasons[j].target;
            r->column = f->reasons[j].column;
            r->code = f->reasons[j].code ? f->reasons[j].code : "FAILED";
            r->constraint_name = f->reasons[j].constraint;
            r->message = f->reasons[j].message ? f->reasons[j].message : "";
        }
    }
    rc = ig_jobq_add_results(conn, job_id, rows, n, err);
    for (size_t i = 0; i < nfailed; i++)
        free(vals[i]);
    free(vals);
    free(rows);
    return rc;
}

/* ig_run_commit_fn: runs on the runner's database thread, inside the
 * batch's transaction, just before COMMIT. */
static int on_commit(PGconn *conn, const ig_run_progress *after,
                     const ig_batch_failure *failed, size_t nfailed, void *ud,
                     ig_err *err)
{
    jobctx *c = ud;
    ig_jobq_position pos;
    ig_jobq_counts counts = add_counts(&c->base, &after->counts);
    int rc;

    pos.batch = c->base_batch + after->batches;
    pos.offset = after->end_offset;
    pos.row = after->last_row;
    rc = ig_jobq_checkpoint(conn, &c->job->lease, &pos, &counts, err);
    if (rc == IG_OK && nfailed > 0)
        rc = store_failures(conn, c->job->id, failed, nfailed, err);
    if (rc == IG_STATE)
        request_stop(c->s, STOP_LEASE_LOST);
    return rc;
}

static void fill_info(const jobctx *c, const char *state,
                      const ig_jobq_counts *t, ig_progress_info *pi)
{
    memset(pi, 0, sizeof(*pi));
    snprintf(pi->state, sizeof(pi->state), "%s", state);
    pi->total = c->job->total_rows > 0 ? c->job->total_rows : 0;
    pi->processed = t->processed;
    pi->inserted = t->inserted;
    pi->updated = t->updated;
    pi->unchanged = t->unchanged;
    pi->skipped = t->skipped;
    pi->failed = t->failed;
    /* A resumed attempt's rate is unknown until its first batch (see
     * on_progress): the rows resumed past are not this attempt's. */
    pi->started_at = c->base.processed > 0 ? 0 : c->started_at;
    pi->job_created_at = c->job->created_at;
    pi->attempt = c->job->attempt;
}

/* The runner's progress callback (on the slot thread, after each batch). */
static void on_progress(const ig_run_progress *p, void *ud)
{
    jobctx *c = ud;
    ig_jobq_counts t = add_counts(&c->base, &p->counts);
    ig_progress_info pi;

    fill_info(c, "running", &t, &pi);
    if (p->total_rows > 0)
        pi.total = p->total_rows;
    /* The rate of this attempt only: rows resumed past are not counted. */
    if (c->base.processed > 0 && p->elapsed > 0) {
        pi.started_at =
            now_epoch() - p->elapsed * (double)t.processed /
                              (double)(p->counts.read > 0 ? p->counts.read : 1);
    }
    ig_progress_update(c->s->w->progress, c->job->id, &pi);
}

/* ------------------------------------------------------------------ */
/* Heartbeat                                                           */

static void *heartbeat_main(void *arg)
{
    jobctx *c = arg;
    slot *s = c->s;
    ig_worker *w = s->w;
    long interval_ms = w->conf->lease_seconds * 1000 / 3;
    ig_err err;

    if (interval_ms < 300)
        interval_ms = 300;
    for (;;) {
        struct timespec until = ig_clock_cond_deadline(interval_ms);
        int quit, cancel_req = 0, rc;

        pthread_mutex_lock(&w->mu);
        while (!c->hb_quit &&
               pthread_cond_timedwait(&c->hb_cv, &w->mu, &until) != ETIMEDOUT)
            ;
        quit = c->hb_quit;
        pthread_mutex_unlock(&w->mu);
        if (quit)
            break;
        ig_err_clear(&err);
        rc = ensure_conn(w, &s->hbconn, 0, &err);
        if (rc == IG_OK)
            rc = ig_jobq_heartbeat(s->hbconn, &c->job->lease,
                                   (int)w->conf->lease_seconds, &cancel_req,
                                   &err);
        if (rc == IG_STATE) {
            ig_log_job(c->job->id, c->job->pipeline, IG_LOG_WARN,
                       "lease lost (another worker took the job over); "
                       "stopping at the next batch boundary%s",
                       "");
            request_stop(s, STOP_LEASE_LOST);
            break;
        }
        if (rc != IG_OK) {
            ig_log_job(c->job->id, c->job->pipeline, IG_LOG_WARN,
                       "heartbeat failed: %s", err.msg);
            continue;
        }
        if (cancel_req) {
            ig_log_job(c->job->id, c->job->pipeline, IG_LOG_INFO,
                       "cancel requested; stopping at the next batch "
                       "boundary%s",
                       "");
            request_stop(s, STOP_CANCEL);
        }
    }
    return NULL;
}

static void heartbeat_start(jobctx *c)
{
    pthread_cond_init(&c->hb_cv, NULL);
    c->hb_quit = 0;
    c->hb_started = pthread_create(&c->hb, NULL, heartbeat_main, c) == 0;
    if (!c->hb_started)
        ig_log_job(c->job->id, c->job->pipeline, IG_LOG_ERROR,
                   "cannot start the heartbeat thread; the lease may "
                   "expire%s",
                   "");
}

static void heartbeat_stop(jobctx *c)
{
    pthread_mutex_lock(&c->s->w->mu);
    c->hb_quit = 1;
    pthread_cond_broadcast(&c->hb_cv);
    pthread_mutex_unlock(&c->s->w->mu);
    if (c->hb_started)
        pthread_join(c->hb, NULL);
    pthread_cond_destroy(&c->hb_cv);
}

/* ------------------------------------------------------------------ */
/* Ending a job                                                        */

typedef enum { END_FINISH, END_RETRY, END_RELEASE } end_op;

/* Write the job's end (finish / fail_or_retry / release) on the queue
 * connection, reconnecting on a transient failure. */
static int write_end(slot *s, const ig_jobq_job *job, end_op op,
                     ig_jobq_state final, const ig_jobq_counts *counts,
                     const char *msg, int transient, ig_jobq_state *new_state,
                     ig_err *err)
{
    int rc = IG_DB_RETRY;

    for (int i = 0; i < FINISH_TRIES && rc == IG_DB_RETRY; i++) {
        if (i > 0)
            pause_ms(s->w, RECONNECT_MS);
        rc = ensure_conn(s->w, &s->qconn, 1, err);
        if (rc != IG_OK)
            continue;
        switch (op) {
        case END_FINISH:
            rc = ig_jobq_finish(s->qconn, &job->lease, final, counts, msg, err);
            *new_state = final;
            break;
        case END_RETRY:
            rc = ig_jobq_fail_or_retry(s->qconn, &job->lease, msg, transient,
                                       new_state, err);
            break;
        case END_RELEASE:
            rc = ig_jobq_release(s->qconn, &job->lease, new_state, err);
            break;
        default:
            ig_assert(0);
        }
    }
    return rc;
}

static void count_end(ig_worker *w, end_op op, ig_jobq_state st,
                      const ig_counts *rows, double secs)
{
    pthread_mutex_lock(&w->mu);
    switch (op) {
    case END_FINISH:
        w->stats.finished[st]++;
        break;
    case END_RETRY:
        if (st == IG_JOBQ_RETRYABLE)
            w->stats.retried++;
        else
            w->stats.finished[st]++;
        break;
    case END_RELEASE:
        if (st == IG_JOBQ_CANCELLED) /* a cancel was pending: final */
            w->stats.finished[st]++;
        else
            w->stats.released++;
        break;
    default:
        ig_assert(0);
    }
    if (rows) {
        w->stats.rows_processed += rows->read;
        w->stats.rows_inserted += rows->inserted;
        w->stats.rows_updated += rows->updated;
        w->stats.rows_unchanged += rows->unchanged;
        w->stats.rows_skipped += rows->skipped;
        w->stats.rows_failed += rows->failed;
    }
    w->stats.duration_sum += secs;
    w->stats.duration_count++;
    pthread_mutex_unlock(&w->mu);
}

/* Decide how the import ended and record it on the job. rc/err/status are
 * ig_run's; fin its final progress (this attempt's counts). */
static void end_job(jobctx *c, int rc, const ig_err *rerr, ig_run_status status,
                    const ig_run_progress *fin, double secs)
{
    slot *s = c->s;
    const ig_jobq_job *job = c->job;
    ig_jobq_counts total = add_counts(&c->base, &fin->counts);
    stop_reason why = get_reason(s);
    end_op op = END_FINISH;
    ig_jobq_state final = IG_JOBQ_FAILED, got = IG_JOBQ_FAILED;
    const char *msg = NULL;
    int transient = 0, wrc;
    ig_progress_info pi;
    ig_err err;

    ig_err_clear(&err);
    if (why == STOP_LEASE_LOST || (rc != IG_OK && rerr->code == IG_STATE)) {
        ig_log_job(job->id, job->pipeline, IG_LOG_WARN,
                   "lease lost after %lld rows of this attempt; the "
                   "uncommitted batch was rolled back and the job is left "
                   "to its new owner",
                   fin->counts.read);
        pthread_mutex_lock(&s->w->mu);
        s->w->stats.lease_lost++;
        pthread_mutex_unlock(&s->w->mu);
        return;
    }
    if (rc != IG_OK || status == IG_RUN_FAILED) {
        op = END_RETRY;
        transient = rerr->code == IG_DB_RETRY;
        msg = rerr->msg[0] ? rerr->msg : "import failed";
        if (transient && why == STOP_SHUTDOWN)
            op = END_RELEASE; /* stopped while the database was away */
    } else {
        switch (status) {
        case IG_RUN_DONE:
            final =
                ig_report_final_state(status, total.processed, total.failed);
            break;
        case IG_RUN_CANCELED:
            if (why == STOP_SHUTDOWN)
                op = END_RELEASE;
            final = IG_JOBQ_CANCELLED;
            /* The runner's reason when it had to drop its connections
             * (the database went silent) rather than stop cleanly. */
            msg = rerr->code == IG_CANCELED && rerr->msg[0] &&
                          strstr(rerr->msg, "batch boundary") == NULL
                      ? rerr->msg
                      : "cancelled at a batch boundary";
            break;
        case IG_RUN_TIMED_OUT:
            msg = rerr->msg[0] ? rerr->msg : "timed out";
            break;
        case IG_RUN_LIMIT:
            msg = rerr->msg[0] ? rerr->msg : "IMPORT_MAX_ROWS exceeded";
            break;
        case IG_RUN_FAILED:
        default:
            ig_assert(0);
        }
    }
    wrc = write_end(s, job, op, final, &total, msg, transient, &got, &err);
    if (wrc == IG_STATE) {
        ig_log_job(job->id, job->pipeline, IG_LOG_WARN,
                   "lease lost before the job could be ended%s", "");
        return;
    }
    if (wrc != IG_OK) {
        ig_log_job(job->id, job->pipeline, IG_LOG_ERROR,
                   "could not record the job's end (%s); the rescuer will "
                   "return it to the queue when its lease expires",
                   err.msg);
        return;
    }
    count_end(s->w, op, got, &fin->counts, secs);
    fill_info(c, ig_jobq_state_name(got), &total, &pi);
    ig_progress_update(s->w->progress, job->id, &pi);
    switch (op) {
    case END_RELEASE:
        if (got == IG_JOBQ_CANCELLED)
            ig_log_job(job->id, job->pipeline, IG_LOG_INFO,
                       "cancelled at shutdown after row %lld (a cancel "
                       "was requested)", fin->last_row);
        else
            ig_log_job(job->id, job->pipeline, IG_LOG_INFO,
                       "released to the queue at shutdown after row %lld "
                       "(attempt not counted)",
                       fin->last_row);
        break;
    case END_RETRY:
        ig_log_job(job->id, job->pipeline,
                   got == IG_JOBQ_RETRYABLE ? IG_LOG_WARN : IG_LOG_ERROR,
                   "attempt %d failed (%s): %s -> %s", job->attempt,
                   transient ? "transient" : "permanent", msg,
                   ig_jobq_state_name(got));
        break;
    case END_FINISH:
        ig_log_job(job->id, job->pipeline, IG_LOG_INFO,
                   "%s in %.2f s: %lld rows, %lld inserted, %lld updated, "
                   "%lld unchanged, %lld skipped, %lld failed%s%s",
                   ig_jobq_state_name(got), secs, total.processed,
                   total.inserted, total.updated, total.unchanged,
                   total.skipped, total.failed, msg ? ": " : "",
                   msg ? msg : "");
        break;
    default:
        ig_assert(0);
    }
}

/* ------------------------------------------------------------------ */
/* Running one job                                                     */

static ig_results *new_results(const ig_pipeline *p)
{
    size_t nt = ig_pipeline_ntargets(p);
    const char **names = ig_xcalloc(nt ? nt : 1, sizeof(char *));
    ig_results_opts ro = {nt, names, 1}; /* failed rows go to the db */
    ig_results *r;

    for (size_t t = 0; t < nt; t++)
        names[t] = ig_pipeline_target(p, t)->name;
    r = ig_results_new(&ro);
    free(names);
    return r;
}

/* Fail a job that cannot even start (unknown pipeline, bad YAML): a
 * permanent failure, no retry. */
static void fail_at_once(slot *s, const ig_jobq_job *job, const char *msg)
{
    ig_jobq_state got = IG_JOBQ_FAILED;
    ig_err err;
    int rc;

    ig_err_clear(&err);
    rc = write_end(s, job, END_RETRY, IG_JOBQ_FAILED, NULL, msg, 0, &got, &err);
    if (rc == IG_OK)
        count_end(s->w, END_RETRY, got, NULL, 0);
    ig_log_job(job->id, job->pipeline, IG_LOG_ERROR,
               "failed without retry: %s%s%s", msg, rc == IG_OK ? "" : "; ",
               rc == IG_OK ? "" : err.msg);
}

static void run_job(slot *s, const ig_jobq_job *job)
{
    ig_worker *w = s->w;
    ig_pipeline_opts po;
    ig_pipeline *p = NULL;
    ig_results *results = NULL;
    ig_run_opts o;
    ig_run_progress fin;
    ig_run_status status = IG_RUN_FAILED;
    ig_progress_info pi;
    jobctx c;
    ig_err err;
    char name[64];
    double t0 = ig_clock_s();
    int rc;

    memset(&c, 0, sizeof(c));
    c.s = s;
    c.job = job;
    c.base = job->counts;
    c.base_batch = job->checkpoint.batch;
    c.started_at = now_epoch();
    ig_err_clear(&err);
    pthread_mutex_lock(&w->mu);
    s->busy = 1;
    s->job_id = job->id;
    w->stats.busy++;
    s->reason = STOP_NONE;
    s->cancel = 0;
    if (w->stopping)
        request_stop_locked(s, STOP_SHUTDOWN);
    pthread_mutex_unlock(&w->mu);
    ig_log_job(job->id, job->pipeline, IG_LOG_INFO,
               "claimed by %s, attempt %d/%d, %lld bytes, resuming after "
               "row %lld",
               s->worker_id, job->attempt, job->max_attempts,
               (long long)job->source_len, job->checkpoint.row);

    memset(&po, 0, sizeof(po));
    po.check_hooks = 1;
    p = ig_pipeline_load_named(w->pipeline_dir, job->pipeline, &po, &err);
    if (p == NULL) {
        fail_at_once(s, job, err.msg);
        goto out;
    }
    results = new_results(p);
    fill_info(&c, "running", &c.base, &pi);
    ig_progress_update(w->progress, job->id, &pi);

    snprintf(name, sizeof(name), "job %lld", job->id);
    memset(&o, 0, sizeof(o));
    o.pipeline = p;
    o.pool = s->pool;
    o.buf = job->source ? (const char *)job->source : "";
    o.buf_len = job->source_len;
    o.input_name = job->source_name ? job->source_name : name;
    o.bytes_total = (long long)job->source_len;
    o.batch_size = w->conf->batch_size;
    o.max_rows = w->conf->max_rows;
    o.timeout_seconds = w->conf->timeout_seconds;
    o.no_insert_first = !w->conf->insert_first;
    o.no_merge = !w->conf->merge;
    o.seekable = 1;
    o.skip_rows = job->checkpoint.row;
    o.progress = on_progress;
    o.progress_ud = &c;
    o.on_commit = on_commit;
    o.commit_ud = &c;
    o.cancel = &s->cancel;
    memset(&fin, 0, sizeof(fin));

    heartbeat_start(&c);
    rc = ig_run(&o, results, &status, &fin, &err);
    heartbeat_stop(&c);
    /* ig_run's final counts are the results' (this attempt). */
    end_job(&c, rc, &err, status, &fin, ig_clock_s() - t0);

out:
    ig_results_free(results);
    ig_pipeline_free(p);
    pthread_mutex_lock(&w->mu);
    s->busy = 0;
    w->stats.busy--;
    s->reason = STOP_NONE;
    pthread_mutex_unlock(&w->mu);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */

static void *slot_main(void *arg)
{
    slot *s = arg;
    ig_worker *w = s->w;
    ig_err err;
    int was_down = 0;

    while (!is_stopping(w)) {
        ig_jobq_job *job = NULL;
        int notified = 0, rc;

        ig_err_clear(&err);
        rc = ensure_conn(w, &s->qconn, 1, &err);
        if (rc == IG_OK)
            rc = ig_jobq_claim(s->qconn, s->worker_id,
                               (int)w->conf->lease_seconds, &job, &err);
        if (rc != IG_OK) {
            if (!was_down)
                ig_log(IG_LOG_WARN,
                       "worker %s: cannot reach the job queue: "
                       "%s; retrying",
                       s->worker_id, err.msg);
            was_down = 1;
            PQfinish(s->qconn);
            s->qconn = NULL;
            pause_ms(w, RECONNECT_MS);
            continue;
        }
        if (was_down)
            ig_log(IG_LOG_INFO, "worker %s: job queue reachable again",
                   s->worker_id);
        was_down = 0;
        if (job != NULL) {
            run_job(s, job);
            ig_jobq_job_free(job);
            continue;
        }
        if (ig_jobq_wait(s->qconn, IDLE_POLL_MS, &notified, &err) != IG_OK) {
            PQfinish(s->qconn);
            s->qconn = NULL;
        }
    }
    return NULL;
}

/* Rescue every lease/2 s; prune at start and hourly. */
static void *housekeeper_main(void *arg)
{
    ig_worker *w = arg;
    PGconn *conn = NULL;
    double last_prune = -PRUNE_EVERY_S;
    long interval_ms = w->conf->lease_seconds * 500;
    ig_err err;

    while (!is_stopping(w)) {
        long long n = 0;

        ig_err_clear(&err);
        if (ensure_conn(w, &conn, 0, &err) != IG_OK) {
            pause_ms(w, RECONNECT_MS);
            continue;
        }
        /* The jobs this worker's threads are running are alive: a lease
         * of theirs that ran out while the database was away is theirs to
         * renew, not an attempt lost. (By job: a thread's earlier job
         * whose end could not be written is rescued.) */
        long long live[IG_WORKER_MAX_THREADS];
        size_t nlive = 0;
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < w->nslots && nlive < IG_WORKER_MAX_THREADS; i++)
            if (w->slots[i].busy)
                live[nlive++] = w->slots[i].job_id;
        pthread_mutex_unlock(&w->mu);
        if (ig_jobq_rescue(conn, live, nlive, &n, &err) != IG_OK) {
            ig_log(IG_LOG_WARN, "rescue: %s", err.msg);
        } else if (n > 0) {
            ig_log(IG_LOG_WARN,
                   "rescued %lld job(s) whose worker stopped "
                   "heartbeating: each resumes from its checkpoint, or "
                   "fails (its attempts used up) or ends cancelled (a "
                   "cancel was requested)",
                   n);
            pthread_mutex_lock(&w->mu);
            w->stats.rescued += n;
            pthread_mutex_unlock(&w->mu);
        }
        if (ig_clock_s() - last_prune >= PRUNE_EVERY_S) {
            double age = (double)w->conf->results_retention_days * 86400.0;
            if (ig_jobq_prune(conn, age, &n, &err) != IG_OK) {
                ig_log(IG_LOG_WARN, "prune: %s", err.msg);
            } else {
                last_prune = ig_clock_s();
                if (n > 0)
                    ig_log(IG_LOG_INFO,
                           "pruned %lld finished job(s) older "
                           "than %ld days",
                           n, w->conf->results_retention_days);
                pthread_mutex_lock(&w->mu);
                w->stats.pruned += n;
                pthread_mutex_unlock(&w->mu);
            }
        }
        pause_ms(w, interval_ms);
    }
    PQfinish(conn);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

ig_worker *ig_worker_start(const ig_worker_opts *opts, ig_err *err)
{
    ig_worker *w;
    ig_pool_opts po;

    if (opts == NULL || opts->conf == NULL || opts->threads < 1 ||
        opts->worker_id == NULL || opts->worker_id[0] == '\0' ||
        strlen(opts->worker_id) > 100 || opts->pipeline_dir == NULL) {
        ig_err_set(err, IG_USAGE,
                   "worker: bad options (threads >= 1, "
                   "worker id of 1..100 bytes, a pipeline dir)");
        return NULL;
    }
    w = ig_xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->conf = opts->conf;
    w->progress = opts->progress;
    w->pipeline_dir = ig_xstrdup(opts->pipeline_dir);
    w->nslots = opts->threads;
    w->slots = ig_xcalloc((size_t)w->nslots, sizeof(slot));
    w->stats.threads = w->nslots;
    memset(&po, 0, sizeof(po));
    po.conninfo = opts->conf->database_url;
    po.size = 2; /* one applies batches; one can ask a lost COMMIT's fate */
    po.statement_timeout_ms = opts->conf->statement_timeout_ms;
    /* A worker frozen inside a batch loses its session after a lease, so
     * the worker that took its job over is not held up by its row locks. */
    po.idle_tx_timeout_ms = opts->conf->lease_seconds * 1000L;
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        s->w = w;
        s->index = i;
        snprintf(s->worker_id, sizeof(s->worker_id), "%s/%d", opts->worker_id,
                 i + 1);
        s->pool = ig_pool_new(&po, err);
        if (s->pool == NULL)
            goto fail;
    }
    for (int i = 0; i < w->nslots; i++) {
        if (pthread_create(&w->slots[i].th, NULL, slot_main, &w->slots[i]) !=
            0) {
            ig_err_set(err, IG_INTERNAL, "worker: cannot start thread %d",
                       i + 1);
            goto fail;
        }
        w->slots[i].started = 1;
    }
    if (pthread_create(&w->hk, NULL, housekeeper_main, w) != 0) {
        ig_err_set(err, IG_INTERNAL, "worker: cannot start the housekeeper");
        goto fail;
    }
    w->hk_started = 1;
    return w;
fail:
    ig_worker_free(w);
    return NULL;
}

void ig_worker_stop(ig_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    if (!w->stopping) {
        w->stopping = 1;
        for (int i = 0; i < w->nslots; i++) {
            if (w->slots[i].busy)
                request_stop_locked(&w->slots[i], STOP_SHUTDOWN);
            /* A database that is down must not hold the stop up for the
             * pool's connect budget on each of the runner's retries. */
            if (w->slots[i].pool != NULL)
                ig_pool_interrupt(w->slots[i].pool);
        }
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

void ig_worker_free(ig_worker *w)
{
    if (w == NULL)
        return;
    ig_worker_stop(w);
    for (int i = 0; i < w->nslots; i++)
        if (w->slots[i].started)
            pthread_join(w->slots[i].th, NULL);
    if (w->hk_started)
        pthread_join(w->hk, NULL);
    for (int i = 0; i < w->nslots; i++) {
        PQfinish(w->slots[i].qconn);
        PQfinish(w->slots[i].hbconn);
        ig_pool_free(w->slots[i].pool);
    }
    free(w->slots);
    free(w->pipeline_dir);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void ig_worker_get_stats(ig_worker *w, ig_worker_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}
