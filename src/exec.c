/*
 * exec.c - the upsert executor; see exec.h for the SQL and guarantees.
 *
 * Statements are built once per pipeline from validated, quoted
 * identifiers and the pipeline author's predicate fragments; row values
 * only ever travel through COPY. The run of one batch is a recursion over
 * row subsets: each attempt sits in a savepoint; in a subset PostgreSQL
 * rejects, one pass of a PL/pgSQL loop applies the rows one at a time to
 * find the guilty ones (rolled back after), and where that cannot say,
 * the subset is split in two until the guilty rows stand alone.
 */
#include "exec.h"

#include "db.h"
#include "log.h"
#include "sql.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

/* ------------------------------------------------------------------ */
/* A growable string for building SQL (structure only, never data)     */

typedef struct sb {
    char *s;
    size_t len, cap;
} sb;

static void sb_add(sb *b, const char *fmt, ...) IG_PRINTF(2, 3);
static void sb_add(sb *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = ig_xrealloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ------------------------------------------------------------------ */
/* Per-target plan                                                     */

typedef struct lookup_plan {
    int col;            /* column index in the target */
    char *key_type;     /* SQL type of the parent's key column */
    int unique;         /* a unique index says a key names one parent row
                           (else the join counts them: see add_from_joins) */
} lookup_plan;

typedef struct target_plan {
    char **col_type;    /* per pipeline column: its type in the table with
                           the modifier ("character varying(5)"), or NULL
                           (not found): names the column of a 22001 or
                           22003 failure, which PostgreSQL does not */
    char **col_base;    /* the same without the modifier ("character
                           varying"); for text the pipeline does not type
                           going into a column text has no assignment cast
                           to, what it is cast to instead (plan_untyped,
                           col_cast) */
    char *upsert;       /* the INSERT .. ON CONFLICT statement */
    char *upsert_dedup; /* the same keeping the last row of each key, for
                           subsets where a key repeats; NULL unless
                           duplicates: last */
    char *upsert_bulk;  /* the upsert form counted by the table's statistics
                           (see stats_counts), for the batch's own runs;
                           NULL where that does not apply */
    char *upsert_sorted; /* the same (or the upsert, where the counts
                           cannot come from statistics) without ORDER BY,
                           for a whole batch the executor sent in key
                           order (sort_by_key); NULL where it cannot put
                           the rows in the order ORDER BY would (sortable) */
    char *upsert_merge; /* the same as a MERGE (build_merge), tried first
                           for a whole batch in key order: no speculative
                           insertion, no lock on an unchanged row; NULL
                           where it does not apply (mergeable) */
    char *merge_proof;  /* with upsert_merge: the EXPLAIN proving the
                           arbiter index, sent before it until a batch of
                           the import was applied (IG_EXEC_PROVE) */
    char *stats_oid;    /* the table's oid where its statistics count the
                           upsert's rows (a plain table without rules, and
                           no triggers but a foreign key's that write
                           nothing in an upsert: RI_NO_UPSERT_WRITES),
                           else NULL */
    char *missing;      /* rows whose lookups found no parent, or NULL */
    size_t nlookups;
    lookup_plan *lookups;
    int conflict_error; /* on_conflict: error (upsert returns failed rows) */
    int insert_trigger; /* ... into a table with a BEFORE INSERT row
                           trigger, which may change the key: the rows
                           whose key existed are told by counts, never by
                           matching the keys the INSERT returns */
    char *key_hash;     /* SELECT of the database's hash of each key in
                           text arrays $1.. (one per key column), or NULL:
                           the key's bytes compare as the database does */
    char **key_cast;    /* with key_hash, per key column: its type in the
                           table ("citext", maybe with COLLATE), or ""
                           for a looked-up id: what DISTINCT ON compares */
} target_plan;

struct ig_exec {
    const ig_pipeline *p;
    size_t ntargets;
    target_plan *t;
    char *direct;       /* COPY target (cols) FROM STDIN for the
                           insert-first path, or NULL where it does not
                           apply (see plan_direct) */
    char *proof;        /* the upsert over one row of NULLs instead of
                           the stage: what the insert-first path plans
                           to prove the upsert could run, before any
                           stage exists (NULL where direct is NULL) */
    int was_empty;      /* the target had no pages when planned */
    int *merge_off;     /* owned; set (atomically: writers share the
                           ig_exec) once the MERGE form failed for a
                           reason of the statement, not of a row: it is
                           not tried again (run_subset) */
    char *inexact;      /* the first key column whose equality in the
                           database may differ from its mapped bytes,
                           "target t, key column c (type)", or NULL */
    char *stage;        /* quoted stage table name */
    char *stage_row;    /* (SELECT NULL::integer AS _row, ..): a subquery
                           with the stage's columns and one row */
    const char *from;   /* what the statements read: stage or stage_row */
    char *create_stage; /* CREATE TEMP TABLE IF NOT EXISTS ... */
    char *copy;         /* COPY stage FROM STDIN */
    char *truncate;
    char *rows_fn;      /* CREATE OR REPLACE FUNCTION pg_temp.. of the
                           row pass (see build_rows_fn), or NULL */
    char *rows_call;    /* SELECT * FROM that function */
    int small_pass;     /* the row pass for subsets of any size (see
                           isolate) */
    unsigned long long stage_id;
};

static const char *sql_type(ig_type t)
{
    switch (t) {
    case IG_TYPE_TEXT: return "text";
    case IG_TYPE_INT: return "integer";
    case IG_TYPE_BIGINT: return "bigint";
    case IG_TYPE_NUMERIC: return "numeric";
    case IG_TYPE_BOOL: return "boolean";
    case IG_TYPE_DATE: return "date";
    case IG_TYPE_TIMESTAMP: return "timestamptz";
    case IG_TYPE_UUID: return "uuid";
    case IG_TYPE_JSON: return "jsonb";
    }
    return "text";
}

/* Parent table, key column and predicate of a lookup, whether it names
 * an earlier target or a table directly. */
static void lookup_parent(const ig_pipeline *p, const ig_lookup *lk,
                          const char **table, const char **key,
                          const char **pred)
{
    if (lk->target >= 0) {
        const ig_target *pt = ig_pipeline_target(p, (size_t)lk->target);
        *table = pt->table;
        *key = lk->key ? lk->key : pt->key[0];
        *pred = lk->predicate ? lk->predicate : pt->key_predicate;
    } else {
        *table = lk->table;
        *key = lk->key;
        *pred = lk->predicate;
    }
}

/* Ask the catalog for the type of table.column, e.g. "text". */
static int column_type(PGconn *conn, const char *table, const char *column,
                       char **out, ig_err *err)
{
    char *quoted = ig_sql_qualified(table); /* to_regclass folds bare names */
    const char *params[2] = {quoted, column};
    PGresult *res = NULL;
    int rc;

    *out = NULL;
    rc = ig_db_query(conn,
                     "SELECT to_regclass($1) IS NOT NULL, "
                     "(SELECT format_type(a.atttypid, a.atttypmod) "
                     "FROM pg_attribute a "
                     "WHERE a.attrelid = to_regclass($1) AND a.attname = $2 "
                     "AND a.attnum > 0 AND NOT a.attisdropped)",
                     2, params, &res, "looking up a column type", err);
    free(quoted);
    if (rc != IG_OK)
        return rc;
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        PQclear(res);
        return ig_err_set(err, IG_CONFIG,
                          "lookup: parent table \"%s\" does not exist (run "
                          "'ingot migrate up'?)", table);
    }
    if (PQgetisnull(res, 0, 1)) {
        PQclear(res);
        return ig_err_set(err, IG_CONFIG,
                          "lookup: column \"%s\" of table \"%s\" does not "
                          "exist", column, table);
    }
    *out = ig_xstrdup(PQgetvalue(res, 0, 1));
    PQclear(res);
    return IG_OK;
}

static char *stage_col(size_t t, size_t c)
{
    return ig_xasprintf("\"t%zu_%zu\"", t, c);
}

/* FROM stage s LEFT JOIN (parent) pN ON ... for every lookup of target ti */
static void add_from_joins(sb *b, const ig_exec *ex, size_t ti)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    const target_plan *tp = &ex->t[ti];

    sb_add(b, " FROM %s s", ex->from);
    for (size_t i = 0; i < tp->nlookups; i++) {
        const ig_column *c = &t->cols[tp->lookups[i].col];
        const char *table, *key, *pred;
        char *qt, *qk, *qid, *sc;

        lookup_parent(ex->p, &c->lookup, &table, &key, &pred);
        qt = ig_sql_qualified(table);
        qk = ig_db_quote_ident(key);
        qid = ig_db_quote_ident(c->lookup.id ? c->lookup.id : "id");
        sc = stage_col(ti, (size_t)tp->lookups[i].col);
        /* The predicate is the author's SQL over the parent's columns: it
         * goes inside a subquery so it cannot be ambiguous. Without a
         * unique index a key may name several parent rows, and a join
         * would write the row once for each: the lookup counts them
         * instead (n), and the id is NULL unless there is exactly one
         * (build_missing fails the row). Grouped, over the parent rows
         * with the subset's keys only, so that it hashes as the plain
         * join does (a LATERAL count per row scanned an unindexed parent
         * once per row). */
        if (tp->lookups[i].unique)
            sb_add(b,
                   " LEFT JOIN (SELECT %s AS id, %s AS key FROM %s%s%s%s) "
                   "p%zu ON p%zu.key = s.%s::%s",
                   qid, qk, qt, pred ? " WHERE (" : "", pred ? pred : "",
                   pred ? ")" : "", i, i, sc, tp->lookups[i].key_type);
        else
            sb_add(b,
                   " LEFT JOIN (SELECT q.key, CASE WHEN count(*) = 1 THEN "
                   "(array_agg(q.id))[1] END AS id, count(*) AS n FROM "
                   "(SELECT %s AS id, %s AS key FROM %s%s%s%s) q WHERE "
                   "q.key IN (SELECT s.%s::%s FROM %s s) GROUP BY q.key) "
                   "p%zu ON p%zu.key = s.%s::%s",
                   qid, qk, qt, pred ? " WHERE (" : "", pred ? pred : "",
                   pred ? ")" : "", sc, tp->lookups[i].key_type, ex->from, i,
                   i, sc, tp->lookups[i].key_type);
        free(qt);
        free(qk);
        free(qid);
        free(sc);
    }
}

/* Whether base (format_type without a modifier) takes text by an
 * assignment cast (pg_cast), so an INSERT of text into it needs no cast:
 * and "character" must not be one, it would mean character(1). */
static int takes_text(const char *base)
{
    static const char *const names[] = {"text", "character varying",
                                        "character", "name", "\"char\"",
                                        "regclass", "citext"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(base, names[i]) == 0)
            return 1;
    return 0;
}

/* The type column ci of target ti's staged text is cast to: its pipeline
 * type's, except that
 * - a timestamp going into a timestamp without time zone column is read
 *   as one, as PostgreSQL reads such input (an offset ignored, no time
 *   zone applied), not through timestamptz and the session's TimeZone;
 * - text the pipeline does not type, going into a column text has no
 *   assignment cast to, is cast as plan_untyped decided. */
static const char *col_cast(const ig_exec *ex, size_t ti, size_t ci)
{
    const ig_column *c = &ig_pipeline_target(ex->p, ti)->cols[ci];
    const char *have = ex->t[ti].col_type ? ex->t[ti].col_type[ci] : NULL;
    const char *base = ex->t[ti].col_base ? ex->t[ti].col_base[ci] : NULL;

    if (c->type == IG_TYPE_TIMESTAMP && have != NULL &&
        strncmp(have, "timestamp", 9) == 0 &&
        strstr(have, "without time zone") != NULL)
        return "timestamp";
    if (c->type == IG_TYPE_TEXT && base != NULL && !takes_text(base))
        return base;
    return sql_type(c->type);
}

/* Text the pipeline does not type, going into a column of a type text has
 * no assignment cast to (integer, an enum, a domain over one, ...): the
 * INSERT would not run. It is cast to the column's type by its bare name,
 * so its input function reads the value, as COPY's would, a value it
 * cannot read failing its row, and assignment then applies the column's
 * modifier with COPY's checks (numeric(p,s), timestamp(3), bit(n); an
 * explicit cast to it would cut a value instead). A domain is cast to its
 * base type, so that assignment checks its modifier and constraints. Where
 * the bare name would read the text otherwise than COPY (an interval
 * with fields reads "2" as seconds, character[] is character(1)[]), or
 * for a type that is not a plain one (arrays, composites, ranges), the
 * import is refused here, naming the column. */
static int plan_untyped(ig_exec *ex, size_t ti, PGconn *conn, ig_err *err)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    target_plan *tp = &ex->t[ti];

    for (size_t ci = 0; ci < t->n_cols; ci++) {
        const char *base = tp->col_base ? tp->col_base[ci] : NULL;
        const char *params[1];
        const char *typtype, *cat, *name, *mod;
        PGresult *res = NULL;
        int rc, ok;

        if (t->cols[ci].type != IG_TYPE_TEXT ||
            t->cols[ci].source == IG_COLSRC_LOOKUP || base == NULL ||
            takes_text(base))
            continue;
        params[0] = base; /* format_type's own spelling, without the
                             modifier to_regtype need not parse */
        rc = ig_db_query(conn,
                         "SELECT t.typtype, t.typcategory, "
                         "format_type(t.typbasetype, NULL), "
                         "format_type(t.typbasetype, t.typtypmod), "
                         "b.typtype, b.typcategory FROM pg_type t LEFT "
                         "JOIN pg_type b ON b.oid = t.typbasetype WHERE "
                         "t.oid = to_regtype($1)",
                         1, params, &res, "looking up a column's type", err);
        if (rc != IG_OK)
            return rc;
        ok = PQntuples(res) == 1;
        typtype = ok ? PQgetvalue(res, 0, 0) : "";
        cat = ok ? PQgetvalue(res, 0, 1) : "";
        name = base;
        mod = tp->col_type[ci];
        if (ok && typtype[0] == 'd') { /* a domain: its base type */
            typtype = PQgetvalue(res, 0, 4);
            cat = PQgetvalue(res, 0, 5);
            name = PQgetvalue(res, 0, 2);
            mod = PQgetvalue(res, 0, 3);
        }
        ok = ok && (typtype[0] == 'b' || typtype[0] == 'e') &&
             cat[0] != 'A' &&
             !(strcmp(name, "interval") == 0 && strcmp(mod, "interval") != 0 &&
               strncmp(mod, "interval(", 9) != 0);
        if (ok) { /* name may be col_base[ci] itself */
            char *cast = ig_xstrdup(takes_text(name) ? "text"
                                    : strcmp(name, "bit") == 0 ? "bit varying"
                                                               : name);
            free(tp->col_base[ci]);
            tp->col_base[ci] = cast;
        }
        PQclear(res);
        if (!ok)
            return ig_err_set(err, IG_CONFIG,
                              "target %s, column %s: the pipeline gives "
                              "text and the column is %s, which ingot does "
                              "not read text into as COPY would: declare the "
                              "column's type, or map it to a text column",
                              t->name, t->cols[ci].name, tp->col_type[ci]);
    }
    return IG_OK;
}

/* The value expression of column ci of target ti in the src CTE. */
static void add_col_expr(sb *b, const ig_exec *ex, size_t ti, size_t ci)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    const target_plan *tp = &ex->t[ti];
    const ig_column *c = &t->cols[ci];
    char *sc;

    if (c->source == IG_COLSRC_LOOKUP) {
        for (size_t i = 0; i < tp->nlookups; i++)
            if ((size_t)tp->lookups[i].col == ci)
                sb_add(b, "p%zu.id", i);
        return;
    }
    sc = stage_col(ti, ci);
    sb_add(b, "s.%s::%s", sc, col_cast(ex, ti, ci));
    free(sc);
}

/* The value a column gets on update, per its update rule. */
static void add_update_expr(sb *b, const ig_column *c, const char *qc)
{
    switch (c->update_rule) {
    case IG_UPDATE_OVERWRITE:
        sb_add(b, "EXCLUDED.%s", qc);
        break;
    case IG_UPDATE_KEEP:
        sb_add(b, "COALESCE(t.%s, EXCLUDED.%s)", qc, qc);
        break;
    case IG_UPDATE_COALESCE:
        sb_add(b, "COALESCE(EXCLUDED.%s, t.%s)", qc, qc);
        break;
    }
}

/* Index of target t's column named name (a key column: it exists). */
static size_t col_index(const ig_target *t, const char *name)
{
    size_t ci = 0;
    while (ci + 1 < t->n_cols && strcmp(t->cols[ci].name, name) != 0)
        ci++;
    return ci;
}

static int col_is_key(const ig_target *t, const ig_column *c)
{
    for (size_t k = 0; k < t->n_key; k++)
        if (strcmp(t->key[k], c->name) == 0)
            return 1;
    return 0;
}

/* "s._row AS <row_as>, <expr> AS "col", ..." for target ti (row_as NULL:
 * without the row). */
static void add_select_list(sb *b, const ig_exec *ex, size_t ti,
                            const char *row_as)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);

    if (row_as)
        sb_add(b, "s._row AS %s, ", row_as);
    for (size_t ci = 0; ci < t->n_cols; ci++) {
        char *q = ig_db_quote_ident(t->cols[ci].name);
        sb_add(b, "%s", ci ? ", " : "");
        add_col_expr(b, ex, ti, ci);
        sb_add(b, " AS %s", q);
        free(q);
    }
}

/* FROM the stage and parents, WHERE the row is eligible for target ti and
 * every non-NULL lookup found its parent. */
static void add_from_where(sb *b, const ig_exec *ex, size_t ti)
{
    const target_plan *tp = &ex->t[ti];

    add_from_joins(b, ex, ti);
    sb_add(b, " WHERE s._e%zu", ti);
    for (size_t i = 0; i < tp->nlookups; i++) {
        char *sc = stage_col(ti, (size_t)tp->lookups[i].col);
        sb_add(b, " AND (p%zu.id IS NOT NULL OR s.%s IS NULL)", i, sc);
        free(sc);
    }
}

static void add_select(sb *b, const ig_exec *ex, size_t ti,
                       const char *row_as)
{
    sb_add(b, "SELECT ");
    add_select_list(b, ex, ti, row_as);
    add_from_where(b, ex, ti);
}

/* "a", "b", .. : the target's columns, quoted, in pipeline order (the
 * order of the staged values). Appended to *b. */
static void add_col_list(sb *b, const ig_target *t)
{
    for (size_t ci = 0; ci < t->n_cols; ci++) {
        char *q = ig_db_quote_ident(t->cols[ci].name);
        sb_add(b, "%s%s", ci ? ", " : "", q);
        free(q);
    }
}

/* A column name for the src CTE of the on_conflict: error form that no
 * column of target t has (quoted, owned): base, or base with "_" added
 * until it is free. src carries the target's own column names, so a table
 * with a column named "_row" must not make its row number ambiguous. */
