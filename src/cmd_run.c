/*
 * cmd_run.c - "ingot run PIPELINE FILE|-": one import from the command
 * line, built on the public embedding API (ingot.h) so the program and
 * embedders share one code path.
 *
 * Output: a live progress line on stderr when stderr is a terminal; the
 * summary (or --json) on stdout; failed rows on stdout (first 10) and in
 * the reject file. Exit codes: 0 every row succeeded, 1 some rows failed,
 * 2 none succeeded or the import failed or was refused.
 */
#include "cmd_run.h"

#include "ingot.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const ig_cli_opt run_opts[] = {
    {"dry-run", NULL, "do everything in a transaction that is rolled back; "
                      "report what would change"},
    {"reject-file", "PATH", "write failed rows (original columns + "
                            "ingot_row, ingot_line, ingot_error) to PATH "
                            "when a row fails [default: FILE.rejects.csv; "
                            "none for stdin or a pipe]"},
    {"no-reject-file", NULL, "do not write a reject file"},
    {"json", NULL, "print a machine-readable summary on stdout"},
    {"quiet", NULL, "print nothing but errors (failed rows: one line on "
                    "stderr)"},
    {NULL, NULL, NULL},
};

typedef struct progress_ui {
    int on;
    const char *pipeline;
    double last;
} progress_ui;

static void show_progress(long long rows, long long total, long long bytes,
                          long long bytes_total, double elapsed, void *ud)
{
    progress_ui *ui = ud;
    double pct = -1, rate = elapsed > 0 ? rows / elapsed : 0, eta = -1;

    if (!ui->on || elapsed - ui->last < 0.1)
        return;
    ui->last = elapsed;
    if (total > 0)
        pct = 100.0 * (double)rows / (double)total;
    else if (bytes_total > 0)
        pct = 100.0 * (double)bytes / (double)bytes_total;
    if (pct > 0 && pct < 100)
        eta = elapsed * (100 - pct) / pct;
    fprintf(stderr, "\r\033[K%s: ", ui->pipeline);
    if (pct >= 0)
        fprintf(stderr, "%5.1f%% ", pct);
    fprintf(stderr, "%lld rows, %.0f rows/s", rows, rate);
    if (eta >= 0)
        fprintf(stderr, ", ETA %.0fs", eta);
}

static const char *count_names[] = {"read", "inserted", "updated",
                                    "unchanged", "skipped", "failed"};

