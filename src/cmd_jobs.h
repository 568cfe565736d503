/*
 * cmd_jobs.h - the job-queue verbs: "ingot submit", "progress",
 * "results", "cancel", "jobs" and "prune" (they talk to PostgreSQL
 * directly, not to a worker's HTTP API).
 */
#ifndef IG_CMD_JOBS_H
#define IG_CMD_JOBS_H

#include "cli.h"

extern const ig_cli_cmd ig_cmd_submit;
extern const ig_cli_cmd ig_cmd_progress;
extern const ig_cli_cmd ig_cmd_results;
extern const ig_cli_cmd ig_cmd_cancel;
extern const ig_cli_cmd ig_cmd_jobs;
extern const ig_cli_cmd ig_cmd_prune;

#endif /* IG_CMD_JOBS_H */
