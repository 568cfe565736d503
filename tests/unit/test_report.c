/*
 * test_report.c - which figures GET /api/imports/<id>/progress and
 * `ingot progress` show: the live ones only when they are this job row's,
 * of its current attempt, and not behind its durable counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "jobq.h"
#include "progress.h"
#include "report.h"

#define CREATED 1764800000.123456

static char pipeline[] = "items";

static ig_jobq_job job(ig_jobq_state state, int attempt, long long processed)
{
    ig_jobq_job j;

    memset(&j, 0, sizeof(j));
    j.id = 7;
    j.pipeline = pipeline;
    j.state = state;
    j.attempt = attempt;
    j.created_at = CREATED;
    j.started_at = CREATED + 1;
    j.total_rows = 1000;
    j.counts.processed = processed;
    j.counts.inserted = processed;
    return j;
}

static ig_progress_info live(int attempt, double created, long long processed)
{
    ig_progress_info in;

    memset(&in, 0, sizeof(in));
    snprintf(in.state, sizeof(in.state), "running");
    in.total = 1000;
    in.processed = processed;
    in.updated = processed;
    in.started_at = CREATED + 2;
    in.job_created_at = created;
    in.attempt = attempt;
    ig_progress_compute(&in, CREATED + 12);
    return in;
}

/* The figures shown for job j given live figures in: their source and
 * their "processed" and "updated" counts. */
static void shown(const ig_jobq_job *j, const ig_progress_info *in,
                  const char *source, long long processed, long long updated)
{
    json_t *o = ig_report_progress(j, in, "redis");

    assert_string_equal(json_string_value(json_object_get(o, "source")),
                        source);
    assert_int_equal(json_integer_value(json_object_get(o, "processed")),
                     processed);
    assert_int_equal(json_integer_value(json_object_get(o, "updated")),
                     updated);
    json_decref(o);
}

static void test_report_live_figures_of_this_attempt_shown(void **state)
{
    ig_jobq_job j = job(IG_JOBQ_RUNNING, 2, 400);
    ig_progress_info in = live(2, CREATED, 500);

    (void)state;
    shown(&j, &in, "redis", 500, 500);
    /* Written with six decimals and read back: still this job row. */
    in = live(2, CREATED + 4e-7, 500);
    shown(&j, &in, "redis", 500, 500);
    /* Equal to the checkpoint is not behind it. */
    in = live(2, CREATED, 400);
    shown(&j, &in, "redis", 400, 400);
}

static void test_report_other_job_row_or_attempt_ignored(void **state)
{
    ig_jobq_job j = job(IG_JOBQ_RUNNING, 2, 400);
    ig_progress_info in;

    (void)state;
    /* Another database's job 7, sharing the Redis. */
    in = live(2, CREATED - 3600, 900);
    shown(&j, &in, "database", 400, 0);
    in = live(2, CREATED + 1e-4, 900);
    shown(&j, &in, "database", 400, 0);
    /* The last figures of attempt 1, whose worker was killed. */
    in = live(1, CREATED, 900);
    shown(&j, &in, "database", 400, 0);
    /* Figures written before these fields existed. */
    in = live(0, 0, 900);
    shown(&j, &in, "database", 400, 0);
    shown(&j, NULL, "database", 400, 0);
}

static void test_report_live_behind_checkpoint_ignored(void **state)
{
    ig_jobq_job j = job(IG_JOBQ_RUNNING, 1, 600);
    ig_progress_info in = live(1, CREATED, 500);

    (void)state;
    shown(&j, &in, "database", 600, 0);
}

static void test_report_final_job_shows_durable_counters(void **state)
{
    ig_jobq_job j = job(IG_JOBQ_SUCCEEDED, 1, 1000);
    ig_progress_info in = live(1, CREATED, 1000);
    json_t *o;

    (void)state;
    j.finished_at = CREATED + 20;
    in.rows_per_sec = 12345; /* the live figure's rate is not used */
    shown(&j, &in, "database", 1000, 0);
    o = ig_report_progress(&j, &in, "redis");
    assert_true(json_real_value(json_object_get(o, "percent")) == 100.0);
    /* 1000 / 19 s, to one decimal, as the Redis store keeps it */
    assert_true(json_real_value(json_object_get(o, "rows_per_sec")) == 52.6);
    json_decref(o);
}

