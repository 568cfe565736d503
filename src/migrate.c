/*
 * migrate.c - loads migration files and applies or reverses them under a
 * session advisory lock; see migrate.h for the file format and guarantees.
 */
#include "migrate.h"
#include "clock.h"

#include "db.h"
#include "sql.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* Arbitrary constant key for pg_advisory_lock: "ingotmig" in ASCII. */
#define MIGRATE_LOCK_KEY "7596399573426137447"

typedef struct migration {
    int version;
    char *name;     /* file name without ".sql" */
    char *up;       /* owned */
    char *down;     /* owned */
    int no_tx;
    char checksum[40]; /* "xxh128:" + 32 hex digits is 39 chars */
} migration;

struct ig_migset {
    migration *m;
    size_t n;
};

/* An applied row of schema_migrations. */
typedef struct applied {
    int version;
    char name[256];
    char checksum[64];
    char applied_at[64];
} applied;

/* ------------------------------------------------------------------ */
/* Loading files                                                       */

static int read_file(const char *path, char **out, ig_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, got;

    *out = NULL;
    if (f == NULL)
        return ig_err_set(err, IG_IO, "%s: cannot open: %s", path,
                          strerror(errno));
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            buf = ig_xrealloc(buf, cap + 1);
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return ig_err_set(err, IG_IO, "%s: read error", path);
    }
    fclose(f);
    buf[len] = '\0';
    *out = buf;
    return IG_OK;
}

/* 1 when the line starting at p is exactly the marker (trailing blanks ok). */
static int is_marker(const char *p, const char *marker)
{
    size_t n = strlen(marker);
    if (strncmp(p, marker, n) != 0)
        return 0;
    p += n;
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    return *p == '\n' || *p == '\0';
}

static int parse_migration(migration *m, const char *path, const char *text,
                           ig_err *err)
{
    const char *up = NULL, *down = NULL;
    int lineno = 1;
    XXH128_hash_t h;

    for (const char *p = text; *p; lineno++) {
        const char *eol = strchr(p, '\n');
        if (is_marker(p, "-- ingot:up")) {
            if (up != NULL)
                return ig_err_set(err, IG_CONFIG, "%s:%d: second "
                                  "'-- ingot:up'", path, lineno);
            up = eol ? eol + 1 : p + strlen(p);
        } else if (is_marker(p, "-- ingot:down")) {
            if (up == NULL || down != NULL)
                return ig_err_set(err, IG_CONFIG, "%s:%d: '-- ingot:down' "
                                  "must come once, after '-- ingot:up'",
                                  path, lineno);
            down = eol ? eol + 1 : p + strlen(p);
            m->up = ig_xmalloc((size_t)(p - up) + 1);
            memcpy(m->up, up, (size_t)(p - up));
            m->up[p - up] = '\0';
        } else if (is_marker(p, "-- ingot:no-transaction")) {
            if (up != NULL)
                return ig_err_set(err, IG_CONFIG, "%s:%d: "
                                  "'-- ingot:no-transaction' must come "
                                  "before '-- ingot:up'", path, lineno);
            m->no_tx = 1;
        }
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    if (up == NULL || down == NULL)
        return ig_err_set(err, IG_CONFIG, "%s: needs a '-- ingot:up' and a "
                          "'-- ingot:down' section", path);
    m->down = ig_xstrdup(down);
    h = XXH3_128bits(text, strlen(text));
    snprintf(m->checksum, sizeof(m->checksum), "xxh128:%016llx%016llx",
             (unsigned long long)h.high64, (unsigned long long)h.low64);
    return IG_OK;
}

static int cmp_version(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* "0001_name.sql" -> version 1; -1 when the name is not a migration. */
static int file_version(const char *fname)
{
    size_t n = strlen(fname), digits = 0;
    long v;

    if (n < 6 || strcmp(fname + n - 4, ".sql") != 0)
        return -1;
    while (isdigit((unsigned char)fname[digits]))
        digits++;
    if (digits == 0 || digits > 9 || fname[digits] != '_')
        return -1;
    v = strtol(fname, NULL, 10);
    return (int)v;
}

ig_migset *ig_migset_load(const char *dir, ig_err *err)
{
    ig_migset *set = ig_xcalloc(1, sizeof(*set));
    size_t cap = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    char *text = NULL;
    char path[4096];

    if (d == NULL) {
        ig_err_set(err, IG_IO, "%s: cannot open migrations directory: %s",
                   dir, strerror(errno));
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        int v = file_version(de->d_name);
        migration *m;
        if (v < 0)
            continue;
        if (set->n == cap) {
            cap = cap ? cap * 2 : 16;
            set->m = ig_xrealloc(set->m, cap * sizeof(*set->m));
        }
        m = &set->m[set->n++];
        memset(m, 0, sizeof(*m));
        m->version = v;
        m->name = ig_xstrdup(de->d_name);
        m->name[strlen(m->name) - 4] = '\0';
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (read_file(path, &text, err) != IG_OK ||
            parse_migration(m, path, text, err) != IG_OK)
            goto fail;
        free(text);
        text = NULL;
    }
    qsort(set->m, set->n, sizeof(*set->m), cmp_version);
    for (size_t i = 1; i < set->n; i++)
        if (set->m[i].version == set->m[i - 1].version) {
            ig_err_set(err, IG_CONFIG, "%s: %s and %s share version %d", dir,
                       set->m[i - 1].name, set->m[i].name, set->m[i].version);
            goto fail;
        }
    closedir(d);
    return set;

fail:
    free(text);
    if (d != NULL)
        closedir(d);
    ig_migset_free(set);
    return NULL;
}

void ig_migset_free(ig_migset *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->m[i].name);
        free(set->m[i].up);
        free(set->m[i].down);
    }
    free(set->m);
    free(set);
}