static void print_json(const ingot_result *r, const char *input,
                       const char *reject, int dry_run)
{
    json_t *o = json_object(), *counts = json_object(), *targets = json_array();
    json_t *failed = json_array();
    long long read = ingot_result_count(r, INGOT_READ);
    double secs = ingot_result_seconds(r);

    json_object_set_new(o, "pipeline", json_string(ingot_result_pipeline(r)));
    json_object_set_new(o, "input", json_string(input));
    json_object_set_new(o, "status", json_string(ingot_result_status_name(r)));
    if (ingot_result_status(r) != INGOT_DONE)
        json_object_set_new(o, "error", json_string(ingot_result_error(r)));
    json_object_set_new(o, "dry_run", json_boolean(dry_run));
    json_object_set_new(o, "exit_code",
                        json_integer(ingot_result_exit_code(r)));
    for (int i = 0; i <= INGOT_FAILED_ROWS; i++)
        json_object_set_new(counts, count_names[i],
                            json_integer(ingot_result_count(r, i)));
    json_object_set_new(o, "counts", counts);
    json_object_set_new(
        o, "success_rate",
        ingot_result_status(r) != INGOT_DONE && read == 0
            ? json_null()
            : json_real(ingot_result_success_rate(r, 2)));
    json_object_set_new(o, "duration_s", json_real(secs));
    json_object_set_new(o, "rows_per_s",
                        json_real(secs > 0 ? (double)read / secs : 0));
    for (size_t t = 0; t < ingot_result_ntargets(r); t++) {
        json_t *tj = json_object();
        json_object_set_new(tj, "name", json_string(ingot_result_target(r, t)));
        for (int i = INGOT_INSERTED; i <= INGOT_SKIPPED; i++)
            json_object_set_new(tj, count_names[i],
                                json_integer(ingot_result_target_count(r, t, i)));
        json_array_append_new(targets, tj);
    }
    json_object_set_new(o, "targets", targets);
    for (size_t i = 0; i < ingot_result_nfailed(r); i++) {
        json_t *fj = json_object(), *reasons = json_array(), *vals = json_array();
        json_object_set_new(fj, "row", json_integer(ingot_result_failed_row(r, i)));
        json_object_set_new(fj, "line", json_integer(ingot_result_failed_line(r, i)));
        for (size_t j = 0; j < ingot_result_failed_nreasons(r, i); j++) {
            const char *tg = NULL, *col = NULL, *code = NULL, *cons = NULL;
            const char *msg = ingot_result_failed_reason(r, i, j, &tg, &col,
                                                         &code, &cons);
            json_t *rj = json_object();
            json_object_set_new(rj, "target", tg ? json_string(tg) : json_null());
            json_object_set_new(rj, "column", col ? json_string(col) : json_null());
            json_object_set_new(rj, "code", json_string(code ? code : ""));
            json_object_set_new(rj, "constraint",
                                cons ? json_string(cons) : json_null());
            json_object_set_new(rj, "message", json_string(msg ? msg : ""));
            json_array_append_new(reasons, rj);
        }
        for (size_t k = 0; k < ingot_result_failed_nvalues(r, i); k++) {
            const char *v = ingot_result_failed_value(r, i, k);
            json_array_append_new(vals, v ? json_string(v) : json_null());
        }
        json_object_set_new(fj, "reasons", reasons);
        json_object_set_new(fj, "values", vals);
        json_array_append_new(failed, fj);
    }
    json_object_set_new(o, "failed_rows", failed);
    /* failed_rows holds the first 1000; the reject file has them all. */
    json_object_set_new(o, "failed_rows_truncated",
                        json_boolean(ingot_result_nfailed(r) <
                                     (size_t)ingot_result_count(
                                         r, INGOT_FAILED_ROWS)));
    json_object_set_new(o, "reject_file", reject ? json_string(reject) : json_null());
    json_dumpf(o, stdout, IG_CLI_JSON_FLAGS);
    fputc('\n', stdout);
    json_decref(o);
}

/* Ctrl-C (SIGINT) or SIGTERM during an import: stop at the next batch
 * boundary, let the batches in flight commit, then print the summary and
 * keep the reject file, as a timeout does. SA_RESETHAND: a second signal
 * ends the process at once. */
static volatile int stop_requested;

static void on_stop_signal(int sig)
{
    static const char msg[] = "\ningot run: stopping after the batches in "
                              "flight (again to quit at once)\n";
    ssize_t n;

    (void)sig;
    stop_requested = 1;
    n = write(STDERR_FILENO, msg, sizeof(msg) - 1); /* async-signal-safe */
    (void)n; /* a handler can do nothing about a failed write */
}

static void catch_stop_signals(struct sigaction *old_int,
                               struct sigaction *old_term)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND | SA_RESTART; /* reads go on */
    sigemptyset(&sa.sa_mask);
    /* A signal ignored by whoever started us (nohup, a background job of
     * a script) stays ignored. */
    sigaction(SIGINT, &sa, old_int);
    if (old_int->sa_handler == SIG_IGN)
        sigaction(SIGINT, old_int, NULL);
    sigaction(SIGTERM, &sa, old_term);
    if (old_term->sa_handler == SIG_IGN)
        sigaction(SIGTERM, old_term, NULL);
}

/* unsaved: why failed rows have no reject file (the input is stdin, or
 * another file that is not regular, and none was asked for or refused),
 * or NULL. */
