/*
 * cmd_check.c - "ingot check PIPELINE [--json] [--no-db]".
 *
 * Loads the pipeline (every load problem is collected through the loader's
 * diag callback, not just the first), then, unless --no-db, checks it
 * against the live schema in one READ ONLY transaction that is rolled
 * back: tables and columns exist, declared types fit the column types,
 * lookup parents have their key and id columns, touch exists, and a unique
 * index matches each conflict key and predicate (probed with EXPLAIN INSERT
 * ... ON CONFLICT, which plans the arbiter inference without writing).
 *
 * The report (one line per problem, then "ok: ..." or "FAILED: ...", or one
 * JSON object with --json) goes to stdout: it is the command's result.
 * Exit 0 when there is no error (warnings allowed), 2 otherwise.
 */
#include "cmd_check.h"

#include "db.h"
#include "exec.h"
#include "pipeline.h"
#include "sql.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The report                                                          */

typedef struct problem {
    int warning;
    int line, col;
    char *path;
    char *message;
} problem;

typedef struct report {
    const char *file;
    problem *v;
    size_t n, cap;
    size_t nerr, nwarn;
} report;

static void add(report *r, int warning, int line, int col, const char *path,
                const char *fmt, ...) IG_PRINTF(6, 7);
static void add(report *r, int warning, int line, int col, const char *path,
                const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) /* one problem, one line */
        if (*c == '\n' || *c == '\t')
            *c = ' ';
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->v = ig_xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n].warning = warning;
    r->v[r->n].line = line;
    r->v[r->n].col = col;
    r->v[r->n].path = ig_xstrdup(path);
    r->v[r->n].message = ig_xstrdup(msg);
    r->n++;
    if (warning)
        r->nwarn++;
    else
        r->nerr++;
}

static void report_fini(report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].path);
        free(r->v[i].message);
    }
    free(r->v);
}

static void on_diag(void *ud, const ig_pipeline_diag *d)
{
    add(ud, 0, d->line, d->col, d->path, "%s", d->message);
}

/* ------------------------------------------------------------------ */
/* Schema checks                                                       */

typedef struct dbcol {
    char *name;
    char *type;  /* format_type(), e.g. "numeric(12,2)" */
    char *base;  /* pg_type.typname, e.g. "numeric" */
    char cat;    /* pg_type.typcategory */
} dbcol;

typedef struct dbtable {
    int exists;
    dbcol *cols;
    size_t n;
} dbtable;

static void dbtable_fini(dbtable *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->cols[i].name);
        free(t->cols[i].type);
        free(t->cols[i].base);
    }
    free(t->cols);
    memset(t, 0, sizeof(*t));
}

/* Read the columns of table (maybe schema.table). IG_OK with exists = 0
 * when there is no such table. */
static int dbtable_load(PGconn *c, const char *table, dbtable *t, ig_err *err)
{
    static const char *const sql =
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "       ty.typname, ty.typcategory "
        "FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
        "  AND NOT a.attisdropped ORDER BY a.attnum";
    char *q = ig_sql_qualified(table);
    const char *params[1] = {q};
    PGresult *res = NULL;
    int rc;

    memset(t, 0, sizeof(*t));
    rc = ig_db_query(c, "SELECT to_regclass($1) IS NOT NULL", 1, params, &res,
                     "looking up a table", err);
    if (rc != IG_OK)
        goto out;
    t->exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    if (!t->exists)
        goto out;
    rc = ig_db_query(c, sql, 1, params, &res, "reading table columns", err);
    if (rc != IG_OK)
        goto out;
    t->n = (size_t)PQntuples(res);
    t->cols = ig_xcalloc(t->n ? t->n : 1, sizeof(*t->cols));
    for (size_t i = 0; i < t->n; i++) {
        t->cols[i].name = ig_xstrdup(PQgetvalue(res, (int)i, 0));
        t->cols[i].type = ig_xstrdup(PQgetvalue(res, (int)i, 1));
        t->cols[i].base = ig_xstrdup(PQgetvalue(res, (int)i, 2));
        t->cols[i].cat = PQgetvalue(res, (int)i, 3)[0];
    }
out:
    PQclear(res);
    free(q);
    return rc;
}