size_t ig_migset_count(const ig_migset *s) { return s->n; }
int ig_migset_version(const ig_migset *s, size_t i) { return s->m[i].version; }
const char *ig_migset_name(const ig_migset *s, size_t i) { return s->m[i].name; }
const char *ig_migset_up(const ig_migset *s, size_t i) { return s->m[i].up; }
const char *ig_migset_down(const ig_migset *s, size_t i) { return s->m[i].down; }
int ig_migset_no_tx(const ig_migset *s, size_t i) { return s->m[i].no_tx; }
const char *ig_migset_checksum(const ig_migset *s, size_t i)
{
    return s->m[i].checksum;
}

/* ------------------------------------------------------------------ */
/* Talking to the database                                             */

static const char create_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " duration_ms integer NOT NULL DEFAULT 0)";

/* Take the advisory lock and make sure the bookkeeping table exists.
 *
 * The lock is polled with pg_try_advisory_lock rather than waited for with
 * pg_advisory_lock: a backend blocked inside pg_advisory_lock holds an open
 * transaction, and CREATE INDEX CONCURRENTLY in the run that holds the lock
 * waits for every open transaction to end: a deadlock. Between polls we hold
 * no transaction, so a concurrent index build only waits for one poll. */
static int begin_session(PGconn *c, int *locked, ig_err *err)
{
    int rc = ig_db_exec(c, "SET statement_timeout = 0; "
                           "SET client_min_messages = warning",
                        "preparing the migration session", err);
    int waited_ms = 0;

    *locked = 0;
    while (rc == IG_OK && !*locked) {
        PGresult *res = NULL;
        rc = ig_db_query(c, "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY
                            ")", 0, NULL, &res, "taking the migration lock",
                         err);
        if (rc != IG_OK)
            break;
        *locked = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (!*locked) {
            struct timespec ts = {0, 50 * 1000000L};
            if (waited_ms == 2000)
                fprintf(stderr, "ingot migrate: waiting for another "
                                "migration run to finish...\n");
            nanosleep(&ts, NULL);
            waited_ms += 50;
        }
    }
    if (rc != IG_OK)
        return rc;
    return ig_db_exec(c, create_table_sql, "creating schema_migrations", err);
}

