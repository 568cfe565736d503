/*
 * ingot.h - libingot, the embedding API.
 *
 * This is the only header installed with libingot; every symbol it declares
 * is exported (INGOT_API) and everything else in the library is hidden.
 * Names use the public "ingot_" prefix, as Lua uses "lua_" publicly.
 *
 * Use (char err[256]; error checks left out):
 *     ingot_settings s;
 *     ingot_settings_init(&s, err, sizeof err); // defaults + environment
 *     s.database_url = "postgresql://...";
 *     ingot *in = ingot_open(&s, err, sizeof err);
 *     ingot_result *r = ingot_run_path(in, "items", "items.csv", NULL);
 *     printf("%lld inserted\n", ingot_result_count(r, INGOT_INSERTED));
 *     ingot_result_free(r);
 *     ingot_close(in);
 *
 * Ownership: handles returned by ingot_open / ingot_run_* are owned by the
 * caller and freed with ingot_close / ingot_result_free. Strings returned
 * by ingot_result_* are borrowed from the result. Settings strings are
 * copied by ingot_open. An ingot handle may run one import at a time;
 * open one handle per thread to import in parallel. A handle keeps its
 * database connections open between runs; one the server closed meanwhile
 * (a restart, a terminated backend) is replaced at the next run.
 *
 * Logging: libingot writes warnings (connection retries and the like) to
 * stderr, process-wide, at the level INGOT_LOG_LEVEL gives
 * (debug/info/warn/error/off); ingot_settings_init applies it.
 *
 * Building against an installed libingot: `pkg-config --cflags --libs
 * ingot` (README.md, "Embedding").
 */
#ifndef INGOT_H
#define INGOT_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define INGOT_API __attribute__((visibility("default")))
#else
#define INGOT_API
#endif

typedef struct ingot ingot;               /* opaque */
typedef struct ingot_result ingot_result; /* opaque */

typedef struct ingot_settings {
    const char *database_url; /* NULL = libpq defaults */
    const char *pipeline_dir; /* where pipeline names are looked up;
                                 NULL = ./pipelines if that directory
                                 exists, else the installed
                                 share/ingot/pipelines, else (a build
                                 that was never installed) the source
                                 tree's pipelines/. Not "". */
    long batch_size;          /* IMPORT_BATCH_SIZE */
    long long max_rows;       /* IMPORT_MAX_ROWS */
    long timeout_seconds;     /* IMPORT_TIMEOUT_SECONDS; 0 = none */
    long statement_timeout_ms; /* IMPORT_STATEMENT_TIMEOUT_MS; 0 = none */
    int pool_size;            /* IMPORT_POOL_SIZE; at least writers + 1
                                 are opened anyway; 0 = that many */
    int writers;              /* IMPORT_WRITERS: batches of a single-table
                                 pipeline in flight at once, each on its
                                 own connection, when their keys are
                                 disjoint (0 = 1) */
    int dry_run;              /* roll everything back at the end */
    const char *reject_file;  /* write failed rows here, created at the
                                 first one (a run whose input it is, or
                                 that could not create it, is refused
                                 before reading); NULL = none */
    /* Called after each committed batch, on the thread that called
     * ingot_run_* (may be NULL). total_rows is -1 unless counted (a file
     * or buffer over max_rows lines is counted before anything is
     * written); bytes_total is 0 when the input's size is unknown (a
     * pipe, a FILE not at its start). */
    void (*progress)(long long rows, long long total_rows, long long bytes,
                     long long bytes_total, double elapsed, void *ud);
    void *progress_ud;
    int insert_first;         /* IMPORT_INSERT_FIRST: 1 = while batches
                                 only insert, COPY the next one straight
                                 into the table (see docs/performance.md) */
    int merge;                /* IMPORT_MERGE: 1 = apply a whole batch of
                                 a one-table pipeline as one MERGE where
                                 it gives what the upsert gives (see
                                 docs/performance.md); 0 = always upsert */
} ingot_settings;

/* Outcome of an import. */
enum {
    INGOT_DONE = 0,      /* every row processed (see the failed count) */
    INGOT_TIMED_OUT = 1, /* stopped at a batch boundary by the timeout, or
                            while waiting for a database it could not
                            reach */
    INGOT_CANCELED = 2,
    INGOT_LIMIT = 3,     /* IMPORT_MAX_ROWS exceeded */
    INGOT_FAILED = 4     /* could not run: see ingot_result_error */
};

/* Counters. */
enum {
    INGOT_READ = 0,
    INGOT_INSERTED,
    INGOT_UPDATED,
    INGOT_UNCHANGED,
    INGOT_SKIPPED,
    INGOT_FAILED_ROWS
};

/* The library version, "MAJOR.MINOR.PATCH". Static string; cannot fail. */
INGOT_API const char *ingot_version(void);

