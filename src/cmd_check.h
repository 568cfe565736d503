/*
 * cmd_check.h - "ingot check PIPELINE [--json] [--no-db]": lint a pipeline
 * file and check it against the live database schema.
 */
#ifndef IG_CMD_CHECK_H
#define IG_CMD_CHECK_H

#include "cli.h"

extern const ig_cli_cmd ig_cmd_check;

#endif /* IG_CMD_CHECK_H */