static void end_session(PGconn *c, int locked)
{
    PGresult *r;
    if (!locked)
        return;
    r = PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
    PQclear(r); /* the lock also goes with the session */
}

static int load_applied(PGconn *c, applied **out, size_t *n, ig_err *err)
{
    PGresult *res = NULL;
    int rc = ig_db_query(c,
                         "SELECT version, name, checksum, "
                         "to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ') "
                         "FROM schema_migrations ORDER BY version",
                         0, NULL, &res, "reading schema_migrations", err);
    if (rc != IG_OK)
        return rc;
    *n = (size_t)PQntuples(res);
    *out = ig_xcalloc(*n ? *n : 1, sizeof(**out));
    for (size_t i = 0; i < *n; i++) {
        applied *a = &(*out)[i];
        a->version = atoi(PQgetvalue(res, (int)i, 0));
        snprintf(a->name, sizeof(a->name), "%s", PQgetvalue(res, (int)i, 1));
        snprintf(a->checksum, sizeof(a->checksum), "%s",
                 PQgetvalue(res, (int)i, 2));
        snprintf(a->applied_at, sizeof(a->applied_at), "%s",
                 PQgetvalue(res, (int)i, 3));
    }
    PQclear(res);
    return IG_OK;
}

static const applied *find_applied(const applied *a, size_t n, int version)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].version == version)
            return &a[i];
    return NULL;
}

static const migration *find_file(const ig_migset *set, int version)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->m[i].version == version)
            return &set->m[i];
    return NULL;
}

/* Refuse when any applied migration's file changed since it was applied. */
static int check_drift(const ig_migset *set, const applied *a, size_t n,
                       ig_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const migration *m = find_file(set, a[i].version);
        if (m != NULL && strcmp(m->checksum, a[i].checksum) != 0)
            return ig_err_set(err, IG_CONFIG,
                              "migration %s was edited after it was applied "
                              "(checksum %s in schema_migrations, %s on "
                              "disk): restore the file and put the change "
                              "in a new migration",
                              m->name, a[i].checksum, m->checksum);
    }
    return IG_OK;
}

/* Run one half (body) of m: in a transaction with the bookkeeping
 * statement, or statement by statement for no-transaction files. */
static int run_half(PGconn *c, const migration *m, const char *body,
                    int is_up, double *ms, ig_err *err)
{
    char ver[16], dur[16];
    const char *params[4];
    PGresult *res = NULL;
    double t0 = (ig_clock_s() * 1e3);
    int rc;

    snprintf(ver, sizeof(ver), "%d", m->version);
    if (!m->no_tx) {
        rc = ig_db_exec(c, "BEGIN", "BEGIN", err);
        if (rc == IG_OK)
            rc = ig_db_exec(c, body, "SQL", err);
    } else {
        char **stmts = NULL;
        size_t n = 0;
        rc = ig_sql_split(body, &stmts, &n, err);
        for (size_t i = 0; rc == IG_OK && i < n; i++) {
            rc = ig_db_exec(c, stmts[i], "SQL", err);
            if (rc != IG_OK)
                ig_err_prefix(err, "statement %zu of %zu (no-transaction "
                              "migration: the earlier ones stay applied)",
                              i + 1, n);
        }
        ig_sql_free_list(stmts, n);
    }
    if (rc != IG_OK)
        goto out;
    *ms = (ig_clock_s() * 1e3) - t0;
    snprintf(dur, sizeof(dur), "%d", (int)*ms);
    params[0] = ver;
    params[1] = m->name;
    params[2] = m->checksum;
    params[3] = dur;
    if (is_up)
        rc = ig_db_query(c,
                         "INSERT INTO schema_migrations (version, name, "
                         "checksum, duration_ms) VALUES ($1, $2, $3, $4)",
                         4, params, &res, "recording the migration", err);
    else
        rc = ig_db_query(c, "DELETE FROM schema_migrations WHERE version = $1",
                         1, params, &res, "recording the migration", err);
    if (rc == IG_OK && !m->no_tx)
        rc = ig_db_exec(c, "COMMIT", "COMMIT", err);
out:
    PQclear(res);
    if (rc != IG_OK && !m->no_tx) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
    return rc;
}