/* A running job whose lease ran out (its worker stopped heartbeating)
 * does not look alive: its last live figures are not shown, it has no
 * rate and no ETA, and it says it is stalled. A live lease shows them. */
static void test_report_stalled_job_does_not_look_alive(void **state)
{
    ig_jobq_job j = job(IG_JOBQ_RUNNING, 1, 400);
    ig_progress_info in = live(1, CREATED, 500);
    json_t *o;

    (void)state;
    j.updated_at = CREATED + 10;
    j.lease_expires_at = (double)time(NULL) - 5;
    o = ig_report_progress(&j, &in, "redis");
    assert_string_equal(json_string_value(json_object_get(o, "source")),
                        "database");
    assert_int_equal(json_integer_value(json_object_get(o, "processed")), 400);
    assert_true(json_is_true(json_object_get(o, "stalled")));
    assert_true(json_real_value(json_object_get(o, "rows_per_sec")) == 0.0);
    assert_true(json_is_null(json_object_get(o, "eta_seconds")));
    json_decref(o);

    j.lease_expires_at = (double)time(NULL) + 30;
    o = ig_report_progress(&j, &in, "redis");
    assert_string_equal(json_string_value(json_object_get(o, "source")),
                        "redis");
    assert_true(json_is_false(json_object_get(o, "stalled")));
    json_decref(o);
}

/* From the job row, a resumed attempt's rate is its own rows over its own
 * time (not all rows since the first start, across the wait for a
 * rescue), and before its first row it has none. */
static void test_report_resumed_attempt_rate_from_the_row(void **state)
{
    ig_jobq_job j = job(IG_JOBQ_RUNNING, 2, 800);
    json_t *o;

    (void)state;
    j.lease_expires_at = (double)time(NULL) + 30;
    j.attempt_started_at = CREATED + 100;
    j.attempt_base_rows = 600;
    j.updated_at = CREATED + 110; /* 200 rows in 10 s */
    o = ig_report_progress(&j, NULL, "redis");
    assert_string_equal(json_string_value(json_object_get(o, "source")),
                        "database");
    assert_true(json_real_value(json_object_get(o, "rows_per_sec")) == 20.0);
    assert_true(json_real_value(json_object_get(o, "eta_seconds")) == 10.0);
    json_decref(o);

    j.attempt_base_rows = 800; /* no row of its own yet */
    o = ig_report_progress(&j, NULL, "redis");
    assert_true(json_real_value(json_object_get(o, "rows_per_sec")) == 0.0);
    assert_true(json_is_null(json_object_get(o, "eta_seconds")));
    json_decref(o);
}

static void test_report_success_rate_never_rounds_to_all_or_none(void **st)
{
    (void)st;
    assert_true(ig_report_success_rate(3, 1, 2) == 66.67);
    assert_true(ig_report_success_rate(3, 1, 1) == 66.7);
    assert_true(ig_report_success_rate(3000, 1, 1) == 99.9);
    assert_true(ig_report_success_rate(3000, 1, 2) == 99.97);
    assert_true(ig_report_success_rate(300000, 6, 2) == 99.99);
    assert_true(ig_report_success_rate(300000, 299999, 1) == 0.1);
    assert_true(ig_report_success_rate(300000, 300000, 1) == 0.0);
    assert_true(ig_report_success_rate(20, 0, 1) == 100.0);
    assert_true(ig_report_success_rate(0, 0, 2) == 100.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_live_figures_of_this_attempt_shown),
        cmocka_unit_test(test_report_other_job_row_or_attempt_ignored),
        cmocka_unit_test(test_report_live_behind_checkpoint_ignored),
        cmocka_unit_test(test_report_final_job_shows_durable_counters),
        cmocka_unit_test(test_report_stalled_job_does_not_look_alive),
        cmocka_unit_test(test_report_resumed_attempt_rate_from_the_row),
        cmocka_unit_test(test_report_success_rate_never_rounds_to_all_or_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
