/*
 * test_resume.c - ig_run against a real database: an import resumed
 * after a checkpoint (skip_rows, as the worker does after a rescue) still
 * applies the duplicates: error / first policies to keys of the rows it
 * skips; wide rows end a batch before IMPORT_BATCH_SIZE rows.
 *
 * Creates its own database from DATABASE_URL, applies migrations/, and
 * drops it at the end. Fails when DATABASE_URL is unset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "itdb.h"
#include "migrate.h"
#include "pipeline.h"
#include "pool.h"
#include "results.h"
#include "runner.h"

static itdb db;         /* the test database */
static char *pool_url;  /* conninfo for the runner's pool, same database */

static int group_setup(void **state)
{
    (void)state;
    if (itdb_create(&db, "it_resume") != 0)
        return -1;
    /* The pool connects like db.conn: same server, role and password. */
    pool_url = ig_xasprintf("host=%s port=%s user=%s password=%s dbname=%s",
                            PQhost(db.conn), PQport(db.conn),
                            PQuser(db.conn), PQpass(db.conn), db.name);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(pool_url);
    itdb_drop(&db);
    return 0;
}

/* Per committed batch: the largest batch seen (rows) and the batches. */
typedef struct batches {
    long long last_rows, max_rows, n;
} batches;

static void count_batch(const ig_run_progress *p, void *ud)
{
    batches *b = ud;

    if (p->rows - b->last_rows > b->max_rows)
        b->max_rows = p->rows - b->last_rows;
    b->last_rows = p->rows;
    b->n++;
}

/* Import csv through the pipeline file, skipping its first skip rows, in
 * batches of batch_size (b, when not NULL, counts them); returns the
 * results (owned). */
static ig_results *import_batches(const char *pipeline_file, const char *csv,
                                  long long skip, long batch_size,
                                  batches *b)
{
    ig_pipeline_opts po;
    ig_pipeline *p;
    ig_pool_opts pool_opts;
    ig_pool *pool;
    ig_results *res;
    ig_run_opts o;
    ig_run_status st;
    ig_err err;
    const char *names[1];
    ig_results_opts ro = {1, names, 100};

    memset(&po, 0, sizeof(po));
    p = ig_pipeline_load(pipeline_file, &po, &err);
    if (p == NULL)
        fail_msg("%s", err.msg);
    names[0] = ig_pipeline_target(p, 0)->name;
    res = ig_results_new(&ro);
    memset(&pool_opts, 0, sizeof(pool_opts));
    pool_opts.conninfo = pool_url;
    pool_opts.size = 2;
    pool = ig_pool_new(&pool_opts, &err);
    assert_non_null(pool);
    memset(&o, 0, sizeof(o));
    o.pipeline = p;
    o.pool = pool;
    o.buf = csv;
    o.buf_len = strlen(csv);
    o.input_name = "test";
    o.batch_size = batch_size;
    o.max_rows = 100000;
    o.seekable = 1;
    o.skip_rows = skip;
    o.progress = b ? count_batch : NULL;
    o.progress_ud = b;
    o.no_insert_first = 1; /* batches of batch_size, not twice that */
    if (ig_run(&o, res, &st, NULL, &err) != IG_OK)
        fail_msg("run: %s", err.msg);
    assert_int_equal(st, IG_RUN_DONE);
    ig_pool_free(pool);
    ig_pipeline_free(p);
    return res;
}

static ig_results *import(const char *pipeline_file, const char *csv,
                          long long skip)
{
    return import_batches(pipeline_file, csv, skip, 100, NULL);
}

