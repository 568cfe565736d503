/*
 * cli.c - command table, option parser, settings and help; see cli.h.
 */
#include "cli.h"

#include "cmd_check.h"
#include "cmd_jobs.h"
#include "cmd_migrate.h"
#include "cmd_run.h"
#include "cmd_worker.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Only commands that really work are listed (and accepted). */
static const ig_cli_cmd *const commands[] = {
    &ig_cmd_check,
    &ig_cmd_migrate,
    &ig_cmd_run,
    &ig_cmd_worker,
    &ig_cmd_submit,
    &ig_cmd_progress,
    &ig_cmd_results,
    &ig_cmd_cancel,
    &ig_cmd_jobs,
    &ig_cmd_prune,
    NULL,
};

struct ig_cli {
    const ig_cli_cmd *cmd;
    ig_conf conf;
    const char *args[IG_CLI_MAX_ARGS];
    int nargs;
    const char *optv[IG_CLI_MAX_OPTS]; /* by index into cmd->opts */
};

const ig_conf *ig_cli_conf(const ig_cli *cli) { return &cli->conf; }
int ig_cli_nargs(const ig_cli *cli) { return cli->nargs; }
const char *ig_cli_arg(const ig_cli *cli, int i)
{
    return i >= 0 && i < cli->nargs ? cli->args[i] : NULL;
}

const char *ig_cli_opt_value(const ig_cli *cli, const char *name)
{
    for (int i = 0; cli->cmd->opts && cli->cmd->opts[i].name; i++)
        if (strcmp(cli->cmd->opts[i].name, name) == 0)
            return cli->optv[i];
    return NULL;
}

int ig_cli_fail(const ig_cli *cli, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ingot %s: ", cli->cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return IG_EXIT_FAIL;
}

int ig_cli_usage_error(const ig_cli *cli, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ingot %s: ", cli->cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: ingot %s\nTry 'ingot %s --help'.\n",
            cli->cmd->usage, cli->cmd->name);
    return IG_EXIT_FAIL;
}

const char *ig_cli_data_dir(const char *configured, const char *sub)
{
    static char buf[3][4096]; /* CLI only: one thread, a few callers */
    static int next;
    struct stat st;
    char *b;

    if (configured != NULL)
        return configured;
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        return sub;
    b = buf[next++ % 3];
    snprintf(b, sizeof(buf[0]), "%s/%s", INGOT_DATA_DIR, sub);
    if (stat(b, &st) == 0 && S_ISDIR(st.st_mode))
        return b;
    snprintf(b, sizeof(buf[0]), "%s/%s", INGOT_SOURCE_DIR, sub);
    return b;
}

/* ------------------------------------------------------------------ */
/* Help                                                                */

static void print_settings_help(FILE *f)
{
    fprintf(f, "\nSettings (environment or .env, overridden by the flag):\n");
    for (const ig_conf_key *k = ig_conf_keys(); k->name; k++)
        fprintf(f, "  %s%-22s %-28s %s%s%s%s\n", k->flag ? "--" : "  ",
                k->flag ? k->flag : "", k->name, k->doc, k->def ? " [" : "",
                k->def ? k->def : "", k->def ? "]" : "");
    fprintf(f, "  --%-22s %-28s %s\n", "env-file FILE", "",
            "read settings from FILE instead of ./.env");
}

static void print_main_help(FILE *f)
{
    fprintf(f,
            "ingot %s - bulk UPSERT import engine for PostgreSQL\n\n"
            "usage: ingot [--version] [--help] <command> [options] [args]\n\n"
            "Commands:\n",
            INGOT_VERSION);
    for (int i = 0; commands[i]; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\nRun 'ingot <command> --help' for a command's options.\n"
               "Exit codes: 0 success, 1 partial success (some rows "
               "failed), 2 failure.\n");
    print_settings_help(f);
}

