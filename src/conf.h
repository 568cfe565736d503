/*
 * conf.h - ingot's settings: one key table, read from the environment, a
 * .env file and command-line flags.
 *
 * Precedence, lowest first: built-in default, .env file (only for names not
 * already in the environment, the dotenv convention), the environment, then
 * command-line flags. Every value is checked against the key table: a bad
 * value is an IG_CONFIG error that names the setting and where it came from,
 * never a silent default. Names and defaults are the seed system's
 * (IMPORT_MAX_ROWS=50000, ...), except IMPORT_BATCH_SIZE: 5000, not the
 * seed's 1000, because the benchmark shows it 20% faster (docs/performance.md).
 *
 * An ig_conf is built once (main, ingot_open) and then only read: pass it
 * as const ig_conf * and share it between threads freely. Its strings are
 * owned by the struct and freed by ig_conf_fini().
 *
 * DATABASE_URL and REDIS_URL may carry passwords: print them only through
 * ig_conf_redact().
 */
#ifndef IG_CONF_H
#define IG_CONF_H

#include "err.h"

typedef struct ig_conf {
    char *database_url;      /* DATABASE_URL; NULL = libpq defaults */
    char *redis_url;         /* REDIS_URL; NULL = no Redis */
    long batch_size;         /* IMPORT_BATCH_SIZE */
    long max_rows;           /* IMPORT_MAX_ROWS */
    long timeout_seconds;    /* IMPORT_TIMEOUT_SECONDS */
    long background_threshold; /* IMPORT_BACKGROUND_THRESHOLD */
    long progress_expiry;    /* REDIS_PROGRESS_EXPIRY, seconds */
    long pool_size;          /* IMPORT_POOL_SIZE */
    long writers;            /* IMPORT_WRITERS */
    long insert_first;       /* IMPORT_INSERT_FIRST (0 or 1) */
    long merge;              /* IMPORT_MERGE (0 or 1) */
    long statement_timeout_ms; /* IMPORT_STATEMENT_TIMEOUT_MS */
    long log_level;          /* INGOT_LOG_LEVEL, an ig_log_level */
    char *migrations_dir;    /* INGOT_MIGRATIONS_DIR; NULL = search */
    char *pipeline_dir;      /* INGOT_PIPELINE_DIR; NULL = search */
    long worker_threads;     /* INGOT_WORKER_THREADS */
    char *http_listen;       /* INGOT_HTTP_LISTEN, "host:port" */
    char *api_token;         /* INGOT_API_TOKEN; secret, never logged */
    long max_body_bytes;     /* INGOT_MAX_BODY_BYTES */
    long lease_seconds;      /* INGOT_LEASE_SECONDS */
    long results_retention_days; /* INGOT_RESULTS_RETENTION_DAYS */
    char *worker_id;         /* INGOT_WORKER_ID; NULL = hostname:pid */
} ig_conf;

typedef enum { IG_CONF_INT, IG_CONF_STR, IG_CONF_LOGLEVEL } ig_conf_type;

/* One row of the key table; drives parsing, --help and docs. */
typedef struct ig_conf_key {
    const char *name;     /* environment name, e.g. "IMPORT_BATCH_SIZE" */
    const char *flag;     /* long flag without "--", or NULL (environment
                             or .env only: used for secrets, which must
                             not show in `ps`) */
    ig_conf_type type;
    size_t offset;        /* offsetof(ig_conf, field) */
    const char *def;      /* default as text, NULL = unset */
    long min, max;        /* IG_CONF_INT bounds, inclusive */
    int secret;           /* value may hold a password: redact on output */
    const char *doc;      /* one line for --help and docs/configuration.md */
} ig_conf_key;

/* The key table, terminated by a row with name == NULL. Static. */
const ig_conf_key *ig_conf_keys(void);

/* Find a key by environment name or by flag (without "--"); NULL if none. */
const ig_conf_key *ig_conf_find(const char *name);
const ig_conf_key *ig_conf_find_flag(const char *flag);

/* Fill *c with the built-in defaults. Cannot fail. */
void ig_conf_init(ig_conf *c);

/* Apply the .env file at path (a missing file is not an error when
 * required == 0), then the environment. IG_OK or IG_CONFIG / IG_IO. */
int ig_conf_load(ig_conf *c, const char *dotenv_path, int required,
                 ig_err *err) IG_MUSTCHECK;

/* ig_conf_load for the settings named in only (environment names,
 * NULL-terminated) and no other: the rest keep their defaults, and what
 * the environment or the .env file says of them is neither read nor
 * checked (a program embedding libingot is not refused for a worker
 * setting it never uses). */
int ig_conf_load_only(ig_conf *c, const char *dotenv_path, int required,
                      const char *const *only, ig_err *err) IG_MUSTCHECK;

/* Set one key from text; origin ("environment", "--batch-size", ".env:3")
 * goes into the error message. IG_OK or IG_CONFIG. */
int ig_conf_set(ig_conf *c, const ig_conf_key *k, const char *value,
                const char *origin, ig_err *err) IG_MUSTCHECK;

/* Free the strings; *c is left zeroed. NULL is a no-op. */
void ig_conf_fini(ig_conf *c);

/* Copy s into buf (size n) with any password replaced by "***": URL
 * userinfo (postgresql://u:pw@h, redis://:pw@h), "password=" in a URL query
 * or key=value conninfo. Returns buf. NULL s gives "(unset)". */
char *ig_conf_redact(const char *s, char *buf, size_t n);

#endif /* IG_CONF_H */
