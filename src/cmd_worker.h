/*
 * cmd_worker.h - "ingot worker": import threads draining the job queue,
 * plus the HTTP API, until SIGTERM / SIGINT.
 */
#ifndef IG_CMD_WORKER_H
#define IG_CMD_WORKER_H

#include "cli.h"

extern const ig_cli_cmd ig_cmd_worker;

#endif /* IG_CMD_WORKER_H */
