/*
 * test_results.c - the in-memory list of failed rows: what it keeps of a
 * row's original values (bounded per row, whatever the row's width).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "results.h"

static ig_results *new_results(void)
{
    static const char *const names[] = {"t"};
    ig_results_opts o = {1, names, 10};

    return ig_results_new(&o);
}

static const ig_reason reason = {"t", "c", "CSV_RAGGED", NULL, "ragged"};

static void test_results_keeps_narrow_rows_whole(void **state)
{
    ig_value v[3] = {{"a", 1, 0}, {NULL, 0, 1}, {"ccc", 3, 0}};
    ig_results *r = new_results();
    const ig_failed_row *f;

    (void)state;
    ig_results_fail_row(r, 4, 5, v, 3, &reason, 1);
    f = ig_results_failed_row(r, 0);
    assert_int_equal(f->row, 4);
    assert_int_equal(f->line, 5);
    assert_int_equal(f->nvalues, 3);
    assert_string_equal(f->values[0], "a");
    assert_null(f->values[1]);
    assert_string_equal(f->values[2], "ccc");
    ig_results_free(r);
}

/* 20000 empty fields keep 1024; ten 10 KB fields keep what fits 64 KiB.
 * The row is counted either way. */
static void test_results_bounds_values_kept_per_row(void **state)
{
    size_t n = 20000;
    ig_value *v = calloc(n, sizeof(*v));
    char *big = malloc(10001);
    ig_results *r = new_results();
    const ig_failed_row *f;

    (void)state;
    assert_non_null(v);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        v[i] = (ig_value){"", 0, 0};
    ig_results_fail_row(r, 1, 2, v, n, &reason, 1);
    memset(big, 'x', 10000);
    big[10000] = '\0';
    for (size_t i = 0; i < 10; i++)
        v[i] = (ig_value){big, 10000, 0};
    ig_results_fail_row(r, 2, 3, v, 10, &reason, 1);
    assert_int_equal(ig_results_counts(r).failed, 2);
    f = ig_results_failed_row(r, 0);
    assert_int_equal(f->nvalues, 1024);
    assert_string_equal(f->values[1023], "");
    f = ig_results_failed_row(r, 1);
    assert_int_equal(f->nvalues, 6);
    assert_int_equal(strlen(f->values[5]), 10000);
    ig_results_free(r);
    free(big);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_keeps_narrow_rows_whole),
        cmocka_unit_test(test_results_bounds_values_kept_per_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
