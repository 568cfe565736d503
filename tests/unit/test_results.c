/*
 * test_results.c - the in-memory list of failed rows: what it keeps of a
 * row's original values (bounded per row, whatever the row's width, and
 * valid UTF-8); the reject file: its encoding, and rows the reader could
 * not parse, copied as they were or padded to a headerless input's width.
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
    ig_results_fail_row(r, 4, 5, -1, -1, v, 3, &reason, 1);
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
    ig_results_fail_row(r, 1, 2, -1, -1, v, n, &reason, 1);
    memset(big, 'x', 10000);
    big[10000] = '\0';
    for (size_t i = 0; i < 10; i++)
        v[i] = (ig_value){big, 10000, 0};
    ig_results_fail_row(r, 2, 3, -1, -1, v, 10, &reason, 1);
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
    ig_results_fail_row(r, 1, 2, -1, -1, v, 1, &why, 1);
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

/* The reject file's text at path (NUL-terminated, owned), the file
 * removed. */
static char *slurp(const char *path, size_t *n)
{
    char *buf = malloc(4096);
    FILE *f = fopen(path, "rb");

    assert_non_null(buf);
    assert_non_null(f);
    *n = fread(buf, 1, 4095, f);
    buf[*n] = '\0';
    fclose(f);
    unlink(path);
    return buf;
}

/* A fresh path for a reject file (the file removed by slurp). */
static void temp_path(char *path)
{
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    close(fd);
}

/* Close r's reject file and compare it with want. */
static void reject_is(ig_results *r, const char *path, const char *want)
{
    ig_err err;
    size_t n;
    char *got;

    assert_int_equal(ig_results_close_reject(r, &err), IG_OK);
    got = slurp(path, &n);
    assert_string_equal(got, want);
    free(got);
}

static const ig_reason quote = {NULL, NULL, "CSV_QUOTE", NULL, "quote"};
static const ig_reason short_row = {NULL, NULL, "CSV_RAGGED", NULL, "short"};

/* Rows the reader could not parse are copied from the input as they were
 * (without their line end), so they fail again until fixed and keep what
 * the reader lost: the quotes of "ab"c, a short row's shortness. A row
 * that failed a rule is written field by field. */
static void test_results_reject_copies_unparsed_rows(void **state)
{
    static const char *const header[] = {"k", "a", "b"};
    static const char input[] = "k,a,b\r\nk1,\"ab\"c,y\r\nk2,x\nk3,p,q\n";
    char path[] = "/tmp/ingot-test-results-XXXXXX";
    ig_value q[2] = {{"k1", 2, 0}, {"abc,y", 5, 0}};
    ig_value s[2] = {{"k2", 2, 0}, {"x", 1, 0}};
    ig_value ok[3] = {{"k3", 2, 0}, {"p", 1, 0}, {"q", 1, 0}};
    const char want[] = "\"k\",\"a\",\"b\",\"ingot_row\",\"ingot_line\",\"ingot_error\"\n"
                        "k1,\"ab\"c,y,\"1\",\"2\",\"[CSV_QUOTE] quote\"\n"
                        "k2,x,\"2\",\"3\",\"[CSV_RAGGED] short\"\n"
                        "\"k3\",\"p\",\"q\",\"3\",\"4\",\"t.c: [CSV_RAGGED] ragged\"\n";
    ig_results *r = new_results();

    (void)state;
    temp_path(path);
    ig_results_set_reject(r, path, header, 3, ',', '"', NULL);
    ig_results_set_reject_source(r, -1, input, sizeof(input) - 1);
    ig_results_fail_row(r, 1, 2, 7, 19, q, 2, &quote, 1);
    ig_results_fail_row(r, 2, 3, 19, 24, s, 2, &short_row, 1);
    ig_results_fail_row(r, 3, 4, 24, 31, ok, 3, &reason, 1);
    reject_is(r, path, want);
    ig_results_free(r);
}

/* Without a header row a short row is padded to the input's width
 * instead: copied, it could be the reject file's first record, which
 * sets the width of its re-import. */
static void test_results_reject_pads_headerless_ragged_rows(void **state)
{
    static const char input[] = "a\n";
    char path[] = "/tmp/ingot-test-results-XXXXXX";
    ig_value s[1] = {{"a", 1, 0}};
    const char want[] = "\"a\",\"\",\"\",\"1\",\"1\",\"[CSV_RAGGED] short\"\n";
    ig_results *r = new_results();

    (void)state;
    temp_path(path);
    ig_results_set_reject(r, path, NULL, 0, ',', '"', NULL);
    ig_results_set_reject_source(r, -1, input, sizeof(input) - 1);
    ig_results_set_reject_width(r, 3);
    ig_results_fail_row(r, 1, 1, 0, 2, s, 1, &short_row, 1);
    reject_is(r, path, want);
    ig_results_free(r);
}

/* The kept values are text: a NUL byte and an invalid byte are U+FFFD,
 * in place, and the values after them keep their positions. */
static void test_results_kept_values_are_utf8(void **state)
{
    ig_value v[3] = {{"x\xffy", 3, 0}, {"a\0b", 3, 0}, {"z", 1, 0}};
    ig_results *r = new_results();
    const ig_failed_row *f;

    (void)state;
    ig_results_fail_row(r, 1, 2, -1, -1, v, 3, &quote, 1);
    f = ig_results_failed_row(r, 0);
    assert_int_equal(f->nvalues, 3);
    assert_string_equal(f->values[0], "x\xef\xbf\xbdy");
    assert_string_equal(f->values[1], "a\xef\xbf\xbd" "b");
    assert_string_equal(f->values[2], "z");
    ig_results_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_keeps_narrow_rows_whole),
        cmocka_unit_test(test_results_bounds_values_kept_per_row),
        cmocka_unit_test(test_results_reject_file_in_the_input_encoding),
        cmocka_unit_test(test_results_reject_copies_unparsed_rows),
        cmocka_unit_test(test_results_reject_pads_headerless_ragged_rows),
        cmocka_unit_test(test_results_kept_values_are_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