int ig_migrate_up(PGconn *c, const ig_migset *set, int steps, FILE *out,
                  ig_err *err)
{
    applied *a = NULL;
    size_t na = 0;
    int done = 0, locked = 0;
    int rc = begin_session(c, &locked, err);

    if (rc == IG_OK)
        rc = load_applied(c, &a, &na, err);
    if (rc == IG_OK)
        rc = check_drift(set, a, na, err);
    for (size_t i = 0; rc == IG_OK && i < set->n; i++) {
        const migration *m = &set->m[i];
        double ms = 0;
        if (steps >= 0 && done >= steps)
            break;
        if (find_applied(a, na, m->version))
            continue;
        rc = run_half(c, m, m->up, 1, &ms, err);
        if (rc != IG_OK) {
            ig_err_prefix(err, "migration %s (up)", m->name);
            break;
        }
        done++;
        if (out)
            fprintf(out, "applied  %s%s (%.0f ms)\n", m->name,
                    m->no_tx ? " [no transaction]" : "", ms);
    }
    if (rc == IG_OK && out && done == 0)
        fprintf(out, "nothing to apply: the database is up to date\n");
    end_session(c, locked);
    free(a);
    return rc;
}

int ig_migrate_down(PGconn *c, const ig_migset *set, int steps, FILE *out,
                    ig_err *err)
{
    applied *a = NULL;
    size_t na = 0;
    int done = 0, locked = 0;
    int rc = begin_session(c, &locked, err);

    if (rc == IG_OK)
        rc = load_applied(c, &a, &na, err);
    if (rc == IG_OK)
        rc = check_drift(set, a, na, err);
    for (size_t i = na; rc == IG_OK && i-- > 0;) {
        const migration *m = find_file(set, a[i].version);
        double ms = 0;
        if (steps >= 0 && done >= steps)
            break;
        if (m == NULL) {
            rc = ig_err_set(err, IG_CONFIG, "applied migration %d (%s) has "
                            "no file in the migrations directory: cannot "
                            "reverse it", a[i].version, a[i].name);
            break;
        }
        rc = run_half(c, m, m->down, 0, &ms, err);
        if (rc != IG_OK) {
            ig_err_prefix(err, "migration %s (down)", m->name);
            break;
        }
        done++;
        if (out)
            fprintf(out, "reverted %s (%.0f ms)\n", m->name, ms);
    }
    if (rc == IG_OK && out && done == 0)
        fprintf(out, "nothing to revert\n");
    end_session(c, locked);
    free(a);
    return rc;
}

int ig_migrate_status(PGconn *c, const ig_migset *set, FILE *out, ig_err *err)
{
    applied *a = NULL;
    size_t na = 0;
    int pending = 0, locked = 0;
    int rc = begin_session(c, &locked, err);

    if (rc == IG_OK)
        rc = load_applied(c, &a, &na, err);
    end_session(c, locked);
    if (rc != IG_OK)
        goto out;
    fprintf(out, "%-8s %-40s %s\n", "VERSION", "NAME", "STATE");
    for (size_t i = 0; i < set->n; i++) {
        const migration *m = &set->m[i];
        const applied *ap = find_applied(a, na, m->version);
        if (ap == NULL)
            pending++;
        fprintf(out, "%-8d %-40s %s%s%s\n", m->version, m->name,
                ap ? "applied " : "pending", ap ? ap->applied_at : "",
                ap && strcmp(ap->checksum, m->checksum) != 0 ? "  MODIFIED"
                                                             : "");
    }
    for (size_t i = 0; i < na; i++)
        if (find_file(set, a[i].version) == NULL)
            fprintf(out, "%-8d %-40s applied %s  MISSING FILE\n",
                    a[i].version, a[i].name, a[i].applied_at);
    fprintf(out, "%zu applied, %d pending\n", na, pending);
    rc = check_drift(set, a, na, err);
out:
    free(a);
    return rc;
}