static void print_cmd_help(const ig_cli_cmd *c, FILE *f)
{
    fprintf(f, "usage: ingot %s\n\n%s\n", c->usage, c->help);
    if (c->opts && c->opts[0].name) {
        fprintf(f, "\nOptions:\n");
        for (int i = 0; c->opts[i].name; i++) {
            char left[64];
            snprintf(left, sizeof(left), "%s%s%s", c->opts[i].name,
                     c->opts[i].argname ? " " : "",
                     c->opts[i].argname ? c->opts[i].argname : "");
            fprintf(f, "  --%-22s %s\n", left, c->opts[i].doc);
        }
    }
    fprintf(f, "  --%-22s %s\n", "help", "show this help");
    print_settings_help(f);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */

static int find_cmd_opt(const ig_cli_cmd *c, const char *name)
{
    for (int i = 0; c->opts && c->opts[i].name; i++)
        if (strcmp(c->opts[i].name, name) == 0)
            return i;
    return -1;
}

/* Settings given as flags are applied after env/.env, so keep them. */
typedef struct flag_setting {
    const ig_conf_key *key;
    const char *value;
    const char *flag;
} flag_setting;

static int parse_args(ig_cli *cli, int argc, char **argv, int *want_help)
{
    static flag_setting sets[64];
    int nsets = 0;
    const char *env_file = ".env";
    int env_required = 0, only_args = 0;
    ig_err err;

    ig_err_clear(&err);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL, *eq;
        char name[64];
        int oi;
        const ig_conf_key *k;

        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            if (cli->nargs >= IG_CLI_MAX_ARGS)
                return ig_cli_usage_error(cli, "too many arguments");
            cli->args[cli->nargs++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *want_help = 1;
            return IG_EXIT_OK;
        }
        if (a[1] != '-')
            return ig_cli_usage_error(cli, "unknown option '%s'", a);
        eq = strchr(a + 2, '=');
        snprintf(name, sizeof(name), "%.*s",
                 eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
        oi = find_cmd_opt(cli->cmd, name);
        k = ig_conf_find_flag(name);
        if (oi < 0 && k == NULL && strcmp(name, "env-file") != 0)
            return ig_cli_usage_error(cli, "unknown option '--%s'", name);
        if (oi >= 0 && cli->cmd->opts[oi].argname == NULL) {
            if (eq)
                return ig_cli_usage_error(cli, "option '--%s' takes no "
                                          "value", name);
            cli->optv[oi] = "1";
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return ig_cli_usage_error(cli, "option '--%s' needs a value",
                                      name);
        }
        if (oi >= 0) {
            cli->optv[oi] = val;
        } else if (k != NULL) {
            if (nsets >= (int)(sizeof(sets) / sizeof(sets[0])))
                return ig_cli_usage_error(cli, "too many options");
            sets[nsets].key = k;
            sets[nsets].value = val;
            sets[nsets].flag = a;
            nsets++;
        } else {
            env_file = val;
            env_required = 1;
        }
    }
    if (cli->nargs < cli->cmd->min_args)
        return ig_cli_usage_error(cli, "missing argument");
    if (cli->nargs > cli->cmd->max_args)
        return ig_cli_usage_error(cli, "unexpected argument '%s'",
                                  cli->args[cli->cmd->max_args]);

    if (ig_conf_load(&cli->conf, env_file, env_required, &err) != IG_OK)
        return ig_cli_fail(cli, "%s", err.msg);
    for (int i = 0; i < nsets; i++) {
        char origin[80];
        snprintf(origin, sizeof(origin), "--%s", sets[i].key->flag);
        if (ig_conf_set(&cli->conf, sets[i].key, sets[i].value, origin,
                        &err) != IG_OK)
            return ig_cli_fail(cli, "%s", err.msg);
    }
    return IG_EXIT_OK;
}

int ig_cli_main(int argc, char **argv)
{
    ig_cli cli;
    int want_help = 0, rc;

    memset(&cli, 0, sizeof(cli));
    if (argc < 2) {
        print_main_help(stderr);
        return IG_EXIT_FAIL;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_main_help(stdout);
        return IG_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("ingot %s\n", INGOT_VERSION);
        return IG_EXIT_OK;
    }
    for (int i = 0; commands[i]; i++)
        if (strcmp(commands[i]->name, argv[1]) == 0)
            cli.cmd = commands[i];
    if (cli.cmd == NULL) {
        fprintf(stderr, "ingot: unknown %s '%s'\nTry 'ingot --help'.\n",
                argv[1][0] == '-' ? "option" : "command", argv[1]);
        return IG_EXIT_FAIL;
    }

    ig_conf_init(&cli.conf);
    rc = parse_args(&cli, argc - 2, argv + 2, &want_help);
    if (rc == IG_EXIT_OK && want_help) {
        print_cmd_help(cli.cmd, stdout);
    } else if (rc == IG_EXIT_OK) {
        ig_log_set_level((ig_log_level)cli.conf.log_level);
        rc = cli.cmd->run(&cli);
    }
    ig_conf_fini(&cli.conf);
    return rc;
}
