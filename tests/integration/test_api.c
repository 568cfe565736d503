/*
 * test_api.c - libingot's embedding API (src/ingot.h) as a long-lived
 * program uses it, against a real database: one handle reused after the
 * server closed its idle connections; cancel and timeout_seconds bounding
 * a run whose database cannot be reached; ingot_open refusing a setting
 * out of range by name; the error of a canceled run; INGOT_LOG_LEVEL
 * applied by ingot_settings_init.
 *
 * Creates its own database from DATABASE_URL, applies migrations/, and
 * drops it at the end. Fails when DATABASE_URL is unset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingot.h"
#include "itdb.h"

static itdb db;        /* the test database */
static char *url;      /* conninfo for libingot, same database */
static const char *pipeline = TEST_DATA_DIR "/run/colors.yaml";
static const char csv[] = "name,code\nRed,#ff0000\nGreen,#00ff00\n";

static int group_setup(void **state)
{
    (void)state;
    if (itdb_create(&db, "it_api") != 0)
        return -1;
    url = ig_xasprintf("host=%s port=%s user=%s password=%s dbname=%s",
                       PQhost(db.conn), PQport(db.conn), PQuser(db.conn),
                       PQpass(db.conn), db.name);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(url);
    itdb_drop(&db);
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Settings from the environment, pointed at the test database (or at
 * database_url when not NULL). */
static void settings(ingot_settings *s, const char *database_url)
{
    char err[256];

    /* A worker setting the library does not use cannot refuse it. */
    setenv("INGOT_WORKER_THREADS", "not a number", 1);
    assert_int_equal(ingot_settings_init(s, err, sizeof(err)), 0);
    unsetenv("INGOT_WORKER_THREADS");
    s->database_url = database_url ? database_url : url;
}

static long long backends(void)
{
    PGresult *r = PQexec(db.conn, "SELECT count(*) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND "
                                  "pid <> pg_backend_pid() AND "
                                  "backend_type = 'client backend'");
    long long n;

    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* A handle keeps its connections between runs. The server ending them
 * meanwhile (a restart, pg_terminate_backend, idle_session_timeout) must
 * not fail the next runs: the pool drops them and opens others. */
static void test_reused_handle_after_server_closed_connections(void **state)
{
    ingot_settings s;
    char err[256] = "";
    ingot *in;
    PGresult *r;

    (void)state;
    settings(&s, NULL);
    in = ingot_open(&s, err, sizeof(err));
    assert_non_null(in);
    for (int round = 0; round < 3; round++) {
        ingot_result *res =
            ingot_run_buffer(in, pipeline, csv, sizeof(csv) - 1, "t", NULL);
        if (ingot_result_status(res) != INGOT_DONE)
            fail_msg("round %d: %s: %s", round,
                     ingot_result_status_name(res), ingot_result_error(res));
        assert_int_equal(ingot_result_count(res, INGOT_READ), 2);
        ingot_result_free(res);
        assert_true(backends() >= 1); /* the handle kept a connection */
        r = PQexec(db.conn, "SELECT pg_terminate_backend(pid) FROM "
                            "pg_stat_activity WHERE datname = "
                            "current_database() AND pid <> pg_backend_pid() "
                            /* not an autovacuum worker: only a superuser
                             * may signal it */
                            "AND backend_type = 'client backend'");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
        for (int i = 0; i < 100 && backends() > 0; i++)
            usleep(20000);
        assert_int_equal(backends(), 0);
    }
    ingot_close(in);
}

/* Nothing listens on port 1: every connect is refused at once, and the
 * pool would retry for 30 s. */
#define NOWHERE "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2"

static void test_cancel_stops_connecting(void **state)
{
    ingot_settings s;
    char err[256] = "";
    volatile int cancel = 1;
    ingot_result *res;
    ingot *in;
    double t0;

    (void)state;
    settings(&s, NOWHERE);
    in = ingot_open(&s, err, sizeof(err));
    assert_non_null(in);
    t0 = mono_s();
    res = ingot_run_buffer(in, pipeline, csv, sizeof(csv) - 1, "t", &cancel);
    assert_true(mono_s() - t0 < 5.0);
    assert_int_equal(ingot_result_status(res), INGOT_CANCELED);
    assert_non_null(strstr(ingot_result_error(res), "canceled"));
    assert_non_null(strstr(ingot_result_error(res), "connect"));
    ingot_result_free(res);
    ingot_close(in);
}

static void test_timeout_stops_connecting(void **state)
{
    ingot_settings s;
    char err[256] = "";
    ingot_result *res;
    ingot *in;
    double t0, secs;

    (void)state;
    settings(&s, NOWHERE);
    s.timeout_seconds = 1;
    in = ingot_open(&s, err, sizeof(err));
    assert_non_null(in);
    t0 = mono_s();
    res = ingot_run_buffer(in, pipeline, csv, sizeof(csv) - 1, "t", NULL);
    secs = mono_s() - t0;
    assert_true(secs >= 0.9 && secs < 5.0);
    assert_int_equal(ingot_result_status(res), INGOT_TIMED_OUT);
    assert_non_null(strstr(ingot_result_error(res), "timed out after 1 s"));
    ingot_result_free(res);
    ingot_close(in);
}

/* Each bad value is refused by ingot_open with the field and the
 * setting it stands for. */
static void test_open_refuses_out_of_range(void **state)
{
    static const struct {
        const char *field, *key;
        long long v;
    } bad[] = {
        {"batch_size", "IMPORT_BATCH_SIZE", 10000000},
        {"batch_size", "IMPORT_BATCH_SIZE", 0},
        {"max_rows", "IMPORT_MAX_ROWS", -1},
        {"timeout_seconds", "IMPORT_TIMEOUT_SECONDS", -1},
        {"statement_timeout_ms", "IMPORT_STATEMENT_TIMEOUT_MS", -7},
        {"pool_size", "IMPORT_POOL_SIZE", -5},
        {"writers", "IMPORT_WRITERS", 1000},
        {"insert_first", "IMPORT_INSERT_FIRST", 2},
    };
    ingot_settings s;
    char err[256];
    ingot *in;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        settings(&s, NULL);
        if (strcmp(bad[i].field, "batch_size") == 0)
            s.batch_size = (long)bad[i].v;
        else if (strcmp(bad[i].field, "max_rows") == 0)
            s.max_rows = bad[i].v;
        else if (strcmp(bad[i].field, "timeout_seconds") == 0)
            s.timeout_seconds = (long)bad[i].v;
        else if (strcmp(bad[i].field, "statement_timeout_ms") == 0)
            s.statement_timeout_ms = (long)bad[i].v;
        else if (strcmp(bad[i].field, "pool_size") == 0)
            s.pool_size = (int)bad[i].v;
        else if (strcmp(bad[i].field, "writers") == 0)
            s.writers = (int)bad[i].v;
        else
            s.insert_first = (int)bad[i].v;
        err[0] = '\0';
        in = ingot_open(&s, err, sizeof(err));
        if (in != NULL)
            fail_msg("%s = %lld was accepted", bad[i].field, bad[i].v);
        if (strstr(err, bad[i].field) == NULL ||
            strstr(err, bad[i].key) == NULL)
            fail_msg("%s = %lld: message does not name it: %s",
                     bad[i].field, bad[i].v, err);
    }
    settings(&s, NULL);
    s.pipeline_dir = "";
    assert_null(ingot_open(&s, err, sizeof(err)));
    assert_non_null(strstr(err, "pipeline_dir"));
    /* 0 means none / the default where the header says so. */
    settings(&s, NULL);
    s.timeout_seconds = 0;
    s.pool_size = 0;
    s.writers = 0;
    in = ingot_open(&s, err, sizeof(err));
    assert_non_null(in);
    ingot_close(in);
}

static void test_canceled_run_says_so(void **state)
{
    ingot_settings s;
    char err[256] = "";
    volatile int cancel = 1;
    ingot_result *res;
    ingot *in;

    (void)state;
    settings(&s, NULL);
    in = ingot_open(&s, err, sizeof(err));
    assert_non_null(in);
    res = ingot_run_buffer(in, pipeline, csv, sizeof(csv) - 1, "t", &cancel);
    assert_int_equal(ingot_result_status(res), INGOT_CANCELED);
    assert_string_equal(ingot_result_error(res),
                        "canceled; stopped at a batch boundary");
    ingot_result_free(res);
    ingot_close(in);
}

/* Run an import that cannot connect with INGOT_LOG_LEVEL=level and
 * return how many bytes libingot wrote to stderr meanwhile. */
static long stderr_bytes(const char *level)
{
    char path[] = "/tmp/ingot_api_stderrXXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    volatile int cancel = 0;
    ingot_settings s;
    char err[256] = "";
    ingot_result *res;
    ingot *in;
    off_t n;

    assert_true(fd >= 0 && saved >= 0);
    setenv("INGOT_LOG_LEVEL", level, 1);
    settings(&s, NOWHERE);
    s.timeout_seconds = 1; /* a few retries, each logged at warn */
    in = ingot_open(&s, err, sizeof(err));
    assert_non_null(in);
    fflush(stderr);
    dup2(fd, 2);
    res = ingot_run_buffer(in, pipeline, csv, sizeof(csv) - 1, "t", &cancel);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(ingot_result_status(res), INGOT_TIMED_OUT);
    ingot_result_free(res);
    ingot_close(in);
    n = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    return (long)n;
}

/* NULL arguments are a failed result that says which, never a crash;
 * the accessors take a NULL result; an out-of-range reason clears the
 * out-parameters. A directory given as the input is named as such. */
static void test_null_arguments_are_refused(void **state)
{
    ingot_settings s;
    char err[256];
    ingot *in;
    ingot_result *r;
    const char *t = "x", *col = "x", *code = "x", *con = "x";
    (void)state;

    settings(&s, NULL);
    in = ingot_open(&s, err, sizeof(err));
    assert_non_null(in);

    r = ingot_run_path(NULL, pipeline, "x.csv", NULL);
    assert_int_equal(ingot_result_status(r), INGOT_FAILED);
    assert_string_equal(ingot_result_error(r), "ingot_run_path: the runner is NULL");
    ingot_result_free(r);
    r = ingot_run_path(in, NULL, "x.csv", NULL);
    assert_string_equal(ingot_result_error(r), "ingot_run_path: the pipeline is NULL");
    ingot_result_free(r);
    r = ingot_run_path(in, pipeline, NULL, NULL);
    assert_string_equal(ingot_result_error(r), "ingot_run_path: the path is NULL");
    ingot_result_free(r);
    r = ingot_run_file(in, pipeline, NULL, "f", NULL);
    assert_string_equal(ingot_result_error(r), "ingot_run_file: the FILE is NULL");
    assert_int_equal(ingot_result_exit_code(r), 2);
    ingot_result_free(r);
    r = ingot_run_buffer(in, pipeline, NULL, 5, "b", NULL);
    assert_string_equal(ingot_result_error(r), "ingot_run_buffer: the buffer is NULL");
    ingot_result_free(r);
    r = ingot_run_path(in, pipeline, TEST_DATA_DIR, NULL);
    assert_non_null(strstr(ingot_result_error(r), "is a directory"));
    ingot_result_free(r);

    assert_int_equal(ingot_result_status(NULL), INGOT_FAILED);
    assert_string_equal(ingot_result_status_name(NULL), "failed");
    assert_int_equal(ingot_result_count(NULL, INGOT_READ), 0);
    assert_int_equal(ingot_result_nfailed(NULL), 0);
    assert_null(ingot_result_failed_reason(NULL, 0, 0, &t, &col, &code, &con));
    assert_null(t);
    assert_null(col);
    assert_null(code);
    assert_null(con);
    ingot_result_free(NULL);
    ingot_close(in);
}

static void test_log_level_from_settings(void **state)
{
    const char *was = getenv("INGOT_LOG_LEVEL");
    char *keep = was ? strdup(was) : NULL;

    (void)state;
    assert_int_equal(stderr_bytes("off"), 0);
    assert_true(stderr_bytes("warn") > 0);
    if (keep) {
        setenv("INGOT_LOG_LEVEL", keep, 1);
        free(keep);
    } else {
        unsetenv("INGOT_LOG_LEVEL");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_handle_after_server_closed_connections),
        cmocka_unit_test(test_cancel_stops_connecting),
        cmocka_unit_test(test_timeout_stops_connecting),
        cmocka_unit_test(test_open_refuses_out_of_range),
        cmocka_unit_test(test_canceled_run_says_so),
        cmocka_unit_test(test_log_level_from_settings),
        cmocka_unit_test(test_null_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