static char *free_name(const ig_target *t, const char *base)
{
    char *name = ig_xstrdup(base), *q;
    int taken = 1;

    while (taken) {
        taken = 0;
        for (size_t ci = 0; ci < t->n_cols && !taken; ci++)
            taken = strcmp(t->cols[ci].name, name) == 0;
        if (taken) {
            char *longer = ig_xasprintf("%s_", name);
            free(name);
            name = longer;
        }
    }
    q = ig_db_quote_ident(name);
    free(name);
    return q;
}

/* The update of target t's columns that conflict updates: the SET list
 * ("c" = <new value>, ..), the old values (t."c", ..) and the new ones,
 * appended to set, old and neu; returns how many columns. */
static int add_update_lists(const ig_target *t, sb *set, sb *old, sb *neu)
{
    int nupd = 0;

    for (size_t ci = 0; ci < t->n_cols; ci++) {
        const ig_column *c = &t->cols[ci];
        char *q;
        if (!c->update || col_is_key(t, c))
            continue;
        q = ig_db_quote_ident(c->name);
        sb_add(set, "%s%s = ", nupd ? ", " : "", q);
        add_update_expr(set, c, q);
        sb_add(old, "%st.%s", nupd ? ", " : "", q);
        sb_add(neu, "%s", nupd ? ", " : "");
        add_update_expr(neu, c, q);
        nupd++;
        free(q);
    }
    return nupd;
}

/* The forms of a target's upsert (build_upsert): the plain one, which
 * the row pass, the insert-first proof and `ingot check` embed; the one
 * keeping the last row of each key (duplicates: last); and, for the
 * batch's own runs, the plain one counted by the table's statistics
 * (stats_counts) and the one without ORDER BY for a stage in key order. */
enum upsert_form { UPSERT_PLAIN, UPSERT_DEDUP, UPSERT_BULK, UPSERT_SORTED };

/* The table's inserted, updated and deleted row counts in this
 * transaction, as PostgreSQL's statistics keep them (the pending counts:
 * since PostgreSQL 15 they may include earlier transactions of the
 * session, so only a difference means anything). */
#define STATS_INS "(pg_catalog.pg_stat_get_xact_tuples_inserted(%s) - " \
                  "pg_catalog.pg_stat_get_xact_tuples_deleted(%s))"
#define STATS_UPD "pg_catalog.pg_stat_get_xact_tuples_updated(%s)"

/* stats_counts: the statements around an upsert that count its rows by
 * the table's statistics instead of RETURNING every row into a CTE
 * (about 3% of the upsert at 10k rows, docs/performance.md). Before it,
 * the counts so far go into a setting local to the transaction; after
 * it, one row of (inserted, updated) is the difference, the shape the
 * RETURNING form gives. Exact where only the upsert writes the table: a
 * plain table without rules, whose only triggers are a foreign key's
 * that write nothing in an upsert (RI_NO_UPSERT_WRITES), in a session
 * that counts (track_counts) and may read the counts (tp->stats_oid). A
 * speculative insert undone by a concurrent one counts as inserted and
 * deleted. */
static void stats_before(sb *b, const char *oid)
{
    sb_add(b, "SELECT pg_catalog.set_config('ingot.counts', " STATS_INS
              "::text || ' ' || " STATS_UPD ", true); ",
           oid, oid, oid);
}

static void stats_after(sb *b, const char *oid)
{
    sb_add(b, "; SELECT " STATS_INS " - pg_catalog.split_part("
              "pg_catalog.current_setting('ingot.counts'), ' ', 1)::bigint, "
              STATS_UPD " - pg_catalog.split_part(pg_catalog.current_setting("
              "'ingot.counts'), ' ', 2)::bigint",
           oid, oid, oid);
}

static void build_upsert(ig_exec *ex, size_t ti, enum upsert_form form)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    target_plan *tp = &ex->t[ti];
    int dedup = form == UPSERT_DEDUP, sorted = form == UPSERT_SORTED;
    const char *stats = form == UPSERT_BULK || form == UPSERT_SORTED
                            ? tp->stats_oid
                            : NULL;
    sb b = {0};
    sb keys = {0}, cols = {0}, old = {0}, neu = {0}, dk = {0}, nul = {0};
    char *qt = ig_sql_qualified(t->table);
    /* the on_conflict: error form's row number and, per kept row, the
     * rows of its key (duplicates: last) */
    char *rn = free_name(t, "_row"), *rns = free_name(t, "_rows");
    int nupd = 0;

    for (size_t k = 0; k < t->n_key; k++) {
        char *q = ig_db_quote_ident(t->key[k]);
        sb_add(&keys, "%s%s", k ? ", " : "", q);
        /* DISTINCT ON compares by the table's types where the pipeline's
         * text would not (check_keys): over the stage, or over src. */
        if (tp->key_cast == NULL || tp->key_cast[k][0] == '\0') {
            sb_add(&dk, "%s%s%s", k ? ", " : "",
                   t->on_conflict == IG_ON_CONFLICT_ERROR ? "s." : "", q);
        } else if (t->on_conflict == IG_ON_CONFLICT_ERROR) {
            sb_add(&dk, "%ss.%s::%s", k ? ", " : "", q, tp->key_cast[k]);
        } else {
            sb_add(&dk, "%s(", k ? ", " : "");
            add_col_expr(&dk, ex, ti, col_index(t, t->key[k]));
            sb_add(&dk, ")::%s", tp->key_cast[k]);
        }
        if (t->on_conflict == IG_ON_CONFLICT_ERROR) {
            sb_add(&nul, "%ss.%s IS NULL", k ? " OR " : "", q);
        } else {
            sb_add(&nul, "%s(", k ? " OR " : "");
            add_col_expr(&nul, ex, ti, col_index(t, t->key[k]));
            sb_add(&nul, ") IS NULL");
        }
        free(q);
    }
    /* A key with a NULL value equals no other (the unique index holds any
     * number of them): DISTINCT ON must keep each such row. */
    sb_add(&dk, ", CASE WHEN %s THEN s.%s END", nul.s,
           t->on_conflict == IG_ON_CONFLICT_ERROR ? rn : "_row");
    add_col_list(&cols, t);

    if (t->on_conflict == IG_ON_CONFLICT_ERROR) {
        /* src / dedup are read twice below, so they stay CTEs. */
        sb_add(&b, "WITH src AS (");
        add_select(&b, ex, ti, rn);
        /* A kept row whose key exists fails, and so does every row of
         * its key it superseded (they carry the same key): all of them
         * in one go, not one rerun each. */
        if (t->duplicates == IG_DUPLICATES_LAST)
            sb_add(&b, "), dedup AS (SELECT DISTINCT ON (%s) *, "
                       "array_agg(s.%s) OVER (PARTITION BY %s ORDER BY "
                       "s.%s DESC ROWS BETWEEN UNBOUNDED PRECEDING AND "
                       "UNBOUNDED FOLLOWING) AS %s FROM src s ORDER BY %s, "
                       "s.%s DESC",
                   dk.s, rn, dk.s, rn, rns, dk.s, rn);
        else
            sb_add(&b, "), dedup AS (SELECT *, ARRAY[s.%s] AS %s FROM src s",
                   rn, rns);
        sb_add(&b, "), ins AS (INSERT INTO %s AS t (%s) SELECT %s FROM dedup "
                   "ORDER BY %s",
               qt, cols.s, cols.s, keys.s);
    } else if (dedup) {
        /* Keep the last row of each key (duplicates: last). */
        sb_add(&b, "WITH ins AS (INSERT INTO %s AS t (%s) SELECT %s FROM "
                   "(SELECT DISTINCT ON (%s) ",
               qt, cols.s, cols.s, dk.s);
        add_select_list(&b, ex, ti, NULL);
        add_from_where(&b, ex, ti);
        sb_add(&b, " ORDER BY %s, s._row DESC) d ORDER BY %s", dk.s,
               keys.s);
    } else {
        /* No CTE between the stage and the INSERT: nothing materialised. */
        if (stats)
            stats_before(&b, stats);
        else
            sb_add(&b, "WITH ins AS (");
        sb_add(&b, "INSERT INTO %s AS t (%s) SELECT ", qt, cols.s);
        add_select_list(&b, ex, ti, NULL);
        add_from_where(&b, ex, ti);
        /* Rows are locked in key order, so that imports writing the same
         * keys at once never deadlock: ORDER BY, or a stage the executor
         * filled in the same order (sortable, sort_by_key: a temp table's
         * seq scan reads its pages in order, and one COPY into a table
         * truncated in its transaction appends its rows in order; the
         * server then saves the Sort). */
        if (!sorted)
            sb_add(&b, " ORDER BY %s", keys.s);
    }
    sb_add(&b, " ON CONFLICT (%s)", keys.s);
    if (t->key_predicate)
        sb_add(&b, " WHERE %s", t->key_predicate);

    if (t->on_conflict == IG_ON_CONFLICT_UPDATE) {
        sb set = {0};
        nupd = add_update_lists(t, &set, &old, &neu);
        if (nupd > 0) {
            sb_add(&b, " DO UPDATE SET %s", set.s);
            if (t->touch) {
                char *q = ig_db_quote_ident(t->touch);
                sb_add(&b, ", %s = now()", q);
                free(q);
            }
            /* ROW() keeps a one-column list a row value. */
            sb_add(&b, " WHERE ROW(%s) IS DISTINCT FROM ROW(%s)", old.s,
                   neu.s);
            if (t->guard)
                sb_add(&b, " AND (%s)", t->guard);
        } else {
            sb_add(&b, " DO NOTHING");
        }
        free(set.s);
    } else {
        sb_add(&b, " DO NOTHING");
    }

    if (t->on_conflict == IG_ON_CONFLICT_ERROR) {
        /* Rows whose key already existed: their inserts did not happen.
         * Which ones is found by matching the keys ins returns; column 5
         * counts the kept rows so found, which the caller checks against
         * the counts (a BEFORE trigger that changes the key defeats the
         * matching). */
        sb_add(&b, " RETURNING %s), miss AS (SELECT d.%s FROM dedup d "
                   "WHERE NOT (", keys.s, rns);
        /* A key with a NULL equals none (it went in, or the counts tell);
         * the others by equality, which hashes: a nested loop of
         * IS NOT DISTINCT FROM cost 60 ms per 1000 rows. */
        for (size_t k = 0; k < t->n_key; k++) {
            char *q = ig_db_quote_ident(t->key[k]);
            sb_add(&b, "%sd.%s IS NULL", k ? " OR " : "", q);
            free(q);
        }
        sb_add(&b, ") AND NOT EXISTS (SELECT 1 FROM ins i WHERE ");
        for (size_t k = 0; k < t->n_key; k++) {
            /* in the table's type where the bytes do not decide (a
             * character(n) key ignores trailing spaces) */
            char *q = ig_db_quote_ident(t->key[k]);
            int cast = tp->key_cast != NULL && tp->key_cast[k][0] != '\0';
            sb_add(&b, "%si.%s = d.%s%s%s", k ? " AND " : "", q, q,
                   cast ? "::" : "", cast ? tp->key_cast[k] : "");
            free(q);
        }
        sb_add(&b, ")) SELECT (SELECT count(*) FROM src), "
                   "(SELECT count(*) FROM dedup), (SELECT count(*) FROM ins), "
                   "(SELECT string_agg(array_to_string(m.%s, ','), ',') "
                   "FROM miss m), (SELECT count(*) FROM miss)",
               rns);
        tp->conflict_error = 1;
    } else if (stats) {
        stats_after(&b, stats);
    } else {
        /* How many rows were eligible and how many keys they had is known
         * in C (exec counts them per subset): only the outcome is asked. */
        sb_add(&b, " RETURNING (t.xmax = 0) AS inserted) "
                   "SELECT count(*) FILTER (WHERE inserted), "
                   "count(*) FILTER (WHERE NOT inserted) FROM ins");
    }
    switch (form) {
    case UPSERT_PLAIN: tp->upsert = b.s; break;
    case UPSERT_DEDUP: tp->upsert_dedup = b.s; break;
    case UPSERT_BULK: tp->upsert_bulk = b.s; break;
    case UPSERT_SORTED: tp->upsert_sorted = b.s; break;
    }
    free(keys.s);
    free(dk.s);
    free(nul.s);
    free(cols.s);
    free(old.s);
    free(neu.s);
    free(qt);
    free(rn);
    free(rns);
}

/* Whether identifier `name` appears in SQL fragment `frag` as a word
 * (any case): conservative, a mention in a string literal counts too. */
static int mentions(const char *frag, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = frag; n > 0 && *p; p++) {
        unsigned char before = p > frag ? (unsigned char)p[-1] : ' ';
        unsigned char after;
        if (strncasecmp(p, name, n) != 0)
            continue;
        after = (unsigned char)p[n];
        if (!(isalnum(before) || before == '_' || before == '$' ||
              before >= 0x80) &&
            !(isalnum(after) || after == '_' || after == '$' || after >= 0x80))
            return 1;
    }
    return 0;
}

/* The column of a key predicate of the form `col IS NULL` (any case,
 * spaces and parentheses around it; col bare or double-quoted), into
 * name (size n), or 0 for any other predicate. */
static int pred_null_col(const char *pred, char *name, size_t n)
{
    const char *p = pred, *end = pred + strlen(pred), *w;
    size_t len = 0;
    int quoted = 0;

    while (p < end && (isspace((unsigned char)*p) || *p == '('))
        p++;
    while (end > p && (isspace((unsigned char)end[-1]) || end[-1] == ')'))
        end--;
    if (p < end && *p == '"') {
        quoted = 1;
        for (w = ++p; w < end && *w != '"'; w++)
            ;
        if (w >= end || memchr(p, '"', (size_t)(w - p)) != NULL)
            return 0;
        len = (size_t)(w - p);
        w++;
    } else {
        for (w = p; w < end && (isalnum((unsigned char)*w) || *w == '_');
             w++)
            ;
        len = (size_t)(w - p);
        if (len > 0 && isdigit((unsigned char)*p))
            return 0;
    }
    if (len == 0 || len >= n)
        return 0;
    memcpy(name, p, len);
    name[len] = '\0';
    if (!quoted)
        for (size_t i = 0; i < len; i++) /* an unquoted name folds */
            name[i] = (char)tolower((unsigned char)name[i]);
    while (w < end && isspace((unsigned char)*w))
        w++;
    if (end - w < 7 || strncasecmp(w, "is", 2) != 0 ||
        !isspace((unsigned char)w[2]))
        return 0;
    w += 2;
    while (w < end && isspace((unsigned char)*w))
        w++;
    return end - w == 4 && strncasecmp(w, "null", 4) == 0;
}

/* Whether a value of column type `type` (as format_type names it) equals
 * another exactly when the two are the same value: text in a collation
 * that compares bytes (as mergeable requires), integers, booleans, dates,
 * uuids -- not numeric (1.5 = 1.50), floats (0 = -0), intervals, jsonb
 * nor character(n) (trailing spaces). */
static int equal_is_same(const char *type)
{
    static const char *const same[] = {"text", "character varying",
                                       "smallint", "integer", "bigint",
                                       "boolean", "date", "uuid", NULL};

    for (size_t i = 0; same[i]; i++)
        if (strcmp(type, same[i]) == 0)
            return 1;
    return 0;
}

/* Whether the upsert's cast of a mapped value (col_cast) yields the
 * column's exact type (format_type's name for it, with any modifier):
 * then assigning it changes nothing. Text into an unbounded varchar is
 * the same bytes under the same comparisons. */
static int cast_is_type(const char *cast, const char *type)
{
    if (strcmp(cast, "timestamptz") == 0)
        cast = "timestamp with time zone";
    else if (strcmp(cast, "timestamp") == 0)
        cast = "timestamp without time zone";
    return strcmp(cast, type) == 0 ||
           (strcmp(cast, "text") == 0 &&
            strcmp(type, "character varying") == 0);
}

/* Whether target ti's batches may try the MERGE form (build_merge): a
 * server that has MERGE (PostgreSQL 15), the upsert read without ORDER
 * BY from a stage in key order (sortable: one target, keys compared as
 * their bytes) and counted by the table's statistics (stats_oid: no
 * trigger or rule that a MERGE would fire differently from an upsert),
 * no update guard (written for ON CONFLICT's EXCLUDED, which holds every
 * column of the table), and a key predicate that names no column the
 * pipeline maps: in MERGE's join both the table and the mapped row are
 * in scope, so such a name would be ambiguous. */
static int mergeable(const ig_exec *ex, size_t ti, PGconn *conn,
                     const PGresult *res)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    const target_plan *tp = &ex->t[ti];

    if (PQserverVersion(conn) < 150000 || tp->upsert_sorted == NULL ||
        tp->stats_oid == NULL || t->on_conflict == IG_ON_CONFLICT_ERROR ||
        t->guard != NULL)
        return 0;
    for (size_t ci = 0; t->key_predicate && ci < t->n_cols; ci++)
        if (mentions(t->key_predicate, t->cols[ci].name))
            return 0;
    /* ON CONFLICT looks for a conflict in a partial index only when the
     * proposed row meets its predicate; MERGE's join tests the predicate
     * on the table's rows alone. The two agree where the proposed row
     * always meets it: `col IS NULL` for a column the pipeline does not
     * map and that has no default (soft deletes). Any other predicate
     * keeps to the upsert. */
    if (t->key_predicate) {
        char pcol[128];
        int ok = 0;
        if (!pred_null_col(t->key_predicate, pcol, sizeof(pcol)))
            return 0;
        for (int r = 0; r < PQntuples(res); r++)
            if ((size_t)atol(PQgetvalue(res, r, 0)) == ti &&
                strcmp(PQgetvalue(res, r, 1), pcol) == 0)
                ok = PQgetvalue(res, r, 11)[0] != 't';
        for (size_t ci = 0; ci < t->n_cols; ci++)
            ok = ok && strcmp(t->cols[ci].name, pcol) != 0;
        if (!ok)
            return 0;
    }
    /* ON CONFLICT's EXCLUDED holds the proposed row in the table's types:
     * assigned, so a modifier rounds or refuses a value (numeric(8,2),
     * varchar(12)), and compared in the column's type and collation
     * (citext). The MERGE's excluded holds each value as the upsert's
     * SELECT casts it: the same only where that cast is to the column's
     * exact type, and the column has the database's collation. */
    for (size_t ci = 0; ci < t->n_cols; ci++) {
        if (tp->col_type == NULL || tp->col_type[ci] == NULL ||
            !cast_is_type(col_cast(ex, ti, ci), tp->col_type[ci]))
            return 0;
        for (int r = 0; r < PQntuples(res); r++)
            if ((size_t)atol(PQgetvalue(res, r, 0)) == ti &&
                strcmp(PQgetvalue(res, r, 1), t->cols[ci].name) == 0 &&
                strcmp(PQgetvalue(res, r, 3), "0") != 0 &&
                strcmp(PQgetvalue(res, r, 3), "100") != 0)
                return 0;
    }
    /* INSERT .. ON CONFLICT checks the row it proposes (the mapped
     * values, the defaults of the other columns) against the table's
     * NOT NULL and CHECK constraints and row security before it looks
     * for a conflict: a row whose key exists fails there even where the
     * row it would become, or leave unchanged, passes. MERGE checks only
     * the rows it writes. They agree where every column a constraint
     * reads holds the same value in the proposed row as in the row that
     * stays: a key column, or one the update overwrites (an unchanged
     * row equals the proposed one there, and passed when written). So:
     * no row security, not a partition (whose bounds the proposed row is
     * checked against), no CHECK not yet validated or reading the whole
     * row or no column, no generated column (computed for the proposed
     * row too); a column in a CHECK is one of those; a NOT NULL column
     * is one of those, or one the pipeline does not map that has a
     * default (one that yields NULL is not looked for: no row could
     * ever be inserted). */
    for (int r = 0; r < PQntuples(res); r++) {
        const char *name = PQgetvalue(res, r, 1);
        int notnull = PQgetvalue(res, r, 10)[0] == 't';
        int hasdef = PQgetvalue(res, r, 11)[0] == 't';
        int mapped = 0, stays = 0, checked = 0, same = 0;
        if ((size_t)atol(PQgetvalue(res, r, 0)) != ti)
            continue;
        if (PQgetvalue(res, r, 12)[0] == 't' ||
            PQgetvalue(res, r, 14)[0] == 't')
            return 0; /* a generated column; row security, a partition */
        /* the CHECKs' columns, "x" for one not validated */
        for (const char *p = PQgetvalue(res, r, 15); *p;) {
            char *end;
            long attnum = strtol(p, &end, 10);
            if (end == p)
                return 0; /* "x" */
            checked = checked || attnum == atol(PQgetvalue(res, r, 13));
            p = *end == ',' ? end + 1 : end;
        }
        for (size_t ci = 0; ci < t->n_cols && !mapped; ci++) {
            const ig_column *c = &t->cols[ci];
            if (strcmp(c->name, name) != 0)
                continue;
            mapped = 1;
            stays = col_is_key(t, c) ||
                    (t->on_conflict == IG_ON_CONFLICT_UPDATE && c->update &&
                     c->update_rule == IG_UPDATE_OVERWRITE);
            same = equal_is_same(PQgetvalue(res, r, 6));
        }
        /* (a row is unchanged when IS DISTINCT FROM finds its values
         * equal: the same values only where equal means the same) */
        if ((checked && !(stays && same)) ||
            (notnull && !stays && (mapped || !hasdef)))
            return 0;
    }
    return 1;
}