static const dbcol *dbtable_col(const dbtable *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

static int is_int_type(const char *b)
{
    return strcmp(b, "int2") == 0 || strcmp(b, "int4") == 0 ||
           strcmp(b, "int8") == 0;
}

/* Does a value of pipeline type ty fit database column dc? NULL when it
 * does; else the problem, with *warning set when it only might not. */
static const char *type_fit(ig_type ty, const dbcol *dc, int *warning)
{
    const char *b = dc->base;

    *warning = 1;
    switch (ty) {
    case IG_TYPE_TEXT:
        if (dc->cat == 'S' || dc->cat == 'E')
            return NULL;
        return "text goes into a non-text column; it is read by the "
               "column's type and a value it cannot read fails its row "
               "(declare the column's type to check values before that)";
    case IG_TYPE_INT:
        if (strcmp(b, "int4") == 0 || strcmp(b, "int8") == 0 ||
            strcmp(b, "numeric") == 0)
            return NULL;
        if (strcmp(b, "int2") == 0)
            return "int into smallint may overflow";
        break;
    case IG_TYPE_BIGINT:
        if (strcmp(b, "int8") == 0 || strcmp(b, "numeric") == 0)
            return NULL;
        if (strcmp(b, "int4") == 0 || strcmp(b, "int2") == 0)
            return "bigint into a smaller integer column may overflow";
        break;
    case IG_TYPE_NUMERIC:
        if (strcmp(b, "numeric") == 0)
            return NULL;
        if (strcmp(b, "float4") == 0 || strcmp(b, "float8") == 0)
            return "numeric into a floating-point column may lose digits";
        if (is_int_type(b))
            return "numeric into an integer column: fractions are rounded";
        break;
    case IG_TYPE_BOOL:
        if (strcmp(b, "bool") == 0)
            return NULL;
        break;
    case IG_TYPE_DATE:
        if (strcmp(b, "date") == 0 || strcmp(b, "timestamptz") == 0 ||
            strcmp(b, "timestamp") == 0)
            return NULL;
        break;
    case IG_TYPE_TIMESTAMP:
        if (strcmp(b, "timestamptz") == 0 || strcmp(b, "timestamp") == 0)
            return NULL;
        if (strcmp(b, "date") == 0)
            return "timestamp into a date column drops the time";
        break;
    case IG_TYPE_UUID:
        if (strcmp(b, "uuid") == 0)
            return NULL;
        break;
    case IG_TYPE_JSON:
        if (strcmp(b, "jsonb") == 0 || strcmp(b, "json") == 0)
            return NULL;
        break;
    }
    *warning = 0;
    return "incompatible";
}

typedef struct checker {
    report *r;
    PGconn *conn;
    const ig_pipeline *p;
    const char *migrations_hint;
} checker;

static void check_column(checker *ck, const ig_target *t, size_t ti,
                         const ig_column *c, const dbtable *dt)
{
    char path[300];
    const dbcol *dc = dbtable_col(dt, c->name);
    const char *why;
    int warning;
    int pp, ps;

    snprintf(path, sizeof(path), "targets[%zu].columns.%s", ti, c->name);
    if (dc == NULL) {
        add(ck->r, 0, c->pos.line, c->pos.col, path, "column \"%s\" does "
            "not exist in table %s", c->name, t->table);
        return;
    }
    why = type_fit(c->type, dc, &warning);
    if (why != NULL && !warning)
        add(ck->r, 0, c->pos.line, c->pos.col, path, "type %s does not fit "
            "the column's type %s", ig_type_name(c->type), dc->type);
    else if (why != NULL)
        add(ck->r, 1, c->pos.line, c->pos.col, path, "%s (column is %s)", why,
            dc->type);
    if (c->type == IG_TYPE_NUMERIC && c->precision > 0 &&
        sscanf(dc->type, "numeric(%d,%d)", &pp, &ps) == 2 &&
        (pp != c->precision || ps != c->scale))
        add(ck->r, 1, c->pos.line, c->pos.col, path, "declared numeric(%d,%d)"
            " but the column is %s", c->precision, c->scale, dc->type);
}

/* Whether a unique index on table (cols, quoted; plain for messages)
 * covers rows matching pred, as ON CONFLICT inference finds it: EXPLAIN
 * of an INSERT .. ON CONFLICT in a savepoint. 1 yes, 0 no (42P10),
 * PROBE_FAILED when the probe failed otherwise, PROBE_BROKE when the
 * savepoint could not be taken or rolled back (the check's transaction
 * is then unusable); both with *err. */
enum { PROBE_FAILED = -1, PROBE_BROKE = -2 };

static int probe_unique(checker *ck, const char *table, const char *cols,
                        const char *plain, const char *pred, ig_err *err)
{
    char *qt = ig_sql_qualified(table);
    char *sql = ig_xasprintf("EXPLAIN INSERT INTO %s (%s) SELECT %s FROM %s "
                             "WHERE false ON CONFLICT (%s)%s%s DO NOTHING",
                             qt, cols, cols, qt, cols, pred ? " WHERE " : "",
                             pred ? pred : "");
    PGresult *res;
    const char *state;
    int got = PROBE_BROKE;

    if (ig_db_exec(ck->conn, "SAVEPOINT ingot_check", "savepoint", err) !=
        IG_OK)
        goto out;
    res = PQexec(ck->conn, sql);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        got = 1;
    else if (state != NULL && strcmp(state, "42P10") == 0)
        got = 0;
    else {
        got = PROBE_FAILED;
        ig_db_err(err, ck->conn, res, "probing ON CONFLICT (%s)", plain);
    }
    PQclear(res);
    if (ig_db_exec(ck->conn, "ROLLBACK TO SAVEPOINT ingot_check", "rollback",
                   err) != IG_OK)
        got = PROBE_BROKE;
out:
    free(sql);
    free(qt);
    return got;
}

/* Whether a unique index makes lookup lk's key name at most one parent
 * row under its predicate (probe_unique). Without one, a row whose key two
 * parent rows share fails, and each lookup counts the parent rows (the
 * executor's join, exec.c): a warning, since the data may be unique
 * anyway. */
static void check_parent_unique(checker *ck, const ig_column *c,
                                const char *path, ig_err *err)
{
    const ig_lookup *lk = &c->lookup;
    const char *pred = lk->predicate;
    char *qk = ig_db_quote_ident(lk->key);
    int got;

    if (pred == NULL && lk->target >= 0)
        pred = ig_pipeline_target(ck->p, (size_t)lk->target)->key_predicate;
    got = probe_unique(ck, lk->table, qk, lk->key, pred, err);
    if (got == 0)
        add(ck->r, 1, c->pos.line, c->pos.col, path, "no unique index on "
            "%s (%s)%s%s: a row whose key two parent rows share fails "
            "(AMBIGUOUS_PARENT), and every lookup counts the rows with its "
            "key", lk->table, lk->key,
            pred ? " WHERE " : "", pred ? pred : "");
    else if (got == PROBE_BROKE)
        add(ck->r, 0, c->pos.line, c->pos.col, path, "%s", err->msg);
    free(qk);
}

static void check_lookup(checker *ck, size_t ti, const ig_column *c,
                         ig_err *err)
{
    const ig_lookup *lk = &c->lookup;
    dbtable parent;
    char path[300];
    const dbcol *kc, *ic;

    snprintf(path, sizeof(path), "targets[%zu].columns.%s.lookup", ti,
             c->name);
    if (dbtable_load(ck->conn, lk->table, &parent, err) != IG_OK) {
        add(ck->r, 0, c->pos.line, c->pos.col, path, "%s", err->msg);
        return;
    }
    if (!parent.exists) {
        add(ck->r, 0, c->pos.line, c->pos.col, path, "parent table %s does "
            "not exist", lk->table);
        dbtable_fini(&parent);
        return;
    }
    kc = dbtable_col(&parent, lk->key);
    ic = dbtable_col(&parent, lk->id);
    if (kc == NULL)
        add(ck->r, 0, c->pos.line, c->pos.col, path, "parent table %s has "
            "no key column \"%s\"", lk->table, lk->key);
    if (ic == NULL)
        add(ck->r, 0, c->pos.line, c->pos.col, path, "parent table %s has "
            "no id column \"%s\"", lk->table, lk->id);
    else if (!is_int_type(ic->base) && strcmp(ic->base, "uuid") != 0)
        add(ck->r, 0, c->pos.line, c->pos.col, path, "parent id %s.%s is %s;"
            " expected an integer or uuid id", lk->table, lk->id, ic->type);
    if (kc != NULL)
        check_parent_unique(ck, c, path, err);
    dbtable_fini(&parent);
}

/* "a", "b" into buf as a quoted, comma-separated list. */
static void quoted_list(char *buf, size_t n, const char *const *names,
                        size_t cnt, int quote)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cnt && len < n; i++) {
        char *q = quote ? ig_db_quote_ident(names[i]) : NULL;
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "",
                                q ? q : names[i]);
        free(q);
    }
}