/* Fill *s with the defaults overridden by ./.env and the environment
 * (DATABASE_URL, IMPORT_BATCH_SIZE, ...). Returns 0, or -1 with a message
 * in errbuf when a setting it fills (or INGOT_LOG_LEVEL) is invalid; the
 * settings of the worker and its HTTP API are neither read nor checked.
 * The strings it sets are borrowed: valid until the next call (like
 * getenv's; call it from one thread). */
INGOT_API int ingot_settings_init(ingot_settings *s, char *errbuf,
                                  size_t errlen);

/* Open a runner (connections are made lazily). NULL with errbuf filled
 * on bad settings: a number outside its setting's range (the README's
 * settings table) is refused, naming the field and the setting. */
INGOT_API ingot *ingot_open(const ingot_settings *s, char *errbuf,
                            size_t errlen);
INGOT_API void ingot_close(ingot *in);

/* Run pipeline (a name in the pipeline dir, or a path to a .yaml file) on
 * a file path ("-" = stdin), an open FILE (read to EOF; name is for
 * messages) or a memory buffer. Never NULL (aborts on OOM): check
 * ingot_result_status(). cancel, when non-NULL, stops the import at the
 * next batch boundary once it becomes nonzero. A database that cannot be
 * reached at the start is retried with backoff for up to 30 s, less once
 * cancel is set or timeout_seconds have passed (the status is then
 * CANCELED or TIMED_OUT, and the error says what the database answered);
 * lost during the import, a batch is retried up to 8 times, each with
 * that budget, until cancel is set. A NULL runner, pipeline, path, FILE
 * or buffer (with len > 0) gives a FAILED result saying which; the
 * ingot_result_* accessors take a NULL result as a failed, empty one. */
INGOT_API ingot_result *ingot_run_path(ingot *in, const char *pipeline,
                                       const char *path,
                                       volatile int *cancel);
INGOT_API ingot_result *ingot_run_file(ingot *in, const char *pipeline,
                                       FILE *f, const char *name,
                                       volatile int *cancel);
INGOT_API ingot_result *ingot_run_buffer(ingot *in, const char *pipeline,
                                         const char *buf, size_t len,
                                         const char *name,
                                         volatile int *cancel);

INGOT_API void ingot_result_free(ingot_result *r);
INGOT_API int ingot_result_status(const ingot_result *r);
INGOT_API const char *ingot_result_status_name(const ingot_result *r);
/* Message for a non-DONE status; "" otherwise. Borrowed. */
INGOT_API const char *ingot_result_error(const ingot_result *r);
/* The CLI's exit code for this result: 0 all rows succeeded, 1 some
 * failed, 2 none succeeded or the import failed / was refused. */
INGOT_API int ingot_result_exit_code(const ingot_result *r);
INGOT_API long long ingot_result_count(const ingot_result *r, int which);
INGOT_API double ingot_result_seconds(const ingot_result *r);
/* Percent of the rows read that did not fail, rounded to `decimals`
 * places (0..6) but never shown as 100 while a row failed nor as 0 while
 * one succeeded; 100 when no row was read. */
INGOT_API double ingot_result_success_rate(const ingot_result *r,
                                           int decimals);
INGOT_API const char *ingot_result_pipeline(const ingot_result *r);

/* Per target counts: INGOT_INSERTED, INGOT_UPDATED, INGOT_UNCHANGED and
 * INGOT_SKIPPED (rows the target left out: another row had the key, or
 * the row does not reach it). INGOT_READ and INGOT_FAILED_ROWS are per
 * import only (0 here): a failed row is failed for the whole import. */
INGOT_API size_t ingot_result_ntargets(const ingot_result *r);
INGOT_API const char *ingot_result_target(const ingot_result *r, size_t t);
INGOT_API long long ingot_result_target_count(const ingot_result *r,
                                              size_t t, int which);

/* Failed rows kept in memory (the first 1000; the reject file has all).
 * Each has one or more reasons. */
INGOT_API size_t ingot_result_nfailed(const ingot_result *r);
INGOT_API long long ingot_result_failed_row(const ingot_result *r, size_t i);
INGOT_API long long ingot_result_failed_line(const ingot_result *r,
                                             size_t i);
INGOT_API size_t ingot_result_failed_nreasons(const ingot_result *r,
                                              size_t i);
/* Reason j of failed row i: target, column, code, constraint, message
 * (any but code and message may be NULL). Out of range: NULL, and the
 * out-parameters are set to NULL. */
INGOT_API const char *ingot_result_failed_reason(const ingot_result *r,
                                                 size_t i, size_t j,
                                                 const char **target,
                                                 const char **column,
                                                 const char **code,
                                                 const char **constraint);
/* Original fields of failed row i: its first 1024 fields at most, and no
 * more than 64 KiB of them (the reject file has every field), as UTF-8
 * text: a NUL byte or an invalid one is U+FFFD, an over-long field (see
 * source.max_field_bytes) "". */
INGOT_API size_t ingot_result_failed_nvalues(const ingot_result *r,
                                             size_t i);
INGOT_API const char *ingot_result_failed_value(const ingot_result *r,
                                                size_t i, size_t k);

#ifdef __cplusplus
}
#endif

#endif /* INGOT_H */
