/*
 * pipeline.c - load a pipeline YAML file into the read-only descriptors of
 * pipeline.h.
 *
 * The file is read with libyaml's document loader (one tree, walked here
 * top-down); every mapping is described by a static key table (STYLE rule
 * 13) that drives the generic scalar and list parsing, unknown-key errors
 * with suggestions, defaults, docs/pipelines.md and ingot check. Keys that
 * need more than a scalar (nested mappings, transforms, const) are
 * IG_PIPELINE_KEY special rows handled by their section's own function.
 *
 * Every string, array and descriptor lives in one arena owned by the
 * pipeline; compiled patterns (regex_t) are listed separately because they
 * need regfree(). Problems are collected (up to MAX_ERRORS) so ingot check
 * can show them all; ig_pipeline_load() fails with the first. Cross-checks
 * that relate keys to each other (key columns mapped, lookups resolved,
 * update_columns) run per target once that target parsed cleanly, so one
 * mistake is reported once, not as a cascade.
 */
#include "pipeline.h"

#include "arena.h"
#include "hook.h"
#include "rules.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_ERRORS 100
#define KMAX 24     /* rows in the largest key table */
#define PATHMAX 256 /* key paths in messages */

struct ig_pipeline {
    ig_arena *arena;
    char *file;
    char *name;
    const char *description;
    ig_source source;
    ig_hooks_decl hooks;
    ig_target *targets;
    size_t ntargets;
    const char **inputs;
    size_t ninputs, inputs_cap;
    regex_t **res; /* compiled patterns, regfree() on free */
    size_t nres, res_cap;
};

/* Section descriptors that carry more than the public struct holds. Each
 * public struct is the first member, so offsets into it are the same. */
typedef struct topdecl {
    const char *description;
} topdecl;

typedef struct tdecl {
    ig_target t;
    const char **update_columns;
    size_t n_update_columns;
} tdecl;

typedef struct coldecl {
    ig_column c;
    int position;      /* 1-based, 0 unset */
    int update_choice; /* index into update_names; 3 = never */
    const char *dflt;  /* default: shorthand */
} coldecl;

typedef struct lookdecl {
    ig_lookup l;
    const char *target; /* name of the earlier target, or NULL */
    int position;       /* 1-based, 0 unset */
} lookdecl;

/* A transform item's own options (only for the key table). */
typedef struct xdecl {
    int case_insensitive;
} xdecl;

/* ------------------------------------------------------------------ */
/* Name tables                                                         */

static const char *const type_names[] = {"text", "int",       "bigint",
                                         "numeric", "bool",   "date",
                                         "timestamp", "uuid", "json", NULL};
static const char *const format_names[] = {"csv", "json", NULL};
static const char *const encoding_names[] = {"utf-8", "latin-1",
                                             "windows-1252", NULL};
static const char *const unknown_names[] = {"ignore", "error", NULL};
static const char *const missing_names[] = {"error", "null", NULL};
static const char *const on_conflict_names[] = {"update", "ignore", "error",
                                                NULL};
static const char *const duplicates_names[] = {"error", "first", "last",
                                               NULL};
static const char *const update_names[] = {"overwrite", "keep", "coalesce",
                                           "never", NULL};
#define UPDATE_NEVER 3
static const char *const xform_names[] = {
    "trim",    "collapse_spaces", "lower",   "upper", "strip_control",
    "replace", "null_if",         "default", NULL};

static const char *name_of(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t)v < n ? names[v] : "?";
}

const char *ig_type_name(ig_type t)
{
    return name_of(type_names, 9, (int)t);
}
const char *ig_on_conflict_name(ig_on_conflict v)
{
    return name_of(on_conflict_names, 3, (int)v);
}
const char *ig_duplicates_name(ig_duplicates v)
{
    return name_of(duplicates_names, 3, (int)v);
}
const char *ig_update_rule_name(ig_update_rule v)
{
    return name_of(update_names, 3, (int)v);
}
const char *ig_xform_name(ig_xform_kind k)
{
    return name_of(xform_names, 8, (int)k);
}

/* ------------------------------------------------------------------ */
/* Key tables                                                          */

#define K(nm, ty, st, fld, req, def, doc)                                   \
    {nm, ty, offsetof(st, fld), 0, req, def, doc, NULL, 0, 0}
#define KN(nm, ty, st, fld, def, lo, hi, doc)                               \
    {nm, ty, offsetof(st, fld), 0, 0, def, doc, NULL, lo, hi}
#define KL(nm, ty, st, fld, cnt, req, def, doc)                             \
    {nm, ty, offsetof(st, fld), offsetof(st, cnt), req, def, doc, NULL, 0, 0}
#define KE(nm, st, fld, vals, def, doc)                                     \
    {nm, IG_PKEY_ENUM, offsetof(st, fld), 0, 0, def, doc, vals, 0, 0}
#define KS(nm, req, doc) {nm, IG_PKEY_SPECIAL, 0, 0, req, NULL, doc, NULL, 0, 0}
#define KEND {NULL, IG_PKEY_STRING, 0, 0, 0, NULL, NULL, NULL, 0, 0}

static const ig_pipeline_key top_keys[] = {
    K("description", IG_PKEY_STRING, topdecl, description, 0, NULL,
      "one line saying what the pipeline imports"),
    KS("source", 0, "how the input is read (mapping, all keys optional)"),
    KS("hooks", 0, "the Lua module with row and batch hooks (mapping)"),
    KS("targets", 1, "the tables written, in dependency order (list)"),
    KEND,
};

static const ig_pipeline_key source_keys[] = {
    KE("format", ig_source, format, format_names, "csv",
       "input format: csv or json (rows as objects)"),
    K("delimiter", IG_PKEY_CHAR, ig_source, delimiter, 0, ",",
      "CSV field separator, one byte (\"\\t\" for tabs)"),
    K("quote", IG_PKEY_CHAR, ig_source, quote, 0, "\"",
      "CSV quote character, one byte"),
    K("header", IG_PKEY_BOOL, ig_source, header, 0, "true",
      "the first record names the columns; false: use position"),
    KE("encoding", ig_source, encoding, encoding_names, "utf-8",
       "input encoding, converted to UTF-8"),
    KL("null_markers", IG_PKEY_STRLIST, ig_source, null_markers,
       n_null_markers, 0, "[\"\"]", "field values read as SQL NULL"),
    KE("unknown_columns", ig_source, unknown_columns, unknown_names,
       "ignore", "input columns no target maps: ignore or error"),
    KE("missing_columns", ig_source, missing_columns, missing_names,
       "error", "mapped columns absent from the header: error or null"),
    KN("max_field_bytes", IG_PKEY_SIZE, ig_source, max_field_bytes,
       "1048576", 1, 1073741824L, "longer fields are row errors"),
    KEND,
};

static const ig_pipeline_key hooks_keys[] = {
    K("module", IG_PKEY_STRING, ig_hooks_decl, module, 1, NULL,
      "Lua module name, e.g. hooks.items (file <pipelines>/../lua/"
      "hooks/items.lua, else ingot's lua/)"),
    KN("max_instructions", IG_PKEY_LONG, ig_hooks_decl, max_instructions,
       "1000000", 1000, 1000000000000L,
       "Lua instruction budget per hook call"),
    KN("max_memory_kb", IG_PKEY_LONG, ig_hooks_decl, max_memory_kb, "32768",
       256, 16777216L, "memory cap of each Lua state, in KiB"),
    KN("max_cpu_ms", IG_PKEY_LONG, ig_hooks_decl, max_cpu_ms, "2000", 10,
       3600000L, "CPU time per hook call, in milliseconds"),
    KEND,
};

static const ig_pipeline_key target_keys[] = {
    K("name", IG_PKEY_IDENT, tdecl, t.name, 0, NULL,
      "unique name for lookups and messages (default: table)"),
    K("table", IG_PKEY_TABLE, tdecl, t.table, 1, NULL,
      "the table written, optionally schema.table"),
    KL("key", IG_PKEY_IDENTLIST, tdecl, t.key, t.n_key, 1, NULL,
       "conflict key columns; each must be a mapped column"),
    K("key_predicate", IG_PKEY_SQL, tdecl, t.key_predicate, 0, NULL,
      "predicate of the partial unique index, e.g. deleted_at IS NULL"),
    KE("on_conflict", tdecl, t.on_conflict, on_conflict_names, "update",
       "an existing row: update it, ignore the new one (counted as "
       "skipped), or a row error"),
    KE("duplicates", tdecl, t.duplicates, duplicates_names, "error",
       "the same key twice in one import: error, keep first or last"),
    K("touch", IG_PKEY_IDENT, tdecl, t.touch, 0, NULL,
      "column set to now() when a row is updated, e.g. updated_at"),
    K("guard", IG_PKEY_SQL, tdecl, t.guard, 0, NULL,
      "extra condition for DO UPDATE ... WHERE, over t.col and "
      "EXCLUDED.col"),
    KL("skip_when_null", IG_PKEY_IDENTLIST, tdecl, t.skip_when_null,
       t.n_skip_when_null, 0, NULL,
       "skip this target for a row when any of these columns is NULL"),
    KL("update_columns", IG_PKEY_IDENTLIST, tdecl, update_columns,
       n_update_columns, 0, NULL,
       "only these columns are updated (default: every non-key column)"),
    KS("columns", 1, "target column -> where its value comes from (mapping,"
                     " in order)"),
    KEND,
};

