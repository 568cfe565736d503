/*
 * cmd_jobs.c - the job-queue verbs: "ingot submit", "progress", "results",
 * "cancel", "jobs" and "prune".
 *
 * They talk to PostgreSQL directly (src/jobq.h), not to a worker's HTTP
 * API, so they work with no worker running; `progress` also reads the
 * Redis progress store when REDIS_URL is set. Every verb prints a short
 * human summary, or with --json the same document the HTTP API returns
 * (src/report.h). Exit codes: 0 done, 2 failure or refusal (bad usage,
 * unknown job, database down, cancel of a finished job).
 */
#include "cmd_jobs.h"

#include "db.h"
#include "jobq.h"
#include "pipeline.h"
#include "progress.h"
#include "report.h"
#include "runner.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_json(json_t *o)
{
    json_dumpf(o, stdout, IG_CLI_JSON_FLAGS);
    fputc('\n', stdout);
}

/* A command's failure: on stderr, and with --json also as the API's error
 * document on stdout ({"error": {"code", "message"}}), so that a script
 * reading stdout gets one either way. */
static int job_fail(const ig_cli *cli, const ig_err *err)
{
    if (ig_cli_opt_value(cli, "json") != NULL) {
        const char *code = err->code == IG_NOTFOUND    ? "job_not_found"
                           : err->code == IG_DB_RETRY ? "database_unavailable"
                           : err->code == IG_DB       ? "database_error"
                                                      : "failed";
        json_t *o = json_pack("{s:{s:s,s:o}}", "error", "code", code,
                              "message",
                              ig_report_text(err->msg, strlen(err->msg)));
        print_json(o);
        json_decref(o);
    }
    return ig_cli_fail(cli, "%s", err->msg);
}

/* Parse a positive number argument or option; -1 when bad. */
static long long parse_pos(const char *s, long long max)
{
    char *end = NULL;
    long long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > max)
        return -1;
    return v;
}

static int connect_db(ig_cli *cli, PGconn **conn)
{
    ig_err err;
    if (ig_db_connect(ig_cli_conf(cli)->database_url, conn, &err) != IG_OK)
        return job_fail(cli, &err);
    return IG_EXIT_OK;
}