/* The MERGE form of target ti's upsert, for a whole batch in key order:
 *
 *   MERGE INTO ONLY table AS t USING (SELECT .. FROM stage s WHERE s._e0)
 *   AS excluded ON t.key = excluded.key AND (key predicate)
 *   WHEN MATCHED AND ROW(..) IS DISTINCT FROM ROW(..) THEN UPDATE SET ..
 *   WHEN NOT MATCHED THEN INSERT (..) VALUES (excluded..)
 *
 * The mapped row is named `excluded`, so the SET list and the IS
 * DISTINCT FROM test are the upsert's own. Against INSERT .. ON
 * CONFLICT it saves the speculative insertion of every new row and the
 * lock of every unchanged one: the statement ran 1.06x-1.15x as fast at
 * 10k to 1M rows (docs/performance.md). Around it, in the same round
 * trip:
 *
 * - until a batch of the import was applied (IG_EXEC_PROVE, as for the
 *   insert-first path), the proof that the upsert's arbiter exists
 *   (tp->merge_proof: EXPLAIN of an INSERT .. ON CONFLICT over no row):
 *   MERGE joins on the key, and only a unique index makes that join
 *   find at most one row per key, as ON CONFLICT does; without one the
 *   statements fail as the upsert would;
 * - the join method: a table larger than the stage is joined by a
 *   nested loop over the stage, probing the key's index per row (a hash
 *   of the table would read all of it every batch); a smaller one the
 *   planner may hash: in every plan looked at it hashed the table and
 *   kept the stage outer. With the stage outer, read in key order, rows
 *   are locked in key order as the upsert locks them (were the planner
 *   to hash the stage, a deadlock it caused would fall back as below).
 *   The planner's own settings come back after the MERGE.
 *
 * PostgreSQL 15's MERGE does not wait out a concurrent insert of the same
 * key the way ON CONFLICT does: it fails with a unique violation. On a
 * failure the executor rolls the form back (run_subset): a row at fault
 * is isolated with the upsert's forms; anything else (that unique
 * violation, a lock wait, a deadlock, a timeout, a statement PostgreSQL
 * will not run) runs the batch again as the upsert, and all but the
 * unique violation end the form for the import. */
static void build_merge(ig_exec *ex, size_t ti)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    target_plan *tp = &ex->t[ti];
    sb b = {0}, keys = {0}, nulls = {0}, on = {0}, set = {0}, old = {0},
       neu = {0};
    char *qt = ig_sql_qualified(t->table);
    int nupd = 0;

    for (size_t k = 0; k < t->n_key; k++) {
        char *q = ig_db_quote_ident(t->key[k]);
        sb_add(&keys, "%s%s", k ? ", " : "", q);
        sb_add(&on, "%st.%s = excluded.%s", k ? " AND " : "", q, q);
        sb_add(&nulls, "%sNULL", k ? ", " : "");
        free(q);
    }
    tp->merge_proof = ig_xasprintf(
        "EXPLAIN (COSTS OFF) INSERT INTO %s (%s) SELECT %s WHERE false ON "
        "CONFLICT (%s)%s%s%s DO NOTHING; ",
        qt, keys.s, nulls.s, keys.s, t->key_predicate ? " WHERE (" : "",
        t->key_predicate ? t->key_predicate : "",
        t->key_predicate ? ")" : "");
    stats_before(&b, tp->stats_oid);
    sb_add(&b, "SELECT pg_catalog.set_config('ingot.joins', "
               "pg_catalog.current_setting('enable_hashjoin') || ' ' || "
               "pg_catalog.current_setting('enable_mergejoin'), true), "
               "pg_catalog.set_config('enable_hashjoin', CASE WHEN j.big "
               "THEN 'off' ELSE pg_catalog.current_setting('enable_hashjoin') "
               "END, true), pg_catalog.set_config('enable_mergejoin', CASE "
               "WHEN j.big THEN 'off' ELSE pg_catalog.current_setting("
               "'enable_mergejoin') END, true) FROM (SELECT "
               "pg_catalog.pg_relation_size('%s'::pg_catalog.regclass) > "
               "pg_catalog.pg_relation_size("
               "'%s'::pg_catalog.regclass) AS big) j; ",
           tp->stats_oid, ex->stage);
    /* ONLY: the upsert's INSERT writes the table itself, never one that
     * inherits from it, and its conflicts are in the table's own index. */
    sb_add(&b, "MERGE INTO ONLY %s AS t USING (SELECT ", qt);
    add_select_list(&b, ex, ti, NULL);
    add_from_where(&b, ex, ti);
    /* OFFSET 0: a subquery of its own, so every row's every value is cast
     * as the upsert's INSERT casts them, a value it cannot read failing
     * its row also where the key exists (were it flattened, nothing would
     * promise a value is cast where no action reads it). */
    sb_add(&b, " OFFSET 0) AS excluded ON %s", on.s);
    if (t->key_predicate)
        sb_add(&b, " AND (%s)", t->key_predicate);
    if (t->on_conflict == IG_ON_CONFLICT_UPDATE) {
        nupd = add_update_lists(t, &set, &old, &neu);
    }
    if (nupd > 0) {
        sb_add(&b, " WHEN MATCHED AND ROW(%s) IS DISTINCT FROM ROW(%s) THEN "
                   "UPDATE SET %s",
               old.s, neu.s, set.s);
        if (t->touch) {
            char *q = ig_db_quote_ident(t->touch);
            sb_add(&b, ", %s = now()", q);
            free(q);
        }
    }
    sb_add(&b, " WHEN NOT MATCHED THEN INSERT (");
    add_col_list(&b, t);
    sb_add(&b, ") VALUES (");
    for (size_t ci = 0; ci < t->n_cols; ci++) {
        char *q = ig_db_quote_ident(t->cols[ci].name);
        sb_add(&b, "%sexcluded.%s", ci ? ", " : "", q);
        free(q);
    }
    sb_add(&b, "); SELECT pg_catalog.set_config('enable_hashjoin', "
               "pg_catalog.split_part(pg_catalog.current_setting("
               "'ingot.joins'), ' ', 1), true), pg_catalog.set_config("
               "'enable_mergejoin', pg_catalog.split_part("
               "pg_catalog.current_setting('ingot.joins'), ' ', 2), true)");
    stats_after(&b, tp->stats_oid);
    tp->upsert_merge = b.s;
    free(keys.s);
    free(nulls.s);
    free(on.s);
    free(set.s);
    free(old.s);
    free(neu.s);
    free(qt);
}

static void build_missing(ig_exec *ex, size_t ti)
{
    target_plan *tp = &ex->t[ti];
    sb b = {0};

    if (tp->nlookups == 0)
        return;
    sb_add(&b, "SELECT s._row");
    for (size_t i = 0; i < tp->nlookups; i++) {
        char *sc = stage_col(ti, (size_t)tp->lookups[i].col);
        sb_add(&b, ", (p%zu.id IS NULL AND s.%s IS NOT NULL)", i, sc);
        free(sc);
    }
    for (size_t i = 0; i < tp->nlookups; i++) { /* the keys, for messages */
        char *sc = stage_col(ti, (size_t)tp->lookups[i].col);
        sb_add(&b, ", s.%s", sc);
        free(sc);
    }
    for (size_t i = 0; i < tp->nlookups; i++) /* parent rows with the key */
        if (tp->lookups[i].unique)
            sb_add(&b, ", 1");
        else
            sb_add(&b, ", p%zu.n", i);
    add_from_joins(&b, ex, ti);
    sb_add(&b, " WHERE s._e%zu AND (", ti);
    for (size_t i = 0; i < tp->nlookups; i++) {
        char *sc = stage_col(ti, (size_t)tp->lookups[i].col);
        sb_add(&b, "%s(p%zu.id IS NULL AND s.%s IS NOT NULL)",
               i ? " OR " : "", i, sc);
        free(sc);
    }
    sb_add(&b, ") ORDER BY s._row");
    tp->missing = b.s;
}

static void build_stage(ig_exec *ex)
{
    sb cols = {0}, row = {0};
    XXH64_hash_t h;

    sb_add(&cols, "_row integer NOT NULL");
    sb_add(&row, "(SELECT NULL::integer AS _row");
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        sb_add(&cols, ", _e%zu boolean NOT NULL", ti);
        sb_add(&row, ", true AS _e%zu", ti);
    }
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(ex->p, ti);
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            char *sc = stage_col(ti, ci);
            sb_add(&cols, ", %s text", sc);
            sb_add(&row, ", NULL::text AS %s", sc);
            free(sc);
        }
    }
    sb_add(&row, ")");
    ex->stage_row = row.s;
    /* The name carries a hash of the layout, so pipelines sharing a pooled
     * connection never see each other's stage. */
    h = XXH64(cols.s, cols.len, 0);
    ex->stage_id = h ? h : 1; /* 0 means "no stage" in a pool tag */
    ex->stage = ig_xasprintf("\"ingot_stage_%016llx\"", (unsigned long long)h);
    ex->from = ex->stage;
    ex->create_stage = ig_xasprintf(
        "CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS",
        ex->stage, cols.s);
    ex->copy = ig_xasprintf("COPY %s FROM STDIN", ex->stage);
    ex->truncate = ig_xasprintf("TRUNCATE %s", ex->stage);
    free(cols.s);
}

/* Whether a lookup of a target by that target's own one-column key and
 * predicate: its upsert's ON CONFLICT needs the unique index that makes
 * the key name one row. */
static int lookup_is_unique(const ig_pipeline *p, const ig_lookup *lk)
{
    const ig_target *pt;

    if (lk->target < 0)
        return 0;
    pt = ig_pipeline_target(p, (size_t)lk->target);
    return pt->n_key == 1 &&
           (lk->key == NULL || strcmp(lk->key, pt->key[0]) == 0) &&
           (lk->predicate == NULL ||
            (pt->key_predicate != NULL &&
             strcmp(lk->predicate, pt->key_predicate) == 0));
}

/* Whether a unique index makes key name at most one row of table under
 * pred: PostgreSQL infers an ON CONFLICT arbiter exactly when one does
 * (the predicate implied, as for the upserts). Planned, never run: a
 * failure to plan it other than "no such index" (no INSERT privilege on
 * a table only looked up, say) answers no, which costs the lookup a
 * count, never a wrong row. */
static int probe_unique(PGconn *conn, const char *table, const char *key,
                        const char *pred)
{
    char *qt = ig_sql_qualified(table), *qk = ig_db_quote_ident(key);
    int in_tx = PQtransactionStatus(conn) == PQTRANS_INTRANS;
    char *sql = ig_xasprintf("%sEXPLAIN INSERT INTO %s (%s) SELECT %s FROM "
                             "%s WHERE false ON CONFLICT (%s)%s%s%s DO "
                             "NOTHING",
                             in_tx ? "SAVEPOINT ig_probe; " : "", qt, qk, qk,
                             qt, qk, pred ? " WHERE (" : "", pred ? pred : "",
                             pred ? ")" : "");
    PGresult *res = PQexec(conn, sql);
    int unique = PQresultStatus(res) == PGRES_TUPLES_OK;

    PQclear(res);
    if (in_tx) {
        res = PQexec(conn, "ROLLBACK TO SAVEPOINT ig_probe; "
                           "RELEASE SAVEPOINT ig_probe");
        PQclear(res);
    }
    free(sql);
    free(qt);
    free(qk);
    return unique;
}

static int plan_lookups(ig_exec *ex, PGconn *conn, size_t ti, ig_err *err)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    target_plan *tp = &ex->t[ti];

    tp->lookups = ig_xcalloc(t->n_cols ? t->n_cols : 1, sizeof(lookup_plan));
    for (size_t ci = 0; ci < t->n_cols; ci++) {
        const ig_column *c = &t->cols[ci];
        const char *table, *key, *pred;
        lookup_plan *lp;
        int rc;

        if (c->source != IG_COLSRC_LOOKUP)
            continue;
        lp = &tp->lookups[tp->nlookups++];
        lp->col = (int)ci;
        lookup_parent(ex->p, &c->lookup, &table, &key, &pred);
        rc = column_type(conn, table, key, &lp->key_type, err);
        if (rc != IG_OK)
            return ig_err_prefix(err, "target %s, column %s", t->name,
                                 c->name);
        lp->unique = lookup_is_unique(ex->p, &c->lookup) ||
                     probe_unique(conn, table, key, pred);
    }
    return IG_OK;
}

/* Does a column of catalog type `have` read a staged value exactly as
 * the upsert's `s.col::want` would? Every cast from text used here is an
 * I/O conversion, so the same input function parses the value; a type
 * modifier (varchar(n), numeric(p,s)) is applied the same way by COPY's
 * input and by the assignment cast. Anything else (domains, timestamp
 * without time zone, ...) is left to the upsert. */
static int same_input(const char *want, const char *have)
{
    if (strcmp(want, "text") == 0)
        return strcmp(have, "text") == 0 ||
               strcmp(have, "character varying") == 0 ||
               strcmp(have, "character") == 0;
    if (strcmp(want, "timestamptz") == 0)
        return strcmp(have, "timestamp with time zone") == 0;
    if (strcmp(want, "timestamp") == 0)
        return strcmp(have, "timestamp without time zone") == 0;
    return strcmp(want, have) == 0;
}

/* Target ti's upsert (the form without DISTINCT ON) reading `from`
 * instead of the stage. Owned by the caller. */
static char *upsert_over(ig_exec *ex, size_t ti, const char *from)
{
    char *upsert = ex->t[ti].upsert, *sql;

    ex->t[ti].upsert = NULL;
    ex->from = from;
    build_upsert(ex, ti, UPSERT_PLAIN);
    sql = ex->t[ti].upsert;
    ex->t[ti].upsert = upsert;
    ex->from = ex->stage;
    return sql;
}

/* ex->proof: target 0's upsert, built over ex->stage_row. */
static void build_proof(ig_exec *ex)
{
    ex->proof = upsert_over(ex, 0, ex->stage_row);
}

/* The row pass: a PL/pgSQL function in pg_temp that reads the stage in
 * row order and runs every target's statements for one row at a time,
 * each row in its own subtransaction (an exception block), and returns
 * the rows that failed with PostgreSQL's reason. A subset of n rows with
 * k bad ones costs one round trip and about two to three times its
 * upsert, where bisection costs about 2k log2(n/k) COPYs and upserts. The
 * statements are the batch's own, reading a one-row subquery of the
 * loop's record (its fields reach them as parameters, never as text)
 * instead of the stage. The function is created once per session (its
 * name is a hash of its text, so pipelines sharing a connection never
 * share one) and kept: PL/pgSQL keeps every function it compiled, so one
 * per pass would grow the backend without bound.
 *
 * A row the batch would leave out goes back without a trace: one whose
 * lookup finds no parent raises ROWS_SKIP, which undoes its other targets'
 * writes (in a batch it writes nothing) and is not reported (the batch's
 * own query reports it). One whose key exists under on_conflict: error
 * (its upsert inserted nothing: counts, which no trigger changes) raises
 * ROWS_EXISTS, undone the same way and reported as ALREADY_EXISTS.
 * Transient failures are raised again: they end the pass at once.
 * NULL when a pipeline fragment contains one of the quote tags. */
#define ROWS_TAG "$ingot_rows$"
#define ROWS_FN_TAG "$ingot_fn$"
#define ROWS_DO_TAG "$ingot_do$"
#define ROWS_SKIP "IGX01"
#define ROWS_EXISTS "IGX02"

static size_t occurrences(const char *s, const char *sub)
{
    size_t n = 0;

    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

/* Target ti's key over the stage row s, as the table compares it (a
 * looked-up key as the parent's key type), then a term that makes every
 * row with a NULL in its key a key of its own. */
static void add_key_exprs(sb *b, const ig_exec *ex, size_t ti)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    const target_plan *tp = &ex->t[ti];
    sb nul = {0};

    for (size_t k = 0; k < t->n_key; k++) {
        size_t ci = col_index(t, t->key[k]);
        char *sc = stage_col(ti, ci);
        const char *lkt = NULL;
        for (size_t i = 0; i < tp->nlookups; i++)
            if ((size_t)tp->lookups[i].col == ci)
                lkt = tp->lookups[i].key_type;
        if (lkt != NULL)
            sb_add(b, "s.%s::%s, ", sc, lkt);
        else if (tp->key_cast != NULL && tp->key_cast[k][0] != '\0')
            sb_add(b, "(s.%s::%s)::%s, ", sc, col_cast(ex, ti, ci),
                   tp->key_cast[k]);
        else
            sb_add(b, "s.%s::%s, ", sc, col_cast(ex, ti, ci));
        sb_add(&nul, "%ss.%s IS NULL", k ? " OR " : "", sc);
        free(sc);
    }
    sb_add(b, "CASE WHEN %s THEN s._row END", nul.s);
    free(nul.s);
}