static const ig_pipeline_key column_keys[] = {
    K("from", IG_PKEY_STRING, coldecl, c.from, 0, NULL,
      "input column (header name) the value comes from"),
    KN("position", IG_PKEY_INT, coldecl, position, NULL, 1, 100000,
       "1-based input position (files without a header)"),
    KS("const", 0, "a constant value; null = SQL NULL"),
    KS("lookup", 0, "the id of a parent row found by natural key "
                    "(mapping)"),
    KE("type", coldecl, c.type, type_names, "text",
       "value type, checked in C before the database sees it"),
    KN("precision", IG_PKEY_INT, coldecl, c.precision, NULL, 1, 1000,
       "numeric only: total significant digits"),
    KN("scale", IG_PKEY_INT, coldecl, c.scale, NULL, 0, 1000,
       "numeric only: digits after the point (<= precision)"),
    K("format", IG_PKEY_STRING, coldecl, c.date_format, 0, NULL,
      "date/timestamp only: strptime format (default ISO 8601)"),
    KS("transforms", 0, "list of transforms applied in order (see "
                        "transforms)"),
    KS("rules", 0, "checks applied after the transforms (mapping)"),
    K("default", IG_PKEY_STRING, coldecl, dflt, 0, NULL,
      "shorthand for a last {default: value} transform"),
    KE("update", coldecl, update_choice, update_names, "overwrite",
       "on update: overwrite, keep (existing non-NULL wins), coalesce "
       "(NULL input keeps the old value) or never"),
    KEND,
};

static const ig_pipeline_key lookup_keys[] = {
    K("target", IG_PKEY_IDENT, lookdecl, target, 0, NULL,
      "an earlier target of this pipeline with a single-column key"),
    K("table", IG_PKEY_TABLE, lookdecl, l.table, 0, NULL,
      "a parent table outside this pipeline (needs key)"),
    K("key", IG_PKEY_IDENT, lookdecl, l.key, 0, NULL,
      "the parent's natural-key column (default: the target's key)"),
    K("id", IG_PKEY_IDENT, lookdecl, l.id, 0, "id",
      "the parent's id column"),
    K("from", IG_PKEY_STRING, lookdecl, l.from, 0, NULL,
      "input column with the natural key (default: the target's)"),
    KN("position", IG_PKEY_INT, lookdecl, position, NULL, 1, 100000,
       "or its 1-based input position"),
    K("predicate", IG_PKEY_SQL, lookdecl, l.predicate, 0, NULL,
      "parent rows considered (default: the target's key_predicate)"),
    KEND,
};

static const ig_pipeline_key rules_keys[] = {
    K("required", IG_PKEY_BOOL, ig_rules, required, 0, "false",
      "NULL or empty text after the transforms (such as only spaces under "
      "`trim`) is a row error"),
    KN("min_length", IG_PKEY_LONG, ig_rules, min_length, NULL, 0,
       1073741824L, "fewest characters (UTF-8 code points)"),
    KN("max_length", IG_PKEY_LONG, ig_rules, max_length, NULL, 0,
       1073741824L, "most characters (UTF-8 code points)"),
    KL("enum", IG_PKEY_STRLIST, ig_rules, enum_values, n_enum, 0, NULL,
       "the allowed values (non-empty list)"),
    K("enum_case_insensitive", IG_PKEY_BOOL, ig_rules,
      enum_case_insensitive, 0, "false", "compare enum ignoring ASCII case"),
    K("pattern", IG_PKEY_STRING, ig_rules, pattern, 0, NULL,
      "POSIX extended regular expression the value must match"),
    K("min", IG_PKEY_STRING, ig_rules, min_value, 0, NULL,
      "smallest value, in the column's type (number or date)"),
    K("max", IG_PKEY_STRING, ig_rules, max_value, 0, NULL,
      "largest value, in the column's type (number or date)"),
    KEND,
};

static const ig_pipeline_key transform_keys[] = {
    KS("trim", 0, "remove leading and trailing whitespace"),
    KS("collapse_spaces", 0, "runs of whitespace become one space"),
    KS("lower", 0, "lower case"),
    KS("upper", 0, "upper case"),
    KS("strip_control", 0, "remove control characters"),
    KS("replace", 0, "{replace: {from: to, ...}}: exact-match mapping"),
    KS("null_if", 0, "{null_if: [a, b]}: these values become NULL"),
    KS("default", 0, "{default: v}: NULL or empty becomes v"),
    K("case_insensitive", IG_PKEY_BOOL, xdecl, case_insensitive, 0, "false",
      "beside replace or null_if: compare ignoring ASCII case"),
    KEND,
};

static const ig_pipeline_key *const sections[IG_PSEC__COUNT] = {
    top_keys,    source_keys, hooks_keys,  target_keys,
    column_keys, lookup_keys, rules_keys,  transform_keys};
static const char *const section_names[IG_PSEC__COUNT] = {
    "pipeline", "source", "hooks", "targets[]",
    "columns",  "lookup", "rules", "transforms"};

const ig_pipeline_key *ig_pipeline_keys(ig_pipeline_section s)
{
    return (unsigned)s < IG_PSEC__COUNT ? sections[s] : NULL;
}

const char *ig_pipeline_section_name(ig_pipeline_section s)
{
    return (unsigned)s < IG_PSEC__COUNT ? section_names[s] : "?";
}

const char *ig_pkey_type_name(ig_pkey_type t)
{
    switch (t) {
    case IG_PKEY_STRING: return "string";
    case IG_PKEY_IDENT: return "identifier";
    case IG_PKEY_TABLE: return "table name";
    case IG_PKEY_SQL: return "SQL expression";
    case IG_PKEY_CHAR: return "character";
    case IG_PKEY_BOOL: return "bool";
    case IG_PKEY_INT:
    case IG_PKEY_LONG:
    case IG_PKEY_SIZE: return "integer";
    case IG_PKEY_ENUM: return "enum";
    case IG_PKEY_STRLIST: return "list of strings";
    case IG_PKEY_IDENTLIST: return "list of identifiers";
    case IG_PKEY_SPECIAL: return "see below";
    }
    return "?";
}

/* ------------------------------------------------------------------ */
/* Loader context, errors and suggestions                              */

typedef struct ld {
    ig_pipeline *p;
    yaml_document_t *doc;
    const char *file;
    const ig_pipeline_opts *opts;
    int nerr;
    ig_err first;
    const char **tnames;   /* every target's name, pre-scanned */
    yaml_node_t **tnodes;  /* ... and its node */
    int *tok;              /* targets parsed without a problem */
    size_t ntnames;
    size_t cur_target;     /* index of the target being parsed */
} ld;

static void report(ld *L, int line, int col, const char *path,
                   const char *fmt, va_list ap)
{
    char msg[700];
    ig_pipeline_diag d;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (L->nerr == 0)
        ig_err_set(&L->first, IG_CONFIG, "%s:%d:%d: %s: %s", L->file, line,
                   col, path, msg);
    if (L->nerr < MAX_ERRORS && L->opts->diag != NULL) {
        d.file = L->file;
        d.line = line;
        d.col = col;
        d.path = path;
        d.message = msg;
        L->opts->diag(L->opts->diag_ud, &d);
    }
    L->nerr++;
}

/* Record a problem at node n (NULL: no place) and return IG_CONFIG. */
static int lerr(ld *L, const yaml_node_t *n, const char *path,
                const char *fmt, ...) IG_PRINTF(4, 5);
static int lerr(ld *L, const yaml_node_t *n, const char *path,
                const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(L, n ? (int)n->start_mark.line + 1 : 0,
           n ? (int)n->start_mark.column + 1 : 0, path, fmt, ap);
    va_end(ap);
    return IG_CONFIG;
}

static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];

    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The candidate closest to s (case-insensitive equality, else Levenshtein
 * distance <= 2), or NULL. names is NULL-terminated or has n entries. */
static const char *suggest(const char *s, const char *const *names,
                           size_t n)
{
    const char *best = NULL;
    size_t bestd = 3;

    for (size_t i = 0; i < n && names[i]; i++) {
        size_t d;
        if (strcasecmp(s, names[i]) == 0)
            return names[i];
        d = levenshtein(s, names[i]);
        if (d < bestd) {
            bestd = d;
            best = names[i];
        }
    }
    return best;
}

/* " (did you mean 'x'?)" or "" into buf. */
static const char *did_you_mean(char *buf, size_t n, const char *s,
                                const char *const *names, size_t count)
{
    const char *m = suggest(s, names, count);

    if (m == NULL)
        buf[0] = '\0';
    else
        snprintf(buf, n, " (did you mean '%s'?)", m);
    return buf;
}

/* "a, b or c" of a NULL-terminated list. */
static const char *join_names(char *buf, size_t n, const char *const *names)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; names[i] && len < n; i++) {
        const char *sep = i == 0 ? "" : names[i + 1] ? ", " : " or ";
        len += (size_t)snprintf(buf + len, n - len, "%s%s", sep, names[i]);
    }
    return buf;
}

static void subpath(char *buf, const char *parent, const char *key)
{
    if (parent[0] == '\0')
        snprintf(buf, PATHMAX, "%s", key);
    else
        snprintf(buf, PATHMAX, "%s.%s", parent, key);
}

static void indexpath(char *buf, const char *parent, size_t i)
{
    snprintf(buf, PATHMAX, "%s[%zu]", parent, i);
}

/* ------------------------------------------------------------------ */
/* Node helpers                                                        */

static yaml_node_t *node_at(ld *L, int id)
{
    return yaml_document_get_node(L->doc, id);
}

