/*
 * report.h - the JSON documents of the background-import side: a job, its
 * progress, its row outcomes, and the result of a synchronous run. Shared
 * by the HTTP API (src/http.c) and the CLI verbs (src/cmd_jobs.c), so
 * `ingot jobs --json` and `GET /api/imports/jobs` print the same thing.
 *
 * Every function returns a new jansson value the caller owns (json_decref)
 * and reads its inputs only during the call. Nothing here touches the
 * database or logs. Cannot fail except by aborting on OOM (jansson's
 * allocation failures yield NULL members, which json_object_set_new skips).
 */
#ifndef IG_REPORT_H
#define IG_REPORT_H

#include <jansson.h>

#include "jobq.h"
#include "progress.h"
#include "results.h"
#include "runner.h"

/* A JSON string of s[0..n), which need not be valid UTF-8 or free of NUL
 * (text from a request or a failed row): such bytes become U+FFFD, where
 * jansson would refuse the string and PostgreSQL's jsonb the NUL. */
json_t *ig_report_text(const char *s, size_t n);

/* A job without its source: id, pipeline, state, counts, checkpoint,
 * attempts, errors, times (ISO 8601 UTC strings or null), and links to the
 * job's API routes. */
json_t *ig_report_job(const ig_jobq_job *job);

/* {"progress": "/api/imports/<id>/progress", "results": ..., "cancel":
 * ...}. */
json_t *ig_report_links(long long id);

/* GET /api/imports/<id>/progress: state from the job row (authoritative);
 * counters and rates from info when non-NULL, the job is not final, and
 * info was written for this job row and attempt and is not behind its
 * durable counters; else the job's durable counters. "source" says which
 * ("redis", "memory" or "database"). */
json_t *ig_report_progress(const ig_jobq_job *job, const ig_progress_info *info,
                           const char *source);

/* One page of import_results as an array of {row, seq, line, outcome,
 * target, column, code, constraint, message, values}. */
json_t *ig_report_rows(const ig_jobq_rows *rows);

/* The result of a synchronous run, in the shape of `ingot run --json`
 * (pipeline, input, status, error, counts, success_rate, duration_s,
 * rows_per_s, targets, failed_rows) plus "state", the job state the same
 * import would have finished in. results may be NULL (nothing ran). */
json_t *ig_report_run(const char *pipeline, const char *input,
                      ig_run_status status, const char *error,
                      const ig_results *results, double seconds);

/* The share of read rows that did not fail, in percent rounded to
 * `decimals` places, but never shown as 100 while a row failed nor as 0
 * while one succeeded (1 failure in 3000 rows is 99.9, not 100.0). 100
 * when nothing was read. Pure. */
double ig_report_success_rate(long long read, long long failed, int decimals);

/* The job state an import that ended with counts c and status st finishes
 * in: succeeded (no failed row), partially_succeeded (some), failed (no
 * row succeeded, or the import did not complete). Pure. */
ig_jobq_state ig_report_final_state(ig_run_status st, long long processed,
                                    long long failed);

#endif /* IG_REPORT_H */
