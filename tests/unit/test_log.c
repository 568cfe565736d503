/*
 * test_log.c - the log line: one entry is one line on stderr, whatever
 * the message holds (a line end in a file name, libpq's DETAIL line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* What ig_log_write sent to stderr (fd 2 redirected to a temporary file
 * meanwhile); malloc'ed. */
static char *captured(ig_log_level level, const char *fmt, const char *arg)
{
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    long len;
    char *out;

    assert_non_null(f);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
    ig_log_write(level, fmt, arg);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    len = ftell(f);
    assert_true(len > 0);
    out = calloc(1, (size_t)len + 1);
    rewind(f);
    assert_int_equal(fread(out, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return out;
}

static void test_log_one_entry_is_one_line(void **state)
{
    char *s;
    (void)state;

    s = captured(IG_LOG_ERROR, "claimed %s",
                 "inj\n2026-12-04T00:00:00.000Z error FAKE\r\x1b[2J.csv");
    assert_non_null(strstr(s, " error claimed inj 2026-12-04T00:00:00.000Z "
                              "error FAKE  [2J.csv\n"));
    assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1); /* one line */
    free(s);

    s = captured(IG_LOG_WARN, "tab\tkept%s", "");
    assert_non_null(strstr(s, "warn  tab\tkept\n"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_one_entry_is_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
