/*
 * test_jobq.c - the job queue against a real PostgreSQL: claiming (source
 * bytes intact, exactly once under concurrency, never cancelled or early
 * jobs), lease fencing, rescue, retry and backoff, release, checkpoints
 * under rollback, cancel, row outcomes, pruning and LISTEN/NOTIFY.
 *
 * The group setup creates a database of its own from DATABASE_URL (the
 * role has CREATEDB), applies migrations/ with ig_migrate_up, and drops it
 * at the end; each test starts from empty tables. Fails when
 * DATABASE_URL is unset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "itdb.h"
#include "jobq.h"
#include "migrate.h"

static itdb fx; /* fx.conn: the test database; fx.name its name */

/* ---- helpers ----------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run SQL that must succeed on the test database. */
static void sql(const char *q)
{
    ig_err err;
    if (ig_db_exec(fx.conn, q, q, &err) != IG_OK)
        fail_msg("%s", err.msg);
}

/* First column of the first row of a query, as a long long. */
static long long sql_ll(const char *q)
{
    PGresult *r = PQexec(fx.conn, q);
    long long v;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static long long enqueue(const char *pipeline, int max_attempts)
{
    ig_jobq_enqueue_opts o;
    long long id;
    ig_err err;

    memset(&o, 0, sizeof(o));
    o.pipeline = pipeline;
    o.source = "a\n1\n";
    o.source_len = 4;
    o.max_attempts = max_attempts;
    if (ig_jobq_enqueue(fx.conn, &o, &id, &err) != IG_OK)
        fail_msg("enqueue: %s", err.msg);
    return id;
}

static ig_jobq_job *claim(const char *worker)
{
    ig_jobq_job *job = NULL;
    ig_err err;

    if (ig_jobq_claim(fx.conn, worker, 60, &job, &err) != IG_OK)
        fail_msg("claim: %s", err.msg);
    return job;
}

static ig_jobq_job *get(long long id)
{
    ig_jobq_job *job = NULL;
    ig_err err;

    if (ig_jobq_get(fx.conn, id, &job, &err) != IG_OK)
        fail_msg("get %lld: %s", id, err.msg);
    return job;
}

static ig_jobq_state state_of(long long id)
{
    ig_jobq_job *j = get(id);
    ig_jobq_state s = j->state;
    ig_jobq_job_free(j);
    return s;
}

/* ---- fixture ----------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return itdb_create(&fx, "it_jobq");
}

static int group_teardown(void **state)
{
    (void)state;
    itdb_drop(&fx);
    return 0;
}

static int empty_tables(void **state)
{
    (void)state;
    sql("TRUNCATE import_jobs CASCADE");
    return 0;
}

/* ---- claiming ---------------------------------------------------------- */

static void test_jobq_enqueue_claim_keeps_source_bytes(void **state)
{
    static const unsigned char src[] = {'i', 'd',  ',',  'n',  '\n', '1',
                                        ',', 0x00, 0xff, 0xfe, 0x80, '\\',
                                        'x', 0xc3, 0xa9, '\r', '\n', 0x00};
    ig_jobq_enqueue_opts o;
    ig_jobq_job *job;
    long long id;
    ig_err err;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.pipeline = "items";
    o.source = src;
    o.source_len = sizeof(src);
    o.source_name = "upload.csv";
    o.format = "json";
    o.options_json = "{\"dry_run\": true}";
    o.total_rows = 12;
    o.max_attempts = 5;
    assert_int_equal(ig_jobq_enqueue(fx.conn, &o, &id, &err), IG_OK);
    assert_true(id > 0);

    job = claim("w1");
    assert_non_null(job);
    assert_int_equal(job->id, id);
    assert_int_equal(job->state, IG_JOBQ_RUNNING);
    assert_string_equal(job->pipeline, "items");
    assert_string_equal(job->source_name, "upload.csv");
    assert_string_equal(job->format, "json");
    assert_string_equal(job->options, "{\"dry_run\": true}");
    assert_int_equal(job->source_len, sizeof(src));
    assert_memory_equal(job->source, src, sizeof(src));
    assert_int_equal(job->source_bytes, (long long)sizeof(src));
    assert_int_equal(job->total_rows, 12);
    assert_int_equal(job->attempt, 1);
    assert_int_equal(job->max_attempts, 5);
    assert_string_equal(job->worker_id, "w1");
    assert_int_equal(job->lease.job_id, id);
    assert_int_equal(job->lease.attempt, 1);
    assert_string_equal(job->lease.worker_id, "w1");
    assert_true(job->lease_expires_at > job->started_at);
    assert_int_equal(job->checkpoint.batch, 0);
    ig_jobq_job_free(job);

    /* An empty source and an unknown total. */
    memset(&o, 0, sizeof(o));
    o.pipeline = "colors";
    assert_int_equal(ig_jobq_enqueue(fx.conn, &o, &id, &err), IG_OK);
    job = claim("w1");
    assert_non_null(job);
    assert_int_equal(job->source_len, 0);
    assert_int_equal(job->total_rows, -1);
    assert_string_equal(job->format, "csv");
    assert_string_equal(job->options, "{}");
    ig_jobq_job_free(job);

    /* A bad pipeline name is refused by the database. */
    memset(&o, 0, sizeof(o));
    o.pipeline = "bad name;";
    assert_int_equal(ig_jobq_enqueue(fx.conn, &o, &id, &err), IG_DB);
}

static void test_jobq_claim_on_empty_queue_returns_none(void **state)
{
    (void)state;
    assert_null(claim("w1"));
}

static void test_jobq_claim_order_priority_then_age(void **state)
{
    ig_jobq_enqueue_opts o;
    long long low, high;
    ig_jobq_job *job;
    ig_err err;
    (void)state;

    low = enqueue("items", 3);
    memset(&o, 0, sizeof(o));
    o.pipeline = "items";
    o.priority = 5;
    assert_int_equal(ig_jobq_enqueue(fx.conn, &o, &high, &err), IG_OK);
    job = claim("w1");
    assert_int_equal(job->id, high);
    ig_jobq_job_free(job);
    job = claim("w1");
    assert_int_equal(job->id, low);
    ig_jobq_job_free(job);
}

static void test_jobq_cancelled_queued_job_is_never_claimed(void **state)
{
    ig_jobq_cancel_result r;
    ig_jobq_state st;
    long long id;
    ig_err err;
    (void)state;

    id = enqueue("items", 3);
    assert_int_equal(ig_jobq_cancel(fx.conn, id, &r, &st, &err), IG_OK);
    assert_int_equal(r, IG_JOBQ_CANCEL_DONE);
    assert_int_equal(st, IG_JOBQ_CANCELLED);
    assert_null(claim("w1"));
}

static void test_jobq_future_run_after_is_not_claimed(void **state)
{
    ig_jobq_enqueue_opts o;
    long long id;
    ig_jobq_job *job;
    ig_err err;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.pipeline = "items";
    o.delay_seconds = 3600;
    assert_int_equal(ig_jobq_enqueue(fx.conn, &o, &id, &err), IG_OK);
    assert_null(claim("w1"));
    sql("UPDATE import_jobs SET run_after = now()");
    job = claim("w1");
    assert_non_null(job);
    assert_int_equal(job->id, id);
    ig_jobq_job_free(job);
}

#define CLAIM_THREADS 4
#define CLAIM_JOBS 200

typedef struct claimer {
    int index;
    long long ids[CLAIM_JOBS];
    int n;
    int failed;
} claimer;

static void *claimer_main(void *arg)
{
    claimer *c = arg;
    PGconn *conn = itdb_connect(fx.name);
    char worker[32];

    snprintf(worker, sizeof(worker), "thread-%d", c->index);
    if (conn == NULL) {
        c->failed = 1;
        return NULL;
    }
    for (;;) {
        ig_jobq_job *job = NULL;
        ig_err err;

        if (ig_jobq_claim(conn, worker, 60, &job, &err) != IG_OK) {
            fprintf(stderr, "%s: %s\n", worker, err.msg);
            c->failed = 1;
            break;
        }
        if (job == NULL)
            break;
        if (c->n < CLAIM_JOBS)
            c->ids[c->n] = job->id;
        c->n++;
        if (ig_jobq_finish(conn, &job->lease, IG_JOBQ_SUCCEEDED, NULL, NULL,
                           &err) != IG_OK) {
            fprintf(stderr, "%s: %s\n", worker, err.msg);
            c->failed = 1;
        }
        ig_jobq_job_free(job);
    }
    PQfinish(conn);
    return NULL;
}

static void test_jobq_concurrent_claims_take_each_job_once(void **state)
{
    static claimer cl[CLAIM_THREADS];
    pthread_t th[CLAIM_THREADS];
    long long first = 0;
    double t0, dt;
    int *seen;
    int total = 0;
    (void)state;

    for (int i = 0; i < CLAIM_JOBS; i++) {
        long long id = enqueue("items", 3);
        if (i == 0)
            first = id;
    }
    t0 = now_s();
    for (int t = 0; t < CLAIM_THREADS; t++) {
        memset(&cl[t], 0, sizeof(cl[t]));
        cl[t].index = t;
        assert_int_equal(pthread_create(&th[t], NULL, claimer_main, &cl[t]), 0);
    }
    for (int t = 0; t < CLAIM_THREADS; t++)
        pthread_join(th[t], NULL);
    dt = now_s() - t0;
    printf("# jobq: %d threads claimed+finished %d jobs in %.3f s = %.0f "
           "jobs/s (incl. connecting)\n",
           CLAIM_THREADS, CLAIM_JOBS, dt, CLAIM_JOBS / dt);

    seen = calloc(CLAIM_JOBS, sizeof(int));
    for (int t = 0; t < CLAIM_THREADS; t++) {
        assert_false(cl[t].failed);
        total += cl[t].n;
        for (int i = 0; i < cl[t].n && i < CLAIM_JOBS; i++) {
            long long k = cl[t].ids[i] - first;
            assert_true(k >= 0 && k < CLAIM_JOBS);
            seen[k]++;
        }
    }
    assert_int_equal(total, CLAIM_JOBS);
    for (int i = 0; i < CLAIM_JOBS; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
    assert_int_equal(sql_ll("SELECT count(*) FROM import_jobs"
                            " WHERE state = 'succeeded'"),
                     CLAIM_JOBS);
}

/* ---- leases ------------------------------------------------------------ */

static void test_jobq_heartbeat_extends_lease(void **state)
{
    ig_jobq_job *job, *after;
    int cancel = -1;
    ig_err err;
    (void)state;

    enqueue("items", 3);
    assert_int_equal(ig_jobq_claim(fx.conn, "w1", 5, &job, &err), IG_OK);
    assert_non_null(job);
    assert_int_equal(
        ig_jobq_heartbeat(fx.conn, &job->lease, 600, &cancel, &err), IG_OK);
    assert_int_equal(cancel, 0);
    after = get(job->id);
    assert_true(after->lease_expires_at > job->lease_expires_at + 500);
    assert_true(after->heartbeat_at >= job->heartbeat_at);
    ig_jobq_job_free(after);
    ig_jobq_job_free(job);
}

static void test_jobq_lost_lease_fences_every_write(void **state)
{
    ig_jobq_job *old, *fresh, *now;
    ig_jobq_position pos = {7, 700, 70};
    ig_jobq_counts counts = {70, 70, 0, 0, 0, 0};
    ig_jobq_state st;
    long long n;
    int cancel;
    ig_err err;
    (void)state;

    enqueue("items", 3);
    old = claim("w-old");
    assert_true(old->attempt_started_at > 0);
    assert_int_equal(old->attempt_base_rows, 0);
    sql("UPDATE import_jobs SET lease_expires_at = now() - interval '1 s', "
        "rows_processed = 123");
    assert_int_equal(ig_jobq_rescue(fx.conn, NULL, 0, &n, &err), IG_OK);
    assert_int_equal(n, 1);
    fresh = claim("w-new");
    assert_non_null(fresh);
    assert_int_equal(fresh->id, old->id);
    assert_int_equal(fresh->attempt, 2);
    /* the new attempt's start, and the rows done before it */
    assert_true(fresh->attempt_started_at >= old->attempt_started_at);
    assert_int_equal(fresh->attempt_base_rows, 123);

    assert_int_equal(ig_jobq_heartbeat(fx.conn, &old->lease, 60, &cancel, &err),
                     IG_STATE);
    assert_non_null(strstr(err.msg, "lost"));
    assert_int_equal(
        ig_jobq_checkpoint(fx.conn, &old->lease, &pos, &counts, &err),
        IG_STATE);
    assert_int_equal(ig_jobq_finish(fx.conn, &old->lease, IG_JOBQ_SUCCEEDED,
                                    &counts, NULL, &err),
                     IG_STATE);
    assert_int_equal(
        ig_jobq_fail_or_retry(fx.conn, &old->lease, "x", 1, &st, &err),
        IG_STATE);
    assert_int_equal(ig_jobq_release(fx.conn, &old->lease, NULL, &err),
                     IG_STATE);

    now = get(old->id);
    assert_int_equal(now->state, IG_JOBQ_RUNNING);
    assert_string_equal(now->worker_id, "w-new");
    assert_int_equal(now->attempt, 2);
    assert_int_equal(now->checkpoint.batch, 0);
    assert_int_equal(now->counts.processed, 123); /* as set above */
    ig_jobq_job_free(now);

    /* The new holder still works. */
    assert_int_equal(
        ig_jobq_checkpoint(fx.conn, &fresh->lease, &pos, &counts, &err), IG_OK);
    ig_jobq_job_free(fresh);
    ig_jobq_job_free(old);
}

static void test_jobq_rescue_retries_or_fails(void **state)
{
    ig_jobq_job *a, *b, *ja, *jb;
    long long n;
    ig_err err;
    (void)state;

    enqueue("items", 3); /* attempts left after one */
    enqueue("items", 1); /* used up after one */
    a = claim("w1");
    b = claim("w1");
    assert_non_null(a);
    assert_non_null(b);
    /* A live lease is left alone. */
    assert_int_equal(ig_jobq_rescue(fx.conn, NULL, 0, &n, &err), IG_OK);
    assert_int_equal(n, 0);
    sql("UPDATE import_jobs SET lease_expires_at = now() - interval '1 s'");
    /* ... and so are expired ones the caller says its threads are running
     * (the database was away): by job, so that only those are skipped */
    {
        long long live[] = {a->id, b->id};
        assert_int_equal(ig_jobq_rescue(fx.conn, live, 2, &n, &err), IG_OK);
        assert_int_equal(n, 0);
        live[0] = -1;
        assert_int_equal(ig_jobq_rescue(fx.conn, live, 2, &n, &err), IG_OK);
        assert_int_equal(n, 1);
        assert_int_equal(ig_jobq_rescue(fx.conn, NULL, 0, &n, &err), IG_OK);
        assert_int_equal(n, 1);
    }

    ja = get(a->max_attempts == 3 ? a->id : b->id);
    jb = get(a->max_attempts == 3 ? b->id : a->id);
    assert_int_equal(ja->state, IG_JOBQ_RETRYABLE);
    assert_null(ja->worker_id);
    assert_int_equal(ja->finished_at, 0);
    assert_non_null(strstr(ja->errors, "expired"));
    assert_int_equal(jb->state, IG_JOBQ_FAILED);
    assert_true(jb->finished_at > 0);
    assert_string_equal(jb->last_error,
                        "lease expired (worker died?) after 1 attempts");
    ig_jobq_job_free(ja);
    ig_jobq_job_free(jb);
    ig_jobq_job_free(a);
    ig_jobq_job_free(b);
}

static void test_jobq_fail_or_retry_transient_then_permanent(void **state)
{
    ig_jobq_job *job, *j;
    ig_jobq_state st;
    long long id;
    ig_err err;
    (void)state;

    id = enqueue("items", 3);
    job = claim("w1");
    assert_int_equal(ig_jobq_fail_or_retry(fx.conn, &job->lease,
                                           "connection reset", 1, &st, &err),
                     IG_OK);
    assert_int_equal(st, IG_JOBQ_RETRYABLE);
    ig_jobq_job_free(job);
    /* attempt 1: backoff 2 s +-25% -> run_after 1.5..2.5 s ahead. */
    assert_int_equal(sql_ll("SELECT (run_after > now() + interval '1 s'"
                            " AND run_after < now() + interval '3 s')::int"
                            " FROM import_jobs"),
                     1);
    assert_null(claim("w1"));
    j = get(id);
    assert_int_equal(j->state, IG_JOBQ_RETRYABLE);
    assert_string_equal(j->last_error, "connection reset");
    assert_null(j->worker_id);
    assert_int_equal(sql_ll("SELECT jsonb_array_length(errors)"
                            " FROM import_jobs"),
                     1);
    assert_int_equal(sql_ll("SELECT (errors->0->>'attempt')::int"
                            " FROM import_jobs"),
                     1);
    assert_non_null(strstr(j->errors, "connection reset"));
    ig_jobq_job_free(j);

    sql("UPDATE import_jobs SET run_after = now()");
    job = claim("w2");
    assert_int_equal(job->attempt, 2);
    assert_int_equal(ig_jobq_fail_or_retry(fx.conn, &job->lease, "bad pipeline",
                                           0, &st, &err),
                     IG_OK);
    assert_int_equal(st, IG_JOBQ_FAILED);
    ig_jobq_job_free(job);
    j = get(id);
    assert_int_equal(j->state, IG_JOBQ_FAILED);
    assert_true(j->finished_at > 0);
    assert_int_equal(sql_ll("SELECT jsonb_array_length(errors)"
                            " FROM import_jobs"),
                     2);
    ig_jobq_job_free(j);

    /* A transient failure on the last attempt fails too. */
    id = enqueue("items", 1);
    job = claim("w1");
    assert_int_equal(
        ig_jobq_fail_or_retry(fx.conn, &job->lease, "timeout", 1, &st, &err),
        IG_OK);
    assert_int_equal(st, IG_JOBQ_FAILED);
    assert_int_equal(state_of(id), IG_JOBQ_FAILED);
    ig_jobq_job_free(job);
}

static void test_jobq_release_keeps_the_attempt(void **state)
{
    ig_jobq_state st = IG_JOBQ_FAILED;
    ig_jobq_job *job, *j;
    ig_jobq_position pos = {3, 300, 30};
    ig_jobq_counts counts = {30, 30, 0, 0, 0, 0};
    long long id;
    ig_err err;
    (void)state;

    id = enqueue("items", 1);
    job = claim("w1");
    assert_int_equal(
        ig_jobq_checkpoint(fx.conn, &job->lease, &pos, &counts, &err), IG_OK);
    assert_int_equal(ig_jobq_release(fx.conn, &job->lease, &st, &err), IG_OK);
    assert_int_equal(st, IG_JOBQ_QUEUED);
    ig_jobq_job_free(job);
    j = get(id);
    assert_int_equal(j->state, IG_JOBQ_QUEUED);
    assert_int_equal(j->attempt, 0);
    assert_null(j->worker_id);
    ig_jobq_job_free(j);

    job = claim("w2");
    assert_non_null(job);
    assert_int_equal(job->attempt, 1); /* max_attempts 1 still allows it */
    assert_int_equal(job->checkpoint.batch, 3);
    assert_int_equal(job->checkpoint.offset, 300);
    assert_int_equal(job->checkpoint.row, 30);
    assert_int_equal(job->counts.processed, 30);
    ig_jobq_job_free(job);
}

static void test_jobq_checkpoint_rolled_back_keeps_old(void **state)
{
    ig_jobq_job *job, *j;
    ig_jobq_position p1 = {1, 100, 10}, p2 = {2, 200, 20};
    ig_jobq_counts c1 = {10, 8, 1, 0, 0, 1}, c2 = {20, 17, 1, 0, 1, 1};
    long long id;
    ig_err err;
    (void)state;

    id = enqueue("items", 3);
    job = claim("w1");
    assert_int_equal(ig_jobq_checkpoint(fx.conn, &job->lease, &p1, &c1, &err),
                     IG_OK);
    sql("BEGIN");
    assert_int_equal(ig_jobq_checkpoint(fx.conn, &job->lease, &p2, &c2, &err),
                     IG_OK);
    sql("ROLLBACK");
    j = get(id);
    assert_int_equal(j->checkpoint.batch, 1);
    assert_int_equal(j->checkpoint.offset, 100);
    assert_int_equal(j->counts.processed, 10);
    assert_int_equal(j->counts.failed, 1);
    ig_jobq_job_free(j);

    sql("BEGIN");
    assert_int_equal(ig_jobq_checkpoint(fx.conn, &job->lease, &p2, &c2, &err),
                     IG_OK);
    sql("COMMIT");
    j = get(id);
    assert_int_equal(j->checkpoint.batch, 2);
    assert_int_equal(j->checkpoint.row, 20);
    assert_int_equal(j->counts.skipped, 1);
    ig_jobq_job_free(j);

    /* finish with NULL counts keeps the checkpointed ones. */
    assert_int_equal(ig_jobq_finish(fx.conn, &job->lease,
                                    IG_JOBQ_PARTIALLY_SUCCEEDED, NULL, NULL,
                                    &err),
                     IG_OK);
    j = get(id);
    assert_int_equal(j->state, IG_JOBQ_PARTIALLY_SUCCEEDED);
    assert_int_equal(j->counts.inserted, 17);
    assert_true(j->finished_at > 0);
    assert_null(j->worker_id);
    ig_jobq_job_free(j);
    /* Not a final state: refused before touching the database. */
    assert_int_equal(
        ig_jobq_finish(fx.conn, &job->lease, IG_JOBQ_QUEUED, NULL, NULL, &err),
        IG_INTERNAL);
    ig_jobq_job_free(job);
}

/* ---- cancel ------------------------------------------------------------ */

static void test_jobq_cancel_each_state(void **state)
{
    ig_jobq_cancel_result r;
    ig_jobq_state st;
    ig_jobq_job *job, *j;
    int cancel = 0;
    long long id;
    ig_err err;
    (void)state;

    /* running: requested, seen by the heartbeat, then finished. */
    id = enqueue("items", 3);
    job = claim("w1");
    assert_int_equal(ig_jobq_cancel(fx.conn, id, &r, &st, &err), IG_OK);
    assert_int_equal(r, IG_JOBQ_CANCEL_REQUESTED);
    assert_int_equal(st, IG_JOBQ_RUNNING);
    assert_int_equal(state_of(id), IG_JOBQ_RUNNING);
    assert_int_equal(ig_jobq_heartbeat(fx.conn, &job->lease, 60, &cancel, &err),
                     IG_OK);
    assert_int_equal(cancel, 1);
    assert_int_equal(ig_jobq_finish(fx.conn, &job->lease, IG_JOBQ_CANCELLED,
                                    NULL, NULL, &err),
                     IG_OK);
    ig_jobq_job_free(job);

    /* running, then released at a shutdown: cancelled, saying why. */
    {
        long long id2 = enqueue("items", 3);
        ig_jobq_job *job2 = claim("w1");

        assert_int_equal(ig_jobq_cancel(fx.conn, id2, &r, &st, &err), IG_OK);
        assert_int_equal(ig_jobq_release(fx.conn, &job2->lease, &st, &err),
                         IG_OK);
        assert_int_equal(st, IG_JOBQ_CANCELLED);
        ig_jobq_job_free(job2);
        j = get(id2);
        assert_int_equal(j->state, IG_JOBQ_CANCELLED);
        assert_string_equal(j->last_error, "cancelled at a batch boundary");
        ig_jobq_job_free(j);
    }

    /* finished: reported, nothing changes. */
    assert_int_equal(ig_jobq_cancel(fx.conn, id, &r, &st, &err), IG_OK);
    assert_int_equal(r, IG_JOBQ_CANCEL_FINISHED);
    assert_int_equal(st, IG_JOBQ_CANCELLED);
    id = enqueue("items", 3);
    job = claim("w1");
    assert_int_equal(ig_jobq_finish(fx.conn, &job->lease, IG_JOBQ_SUCCEEDED,
                                    NULL, NULL, &err),
                     IG_OK);
    ig_jobq_job_free(job);
    assert_int_equal(ig_jobq_cancel(fx.conn, id, &r, &st, &err), IG_OK);
    assert_int_equal(r, IG_JOBQ_CANCEL_FINISHED);
    assert_int_equal(st, IG_JOBQ_SUCCEEDED);
    j = get(id);
    assert_int_equal(j->state, IG_JOBQ_SUCCEEDED);
    assert_int_equal(j->cancel_requested, 0);
    ig_jobq_job_free(j);

    /* retryable: cancelled at once. */
    id = enqueue("items", 3);
    job = claim("w1");
    assert_int_equal(
        ig_jobq_fail_or_retry(fx.conn, &job->lease, "x", 1, &st, &err), IG_OK);
    ig_jobq_job_free(job);
    assert_int_equal(ig_jobq_cancel(fx.conn, id, &r, &st, &err), IG_OK);
    assert_int_equal(r, IG_JOBQ_CANCEL_DONE);
    j = get(id);
    assert_int_equal(j->state, IG_JOBQ_CANCELLED);
    assert_true(j->finished_at > 0);
    ig_jobq_job_free(j);

    /* unknown. */
    assert_int_equal(ig_jobq_cancel(fx.conn, 987654321, &r, &st, &err),
                     IG_NOTFOUND);
    assert_int_equal(ig_jobq_get(fx.conn, 987654321, &j, &err), IG_NOTFOUND);
    assert_null(j);
}

static void test_jobq_cancel_requested_then_rescued_is_cancelled(void **st)
{
    ig_jobq_job *job;
    long long id, n;
    ig_err err;
    (void)st;

    id = enqueue("items", 3);
    job = claim("w1");
    assert_int_equal(ig_jobq_cancel(fx.conn, id, NULL, NULL, &err), IG_OK);
    sql("UPDATE import_jobs SET lease_expires_at = now() - interval '1 s'");
    assert_int_equal(ig_jobq_rescue(fx.conn, NULL, 0, &n, &err), IG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(state_of(id), IG_JOBQ_CANCELLED);
    assert_null(claim("w2"));
    ig_jobq_job_free(job);
}

/* ---- row outcomes, listing, pruning ------------------------------------ */

static void test_jobq_results_round_trip_tricky_text(void **state)
{
    static const char *const tricky =
        "tab\there, newline\nthere, cr\r, backslash \\ and \\N and \\t, "
        "quotes ' \" , unicode é ✓ 𝄞, end\\";
    ig_jobq_result in[3];
    ig_jobq_rows *rows = NULL;
    ig_jobq_result out;
    long long id;
    ig_err err;
    (void)state;

    id = enqueue("items", 3);
    memset(in, 0, sizeof(in));
    in[0].source_row = 1;
    in[0].source_line = 2;
    in[0].outcome = IG_JOBQ_OUTCOME_FAILED;
    in[0].target = "item_master";
    in[0].column = "name\twith tab";
    in[0].code = "23505";
    in[0].constraint_name = "item_master_name_key";
    in[0].message = tricky;
    in[0].source_values = "{\"name\": \"a\\tb\\nc\\\\d \\\"q\\\" é\"}";
    in[1] = in[0];
    in[1].seq = 1;
    in[1].column = NULL;
    in[1].constraint_name = NULL;
    in[1].source_values = NULL;
    in[1].source_line = 0;
    in[2].source_row = 5;
    in[2].outcome = IG_JOBQ_OUTCOME_SKIPPED;
    in[2].code = "DUPLICATE";
    in[2].column = "c\xff"; /* a text column takes valid UTF-8 only */
    in[2].message = "cut \xC3";

    sql("BEGIN");
    assert_int_equal(ig_jobq_add_results(fx.conn, id, in, 3, &err), IG_OK);
    sql("COMMIT");
    assert_int_equal(ig_jobq_add_results(fx.conn, id, in, 0, &err), IG_OK);

    assert_int_equal(ig_jobq_results(fx.conn, id, 10, 0, &rows, &err), IG_OK);
    assert_int_equal(ig_jobq_rows_count(rows), 3);
    ig_jobq_rows_get(rows, 0, &out);
    assert_int_equal(out.source_row, 1);
    assert_int_equal(out.seq, 0);
    assert_int_equal(out.source_line, 2);
    assert_int_equal(out.outcome, IG_JOBQ_OUTCOME_FAILED);
    assert_string_equal(out.target, "item_master");
    assert_string_equal(out.column, "name\twith tab");
    assert_string_equal(out.code, "23505");
    assert_string_equal(out.constraint_name, "item_master_name_key");
    assert_string_equal(out.message, tricky);
    assert_string_equal(out.source_values,
                        "{\"name\": \"a\\tb\\nc\\\\d \\\"q\\\" é\"}");
    ig_jobq_rows_get(rows, 1, &out);
    assert_int_equal(out.seq, 1);
    assert_null(out.column);
    assert_null(out.constraint_name);
    assert_null(out.source_values);
    assert_int_equal(out.source_line, 0);
    assert_string_equal(out.message, tricky);
    ig_jobq_rows_get(rows, 2, &out);
    assert_int_equal(out.source_row, 5);
    assert_int_equal(out.outcome, IG_JOBQ_OUTCOME_SKIPPED);
    assert_string_equal(out.column, "c\xEF\xBF\xBD");
    assert_string_equal(out.message, "cut \xEF\xBF\xBD");
    ig_jobq_rows_free(rows);

    /* Paging. */
    assert_int_equal(ig_jobq_results(fx.conn, id, 1, 2, &rows, &err), IG_OK);
    assert_int_equal(ig_jobq_rows_count(rows), 1);
    ig_jobq_rows_get(rows, 0, &out);
    assert_int_equal(out.source_row, 5);
    ig_jobq_rows_free(rows);

    /* A duplicate key fails the whole COPY and leaves the connection
     * usable after the rollback. */
    sql("BEGIN");
    assert_int_equal(ig_jobq_add_results(fx.conn, id, in, 1, &err), IG_DB);
    assert_non_null(strstr(err.msg, "23505"));
    sql("ROLLBACK");
    assert_int_equal(sql_ll("SELECT count(*) FROM import_results"), 3);
}

static void test_jobq_results_many_rows(void **state)
{
    enum { N = 5000 };
    ig_jobq_result *in = calloc(N, sizeof(*in));
    ig_jobq_rows *rows = NULL;
    long long id;
    ig_err err;
    (void)state;

    id = enqueue("items", 3);
    for (int i = 0; i < N; i++) {
        in[i].source_row = i + 1;
        in[i].code = "REQUIRED";
        in[i].message = "column \"name\" is required but empty\tor missing";
        in[i].source_values = "{\"name\": \"\", \"note\": \"x\\ny\"}";
    }
    assert_int_equal(ig_jobq_add_results(fx.conn, id, in, N, &err), IG_OK);
    assert_int_equal(sql_ll("SELECT count(*) FROM import_results"), N);
    assert_int_equal(ig_jobq_results(fx.conn, id, 0, 0, &rows, &err), IG_OK);
    assert_int_equal(ig_jobq_rows_count(rows), 100);
    ig_jobq_rows_free(rows);
    free(in);
}

static void test_jobq_list_filters_newest_first(void **state)
{
    ig_jobq_filter f;
    ig_jobq_job **jobs = NULL;
    ig_jobq_job *job;
    size_t n = 0;
    long long a, b, c;
    ig_err err;
    (void)state;

    a = enqueue("items", 3);
    b = enqueue("colors", 3);
    c = enqueue("items", 3);
    job = claim("w1"); /* a is oldest: claimed */
    assert_int_equal(job->id, a);
    ig_jobq_job_free(job);

    memset(&f, 0, sizeof(f));
    assert_int_equal(ig_jobq_list(fx.conn, &f, &jobs, &n, &err), IG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(jobs[0]->id, c);
    assert_int_equal(jobs[2]->id, a);
    assert_null(jobs[0]->source);
    assert_int_equal(jobs[0]->source_bytes, 4);
    ig_jobq_jobs_free(jobs, n);

    f.pipeline = "items";
    assert_int_equal(ig_jobq_list(fx.conn, &f, &jobs, &n, &err), IG_OK);
    assert_int_equal(n, 2);
    ig_jobq_jobs_free(jobs, n);

    f.states = 1u << IG_JOBQ_QUEUED;
    assert_int_equal(ig_jobq_list(fx.conn, &f, &jobs, &n, &err), IG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0]->id, c);
    ig_jobq_jobs_free(jobs, n);

    f.pipeline = NULL;
    f.states = (1u << IG_JOBQ_QUEUED) | (1u << IG_JOBQ_RUNNING);
    f.limit = 1;
    f.offset = 1;
    assert_int_equal(ig_jobq_list(fx.conn, &f, &jobs, &n, &err), IG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0]->id, b);
    ig_jobq_jobs_free(jobs, n);

    f.states = 1u << IG_JOBQ_FAILED;
    f.offset = 0;
    assert_int_equal(ig_jobq_list(fx.conn, &f, &jobs, &n, &err), IG_OK);
    assert_int_equal(n, 0);
    assert_null(jobs);
}

static void test_jobq_prune_removes_only_old_finished(void **state)
{
    ig_jobq_job *job;
    ig_jobq_result r;
    long long old_done, new_done, old_queued, n;
    char q[200];
    ig_err err;
    (void)state;

    old_done = enqueue("items", 3);
    new_done = enqueue("items", 3);
    old_queued = enqueue("items", 3);
    for (int i = 0; i < 2; i++) {
        job = claim("w1");
        assert_int_equal(ig_jobq_finish(fx.conn, &job->lease, IG_JOBQ_SUCCEEDED,
                                        NULL, NULL, &err),
                         IG_OK);
        ig_jobq_job_free(job);
    }
    memset(&r, 0, sizeof(r));
    r.source_row = 1;
    r.code = "X";
    r.message = "m";
    assert_int_equal(ig_jobq_add_results(fx.conn, old_done, &r, 1, &err),
                     IG_OK);
    assert_int_equal(ig_jobq_add_results(fx.conn, new_done, &r, 1, &err),
                     IG_OK);
    snprintf(q, sizeof(q),
             "UPDATE import_jobs SET finished_at = now() -"
             " interval '2 days' WHERE id = %lld",
             old_done);
    sql(q);
    snprintf(q, sizeof(q),
             "UPDATE import_jobs SET created_at = now() -"
             " interval '9 days' WHERE id = %lld",
             old_queued);
    sql(q);

    assert_int_equal(ig_jobq_prune(fx.conn, 86400, &n, &err), IG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ig_jobq_get(fx.conn, old_done, &job, &err), IG_NOTFOUND);
    assert_int_equal(state_of(new_done), IG_JOBQ_SUCCEEDED);
    assert_int_equal(state_of(old_queued), IG_JOBQ_QUEUED);
    assert_int_equal(sql_ll("SELECT count(*) FROM import_results"), 1);
    snprintf(q, sizeof(q),
             "SELECT count(*) FROM import_results"
             " WHERE job_id = %lld",
             new_done);
    assert_int_equal(sql_ll(q), 1);
}

/* ---- LISTEN / NOTIFY --------------------------------------------------- */

static void *late_enqueuer(void *arg)
{
    PGconn *c = itdb_connect(fx.name);
    ig_jobq_enqueue_opts o;
    long long id;
    ig_err err;

    (void)arg;
    usleep(200 * 1000);
    memset(&o, 0, sizeof(o));
    o.pipeline = "items";
    if (c == NULL || ig_jobq_enqueue(c, &o, &id, &err) != IG_OK)
        fprintf(stderr, "late enqueue failed\n");
    PQfinish(c);
    return NULL;
}

static void test_jobq_wait_wakes_on_enqueue_and_times_out(void **state)
{
    PGconn *listener = itdb_connect(fx.name);
    pthread_t th;
    double t0, dt;
    int notified = -1;
    ig_err err;
    (void)state;

    assert_non_null(listener);
    assert_int_equal(ig_jobq_listen(listener, &err), IG_OK);

    t0 = now_s();
    assert_int_equal(ig_jobq_wait(listener, 150, &notified, &err), IG_OK);
    dt = now_s() - t0;
    assert_int_equal(notified, 0);
    assert_true(dt >= 0.14 && dt < 1.0);

    assert_int_equal(pthread_create(&th, NULL, late_enqueuer, NULL), 0);
    t0 = now_s();
    assert_int_equal(ig_jobq_wait(listener, 5000, &notified, &err), IG_OK);
    dt = now_s() - t0;
    pthread_join(th, NULL);
    assert_int_equal(notified, 1);
    assert_true(dt < 2.0);

    /* Drained: the next wait times out again. */
    assert_int_equal(ig_jobq_wait(listener, 50, &notified, &err), IG_OK);
    assert_int_equal(notified, 0);

    /* A release (back to queued) wakes listeners too (trigger). */
    {
        ig_jobq_job *job = claim("w1");
        assert_non_null(job);
        assert_int_equal(ig_jobq_wait(listener, 50, &notified, &err), IG_OK);
        assert_int_equal(notified, 0);
        assert_int_equal(ig_jobq_release(fx.conn, &job->lease, NULL, &err),
                         IG_OK);
        assert_int_equal(ig_jobq_wait(listener, 2000, &notified, &err), IG_OK);
        assert_int_equal(notified, 1);
        ig_jobq_job_free(job);
    }
    PQfinish(listener);
}

/* ---- throughput (informational) ---------------------------------------- */

static void test_jobq_throughput_enqueue_claim_finish(void **state)
{
    enum { N = 500 };
    double t0, dt;
    ig_err err;
    (void)state;

    t0 = now_s();
    for (int i = 0; i < N; i++) {
        ig_jobq_job *job;
        enqueue("items", 3);
        job = claim("bench");
        assert_non_null(job);
        assert_int_equal(ig_jobq_finish(fx.conn, &job->lease, IG_JOBQ_SUCCEEDED,
                                        NULL, NULL, &err),
                         IG_OK);
        ig_jobq_job_free(job);
    }
    dt = now_s() - t0;
    printf("# jobq throughput: %d enqueue+claim+finish in %.3f s = %.0f "
           "jobs/s (one connection)\n",
           N, dt, N / dt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup(fn, empty_tables)
        T(test_jobq_enqueue_claim_keeps_source_bytes),
        T(test_jobq_claim_on_empty_queue_returns_none),
        T(test_jobq_claim_order_priority_then_age),
        T(test_jobq_cancelled_queued_job_is_never_claimed),
        T(test_jobq_future_run_after_is_not_claimed),
        T(test_jobq_concurrent_claims_take_each_job_once),
        T(test_jobq_heartbeat_extends_lease),
        T(test_jobq_lost_lease_fences_every_write),
        T(test_jobq_rescue_retries_or_fails),
        T(test_jobq_fail_or_retry_transient_then_permanent),
        T(test_jobq_release_keeps_the_attempt),
        T(test_jobq_checkpoint_rolled_back_keeps_old),
        T(test_jobq_cancel_each_state),
        T(test_jobq_cancel_requested_then_rescued_is_cancelled),
        T(test_jobq_results_round_trip_tricky_text),
        T(test_jobq_results_many_rows),
        T(test_jobq_list_filters_newest_first),
        T(test_jobq_prune_removes_only_old_finished),
        T(test_jobq_wait_wakes_on_enqueue_and_times_out),
        T(test_jobq_throughput_enqueue_claim_finish),
#undef T
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
