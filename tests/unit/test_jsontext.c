/*
 * test_jsontext.c - JSON numbers as text: which tokens are JSON numbers
 * (RFC 8259), and where they are in a text, in a row's fields only or
 * anywhere outside strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"

static void test_jsontext_numbers_by_the_grammar(void **state)
{
    static const char *const ok[] = {"0", "-0", "7", "-12", "1.10", "0.5",
                                     "1e3", "1E+2", "2e-7", "-0.0e0",
                                     "123456789012345678901234567890",
                                     "1e400"};
    static const char *const bad[] = {"", "-", "01", "1.", ".5", "+1",
                                      "1e", "1e+", "--1", "1.2.3", "0x10",
                                      "1 ", "Infinity", "NaN"};
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!ig_jsontext_is_number(ok[i], strlen(ok[i])))
            fail_msg("'%s' is a JSON number", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ig_jsontext_is_number(bad[i], strlen(bad[i])))
            fail_msg("'%s' is not a JSON number", bad[i]);
}

/* The numbers found, as "start-end start-end ...". */
static char *spans_of(const char *text, int row_values)
{
    static char out[256];
    size_t *spans, n, len = 0;

    ig_jsontext_numbers(text, strlen(text), row_values, &spans, &n);
    out[0] = '\0';
    for (size_t k = 0; k < n; k += 2)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%zu-%zu",
                                k ? " " : "", spans[k], spans[k + 1]);
    free(spans);
    return out;
}

static void test_jsontext_finds_numbers_outside_strings(void **state)
{
    (void)state;
    /* a row's fields only: not a key, not in a nested array, not at the
     * top level, not in a string (escaped quotes included) */
    assert_string_equal(spans_of("[{\"a\": 1.10, \"b\": \"2\", \"c\\\"\": -3}]", 1),
                        "7-11 30-32");
    assert_string_equal(spans_of("[1, {\"a\":\t\r\n12 }, [3]]", 1), "12-14");
    assert_string_equal(spans_of("[{\"a\": 01, \"b\": 1.}]", 1), "");
    assert_string_equal(spans_of("[{12: 1}]", 1), "6-7");
    /* anywhere outside strings */
    assert_string_equal(spans_of("{\"a\": [1e400, \"5\", -2E+9]}", 0),
                        "7-12 19-24");
    assert_string_equal(spans_of("42", 0), "0-2");
    assert_string_equal(spans_of("\"x\\\\\" 7", 0), "6-7");
}

static void test_jsontext_rewrite_quotes_or_zeroes(void **state)
{
    const char *text = "[{\"a\": 1.10, \"b\": [1e400], \"c\": -0}]";
    size_t *spans, nspans, len;
    char *out;
    (void)state;

    ig_jsontext_numbers(text, strlen(text), 0, &spans, &nspans);
    out = ig_jsontext_rewrite(text, strlen(text), spans, nspans,
                              IG_JSONTEXT_QUOTE, &len);
    assert_string_equal(out, "[{\"a\": \"1.10\", \"b\": [\"1e400\"], \"c\": \"-0\"}]");
    assert_int_equal(len, strlen(out));
    free(out);
    out = ig_jsontext_rewrite(text, strlen(text), spans, nspans,
                              IG_JSONTEXT_ZERO, &len);
    assert_string_equal(out, "[{\"a\": 0, \"b\": [0], \"c\": 0}]");
    assert_int_equal(len, strlen(out));
    free(out);
    free(spans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsontext_numbers_by_the_grammar),
        cmocka_unit_test(test_jsontext_finds_numbers_outside_strings),
        cmocka_unit_test(test_jsontext_rewrite_quotes_or_zeroes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