static void test_resume_duplicates_error_sees_skipped_keys(void **state)
{
    /* The first attempt committed rows 1-2; row 3 repeats row 1's key. */
    const char *csv = "size,sort\nS,1\nM,2\nS,3\nL,4\n";
    ig_results *res;
    const ig_failed_row *f;
    (void)state;

    PQclear(PQexec(db.conn, "TRUNCATE size_master CASCADE"));
    res = import(TEST_DATA_DIR "/run/sizes_error.yaml", csv, 2);
    assert_int_equal(ig_results_counts(res).failed, 1);
    f = ig_results_failed_row(res, 0);
    assert_int_equal(f->row, 3);
    assert_string_equal(f->reasons[0].code, "DUPLICATE_KEY");
    assert_non_null(strstr(f->reasons[0].message, "row 1"));
    assert_int_equal(ig_results_counts(res).inserted, 1); /* only L */
    ig_results_free(res);
}

static void test_resume_duplicates_first_skips_repeat_of_skipped(void **st)
{
    const char *csv = "size,sort\nS,1\nM,2\nS,3\nL,4\n";
    ig_results *res;
    PGresult *r;
    (void)st;

    r = PQexec(db.conn, "TRUNCATE size_master CASCADE");
    PQclear(r);
    r = PQexec(db.conn, "INSERT INTO size_master (size_name, sort_order) "
                        "VALUES ('S', 1), ('M', 2)"); /* attempt 1 */
    PQclear(r);
    res = import(TEST_DATA_DIR "/run/sizes_first.yaml", csv, 2);
    assert_int_equal(ig_results_counts(res).failed, 0);
    assert_int_equal(ig_results_counts(res).inserted, 1);
    ig_results_free(res);
    r = PQexec(db.conn, "SELECT sort_order FROM size_master "
                        "WHERE size_name = 'S'");
    assert_string_equal(PQgetvalue(r, 0, 0), "1"); /* the first kept */
    PQclear(r);
}

/* 2000 rows of 302 columns (two of them mapped), 40 KB each in the batch
 * arena: a batch ends at 8 MiB, about 200 rows, not at 5000 rows (80 MB
 * per batch, three batches in memory at once). */
static void test_wide_rows_end_batches_early(void **state)
{
    const long long rows = 2000;
    size_t cap = 64 << 20, len = 0;
    char *csv = malloc(cap);
    batches b = {0, 0, 0};
    ig_results *res;
    PGresult *r;
    (void)state;

    assert_non_null(csv);
    len += (size_t)snprintf(csv + len, cap - len, "name,code");
    for (int c = 0; c < 300; c++)
        len += (size_t)snprintf(csv + len, cap - len, ",x%d", c);
    for (long long i = 0; i < rows; i++) {
        len += (size_t)snprintf(csv + len, cap - len, "\nW%06lld,#%06llX", i,
                                i);
        for (int c = 0; c < 300; c++) {
            memset(csv + len, 'v', 100);
            csv[len] = ',';
            len += 100;
        }
    }
    csv[len++] = '\n';
    csv[len] = '\0';
    PQclear(PQexec(db.conn, "TRUNCATE color_master CASCADE"));
    res = import_batches(TEST_DATA_DIR "/run/colors.yaml", csv, 0, 5000, &b);
    assert_int_equal(ig_results_counts(res).inserted, rows);
    assert_int_equal(b.last_rows, rows);
    r = PQexec(db.conn, "SELECT count(*) FROM color_master");
    assert_string_equal(PQgetvalue(r, 0, 0), "2000");
    PQclear(r);
    /* The batches themselves, from the rows: each batch writes its rows
     * in one (sub)transaction, so rows sharing an xmin are one batch.
     * (Progress reports cannot tell: one may cover two batches, when the
     * reader reuses a buffer after both were committed.) */
    r = PQexec(db.conn, "SELECT count(*), max(n) FROM (SELECT count(*) AS n "
                        "FROM color_master GROUP BY xmin::text) x");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(atoi(PQgetvalue(r, 0, 0)) >= 7); /* about 10 batches */
    assert_true(atoi(PQgetvalue(r, 0, 1)) <= 300); /* about 200 rows */
    PQclear(r);
    ig_results_free(res);
    free(csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_duplicates_error_sees_skipped_keys),
        cmocka_unit_test(test_resume_duplicates_first_skips_repeat_of_skipped),
        cmocka_unit_test(test_wide_rows_end_batches_early),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