static void print_summary(const ingot_result *r, const char *reject,
                          const char *unsaved, int dry_run)
{
    long long read = ingot_result_count(r, INGOT_READ);
    long long failed = ingot_result_count(r, INGOT_FAILED_ROWS);
    double secs = ingot_result_seconds(r);
    size_t nshow = ingot_result_nfailed(r);
    char rate[80];

    /* A run that stopped early did not read every row: a success rate
     * of the rows it read would read as the file's. */
    if (ingot_result_status(r) != INGOT_DONE)
        snprintf(rate, sizeof(rate), "stopped early (%s): the rows after "
                 "these were not read", ingot_result_status_name(r));
    else
        snprintf(rate, sizeof(rate), "%.1f%% succeeded",
                 ingot_result_success_rate(r, 1));
    printf("%s%s: %lld rows in %.2f s (%.0f rows/s): %lld inserted, %lld "
           "updated, %lld unchanged, %lld skipped, %lld failed (%s)\n",
           dry_run ? "[dry run, rolled back] " : "", ingot_result_pipeline(r),
           read, secs, secs > 0 ? (double)read / secs : 0.0,
           ingot_result_count(r, INGOT_INSERTED),
           ingot_result_count(r, INGOT_UPDATED),
           ingot_result_count(r, INGOT_UNCHANGED),
           ingot_result_count(r, INGOT_SKIPPED), failed, rate);
    if (ingot_result_ntargets(r) > 1)
        for (size_t t = 0; t < ingot_result_ntargets(r); t++)
            printf("  %-20s %lld inserted, %lld updated, %lld unchanged, "
                   "%lld skipped\n",
                   ingot_result_target(r, t),
                   ingot_result_target_count(r, t, INGOT_INSERTED),
                   ingot_result_target_count(r, t, INGOT_UPDATED),
                   ingot_result_target_count(r, t, INGOT_UNCHANGED),
                   ingot_result_target_count(r, t, INGOT_SKIPPED));
    if (nshow > 10)
        nshow = 10;
    for (size_t i = 0; i < nshow; i++) {
        for (size_t j = 0; j < ingot_result_failed_nreasons(r, i); j++) {
            const char *tg = NULL, *col = NULL, *code = NULL;
            const char *msg = ingot_result_failed_reason(r, i, j, &tg, &col,
                                                         &code, NULL);
            printf("  row %lld (line %lld): %s%s%s%s[%s] %s\n",
                   ingot_result_failed_row(r, i),
                   ingot_result_failed_line(r, i), tg ? tg : "",
                   tg && col ? "." : "", col ? col : "",
                   tg || col ? " " : "", code, msg);
        }
    }
    if (failed > (long long)nshow)
        printf("  ... and %lld more failed rows\n", failed - (long long)nshow);
    if (reject && failed > 0)
        printf("failed rows written to %s\n", reject);
    else if (unsaved && failed > 0)
        printf("failed rows not saved (%s): pass --reject-file PATH, or "
               "--json for them with their values\n", unsaved);
}

static int is_regular(const char *path)
{
    struct stat st;
    return strcmp(path, "-") != 0 && stat(path, &st) == 0 &&
           S_ISREG(st.st_mode);
}

