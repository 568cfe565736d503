/*
 * conf.c - the settings key table and its loaders (environment, .env,
 * flags). See conf.h for precedence and ownership.
 */
#include "conf.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_INT(name, flag, field, def, min, max, doc)                      \
    {name, flag, IG_CONF_INT, offsetof(ig_conf, field), def, min, max, 0, doc}
#define KEY_STR(name, flag, field, secret, doc)                             \
    {name, flag, IG_CONF_STR, offsetof(ig_conf, field), NULL, 0, 0, secret, doc}
#define KEY_STRD(name, flag, field, def, doc)                               \
    {name, flag, IG_CONF_STR, offsetof(ig_conf, field), def, 0, 0, 0, doc}

static const ig_conf_key keys[] = {
    KEY_STR("DATABASE_URL", "database-url", database_url, 1,
            "PostgreSQL connection URL or conninfo (libpq defaults if unset)"),
    KEY_STR("REDIS_URL", "redis-url", redis_url, 1,
            "Redis URL for the progress store (memory store if unset)"),
    KEY_INT("IMPORT_BATCH_SIZE", "batch-size", batch_size, "5000", 1, 100000,
            "rows per batch (one short transaction each; twice that while "
            "batches only insert, see IMPORT_INSERT_FIRST; fewer when rows "
            "are so wide that a batch would hold over 8 MiB)"),
    KEY_INT("IMPORT_MAX_ROWS", "max-rows", max_rows, "50000", 1, 1000000000,
            "largest number of data rows one import may hold"),
    KEY_INT("IMPORT_TIMEOUT_SECONDS", "timeout", timeout_seconds, "600", 1,
            604800, "an import still running after this stops at the next "
                    "batch boundary (a batch whose database has sent nothing "
                    "for the statement timeout and 5 s more is dropped)"),
    KEY_INT("IMPORT_BACKGROUND_THRESHOLD", "background-threshold",
            background_threshold, "1000", 0, 1000000000,
            "imports with at least this many rows are queued, not run "
            "synchronously"),
    KEY_INT("REDIS_PROGRESS_EXPIRY", "progress-expiry", progress_expiry,
            "86400", 1, 31536000, "seconds a job's progress stays in Redis"),
    KEY_INT("IMPORT_POOL_SIZE", "pool-size", pool_size, "4", 1, 256,
            "database connections of one import (at least IMPORT_WRITERS "
            "+ 1), and of the worker's HTTP API routes and, apart, of its "
            "synchronous imports (at least 4 each); each worker import "
            "thread has 4 of its own"),
    KEY_INT("IMPORT_WRITERS", "writers", writers, "2", 1, 16,
            "batches of a single-table import without lookups applied at "
            "once, each on its own connection, when no key is in two of "
            "them (1: one after another)"),
    KEY_INT("IMPORT_INSERT_FIRST", "insert-first", insert_first, "1", 0, 1,
            "1: while batches only insert, COPY the next one straight into "
            "the table and upsert only if that fails (one-table pipelines "
            "without lookups); 0: always upsert"),
    KEY_INT("IMPORT_MERGE", "merge", merge, "1", 0, 1,
            "1: apply a whole batch as one MERGE, which neither checks a "
            "row whose key exists as an insert first nor locks one it "
            "leaves unchanged, and upsert only if that fails (PostgreSQL "
            "15+; one-table pipelines with text keys in a C-ordered "
            "database, values cast to their columns' exact types, and a "
            "table whose constraints MERGE checks as the upsert would: "
            "docs/architecture.md); 0: always upsert"),
    KEY_INT("IMPORT_STATEMENT_TIMEOUT_MS", "statement-timeout",
            statement_timeout_ms, "60000", 0, 86400000,
            "per-statement timeout in milliseconds (0 = none)"),
    {"INGOT_LOG_LEVEL", "log-level", IG_CONF_LOGLEVEL,
     offsetof(ig_conf, log_level), "info", 0, 0, 0,
     "debug, info, warn, error or off"},
    KEY_STR("INGOT_MIGRATIONS_DIR", "migrations-dir", migrations_dir, 0,
            "directory of migration files (default: ./migrations, then the "
            "installed ones)"),
    KEY_STR("INGOT_PIPELINE_DIR", "pipeline-dir", pipeline_dir, 0,
            "directory of pipeline YAML files (default: ./pipelines, then "
            "the installed ones)"),
    KEY_INT("INGOT_WORKER_THREADS", "threads", worker_threads, "2", 1, 64,
            "ingot worker: import threads draining the job queue"),
    KEY_STRD("INGOT_HTTP_LISTEN", "listen", http_listen, "127.0.0.1:8080",
             "ingot worker: HTTP API address, HOST:PORT"),
    /* No flag: a token on the command line shows in `ps`. */
    KEY_STR("INGOT_API_TOKEN", NULL, api_token, 1,
            "ingot worker: bearer token the HTTP API requires (environment "
            "or .env only; never logged)"),
    KEY_INT("INGOT_MAX_BODY_BYTES", "max-body-bytes", max_body_bytes,
            "67108864", 1, 2147483647,
            "largest HTTP request body accepted (413 above)"),
    KEY_INT("INGOT_LEASE_SECONDS", "lease-seconds", lease_seconds, "30", 2,
            3600, "job lease: heartbeats every third of it; a job whose "
                  "worker is silent this long is rescued"),
    KEY_INT("INGOT_RESULTS_RETENTION_DAYS", "retention-days",
            results_retention_days, "30", 1, 36500,
            "finished jobs and their row results are pruned after this "
            "many days"),
    KEY_STR("INGOT_WORKER_ID", "worker-id", worker_id, 0,
            "ingot worker: the id written into claimed jobs (default "
            "hostname:pid)"),
    {NULL, NULL, IG_CONF_INT, 0, NULL, 0, 0, 0, NULL},
};

