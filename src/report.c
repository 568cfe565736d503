/*
 * report.c - JSON documents of jobs, progress, row outcomes and
 * synchronous runs; see report.h. Pure functions over their inputs.
 */
#include "report.h"

#include "rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Epoch seconds -> "2024-11-01T12:00:00.123Z", or null when unset. */
static json_t *ts(double t)
{
    char buf[40];
    time_t s;
    struct tm tm;

    if (t <= 0)
        return json_null();
    s = (time_t)t;
    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ",
             (int)((t - (double)s) * 1000.0));
    return json_string(buf);
}

json_t *ig_report_text(const char *s, size_t n)
{
    size_t len;
    char *clean = ig_utf8_scrub(s, n, &len);
    json_t *j = clean ? json_stringn(clean, len) : json_stringn(s, n);

    free(clean);
    return j ? j : json_null(); /* only on OOM */
}

static json_t *str_or_null(const char *s)
{
    return s ? ig_report_text(s, strlen(s)) : json_null();
}

static json_t *counts_json(const ig_jobq_counts *c)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "processed",
                     (json_int_t)c->processed, "inserted",
                     (json_int_t)c->inserted, "updated", (json_int_t)c->updated,
                     "unchanged", (json_int_t)c->unchanged, "skipped",
                     (json_int_t)c->skipped, "failed", (json_int_t)c->failed);
}

json_t *ig_report_links(long long id)
{
    char p[80], r[80], c[80];
    snprintf(p, sizeof(p), "/api/imports/%lld/progress", id);
    snprintf(r, sizeof(r), "/api/imports/%lld/results", id);
    snprintf(c, sizeof(c), "/api/imports/%lld/cancel", id);
    return json_pack("{s:s,s:s,s:s}", "progress", p, "results", r, "cancel", c);
}

json_t *ig_report_job(const ig_jobq_job *job)
{
    json_t *o = json_object();
    json_t *errors = job->errors ? json_loads(job->errors, 0, NULL) : NULL;

    json_object_set_new(o, "job_id", json_integer(job->id));
    json_object_set_new(o, "pipeline", json_string(job->pipeline));
    json_object_set_new(o, "state",
                        json_string(ig_jobq_state_name(job->state)));
    json_object_set_new(o, "source_name", str_or_null(job->source_name));
    json_object_set_new(o, "format", str_or_null(job->format));
    json_object_set_new(o, "source_bytes", json_integer(job->source_bytes));
    json_object_set_new(o, "total_rows",
                        job->total_rows >= 0 ? json_integer(job->total_rows)
                                             : json_null());
    json_object_set_new(o, "counts", counts_json(&job->counts));
    json_object_set_new(o, "checkpoint",
                        json_pack("{s:I,s:I,s:I}", "batch",
                                  (json_int_t)job->checkpoint.batch, "row",
                                  (json_int_t)job->checkpoint.row, "offset",
                                  (json_int_t)job->checkpoint.offset));
    json_object_set_new(o, "priority", json_integer(job->priority));
    json_object_set_new(o, "attempt", json_integer(job->attempt));
    json_object_set_new(o, "max_attempts", json_integer(job->max_attempts));
    json_object_set_new(o, "worker_id", str_or_null(job->worker_id));
    json_object_set_new(o, "cancel_requested",
                        json_boolean(job->cancel_requested));
    json_object_set_new(o, "last_error", str_or_null(job->last_error));
    json_object_set_new(o, "errors", errors ? errors : json_array());
    json_object_set_new(o, "created_at", ts(job->created_at));
    json_object_set_new(o, "started_at", ts(job->started_at));
    json_object_set_new(o, "finished_at", ts(job->finished_at));
    json_object_set_new(o, "updated_at", ts(job->updated_at));
    json_object_set_new(o, "run_after", ts(job->run_after));
    json_object_set_new(o, "links", ig_report_links(job->id));
    return o;
}

/* v rounded to `places` decimals: the figures read the same whichever
 * store they came from (Redis keeps them as text, with these places). */
static double rounded(double v, int places)
{
    double f = places == 2 ? 100.0 : 10.0;
    return round(v * f) / f;
}

static json_t *num_or_null(double v, int places)
{
    return v < 0 || !isfinite(v) ? json_null() : json_real(rounded(v, places));
}

/* Whether the live figures info are this running job's and no older than
 * its durable counters: written for this job row (its created_at; another
 * database's job of the same id may share the Redis) in its current
 * attempt (a killed worker's last figures stay until they expire), and
 * not behind the last checkpoint. */
static int live_matches(const ig_jobq_job *job, const ig_progress_info *info)
{
    return info != NULL && !ig_jobq_state_is_final(job->state) &&
           info->attempt == job->attempt &&
           fabs(info->job_created_at - job->created_at) < 1e-5 &&
           info->processed >= job->counts.processed;
}