/* The conflict key needs a unique index matching key + key_predicate. */
static void check_conflict_index(checker *ck, const ig_target *t, size_t ti,
                                 ig_err *err)
{
    char cols[1024], plain[1024], path[300];

    quoted_list(cols, sizeof(cols), t->key, t->n_key, 1);
    quoted_list(plain, sizeof(plain), t->key, t->n_key, 0);
    snprintf(path, sizeof(path), "targets[%zu] (%s)", ti, t->name);
    switch (probe_unique(ck, t->table, cols, plain, t->key_predicate, err)) {
    case 0:
        add(ck->r, 0, t->pos.line, t->pos.col, path, "no unique index on "
            "(%s)%s%s: ON CONFLICT would fail at run time; create one "
            "(see %s)", plain, t->key_predicate ? " WHERE " : "",
            t->key_predicate ? t->key_predicate : "", ck->migrations_hint);
        break;
    case PROBE_FAILED:
    case PROBE_BROKE:
        add(ck->r, 0, t->pos.line, t->pos.col, path, "%s", err->msg);
        break;
    default:
        break;
    }
}

static void check_target(checker *ck, size_t ti, ig_err *err)
{
    const ig_target *t = ig_pipeline_target(ck->p, ti);
    dbtable dt;
    char path[300];
    int keys_ok = 1;

    snprintf(path, sizeof(path), "targets[%zu] (%s)", ti, t->name);
    if (dbtable_load(ck->conn, t->table, &dt, err) != IG_OK) {
        add(ck->r, 0, t->pos.line, t->pos.col, path, "%s", err->msg);
        return;
    }
    if (!dt.exists) {
        add(ck->r, 0, t->pos.line, t->pos.col, path, "table %s does not "
            "exist (run 'ingot migrate up'?)", t->table);
        dbtable_fini(&dt);
        return;
    }
    for (size_t i = 0; i < t->n_cols; i++) {
        check_column(ck, t, ti, &t->cols[i], &dt);
        if (t->cols[i].source == IG_COLSRC_LOOKUP)
            check_lookup(ck, ti, &t->cols[i], err);
    }
    for (size_t i = 0; i < t->n_key; i++)
        keys_ok &= dbtable_col(&dt, t->key[i]) != NULL;
    if (t->touch && dbtable_col(&dt, t->touch) == NULL)
        add(ck->r, 0, t->pos.line, t->pos.col, path, "touch column \"%s\" "
            "does not exist in table %s", t->touch, t->table);
    if (keys_ok)
        check_conflict_index(ck, t, ti, err);
    dbtable_fini(&dt);
}