const ig_conf_key *ig_conf_keys(void)
{
    return keys;
}

const ig_conf_key *ig_conf_find(const char *name)
{
    for (const ig_conf_key *k = keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

const ig_conf_key *ig_conf_find_flag(const char *flag)
{
    for (const ig_conf_key *k = keys; k->name; k++)
        if (k->flag && strcmp(k->flag, flag) == 0)
            return k;
    return NULL;
}

static int set_int(long *out, const ig_conf_key *k, const char *value,
                   const char *origin, ig_err *err)
{
    char *end = NULL;
    long v;

    errno = 0;
    while (isspace((unsigned char)*value))
        value++;
    v = strtol(value, &end, 10);
    if (*value == '\0' || end == value || *end != '\0')
        return ig_err_set(err, IG_CONFIG,
                          "%s=%s (from %s): not a whole number; expected "
                          "%ld to %ld",
                          k->name, value, origin, k->min, k->max);
    if (errno == ERANGE || v < k->min || v > k->max)
        return ig_err_set(err, IG_CONFIG,
                          "%s=%s (from %s): out of range; expected %ld to %ld",
                          k->name, value, origin, k->min, k->max);
    *out = v;
    return IG_OK;
}

int ig_conf_set(ig_conf *c, const ig_conf_key *k, const char *value,
                const char *origin, ig_err *err)
{
    char *field = (char *)c + k->offset;

    switch (k->type) {
    case IG_CONF_INT:
        return set_int((long *)(void *)field, k, value, origin, err);
    case IG_CONF_LOGLEVEL: {
        int lv = ig_log_parse_level(value);
        if (lv < 0)
            return ig_err_set(err, IG_CONFIG,
                              "%s=%s (from %s): expected debug, info, warn, "
                              "error or off",
                              k->name, value, origin);
        *(long *)(void *)field = lv;
        return IG_OK;
    }
    case IG_CONF_STR: {
        char **sp = (char **)(void *)field;
        if (strlen(value) > 4096)
            return ig_err_set(err, IG_CONFIG, "%s (from %s): longer than "
                              "4096 bytes", k->name, origin);
        /* Not shown: a secret that is not a URL (a token) has nothing
         * to redact, and one read from a file often ends in a newline. */
        if (k->secret && strchr(value, '\n'))
            return ig_err_set(err, IG_CONFIG, "%s (from %s): contains a "
                              "newline (not shown; a value read from a file "
                              "keeps its last line end)",
                              k->name, origin);
        free(*sp);
        *sp = value[0] ? ig_xstrdup(value) : NULL;
        return IG_OK;
    }
    }
    return ig_err_set(err, IG_INTERNAL, "%s: bad key type", k->name);
}

void ig_conf_init(ig_conf *c)
{
    memset(c, 0, sizeof(*c));
    for (const ig_conf_key *k = keys; k->name; k++) {
        if (k->def == NULL)
            continue;
        /* Defaults are in range by construction; a failure is a bug in the
         * table, caught by the unit tests. */
        if (ig_conf_set(c, k, k->def, "default", NULL) != IG_OK)
            abort();
    }
}

/* Strip one layer of matching quotes and surrounding blanks, in place. */
static char *dotenv_value(char *v)
{
    size_t n;

    while (*v == ' ' || *v == '\t')
        v++;
    n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        v[--n] = '\0';
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        v++;
    }
    return v;
}

/* Whether environment name `name` is in the NULL-terminated list only
 * (every name is, when only is NULL). */
static int wanted(const char *const *only, const char *name)
{
    if (only == NULL)
        return 1;
    for (; *only; only++)
        if (strcmp(*only, name) == 0)
            return 1;
    return 0;
}

static int load_dotenv(ig_conf *c, const char *path, int required,
                       const char *const *only, ig_err *err)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    char origin[600];
    int lineno = 0;
    int rc = IG_OK;

    if (f == NULL) {
        if (!required)
            return IG_OK;
        return ig_err_set(err, IG_IO, "%s: cannot open: %s", path,
                          strerror(errno));
    }
    while (rc == IG_OK && fgets(line, sizeof(line), f)) {
        char *p = line, *eq, *name;
        const ig_conf_key *k;

        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        eq = strchr(p, '=');
        if (eq == NULL) {
            rc = ig_err_set(err, IG_CONFIG, "%s:%d: expected NAME=value",
                            path, lineno);
            break;
        }
        *eq = '\0';
        name = dotenv_value(p);
        k = ig_conf_find(name);
        if (k == NULL || getenv(name) != NULL || !wanted(only, name))
            continue; /* not ours, the environment wins, or not asked */
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        rc = ig_conf_set(c, k, dotenv_value(eq + 1), origin, err);
    }
    fclose(f);
    return rc;
}