/* ", row_number() OVER (..) = 1 AS _wN": whether the stage row s is the
 * last of its key among the rows eligible for target ti (duplicates:
 * last), as the upsert's DISTINCT ON keeps it (add_key_exprs). */
static void add_last_of_key(sb *b, const ig_exec *ex, size_t ti)
{
    sb_add(b, ", row_number() OVER (PARTITION BY s._e%zu, ", ti);
    add_key_exprs(b, ex, ti);
    sb_add(b, " ORDER BY s._row DESC) = 1 AS _w%zu", ti);
}

/* The row pass's statements for target ti of one row (see build_rows_fn):
 * its missing-parent check, then its upsert; with swallow (a condition),
 * the upsert may fail under it without failing the row. */
static void add_row_target(sb *fn, ig_exec *ex, size_t ti, const char *rec,
                           const char *transient, const char *swallow)
{
    target_plan *tp = &ex->t[ti];
    char *sql = upsert_over(ex, ti, rec);
    const char *into = tp->conflict_error
                           ? "ig_c1, ig_c2, ig_c3, ig_c4, ig_c5"
                           : "ig_x";

    sb_add(fn, "ig_t := %zu; ", ti);
    if (tp->nlookups > 0) {
        /* build_missing over the row: "SELECT s._row, .." -> PERFORM */
        char *keep = tp->missing;
        tp->missing = NULL;
        ex->from = rec;
        build_missing(ex, ti);
        ex->from = ex->stage;
        sb_add(fn, "PERFORM %s; IF FOUND THEN RAISE SQLSTATE '" ROWS_SKIP
                   "'; END IF; ",
               tp->missing + strlen("SELECT "));
        free(tp->missing);
        tp->missing = keep;
    }
    if (swallow)
        sb_add(fn, "IF %s THEN BEGIN %s INTO %s; EXCEPTION WHEN OTHERS OR ASSERT_FAILURE THEN "
                   "IF SQLSTATE IN (%s) THEN RAISE; END IF; END; ELSE ",
               swallow, sql, into, transient);
    sb_add(fn, "%s INTO %s; ", sql, into);
    /* Kept and not inserted: its key existed -- unless an earlier row of
     * its key went in during this pass (a parent's, applied for its
     * lookups): then the batch's counts decide. */
    if (tp->conflict_error)
        sb_add(fn, "IF ig_c3 < ig_c2 THEN RAISE SQLSTATE '%s'; END IF; ",
               swallow ? ROWS_SKIP : ROWS_EXISTS);
    if (swallow)
        sb_add(fn, "END IF; ");
    free(sql);
}

static void build_rows_fn(ig_exec *ex)
{
    sb rec = {0}, body = {0}, last = {0}, transient = {0};
    const char *const *ts = ig_db_transient_states();

    int walk = ex->ntargets == 1 &&
               ig_pipeline_target(ex->p, 0)->duplicates ==
                   IG_DUPLICATES_LAST &&
               ig_pipeline_target(ex->p, 0)->n_key > 0;

    for (size_t i = 0; ts[i]; i++)
        sb_add(&transient, "%s'%s'", i ? ", " : "", ts[i]);
    /* One table under duplicates: last: the rows in key order (the
     * batch's), each key's rows from the last back, until one applies:
     * the row a batch would keep once the later ones failed, in one pass
     * however many of a key fail. */
    /* A row another of its key follows in the subset (duplicates: last)
     * is not applied by the upsert, so the pass does not try it -- except
     * in a target others look up, where a later target's lookup in this
     * row needs the parent this row's own values make (the batch makes
     * every parent first): there it is applied, and a failure ignored,
     * since the batch does not apply its values. */
    sb_add(&rec, "(SELECT ig_rec._row AS _row");
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(ex->p, ti);
        int windowed = !walk && t->duplicates == IG_DUPLICATES_LAST &&
                       t->n_key > 0;
        if (windowed)
            add_last_of_key(&last, ex, ti);
        if (windowed && !ig_pipeline_is_parent(ex->p, ti))
            sb_add(&rec, ", ig_rec._e%zu AND ig_rec._w%zu AS _e%zu", ti, ti,
                   ti);
        else
            sb_add(&rec, ", ig_rec._e%zu AS _e%zu", ti, ti);
    }
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(ex->p, ti);
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            char *sc = stage_col(ti, ci);
            sb_add(&rec, ", ig_rec.%s AS %s", sc, sc);
            free(sc);
        }
    }
    sb_add(&rec, ")");
    /* #variable_conflict use_column: a name that is also a column of the
     * author's tables (in a guard, say) stays the column. */
    sb_add(&body,
           "RETURNS TABLE (ig_row integer, ig_target integer, ig_state text, "
           "ig_constraint text, ig_column text, ig_message text, "
           "ig_detail text) LANGUAGE plpgsql AS " ROWS_TAG
           "\n#variable_conflict use_column\n"
           "DECLARE ig_rec record; ig_x record; ig_t integer; "
           "ig_c1 bigint; ig_c2 bigint; ig_c3 bigint; ig_c4 text; "
           "ig_c5 bigint; "
           "ig_done bigint := 0; BEGIN FOR ig_rec IN ");
    if (walk) {
        sb_add(&body, "SELECT s.*, dense_rank() OVER (ORDER BY ");
        add_key_exprs(&body, ex, 0);
        sb_add(&body, ") AS ig_g FROM %s s WHERE s._e0 ORDER BY ", ex->stage);
        add_key_exprs(&body, ex, 0);
        sb_add(&body, ", s._row DESC LOOP CONTINUE WHEN ig_rec.ig_g = "
                      "ig_done; BEGIN ");
    } else {
        sb_add(&body, "SELECT s.*%s FROM %s s ORDER BY s._row LOOP BEGIN ",
               last.s ? last.s : "", ex->stage);
    }
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(ex->p, ti);
        char *swallow = NULL;
        if (t->duplicates == IG_DUPLICATES_LAST && t->n_key > 0 &&
            ig_pipeline_is_parent(ex->p, ti))
            swallow = ig_xasprintf("NOT ig_rec._w%zu", ti);
        add_row_target(&body, ex, ti, rec.s, transient.s, swallow);
        free(swallow);
    }
    if (walk)
        sb_add(&body, "ig_done := ig_rec.ig_g; ");
    sb_add(&body,
           "EXCEPTION WHEN OTHERS OR ASSERT_FAILURE THEN GET STACKED DIAGNOSTICS "
           "ig_state = RETURNED_SQLSTATE, ig_constraint = CONSTRAINT_NAME, "
           "ig_column = COLUMN_NAME, ig_message = MESSAGE_TEXT, "
           "ig_detail = PG_EXCEPTION_DETAIL; "
           "IF ig_state IN (%s) OR left(ig_state, 2) = '08' THEN RAISE; "
           "END IF; IF ig_state <> '" ROWS_SKIP "' THEN "
           "ig_row := ig_rec._row; ig_target := ig_t; RETURN NEXT; END IF; "
           "END; END LOOP; END " ROWS_TAG,
           transient.s);
    /* Its own tag opens and closes the body, no author fragment holds a
     * tag. */
    if (occurrences(body.s, ROWS_TAG) == 2 &&
        occurrences(body.s, ROWS_FN_TAG) == 0 &&
        occurrences(body.s, ROWS_DO_TAG) == 0) {
        XXH64_hash_t h = XXH64(body.s, body.len, 0);
        char *name = ig_xasprintf("pg_temp.\"ingot_rows_%016llx\"",
                                  (unsigned long long)h);
        ex->rows_fn = ig_xasprintf(
            "SAVEPOINT ig_fn; DO " ROWS_DO_TAG " BEGIN IF to_regprocedure("
            "'%s()') IS NULL THEN EXECUTE " ROWS_FN_TAG
            "CREATE FUNCTION %s() %s" ROWS_FN_TAG "; END IF; END " ROWS_DO_TAG
            "; RELEASE SAVEPOINT ig_fn",
            name, name, body.s);
        ex->rows_call = ig_xasprintf("SELECT * FROM %s()", name);
        free(name);
    }
    free(body.s);
    free(rec.s);
    free(last.s);
    free(transient.s);
}

/* The triggers that may be on a table whose statistics count the
 * upsert's rows: a foreign key's that do not write during an upsert. Its
 * checks only read (the child's check of its parent; the parent's NO
 * ACTION and RESTRICT checks of its children), and its ON DELETE actions
 * fire on deletes only. Its ON UPDATE CASCADE, SET NULL and SET DEFAULT
 * write the children, which may be the table itself. */
#define RI_NO_UPSERT_WRITES                                                    \
    "'pg_catalog.\"RI_FKey_check_ins\"()'::regprocedure, "                     \
    "'pg_catalog.\"RI_FKey_check_upd\"()'::regprocedure, "                     \
    "'pg_catalog.\"RI_FKey_noaction_del\"()'::regprocedure, "                  \
    "'pg_catalog.\"RI_FKey_noaction_upd\"()'::regprocedure, "                  \
    "'pg_catalog.\"RI_FKey_restrict_del\"()'::regprocedure, "                  \
    "'pg_catalog.\"RI_FKey_restrict_upd\"()'::regprocedure, "                  \
    "'pg_catalog.\"RI_FKey_cascade_del\"()'::regprocedure, "                   \
    "'pg_catalog.\"RI_FKey_setnull_del\"()'::regprocedure, "                   \
    "'pg_catalog.\"RI_FKey_setdefault_del\"()'::regprocedure"

/* Columns of every target table, one query: per row the target's index,
 * the column's name, its type (format_type without the modifier), its
 * collation's oid, whether the table has no pages at all
 * (pg_relation_size is a stat, not a scan; a partitioned table counts as
 * empty), whether the insert-first path may write into it (see
 * plan_direct), its type with the modifier ("character(3)"), whether
 * the table's statistics count the upsert's rows (stats_counts: a plain
 * table without rules whose only triggers are RI_NO_UPSERT_WRITES, and
 * the session counts and may read the counts), the table's oid, and
 * whether the database's default collation (the stage's text columns',
 * so what the upserts' ORDER BY uses) orders text by the bytes ingot
 * sends: C, POSIX or C.UTF-8 from the C library, with no conversion of
 * those UTF-8 bytes (client and server UTF8, or a SQL_ASCII server; in
 * WIN1252, say, the euro sign sorts before e-acute, in UTF-8 after:
 * sortable); then, for the MERGE form (mergeable), whether the column is
 * NOT NULL, whether it has a default (or is an identity), whether it is
 * generated, its number, whether the table has row security or is a
 * partition, and the columns of the table's CHECK constraints ("2,5",
 * "x" for one not validated or reading the whole row or no column; NULL
 * without any: pg_class.relchecks spares the query then). */
static int table_columns(const ig_exec *ex, PGconn *conn, PGresult **res,
                         ig_err *err)
{
    sb q = {0};
    char **names = ig_xcalloc(ex->ntargets ? ex->ntargets : 1,
                              sizeof(*names));
    int rc;

    sb_add(&q, "SELECT t.ord, a.attname, format_type(a.atttypid, NULL), "
               "a.attcollation::oid, c.relkind = 'p' OR (c.relkind = 'r' "
               "AND pg_relation_size(c.oid) = 0), c.relkind IN ('r', 'p') "
               "AND NOT c.relhasrules AND NOT EXISTS (SELECT 1 FROM "
               "pg_index i WHERE i.indrelid = c.oid AND NOT i.indimmediate), "
               "format_type(a.atttypid, a.atttypmod), c.relkind = 'r' AND "
               "NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = "
               "c.oid AND g.tgfoid NOT IN (" RI_NO_UPSERT_WRITES ")) AND "
               "NOT c.relhasrules AND "
               "current_setting('track_counts')::boolean AND "
               "coalesce(has_function_privilege(to_regprocedure("
               "'pg_catalog.pg_stat_get_xact_tuples_inserted(oid)'), "
               "'EXECUTE') AND has_function_privilege(to_regprocedure("
               "'pg_catalog.pg_stat_get_xact_tuples_deleted(oid)'), "
               "'EXECUTE') AND has_function_privilege(to_regprocedure("
               "'pg_catalog.pg_stat_get_xact_tuples_updated(oid)'), "
               "'EXECUTE'), false), c.oid, (SELECT d.datcollate IN ('C', "
               "'POSIX', 'C.UTF-8', 'C.utf8') AND coalesce(to_jsonb(d) ->> "
               "'datlocprovider', 'c') = 'c' FROM pg_database d WHERE "
               "d.datname = current_database()) AND current_setting("
               "'client_encoding') = 'UTF8' AND current_setting("
               "'server_encoding') IN ('UTF8', 'SQL_ASCII'), a.attnotnull, "
               "a.atthasdef OR a.attidentity <> '', a.attgenerated <> '', "
               "a.attnum, c.relrowsecurity OR c.relispartition, CASE WHEN "
               "c.relchecks > 0 THEN (SELECT string_agg(CASE WHEN "
               "k.convalidated AND k.conkey IS NOT NULL AND NOT 0 = ANY "
               "(k.conkey) THEN array_to_string(k.conkey, ',') ELSE 'x' END, "
               "',') FROM "
               "pg_constraint k WHERE k.conrelid = c.oid AND k.contype = "
               "'c') END "
               "FROM (VALUES ");
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        names[ti] = ig_sql_qualified(ig_pipeline_target(ex->p, ti)->table);
        sb_add(&q, "%s($%zu::text, %zu)", ti ? ", " : "", ti + 1, ti);
    }
    sb_add(&q, ") AS t(name, ord) JOIN pg_attribute a ON a.attrelid = "
               "to_regclass(t.name) AND a.attnum > 0 AND NOT a.attisdropped "
               "JOIN pg_class c ON c.oid = a.attrelid");
    rc = ig_db_query(conn, q.s, (int)ex->ntargets,
                     (const char *const *)names, res,
                     "looking up column types", err);
    for (size_t ti = 0; ti < ex->ntargets; ti++)
        free(names[ti]);
    free(names);
    free(q.s);
    return rc;
}

/* Refuse, before anything is read or written, a target whose table or
 * one of whose columns the catalog query (res) did not find: the first
 * batch would otherwise fail on it after the reading started. */
static int check_tables(const ig_exec *ex, const PGresult *res, ig_err *err)
{
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(ex->p, ti);
        int found = 0;

        for (int r = 0; r < PQntuples(res) && !found; r++)
            found = (size_t)atol(PQgetvalue(res, r, 0)) == ti;
        if (!found)
            return ig_err_set(err, IG_CONFIG,
                              "target %s: table %s does not exist (run "
                              "'ingot migrate up'?)", t->name, t->table);
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            found = 0;
            for (int r = 0; r < PQntuples(res) && !found; r++)
                found = (size_t)atol(PQgetvalue(res, r, 0)) == ti &&
                        strcmp(PQgetvalue(res, r, 1), t->cols[ci].name) == 0;
            if (!found)
                return ig_err_set(err, IG_CONFIG,
                                  "target %s, column %s: table %s has no "
                                  "such column", t->name, t->cols[ci].name,
                                  t->table);
        }
        if (t->touch != NULL) {
            found = 0;
            for (int r = 0; r < PQntuples(res) && !found; r++)
                found = (size_t)atol(PQgetvalue(res, r, 0)) == ti &&
                        strcmp(PQgetvalue(res, r, 1), t->touch) == 0;
            if (!found)
                return ig_err_set(err, IG_CONFIG,
                                  "target %s: touch column %s: table %s has "
                                  "no such column", t->name, t->touch,
                                  t->table);
        }
    }
    return IG_OK;
}

/* Keep each pipeline column's type with its modifier (column 6 of the
 * catalog query) for the messages of failed rows. */
static void note_types(ig_exec *ex, const PGresult *res)
{
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(ex->p, ti);

        ex->t[ti].col_type = ig_xcalloc(t->n_cols ? t->n_cols : 1,
                                        sizeof(char *));
        ex->t[ti].col_base = ig_xcalloc(t->n_cols ? t->n_cols : 1,
                                        sizeof(char *));
        for (size_t ci = 0; ci < t->n_cols; ci++)
            for (int r = 0; r < PQntuples(res); r++)
                if ((size_t)atol(PQgetvalue(res, r, 0)) == ti &&
                    strcmp(PQgetvalue(res, r, 1), t->cols[ci].name) == 0) {
                    ex->t[ti].col_type[ci] =
                        ig_xstrdup(PQgetvalue(res, r, 6));
                    ex->t[ti].col_base[ci] =
                        ig_xstrdup(PQgetvalue(res, r, 2));
                }
    }
}

/* Whether type name `have` (format_type, maybe with a modifier) is
 * `name`. */
static int type_is(const char *have, const char *name)
{
    size_t n = strlen(name);
    return strncmp(have, name, n) == 0 && (have[n] == '\0' || have[n] == '(');
}

/* Whether keys the database holds in a column of type `have` (det: its
 * collation is deterministic) are equal exactly when the canonical text
 * the pipeline maps them to (declared type `want`) is: text stores that
 * text as is, and the rules spell every value of these types one way.
 * Not so for citext (case), character(n) (trailing spaces),
 * nondeterministic collations, domains, numeric and timestamps. */
static int exact_key(ig_type want, const char *have, int det)
{
    if (type_is(have, "text") || type_is(have, "character varying"))
        return det;
    switch (want) {
    case IG_TYPE_INT:
    case IG_TYPE_BIGINT:
        return type_is(have, "integer") || type_is(have, "bigint") ||
               type_is(have, "smallint");
    case IG_TYPE_BOOL: return type_is(have, "boolean");
    case IG_TYPE_UUID: return type_is(have, "uuid");
    case IG_TYPE_DATE: return type_is(have, "date");
    default: return 0;
    }
}

/* Whether the database can hash keys of type `have` from any text (the
 * cast from text cannot fail) by its own equality: the string types
 * exact_key leaves out. */
static int hashable_key(const char *have)
{
    return type_is(have, "citext") || type_is(have, "character") ||
           type_is(have, "text") || type_is(have, "character varying");
}

/* Collation oid coll: deterministic? (*name: its quoted name, owned, for
 * a nondeterministic one.) The default, C and POSIX collations are, and
 * are answered without asking; only an ICU collation can be
 * nondeterministic. */