/* A conflict key ingot can only compare by its bytes where the database
 * may find other spellings equal (exec.h: ig_exec_inexact_key): what an
 * import would warn about. The executor plans it as a run would, and
 * PostgreSQL plans the statements it would send (a guard, a lookup
 * predicate, a touch column of a type now() does not fit). */
static void check_keys(checker *ck, ig_err *err)
{
    ig_exec *ex = ig_exec_new(ck->p, ck->conn, err);
    size_t bad = 0;
    int missing = 0;

    if (ex == NULL) /* what failed there is reported above */
        return;
    if (ig_exec_explain(ex, ck->conn, &bad, &missing, err) != IG_OK) {
        /* At the target whose statement it is (the upsert: its guard, key
         * predicate, touch column; the missing-parent query: the first
         * lookup's predicate). */
        const ig_target *t = ig_pipeline_target(ck->p, bad);
        const ig_pos *at = &t->pos;
        char path[300];

        snprintf(path, sizeof(path), "targets[%zu]", bad);
        for (size_t i = 0; missing && i < t->n_cols; i++)
            if (t->cols[i].source == IG_COLSRC_LOOKUP) {
                at = &t->cols[i].pos;
                snprintf(path, sizeof(path), "targets[%zu].columns.%s", bad,
                         t->cols[i].name);
                break;
            }
        add(ck->r, 0, at->line, at->col, path, "PostgreSQL refuses the "
            "statements an import would run: %s", err->msg);
    }
    if (ig_exec_inexact_key(ex) != NULL) {
        /* Placed at the target it names ("target t, key column c"). */
        const char *k = ig_exec_inexact_key(ex);
        const ig_target *at = NULL;
        char path[300] = "key";

        for (size_t ti = 0; at == NULL && ti < ig_pipeline_ntargets(ck->p);
             ti++) {
            const ig_target *t = ig_pipeline_target(ck->p, ti);
            size_t n = strlen(t->name);
            if (strncmp(k, "target ", 7) == 0 &&
                strncmp(k + 7, t->name, n) == 0 && k[7 + n] == ',') {
                at = t;
                snprintf(path, sizeof(path), "targets[%zu].key", ti);
            }
        }
        add(ck->r, 1, at ? at->pos.line : 0, at ? at->pos.col : 0, path,
            "%s: the database may find keys equal whose mapped values "
            "differ, and ingot can only compare their bytes for this type: "
            "such rows are not duplicates to the `duplicates` policy, and "
            "an import keeps to one writer", k);
    }
    ig_exec_free(ex);
}