int ig_conf_load(ig_conf *c, const char *dotenv_path, int required,
                 ig_err *err)
{
    return ig_conf_load_only(c, dotenv_path, required, NULL, err);
}

int ig_conf_load_only(ig_conf *c, const char *dotenv_path, int required,
                      const char *const *only, ig_err *err)
{
    int rc;

    if (dotenv_path != NULL) {
        rc = load_dotenv(c, dotenv_path, required, only, err);
        if (rc != IG_OK)
            return rc;
    }
    for (const ig_conf_key *k = keys; k->name; k++) {
        const char *v = getenv(k->name);
        if (v == NULL || !wanted(only, k->name))
            continue;
        rc = ig_conf_set(c, k, v, "environment", err);
        if (rc != IG_OK)
            return rc;
    }
    return IG_OK;
}

void ig_conf_fini(ig_conf *c)
{
    if (c == NULL)
        return;
    for (const ig_conf_key *k = keys; k->name; k++)
        if (k->type == IG_CONF_STR)
            free(*(char **)(void *)((char *)c + k->offset));
    memset(c, 0, sizeof(*c));
}

/* Mask the value of each password parameter: a URL's "password=" and
 * conninfo's "password = value" (spaces allowed around '=', the value
 * maybe quoted), up to the next separator. */
static void mask_password_params(char *s)
{
    char *p = s;

    while ((p = strstr(p, "password")) != NULL) {
        char *v = p + 8, *end;
        if (p != s && p[-1] != '?' && p[-1] != '&' && !isspace((unsigned char)p[-1])) {
            p = v;
            continue;
        }
        while (isspace((unsigned char)*v))
            v++;
        if (*v != '=') {
            p = v;
            continue;
        }
        v++;
        while (isspace((unsigned char)*v))
            v++;
        end = v;
        if (*end == '\'') { /* conninfo quoting: password='a b' */
            end++;
            while (*end && *end != '\'')
                end += (*end == '\\' && end[1]) ? 2 : 1;
            if (*end)
                end++;
        } else {
            while (*end && *end != '&' && !isspace((unsigned char)*end))
                end++;
        }
        memmove(v + 3, end, strlen(end) + 1);
        memcpy(v, "***", 3);
        p = v + 3;
    }
}

char *ig_conf_redact(const char *s, char *buf, size_t n)
{
    char tmp[8192]; /* input capped at 4096; masking grows it a little */
    char *scheme;

    if (n == 0)
        return buf;
    if (s == NULL) {
        snprintf(buf, n, "(unset)");
        return buf;
    }
    snprintf(tmp, sizeof(tmp), "%.4096s", s);
    scheme = strstr(tmp, "://");
    if (scheme != NULL) {
        char *auth = scheme + 3;
        char *slash = strchr(auth, '/');
        char *at = strrchr(auth, '@');
        if (at != NULL && (slash == NULL || at < slash)) {
            char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon != NULL) {
                memmove(colon + 4, at, strlen(at) + 1);
                memcpy(colon + 1, "***", 3);
            }
        }
    }
    mask_password_params(tmp);
    snprintf(buf, n, "%s", tmp);
    return buf;
}