static ig_pos pos_of(const yaml_node_t *n)
{
    ig_pos p = {(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
    return p;
}

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A YAML null: ~, null, Null, NULL or nothing, unquoted. */
static int is_null(const yaml_node_t *n)
{
    const char *v;

    if (n->type != YAML_SCALAR_NODE ||
        n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    v = sval(n);
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_NO_NODE: break;
    }
    return "nothing";
}

static char *adup(ld *L, const char *s)
{
    return s ? ig_arena_strdup(L->p->arena, s) : NULL;
}

static void *aalloc(ld *L, size_t n)
{
    void *m = ig_arena_alloc(L->p->arena, n ? n : 1);
    memset(m, 0, n ? n : 1);
    return m;
}

/* ------------------------------------------------------------------ */
/* Value checks                                                        */

/* NULL when s is a valid identifier, else why not. */
static const char *ident_problem(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return "is empty";
    if (n > 63)
        return "is longer than 63 bytes";
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return "must start with a letter or '_'";
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return "may hold only letters, digits and '_'";
    return NULL;
}

static int check_ident(ld *L, const yaml_node_t *n, const char *path,
                       const char *s)
{
    const char *why = ident_problem(s);

    if (why == NULL)
        return IG_OK;
    return lerr(L, n, path, "'%s' is not a valid identifier: %s", s, why);
}

static int check_table(ld *L, const yaml_node_t *n, const char *path,
                       const char *s)
{
    const char *dot = strchr(s, '.');
    char part[128];
    const char *why;

    if (dot == NULL)
        return check_ident(L, n, path, s);
    snprintf(part, sizeof(part), "%.*s", (int)(dot - s), s);
    why = ident_problem(part);
    if (why == NULL)
        why = ident_problem(dot + 1);
    if (why == NULL)
        return IG_OK;
    return lerr(L, n, path, "'%s' is not a valid table name (identifier or "
                "schema.identifier): %s", s, why);
}

static int check_sql(ld *L, const yaml_node_t *n, const char *path,
                     const char *s)
{
    const char *what = NULL;

    if (strchr(s, ';'))
        what = "';'";
    else if (strstr(s, "--"))
        what = "'--'";
    else if (strstr(s, "/*"))
        what = "'/*'";
    if (what != NULL)
        return lerr(L, n, path, "must be a single SQL expression; %s is not "
                    "allowed", what);
    for (const char *c = s; *c; c++)
        if (!isspace((unsigned char)*c))
            return IG_OK;
    return lerr(L, n, path, "is empty; leave the key out instead");
}

static int parse_long(const char *s, long *out)
{
    char *end = NULL;

    errno = 0;
    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    *out = strtol(s, &end, 10);
    return errno == 0 && *end == '\0' ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Generic key-table parsing                                           */

static int set_list(ld *L, const ig_pipeline_key *k, yaml_node_t *n,
                    const char *path, void *obj)
{
    char *f = (char *)obj + k->offset;
    size_t cnt = 0, i = 0;
    const char **arr;
    char ip[PATHMAX];
    int rc = IG_OK;

    if (is_null(n))
        return IG_OK; /* keep the default */
    if (n->type == YAML_MAPPING_NODE)
        return lerr(L, n, path, "expected a list, got a mapping");
    cnt = n->type == YAML_SCALAR_NODE
              ? 1
              : (size_t)(n->data.sequence.items.top -
                         n->data.sequence.items.start);
    arr = aalloc(L, cnt * sizeof(*arr));
    if (n->type == YAML_SCALAR_NODE) {
        arr[0] = adup(L, sval(n));
        if (k->type == IG_PKEY_IDENTLIST)
            rc = check_ident(L, n, path, arr[0]);
    } else {
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++, i++) {
            yaml_node_t *e = node_at(L, *it);
            indexpath(ip, path, i);
            if (e->type != YAML_SCALAR_NODE) {
                rc = lerr(L, e, ip, "expected a scalar, got %s",
                          node_kind(e));
                continue;
            }
            arr[i] = adup(L, sval(e));
            if (k->type == IG_PKEY_IDENTLIST &&
                check_ident(L, e, ip, arr[i]) != IG_OK)
                rc = IG_CONFIG;
        }
    }
    *(const char *const **)(void *)f = (const char *const *)arr;
    *(size_t *)(void *)((char *)obj + k->count_offset) = cnt;
    return rc;
}

static int set_bool(ld *L, const yaml_node_t *n, const char *path,
                    const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};

    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return IG_OK;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return IG_OK;
        }
    }
    return lerr(L, n, path, "'%s' is not a bool; expected true or false", v);
}

static int set_number(ld *L, const ig_pipeline_key *k, const yaml_node_t *n,
                      const char *path, const char *v, char *f)
{
    long x;

    if (parse_long(v, &x) != 0)
        return lerr(L, n, path, "'%s' is not a whole number", v);
    if (x < k->min || x > k->max)
        return lerr(L, n, path, "%ld is out of range; expected %ld to %ld",
                    x, k->min, k->max);
    if (k->type == IG_PKEY_INT)
        *(int *)(void *)f = (int)x;
    else if (k->type == IG_PKEY_LONG)
        *(long *)(void *)f = x;
    else
        *(size_t *)(void *)f = (size_t)x;
    return IG_OK;
}

static int set_enum(ld *L, const ig_pipeline_key *k, const yaml_node_t *n,
                    const char *path, const char *v, char *f)
{
    char hint[128], all[256];

    for (int i = 0; k->values[i]; i++) {
        if (strcmp(v, k->values[i]) == 0) {
            *(int *)(void *)f = i;
            return IG_OK;
        }
    }
    did_you_mean(hint, sizeof(hint), v, k->values, SIZE_MAX);
    if (hint[0])
        return lerr(L, n, path, "unknown %s '%s'%s", k->name, v, hint);
    return lerr(L, n, path, "unknown %s '%s' (expected %s)", k->name, v,
                join_names(all, sizeof(all), k->values));
}

/* Set a scalar-typed key from text v (n for positions; may be NULL for
 * defaults). */
static int set_scalar(ld *L, const ig_pipeline_key *k, const yaml_node_t *n,
                      const char *path, const char *v, void *obj)
{
    char *f = (char *)obj + k->offset;

    switch (k->type) {
    case IG_PKEY_STRING:
        break;
    case IG_PKEY_IDENT:
        if (check_ident(L, n, path, v) != IG_OK)
            return IG_CONFIG;
        break;
    case IG_PKEY_TABLE:
        if (check_table(L, n, path, v) != IG_OK)
            return IG_CONFIG;
        break;
    case IG_PKEY_SQL:
        if (check_sql(L, n, path, v) != IG_OK)
            return IG_CONFIG;
        break;
    case IG_PKEY_CHAR:
        if (strlen(v) != 1)
            return lerr(L, n, path, "'%s' must be exactly one byte", v);
        *f = v[0];
        return IG_OK;
    case IG_PKEY_BOOL:
        return set_bool(L, n, path, v, (int *)(void *)f);
    case IG_PKEY_INT:
    case IG_PKEY_LONG:
    case IG_PKEY_SIZE:
        return set_number(L, k, n, path, v, f);
    case IG_PKEY_ENUM:
        return set_enum(L, k, n, path, v, f);
    case IG_PKEY_STRLIST:
    case IG_PKEY_IDENTLIST:
    case IG_PKEY_SPECIAL:
        return lerr(L, n, path, "internal: not a scalar key");
    }
    *(const char **)(void *)f = adup(L, v);
    return IG_OK;
}

static int set_from_node(ld *L, const ig_pipeline_key *k, yaml_node_t *n,
                         const char *path, void *obj)
{
    if (k->type == IG_PKEY_STRLIST || k->type == IG_PKEY_IDENTLIST)
        return set_list(L, k, n, path, obj);
    if (n->type != YAML_SCALAR_NODE)
        return lerr(L, n, path, "expected a scalar, got %s", node_kind(n));
    if (is_null(n) && k->type == IG_PKEY_ENUM && k->values != NULL) {
        /* An enum with a value spelt "null" (missing_columns: null) takes
         * the plain YAML null as that value, not as "keep the default". */
        for (size_t i = 0; k->values[i] != NULL; i++)
            if (strcmp(k->values[i], "null") == 0)
                return set_scalar(L, k, n, path, "null", obj);
    }
    if (is_null(n)) {
        if (k->type == IG_PKEY_STRING || k->type == IG_PKEY_IDENT ||
            k->type == IG_PKEY_TABLE || k->type == IG_PKEY_SQL)
            *(const char **)(void *)((char *)obj + k->offset) = NULL;
        return IG_OK; /* null: keep the default */
    }
    return set_scalar(L, k, n, path, sval(n), obj);
}

/* Apply the table's scalar defaults to obj. They are valid by
 * construction (a unit test loads a pipeline using every default). */
static void apply_defaults(ld *L, ig_pipeline_section sec, void *obj)
{
    for (const ig_pipeline_key *k = sections[sec]; k->name; k++)
        if (k->def != NULL && k->type != IG_PKEY_SPECIAL &&
            k->type != IG_PKEY_STRLIST && k->type != IG_PKEY_IDENTLIST)
            (void)set_scalar(L, k, NULL, k->name, k->def, obj);
}

typedef int (*special_fn)(ld *L, const ig_pipeline_key *k, yaml_node_t *val,
                          const char *path, void *obj);

static size_t table_len(const ig_pipeline_key *t)
{
    size_t n = 0;
    while (t[n].name)
        n++;
    return n;
}

/* Parse mapping n against section sec into obj. seen[i] (table order) is
 * set to each value node found. Returns IG_OK when nothing was wrong. */
static int parse_map(ld *L, yaml_node_t *n, const char *path,
                     ig_pipeline_section sec, void *obj, special_fn fn,
                     yaml_node_t **seen)
{
    const ig_pipeline_key *tbl = sections[sec];
    const char *names[KMAX + 1];
    size_t nk = table_len(tbl);
    int before = L->nerr;
    char kp[PATHMAX], hint[128];
    char suggested[KMAX] = {0};

    for (size_t i = 0; i < nk; i++)
        names[i] = tbl[i].name;
    names[nk] = NULL;
    for (size_t i = 0; i < KMAX; i++)
        seen[i] = NULL;
    if (n->type != YAML_MAPPING_NODE)
        return lerr(L, n, path[0] ? path : "pipeline",
                    "expected a mapping, got %s", node_kind(n));
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
         pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = node_at(L, pr->key), *vn = node_at(L, pr->value);
        const char *key;
        size_t i;

        if (kn->type != YAML_SCALAR_NODE) {
            lerr(L, kn, path, "keys must be scalars, got %s", node_kind(kn));
            continue;
        }
        key = sval(kn);
        subpath(kp, path, key);
        for (i = 0; i < nk && strcmp(tbl[i].name, key) != 0; i++)
            ;
        if (i == nk) {
            const char *m = suggest(key, names, nk);
            lerr(L, kn, kp, "unknown key '%s'%s", key,
                 did_you_mean(hint, sizeof(hint), key, names, nk));
            for (size_t j = 0; m && j < nk; j++)
                if (tbl[j].name == m && tbl[j].required)
                    suggested[j] = 1; /* no second "missing" message */
            continue;
        }
        if (seen[i] != NULL) {
            lerr(L, kn, kp, "duplicate key '%s' (first at line %d)", key,
                 pos_of(seen[i]).line);
            continue;
        }
        seen[i] = vn;
        if (tbl[i].type == IG_PKEY_SPECIAL)
            (void)fn(L, &tbl[i], vn, kp, obj);
        else
            (void)set_from_node(L, &tbl[i], vn, kp, obj);
    }
    for (size_t i = 0; i < nk; i++) {
        if (tbl[i].required && seen[i] == NULL && !suggested[i]) {
            subpath(kp, path, tbl[i].name);
            lerr(L, n, kp, "required key is missing: %s", tbl[i].doc);
        }
    }
    return L->nerr == before ? IG_OK : IG_CONFIG;
}

