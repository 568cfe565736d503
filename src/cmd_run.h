/*
 * cmd_run.h - "ingot run": import a file or stdin through a pipeline.
 */
#ifndef IG_CMD_RUN_H
#define IG_CMD_RUN_H

#include "cli.h"

extern const ig_cli_cmd ig_cmd_run;

#endif /* IG_CMD_RUN_H */