static int job_id_arg(ig_cli *cli, long long *id)
{
    *id = parse_pos(ig_cli_arg(cli, 0), 9223372036854775807LL);
    if (*id < 1)
        return ig_cli_usage_error(cli, "'%s' is not a job id",
                                  ig_cli_arg(cli, 0));
    return IG_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* submit                                                              */

/* Read a whole file ("-" = stdin) into an owned buffer. */
static char *slurp(const char *path, size_t *len, ig_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (f == NULL) {
        ig_err_set(err, IG_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            buf = ig_xrealloc(buf, cap + 1);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        ig_err_set(err, IG_IO, "%s: read error", path);
        free(buf);
        buf = NULL;
    } else {
        buf[n] = '\0';
        *len = n;
    }
    if (f != stdin)
        fclose(f);
    return buf;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int run_submit(ig_cli *cli)
{
    const ig_conf *conf = ig_cli_conf(cli);
    const char *pname = ig_cli_arg(cli, 0), *path = ig_cli_arg(cli, 1);
    const char *prio = ig_cli_opt_value(cli, "priority");
    int json = ig_cli_opt_value(cli, "json") != NULL;
    ig_pipeline_opts po;
    ig_pipeline *p = NULL;
    ig_jobq_enqueue_opts eo;
    ig_run_opts ro;
    PGconn *conn = NULL;
    char *buf = NULL;
    size_t len = 0;
    long long rows = 0, id = 0, pr = 0;
    ig_err err;
    int rc = IG_EXIT_OK;

    ig_err_clear(&err);
    if (prio != NULL) {
        char *end = NULL;
        errno = 0;
        pr = strtoll(prio, &end, 10);
        if (*prio == '\0' || *end != '\0' || errno != 0 || pr < -32768 ||
            pr > 32767)
            return ig_cli_usage_error(cli, "--priority needs a whole number "
                                           "from -32768 to 32767");
    }
    memset(&po, 0, sizeof(po));
    po.check_hooks = 1;
    p = ig_pipeline_load_named(ig_cli_data_dir(conf->pipeline_dir, "pipelines"),
                               pname, &po, &err);
    if (p == NULL) {
        rc = job_fail(cli, &err);
        goto out;
    }
    buf = slurp(path, &len, &err);
    if (buf == NULL) {
        rc = job_fail(cli, &err);
        goto out;
    }
    /* Refuse what no worker could import, before it is queued. */
    memset(&ro, 0, sizeof(ro));
    ro.pipeline = p;
    ro.buf = buf;
    ro.buf_len = len;
    ro.input_name = path;
    if (ig_run_preflight(&ro, &rows, &err) != IG_OK) {
        rc = job_fail(cli, &err);
        goto out;
    }
    if (rows > conf->max_rows) {
        rc = ig_cli_fail(cli,
                         "%s has %lld data rows, more than "
                         "IMPORT_MAX_ROWS=%ld",
                         path, rows, conf->max_rows);
        goto out;
    }
    if (rows == 0) {
        rc = ig_cli_fail(cli, "%s has a header but no data rows: nothing "
                         "to queue", path);
        goto out;
    }
    rc = connect_db(cli, &conn);
    if (rc != IG_EXIT_OK)
        goto out;
    memset(&eo, 0, sizeof(eo));
    eo.pipeline = pname;
    eo.source = buf;
    eo.source_len = len;
    eo.source_name = base_name(path);
    eo.format = "csv";
    eo.total_rows = rows;
    eo.priority = (int)pr;
    if (ig_jobq_enqueue(conn, &eo, &id, &err) != IG_OK) {
        rc = job_fail(cli, &err);
        goto out;
    }
    if (json) {
        json_t *o = json_pack("{s:I,s:s,s:s,s:I}", "job_id", (json_int_t)id,
                              "state", "queued", "pipeline", pname,
                              "total_rows", (json_int_t)rows);
        print_json(o);
        json_decref(o);
    } else {
        printf("%lld\n", id);
        fprintf(stderr, "job %lld queued: %s, %lld rows\n", id, pname, rows);
    }
out:
    PQfinish(conn);
    free(buf);
    ig_pipeline_free(p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* progress                                                            */

static int run_progress(ig_cli *cli)
{
    const ig_conf *conf = ig_cli_conf(cli);
    int json = ig_cli_opt_value(cli, "json") != NULL;
    PGconn *conn = NULL;
    ig_jobq_job *job = NULL;
    ig_progress *store = NULL;
    ig_progress_opts popts;
    ig_progress_info info;
    json_t *o = NULL;
    long long id;
    ig_err err;
    int rc, have;

    rc = job_id_arg(cli, &id);
    if (rc != IG_EXIT_OK)
        return rc;
    rc = connect_db(cli, &conn);
    if (rc != IG_EXIT_OK)
        goto out;
    if (ig_jobq_get(conn, id, &job, &err) != IG_OK) {
        rc = job_fail(cli, &err);
        goto out;
    }
    memset(&popts, 0, sizeof(popts));
    popts.redis_url = conf->redis_url;
    popts.expiry_seconds = conf->progress_expiry;
    store = ig_progress_new(&popts, &err);
    have = store != NULL && ig_progress_get(store, id, &info, &err) == IG_OK;
    o = ig_report_progress(
        job, have ? &info : NULL,
        store ? ig_progress_backend_name(ig_progress_active(store))
              : "database");
    if (json) {
        print_json(o);
    } else {
        double pct = json_is_real(json_object_get(o, "percent"))
                         ? json_real_value(json_object_get(o, "percent"))
                         : -1;
        double eta = json_is_real(json_object_get(o, "eta_seconds"))
                         ? json_real_value(json_object_get(o, "eta_seconds"))
                         : -1;
        printf("job %lld (%s): %s%s", id, job->pipeline,
               ig_jobq_state_name(job->state),
               json_is_true(json_object_get(o, "stalled"))
                   ? " (stalled: its worker stopped heartbeating; it is "
                     "rescued once another worker notices)"
                   : "");
        if (pct >= 0)
            printf(" %.1f%%", pct);
        printf(", %lld/%lld rows, %.0f rows/s",
               (long long)json_integer_value(json_object_get(o, "processed")),
               (long long)json_integer_value(json_object_get(o, "total")),
               json_real_value(json_object_get(o, "rows_per_sec")));
        if (eta > 0)
            printf(", ETA %.0f s", eta);
        printf("; %lld inserted, %lld updated, %lld unchanged, %lld skipped, "
               "%lld failed\n",
               (long long)json_integer_value(json_object_get(o, "inserted")),
               (long long)json_integer_value(json_object_get(o, "updated")),
               (long long)json_integer_value(json_object_get(o, "unchanged")),
               (long long)json_integer_value(json_object_get(o, "skipped")),
               (long long)json_integer_value(json_object_get(o, "failed")));
        if (job->last_error)
            printf("last error: %s\n", job->last_error);
    }
out:
    json_decref(o);
    ig_progress_free(store);
    ig_jobq_job_free(job);
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* results                                                             */

static int run_results(ig_cli *cli)
{
    int json = ig_cli_opt_value(cli, "json") != NULL;
    const char *ls = ig_cli_opt_value(cli, "limit");
    const char *os = ig_cli_opt_value(cli, "offset");
    long long limit = ls ? parse_pos(ls, 10000) : 100;
    long long offset = os ? parse_pos(os, 1000000000) : 0;
    PGconn *conn = NULL;
    ig_jobq_job *job = NULL;
    ig_jobq_rows *rows = NULL;
    json_t *o = NULL;
    long long id;
    ig_err err;
    int rc;

    rc = job_id_arg(cli, &id);
    if (rc != IG_EXIT_OK)
        return rc;
    if (limit < 1 || offset < 0)
        return ig_cli_usage_error(cli, "--limit must be 1..10000 and "
                                       "--offset >= 0");
    rc = connect_db(cli, &conn);
    if (rc != IG_EXIT_OK)
        goto out;
    if (ig_jobq_get(conn, id, &job, &err) != IG_OK ||
        ig_jobq_results(conn, id, (long)limit, (long)offset, &rows, &err) !=
            IG_OK) {
        rc = job_fail(cli, &err);
        goto out;
    }
    o = json_object();
    json_object_set_new(o, "job", ig_report_job(job));
    json_object_set_new(o, "limit", json_integer(limit));
    json_object_set_new(o, "offset", json_integer(offset));
    json_object_set_new(o, "results", ig_report_rows(rows));
    if (json) {
        print_json(o);
        goto out;
    }
    printf("job %lld (%s): %s, %lld rows: %lld inserted, %lld updated, "
           "%lld unchanged, %lld skipped, %lld failed\n",
           id, job->pipeline, ig_jobq_state_name(job->state),
           job->counts.processed, job->counts.inserted, job->counts.updated,
           job->counts.unchanged, job->counts.skipped, job->counts.failed);
    if (job->last_error)
        printf("last error: %s\n", job->last_error);
    for (size_t i = 0; i < ig_jobq_rows_count(rows); i++) {
        ig_jobq_result r;
        ig_jobq_rows_get(rows, i, &r);
        printf("  row %lld (line %lld): %s%s%s%s[%s] %s\n", r.source_row,
               r.source_line, r.target ? r.target : "",
               r.target && r.column ? "." : "", r.column ? r.column : "",
               r.target || r.column ? " " : "", r.code, r.message);
    }
out:
    json_decref(o);
    ig_jobq_rows_free(rows);
    ig_jobq_job_free(job);
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cancel                                                              */

static int run_cancel(ig_cli *cli)
{
    int json = ig_cli_opt_value(cli, "json") != NULL;
    PGconn *conn = NULL;
    ig_jobq_cancel_result res = IG_JOBQ_CANCEL_FINISHED;
    ig_jobq_state st = IG_JOBQ_QUEUED;
    const char *what = "";
    long long id;
    ig_err err;
    int rc;

    rc = job_id_arg(cli, &id);
    if (rc != IG_EXIT_OK)
        return rc;
    rc = connect_db(cli, &conn);
    if (rc != IG_EXIT_OK)
        goto out;
    if (ig_jobq_cancel(conn, id, &res, &st, &err) != IG_OK) {
        rc = job_fail(cli, &err);
        goto out;
    }
    switch (res) {
    case IG_JOBQ_CANCEL_DONE:
        what = "cancelled";
        break;
    case IG_JOBQ_CANCEL_REQUESTED:
        what = "cancel_requested";
        break;
    case IG_JOBQ_CANCEL_FINISHED:
        what = "already_finished";
        rc = IG_EXIT_FAIL;
        break;
    default:
        ig_assert(0);
    }
    if (json) {
        json_t *o = json_pack("{s:I,s:s,s:s}", "job_id", (json_int_t)id,
                              "result", what, "state", ig_jobq_state_name(st));
        print_json(o);
        json_decref(o);
    } else if (res == IG_JOBQ_CANCEL_FINISHED) {
        fprintf(stderr, "ingot cancel: job %lld already finished (%s)\n", id,
                ig_jobq_state_name(st));
    } else {
        printf("job %lld: %s\n", id,
               res == IG_JOBQ_CANCEL_DONE
                   ? "cancelled"
                   : "cancel requested; the worker stops at the next batch "
                     "boundary");
    }
out:
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* jobs                                                                */

static int run_jobs(ig_cli *cli)
{
    int json = ig_cli_opt_value(cli, "json") != NULL;
    const char *ss = ig_cli_opt_value(cli, "state");
    const char *ls = ig_cli_opt_value(cli, "limit");
    const char *os = ig_cli_opt_value(cli, "offset");
    ig_jobq_filter f;
    ig_jobq_job **jobs = NULL;
    size_t n = 0;
    PGconn *conn = NULL;
    ig_err err;
    int rc;

    memset(&f, 0, sizeof(f));
    f.pipeline = ig_cli_opt_value(cli, "pipeline");
    f.limit = ls ? (long)parse_pos(ls, 1000) : 50;
    f.offset = os ? (long)parse_pos(os, 1000000000) : 0;
    if (f.limit < 1 || f.offset < 0)
        return ig_cli_usage_error(cli, "--limit must be 1..1000 and "
                                       "--offset >= 0");
    if (ss && ig_jobq_states_parse(ss, &f.states, &err) != IG_OK)
        return ig_cli_usage_error(cli, "%s", err.msg);
    rc = connect_db(cli, &conn);
    if (rc != IG_EXIT_OK)
        return rc;
    if (ig_jobq_list(conn, &f, &jobs, &n, &err) != IG_OK) {
        rc = job_fail(cli, &err);
        goto out;
    }
    if (json) {
        json_t *o = json_object(), *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, ig_report_job(jobs[i]));
        json_object_set_new(o, "jobs", a);
        json_object_set_new(o, "limit", json_integer(f.limit));
        json_object_set_new(o, "offset", json_integer(f.offset));
        print_json(o);
        json_decref(o);
        goto out;
    }
    printf("%8s  %-20s %-20s %7s %12s %8s\n", "ID", "PIPELINE", "STATE",
           "ATTEMPT", "ROWS", "FAILED");
    for (size_t i = 0; i < n; i++) {
        char rows[48];
        const ig_jobq_job *j = jobs[i];
        if (j->total_rows >= 0)
            snprintf(rows, sizeof(rows), "%lld/%lld", j->counts.processed,
                     j->total_rows);
        else
            snprintf(rows, sizeof(rows), "%lld", j->counts.processed);
        printf("%8lld  %-20s %-20s %3d/%-3d %12s %8lld\n", j->id, j->pipeline,
               ig_jobq_state_name(j->state), j->attempt, j->max_attempts, rows,
               j->counts.failed);
    }
out:
    ig_jobq_jobs_free(jobs, n);
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* prune                                                               */

static int run_prune(ig_cli *cli)
{
    const ig_conf *conf = ig_cli_conf(cli);
    int json = ig_cli_opt_value(cli, "json") != NULL;
    const char *ds = ig_cli_opt_value(cli, "older-than-days");
    long long days = ds ? parse_pos(ds, 36500) : conf->results_retention_days;
    long long n = 0;
    PGconn *conn = NULL;
    ig_err err;
    int rc;

    if (days < 0)
        return ig_cli_usage_error(cli, "--older-than-days needs 0..36500");
    rc = connect_db(cli, &conn);
    if (rc != IG_EXIT_OK)
        return rc;
    if (ig_jobq_prune(conn, (double)days * 86400.0, &n, &err) != IG_OK) {
        rc = job_fail(cli, &err);
    } else if (json) {
        json_t *o = json_pack("{s:I,s:I}", "pruned", (json_int_t)n,
                              "older_than_days", (json_int_t)days);
        print_json(o);
        json_decref(o);
    } else {
        printf("pruned %lld finished job(s) older than %lld days\n", n, days);
    }
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Command table rows                                                  */

static const ig_cli_opt json_only[] = {
    {"json", NULL, "print JSON (the HTTP API's document) on stdout"},
    {NULL, NULL, NULL},
};

static const ig_cli_opt submit_opts[] = {
    {"priority", "N", "higher runs first (-32768..32767) [0]"},
    {"json", NULL, "print {job_id, state, ...} as JSON"},
    {NULL, NULL, NULL},
};

static const ig_cli_opt results_opts[] = {
    {"limit", "N", "row outcomes per page (1..10000) [100]"},
    {"offset", "N", "skip this many row outcomes [0]"},
    {"json", NULL, "print JSON (the HTTP API's document) on stdout"},
    {NULL, NULL, NULL},
};

static const ig_cli_opt jobs_opts[] = {
    {"state", "S[,S..]", "only jobs in these states"},
    {"pipeline", "P", "only jobs of this pipeline"},
    {"limit", "N", "at most N jobs (1..1000) [50]"},
    {"offset", "N", "skip the N newest [0]"},
    {"json", NULL, "print JSON (the HTTP API's document) on stdout"},
    {NULL, NULL, NULL},
};

static const ig_cli_opt prune_opts[] = {
    {"older-than-days", "N",
     "delete jobs finished more than N days ago [INGOT_RESULTS_RETENTION_"
     "DAYS]"},
    {"json", NULL, "print {pruned, older_than_days} as JSON"},
    {NULL, NULL, NULL},
};

const ig_cli_cmd ig_cmd_submit = {
    .name = "submit",
    .summary = "queue a CSV file for a background import; prints the job id",
    .usage = "submit PIPELINE FILE|- [--priority N] [--json]",
    .help = "Check FILE against PIPELINE (header, columns, IMPORT_MAX_ROWS)\n"
            "and store it in the import_jobs queue in PostgreSQL, where any\n"
            "'ingot worker' picks it up. Prints the job id on stdout.",
    .opts = submit_opts,
    .min_args = 2,
    .max_args = 2,
    .run = run_submit,
};

const ig_cli_cmd ig_cmd_progress = {
    .name = "progress",
    .summary = "show a job's progress (Redis store, else the job row)",
    .usage = "progress ID [--json]",
    .help = "Show job ID's state, counts, percent, rows/s and ETA. Live\n"
            "figures come from the Redis progress store when REDIS_URL is set\n"
            "and the job ran recently; otherwise from the job row's durable\n"
            "counters.",
    .opts = json_only,
    .min_args = 1,
    .max_args = 1,
    .run = run_progress,
};

const ig_cli_cmd ig_cmd_results = {
    .name = "results",
    .summary = "show a job's summary and failed rows",
    .usage = "results ID [--limit N] [--offset N] [--json]",
    .help = "Show job ID's summary and one page of its row outcomes\n"
            "(import_results: row, line, target, column, code, message).",
    .opts = results_opts,
    .min_args = 1,
    .max_args = 1,
    .run = run_results,
};

const ig_cli_cmd ig_cmd_cancel = {
    .name = "cancel",
    .summary = "cancel a queued job, or stop a running one",
    .usage = "cancel ID [--json]",
    .help = "A queued job is cancelled at once; a running one stops at its\n"
            "next batch boundary (its committed batches stay). Exit 2 when\n"
            "the job does not exist or already finished.",
    .opts = json_only,
    .min_args = 1,
    .max_args = 1,
    .run = run_cancel,
};

const ig_cli_cmd ig_cmd_jobs = {
    .name = "jobs",
    .summary = "list import jobs, newest first",
    .usage = "jobs [--state S] [--pipeline P] [--limit N] [--offset N] "
             "[--json]",
    .help = "List jobs of the import_jobs queue, newest first.",
    .opts = jobs_opts,
    .min_args = 0,
    .max_args = 0,
    .run = run_jobs,
};

const ig_cli_cmd ig_cmd_prune = {
    .name = "prune",
    .summary = "delete old finished jobs and their row results",
    .usage = "prune [--older-than-days N] [--json]",
    .help = "Delete jobs that finished more than N days ago (default\n"
            "INGOT_RESULTS_RETENTION_DAYS) with their import_results rows.\n"
            "'ingot worker' does this hourly on its own.",
    .opts = prune_opts,
    .min_args = 0,
    .max_args = 0,
    .run = run_prune,
};