/* Index of key name in sec's table (it must be there). */
static size_t kidx(ig_pipeline_section sec, const char *name)
{
    const ig_pipeline_key *t = sections[sec];
    size_t i = 0;
    while (t[i].name && strcmp(t[i].name, name) != 0)
        i++;
    return i;
}

/* ------------------------------------------------------------------ */
/* Inputs and patterns                                                 */

static void add_input(ld *L, const char *name)
{
    ig_pipeline *p = L->p;

    if (name == NULL)
        return;
    for (size_t i = 0; i < p->ninputs; i++)
        if (strcmp(p->inputs[i], name) == 0)
            return;
    if (p->ninputs == p->inputs_cap) {
        p->inputs_cap = p->inputs_cap ? 2 * p->inputs_cap : 16;
        p->inputs = ig_xrealloc(p->inputs, p->inputs_cap * sizeof(char *));
    }
    p->inputs[p->ninputs++] = name;
}

static int compile_pattern(ld *L, const yaml_node_t *n, const char *path,
                           ig_rules *r)
{
    ig_pipeline *p = L->p;
    regex_t *re = aalloc(L, sizeof(*re));
    char msg[200];
    int rc = regcomp(re, r->pattern, REG_EXTENDED | REG_NOSUB);

    if (rc != 0) {
        regerror(rc, re, msg, sizeof(msg));
        return lerr(L, n, path, "bad regular expression '%s': %s",
                    r->pattern, msg);
    }
    if (p->nres == p->res_cap) {
        p->res_cap = p->res_cap ? 2 * p->res_cap : 8;
        p->res = ig_xrealloc(p->res, p->res_cap * sizeof(*p->res));
    }
    p->res[p->nres++] = re;
    r->pattern_re = re;
    return IG_OK;
}

/* ------------------------------------------------------------------ */
/* Transforms                                                          */

static int xform_args(ld *L, ig_xform *x, yaml_node_t *v, const char *path)
{
    size_t i = 0;

    switch (x->kind) {
    case IG_XFORM_REPLACE: {
        size_t cnt;
        const char **from, **to;
        if (v->type != YAML_MAPPING_NODE)
            return lerr(L, v, path, "expected a mapping of value: "
                        "replacement, got %s", node_kind(v));
        cnt = (size_t)(v->data.mapping.pairs.top -
                       v->data.mapping.pairs.start);
        from = aalloc(L, cnt * sizeof(*from));
        to = aalloc(L, cnt * sizeof(*to));
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start;
             pr < v->data.mapping.pairs.top; pr++, i++) {
            yaml_node_t *a = node_at(L, pr->key), *b = node_at(L, pr->value);
            if (a->type != YAML_SCALAR_NODE || b->type != YAML_SCALAR_NODE)
                return lerr(L, a, path, "replace entries must be scalars");
            from[i] = adup(L, sval(a));
            /* A YAML null (null, ~, nothing) replaces with SQL NULL;
             * a quoted "null" is the text. */
            to[i] = is_null(b) ? NULL : adup(L, sval(b));
        }
        x->from = (const char *const *)from;
        x->to = (const char *const *)to;
        x->n = cnt;
        return IG_OK;
    }
    case IG_XFORM_NULL_IF: {
        static const ig_pipeline_key k = {"null_if", IG_PKEY_STRLIST,
                                          offsetof(ig_xform, from), 0, 0,
                                          NULL, NULL, NULL, 0, 0};
        /* count goes to x->n via a second table row would be overkill */
        ig_pipeline_key kk = k;
        kk.count_offset = offsetof(ig_xform, n);
        return set_list(L, &kk, v, path, x);
    }
    case IG_XFORM_DEFAULT:
        if (v->type != YAML_SCALAR_NODE || is_null(v))
            return lerr(L, v, path, "expected the default value (a scalar)");
        x->value = adup(L, sval(v));
        return IG_OK;
    case IG_XFORM_TRIM:
    case IG_XFORM_COLLAPSE_SPACES:
    case IG_XFORM_LOWER:
    case IG_XFORM_UPPER:
    case IG_XFORM_STRIP_CONTROL:
        break;
    }
    return lerr(L, v, path, "%s takes no argument; write it as a plain "
                "list item", ig_xform_name(x->kind));
}

static int xform_kind(ld *L, const yaml_node_t *n, const char *path,
                      const char *name, ig_xform_kind *out)
{
    char hint[128];

    for (int i = 0; xform_names[i]; i++) {
        if (strcmp(name, xform_names[i]) == 0) {
            *out = (ig_xform_kind)i;
            return IG_OK;
        }
    }
    return lerr(L, n, path, "unknown transform '%s'%s", name,
                did_you_mean(hint, sizeof(hint), name, xform_names,
                             SIZE_MAX));
}

/* One list item: "trim" or {replace: {...}[, case_insensitive: true]}. */
static int parse_xform(ld *L, yaml_node_t *n, const char *path, ig_xform *x)
{
    int have = 0, rc = IG_OK;

    if (n->type == YAML_SCALAR_NODE) {
        if (xform_kind(L, n, path, sval(n), &x->kind) != IG_OK)
            return IG_CONFIG;
        if (x->kind >= IG_XFORM_REPLACE)
            return lerr(L, n, path, "%s needs an argument: {%s: ...}",
                        sval(n), sval(n));
        return IG_OK;
    }
    if (n->type != YAML_MAPPING_NODE)
        return lerr(L, n, path, "expected a transform name or a one-key "
                    "mapping, got %s", node_kind(n));
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
         pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node_at(L, pr->key), *v = node_at(L, pr->value);
        const char *name = k->type == YAML_SCALAR_NODE ? sval(k) : "";
        char kp[PATHMAX];

        subpath(kp, path, name);
        if (strcmp(name, "case_insensitive") == 0) {
            if (v->type != YAML_SCALAR_NODE ||
                set_bool(L, v, kp, sval(v), &x->case_insensitive) != IG_OK)
                rc = IG_CONFIG;
            continue;
        }
        if (have++)
            return lerr(L, k, kp, "one transform per list item");
        if (xform_kind(L, k, kp, name, &x->kind) != IG_OK ||
            xform_args(L, x, v, kp) != IG_OK)
            rc = IG_CONFIG;
    }
    if (rc == IG_OK && !have)
        return lerr(L, n, path, "no transform named in this item");
    if (rc == IG_OK && x->case_insensitive &&
        x->kind != IG_XFORM_REPLACE && x->kind != IG_XFORM_NULL_IF)
        return lerr(L, n, path, "case_insensitive applies only to replace "
                    "and null_if");
    return rc;
}

static int parse_xforms(ld *L, yaml_node_t *n, const char *path,
                        ig_column *c)
{
    size_t cnt, i = 0;
    ig_xform *xs;
    char ip[PATHMAX];
    int rc = IG_OK;

    if (is_null(n))
        return IG_OK;
    if (n->type != YAML_SEQUENCE_NODE)
        return lerr(L, n, path, "expected a list of transforms, got %s",
                    node_kind(n));
    cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    xs = aalloc(L, (cnt + 1) * sizeof(*xs)); /* +1: room for default: */
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++, i++) {
        indexpath(ip, path, i);
        if (parse_xform(L, node_at(L, *it), ip, &xs[i]) != IG_OK)
            rc = IG_CONFIG;
    }
    c->xforms = xs;
    c->n_xforms = cnt;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                             */

static int find_target(ld *L, const char *name)
{
    for (size_t i = 0; i < L->ntnames; i++)
        if (L->tnames[i] && strcmp(L->tnames[i], name) == 0)
            return (int)i;
    return -1;
}

/* Fill the lookup from the earlier target it names. */
static int lookup_from_target(ld *L, lookdecl *ld_, yaml_node_t *tn,
                              const char *path)
{
    ig_lookup *lk = &ld_->l;
    char hint[128];
    int ti = find_target(L, ld_->target);
    const ig_target *par;
    const ig_column *kc = NULL;

    if (ti < 0)
        return lerr(L, tn, path, "unknown target '%s'%s", ld_->target,
                    did_you_mean(hint, sizeof(hint), ld_->target, L->tnames,
                                 L->ntnames));
    if ((size_t)ti == L->cur_target)
        return lerr(L, tn, path, "a target cannot look up its own rows; "
                    "use lookup.table");
    if ((size_t)ti > L->cur_target)
        return lerr(L, tn, path, "'%s' is declared after this target; "
                    "targets run in order", ld_->target);
    if (!L->tok[ti])
        return IG_CONFIG; /* the parent's own error was reported */
    par = &L->p->targets[ti];
    if (par->n_key != 1)
        return lerr(L, tn, path, "target '%s' has a %zu-column key; a "
                    "lookup needs a single-column key (use lookup.table "
                    "with key and from)", ld_->target, par->n_key);
    for (size_t i = 0; i < par->n_cols; i++)
        if (par->cols[i].is_key)
            kc = &par->cols[i];
    if (kc == NULL) /* cannot happen: the parent parsed cleanly */
        return lerr(L, tn, path, "target '%s' has no key column",
                    ld_->target);
    if (lk->from == NULL && ld_->position == 0 &&
        kc->source != IG_COLSRC_FROM)
        return lerr(L, tn, path, "the key column '%s' of target '%s' does "
                    "not read an input column; give lookup.from",
                    kc->name, ld_->target);
    lk->target = ti;
    lk->table = par->table;
    if (lk->key == NULL)
        lk->key = kc->name;
    if (lk->from == NULL && ld_->position == 0) {
        lk->from = kc->from;
        lk->from_index = kc->from_index;
    }
    if (lk->predicate == NULL)
        lk->predicate = par->key_predicate;
    lk->xforms = kc->xforms;
    lk->n_xforms = kc->n_xforms;
    return IG_OK;
}

