/*
 * cmd_migrate.c - "ingot migrate up [N] | down [N|all] | status".
 *
 * Parses the verb and count, connects with DATABASE_URL and hands the work
 * to migrate.c. Progress goes to stdout, errors to stderr.
 */
#include "cmd_migrate.h"

#include "db.h"
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse the optional step count: N >= 1, or "all" when allow_all. */
static int parse_steps(ig_cli *cli, const char *s, int dflt, int *out)
{
    char *end = NULL;
    long v;

    if (s == NULL) {
        *out = dflt;
        return IG_EXIT_OK;
    }
    if (strcmp(s, "all") == 0) {
        *out = -1;
        return IG_EXIT_OK;
    }
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1000000)
        return ig_cli_usage_error(cli, "'%s' is not a step count (a whole "
                                  "number from 1, or 'all')", s);
    *out = (int)v;
    return IG_EXIT_OK;
}

static int run_migrate(ig_cli *cli)
{
    const ig_conf *conf = ig_cli_conf(cli);
    const char *verb = ig_cli_arg(cli, 0);
    const char *dir = ig_cli_data_dir(conf->migrations_dir, "migrations");
    ig_migset *set = NULL;
    PGconn *conn = NULL;
    ig_err err;
    int steps = 0, rc;

    ig_err_clear(&err);
    if (strcmp(verb, "up") == 0)
        rc = parse_steps(cli, ig_cli_arg(cli, 1), -1, &steps);
    else if (strcmp(verb, "down") == 0)
        rc = parse_steps(cli, ig_cli_arg(cli, 1), 1, &steps);
    else if (strcmp(verb, "status") == 0 && ig_cli_nargs(cli) == 1)
        rc = IG_EXIT_OK;
    else
        return ig_cli_usage_error(cli, "unknown form 'migrate %s%s%s'", verb,
                                  ig_cli_nargs(cli) > 1 ? " " : "",
                                  ig_cli_nargs(cli) > 1 ? ig_cli_arg(cli, 1)
                                                        : "");
    if (rc != IG_EXIT_OK)
        return rc;

    set = ig_migset_load(dir, &err);
    if (set == NULL)
        return ig_cli_fail(cli, "%s", err.msg);
    if (ig_db_connect(conf->database_url, &conn, &err) != IG_OK) {
        ig_migset_free(set);
        return ig_cli_fail(cli, "%s", err.msg);
    }
    if (strcmp(verb, "up") == 0)
        rc = ig_migrate_up(conn, set, steps, stdout, &err);
    else if (strcmp(verb, "down") == 0)
        rc = ig_migrate_down(conn, set, steps, stdout, &err);
    else
        rc = ig_migrate_status(conn, set, stdout, &err);
    fflush(stdout);
    if (rc != IG_OK)
        rc = ig_cli_fail(cli, "%s", err.msg);
    PQfinish(conn);
    ig_migset_free(set);
    return rc == IG_OK ? IG_EXIT_OK : IG_EXIT_FAIL;
}

const ig_cli_cmd ig_cmd_migrate = {
    .name = "migrate",
    .summary = "apply, revert or list database migrations",
    .usage = "migrate up [N] | migrate down [N|all] | migrate status",
    .help =
        "  up [N]        apply all pending migrations, or the next N\n"
        "  down [N|all]  revert the newest applied migration, the newest N,\n"
        "                or all of them\n"
        "  status        list every migration: applied (with its time) or\n"
        "                pending, and MODIFIED when an applied file changed\n\n"
        "Migrations are migrations/NNNN_name.sql files with '-- ingot:up' and\n"
        "'-- ingot:down' halves, each applied in its own transaction and\n"
        "recorded with a checksum in schema_migrations. An applied file that\n"
        "was edited is refused. Concurrent runs are serialised by an advisory\n"
        "lock, so nothing is applied twice.",
    .opts = NULL,
    .min_args = 1,
    .max_args = 2,
    .run = run_migrate,
};
