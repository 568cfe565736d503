/*
 * test_conf.c - settings: defaults, env and .env precedence, bad values
 * named, password redaction.
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

#include "conf.h"

static void clear_env(void)
{
    for (const ig_conf_key *k = ig_conf_keys(); k->name; k++)
        unsetenv(k->name);
}

static void test_conf_defaults_are_the_seeds(void **state)
{
    ig_conf c;
    (void)state;
    ig_conf_init(&c);
    assert_int_equal(c.batch_size, 5000); /* not the seed's 1000: see docs/performance.md */
    assert_int_equal(c.max_rows, 50000);
    assert_int_equal(c.timeout_seconds, 600);
    assert_int_equal(c.background_threshold, 1000);
    assert_int_equal(c.progress_expiry, 86400);
    assert_null(c.database_url);
    ig_conf_fini(&c);
}

static void expect_bad(const char *name, const char *value,
                       const char *fragment)
{
    ig_conf c;
    ig_err err;

    clear_env();
    setenv(name, value, 1);
    ig_conf_init(&c);
    assert_int_equal(ig_conf_load(&c, NULL, 0, &err), IG_CONFIG);
    assert_non_null(strstr(err.msg, name));
    assert_non_null(strstr(err.msg, fragment));
    ig_conf_fini(&c);
    unsetenv(name);
}

static void test_conf_bad_values_name_the_setting(void **state)
{
    (void)state;
    expect_bad("IMPORT_BATCH_SIZE", "abc", "not a whole number");
    expect_bad("IMPORT_BATCH_SIZE", "0", "out of range");
    expect_bad("IMPORT_BATCH_SIZE", "-5", "out of range");
    expect_bad("IMPORT_BATCH_SIZE", "99999999999999999999", "out of range");
    expect_bad("IMPORT_BATCH_SIZE", "10x", "not a whole number");
    expect_bad("IMPORT_BATCH_SIZE", "", "not a whole number");
    expect_bad("IMPORT_MAX_ROWS", "1e6", "not a whole number");
    expect_bad("REDIS_PROGRESS_EXPIRY", "0", "out of range");
    expect_bad("INGOT_LOG_LEVEL", "loud", "expected debug");
}

static void test_conf_env_overrides_dotenv_and_flag_overrides_env(void **st)
{
    char path[] = "/tmp/ingot-test-envXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    ig_conf c;
    ig_err err;
    (void)st;

    fprintf(f, "# comment\nexport IMPORT_BATCH_SIZE=250\n"
               "IMPORT_MAX_ROWS = \"777\"\nUNRELATED=1\n");
    fclose(f);
    clear_env();
    setenv("IMPORT_MAX_ROWS", "888", 1);
    ig_conf_init(&c);
    assert_int_equal(ig_conf_load(&c, path, 1, &err), IG_OK);
    assert_int_equal(c.batch_size, 250); /* from .env */
    assert_int_equal(c.max_rows, 888);   /* environment wins */
    assert_int_equal(ig_conf_set(&c, ig_conf_find_flag("max-rows"), "5",
                                 "--max-rows", &err),
                     IG_OK);
    assert_int_equal(c.max_rows, 5);
    assert_int_equal(ig_conf_set(&c, ig_conf_find_flag("batch-size"), "x",
                                 "--batch-size", &err),
                     IG_CONFIG);
    assert_non_null(strstr(err.msg, "--batch-size"));
    ig_conf_fini(&c);
    unsetenv("IMPORT_MAX_ROWS");
    unlink(path);
}

static void test_conf_dotenv_error_names_file_and_line(void **st)
{
    char path[] = "/tmp/ingot-test-envXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    ig_conf c;
    ig_err err;
    char want[128];
    (void)st;

    fprintf(f, "IMPORT_BATCH_SIZE=10\nIMPORT_TIMEOUT_SECONDS=soon\n");
    fclose(f);
    clear_env();
    ig_conf_init(&c);
    assert_int_equal(ig_conf_load(&c, path, 1, &err), IG_CONFIG);
    snprintf(want, sizeof(want), "%s:2", path);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "IMPORT_TIMEOUT_SECONDS"));
    ig_conf_fini(&c);
    unlink(path);
}

/* ig_conf_load_only reads and checks the settings it is given and no
 * other, from the environment and from .env. */