static int parse_lookup(ld *L, yaml_node_t *n, const char *path,
                        ig_column *c)
{
    lookdecl d;
    yaml_node_t *seen[KMAX];
    char kp[PATHMAX];

    memset(&d, 0, sizeof(d));
    apply_defaults(L, IG_PSEC_LOOKUP, &d);
    d.l.target = -1;
    d.l.from_index = -1;
    if (parse_map(L, n, path, IG_PSEC_LOOKUP, &d, NULL, seen) != IG_OK)
        return IG_CONFIG;
    if (d.l.from != NULL && d.position != 0)
        return lerr(L, seen[kidx(IG_PSEC_LOOKUP, "position")], path,
                    "give from or position, not both");
    if (d.position != 0)
        d.l.from_index = d.position - 1;
    if (d.target != NULL && d.l.table != NULL)
        return lerr(L, n, path, "give target or table, not both");
    if (d.target != NULL) {
        subpath(kp, path, "target");
        if (lookup_from_target(L, &d, seen[kidx(IG_PSEC_LOOKUP, "target")],
                               kp) != IG_OK)
            return IG_CONFIG;
    } else if (d.l.table == NULL) {
        return lerr(L, n, path, "needs target (an earlier target) or table "
                    "(with key and from)");
    } else if (d.l.key == NULL || (d.l.from == NULL && d.position == 0)) {
        return lerr(L, n, path, "a lookup by table needs key (the parent's "
                    "natural-key column) and from (the input column)");
    }
    c->lookup = d.l;
    return IG_OK;
}

/* ------------------------------------------------------------------ */
/* Columns                                                             */

typedef struct colctx {
    coldecl *d;
    int const_seen;
    yaml_node_t *rules_node;
    char rules_path[PATHMAX];
    yaml_node_t *rules_seen[KMAX];
} colctx;

static int rules_special(ld *L, const ig_pipeline_key *k, yaml_node_t *v,
                         const char *path, void *obj)
{
    (void)L, (void)k, (void)v, (void)path, (void)obj;
    return IG_OK; /* rules has no special keys */
}

static int column_special(ld *L, const ig_pipeline_key *k, yaml_node_t *v,
                          const char *path, void *obj)
{
    colctx *cx = obj; /* the coldecl is cx->d; see parse_column */
    ig_column *c = &cx->d->c;

    if (strcmp(k->name, "const") == 0) {
        cx->const_seen = 1;
        if (v->type != YAML_SCALAR_NODE)
            return lerr(L, v, path, "expected a scalar, got %s",
                        node_kind(v));
        c->constant = is_null(v) ? NULL : adup(L, sval(v));
        return IG_OK;
    }
    if (strcmp(k->name, "lookup") == 0)
        return parse_lookup(L, v, path, c);
    if (strcmp(k->name, "transforms") == 0)
        return parse_xforms(L, v, path, c);
    /* rules */
    c->rules.min_length = -1;
    c->rules.max_length = -1;
    cx->rules_node = v;
    snprintf(cx->rules_path, PATHMAX, "%s", path);
    return parse_map(L, v, path, IG_PSEC_RULES, &c->rules, rules_special,
                     cx->rules_seen);
}

/* Special keys write through colctx, plain keys through the coldecl: the
 * generic parser gets the coldecl and this trampoline the context. */
typedef struct colmap {
    coldecl d; /* first: offsets of column_keys point in here */
    colctx *cx;
} colmap;

static int column_special_tramp(ld *L, const ig_pipeline_key *k,
                                yaml_node_t *v, const char *path, void *obj)
{
    return column_special(L, k, v, path, ((colmap *)obj)->cx);
}

/* Whether the rules read v as a value of type t (with precision, scale
 * and a date format), as they will in every row: a rule bound, a const or
 * a default they cannot read would fail every row it applies to. */
static int typed_reads(ig_type t, int precision, int scale, const char *fmt,
                       const char *v)
{
    ig_arena *a = ig_arena_new(0);
    ig_value out;
    int ok = ig_rules_type(t, precision, scale, fmt,
                           (ig_value){v, strlen(v), 0}, a, &out,
                           NULL) == IG_OK;

    ig_arena_free(a);
    return ok;
}

static int bound_reads(ig_type t, const char *v)
{
    return typed_reads(t, 0, 0, NULL, v);
}

/* A const or default value the column's type cannot read. A const goes
 * through the column's transforms first, as in every row; a default is
 * the last transform, so it is read as it is. A lookup's default is the
 * parent's key, not the column's value (the id): not checked here. */
static int check_fixed_values(ld *L, const ig_column *c, const char *dflt,
                              yaml_node_t **seen, const char *path)
{
    static const char *const keys[] = {"const", "default"};
    const char *vals[2] = {c->source == IG_COLSRC_CONST ? c->constant : NULL,
                           c->source == IG_COLSRC_LOOKUP ? NULL : dflt};
    char kp[PATHMAX];

    for (int i = 0; i < 2; i++) {
        ig_arena *a;
        ig_value v;
        int ok;

        if (vals[i] == NULL || c->type == IG_TYPE_TEXT)
            continue;
        a = ig_arena_new(0);
        ig_rules_xforms(c->xforms, i == 0 ? c->n_xforms : 0,
                        (ig_value){vals[i], strlen(vals[i]), 0}, a, &v);
        ok = v.is_null || typed_reads(c->type, c->precision, c->scale,
                                      c->date_format,
                                      ig_arena_strndup(a, v.p, v.len));
        ig_arena_free(a);
        if (ok)
            continue;
        subpath(kp, path, keys[i]);
        return lerr(L, seen[kidx(IG_PSEC_COLUMN, keys[i])], kp,
                    "'%s' is not a valid %s%s%s, so every row would fail",
                    vals[i], ig_type_name(c->type),
                    c->date_format ? " in the format " : "",
                    c->date_format ? c->date_format : "");
    }
    return IG_OK;
}

static int check_bound(ld *L, ig_type t, const yaml_node_t *n,
                       const char *path, const char *v, double *out)
{
    char *end = NULL;
    long long x;

    if (t != IG_TYPE_TEXT && t != IG_TYPE_BOOL && t != IG_TYPE_UUID &&
        t != IG_TYPE_JSON && !bound_reads(t, v))
        return lerr(L, n, path, "'%s' is not a valid %s%s", v,
                    ig_type_name(t),
                    t == IG_TYPE_DATE        ? " (YYYY-MM-DD)"
                    : t == IG_TYPE_TIMESTAMP ? " (YYYY-MM-DD[ HH:MM[:SS]])"
                                             : "");

    switch (t) {
    case IG_TYPE_INT:
    case IG_TYPE_BIGINT:
        errno = 0;
        x = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno != 0 ||
            (t == IG_TYPE_INT && (x < INT32_MIN || x > INT32_MAX)))
            return lerr(L, n, path, "'%s' is not a valid %s", v,
                        ig_type_name(t));
        *out = (double)x;
        return IG_OK;
    case IG_TYPE_NUMERIC:
        errno = 0;
        *out = strtod(v, &end);
        if (*v == '\0' || isspace((unsigned char)*v) || *end != '\0' ||
            strpbrk(v, "xXnNiI") != NULL)
            return lerr(L, n, path, "'%s' is not a number", v);
        return IG_OK;
    case IG_TYPE_DATE:
    case IG_TYPE_TIMESTAMP: {
        int y, m, d, used = 0;
        if (sscanf(v, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 ||
            m < 1 || m > 12 || d < 1 || d > 31 ||
            (t == IG_TYPE_DATE && v[used] != '\0'))
            return lerr(L, n, path, "'%s' is not a %s (YYYY-MM-DD%s)", v,
                        ig_type_name(t),
                        t == IG_TYPE_DATE ? "" : "[ HH:MM:SS]");
        *out = y * 10000.0 + m * 100 + d;
        return IG_OK;
    }
    case IG_TYPE_TEXT:
    case IG_TYPE_BOOL:
    case IG_TYPE_UUID:
    case IG_TYPE_JSON:
        break;
    }
    return lerr(L, n, path, "min and max need a number or date column "
                "(this one is %s)%s", ig_type_name(t),
                t == IG_TYPE_TEXT ? "; use min_length/max_length" : "");
}

static int check_rules(ld *L, colctx *cx)
{
    ig_rules *r = &cx->d->c.rules;
    yaml_node_t **s = cx->rules_seen;
    char kp[PATHMAX];
    double lo = 0, hi = 0;
    int rc = IG_OK;

    if (cx->rules_node == NULL)
        return IG_OK;
    if (r->min_value) {
        subpath(kp, cx->rules_path, "min");
        rc |= check_bound(L, cx->d->c.type, s[kidx(IG_PSEC_RULES, "min")],
                          kp, r->min_value, &lo);
    }
    if (r->max_value) {
        subpath(kp, cx->rules_path, "max");
        rc |= check_bound(L, cx->d->c.type, s[kidx(IG_PSEC_RULES, "max")],
                          kp, r->max_value, &hi);
    }
    if (rc == IG_OK && r->min_value && r->max_value && lo > hi)
        rc = lerr(L, s[kidx(IG_PSEC_RULES, "max")], kp, "max %s is less "
                  "than min %s", r->max_value, r->min_value);
    if (r->min_length >= 0 && r->max_length >= 0 &&
        r->min_length > r->max_length) {
        subpath(kp, cx->rules_path, "max_length");
        rc = lerr(L, s[kidx(IG_PSEC_RULES, "max_length")], kp,
                  "max_length %ld is less than min_length %ld",
                  r->max_length, r->min_length);
    }
    if (s[kidx(IG_PSEC_RULES, "enum")] != NULL && r->n_enum == 0) {
        subpath(kp, cx->rules_path, "enum");
        rc = lerr(L, s[kidx(IG_PSEC_RULES, "enum")], kp,
                  "is empty; list the allowed values");
    }
    if (r->pattern != NULL) {
        subpath(kp, cx->rules_path, "pattern");
        if (compile_pattern(L, s[kidx(IG_PSEC_RULES, "pattern")], kp, r) !=
            IG_OK)
            rc = IG_CONFIG;
    }
    return rc ? IG_CONFIG : IG_OK;
}

