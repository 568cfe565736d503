/*
 * test_progress_math.c - the derived progress fields (percent, rate, ETA)
 * and redis:// URL parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "progress.h"

static ig_progress_info info(const char *state, long long total,
                             long long processed, double started_at)
{
    ig_progress_info in;
    memset(&in, 0, sizeof(in));
    snprintf(in.state, sizeof(in.state), "%s", state);
    in.total = total;
    in.processed = processed;
    in.started_at = started_at;
    return in;
}

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-6)

static void test_progress_math_percent_rate_eta(void **state)
{
    ig_progress_info in = info("running", 1000, 250, 100.0);
    (void)state;

    ig_progress_compute(&in, 110.0);
    NEAR(in.percent, 25.0);
    NEAR(in.rows_per_sec, 25.0);
    NEAR(in.eta_seconds, 30.0);
    NEAR(in.updated_at, 110.0);
}

static void test_progress_math_unknowns(void **state)
{
    ig_progress_info in;
    (void)state;

    /* Unknown total: no percent, no ETA, but a rate. */
    in = info("running", 0, 500, 100.0);
    ig_progress_compute(&in, 105.0);
    NEAR(in.percent, -1.0);
    NEAR(in.eta_seconds, -1.0);
    NEAR(in.rows_per_sec, 100.0);

    /* No time elapsed (or no start): rate 0, ETA unknown. */
    in = info("running", 100, 10, 0.0);
    ig_progress_compute(&in, 105.0);
    NEAR(in.rows_per_sec, 0.0);
    NEAR(in.eta_seconds, -1.0);
    NEAR(in.percent, 10.0);
    in = info("running", 100, 10, 105.0);
    ig_progress_compute(&in, 105.0);
    NEAR(in.rows_per_sec, 0.0);
    /* Clock going backwards is not negative time. */
    ig_progress_compute(&in, 100.0);
    NEAR(in.rows_per_sec, 0.0);
    /* A queued job (put back by a stopping worker) is not moving. */
    in = info("queued", 100, 40, 100.0);
    ig_progress_compute(&in, 110.0);
    NEAR(in.rows_per_sec, 0.0);
    NEAR(in.eta_seconds, -1.0);
    NEAR(in.percent, 40.0);
    in = info("retryable", 100, 40, 100.0);
    ig_progress_compute(&in, 110.0);
    NEAR(in.rows_per_sec, 0.0);
}

static void test_progress_math_clamps_and_final_states(void **state)
{
    ig_progress_info in;
    (void)state;

    in = info("running", 100, 150, 100.0); /* total was an estimate */
    ig_progress_compute(&in, 110.0);
    NEAR(in.percent, 100.0);
    NEAR(in.eta_seconds, 0.0);

    in = info("succeeded", 0, 42, 100.0);
    ig_progress_compute(&in, 101.0);
    NEAR(in.percent, 100.0);
    NEAR(in.eta_seconds, 0.0);

    in = info("failed", 100, 40, 100.0);
    ig_progress_compute(&in, 101.0);
    NEAR(in.percent, 40.0);
    NEAR(in.eta_seconds, 0.0);
}

static void test_progress_url_forms(void **state)
{
    ig_progress_url u;
    ig_err err;
    (void)state;

    assert_int_equal(
        ig_progress_parse_url("redis://127.0.0.1:37384/0", &u, &err), IG_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 37384);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");

    assert_int_equal(
        ig_progress_parse_url("redis://:p%40ss:w@cache/3", &u, &err), IG_OK);
    assert_string_equal(u.host, "cache");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "p@ss:w");
    assert_int_equal(u.db, 3);

    assert_int_equal(
        ig_progress_parse_url("redis://alice:pw@[::1]:7000", &u, &err), IG_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "pw");

    assert_int_equal(ig_progress_parse_url("redis://", &u, &err), IG_OK);
    assert_string_equal(u.host, "127.0.0.1");
}

static void test_progress_url_errors_hide_the_password(void **state)
{
    ig_progress_url u;
    ig_err err;
    (void)state;

    assert_int_equal(ig_progress_parse_url("http://h", &u, &err), IG_CONFIG);
    assert_int_equal(ig_progress_parse_url("rediss://h", &u, &err), IG_CONFIG);
    assert_non_null(strstr(err.msg, "TLS"));
    assert_int_equal(ig_progress_parse_url("redis://:s3cret@h:99999", &u, &err),
                     IG_CONFIG);
    assert_null(strstr(err.msg, "s3cret"));
    assert_int_equal(
        ig_progress_parse_url("redis://:s3cret@h:6379/x", &u, &err), IG_CONFIG);
    assert_null(strstr(err.msg, "s3cret"));
    assert_int_equal(ig_progress_parse_url("redis://:bad%4@h", &u, &err),
                     IG_CONFIG);
    assert_int_equal(ig_progress_parse_url(NULL, &u, &err), IG_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_math_percent_rate_eta),
        cmocka_unit_test(test_progress_math_unknowns),
        cmocka_unit_test(test_progress_math_clamps_and_final_states),
        cmocka_unit_test(test_progress_url_forms),
        cmocka_unit_test(test_progress_url_errors_hide_the_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