static int deterministic(PGconn *conn, const char *coll, char **name,
                         ig_err *err, int *rc)
{
    const char *params[1] = {coll};
    PGresult *res = NULL;
    int det;

    *rc = IG_OK;
    *name = NULL;
    if (strcmp(coll, "0") == 0 || strcmp(coll, "100") == 0 ||
        strcmp(coll, "950") == 0 || strcmp(coll, "951") == 0)
        return 1;
    *rc = ig_db_query(conn,
                      "SELECT c.collisdeterministic, format('%I.%I', "
                      "n.nspname, c.collname) FROM pg_collation c JOIN "
                      "pg_namespace n ON n.oid = c.collnamespace "
                      "WHERE c.oid = $1::oid",
                      1, params, &res, "looking up a collation", err);
    if (*rc != IG_OK)
        return 0;
    det = PQntuples(res) == 0 || PQgetvalue(res, 0, 0)[0] == 't';
    if (!det)
        *name = ig_xstrdup(PQgetvalue(res, 0, 1));
    PQclear(res);
    return det;
}

static void free_casts(char **casts, size_t n)
{
    for (size_t k = 0; casts && k < n; k++)
        free(casts[k]);
    free(casts);
}

/* How target ti's keys compare: by their mapped bytes when each key
 * column is exact_key; else, when each one the bytes do not decide is
 * hashable_key, by the database's hash of the key (tp->key_hash: the
 * mapper asks for it once per batch); else ex->inexact names the column,
 * and the caller warns and keeps to one writer. A key column looked up by
 * natural key is judged by the parent's key type (its collation taken as
 * deterministic). */
static int check_keys(ig_exec *ex, size_t ti, PGconn *conn,
                      const PGresult *res, ig_err *err)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    sb row = {0}, cols = {0};
    int hash = 0, nohash = 0;
    char *inexact = NULL;
    char **casts = ig_xcalloc(t->n_key ? t->n_key : 1, sizeof(*casts));

    for (size_t k = 0; k < t->n_key; k++) {
        const ig_column *c = NULL;
        const char *have = NULL, *have_mod = NULL;
        char *coll = NULL;
        int det = 1, rc;
        size_t li = 0;

        for (size_t ci = 0; ci < t->n_cols && c == NULL; ci++) {
            if (strcmp(t->cols[ci].name, t->key[k]) == 0)
                c = &t->cols[ci];
            else if (t->cols[ci].source == IG_COLSRC_LOOKUP)
                li++;
        }
        if (c != NULL && c->source == IG_COLSRC_LOOKUP) {
            have = have_mod = ex->t[ti].lookups[li].key_type;
        } else {
            for (int r = 0; r < PQntuples(res) && have == NULL; r++)
                if ((size_t)atol(PQgetvalue(res, r, 0)) == ti &&
                    strcmp(PQgetvalue(res, r, 1), t->key[k]) == 0) {
                    have = PQgetvalue(res, r, 2);
                    have_mod = PQgetvalue(res, r, 6);
                    det = deterministic(conn, PQgetvalue(res, r, 3), &coll,
                                        err, &rc);
                    if (rc != IG_OK) {
                        free_casts(casts, t->n_key);
                        free(row.s);
                        free(cols.s);
                        free(inexact);
                        return rc;
                    }
                }
        }
        if (c == NULL || have == NULL) { /* no such column: the upsert
                                            says so */
            nohash = 1;
            continue;
        }
        sb_add(&row, "%su.k%zu::%s%s%s", k ? ", " : "", k, have_mod,
               coll ? " COLLATE " : "", coll ? coll : "");
        casts[k] = c->source == IG_COLSRC_LOOKUP
                       ? ig_xstrdup("")
                       : ig_xasprintf("%s%s%s", have_mod,
                                      coll ? " COLLATE " : "",
                                      coll ? coll : "");
        sb_add(&cols, "$%zu::text[], ", k + 1);
        if (!exact_key(c->source == IG_COLSRC_LOOKUP ? IG_TYPE_TEXT
                                                       : c->type,
                       have, det)) {
            if (hashable_key(have))
                hash = 1;
            else
                nohash = 1;
            if (inexact == NULL)
                inexact = ig_xasprintf("target %s, key column %s (%s%s)",
                                       t->name, c->name, have,
                                       det ? ""
                                           : ", a nondeterministic "
                                             "collation");
        }
        free(coll);
    }
    if (hash && !nohash) {
        sb q = {0};
        ex->t[ti].key_cast = casts;
        casts = NULL;
        cols.len -= 2; /* the last ", " */
        cols.s[cols.len] = '\0';
        sb_add(&q, "SELECT hash_record_extended(ROW(%s), 0) FROM unnest(%s"
                   ") WITH ORDINALITY AS u(", row.s, cols.s);
        for (size_t k = 0; k < t->n_key; k++)
            sb_add(&q, "k%zu, ", k);
        sb_add(&q, "n) ORDER BY u.n");
        ex->t[ti].key_hash = q.s;
        ig_log(IG_LOG_DEBUG, "exec: target %s: keys compared by %s", t->name,
               q.s);
    } else if (inexact != NULL && ex->inexact == NULL) {
        ex->inexact = inexact;
        inexact = NULL;
    }
    free_casts(casts, t->n_key);
    free(inexact);
    free(row.s);
    free(cols.s);
    return IG_OK;
}

/* Under on_conflict: error, whether target ti's table (or a partition of
 * it) has a BEFORE INSERT row trigger (tp->insert_trigger): one may change
 * the key, and the keys the INSERT returns then say nothing of which rows
 * went in. */
static int check_insert_trigger(ig_exec *ex, size_t ti, PGconn *conn,
                                ig_err *err)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);
    const char *params[1];
    PGresult *res = NULL;
    char *qt;
    int rc;

    if (t->on_conflict != IG_ON_CONFLICT_ERROR)
        return IG_OK;
    qt = ig_sql_qualified(t->table);
    params[0] = qt;
    /* tgtype: ROW 1, BEFORE 2, INSERT 4 (PostgreSQL's pg_trigger.h) */
    rc = ig_db_query(conn,
                     "SELECT EXISTS (SELECT 1 FROM pg_trigger g WHERE "
                     "(g.tgrelid = $1::text::regclass OR g.tgrelid IN "
                     "(SELECT relid FROM pg_partition_tree($1::text::"
                     "regclass))) AND g.tgenabled <> 'D' AND "
                     "g.tgtype & 7 = 7)",
                     1, params, &res, "looking up the table's triggers", err);
    if (rc == IG_OK)
        ex->t[ti].insert_trigger = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    free(qt);
    return rc;
}

/* The insert-first path: a batch whose keys are all new can be COPYed
 * straight into the table. It applies to a one-target pipeline without
 * lookups into a table (plain or partitioned, not a view) whose every
 * column has the type the pipeline declares, without rules (the upsert
 * refuses them, COPY would bypass them) and without deferrable unique
 * indexes (the upsert refuses them as arbiters; COPY would defer their
 * check to COMMIT). The same query (table_columns) tells whether the
 * table has no pages at all: only then is an import's first batch
 * expected to hold new keys only. */
static void plan_direct(ig_exec *ex, const PGresult *res)
{
    const ig_target *t;
    sb cols = {0};
    int ok = 1, any = 0;

    if (ex->ntargets != 1 || ex->t[0].nlookups > 0)
        return;
    t = ig_pipeline_target(ex->p, 0);
    for (int r = 0; r < PQntuples(res); r++)
        if (strcmp(PQgetvalue(res, r, 0), "0") == 0) {
            any = 1;
            ex->was_empty = PQgetvalue(res, r, 4)[0] == 't';
            ok = PQgetvalue(res, r, 5)[0] == 't';
            break;
        }
    ok = ok && any;
    for (size_t ci = 0; ok && ci < t->n_cols; ci++) {
        const ig_column *c = &t->cols[ci];
        int found = 0;
        for (int r = 0; r < PQntuples(res) && !found; r++)
            if (strcmp(PQgetvalue(res, r, 1), c->name) == 0) {
                found = 1;
                ok = same_input(col_cast(ex, 0, ci), PQgetvalue(res, r, 2));
            }
        ok = ok && found;
    }
    if (ok && t->n_cols > 0) {
        char *qt = ig_sql_qualified(t->table);
        add_col_list(&cols, t);
        ex->direct = ig_xasprintf("COPY %s (%s) FROM STDIN", qt, cols.s);
        free(qt);
        free(cols.s);
        build_proof(ex);
    }
    ig_log(IG_LOG_DEBUG, "exec: insert-first path %s%s",
           ex->direct ? ex->direct : "does not apply",
           ex->direct && !ex->was_empty
               ? " (the table has pages, so it may have rows: not for the "
                 "first batch)"
               : "");
}

/* Per target, from the catalog query (res): its table's oid where the
 * table's statistics count the upsert's rows (tp->stats_oid). */
static void note_stats(ig_exec *ex, const PGresult *res)
{
    for (size_t ti = 0; ti < ex->ntargets; ti++)
        for (int r = 0; r < PQntuples(res); r++) {
            const char *oid = PQgetvalue(res, r, 8);
            if ((size_t)atol(PQgetvalue(res, r, 0)) != ti)
                continue;
            if (PQgetvalue(res, r, 7)[0] == 't' && oid[0] != '\0' &&
                strspn(oid, "0123456789") == strlen(oid))
                ex->t[ti].stats_oid = ig_xstrdup(oid);
            break;
        }
}

/* Whether every key column of target ti is text to the pipeline and
 * goes into the upsert as `::text` (col_cast). */
static int text_keys(const ig_exec *ex, size_t ti)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);

    for (size_t k = 0; k < t->n_key; k++) {
        size_t ci = col_index(t, t->key[k]);
        if (t->cols[ci].type != IG_TYPE_TEXT ||
            strcmp(col_cast(ex, ti, ci), "text") != 0)
            return 0;
    }
    return 1;
}

/* Whether a batch's stage can be put in target ti's key order by the
 * executor (sort_by_key) instead of the upsert's ORDER BY: the only
 * target, whose key columns come from the stage as they are (no lookup),
 * compare as their bytes do (check_keys: no key_hash, no inexact column)
 * and are sorted as text (`ORDER BY` sorts `s.col::text`, in the stage
 * column's collation, the database's default) in a default collation
 * that orders by bytes (the catalog query, res). Then the executor's
 * order is the one `ORDER BY key` gives, which the other forms of the
 * upsert, other pipelines and older ingot builds writing the same table
 * lock in, so that none of them can deadlock with another. */
static int sortable(const ig_exec *ex, size_t ti, const PGresult *res)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);

    if (!(ex->ntargets == 1 && t->n_key > 0 && ex->t[ti].nlookups == 0 &&
          ex->t[ti].key_hash == NULL && ex->inexact == NULL))
        return 0;
    for (int r = 0; r < PQntuples(res); r++)
        if ((size_t)atol(PQgetvalue(res, r, 0)) == ti)
            return PQgetvalue(res, r, 9)[0] == 't' && text_keys(ex, ti);
    return 0;
}

ig_exec *ig_exec_new(const ig_pipeline *p, PGconn *conn, ig_err *err)
{
    ig_exec *ex = ig_xcalloc(1, sizeof(*ex));
    PGresult *res = NULL;
    int rc = IG_OK;

    ex->p = p;
    ex->ntargets = ig_pipeline_ntargets(p);
    ex->t = ig_xcalloc(ex->ntargets ? ex->ntargets : 1, sizeof(*ex->t));
    ex->merge_off = ig_xcalloc(1, sizeof(*ex->merge_off));
    build_stage(ex);
    rc = table_columns(ex, conn, &res, err);
    if (rc == IG_OK)
        rc = check_tables(ex, res, err);
    if (rc == IG_OK)
        note_types(ex, res);
    for (size_t ti = 0; rc == IG_OK && ti < ex->ntargets; ti++)
        rc = plan_untyped(ex, ti, conn, err);
    for (size_t ti = 0; rc == IG_OK && ti < ex->ntargets; ti++)
        rc = plan_lookups(ex, conn, ti, err);
    for (size_t ti = 0; rc == IG_OK && ti < ex->ntargets; ti++)
        rc = check_keys(ex, ti, conn, res, err);
    for (size_t ti = 0; rc == IG_OK && ti < ex->ntargets; ti++)
        rc = check_insert_trigger(ex, ti, conn, err);
    if (rc != IG_OK) {
        PQclear(res);
        ig_exec_free(ex);
        return NULL;
    }
    note_stats(ex, res);
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(p, ti);
        build_upsert(ex, ti, UPSERT_PLAIN);
        if (t->duplicates == IG_DUPLICATES_LAST &&
            t->on_conflict != IG_ON_CONFLICT_ERROR)
            build_upsert(ex, ti, UPSERT_DEDUP);
        if (t->on_conflict != IG_ON_CONFLICT_ERROR) {
            if (ex->t[ti].stats_oid != NULL)
                build_upsert(ex, ti, UPSERT_BULK);
            if (sortable(ex, ti, res))
                build_upsert(ex, ti, UPSERT_SORTED);
            if (mergeable(ex, ti, conn, res))
                build_merge(ex, ti);
        }
        build_missing(ex, ti);
        ig_log(IG_LOG_DEBUG, "exec: target %zu upsert: %s", ti,
               ex->t[ti].upsert);
        if (ex->t[ti].upsert_bulk != NULL)
            ig_log(IG_LOG_DEBUG, "exec: target %zu: rows counted by the "
                                 "table's statistics", ti);
        if (ex->t[ti].upsert_sorted != NULL)
            ig_log(IG_LOG_DEBUG, "exec: target %zu: batches staged in key "
                                 "order, read without ORDER BY", ti);
        if (ex->t[ti].upsert_merge != NULL)
            ig_log(IG_LOG_DEBUG, "exec: target %zu: whole batches tried as a "
                                 "MERGE first (unless IMPORT_MERGE=0)", ti);
    }
    build_rows_fn(ex);
    for (size_t ti = 0; ti < ex->ntargets; ti++)
        if (ig_pipeline_target(p, ti)->duplicates == IG_DUPLICATES_LAST &&
            ig_pipeline_target(p, ti)->n_key > 0 &&
            ig_pipeline_is_parent(p, ti))
            ex->small_pass = 1;
    plan_direct(ex, res);
    PQclear(res);
    return ex;
}

void ig_exec_free(ig_exec *ex)
{
    if (ex == NULL)
        return;
    for (size_t ti = 0; ti < ex->ntargets; ti++) {
        for (size_t i = 0; i < ex->t[ti].nlookups; i++)
            free(ex->t[ti].lookups[i].key_type);
        free(ex->t[ti].lookups);
        free(ex->t[ti].upsert);
        free(ex->t[ti].upsert_dedup);
        free(ex->t[ti].upsert_bulk);
        free(ex->t[ti].upsert_sorted);
        free(ex->t[ti].upsert_merge);
        free(ex->t[ti].merge_proof);
        free(ex->t[ti].stats_oid);
        free(ex->t[ti].missing);
        free(ex->t[ti].key_hash);
        free_casts(ex->t[ti].key_cast, ig_pipeline_target(ex->p, ti)->n_key);
        free_casts(ex->t[ti].col_type, ig_pipeline_target(ex->p, ti)->n_cols);
        free_casts(ex->t[ti].col_base, ig_pipeline_target(ex->p, ti)->n_cols);
    }
    free(ex->t);
    free(ex->direct);
    free(ex->proof);
    free(ex->inexact);
    free(ex->stage);
    free(ex->stage_row);
    free(ex->create_stage);
    free(ex->copy);
    free(ex->truncate);
    free(ex->rows_fn);
    free(ex->rows_call);
    free(ex->merge_off);
    free(ex);
}

int ig_exec_explain(ig_exec *ex, PGconn *conn, size_t *target, int *missing,
                    ig_err *err)
{
    int rc = IG_OK;

    ex->from = ex->stage_row;
    for (size_t ti = 0; rc == IG_OK && ti < ex->ntargets; ti++) {
        target_plan *tp = &ex->t[ti];
        char *keep[3] = {tp->upsert, tp->upsert_dedup, tp->missing};
        char *sql[3];

        tp->upsert = tp->upsert_dedup = tp->missing = NULL;
        build_upsert(ex, ti, UPSERT_PLAIN);
        if (keep[1] != NULL)
            build_upsert(ex, ti, UPSERT_DEDUP);
        build_missing(ex, ti);
        sql[0] = tp->upsert;
        sql[1] = tp->upsert_dedup;
        sql[2] = tp->missing;
        for (int i = 0; i < 3; i++) {
            if (rc == IG_OK && sql[i] != NULL) {
                char *q = ig_xasprintf("EXPLAIN %s", sql[i]);
                rc = ig_db_exec(conn, q, ig_pipeline_target(ex->p, ti)->name,
                                err);
                free(q);
                if (rc != IG_OK) {
                    *target = ti;
                    *missing = i == 2;
                }
            }
            free(sql[i]);
        }
        tp->upsert = keep[0];
        tp->upsert_dedup = keep[1];
        tp->missing = keep[2];
    }
    ex->from = ex->stage;
    return rc;
}

unsigned long long ig_exec_stage_id(const ig_exec *ex)
{
    return ex->stage_id;
}

int ig_exec_can_insert_first(const ig_exec *ex)
{
    return ex->direct != NULL;
}

int ig_exec_target_was_empty(const ig_exec *ex)
{
    return ex->was_empty;
}

const char *ig_exec_inexact_key(const ig_exec *ex)
{
    return ex->inexact;
}

int ig_exec_hashes_keys(const ig_exec *ex, size_t t)
{
    return t < ex->ntargets && ex->t[t].key_hash != NULL;
}