json_t *ig_report_progress(const ig_jobq_job *job, const ig_progress_info *info,
                           const char *source)
{
    json_t *o = json_object();
    ig_progress_info pi;
    int final = ig_jobq_state_is_final(job->state);
    /* Running, but its lease ran out: its worker stopped heartbeating
     * (died, or lost the database) and the job waits for a rescue. Its
     * last live figures would make it look alive. */
    double at;
    int stalled = job->state == IG_JOBQ_RUNNING &&
                  job->lease_expires_at > 0 &&
                  job->lease_expires_at < (double)time(NULL);

    if (!stalled && live_matches(job, info)) {
        pi = *info;
    } else {
        memset(&pi, 0, sizeof(pi));
        pi.total = job->total_rows > 0 ? job->total_rows : 0;
        pi.processed = job->counts.processed;
        pi.inserted = job->counts.inserted;
        pi.updated = job->counts.updated;
        pi.unchanged = job->counts.unchanged;
        pi.skipped = job->counts.skipped;
        pi.failed = job->counts.failed;
        snprintf(pi.state, sizeof(pi.state), "%s",
                 ig_jobq_state_name(job->state));
        /* As of the job row's last write, not of this query: a job whose
         * worker died must not look alive. */
        at = final && job->finished_at > 0 ? job->finished_at
             : job->updated_at > 0         ? job->updated_at
                                           : (double)time(NULL);
        pi.started_at = job->started_at;
        if (job->attempt_started_at > 0) {
            /* This attempt's rate: its rows over its time, given to
             * ig_progress_compute (all rows over time since started_at)
             * as an equivalent start. No row of its own yet: no rate. */
            long long own = pi.processed - job->attempt_base_rows;
            pi.started_at =
                own <= 0 ? 0.0
                         : at - (at - job->attempt_started_at) *
                                    (double)pi.processed / (double)own;
        }
        ig_progress_compute(&pi, at);
        source = "database";
        if (stalled) {
            pi.rows_per_sec = 0.0;
            pi.eta_seconds = -1.0;
        }
    }
    json_object_set_new(o, "job_id", json_integer(job->id));
    json_object_set_new(o, "pipeline", json_string(job->pipeline));
    json_object_set_new(o, "state",
                        json_string(ig_jobq_state_name(job->state)));
    json_object_set_new(o, "total", json_integer(pi.total));
    json_object_set_new(o, "processed", json_integer(pi.processed));
    json_object_set_new(o, "inserted", json_integer(pi.inserted));
    json_object_set_new(o, "updated", json_integer(pi.updated));
    json_object_set_new(o, "unchanged", json_integer(pi.unchanged));
    json_object_set_new(o, "skipped", json_integer(pi.skipped));
    json_object_set_new(o, "failed", json_integer(pi.failed));
    json_object_set_new(o, "percent", num_or_null(pi.percent, 2));
    json_object_set_new(o, "rows_per_sec",
                        json_real(isfinite(pi.rows_per_sec)
                                      ? rounded(pi.rows_per_sec, 1)
                                      : 0.0));
    json_object_set_new(o, "eta_seconds", num_or_null(pi.eta_seconds, 1));
    json_object_set_new(o, "attempt", json_integer(job->attempt));
    json_object_set_new(o, "last_error", str_or_null(job->last_error));
    json_object_set_new(o, "updated_at", ts(pi.updated_at));
    json_object_set_new(o, "stalled", json_boolean(stalled));
    json_object_set_new(o, "source", json_string(source));
    return o;
}