static void check_db(const ig_cli *cli, report *r, const ig_pipeline *p)
{
    const ig_conf *conf = ig_cli_conf(cli);
    checker ck;
    ig_err err;

    memset(&ck, 0, sizeof(ck));
    ck.r = r;
    ck.p = p;
    ck.migrations_hint = "migrations/0002_unique_indexes_for_upsert.sql";
    ig_err_clear(&err);
    if (ig_db_connect(conf->database_url, &ck.conn, &err) != IG_OK) {
        add(r, 0, 0, 0, "database", "%s (use --no-db to check only the "
            "file)", err.msg);
        return;
    }
    if (ig_db_exec(ck.conn, "BEGIN READ ONLY", "starting the check", &err) !=
        IG_OK) {
        add(r, 0, 0, 0, "database", "%s", err.msg);
    } else {
        for (size_t i = 0; i < ig_pipeline_ntargets(p); i++)
            check_target(&ck, i, &err);
        if (r->nerr == 0)
            check_keys(&ck, &err);
        /* A failed ROLLBACK changes nothing: the session ends next. */
        if (ig_db_exec(ck.conn, "ROLLBACK", "ending the check", &err) !=
            IG_OK)
            add(r, 1, 0, 0, "database", "%s", err.msg);
    }
    PQfinish(ck.conn);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

static void print_text(const report *r, const ig_pipeline *p, int db)
{
    for (size_t i = 0; i < r->n; i++) {
        const problem *pr = &r->v[i];
        if (pr->line > 0)
            printf("%s:%d:%d: ", r->file, pr->line, pr->col);
        else
            printf("%s: ", r->file);
        printf("%s: %s%s\n", pr->path, pr->warning ? "warning: " : "",
               pr->message);
    }
    if (r->nerr == 0 && p != NULL) {
        const char *mod = ig_pipeline_hooks(p)->module;
        printf("ok: %s (%zu target%s, %zu columns, hooks: %s%s)%s\n",
               r->file, ig_pipeline_ntargets(p),
               ig_pipeline_ntargets(p) == 1 ? "" : "s",
               ig_pipeline_ncolumns(p), mod ? mod : "none",
               db ? "" : "; database not checked",
               r->nwarn ? " with warnings" : "");
    } else {
        printf("FAILED: %s (%zu error%s, %zu warning%s)\n", r->file, r->nerr,
               r->nerr == 1 ? "" : "s", r->nwarn, r->nwarn == 1 ? "" : "s");
    }
}

static json_t *problems_json(const report *r, int warnings)
{
    json_t *a = json_array();

    for (size_t i = 0; i < r->n; i++) {
        const problem *pr = &r->v[i];
        if (pr->warning != warnings)
            continue;
        json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:s}", "path",
                                           pr->path, "line", pr->line, "col",
                                           pr->col, "message", pr->message));
    }
    return a;
}