/* A text[] literal of column k of n keys of nkey values each. */
static char *text_array(const ig_value *keys, size_t n, size_t nkey,
                        size_t k)
{
    size_t cap = 3, len = 0;
    char *s;

    for (size_t i = 0; i < n; i++)
        cap += 5 + 2 * keys[i * nkey + k].len;
    s = ig_xmalloc(cap);
    s[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        const ig_value *v = &keys[i * nkey + k];
        if (i)
            s[len++] = ',';
        if (v->is_null) {
            memcpy(s + len, "NULL", 4);
            len += 4;
            continue;
        }
        s[len++] = '"';
        for (size_t j = 0; j < v->len; j++) {
            if (v->p[j] == '"' || v->p[j] == '\\')
                s[len++] = '\\';
            s[len++] = v->p[j];
        }
        s[len++] = '"';
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

int ig_exec_key_hashes(const ig_exec *ex, PGconn *conn, size_t t,
                       const ig_value *keys, size_t n,
                       unsigned long long *out, ig_err *err)
{
    size_t nkey = ig_pipeline_target(ex->p, t)->n_key;
    char **arrays = ig_xcalloc(nkey ? nkey : 1, sizeof(*arrays));
    PGresult *res = NULL;
    int rc;

    for (size_t k = 0; k < nkey; k++)
        arrays[k] = text_array(keys, n, nkey, k);
    rc = ig_db_query(conn, ex->t[t].key_hash, (int)nkey,
                     (const char *const *)arrays, &res,
                     "hashing the batch's keys", err);
    for (size_t k = 0; k < nkey; k++)
        free(arrays[k]);
    free(arrays);
    if (rc != IG_OK)
        return rc;
    if ((size_t)PQntuples(res) != n) {
        PQclear(res);
        return ig_err_set(err, IG_DB, "hashing the batch's keys: %d "
                          "hashes for %zu keys", PQntuples(res), n);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned long long)strtoll(PQgetvalue(res, (int)i, 0),
                                             NULL, 10);
    PQclear(res);
    return IG_OK;
}

size_t ig_exec_ntargets(const ig_exec *ex)
{
    return ex->ntargets;
}

const char *ig_exec_upsert_sql(const ig_exec *ex, size_t t)
{
    return t < ex->ntargets ? ex->t[t].upsert : NULL;
}

/* ------------------------------------------------------------------ */
/* Running a batch                                                     */

/* State of one ig_exec_batch call. */
typedef struct run_ctx {
    const ig_exec *ex;
    PGconn *conn;
    ig_batch *b;
    ig_arena *arena; /* for reason strings */
    ig_counts *per_target;
    ig_err *err;
    char *buf; /* COPY data not sent yet (COPY_CHUNK bytes), or NULL */
    size_t len;
    int dirty; /* the stage may hold rows: clear it before a COPY */
    const char *begin; /* statements starting the batch's transaction,
                          still to be sent (IG_EXEC_BEGIN), or NULL */
    char *xid;         /* where the started transaction's id goes */
    int want_xid;      /* begin was sent: the next tuples are the xid */
    int no_row_pass; /* the row pass found nothing or could not run:
                        bisect for the rest of this batch */
    int sorted;      /* the next subset is the whole batch in target 0's
                        key order (sort_by_key) ... */
    long long sorted_nsrc, sorted_nkeys; /* ... with these counts */
    int merging;     /* the subset being run is the MERGE form's */
    int prove;       /* IG_EXEC_PROVE: no batch of the import applied yet */
    int no_merge;    /* the MERGE form failed: the upsert from now on */
    size_t conflict_ti; /* the target whose counts could not tell which
                           rows' keys existed (conflict_rows) */
    /* The last statement failure, for the row it is pinned on. */
    char state[8], constraint[64], column[64], message[480];
} run_ctx;

static void mark_failed(run_ctx *rc, size_t row, const char *target,
                        const char *column, const char *code,
                        const char *constraint, const char *msg)
{
    ig_batch_row *r = ig_batch_row_at(rc->b, row);
    ig_arena *a = rc->arena;

    if (r == NULL || r->failed)
        return;
    r->failed = 1;
    r->reason.target = target ? ig_arena_strdup(a, target) : NULL;
    r->reason.column = column ? ig_arena_strdup(a, column) : NULL;
    r->reason.code = ig_arena_strdup(a, code);
    r->reason.constraint = constraint ? ig_arena_strdup(a, constraint) : NULL;
    r->reason.message = ig_arena_strdup(a, msg);
}

static int stmt_failed(run_ctx *rc, PGresult *res, const char *what);

/* Read the results of a query string sent with PQsendQuery, up to a
 * COPY_IN (*copy_in set: the caller sends the data, then reads again) or
 * the end. The last TUPLES_OK result goes to *tuples (owned; when not
 * NULL), the row count of the first COMMAND_OK to *ncmd (when not NULL
 * and still -1). The first failure is classified by stmt_failed; the
 * statements after it did not run. Several statements in one string cost
 * one round trip, and a round trip costs about as much as COPYing 100
 * rows here, so the executor sends them together. */
static int read_results(run_ctx *rc, const char *what, const char *after,
                        int *copy_in, PGresult **tuples, long long *ncmd)
{
    PGresult *res;
    int code = IG_OK;

    if (copy_in)
        *copy_in = 0;
    while ((res = PQgetResult(rc->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN && copy_in) {
            *copy_in = 1;
            PQclear(res);
            break;
        }
        if (st == PGRES_TUPLES_OK && rc->want_xid) {
            /* BEGIN went first in this string: the xid query's answer. */
            snprintf(rc->xid, IG_EXEC_XID_LEN, "%s", PQgetvalue(res, 0, 0));
            rc->want_xid = 0;
            PQclear(res);
            continue;
        }
        if (st == PGRES_TUPLES_OK && tuples) {
            /* the last: stats_counts' answer follows its own SELECT */
            PQclear(*tuples);
            *tuples = res;
            continue;
        }
        if (st == PGRES_COMMAND_OK && ncmd && *ncmd < 0)
            *ncmd = atoll(PQcmdTuples(res));
        else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
                 code == IG_OK)
            code = stmt_failed(rc, res,
                               after && ncmd && *ncmd >= 0 ? after : what);
        PQclear(res);
    }
    return code;
}

/* Send sql (no parameters, no COPY, one statement or several) and read
 * its results as read_results does. */
static int send_query(run_ctx *rc, const char *sql, const char *what,
                      PGresult **tuples)
{
    if (!PQsendQuery(rc->conn, sql))
        return ig_db_err(rc->err, rc->conn, NULL, "%s", what);
    return read_results(rc, what, NULL, NULL, tuples, NULL);
}

/* The statements that start the batch's transaction when they are still
 * to be sent (IG_EXEC_BEGIN), else "": the caller puts them first in its
 * query string, and read_results takes the xid from its results. */
static const char *take_begin(run_ctx *rc)
{
    const char *b = rc->begin;

    if (b == NULL)
        return "";
    rc->begin = NULL;
    rc->want_xid = 1;
    return b;
}

/* COPY data goes out in chunks of this size while it is rendered: the
 * server parses the first rows while the rest are rendered, and neither
 * this side's buffer nor libpq's grows to the batch's size. */
#define COPY_CHUNK (64 * 1024)

/* p[0..len) as one CopyData message. */
static int put_raw(run_ctx *rc, const char *p, size_t len)
{
    if (len == 0 || PQputCopyData(rc->conn, p, (int)len) == 1)
        return IG_OK;
    return ig_db_err(rc->err, rc->conn, NULL, "sending COPY data");
}

/* Send what rc->buf holds. */
static int flush_data(run_ctx *rc)
{
    int code = put_raw(rc, rc->buf, rc->len);

    rc->len = 0;
    return code;
}

/* Append p[0..len) to the COPY data (see COPY_CHUNK). */
static int put_data(run_ctx *rc, const char *p, size_t len)
{
    if (rc->len + len > COPY_CHUNK) {
        int code = flush_data(rc);
        if (code != IG_OK)
            return code;
    }
    if (len > COPY_CHUNK) /* a long line goes as it is */
        return put_raw(rc, p, len);
    if (rc->buf == NULL)
        rc->buf = ig_xmalloc(COPY_CHUNK);
    memcpy(rc->buf + rc->len, p, len);
    rc->len += len;
    return IG_OK;
}

/* Sends the COPY data of rows[0..n) with put_data. */
typedef int stream_fn(run_ctx *rc, const size_t *rows, size_t n);

/* Send sql, whose statements end in or include one COPY .. FROM STDIN;
 * once the server asks for the data, stream it, end it, and read the
 * rest of the string's results as read_results does (the last tuples to
 * *tuples, the first command's row count to *ncmd). A string that failed
 * before its COPY reports why, and nothing is rendered. */
static int send_copy(run_ctx *rc, const char *sql, const char *what,
                     const char *after, stream_fn *stream, const size_t *rows,
                     size_t n, PGresult **tuples, long long *ncmd)
{
    int code, copying;

    if (!PQsendQuery(rc->conn, sql))
        return ig_db_err(rc->err, rc->conn, NULL, "%s", what);
    code = read_results(rc, what, NULL, &copying, NULL, NULL);
    if (!copying)
        return code != IG_OK ? code
                             : ig_db_err(rc->err, rc->conn, NULL, "%s", what);
    rc->len = 0;
    code = stream(rc, rows, n);
    if (code == IG_OK)
        code = flush_data(rc);
    if (code != IG_OK) /* the connection is gone: nothing to end */
        return code;
    if (PQputCopyEnd(rc->conn, NULL) != 1)
        return ig_db_err(rc->err, rc->conn, NULL, "ending COPY data");
    return read_results(rc, what, after, NULL, tuples, ncmd);
}

/* The stage's lines: _row, the _e flags, every staged value. All the
 * batch's rows in order (the usual case) are its buffer as it is, sent in
 * slices without a copy. */
static int stream_stage(run_ctx *rc, const size_t *rows, size_t n)
{
    size_t len, i = 0;
    const char *data;
    int code = IG_OK;

    while (i < n && rows[i] == i)
        i++;
    if (i == n && n == ig_batch_nrows(rc->b)) {
        data = ig_batch_copy_data(rc->b, &len);
        for (size_t off = 0; code == IG_OK && off < len; off += COPY_CHUNK)
            code = put_raw(rc, data + off,
                           len - off < COPY_CHUNK ? len - off : COPY_CHUNK);
        return code;
    }
    for (i = 0; code == IG_OK && i < n; i++) {
        data = ig_batch_line(rc->b, rows[i], &len);
        code = put_data(rc, data, len);
    }
    return code;
}

/* prefix (statements run first, in the same round trip), then COPY rows
 * into the stage, then suffix (when not NULL: statements run right after
 * the COPY, in the round trip of its data). The suffix's last tuples go
 * to *tuples; *copied says whether the COPY itself succeeded, so a
 * failure can be pinned on it or on the suffix. */
static int copy_rows(run_ctx *rc, const size_t *rows, size_t n,
                     const char *prefix, const char *suffix,
                     PGresult **tuples, int *copied)
{
    long long ncopy = -1;
    int code;
    char *sql;

    sql = ig_xasprintf("%s%s%s%s%s", take_begin(rc), prefix, rc->ex->copy,
                       suffix ? "; " : "", suffix ? suffix : "");
    code = send_copy(rc, sql, "COPY into the stage table",
                     "the upsert from the stage table", stream_stage,
                     rows, n, tuples, &ncopy);
    free(sql);
    *copied = ncopy >= 0;
    return code;
}

/* Keep a failure's fields (NULL or "" when PostgreSQL gave none) for the
 * row it will be pinned on. */
static void note_failure(run_ctx *rc, const char *st, const char *cn,
                         const char *col, const char *msg, const char *det)
{
    int has_det = det != NULL && det[0] != '\0';

    snprintf(rc->state, sizeof(rc->state), "%s",
             st && st[0] ? st : "XX000");
    snprintf(rc->constraint, sizeof(rc->constraint), "%s", cn ? cn : "");
    snprintf(rc->column, sizeof(rc->column), "%s", col ? col : "");
    snprintf(rc->message, sizeof(rc->message), "%s%s%s",
             msg && msg[0] ? msg : "rejected by PostgreSQL",
             has_det ? ": " : "", has_det ? det : "");
}

/* Classify a failed statement: transient (abort the batch), or a data
 * failure inside this subset (isolate rows). */
static int stmt_failed(run_ctx *rc, PGresult *res, const char *what)
{
    note_failure(rc, PQresultErrorField(res, PG_DIAG_SQLSTATE),
                 PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME),
                 PQresultErrorField(res, PG_DIAG_COLUMN_NAME),
                 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                 PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    return ig_db_err(rc->err, rc->conn, res, "%s", what);
}

static int sp(run_ctx *rc, const char *sql)
{
    return ig_db_exec(rc->conn, sql, sql, rc->err);
}

static int run_subset(run_ctx *rc, size_t *rows, size_t n);

/* Remove the rows marked failed from rows[0..n) and run the rest again. */
static int rerun_without_failed(run_ctx *rc, size_t *rows, size_t n)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++)
        if (!ig_batch_row_at(rc->b, rows[i])->failed)
            rows[m++] = rows[i];
    ig_log(IG_LOG_DEBUG, "exec: %zu of %zu rows failed; running the other "
                         "%zu again", n - m, n, m);
    return m > 0 ? run_subset(rc, rows, m) : IG_OK;
}

/* Mark the rows of a missing-parent result failed. Returns how many. */
static size_t mark_missing(run_ctx *rc, size_t ti, PGresult *res)
{
    const ig_target *t = ig_pipeline_target(rc->ex->p, ti);
    const target_plan *tp = &rc->ex->t[ti];
    size_t n = (size_t)PQntuples(res);

    for (size_t i = 0; i < n; i++) {
        size_t row = (size_t)atol(PQgetvalue(res, (int)i, 0));
        for (size_t l = 0; l < tp->nlookups; l++) {
            const ig_column *c = &t->cols[tp->lookups[l].col];
            const char *table, *key, *pred, *v;
            char msg[704]; /* names (63 bytes each, quoted) and 80 */
            int vlen;
            long long nparents;
            if (PQgetvalue(res, (int)i, (int)l + 1)[0] != 't')
                continue;
            lookup_parent(rc->ex->p, &c->lookup, &table, &key, &pred);
            /* The key looked for, cut to 80 bytes at a character. */
            v = PQgetvalue(res, (int)i, (int)(1 + tp->nlookups + l));
            vlen = (int)strlen(v);
            if (vlen > 80)
                for (vlen = 80; vlen > 0 && (v[vlen] & 0xC0) == 0x80;)
                    vlen--;
            nparents = atoll(
                PQgetvalue(res, (int)i, (int)(1 + 2 * tp->nlookups + l)));
            if (nparents > 1)
                snprintf(msg, sizeof(msg), "%lld %s rows have %s = \"%.*s\"%s "
                         "(the row's %s): the lookup needs exactly one",
                         nparents,
                         table, key, vlen, v,
                         vlen < (int)strlen(v) ? "..." : "",
                         c->lookup.from ? c->lookup.from : key);
            else
                snprintf(msg, sizeof(msg), "no %s row with %s = \"%.*s\"%s "
                         "(the row's %s)", table, key, vlen, v,
                         vlen < (int)strlen(v) ? "..." : "",
                         c->lookup.from ? c->lookup.from : key);
            mark_failed(rc, row, t->name, c->name,
                        nparents > 1 ? "AMBIGUOUS_PARENT" : "MISSING_PARENT",
                        NULL,
                        msg);
            break;
        }
    }
    return n;
}

/* Rows of rows[0..n) eligible for target ti, and how many distinct keys
 * they carry (by the mapper's key hashes). */
static void count_keys(run_ctx *rc, size_t ti, const size_t *rows, size_t n,
                       long long *nsrc, long long *nkeys)
{
    size_t cap = 16;
    unsigned long long *set;

    while (cap < 2 * n)
        cap *= 2;
    set = ig_xcalloc(cap, sizeof(*set));
    *nsrc = *nkeys = 0;
    for (size_t i = 0; i < n; i++) {
        const ig_batch_row *r = ig_batch_row_at(rc->b, rows[i]);
        unsigned long long h;
        size_t j;
        if (!r->elig[ti])
            continue;
        (*nsrc)++;
        h = r->khash[ti] ? r->khash[ti] : 1; /* 0 marks an empty slot */
        for (j = h & (cap - 1); set[j] && set[j] != h; j = (j + 1) & (cap - 1))
            ;
        if (set[j] == 0) {
            set[j] = h;
            (*nkeys)++;
        }
    }
    free(set);
}

/* The upsert of target ti for rows[0..n) (owned): the DISTINCT ON form
 * where a key repeats, followed by the release of the subset's savepoint
 * when release is set and the upsert cannot ask for a re-run (*released
 * says so). *nsrc / *nkeys: eligible rows and their distinct keys. */
static char *target_sql(run_ctx *rc, size_t ti, const size_t *rows,
                        size_t n, int release, int sorted, long long *nsrc,
                        long long *nkeys, int *released)
{
    const target_plan *tp = &rc->ex->t[ti];
    const char *sql = tp->upsert;

    *nsrc = *nkeys = 0;
    *released = 0;
    if (!tp->conflict_error) {
        if (sorted) { /* counted while sorting */
            *nsrc = rc->sorted_nsrc;
            *nkeys = rc->sorted_nkeys;
        } else {
            count_keys(rc, ti, rows, n, nsrc, nkeys);
        }
        if (*nkeys < *nsrc && tp->upsert_dedup)
            sql = tp->upsert_dedup; /* a key repeats in this subset */
        else if (sorted && *nkeys == *nsrc && tp->upsert_merge &&
                 !rc->no_merge &&
                 !__atomic_load_n(rc->ex->merge_off, __ATOMIC_RELAXED)) {
            sql = tp->upsert_merge; /* see build_merge */
            rc->merging = 1;
        } else if (sorted && tp->upsert_sorted)
            sql = tp->upsert_sorted;
        else if (tp->upsert_bulk)
            sql = tp->upsert_bulk;
        if (release) {
            *released = 1;
            return ig_xasprintf("%s%s; RELEASE SAVEPOINT ig_run",
                                rc->merging && rc->prove ? tp->merge_proof
                                                         : "",
                                sql);
        }
    }
    return ig_xasprintf("%s%s",
                        rc->merging && rc->prove ? tp->merge_proof : "", sql);
}

/* Row `row` failed in target ti because its key already existed. */
static void mark_exists(run_ctx *rc, size_t row, size_t ti)
{
    const ig_target *t = ig_pipeline_target(rc->ex->p, ti);
    char msg[200];

    snprintf(msg, sizeof(msg), "a row with this key already exists in "
             "%s (on_conflict: error)", t->table);
    mark_failed(rc, row, t->name, NULL, "ALREADY_EXISTS", NULL, msg);
}

/* Under on_conflict: error, mark the rows of rows[0..n) whose key
 * already existed in target ti's table, from the upsert's result res
 * (build_upsert): the kept rows, how many were inserted, the rows of the
 * kept rows the key matching found not inserted (with the rows each
 * superseded) and how many kept rows that was. *refail: 1 when rows were
 * marked, 2 when the counts cannot tell which (some went in, and the key
 * matching disagrees with the counts or, under a BEFORE INSERT trigger,
 * cannot be trusted): see tell_conflicts. */
static void conflict_rows(run_ctx *rc, size_t ti, const size_t *rows,
                          size_t n, PGresult *res, int *refail)
{
    long long kept = atoll(PQgetvalue(res, 0, 1));
    long long ins = atoll(PQgetvalue(res, 0, 2));
    long long nmiss = atoll(PQgetvalue(res, 0, 4));
    const char *p = PQgetvalue(res, 0, 3);

    if (ins == kept)
        return; /* every kept row went in, whatever the keys say */
    if (ins == 0) {
        /* No row went in: every eligible row's key existed. */
        for (size_t i = 0; i < n; i++)
            if (ig_batch_row_at(rc->b, rows[i])->elig[ti])
                mark_exists(rc, rows[i], ti);
        *refail = 1;
    } else if (nmiss == kept - ins && !rc->ex->t[ti].insert_trigger) {
        while (*p) {
            char *end;
            long row = strtol(p, &end, 10);
            if (end == p)
                break; /* defensive: malformed list */
            mark_exists(rc, (size_t)row, ti);
            *refail = 1;
            p = *end == ',' ? end + 1 : end;
        }
    } else {
        ig_log(IG_LOG_DEBUG, "exec: target %s: %lld of %lld rows went in "
               "and the keys cannot tell which%s; finding them",
               ig_pipeline_target(rc->ex->p, ti)->name, ins, kept,
               rc->ex->t[ti].insert_trigger ? " (a BEFORE INSERT trigger)"
                                            : "");
        rc->conflict_ti = ti;
        *refail = 2;
    }
}