static int run_run(ig_cli *cli)
{
    const ig_conf *conf = ig_cli_conf(cli);
    const char *pipeline = ig_cli_arg(cli, 0);
    const char *input = ig_cli_arg(cli, 1);
    int json = ig_cli_opt_value(cli, "json") != NULL;
    int quiet = ig_cli_opt_value(cli, "quiet") != NULL;
    int dry = ig_cli_opt_value(cli, "dry-run") != NULL;
    const char *reject = ig_cli_opt_value(cli, "reject-file");
    char *default_reject = NULL;
    ingot_settings s;
    progress_ui ui;
    ingot *in;
    ingot_result *r;
    struct sigaction old_int, old_term;
    char errbuf[1024];
    int code, regular = is_regular(input);

    if (reject != NULL && ig_cli_opt_value(cli, "no-reject-file") != NULL)
        return ig_cli_usage_error(cli, "--reject-file and --no-reject-file "
                                 "contradict each other");
    /* The default reject file sits next to a regular input file; stdin, a
     * pipe or a device (/dev/fd/N of a process substitution) has none. */
    if (reject == NULL && ig_cli_opt_value(cli, "no-reject-file") == NULL &&
        regular) {
        default_reject = malloc(strlen(input) + 16);
        if (default_reject == NULL)
            return ig_cli_fail(cli, "out of memory");
        sprintf(default_reject, "%s.rejects.csv", input);
        reject = default_reject;
    }
    memset(&s, 0, sizeof(s));
    s.database_url = conf->database_url;
    s.pipeline_dir = conf->pipeline_dir;
    s.batch_size = conf->batch_size;
    s.max_rows = conf->max_rows;
    s.timeout_seconds = conf->timeout_seconds;
    s.statement_timeout_ms = conf->statement_timeout_ms;
    s.pool_size = (int)conf->pool_size;
    s.writers = (int)conf->writers;
    s.insert_first = (int)conf->insert_first;
    s.merge = (int)conf->merge;
    s.dry_run = dry;
    s.reject_file = reject;
    ui.on = !quiet && !json && isatty(STDERR_FILENO);
    ui.pipeline = pipeline;
    ui.last = -1;
    s.progress = show_progress;
    s.progress_ud = &ui;

    in = ingot_open(&s, errbuf, sizeof(errbuf));
    if (in == NULL) {
        free(default_reject);
        return ig_cli_fail(cli, "%s", errbuf);
    }
    catch_stop_signals(&old_int, &old_term);
    r = ingot_run_path(in, pipeline, input, &stop_requested);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ui.on)
        fprintf(stderr, "\r\033[K");
    /* The reject file is created at the first failed row. A default one
     * left by an earlier run goes once a complete import of the same file
     * had none; a run that failed, was refused or stopped, or a dry run,
     * leaves it alone. */
    if (ingot_result_count(r, INGOT_FAILED_ROWS) == 0) {
        if (default_reject && !dry &&
            ingot_result_status(r) == INGOT_DONE)
            unlink(default_reject);
        reject = NULL;
    }
    if (quiet && !json && ingot_result_count(r, INGOT_FAILED_ROWS) > 0) {
        /* --quiet prints errors: failed rows are, in one line. */
        long long nf = ingot_result_count(r, INGOT_FAILED_ROWS);
        if (reject)
            fprintf(stderr, "ingot run: %lld row%s failed, written to %s\n",
                    nf, nf == 1 ? "" : "s", reject);
        else
            fprintf(stderr, "ingot run: %lld row%s failed%s\n", nf,
                    nf == 1 ? "" : "s",
                    ig_cli_opt_value(cli, "no-reject-file")
                        ? ""
                        : " (not saved: pass --reject-file PATH)");
    }
    if (json)
        print_json(r, input, reject, dry);
    else if (!quiet && ingot_result_status(r) != INGOT_FAILED &&
             !(ingot_result_status(r) != INGOT_DONE &&
               ingot_result_count(r, INGOT_READ) == 0)) /* refused */
        print_summary(r, reject,
                      regular || reject != NULL ||
                              ig_cli_opt_value(cli, "no-reject-file") != NULL
                          ? NULL
                      : strcmp(input, "-") == 0
                          ? "the input is stdin"
                          : "the input is not a regular file",
                      dry);
    if (ingot_result_status(r) == INGOT_CANCELED && stop_requested) {
        /* no summary was printed when no row was read */
        const char *kept = ingot_result_count(r, INGOT_READ) == 0
                               ? "no row was written"
                           : dry ? "the rows counted above are rolled back "
                                   "(dry run)"
                                 : "the rows counted above are committed";

        if (strncmp(ingot_result_error(r), "canceled; ", 10) == 0)
            fprintf(stderr, "ingot run: interrupted: stopped at a batch "
                    "boundary; %s\n", kept);
        else
            fprintf(stderr, "ingot run: interrupted: %s; %s\n",
                    ingot_result_error(r), kept);
    } else if (ingot_result_status(r) != INGOT_DONE) {
        fprintf(stderr, "ingot run: %s: %s\n", ingot_result_status_name(r),
                ingot_result_error(r));
    }
    code = ingot_result_exit_code(r);
    ingot_result_free(r);
    ingot_close(in);
    free(default_reject);
    return code;
}

const ig_cli_cmd ig_cmd_run = {
    .name = "run",
    .summary = "import a CSV file (or stdin) through a pipeline",
    .usage = "run PIPELINE FILE|- [options]",
    .help =
        "Import FILE ('-' for stdin) through PIPELINE (a name in the pipeline\n"
        "directory, e.g. 'items', or a path to a .yaml file). Rows are\n"
        "upserted in batches of IMPORT_BATCH_SIZE, each in its own short\n"
        "transaction, taking row locks only. Rows that fail are reported with\n"
        "their line, column and reason and written to the reject file; the\n"
        "others are committed. Ctrl-C (or SIGTERM) stops at the next batch\n"
        "boundary: the batches in flight commit, the summary and the reject\n"
        "file say what happened to the rows read; a second Ctrl-C quits at\n"
        "once.\n\n"
        "Exit codes: 0 every row succeeded, 1 some rows failed, 2 no row\n"
        "succeeded, or the import failed or was refused (bad pipeline,\n"
        "IMPORT_MAX_ROWS exceeded, timeout, interrupted, database\n"
        "unreachable).",
    .opts = run_opts,
    .min_args = 2,
    .max_args = 2,
    .run = run_run,
};