/* Type-specific keys: precision/scale for numeric, format for dates. */
static int check_typed_keys(ld *L, coldecl *d, yaml_node_t **seen,
                            const char *path)
{
    ig_column *c = &d->c;
    yaml_node_t *pn = seen[kidx(IG_PSEC_COLUMN, "precision")];
    yaml_node_t *sn = seen[kidx(IG_PSEC_COLUMN, "scale")];
    yaml_node_t *fn = seen[kidx(IG_PSEC_COLUMN, "format")];
    char kp[PATHMAX];

    if ((pn || sn) && c->type != IG_TYPE_NUMERIC) {
        subpath(kp, path, pn ? "precision" : "scale");
        return lerr(L, pn ? pn : sn, kp, "only numeric columns take "
                    "precision and scale (this one is %s)",
                    ig_type_name(c->type));
    }
    if (sn && !pn) {
        subpath(kp, path, "scale");
        return lerr(L, sn, kp, "scale needs precision");
    }
    if (pn && sn && c->scale > c->precision) {
        subpath(kp, path, "scale");
        return lerr(L, sn, kp, "scale %d is larger than precision %d",
                    c->scale, c->precision);
    }
    if (fn && c->type != IG_TYPE_DATE && c->type != IG_TYPE_TIMESTAMP) {
        subpath(kp, path, "format");
        return lerr(L, fn, kp, "only date and timestamp columns take a "
                    "format (this one is %s)", ig_type_name(c->type));
    }
    return IG_OK;
}

/* Exactly one of from / position / const / lookup. */
static int check_source(ld *L, colctx *cx, yaml_node_t *n, yaml_node_t **seen,
                        const char *path)
{
    static const char *const src[] = {"from", "position", "const", "lookup"};
    ig_column *c = &cx->d->c;
    const char *given[4];
    int cnt = 0;

    for (int i = 0; i < 4; i++)
        if (seen[kidx(IG_PSEC_COLUMN, src[i])] != NULL)
            given[cnt++] = src[i];
    if (cnt == 0)
        return lerr(L, n, path, "needs one of from, position, const or "
                    "lookup");
    if (cnt > 1)
        return lerr(L, n, path, "has both %s and %s; give exactly one of "
                    "from, position, const or lookup", given[0], given[1]);
    c->from_index = cx->d->position ? cx->d->position - 1 : -1;
    if (cx->const_seen)
        c->source = IG_COLSRC_CONST;
    else if (seen[kidx(IG_PSEC_COLUMN, "lookup")] != NULL)
        c->source = IG_COLSRC_LOOKUP;
    else
        c->source = IG_COLSRC_FROM;
    if (c->source == IG_COLSRC_LOOKUP &&
        seen[kidx(IG_PSEC_COLUMN, "type")] == NULL)
        c->type = IG_TYPE_BIGINT; /* ids */
    return IG_OK;
}

static int parse_column(ld *L, yaml_node_t *kn, yaml_node_t *n,
                        const char *path, ig_column *out)
{
    colmap m;
    colctx cx;
    yaml_node_t *seen[KMAX];
    ig_column *c = &m.d.c;

    memset(&m, 0, sizeof(m));
    memset(&cx, 0, sizeof(cx));
    cx.d = &m.d;
    m.cx = &cx;
    apply_defaults(L, IG_PSEC_COLUMN, &m.d);
    c->name = adup(L, sval(kn));
    c->from_index = -1;
    c->lookup.target = -1;
    c->lookup.from_index = -1;
    c->rules.min_length = -1;
    c->rules.max_length = -1;
    c->pos = pos_of(kn);
    if (check_ident(L, kn, path, c->name) != IG_OK)
        return IG_CONFIG;
    if (n->type == YAML_SCALAR_NODE && !is_null(n)) {
        c->from = adup(L, sval(n)); /* short form: name: header */
    } else {
        if (parse_map(L, n, path, IG_PSEC_COLUMN, &m, column_special_tramp,
                      seen) != IG_OK ||
            check_source(L, &cx, n, seen, path) != IG_OK ||
            check_typed_keys(L, &m.d, seen, path) != IG_OK ||
            check_rules(L, &cx) != IG_OK ||
            check_fixed_values(L, c, m.d.dflt, seen, path) != IG_OK)
            return IG_CONFIG;
    }
    if (m.d.dflt != NULL) {
        ig_xform *xs = aalloc(L, (c->n_xforms + 1) * sizeof(*xs));
        if (c->n_xforms)
            memcpy(xs, c->xforms, c->n_xforms * sizeof(*xs));
        xs[c->n_xforms].kind = IG_XFORM_DEFAULT;
        xs[c->n_xforms].value = m.d.dflt;
        c->xforms = xs;
        c->n_xforms++;
    }
    if (c->source == IG_COLSRC_LOOKUP && c->n_xforms > 0) {
        c->lookup.xforms = c->xforms; /* the column's own win */
        c->lookup.n_xforms = c->n_xforms;
    }
    c->update_rule = m.d.update_choice == UPDATE_NEVER
                         ? IG_UPDATE_OVERWRITE
                         : (ig_update_rule)m.d.update_choice;
    c->update = m.d.update_choice == UPDATE_NEVER ? 0 : 1;
    if (c->source == IG_COLSRC_FROM)
        add_input(L, c->from);
    else if (c->source == IG_COLSRC_LOOKUP)
        add_input(L, c->lookup.from);
    *out = *c;
    return IG_OK;
}

/* ------------------------------------------------------------------ */
/* Targets                                                             */

typedef struct tctx {
    tdecl d;
    int cols_ok;
} tctx;

/* IG_CONFIG (reported) when pair pr's key already appeared in map n. */
static int dup_key(ld *L, yaml_node_t *n, yaml_node_pair_t *pr,
                   const char *path)
{
    yaml_node_t *kn = node_at(L, pr->key);

    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pr; q++) {
        yaml_node_t *qk = node_at(L, q->key);
        if (qk->type == YAML_SCALAR_NODE &&
            strcmp(sval(qk), sval(kn)) == 0)
            return lerr(L, kn, path, "duplicate key '%s' (first at line "
                        "%d)", sval(kn), pos_of(qk).line);
    }
    return IG_OK;
}

static int parse_columns(ld *L, yaml_node_t *n, const char *path,
                         ig_target *t)
{
    size_t cnt, i = 0;
    ig_column *cols;
    char cp[PATHMAX];
    int rc = IG_OK;

    if (n->type != YAML_MAPPING_NODE)
        return lerr(L, n, path, "expected a mapping of column: source, got "
                    "%s", node_kind(n));
    cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt == 0)
        return lerr(L, n, path, "is empty; map at least one column");
    cols = aalloc(L, cnt * sizeof(*cols));
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
         pr < n->data.mapping.pairs.top; pr++, i++) {
        yaml_node_t *kn = node_at(L, pr->key);
        if (kn->type != YAML_SCALAR_NODE) {
            rc = lerr(L, kn, path, "column names must be scalars");
            continue;
        }
        subpath(cp, path, sval(kn));
        if (dup_key(L, n, pr, cp) != IG_OK ||
            parse_column(L, kn, node_at(L, pr->value), cp, &cols[i]) != IG_OK)
            rc = IG_CONFIG;
    }
    t->cols = cols;
    t->n_cols = cnt;
    return rc;
}

static int target_special(ld *L, const ig_pipeline_key *k, yaml_node_t *v,
                          const char *path, void *obj)
{
    tctx *tc = obj;

    (void)k; /* only "columns" */
    tc->cols_ok = parse_columns(L, v, path, &tc->d.t) == IG_OK;
    return tc->cols_ok ? IG_OK : IG_CONFIG;
}

static const ig_column *find_col(const ig_target *t, const char *name)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

/* Each entry of a list key must name a mapped column. */
static int check_mapped(ld *L, const ig_target *t, yaml_node_t *list,
                        const char *path, const char *const *names,
                        size_t n)
{
    const char *colnames[512];
    size_t nc = t->n_cols < 512 ? t->n_cols : 512;
    char ip[PATHMAX], hint[128];
    int rc = IG_OK;

    for (size_t i = 0; i < nc; i++)
        colnames[i] = t->cols[i].name;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = list;
        if (list->type == YAML_SEQUENCE_NODE) {
            e = node_at(L, list->data.sequence.items.start[i]);
            indexpath(ip, path, i);
        } else {
            snprintf(ip, PATHMAX, "%s", path);
        }
        if (find_col(t, names[i]) == NULL)
            rc = lerr(L, e, ip, "'%s' is not a mapped column of this "
                      "target%s", names[i],
                      did_you_mean(hint, sizeof(hint), names[i], colnames,
                                   nc));
    }
    return rc;
}

static void mark_key_and_update(tdecl *d)
{
    ig_target *t = &d->t;
    ig_column *cols = (ig_column *)(uintptr_t)t->cols; /* ours to fill */

    for (size_t i = 0; i < t->n_cols; i++) {
        int is_key = 0, listed = d->update_columns == NULL;
        for (size_t j = 0; j < t->n_key; j++)
            if (strcmp(t->key[j], cols[i].name) == 0)
                is_key = 1;
        for (size_t j = 0; j < d->n_update_columns; j++)
            if (strcmp(d->update_columns[j], cols[i].name) == 0)
                listed = 1;
        cols[i].is_key = is_key;
        cols[i].update = cols[i].update && !is_key && listed;
    }
}