/* Read target ti's counts (and, under on_conflict: error, its rejected
 * rows among rows[0..n)) from the upsert's result res (borrowed).
 * *refail: rows were marked failed and the subset must be run again (2:
 * which ones is still to be found, see tell_conflicts). */
static void target_result(run_ctx *rc, size_t ti, const size_t *rows,
                          size_t n, PGresult *res, long long nsrc,
                          long long nkeys, ig_counts *delta, int *refail)
{
    const target_plan *tp = &rc->ex->t[ti];
    const ig_target *t = ig_pipeline_target(rc->ex->p, ti);

    if (tp->conflict_error) {
        nsrc = atoll(PQgetvalue(res, 0, 0));
        nkeys = atoll(PQgetvalue(res, 0, 1));
        delta->inserted = atoll(PQgetvalue(res, 0, 2));
        conflict_rows(rc, ti, rows, n, res, refail);
    } else {
        delta->inserted = atoll(PQgetvalue(res, 0, 0));
        delta->updated = atoll(PQgetvalue(res, 0, 1));
    }
    delta->unchanged = nkeys - delta->inserted - delta->updated;
    delta->skipped = nsrc - nkeys;
    if (delta->unchanged < 0) /* keys equal in C but not in SQL */
        delta->unchanged = 0;
    if (t->on_conflict == IG_ON_CONFLICT_IGNORE) {
        /* Rows whose key exists were left out, not compared: whether
         * they match the table is unknown. */
        delta->skipped += delta->unchanged;
        delta->unchanged = 0;
    }
}

/* Run one target's statements for the current subset. *refail is set
 * when rows were marked failed and the subset must be run again. With
 * release (the last target), a kept subset's savepoint is released in the
 * upsert's round trip where the upsert cannot ask for a re-run; *released
 * says so. */
static int run_target(run_ctx *rc, size_t ti, const size_t *rows, size_t n,
                      int release, ig_counts *delta, int *refail,
                      int *released)
{
    const target_plan *tp = &rc->ex->t[ti];
    const ig_target *t = ig_pipeline_target(rc->ex->p, ti);
    PGresult *res = NULL;
    long long nsrc, nkeys;
    char *sql;
    int code = IG_OK, rel;

    *refail = 0;
    if (tp->missing) {
        res = PQexec(rc->conn, tp->missing);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            code = stmt_failed(rc, res, t->name);
            PQclear(res);
            return code;
        }
        if (mark_missing(rc, ti, res) > 0)
            *refail = 1;
        PQclear(res);
        res = NULL;
        if (*refail)
            return IG_OK;
    }
    sql = target_sql(rc, ti, rows, n, release, 0, &nsrc, &nkeys, &rel);
    code = send_query(rc, sql, t->name, &res);
    free(sql);
    if (code == IG_OK && res == NULL)
        code = ig_db_err(rc->err, rc->conn, NULL, "%s: no result", t->name);
    if (code == IG_OK) {
        *released = rel;
        target_result(rc, ti, rows, n, res, nsrc, nkeys, delta, refail);
    }
    PQclear(res);
    return code;
}

/* The insert-first path: when the caller expects new keys (the last batch
 * inserted every row), COPY the rows straight into the table -- COPY's
 * multi-row inserts ran about 1.6x as fast as INSERT .. ON CONFLICT's
 * speculative ones at 1M rows (docs/performance.md). It is an optimistic attempt in a savepoint: any
 * failure (an existing key: unique_violation; a bad row; a lock wait
 * over INSERT_FIRST_LOCK_TIMEOUT, so it never joins a deadlock cycle)
 * rolls it back and leaves the batch to the upsert, which gives exactly
 * the same result. Only when no key repeats in the rows. *applied says
 * whether the rows were written. */
#define INSERT_FIRST_LOCK_TIMEOUT "50ms"

/* The eligible rows without the stage's _row and _e columns: the
 * target's columns, in the order of ex->direct. */
static int stream_direct(run_ctx *rc, const size_t *rows, size_t n)
{
    size_t skip = 1 + rc->ex->ntargets; /* _row and the _e flags */
    int code = IG_OK;

    for (size_t i = 0; code == IG_OK && i < n; i++) {
        size_t len;
        const char *p, *end;
        if (!ig_batch_row_at(rc->b, rows[i])->elig[0])
            continue;
        p = ig_batch_line(rc->b, rows[i], &len);
        end = p + len;
        for (size_t f = 0; f < skip && p < end; f++) {
            const char *tab = memchr(p, '\t', (size_t)(end - p));
            p = tab ? tab + 1 : end;
        }
        code = put_data(rc, p, (size_t)(end - p));
    }
    return code;
}

static int try_direct(run_ctx *rc, const size_t *rows, size_t n, int prove,
                      int *applied)
{
    const ig_exec *ex = rc->ex;
    long long nsrc, nkeys, inserted = -1;
    char *sql;
    int code;

    *applied = 0;
    count_keys(rc, 0, rows, n, &nsrc, &nkeys);
    if (nsrc == 0 || nkeys < nsrc)
        return IG_OK;

    /* One query string, two round trips (the statements, then the COPY
     * data): savepoint; the proof that the upsert can run (see
     * IG_EXEC_PROVE); lock_timeout, the old value kept in the
     * transaction; the COPY; and, if it succeeds, release and restore.
     * After a failure PostgreSQL skips the rest, and the rollback to the
     * savepoint restores lock_timeout. */
    sql = ig_xasprintf(
        "%sSAVEPOINT ig_direct; %s%s%s"
        "SELECT set_config('ingot.lock_timeout', "
        "current_setting('lock_timeout'), true), "
        "set_config('lock_timeout', '" INSERT_FIRST_LOCK_TIMEOUT "', true); "
        "%s; RELEASE SAVEPOINT ig_direct; "
        "SELECT set_config('lock_timeout', "
        "current_setting('ingot.lock_timeout'), true)",
        take_begin(rc), prove ? "EXPLAIN " : "",
        prove ? ex->proof : "",
        prove ? "; " : "", ex->direct);
    code = send_copy(rc, sql, "COPY into the table", NULL, stream_direct, rows,
                     n, NULL, &inserted);
    free(sql);
    if (code != IG_OK) {
        char state[sizeof(rc->state)], message[sizeof(rc->message)];
        int rb;
        if (PQstatus(rc->conn) != CONNECTION_OK)
            return IG_DB_RETRY;
        rb = sp(rc, "ROLLBACK TO SAVEPOINT ig_direct; "
                    "RELEASE SAVEPOINT ig_direct");
        snprintf(state, sizeof(state), "%s", rc->state);
        snprintf(message, sizeof(message), "%s", rc->message);
        /* The upsert starts with a clean slate: its own failures only. */
        rc->state[0] = rc->constraint[0] = rc->column[0] = '\0';
        rc->message[0] = '\0';
        /* A transient failure (serialization, deadlock, shutdown) is the
         * batch's, as it would be in the upsert: retry it whole. Only the
         * lock wait this attempt cut short itself is a reason to upsert. */
        if (code == IG_DB_RETRY && strcmp(state, "55P03") != 0)
            return rb == IG_OK ? IG_DB_RETRY : rb;
        ig_log(IG_LOG_DEBUG, "exec: insert-first attempt of %lld rows "
                             "rolled back (%s: %s); upserting them",
               nsrc, state, message);
        if (rb == IG_OK)
            ig_err_clear(rc->err);
        return rb;
    }
    if (inserted < 0)
        inserted = 0;
    /* As the upsert counts them: a key not inserted (a trigger skipped
     * the row) is unchanged. */
    rc->per_target[0].inserted += inserted;
    rc->per_target[0].unchanged += nkeys - inserted;
    *applied = 1;
    ig_log(IG_LOG_DEBUG, "exec: insert-first: %lld rows COPYed into the "
                         "table", inserted);
    return IG_OK;
}

/* The column of target a value-too-long (22001: "value too long for
 * type character varying(5)") or numeric-overflow (22003: "A field with
 * precision 4, scale 2 must round ...") failure is about, when exactly
 * one column has that type; PostgreSQL does not say. NULL otherwise. */
static const char *guess_column(const run_ctx *rc, const char *target)
{
    const char *found = NULL, *type = strstr(rc->message, "for type ");
    char want[64] = "";
    int prec, scale;

    if (strcmp(rc->state, "22001") == 0 && type != NULL)
        snprintf(want, sizeof(want), "%s", type + strlen("for type "));
    else if (strcmp(rc->state, "22003") == 0 &&
             (type = strstr(rc->message, "with precision ")) != NULL &&
             sscanf(type, "with precision %d, scale %d", &prec, &scale) == 2)
        snprintf(want, sizeof(want), "numeric(%d,%d)", prec, scale);
    for (size_t ti = 0; want[0] && target && ti < rc->ex->ntargets; ti++) {
        const ig_target *t = ig_pipeline_target(rc->ex->p, ti);

        if (strcmp(t->name, target) != 0)
            continue;
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            const char *have = rc->ex->t[ti].col_type[ci];

            if (have == NULL || strcmp(have, want) != 0)
                continue;
            if (found != NULL)
                return NULL; /* two columns of that type */
            found = t->cols[ci].name;
        }
    }
    return found;
}

/* Row `row` fails alone in target `target`: record PostgreSQL's reason
 * (the failure noted in rc). */
static void pin_row(run_ctx *rc, size_t row, const char *target)
{
    mark_failed(rc, row, target,
                rc->column[0] ? rc->column : guess_column(rc, target),
                rc->state, rc->constraint[0] ? rc->constraint : NULL,
                rc->message);
}

typedef struct keyed_row {
    unsigned long long h;
    size_t pos; /* in file order */
} keyed_row;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed_row *x = a, *y = b;

    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int cmp_row(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

/* Whether target ti keeps the last row of a key (the DISTINCT ON form):
 * a subset holding some of a key's rows applies another row than the
 * batch would. */
static int keeps_last(const ig_exec *ex, size_t ti)
{
    const ig_target *t = ig_pipeline_target(ex->p, ti);

    return t->duplicates == IG_DUPLICATES_LAST && t->n_key > 0;
}

/* The key groups of target ti among rows[0..n) (file order): for each
 * position, the first and last position of its key's rows (a row the
 * target does not take is a key of its own). */
static void key_spans(run_ctx *rc, size_t ti, const size_t *rows, size_t n,
                      size_t *first, size_t *last)
{
    keyed_row *k = ig_xmalloc(n * sizeof(*k));
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        const ig_batch_row *r = ig_batch_row_at(rc->b, rows[i]);
        first[i] = last[i] = i;
        if (r->elig[ti]) {
            k[m].h = r->khash[ti];
            k[m++].pos = i;
        }
    }
    qsort(k, m, sizeof(*k), cmp_keyed);
    for (size_t g = 0, e; g < m; g = e) {
        for (e = g + 1; e < m && k[e].h == k[g].h; e++)
            ;
        for (size_t j = g; j < e; j++) {
            first[k[j].pos] = k[g].pos;
            last[k[j].pos] = k[e - 1].pos;
        }
    }
    free(k);
}

/* Cut rows[0..n) in two parts for a subset run again in parts (bisection,
 * tell_conflicts): each part in file order, the first to run first;
 * returns the first part's size (it moves rows). No key of a target
 * keeping the last row of a key (duplicates: last), nor of target
 * primary (when not (size_t)-1), has rows on both sides when that can be:
 * a part holding some of a key's rows would apply an earlier row than the
 * batch does (one that fails, or goes in and makes the last one fail
 * under on_conflict: error). Such a cut in file order, nearest the
 * middle, keeps every target's order. Where keys interleave, whole keys
 * of one target (primary, else the first keeping the last) go to the
 * first part in the order of their first rows until it holds half the
 * rows (another target's key with rows in both parts may then see an
 * earlier row applied last); and where all rows are one key, the key's
 * last row runs after the others, as the row pass tries a key's rows
 * from the last back. */
static size_t cut_by_key(run_ctx *rc, size_t primary, size_t *rows,
                         size_t n)
{
    size_t *first = ig_xmalloc(n * sizeof(*first));
    size_t *last = ig_xmalloc(n * sizeof(*last));
    size_t *reach_of = ig_xmalloc(n * sizeof(*reach_of));
    size_t cut = 0, best = n, reach = 0, group = (size_t)-1;

    qsort(rows, n, sizeof(*rows), cmp_row);
    for (size_t i = 0; i < n; i++)
        reach_of[i] = i;
    for (size_t ti = 0; ti < rc->ex->ntargets; ti++) {
        if (ti != primary && !keeps_last(rc->ex, ti))
            continue;
        if (group == (size_t)-1)
            group = ti;
        key_spans(rc, ti, rows, n, first, last);
        for (size_t i = 0; i < n; i++)
            if (last[i] > reach_of[i])
                reach_of[i] = last[i];
    }
    if (primary != (size_t)-1)
        group = primary;
    for (size_t c = 1; c < n; c++) {
        if (reach_of[c - 1] > reach)
            reach = reach_of[c - 1];
        if (reach < c && (c > n / 2 ? c - n / 2 : n / 2 - c) < best) {
            best = c > n / 2 ? c - n / 2 : n / 2 - c;
            cut = c;
        }
    }
    if (cut == 0 && group != (size_t)-1) {
        size_t limit = 0; /* where the last key starts: it goes to B */
        key_spans(rc, group, rows, n, first, last);
        for (size_t i = 0; i < n; i++)
            if (first[i] > limit)
                limit = first[i];
        if (limit == 0) {
            cut = n - 1; /* one key: its last row after the others */
        } else {
            /* Keys interleave: whole keys, by their first rows. */
            size_t *tmp = ig_xmalloc(n * sizeof(*tmp)), na = 0, nb = 0;
            unsigned char *in_a = ig_xcalloc(n, 1);
            for (size_t i = 0; i < n; i++) {
                if (first[i] == i) /* a key starts: A while under half */
                    in_a[i] = na < n / 2 && i < limit;
                else
                    in_a[i] = in_a[first[i]];
                na += in_a[i];
            }
            for (size_t i = 0; i < n; i++)
                if (in_a[i])
                    tmp[nb++] = rows[i];
            cut = nb;
            for (size_t i = 0; i < n; i++)
                if (!in_a[i])
                    tmp[nb++] = rows[i];
            memcpy(rows, tmp, n * sizeof(*rows));
            free(tmp);
            free(in_a);
        }
    }
    free(first);
    free(last);
    free(reach_of);
    return cut > 0 && cut < n ? cut : n / 2;
}

/* Split a subset PostgreSQL rejected in two until the guilty rows stand
 * alone: in parts that keep a key's rows together (cut_by_key), so that
 * each part applies the rows the batch would. */
static int bisect(run_ctx *rc, size_t *rows, size_t n, const char *target)
{
    size_t half;
    int code;

    if (n == 1) {
        pin_row(rc, rows[0], target);
        return IG_OK;
    }
    half = cut_by_key(rc, (size_t)-1, rows, n);
    code = run_subset(rc, rows, half);
    if (code == IG_OK)
        code = run_subset(rc, rows + half, n - half);
    return code;
}

/* Subsets smaller than this are bisected: a few COPYs of a few rows
 * cost less than the row pass's function. */
#define ROW_PASS_MIN 16

/* Run the row pass (build_rows_fn) over rows[0..n) in a savepoint rolled
 * back after it, and mark the rows it returns failed. *found: how many.
 * A pass that cannot run (no PL/pgSQL, a statement timeout shorter than
 * the pass) or that met a failure no row is guilty of (a class 42 or 0A
 * error of the row form) finds nothing and turns the pass off for the
 * batch: bisection goes on. A transient failure (a deadlock) fails the
 * batch for a retry, as anywhere else. */
static int row_pass(run_ctx *rc, size_t *rows, size_t n, size_t *found)
{
    PGresult *res = NULL;
    char *prefix;
    int code, copied, unusable = 0;

    *found = 0;
    code = ig_db_exec(rc->conn, rc->ex->rows_fn,
                      "creating the row pass function", rc->err);
    if (code != IG_OK) {
        if (PQstatus(rc->conn) != CONNECTION_OK)
            return code;
        ig_log(IG_LOG_DEBUG, "exec: no row pass (%s); bisecting",
               rc->err ? rc->err->msg : "");
        rc->no_row_pass = 1;
        return sp(rc, "ROLLBACK TO SAVEPOINT ig_fn; "
                      "RELEASE SAVEPOINT ig_fn");
    }
    prefix = ig_xasprintf("SAVEPOINT ig_run; %s%s",
                          rc->dirty ? rc->ex->truncate : "",
                          rc->dirty ? "; " : "");
    code = copy_rows(rc, rows, n, prefix, rc->ex->rows_call, &res, &copied);
    free(prefix);
    if (PQstatus(rc->conn) != CONNECTION_OK ||
        (code == IG_DB_RETRY && strcmp(rc->state, "57014") != 0)) {
        PQclear(res);
        return code == IG_OK ? IG_DB_RETRY : code;
    }
    for (int i = 0; code == IG_OK && res && i < PQntuples(res); i++) {
        const char *st = PQgetvalue(res, i, 2);
        if (strncmp(st, "42", 2) == 0 || strncmp(st, "0A", 2) == 0)
            unusable = 1;
    }
    if (code == IG_OK && res && !unusable) {
        for (int i = 0; i < PQntuples(res); i++) {
            long ti = atol(PQgetvalue(res, i, 1));
            size_t row = (size_t)atol(PQgetvalue(res, i, 0));
            const ig_batch_row *r = ig_batch_row_at(rc->b, row);
            const char *target =
                ti >= 0 && (size_t)ti < rc->ex->ntargets
                    ? ig_pipeline_target(rc->ex->p, (size_t)ti)->name
                    : NULL;
            if (r == NULL || r->failed)
                continue; /* only a newly failed row shrinks the rerun */
            if (strcmp(PQgetvalue(res, i, 2), ROWS_EXISTS) == 0 && target) {
                mark_exists(rc, row, (size_t)ti);
            } else {
                note_failure(rc, PQgetvalue(res, i, 2),
                             PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
                             PQgetvalue(res, i, 5), PQgetvalue(res, i, 6));
                pin_row(rc, row, target);
            }
            (*found)++;
        }
    }
    PQclear(res);
    if (code != IG_OK || unusable)
        ig_log(IG_LOG_DEBUG, "exec: the row pass could not isolate rows%s%s; "
                             "bisecting",
               code != IG_OK ? ": " : "", code != IG_OK ? rc->message : "");
    else if (*found == 0)
        ig_log(IG_LOG_DEBUG, "exec: the row pass found no row failing alone; "
                             "bisecting");
    else
        ig_log(IG_LOG_DEBUG, "exec: row pass: %zu of %zu rows failed", *found,
               n);
    if (code != IG_OK || unusable || *found == 0)
        rc->no_row_pass = 1;
    return sp(rc, "ROLLBACK TO SAVEPOINT ig_run; RELEASE SAVEPOINT ig_run");
}