json_t *ig_report_rows(const ig_jobq_rows *rows)
{
    json_t *a = json_array();
    size_t n = ig_jobq_rows_count(rows);

    for (size_t i = 0; i < n; i++) {
        ig_jobq_result r;
        json_t *o = json_object(), *vals = NULL;

        ig_jobq_rows_get(rows, i, &r);
        if (r.source_values)
            vals = json_loads(r.source_values, 0, NULL);
        json_object_set_new(o, "row", json_integer(r.source_row));
        json_object_set_new(o, "seq", json_integer(r.seq));
        json_object_set_new(o, "line",
                            r.source_line > 0 ? json_integer(r.source_line)
                                              : json_null());
        json_object_set_new(o, "outcome",
                            json_string(r.outcome == IG_JOBQ_OUTCOME_SKIPPED
                                            ? "skipped"
                                            : "failed"));
        json_object_set_new(o, "target", str_or_null(r.target));
        json_object_set_new(o, "column", str_or_null(r.column));
        json_object_set_new(o, "code", str_or_null(r.code));
        json_object_set_new(o, "constraint", str_or_null(r.constraint_name));
        json_object_set_new(o, "message", str_or_null(r.message));
        json_object_set_new(o, "values", vals ? vals : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

ig_jobq_state ig_report_final_state(ig_run_status st, long long processed,
                                    long long failed)
{
    switch (st) {
    case IG_RUN_DONE:
        if (failed == 0)
            return IG_JOBQ_SUCCEEDED;
        return failed < processed ? IG_JOBQ_PARTIALLY_SUCCEEDED
                                  : IG_JOBQ_FAILED;
    case IG_RUN_CANCELED:
        return IG_JOBQ_CANCELLED;
    case IG_RUN_TIMED_OUT:
    case IG_RUN_LIMIT:
    case IG_RUN_FAILED:
        return IG_JOBQ_FAILED;
    }
    return IG_JOBQ_FAILED;
}

static json_t *failed_row_json(const ig_failed_row *f)
{
    json_t *fj = json_object(), *reasons = json_array(), *vals = json_array();

    json_object_set_new(fj, "row", json_integer(f->row));
    json_object_set_new(fj, "line", json_integer(f->line));
    for (size_t j = 0; j < f->nreasons; j++) {
        const ig_reason *e = &f->reasons[j];
        json_array_append_new(reasons,
                              json_pack("{s:o,s:o,s:s,s:o,s:o}", "target",
                                        str_or_null(e->target), "column",
                                        str_or_null(e->column), "code",
                                        e->code ? e->code : "", "constraint",
                                        str_or_null(e->constraint), "message",
                                        str_or_null(e->message ? e->message
                                                               : "")));
    }
    for (size_t k = 0; k < f->nvalues; k++) {
        json_array_append_new(vals, str_or_null(f->values[k]));
    }
    json_object_set_new(fj, "reasons", reasons);
    json_object_set_new(fj, "values", vals);
    return fj;
}

static const char *const count_names[] = {"read",      "inserted", "updated",
                                          "unchanged", "skipped",  "failed"};

static long long pick(const ig_counts *c, int i)
{
    const long long v[] = {c->read,      c->inserted, c->updated,
                           c->unchanged, c->skipped,  c->failed};
    return v[i];
}

double ig_report_success_rate(long long read, long long failed, int decimals)
{
    double scale = pow(10.0, decimals), steps;

    if (read <= 0)
        return 100.0;
    steps = round(100.0 * scale * (double)(read - failed) / (double)read);
    if (failed > 0 && steps >= 100.0 * scale)
        steps = 100.0 * scale - 1;
    if (failed < read && steps < 1)
        steps = 1;
    return steps / scale; /* the double nearest 66.67, not 66.670000000000002 */
}

json_t *ig_report_run(const char *pipeline, const char *input,
                      ig_run_status status, const char *error,
                      const ig_results *results, double seconds)
{
    json_t *o = json_object(), *counts = json_object();
    json_t *targets = json_array(), *failed = json_array();
    ig_counts c;

    memset(&c, 0, sizeof(c));
    if (results)
        c = ig_results_counts(results);
    json_object_set_new(o, "pipeline", json_string(pipeline));
    json_object_set_new(o, "input", json_string(input));
    json_object_set_new(o, "status", json_string(ig_run_status_name(status)));
    json_object_set_new(o, "state",
                        json_string(ig_jobq_state_name(
                            ig_report_final_state(status, c.read, c.failed))));
    if (status != IG_RUN_DONE)
        json_object_set_new(o, "error", json_string(error ? error : ""));
    for (int i = 0; i < 6; i++)
        json_object_set_new(counts, count_names[i], json_integer(pick(&c, i)));
    json_object_set_new(o, "counts", counts);
    json_object_set_new(o, "success_rate",
                        status != IG_RUN_DONE && c.read == 0
                            ? json_null()
                            : json_real(ig_report_success_rate(
                                  c.read, c.failed, 2)));
    json_object_set_new(o, "duration_s", json_real(seconds));
    json_object_set_new(o, "rows_per_s",
                        json_real(seconds > 0 ? (double)c.read / seconds : 0));
    for (size_t t = 0; results && t < ig_results_ntargets(results); t++) {
        ig_counts tc = ig_results_target_counts(results, t);
        json_t *tj = json_object();
        json_object_set_new(tj, "name",
                            json_string(ig_results_target_name(results, t)));
        for (int i = 1; i <= 4; i++)
            json_object_set_new(tj, count_names[i], json_integer(pick(&tc, i)));
        json_array_append_new(targets, tj);
    }
    json_object_set_new(o, "targets", targets);
    for (size_t i = 0; results && i < ig_results_nfailed_kept(results); i++)
        json_array_append_new(
            failed, failed_row_json(ig_results_failed_row(results, i)));
    json_object_set_new(o, "failed_rows", failed);
    /* failed_rows holds the first 1000 (ig_results keeps no more). */
    json_object_set_new(
        o, "failed_rows_truncated",
        json_boolean(results != NULL &&
                     (long long)ig_results_nfailed_kept(results) < c.failed));
    return o;
}