static int cross_check_target(ld *L, tdecl *d, yaml_node_t **seen,
                              const char *path)
{
    ig_target *t = &d->t;
    char kp[PATHMAX];
    int rc = IG_OK;

    subpath(kp, path, "key");
    rc |= check_mapped(L, t, seen[kidx(IG_PSEC_TARGET, "key")], kp, t->key,
                       t->n_key);
    if (t->n_skip_when_null) {
        subpath(kp, path, "skip_when_null");
        rc |= check_mapped(L, t, seen[kidx(IG_PSEC_TARGET, "skip_when_null")],
                           kp, t->skip_when_null, t->n_skip_when_null);
    }
    if (d->n_update_columns) {
        yaml_node_t *un = seen[kidx(IG_PSEC_TARGET, "update_columns")];
        subpath(kp, path, "update_columns");
        rc |= check_mapped(L, t, un, kp, d->update_columns,
                           d->n_update_columns);
        for (size_t i = 0; rc == IG_OK && i < d->n_update_columns; i++) {
            yaml_node_t *e = un->type == YAML_SEQUENCE_NODE
                                 ? node_at(L, un->data.sequence.items.start[i])
                                 : un;
            for (size_t j = 0; j < t->n_key; j++)
                if (strcmp(d->update_columns[i], t->key[j]) == 0)
                    rc = lerr(L, e, kp, "'%s' is part of the key; key "
                              "columns are never updated", t->key[j]);
        }
    }
    if (t->touch && find_col(t, t->touch)) {
        subpath(kp, path, "touch");
        rc = lerr(L, seen[kidx(IG_PSEC_TARGET, "touch")], kp, "'%s' is also "
                  "a mapped column; touch names a column set to now()",
                  t->touch);
    }
    if (rc == IG_OK)
        mark_key_and_update(d);
    return rc ? IG_CONFIG : IG_OK;
}

static int parse_target(ld *L, yaml_node_t *n, const char *path,
                        ig_target *out)
{
    tctx tc;
    yaml_node_t *seen[KMAX];
    int before = L->nerr;

    memset(&tc, 0, sizeof(tc));
    apply_defaults(L, IG_PSEC_TARGET, &tc.d);
    if (parse_map(L, n, path, IG_PSEC_TARGET, &tc, target_special, seen) ==
        IG_OK)
        (void)cross_check_target(L, &tc.d, seen, path);
    if (tc.d.t.name == NULL)
        tc.d.t.name = tc.d.t.table;
    tc.d.t.pos = pos_of(n);
    *out = tc.d.t;
    return L->nerr == before ? IG_OK : IG_CONFIG;
}

/* Collect every target's name first, so a lookup can tell "declared later"
 * from "unknown", and names are checked unique. */
static int prescan_targets(ld *L, yaml_node_t *seq)
{
    size_t n = (size_t)(seq->data.sequence.items.top -
                        seq->data.sequence.items.start);
    char ip[PATHMAX];
    int rc = IG_OK;

    L->tnames = aalloc(L, (n + 1) * sizeof(*L->tnames));
    L->tnodes = aalloc(L, (n + 1) * sizeof(*L->tnodes));
    L->tok = aalloc(L, (n + 1) * sizeof(*L->tok));
    L->ntnames = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *t = node_at(L, seq->data.sequence.items.start[i]);
        yaml_node_t *name = NULL, *table = NULL;
        if (t->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *pr = t->data.mapping.pairs.start;
             pr < t->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = node_at(L, pr->key), *v = node_at(L, pr->value);
            if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
                continue;
            if (strcmp(sval(k), "name") == 0)
                name = v;
            else if (strcmp(sval(k), "table") == 0)
                table = v;
        }
        if (name == NULL)
            name = table;
        if (name == NULL)
            continue;
        L->tnames[i] = sval(name);
        L->tnodes[i] = name;
        for (size_t j = 0; j < i; j++) {
            if (L->tnames[j] && strcmp(L->tnames[j], L->tnames[i]) == 0) {
                indexpath(ip, "targets", i);
                rc = lerr(L, name, ip, "target name '%s' is already used by "
                          "targets[%zu]; give one a distinct name",
                          L->tnames[i], j);
            }
        }
    }
    return rc;
}

static int parse_targets(ld *L, yaml_node_t *n, const char *path)
{
    ig_pipeline *p = L->p;
    size_t cnt, i = 0;
    char ip[PATHMAX];

    if (n->type != YAML_SEQUENCE_NODE)
        return lerr(L, n, path, "expected a list of targets, got %s",
                    node_kind(n));
    cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt == 0)
        return lerr(L, n, path, "is empty; a pipeline needs at least one "
                    "target");
    if (prescan_targets(L, n) != IG_OK)
        return IG_CONFIG;
    p->targets = aalloc(L, cnt * sizeof(*p->targets));
    p->ntargets = cnt;
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         it < n->data.sequence.items.top; it++, i++) {
        indexpath(ip, path, i);
        L->cur_target = i;
        L->tok[i] = parse_target(L, node_at(L, *it), ip,
                                 &p->targets[i]) == IG_OK;
    }
    return IG_OK;
}

/* ------------------------------------------------------------------ */
/* Hooks                                                               */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ingot's own lua/ directory (owned). */
static char *ingot_lua_dir(const ig_pipeline_opts *o)
{
    if (o->lua_dir != NULL)
        return ig_xstrdup(o->lua_dir);
    /* ./lua is ingot's library only when it holds ingot's modules: a
     * project's own lua/ (hooks only) must not hide the installed one. */
    if (is_dir("lua/ingot")) {
        char *real = realpath("lua", NULL);
        return real ? real : ig_xstrdup("lua");
    }
    if (is_dir(INGOT_DATA_DIR "/lua"))
        return ig_xstrdup(INGOT_DATA_DIR "/lua");
    return ig_xstrdup(INGOT_SOURCE_DIR "/lua");
}

/* <dir of the yaml>/../lua, canonical when it exists (owned). */
static char *pipeline_lua_dir(const char *file)
{
    const char *slash = strrchr(file, '/');
    char *raw, *real;

    if (slash == NULL)
        raw = ig_xstrdup("../lua");
    else
        raw = ig_xasprintf("%.*s/../lua", (int)(slash - file), file);
    real = realpath(raw, NULL);
    if (real == NULL)
        return raw;
    free(raw);
    return real;
}

static int module_name_ok(const char *m)
{
    int start = 1;

    if (*m == '\0' || strlen(m) > 200)
        return 0;
    for (; *m; m++) {
        if (*m == '.') {
            if (start)
                return 0;
            start = 1;
        } else if (isalpha((unsigned char)*m) || *m == '_' ||
                   (!start && isdigit((unsigned char)*m))) {
            start = 0;
        } else {
            return 0;
        }
    }
    return !start;
}

static int resolve_module(ld *L, yaml_node_t *mn, const char *path)
{
    ig_hooks_decl *h = &L->p->hooks;
    char *pdir = pipeline_lua_dir(L->file), *idir = ingot_lua_dir(L->opts);
    char *rel = ig_xstrdup(h->module), *a = NULL, *b = NULL;
    int rc = IG_OK;

    for (char *c = rel; *c; c++)
        if (*c == '.')
            *c = '/';
    a = ig_xasprintf("%s/%s.lua", pdir, rel);
    b = ig_xasprintf("%s/%s.lua", idir, rel);
    if (is_file(a))
        h->path = adup(L, a);
    else if (is_file(b))
        h->path = adup(L, b);
    else
        rc = lerr(L, mn, path, "Lua module '%s' not found (looked for %s "
                  "and %s)", h->module, a, b);
    if (rc == IG_OK) {
        char *lp = ig_xasprintf("%s/?.lua;%s/?.lua", pdir, idir);
        h->lua_path = adup(L, lp);
        free(lp);
    }
    free(pdir);
    free(idir);
    free(rel);
    free(a);
    free(b);
    return rc;
}

/* Load the module in a sandbox once, so a broken script or a module
 * without hook functions fails at load time with its own file:line, and
 * record which hooks it defines. */
static int check_hook_shape(ld *L, yaml_node_t *mn, const char *kp)
{
    ig_hooks_decl *h = &L->p->hooks;
    ig_hook_opts ho;
    ig_hook *hook;
    ig_err err;

    (void)ig_pipeline_hook_opts(L->p, &ho);
    hook = ig_hook_new(&ho, &err);
    if (hook == NULL)
        return lerr(L, mn, kp, "%s", err.msg);
    h->has_transform = ig_hook_has(hook, IG_HOOK_TRANSFORM);
    h->has_validate = ig_hook_has(hook, IG_HOOK_VALIDATE);
    h->has_before_batch = ig_hook_has(hook, IG_HOOK_BEFORE_BATCH);
    h->has_after_batch = ig_hook_has(hook, IG_HOOK_AFTER_BATCH);
    ig_hook_free(hook);
    if (!h->has_transform && !h->has_validate && !h->has_before_batch &&
        !h->has_after_batch)
        return lerr(L, mn, kp, "Lua module '%s' (%s) defines none of "
                    "transform, validate, before_batch, after_batch",
                    h->module, h->path);
    return IG_OK;
}

static int parse_hooks(ld *L, yaml_node_t *n, const char *path)
{
    yaml_node_t *seen[KMAX];
    yaml_node_t *mn;
    char kp[PATHMAX];

    if (parse_map(L, n, path, IG_PSEC_HOOKS, &L->p->hooks, NULL, seen) !=
        IG_OK)
        return IG_CONFIG;
    if (L->p->hooks.module == NULL)
        return IG_OK;
    mn = seen[kidx(IG_PSEC_HOOKS, "module")];
    subpath(kp, path, "module");
    if (!module_name_ok(L->p->hooks.module))
        return lerr(L, mn, kp, "'%s' is not a Lua module name (like "
                    "hooks.items)", L->p->hooks.module);
    if (resolve_module(L, mn, kp) != IG_OK)
        return IG_CONFIG;
    if (L->opts != NULL && L->opts->check_hooks)
        return check_hook_shape(L, mn, kp);
    return IG_OK;
}

