/*
 * cli.h - the command-line front end: the command table, option parsing,
 * settings from env/.env/flags, help text, and exit codes.
 *
 * main() calls ig_cli_main() and nothing else. Each command lives in its own
 * cmd_<name>.c and is described by an ig_cli_cmd row; the parser here turns
 * argv into an ig_cli (positional arguments, the command's own options, and
 * the finished ig_conf) before the command runs. Every settings flag from
 * the conf key table (--batch-size, --database-url, ...) is accepted by
 * every command.
 *
 * Exit codes (documented in README and --help): 0 success, 1 partial
 * success (some rows failed), 2 failure or refusal (bad usage, bad config,
 * database down, limit exceeded).
 */
#ifndef IG_CLI_H
#define IG_CLI_H

#include "conf.h"

enum { IG_EXIT_OK = 0, IG_EXIT_PARTIAL = 1, IG_EXIT_FAIL = 2 };

#define IG_CLI_MAX_OPTS 32
#define IG_CLI_MAX_ARGS 16

/* json_dump flags for what commands print: indented, in insertion order,
 * numbers with ten significant digits (54.1, not 54.100000000000001). */
#define IG_CLI_JSON_FLAGS \
    (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))

typedef struct ig_cli_opt {
    const char *name;    /* long name without "--" */
    const char *argname; /* NULL for a boolean switch */
    const char *doc;
} ig_cli_opt;

typedef struct ig_cli ig_cli;

typedef struct ig_cli_cmd {
    const char *name;
    const char *summary;     /* one line for "ingot --help" */
    const char *usage;       /* "migrate up [N] | down [N|all] | status" */
    const char *help;        /* paragraph(s) for "ingot CMD --help" */
    const ig_cli_opt *opts;  /* terminated by {NULL}; may be NULL */
    int min_args, max_args;  /* positional argument bounds */
    int (*run)(ig_cli *cli); /* returns an IG_EXIT_* code */
} ig_cli_cmd;

/* Run the program; returns the process exit code. */
int ig_cli_main(int argc, char **argv);

/* Accessors for commands. Borrowed: valid while the command runs. */
const ig_conf *ig_cli_conf(const ig_cli *cli);
int ig_cli_nargs(const ig_cli *cli);
const char *ig_cli_arg(const ig_cli *cli, int i);
/* Value of the command's own option (NULL when not given); a switch
 * gives "1". */
const char *ig_cli_opt_value(const ig_cli *cli, const char *name);

/* Print "ingot CMD: msg" to stderr and return IG_EXIT_FAIL. */
int ig_cli_fail(const ig_cli *cli, const char *fmt, ...) IG_PRINTF(2, 3);

/* Print a usage error (with a pointer to --help) and return IG_EXIT_FAIL. */
int ig_cli_usage_error(const ig_cli *cli, const char *fmt, ...)
    IG_PRINTF(2, 3);

/* Resolve a data directory: the configured one when set, else ./<sub>
 * when it exists, else the installed INGOT_DATA_DIR/<sub>, else the source
 * tree's. Returns a static or borrowed string. */
const char *ig_cli_data_dir(const char *configured, const char *sub);

#endif /* IG_CLI_H */