static void test_conf_load_only_leaves_the_rest(void **st)
{
    char path[] = "/tmp/ingot-test-envXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    static const char *const only[] = {"IMPORT_BATCH_SIZE",
                                       "IMPORT_MAX_ROWS", NULL};
    ig_conf c;
    ig_err err;
    (void)st;

    fprintf(f, "IMPORT_BATCH_SIZE=250\nINGOT_LEASE_SECONDS=never\n");
    fclose(f);
    clear_env();
    setenv("INGOT_WORKER_THREADS", "many", 1);
    setenv("IMPORT_MAX_ROWS", "888", 1);
    ig_conf_init(&c);
    assert_int_equal(ig_conf_load(&c, path, 1, &err), IG_CONFIG);
    ig_conf_fini(&c);
    ig_conf_init(&c);
    assert_int_equal(ig_conf_load_only(&c, path, 1, only, &err), IG_OK);
    assert_int_equal(c.batch_size, 250); /* from .env */
    assert_int_equal(c.max_rows, 888);   /* from the environment */
    assert_int_equal(c.worker_threads, 2); /* not read: the default */
    assert_int_equal(c.lease_seconds, 30);
    ig_conf_fini(&c);
    setenv("IMPORT_MAX_ROWS", "lots", 1); /* asked for: still checked */
    ig_conf_init(&c);
    assert_int_equal(ig_conf_load_only(&c, path, 1, only, &err), IG_CONFIG);
    assert_non_null(strstr(err.msg, "IMPORT_MAX_ROWS"));
    ig_conf_fini(&c);
    unsetenv("INGOT_WORKER_THREADS");
    unsetenv("IMPORT_MAX_ROWS");
    unlink(path);
}

static void test_conf_redact_hides_passwords(void **st)
{
    char b[256];
    (void)st;
    assert_string_equal(ig_conf_redact("postgresql://bob:s3cret@db:5432/x",
                                       b, sizeof(b)),
                        "postgresql://bob:***@db:5432/x");
    assert_string_equal(ig_conf_redact("redis://:pw@127.0.0.1:6379/0", b,
                                       sizeof(b)),
                        "redis://:***@127.0.0.1:6379/0");
    assert_string_equal(ig_conf_redact("host=h password='a b' user=u", b,
                                       sizeof(b)),
                        "host=h password=*** user=u");
    assert_string_equal(ig_conf_redact("postgresql://h/db?user=u&password=p1",
                                       b, sizeof(b)),
                        "postgresql://h/db?user=u&password=***");
    assert_string_equal(ig_conf_redact("postgresql://u@h/db", b, sizeof(b)),
                        "postgresql://u@h/db");
    assert_string_equal(ig_conf_redact("host=h password = pw1 user=u", b,
                                       sizeof(b)),
                        "host=h password = *** user=u");
    assert_string_equal(ig_conf_redact("host=h\tpassword\t=\t'p w' x=1", b,
                                       sizeof(b)),
                        "host=h\tpassword\t=\t*** x=1");
    assert_string_equal(ig_conf_redact("host=h passwordless=1", b, sizeof(b)),
                        "host=h passwordless=1");
    assert_string_equal(ig_conf_redact(NULL, b, sizeof(b)), "(unset)");

    /* A secret with a newline (read from a file) is refused unshown. */
    {
        ig_conf c;
        ig_err err;
        ig_conf_init(&c);
        assert_int_equal(ig_conf_set(&c, ig_conf_find("INGOT_API_TOKEN"),
                                     "Sup3rS3cret\n", "environment", &err),
                         IG_CONFIG);
        assert_non_null(strstr(err.msg, "INGOT_API_TOKEN"));
        assert_non_null(strstr(err.msg, "newline"));
        assert_null(strstr(err.msg, "Sup3rS3cret"));
        assert_int_equal(ig_conf_set(&c, ig_conf_find("DATABASE_URL"),
                                     "host=h password = pw9\n", "environment",
                                     &err),
                         IG_CONFIG);
        assert_null(strstr(err.msg, "pw9"));
        ig_conf_fini(&c);
    }
}

static void test_conf_secret_not_echoed_in_errors(void **st)
{
    ig_conf c;
    ig_err err;
    (void)st;
    ig_conf_init(&c);
    assert_int_equal(ig_conf_set(&c, ig_conf_find("DATABASE_URL"),
                                 "postgresql://u:hunter2@h/\nx", "test",
                                 &err),
                     IG_CONFIG);
    assert_null(strstr(err.msg, "hunter2"));
    ig_conf_fini(&c);
}

/* README's settings table names every key of the table (docs can't drift). */
static void test_conf_every_setting_is_in_the_readme(void **st)
{
    char path[1024], want[128];
    FILE *f;
    char *text;
    long n;
    (void)st;

    snprintf(path, sizeof(path), "%s/README.md", TEST_SOURCE_DIR);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    for (const ig_conf_key *k = ig_conf_keys(); k->name; k++) {
        snprintf(want, sizeof(want), "| `%s` |", k->name);
        if (strstr(text, want) == NULL)
            fail_msg("README.md's settings table lacks %s", k->name);
        if (k->flag) {
            snprintf(want, sizeof(want), "`--%s`", k->flag);
            if (strstr(text, want) == NULL)
                fail_msg("README.md lacks the flag --%s", k->flag);
        }
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_defaults_are_the_seeds),
        cmocka_unit_test(test_conf_bad_values_name_the_setting),
        cmocka_unit_test(test_conf_env_overrides_dotenv_and_flag_overrides_env),
        cmocka_unit_test(test_conf_dotenv_error_names_file_and_line),
        cmocka_unit_test(test_conf_load_only_leaves_the_rest),
        cmocka_unit_test(test_conf_redact_hides_passwords),
        cmocka_unit_test(test_conf_secret_not_echoed_in_errors),
        cmocka_unit_test(test_conf_every_setting_is_in_the_readme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