/* ------------------------------------------------------------------ */
/* Top level                                                           */

static int top_special(ld *L, const ig_pipeline_key *k, yaml_node_t *v,
                       const char *path, void *obj)
{
    yaml_node_t *seen[KMAX];

    (void)obj;
    if (strcmp(k->name, "source") == 0)
        return parse_map(L, v, path, IG_PSEC_SOURCE, &L->p->source, NULL,
                         seen);
    if (strcmp(k->name, "hooks") == 0)
        return parse_hooks(L, v, path);
    return parse_targets(L, v, path);
}

static void source_defaults(ld *L)
{
    static const char *const markers[] = {""};

    apply_defaults(L, IG_PSEC_SOURCE, &L->p->source);
    L->p->source.null_markers = markers;
    L->p->source.n_null_markers = 1;
    apply_defaults(L, IG_PSEC_HOOKS, &L->p->hooks);
}

static char *file_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot;

    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    if (dot == NULL || dot == base)
        return ig_xstrdup(base);
    return ig_xasprintf("%.*s", (int)(dot - base), base);
}

/* A libyaml parse error, placed at its problem_mark. */
static int syntax_error(ld *L, const yaml_parser_t *ps)
{
    yaml_node_t at;

    memset(&at, 0, sizeof(at));
    at.start_mark = ps->problem_mark;
    if (ps->context != NULL)
        return lerr(L, &at, "yaml", "%s (%s started at line %zu, column %zu)",
                    ps->problem ? ps->problem : "syntax error", ps->context,
                    ps->context_mark.line + 1, ps->context_mark.column + 1);
    return lerr(L, &at, "yaml", "%s",
                ps->problem ? ps->problem : "syntax error");
}

/* An error at a column's position (after the whole file is parsed). */
static void lerr_pos(ld *L, ig_pos pos, const char *path, const char *fmt,
                     ...) IG_PRINTF(4, 5);
static void lerr_pos(ld *L, ig_pos pos, const char *path, const char *fmt,
                     ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(L, pos.line, pos.col, path, fmt, ap);
    va_end(ap);
}

/* What needs the whole file: the source's dialect, and no column named
 * by header when the input has none (it would read NULL in every row). */
static void check_source_use(ld *L, const yaml_node_t *src)
{
    const ig_source *s = &L->p->source;
    char path[300];

    if (s->delimiter == s->quote || s->delimiter == '\r' ||
        s->delimiter == '\n' || s->quote == '\r' || s->quote == '\n' ||
        (unsigned char)s->delimiter >= 0x80 || (unsigned char)s->quote >= 0x80)
        lerr(L, src, "source", "delimiter and quote must be two different "
             "ASCII characters other than CR and LF");
    if (s->header)
        return;
    for (size_t ti = 0; ti < L->p->ntargets; ti++) {
        const ig_target *t = &L->p->targets[ti];
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            const ig_column *c = &t->cols[ci];
            const char *by = c->source == IG_COLSRC_FROM && c->from_index < 0
                                 ? c->from
                             : c->source == IG_COLSRC_LOOKUP &&
                                     c->lookup.from_index < 0
                                 ? c->lookup.from
                                 : NULL;
            if (by == NULL)
                continue;
            snprintf(path, sizeof(path), "targets[%zu].columns.%s", ti,
                     c->name);
            lerr_pos(L, c->pos, path, "reads input column '%s' by name, but "
                     "source.header is false: map it by position", by);
        }
    }
}

static int load_doc(ld *L, FILE *f)
{
    yaml_parser_t ps;
    yaml_node_t *root;
    yaml_node_t *seen[KMAX];
    topdecl top;
    int rc;

    memset(&top, 0, sizeof(top));
    if (!yaml_parser_initialize(&ps))
        return ig_err_set(&L->first, IG_NOMEM, "%s: cannot start the YAML "
                          "parser", L->file);
    yaml_parser_set_input_file(&ps, f);
    if (!yaml_parser_load(&ps, L->doc)) {
        rc = syntax_error(L, &ps);
        yaml_parser_delete(&ps);
        return rc;
    }
    {
        /* A second document (after "---") would be ignored silently. */
        yaml_document_t more;
        yaml_node_t *more_root;
        if (!yaml_parser_load(&ps, &more)) {
            rc = syntax_error(L, &ps);
            yaml_parser_delete(&ps);
            return rc;
        }
        more_root = yaml_document_get_root_node(&more);
        if (more_root != NULL) {
            rc = lerr(L, more_root, "pipeline",
                      "a second YAML document: a pipeline is one "
                      "document (remove the '---' and what follows, or "
                      "put it in a file of its own)");
            yaml_document_delete(&more);
            yaml_parser_delete(&ps);
            return rc;
        }
        yaml_document_delete(&more);
    }
    yaml_parser_delete(&ps);
    root = yaml_document_get_root_node(L->doc);
    if (root == NULL) {
        yaml_node_t fake;
        memset(&fake, 0, sizeof(fake));
        return lerr(L, &fake, "pipeline", "the file is empty; expected a "
                    "mapping with targets");
    }
    source_defaults(L);
    (void)parse_map(L, root, "", IG_PSEC_PIPELINE, &top, top_special, seen);
    if (L->nerr == 0)
        check_source_use(L, seen[kidx(IG_PSEC_PIPELINE, "source")]);
    L->p->description = top.description;
    return L->nerr ? IG_CONFIG : IG_OK;
}

ig_pipeline *ig_pipeline_load(const char *path, const ig_pipeline_opts *opts,
                              ig_err *err)
{
    static const ig_pipeline_opts no_opts;
    yaml_document_t doc;
    ig_pipeline *p = NULL;
    FILE *f = NULL;
    ld L;
    int rc;

    memset(&L, 0, sizeof(L));
    memset(&doc, 0, sizeof(doc));
    f = fopen(path, "rb");
    if (f == NULL) {
        ig_err_set(err, errno == ENOENT ? IG_NOTFOUND : IG_IO,
                   "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
            fclose(f);
            ig_err_set(err, IG_IO, "%s: is a directory, not a pipeline "
                       "YAML file", path);
            return NULL;
        }
    }
    p = ig_xcalloc(1, sizeof(*p));
    p->arena = ig_arena_new(0);
    p->file = ig_xstrdup(path);
    p->name = file_stem(path);
    L.p = p;
    L.doc = &doc;
    L.file = p->file;
    L.opts = opts ? opts : &no_opts;
    ig_err_clear(&L.first);
    rc = load_doc(&L, f);
    yaml_document_delete(&doc); /* zeroed or loaded: both safe */
    fclose(f);
    if (rc != IG_OK) {
        if (err)
            *err = L.first;
        ig_pipeline_free(p);
        return NULL;
    }
    return p;
}

ig_pipeline *ig_pipeline_load_named(const char *dir, const char *name,
                                    const ig_pipeline_opts *opts,
                                    ig_err *err)
{
    char *path = ig_xasprintf("%s/%s.yaml", dir, name);
    ig_pipeline *p;

    if (!is_file(path)) {
        char *alt = ig_xasprintf("%s/%s.yml", dir, name);
        if (is_file(alt)) {
            free(path);
            path = alt;
        } else {
            free(alt);
        }
    }
    if (strchr(name, '/') != NULL || name[0] == '.') {
        ig_err_set(err, IG_USAGE, "'%s' is not a pipeline name", name);
        free(path);
        return NULL;
    }
    p = ig_pipeline_load(path, opts, err);
    free(path);
    return p;
}

void ig_pipeline_free(ig_pipeline *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nres; i++)
        regfree(p->res[i]);
    free(p->res);
    free(p->inputs);
    free(p->file);
    free(p->name);
    ig_arena_free(p->arena);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

const char *ig_pipeline_name(const ig_pipeline *p) { return p->name; }

int ig_pipeline_hook_opts(const ig_pipeline *p, ig_hook_opts *out)
{
    const ig_hooks_decl *h = &p->hooks;

    memset(out, 0, sizeof(*out));
    if (h->module == NULL)
        return 0;
    out->path = h->path;
    out->module = h->module;
    out->lua_path = h->lua_path;
    out->pipeline = p->name ? p->name : "";
    out->max_instructions = h->max_instructions;
    out->max_memory_kb = h->max_memory_kb;
    out->max_cpu_ms = h->max_cpu_ms;
    return 1;
}
const char *ig_pipeline_file(const ig_pipeline *p) { return p->file; }
const char *ig_pipeline_description(const ig_pipeline *p)
{
    return p->description ? p->description : "";
}
const ig_source *ig_pipeline_source(const ig_pipeline *p)
{
    return &p->source;
}
size_t ig_pipeline_ntargets(const ig_pipeline *p) { return p->ntargets; }
const ig_target *ig_pipeline_target(const ig_pipeline *p, size_t i)
{
    return i < p->ntargets ? &p->targets[i] : NULL;
}
const ig_hooks_decl *ig_pipeline_hooks(const ig_pipeline *p)
{
    return &p->hooks;
}
int ig_pipeline_is_parent(const ig_pipeline *p, size_t i)
{
    for (size_t t = 0; t < p->ntargets; t++)
        for (size_t c = 0; c < p->targets[t].n_cols; c++)
            if (p->targets[t].cols[c].source == IG_COLSRC_LOOKUP &&
                p->targets[t].cols[c].lookup.target == (int)i)
                return 1;
    return 0;
}
size_t ig_pipeline_ninputs(const ig_pipeline *p) { return p->ninputs; }
const char *ig_pipeline_input(const ig_pipeline *p, size_t i)
{
    return i < p->ninputs ? p->inputs[i] : NULL;
}
size_t ig_pipeline_ncolumns(const ig_pipeline *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->ntargets; i++)
        n += p->targets[i].n_cols;
    return n;
}