/* Isolate the guilty rows of a subset PostgreSQL rejected (rolled back):
 * the row pass where it applies, then the rest again; else bisection.
 * A small subset is bisected, unless a parent target keeps the last row
 * of a key: a part holding an earlier row of such a key would write that
 * row's values, to be replaced by the last one's (counted updated, and
 * updated_at touched when a file is imported again unchanged), where the
 * rerun after the row pass writes the last one's once. */
static int isolate(run_ctx *rc, size_t *rows, size_t n, const char *target)
{
    if ((n >= ROW_PASS_MIN || rc->ex->small_pass) &&
        rc->ex->rows_fn != NULL && !rc->no_row_pass) {
        size_t found;
        int code = row_pass(rc, rows, n, &found);
        if (code != IG_OK)
            return code;
        if (found > 0)
            return rerun_without_failed(rc, rows, n);
        /* Rows that fail only together: bisection finds the later one. */
    }
    return bisect(rc, rows, n, target);
}

/* The rows of rows[0..n) (rolled back) whose key already existed in
 * target rc->conflict_ti, where the counts could not tell which
 * (conflict_rows): the row pass asks each row, one round trip. Without
 * it, or when it found none, the subset runs again in two parts
 * (cut_by_key), until the counts tell: a part holding one key always
 * does. */
static int tell_conflicts(run_ctx *rc, size_t *rows, size_t n)
{
    size_t cut;
    int code;

    if (rc->ex->rows_fn != NULL && !rc->no_row_pass) {
        size_t found;
        code = row_pass(rc, rows, n, &found);
        if (code != IG_OK)
            return code;
        if (found > 0)
            return rerun_without_failed(rc, rows, n);
    }
    cut = cut_by_key(rc, rc->conflict_ti, rows, n);
    code = run_subset(rc, rows, cut);
    return code == IG_OK ? run_subset(rc, rows + cut, n - cut) : code;
}

/* Apply rows[0..n) in a savepoint; on a data failure, roll back and
 * isolate. Counts are only added for subsets that were kept. */
static int run_subset(run_ctx *rc, size_t *rows, size_t n)
{
    ig_counts *delta = ig_xcalloc(rc->ex->ntargets, sizeof(*delta));
    const char *failed_target = NULL;
    int code, refail = 0, released = 0, copied = 0;
    size_t ti = 0;
    char *prefix, *first = NULL;
    long long nsrc = 0, nkeys = 0;
    PGresult *res = NULL;
    int sorted = rc->sorted, trunc;

    rc->sorted = 0; /* a subset isolating rows is in no key order */
    /* The stage empties itself at COMMIT (ON COMMIT DELETE ROWS) and a
     * rolled-back subset takes its rows with it; only rows a kept subset
     * left behind in this transaction need clearing. And a stage read in
     * key order (sorted): COPY appends in order only into a table created
     * or truncated in its (sub)transaction, elsewhere it fills free space
     * left in earlier pages; whether CREATE TEMP TABLE IF NOT EXISTS
     * created it is not known here. */
    trunc = rc->dirty || sorted;
    prefix = ig_xasprintf("SAVEPOINT ig_run; %s%s",
                          trunc ? rc->ex->truncate : "", trunc ? "; " : "");
    /* The first target's upsert rides with the COPY data when nothing
     * must be asked before it (a lookup's missing parents). */
    rc->merging = 0;
    if (rc->ex->t[0].missing == NULL)
        first = target_sql(rc, 0, rows, n, rc->ex->ntargets == 1, sorted,
                           &nsrc, &nkeys, &released);
    code = copy_rows(rc, rows, n, prefix, first, &res, &copied);
    free(prefix);
    if (first) {
        if (code == IG_OK && res == NULL)
            code = ig_db_err(rc->err, rc->conn, NULL, "%s: no result",
                             ig_pipeline_target(rc->ex->p, 0)->name);
        if (code == IG_OK)
            target_result(rc, 0, rows, n, res, nsrc, nkeys, &delta[0],
                          &refail);
        else
            released = 0;
        if (code != IG_OK && copied)
            failed_target = ig_pipeline_target(rc->ex->p, 0)->name;
        free(first);
        ti = 1;
    }
    PQclear(res);
    for (; code == IG_OK && !refail && ti < rc->ex->ntargets; ti++) {
        code = run_target(rc, ti, rows, n, ti + 1 == rc->ex->ntargets,
                          &delta[ti], &refail, &released);
        if (code != IG_OK)
            failed_target = ig_pipeline_target(rc->ex->p, ti)->name;
    }
    if (code == IG_OK && !refail) {
        if (rc->merging)
            ig_log(IG_LOG_DEBUG, "exec: %zu rows applied by MERGE", n);
        if (!released)
            code = sp(rc, "RELEASE SAVEPOINT ig_run");
        rc->dirty = 1;
        for (ti = 0; code == IG_OK && ti < rc->ex->ntargets; ti++) {
            rc->per_target[ti].inserted += delta[ti].inserted;
            rc->per_target[ti].updated += delta[ti].updated;
            rc->per_target[ti].unchanged += delta[ti].unchanged;
            rc->per_target[ti].skipped += delta[ti].skipped;
        }
        free(delta);
        return code;
    }
    free(delta);
    if (rc->merging && code == IG_DB_RETRY &&
        PQstatus(rc->conn) == CONNECTION_OK &&
        (strcmp(rc->state, "57014") == 0 || strcmp(rc->state, "55P03") == 0 ||
         strcmp(rc->state, "40P01") == 0 || strcmp(rc->state, "40001") == 0))
        code = IG_DB; /* the MERGE's plan may be what waited: upsert */
    if (code == IG_DB_RETRY || PQstatus(rc->conn) != CONNECTION_OK)
        return code == IG_OK ? IG_DB_RETRY : code;
    if (code == IG_DB && rc->merging) {
        /* The MERGE form failed (build_merge). A row at fault (data,
         * constraint) would fail the upsert too: isolate it as below,
         * with the upsert's forms. Anything else -- a key a concurrent
         * session inserted, a lock wait, a timeout, a statement
         * PostgreSQL would not run -- the batch runs again as the
         * upsert; all of these but the first also end the MERGE form for
         * the rest of the import. */
        int row = (strncmp(rc->state, "22", 2) == 0 ||
                   strncmp(rc->state, "23", 2) == 0) &&
                  strcmp(rc->state, "23505") != 0;
        rc->no_merge = 1;
        if (!row && strcmp(rc->state, "23505") != 0)
            __atomic_store_n(rc->ex->merge_off, 1, __ATOMIC_RELAXED);
        ig_log(IG_LOG_DEBUG, "exec: MERGE of %zu rows rolled back (%s: %s); "
                             "%s", n, rc->state, rc->message,
               row ? "isolating the rows at fault" : "upserting them");
        if (!row) {
            int rb = sp(rc, "ROLLBACK TO SAVEPOINT ig_run; "
                            "RELEASE SAVEPOINT ig_run");
            if (rb != IG_OK)
                return rb;
            rc->state[0] = rc->constraint[0] = rc->column[0] = '\0';
            rc->message[0] = '\0';
            ig_err_clear(rc->err);
            rc->sorted = sorted;
            return run_subset(rc, rows, n);
        }
    }
    if (code != IG_OK && code != IG_DB)
        return code;
    /* A statement PostgreSQL could not even plan or run for any data
     * (syntax, undefined column, no matching unique index: class 42,
     * feature not supported: 0A) is the pipeline's fault, not a row's:
     * stop instead of blaming every row. */
    if (code != IG_OK && (rc->state[0] == '\0' ||
                          strncmp(rc->state, "42", 2) == 0 ||
                          strncmp(rc->state, "0A", 2) == 0)) {
        PGresult *r = PQexec(rc->conn, "ROLLBACK TO SAVEPOINT ig_run");
        PQclear(r);
        return IG_CONFIG;
    }
    code = code == IG_OK ? IG_OK : IG_DB; /* a data failure, isolate it */
    {
        int rb = sp(rc, "ROLLBACK TO SAVEPOINT ig_run");
        if (rb == IG_OK)
            rb = sp(rc, "RELEASE SAVEPOINT ig_run");
        if (rb != IG_OK)
            return rb;
    }
    if (refail == 2 && code == IG_OK)
        return tell_conflicts(rc, rows, n);
    if (refail && code == IG_OK)
        return rerun_without_failed(rc, rows, n);
    return isolate(rc, rows, n, failed_target);
}

/* A row's target-0 key as staged: its COPY fields (escaped as COPY
 * text escapes them, which keeps distinct keys distinct). */
typedef struct key_row {
    size_t row;
    const char **p; /* per key column: its field, and its length */
    size_t *len;
    size_t nk;
} key_row;

/* Fill p[j], len[j] with field field[j] (0 = _row) of COPY line s. */
static void key_fields(const char *s, size_t linelen, const size_t *field,
                       size_t nk, const char **p, size_t *len)
{
    const char *end = s + linelen;
    size_t f = 0, last = 0;

    for (size_t j = 0; j < nk; j++) {
        p[j] = "";
        len[j] = 0;
        if (field[j] > last)
            last = field[j];
    }
    while (s < end && f <= last) {
        const char *e = s;
        while (e < end && *e != '\t' && *e != '\n')
            e++;
        for (size_t j = 0; j < nk; j++)
            if (field[j] == f) {
                p[j] = s;
                len[j] = (size_t)(e - s);
            }
        f++;
        s = e + 1;
    }
}

/* The byte at *i of COPY field p[0..n), unescaped (batch.c escapes a
 * backslash, tab, line feed and carriage return); *i moves past it. */
static unsigned char copy_byte(const char *p, size_t n, size_t *i)
{
    unsigned char c = (unsigned char)p[(*i)++];

    if (c != '\\' || *i >= n)
        return c;
    c = (unsigned char)p[(*i)++];
    return c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
}

/* Two keys' fields in the order `ORDER BY key` gives them where the
 * collation orders by bytes (sortable): by their unescaped bytes, a
 * NULL (\N) after every value. */
static int cmp_keys(const char *const *xp, const size_t *xl,
                    const char *const *yp, const size_t *yl, size_t nk)
{
    for (size_t k = 0; k < nk; k++) {
        int xn = xl[k] == 2 && xp[k][0] == '\\' && xp[k][1] == 'N';
        int yn = yl[k] == 2 && yp[k][0] == '\\' && yp[k][1] == 'N';
        size_t i = 0, j = 0;

        if (xn || yn) {
            if (xn != yn)
                return xn ? 1 : -1;
            continue;
        }
        while (i < xl[k] && j < yl[k]) {
            unsigned char a = copy_byte(xp[k], xl[k], &i);
            unsigned char b = copy_byte(yp[k], yl[k], &j);
            if (a != b)
                return a < b ? -1 : 1;
        }
        if (i < xl[k] || j < yl[k])
            return i < xl[k] ? 1 : -1;
    }
    return 0;
}

static int cmp_key_row(const void *a, const void *b)
{
    const key_row *x = a, *y = b;
    int c = cmp_keys(x->p, x->len, y->p, y->len, x->nk);

    if (c != 0)
        return c;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Whether a key has a NULL field (COPY's \N): it equals no other key. */
static int key_null(const char *const *p, const size_t *len, size_t nk)
{
    for (size_t k = 0; k < nk; k++)
        if (len[k] == 2 && p[k][0] == '\\' && p[k][1] == 'N')
            return 1;
    return 0;
}

/* Put rows[0..n) in target 0's key order, the order `ORDER BY key`
 * gives (sortable: the key's text in a collation that orders by bytes;
 * cmp_keys), from the key's fields in their COPY lines, so that the
 * upsert can read the stage in that order without sorting it
 * (UPSERT_SORTED) and lock rows in the order every other form does. A
 * file already in that order (most exports are) costs one pass and no
 * memory; rows of equal keys keep their order. Counts what count_keys
 * would, by comparing neighbours: *nsrc eligible rows, *nkeys distinct
 * keys among them (a key with a NULL equals none). */
static void sort_by_key(run_ctx *rc, size_t *rows, size_t n,
                        long long *nsrc, long long *nkeys)
{
    const ig_exec *ex = rc->ex;
    const ig_target *t = ig_pipeline_target(ex->p, 0);
    size_t nk = t->n_key, first = 1 + ex->ntargets; /* _row, the _e flags */
    size_t *field = ig_xmalloc(nk * sizeof(*field));
    const char **p = ig_xmalloc(2 * nk * sizeof(*p));
    size_t *len = ig_xmalloc(2 * nk * sizeof(*len));
    key_row *k;
    size_t i, linelen;
    const char *s;

    for (size_t j = 0; j < nk; j++)
        field[j] = first + col_index(t, t->key[j]);
    for (i = 0; i < n; i++) {
        size_t cur = i % 2 * nk, prev = (i + 1) % 2 * nk;
        s = ig_batch_line(rc->b, rows[i], &linelen);
        key_fields(s, linelen, field, nk, p + cur, len + cur);
        if (i > 0 && (rows[i] < rows[i - 1] ||
                      cmp_keys(p + prev, len + prev, p + cur, len + cur,
                               nk) > 0))
            break;
    }
    if (i < n) {
        const char **kp = ig_xmalloc(n * nk * sizeof(*kp));
        size_t *kl = ig_xmalloc(n * nk * sizeof(*kl));
        k = ig_xmalloc(n * sizeof(*k));
        for (i = 0; i < n; i++) {
            k[i].row = rows[i];
            k[i].p = kp + i * nk;
            k[i].len = kl + i * nk;
            k[i].nk = nk;
            s = ig_batch_line(rc->b, rows[i], &linelen);
            key_fields(s, linelen, field, nk, kp + i * nk, kl + i * nk);
        }
        qsort(k, n, sizeof(*k), cmp_key_row);
        for (i = 0; i < n; i++)
            rows[i] = k[i].row;
        free(k);
        free(kp);
        free(kl);
    }
    /* p / len: [0, nk) the last eligible row's key, [nk, 2nk) this one's */
    *nsrc = *nkeys = 0;
    for (i = 0; i < n; i++) {
        if (!ig_batch_row_at(rc->b, rows[i])->elig[0])
            continue;
        s = ig_batch_line(rc->b, rows[i], &linelen);
        key_fields(s, linelen, field, nk, p + nk, len + nk);
        if (*nsrc == 0 || key_null(p + nk, len + nk, nk) ||
            cmp_keys(p, len, p + nk, len + nk, nk) != 0)
            (*nkeys)++;
        (*nsrc)++;
        memcpy(p, p + nk, nk * sizeof(*p));
        memcpy(len, len + nk, nk * sizeof(*len));
    }
    free(p);
    free(len);
    free(field);
}

int ig_exec_batch(const ig_exec *ex, PGconn *conn, ig_batch *b,
                  const size_t *rows, size_t n, ig_arena *arena, int flags,
                  char *xid, int *has_stage, ig_counts *per_target,
                  ig_err *err)
{
    run_ctx rc;
    size_t *sub;
    char *begin = NULL;
    int code, exists = (flags & IG_EXEC_STAGE_EXISTS) != 0, lazy = 0;

    memset(&rc, 0, sizeof(rc));
    rc.ex = ex;
    rc.conn = conn;
    rc.b = b;
    rc.arena = arena;
    rc.per_target = per_target;
    rc.err = err;
    rc.dirty = (flags & IG_EXEC_STAGE_DIRTY) != 0;
    rc.no_merge = (flags & IG_EXEC_NO_MERGE) != 0;
    rc.prove = (flags & IG_EXEC_PROVE) != 0;
    *has_stage = exists;
    if (rows == NULL)
        n = ig_batch_nrows(b);
    /* Create the stage even for a batch of only failed rows: the caller
     * marks the connection as having it once the transaction commits.
     * Inside that transaction (its commit is the batch's), and in the
     * round trip of BEGIN when this call starts it. Not for a batch the
     * insert-first path may take whole: it needs no stage (its proof
     * plans the upsert over stage_row), and creating one costs a fresh
     * backend a few ms; the stage comes when the upsert does. */
    if (flags & IG_EXEC_BEGIN) {
        lazy = !exists && n > 0 && (flags & IG_EXEC_INSERT_FIRST) &&
               ex->direct != NULL;
        /* SET CONSTRAINTS ALL IMMEDIATE: a deferred constraint checked at
         * COMMIT would fail the whole batch with no row to pin it on;
         * checked at each statement, its failures are isolated like any. */
        rc.begin = begin = ig_xasprintf(
            "BEGIN; SET CONSTRAINTS ALL IMMEDIATE; "
            "SELECT pg_current_xact_id()::text; %s%s",
            exists || lazy ? "" : ex->create_stage,
            exists || lazy ? "" : "; ");
        *has_stage = !lazy;
        if (lazy)
            ig_log(IG_LOG_DEBUG, "exec: no stage table yet: the "
                                 "insert-first path may not need one");
        rc.xid = xid;
        xid[0] = '\0';
        if (n == 0) { /* nothing else to send: start it alone */
            code = send_query(&rc, take_begin(&rc),
                              "starting the batch transaction", NULL);
            free(begin);
            return code;
        }
    } else if (!exists) {
        code = ig_db_exec(conn, ex->create_stage, "creating the stage table",
                          err);
        if (code != IG_OK)
            return code;
        *has_stage = 1;
    }
    if (n == 0)
        return IG_OK;
    /* run_subset reorders its list while isolating rows: work on a copy. */
    sub = ig_xmalloc(n * sizeof(*sub));
    for (size_t i = 0; i < n; i++)
        sub[i] = rows ? rows[i] : i;
    code = IG_OK;
    if ((flags & IG_EXEC_INSERT_FIRST) && ex->direct) {
        int applied = 0;
        code = try_direct(&rc, sub, n, (flags & IG_EXEC_PROVE) != 0,
                          &applied);
        if (code == IG_OK && !applied && lazy) {
            /* The upsert after all: its stage, outside its savepoint (a
             * rolled-back subset must not take the table with it). Before
             * BEGIN when the attempt sent nothing; the table then stays
             * for the session, empty, as a committed batch's would. */
            ig_log(IG_LOG_DEBUG, "exec: creating the stage table for the "
                                 "upsert");
            code = ig_db_exec(conn, ex->create_stage,
                              "creating the stage table", err);
            *has_stage = code == IG_OK;
        }
        if (code != IG_OK || applied) {
            free(sub);
            free(rc.buf);
            free(begin);
            return code;
        }
    }
    if (rows == NULL && ex->t[0].upsert_sorted != NULL) {
        sort_by_key(&rc, sub, n, &rc.sorted_nsrc, &rc.sorted_nkeys);
        /* (a key repeats: the DISTINCT ON form, which orders itself) */
        rc.sorted = !(rc.sorted_nkeys < rc.sorted_nsrc &&
                      ex->t[0].upsert_dedup != NULL);
    }
    code = run_subset(&rc, sub, n);
    free(sub);
    free(rc.buf);
    free(begin);
    return code;
}
