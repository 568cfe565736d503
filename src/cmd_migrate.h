/*
 * cmd_migrate.h - "ingot migrate": apply, revert and list migrations.
 */
#ifndef IG_CMD_MIGRATE_H
#define IG_CMD_MIGRATE_H

#include "cli.h"

extern const ig_cli_cmd ig_cmd_migrate;

#endif /* IG_CMD_MIGRATE_H */
