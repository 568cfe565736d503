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
#include <unistd.h>

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

/* The reject file of a windows-1252 input is windows-1252, so it can be
 * re-imported through the same pipeline: "Caf\xc3\xa9 \xe2\x82\xac" is
 * "Caf\xe9 \x80", a C1 control the reader read from an undefined byte is
 * that byte again, and a character only a message can hold is '?'. */
static void test_results_reject_file_in_the_input_encoding(void **state)
{
    static const char *const header[] = {"name"};
    char path[] = "/tmp/ingot-test-results-XXXXXX";
    ig_value v[1] = {{"Caf\xc3\xa9 \xe2\x82\xac\xc2\x81", 11, 0}};
    ig_reason why = {"t", "name", "HOOK", NULL, "\xe2\x86\x92 no"};
    const char want[] = "\"name\",\"ingot_row\",\"ingot_line\",\"ingot_error\"\n"
                        "\"Caf\xe9 \x80\x81\",\"1\",\"2\",\"t.name: [HOOK] ? no\"\n";
    char got[256];
    ig_results *r = new_results();
    ig_err err;
    size_t n;
    FILE *f;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    ig_results_set_reject(r, path, header, 1, ',', '"', "WINDOWS-1252");
    ig_results_fail_row(r, 1, 2, v, 1, &why, 1);
    assert_int_equal(ig_results_close_reject(r, &err), IG_OK);
    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(got, 1, sizeof(got), f);
    fclose(f);
    unlink(path);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(got, want, n);
    ig_results_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_keeps_narrow_rows_whole),
        cmocka_unit_test(test_results_bounds_values_kept_per_row),
        cmocka_unit_test(test_results_reject_file_in_the_input_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
