/*
 * test_jobq_backoff.c - retry backoff: doubles per attempt, is capped, and
 * its jitter stays within +-25%; state names round-trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "jobq.h"

static void test_jobq_backoff_grows_and_is_capped(void **state)
{
    (void)state;
    /* jitter 0.5 is the midpoint: exactly the base. */
    assert_true(fabs(ig_jobq_backoff(1, 0.5) - 2.0) < 1e-9);
    assert_true(fabs(ig_jobq_backoff(2, 0.5) - 4.0) < 1e-9);
    assert_true(fabs(ig_jobq_backoff(5, 0.5) - 32.0) < 1e-9);
    for (int a = 1; a < 8; a++)
        assert_true(ig_jobq_backoff(a + 1, 0.5) > ig_jobq_backoff(a, 0.5));
    assert_true(fabs(ig_jobq_backoff(9, 0.5) - IG_JOBQ_BACKOFF_CAP_SECONDS) <
                1e-9);
    assert_true(fabs(ig_jobq_backoff(1000, 0.5) - IG_JOBQ_BACKOFF_CAP_SECONDS) <
                1e-9);
    /* attempt 0 or negative is treated as the first. */
    assert_true(fabs(ig_jobq_backoff(0, 0.5) - 2.0) < 1e-9);
}

static void test_jobq_backoff_jitter_within_bounds(void **state)
{
    (void)state;
    for (int a = 1; a < 12; a++) {
        double base = ig_jobq_backoff(a, 0.5);
        double lo = ig_jobq_backoff(a, 0.0), hi = ig_jobq_backoff(a, 0.999);
        assert_true(fabs(lo - 0.75 * base) < 1e-9);
        assert_true(hi <= 1.25 * base && hi > 1.24 * base);
        for (double j = 0.0; j < 1.0; j += 0.01) {
            double d = ig_jobq_backoff(a, j);
            assert_true(d >= 0.75 * base - 1e-9 && d < 1.25 * base);
        }
    }
    /* Out-of-range draws are clamped, NaN included. */
    assert_true(ig_jobq_backoff(3, -1.0) >= 0.75 * 8.0 - 1e-9);
    assert_true(ig_jobq_backoff(3, 7.0) < 1.25 * 8.0);
    assert_true(ig_jobq_backoff(3, NAN) >= 0.75 * 8.0 - 1e-9);
}

static void test_jobq_state_names_round_trip(void **state)
{
    ig_jobq_state s;
    (void)state;
    for (int i = 0; i < IG_JOBQ__STATE_COUNT; i++) {
        assert_int_equal(ig_jobq_state_parse(ig_jobq_state_name(i), &s), IG_OK);
        assert_int_equal(s, i);
    }
    assert_string_equal(ig_jobq_state_name(IG_JOBQ_PARTIALLY_SUCCEEDED),
                        "partially_succeeded");
    assert_int_equal(ig_jobq_state_parse("done", &s), IG_NOTFOUND);
    assert_int_equal(ig_jobq_state_parse(NULL, &s), IG_NOTFOUND);
    assert_false(ig_jobq_state_is_final(IG_JOBQ_RETRYABLE));
    assert_true(ig_jobq_state_is_final(IG_JOBQ_CANCELLED));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobq_backoff_grows_and_is_capped),
        cmocka_unit_test(test_jobq_backoff_jitter_within_bounds),
        cmocka_unit_test(test_jobq_state_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