static void print_json(const report *r, const char *name,
                       const ig_pipeline *p, int db)
{
    json_t *o, *targets = json_array();
    const char *mod = p ? ig_pipeline_hooks(p)->module : NULL;
    char *s;

    for (size_t i = 0; p && i < ig_pipeline_ntargets(p); i++) {
        const ig_target *t = ig_pipeline_target(p, i);
        json_array_append_new(targets,
                              json_pack("{s:s, s:s, s:I}", "name", t->name,
                                        "table", t->table, "columns",
                                        (json_int_t)t->n_cols));
    }
    o = json_pack("{s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:o}", "pipeline",
                  name, "file", r->file, "ok", r->nerr == 0, "database",
                  db, "hooks", mod ? json_string(mod) : json_null(), "errors",
                  problems_json(r, 0), "warnings", problems_json(r, 1),
                  "targets", targets);
    s = json_dumps(o, IG_CLI_JSON_FLAGS);
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(o);
}

/* ------------------------------------------------------------------ */
/* The command                                                         */

static int is_path(const char *a)
{
    size_t n = strlen(a);
    return strchr(a, '/') != NULL ||
           (n > 5 && strcmp(a + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(a + n - 4, ".yml") == 0);
}

static int run_check(ig_cli *cli)
{
    const ig_conf *conf = ig_cli_conf(cli);
    const char *arg = ig_cli_arg(cli, 0);
    int json = ig_cli_opt_value(cli, "json") != NULL;
    int db = ig_cli_opt_value(cli, "no-db") == NULL;
    ig_pipeline_opts opts;
    ig_pipeline *p = NULL;
    report r;
    char *file, *name;
    ig_err err;

    memset(&r, 0, sizeof(r));
    memset(&opts, 0, sizeof(opts));
    if (is_path(arg))
        file = ig_xstrdup(arg);
    else
        file = ig_xasprintf("%s/%s.yaml",
                            ig_cli_data_dir(conf->pipeline_dir, "pipelines"),
                            arg);
    name = ig_xstrdup(arg);
    r.file = file;
    opts.check_hooks = 1;
    opts.diag = on_diag;
    opts.diag_ud = &r;
    ig_err_clear(&err);
    p = ig_pipeline_load(file, &opts, &err);
    if (p == NULL && r.n == 0) /* not a load problem: cannot open */
        add(&r, 0, 0, 0, "file", "%s", err.msg);
    if (p != NULL) {
        free(name);
        name = ig_xstrdup(ig_pipeline_name(p));
        if (db)
            check_db(cli, &r, p);
    }
    if (json)
        print_json(&r, name, p, db && p != NULL);
    else
        print_text(&r, p, db);
    fflush(stdout);
    {
        int rc = r.nerr == 0 && p != NULL ? IG_EXIT_OK : IG_EXIT_FAIL;
        report_fini(&r);
        ig_pipeline_free(p);
        free(file);
        free(name);
        return rc;
    }
}

static const ig_cli_opt check_opts[] = {
    {"json", NULL, "print the result as one JSON object"},
    {"no-db", NULL, "check only the file, not the database schema"},
    {NULL, NULL, NULL},
};

const ig_cli_cmd ig_cmd_check = {
    .name = "check",
    .summary = "lint a pipeline and check it against the database",
    .usage = "check PIPELINE [--json] [--no-db]",
    .help =
        "PIPELINE is a name (pipelines/NAME.yaml in the pipeline directory)\n"
        "or a path to a .yaml/.yml file. The file is loaded and every\n"
        "problem is listed as file:line:col: key.path: problem. Unless\n"
        "--no-db, the pipeline is also checked against the database in\n"
        "DATABASE_URL, read-only: tables and columns exist, types fit,\n"
        "lookup parents have their key and id columns, and a unique index\n"
        "matches each target's key and key_predicate (ON CONFLICT needs\n"
        "one). A database that cannot be reached is a failure.\n\n"
        "Exit 0 when there are no errors (warnings are allowed), 2\n"
        "otherwise.",
    .opts = check_opts,
    .min_args = 1,
    .max_args = 1,
    .run = run_check,
};
