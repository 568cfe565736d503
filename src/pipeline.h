/*
 * pipeline.h - a loaded pipeline: what one import reads and where each
 * value goes. Built from one YAML file (pipelines/<name>.yaml) by
 * ig_pipeline_load(), then immutable.
 *
 * The handle (ig_pipeline) is opaque and owns everything below. The
 * descriptor structs it hands out (ig_source, ig_target, ig_column, ...)
 * are plain read-only data, like ig_conf: they are built once, never
 * change, and are shared freely between threads through const pointers.
 * Every pointer they hold is borrowed from the pipeline and valid until
 * ig_pipeline_free().
 *
 * Identifiers (tables, columns, keys) are validated at load time
 * ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes, optional "schema." prefix on
 * tables) and always quoted when put into SQL. SQL fragments written by the
 * pipeline author (key predicate, update guard) are structure, never data,
 * and are checked to be a single expression (no ';', no comment markers).
 */
#ifndef IG_PIPELINE_H
#define IG_PIPELINE_H

#include <regex.h>
#include <stddef.h>

#include "err.h"

/* ------------------------------------------------------------------ */
/* Enumerations (each has a name table for YAML, messages and docs)    */

typedef enum {
    IG_TYPE_TEXT = 0,
    IG_TYPE_INT,       /* 32-bit integer */
    IG_TYPE_BIGINT,    /* 64-bit integer */
    IG_TYPE_NUMERIC,   /* decimal with optional precision and scale */
    IG_TYPE_BOOL,
    IG_TYPE_DATE,
    IG_TYPE_TIMESTAMP, /* timestamptz */
    IG_TYPE_UUID,
    IG_TYPE_JSON       /* jsonb */
} ig_type;

typedef enum { IG_FORMAT_CSV = 0, IG_FORMAT_JSON } ig_format;

typedef enum {
    IG_ENCODING_UTF8 = 0, /* with or without BOM */
    IG_ENCODING_LATIN1,   /* ISO-8859-1, converted to UTF-8 */
    IG_ENCODING_WIN1252   /* windows-1252, converted to UTF-8 */
} ig_encoding;

typedef enum {
    IG_UNKNOWN_COLUMNS_IGNORE = 0, /* input columns nobody maps are fine */
    IG_UNKNOWN_COLUMNS_ERROR       /* ... are a load-time error */
} ig_unknown_columns;

typedef enum {
    IG_MISSING_COLUMNS_ERROR = 0, /* a mapped header absent: import refused */
    IG_MISSING_COLUMNS_NULL       /* ... treated as NULL in every row */
} ig_missing_columns;

typedef enum {
    IG_ON_CONFLICT_UPDATE = 0, /* DO UPDATE SET ... WHERE IS DISTINCT FROM */
    IG_ON_CONFLICT_IGNORE,     /* DO NOTHING: existing rows are unchanged */
    IG_ON_CONFLICT_ERROR       /* an existing row is a row error */
} ig_on_conflict;

typedef enum {
    IG_DUPLICATES_ERROR = 0, /* later occurrences are row errors naming the
                                first one's row */
    IG_DUPLICATES_FIRST,     /* keep the first, later ones are skipped */
    IG_DUPLICATES_LAST       /* keep the last, earlier ones are skipped */
} ig_duplicates;

typedef enum {
    IG_UPDATE_OVERWRITE = 0, /* SET c = EXCLUDED.c */
    IG_UPDATE_KEEP,          /* keep the existing value when it is not NULL:
                                SET c = COALESCE(t.c, EXCLUDED.c) */
    IG_UPDATE_COALESCE       /* a NULL input keeps the existing value:
                                SET c = COALESCE(EXCLUDED.c, t.c) */
} ig_update_rule;

typedef enum {
    IG_XFORM_TRIM = 0,
    IG_XFORM_COLLAPSE_SPACES, /* runs of whitespace -> one space */
    IG_XFORM_LOWER,           /* UTF-8 aware where libc allows */
    IG_XFORM_UPPER,
    IG_XFORM_STRIP_CONTROL,   /* remove C0/C1 control chars except none */
    IG_XFORM_REPLACE,         /* exact-match map: from[i] -> to[i] */
    IG_XFORM_NULL_IF,         /* values equal to one of from[] become NULL */
    IG_XFORM_DEFAULT          /* NULL (or empty) becomes value */
} ig_xform_kind;

typedef enum {
    IG_COLSRC_FROM = 0, /* an input column, by header name or position */
    IG_COLSRC_CONST,    /* a constant (value; NULL = SQL NULL) */
    IG_COLSRC_LOOKUP    /* a parent's id found by natural key */
} ig_colsrc;

/* ------------------------------------------------------------------ */
/* Descriptors (read-only, owned by the pipeline)                      */

/* Where a declaration sits in its YAML file, for messages. */
typedef struct ig_pos {
    int line; /* 1-based */
    int col;  /* 1-based */
} ig_pos;

typedef struct ig_source {
    ig_format format;
    char delimiter;         /* default ',' */
    char quote;             /* default '"' */
    int header;             /* 1 = first record names the columns (default) */
    ig_encoding encoding;
    const char *const *null_markers; /* values read as NULL; default {""} */
    size_t n_null_markers;
    ig_unknown_columns unknown_columns;
    ig_missing_columns missing_columns;
    size_t max_field_bytes; /* longer fields are row errors; default 1 MiB */
} ig_source;

typedef struct ig_xform {
    ig_xform_kind kind;
    const char *const *from; /* REPLACE keys, NULL_IF values */
    const char *const *to;   /* REPLACE values (same count as from) */
    size_t n;
    const char *value;       /* DEFAULT's value */
    int case_insensitive;    /* REPLACE / NULL_IF compare ignoring ASCII case */
} ig_xform;

typedef struct ig_rules {
    int required;            /* NULL (after transforms) is a row error */
    long min_length;         /* in characters (UTF-8 code points); -1 unset */
    long max_length;         /* -1 unset */
    const char *min_value;   /* as written in YAML; NULL unset. Compared in
                                the column's type (numbers exactly, dates
                                and timestamps chronologically). */
    const char *max_value;
    const char *const *enum_values; /* allowed values; n_enum == 0: any */
    size_t n_enum;
    int enum_case_insensitive;
    const char *pattern;     /* POSIX ERE, anchored by the author if wanted;
                                NULL unset */
    const regex_t *pattern_re; /* compiled pattern (REG_EXTENDED|REG_NOSUB) */
} ig_rules;

typedef struct ig_lookup {
    const char *table;      /* parent table (maybe "schema.table") */
    const char *key;        /* parent's natural-key column, e.g. "name" */
    const char *id;         /* parent's id column; default "id" */
    const char *from;       /* input column holding the natural key */
    int from_index;         /* or its 0-based position; -1 when by name */
    const char *predicate;  /* parent rows considered, e.g.
                               "deleted_at IS NULL"; NULL = all */
    int target;             /* index of the earlier target that upserts the
                               parent in the same import, or -1 */
    const struct ig_xform *xforms; /* applied to the natural key first */
    size_t n_xforms;
} ig_lookup;

typedef struct ig_column {
    const char *name;       /* target column */
    ig_colsrc source;
    const char *from;       /* IG_COLSRC_FROM: input header name, or NULL */
    int from_index;         /* IG_COLSRC_FROM by position (0-based), or -1 */
    const char *constant;   /* IG_COLSRC_CONST: the value (NULL = SQL NULL) */
    ig_lookup lookup;       /* IG_COLSRC_LOOKUP */
    ig_type type;
    int precision, scale;   /* IG_TYPE_NUMERIC; 0 = unconstrained */
    const char *date_format; /* strptime format for DATE/TIMESTAMP input,
                                NULL = ISO 8601 */
    const ig_xform *xforms; /* in declaration order */
    size_t n_xforms;
    ig_rules rules;
    int is_key;             /* part of the target's conflict key */
    int update;             /* set in DO UPDATE (default: every non-key
                               mapped column) */
    ig_update_rule update_rule;
    ig_pos pos;
} ig_column;

typedef struct ig_target {
    const char *name;        /* unique in the pipeline; default: table */
    const char *table;       /* maybe "schema.table" */
    const char *const *key;  /* conflict key columns, each also a column */
    size_t n_key;
    const char *key_predicate; /* unique index predicate, e.g.
                                  "deleted_at IS NULL"; NULL = none */
    ig_on_conflict on_conflict;
    ig_duplicates duplicates;
    const char *touch;       /* column set to now() on update, e.g.
                                "updated_at"; NULL = none */
    const char *guard;       /* extra condition for DO UPDATE ... WHERE,
                                over t.<col> and EXCLUDED.<col>; NULL none */
    const char *const *skip_when_null; /* skip this target for a row when
                                any of these columns is NULL (for a lookup
                                column: its natural key) */
    size_t n_skip_when_null;
    const ig_column *cols;
    size_t n_cols;
    ig_pos pos;
} ig_target;

typedef struct ig_hooks_decl {
    const char *module;      /* Lua module name, e.g. "hooks.items"; NULL =
                                no hooks */
    const char *path;        /* resolved file of the module */
    const char *lua_path;    /* search path for require (";"-separated
                                "?.lua" patterns): the pipeline's lua/ dir
                                then ingot's own lua/ */
    long max_instructions;   /* per call; default 1000000 */
    long max_memory_kb;      /* per state; default 32768 */
    long max_cpu_ms;         /* per call; default 2000 */
    int has_transform, has_validate, has_before_batch, has_after_batch;
} ig_hooks_decl;

/* ------------------------------------------------------------------ */
/* The handle                                                          */

typedef struct ig_pipeline ig_pipeline; /* opaque */

/* One problem found while loading, for callers that want all of them
 * (ingot check) rather than the first one in ig_err. All strings borrowed:
 * valid only during the callback. */
typedef struct ig_pipeline_diag {
    const char *file;    /* the path given to ig_pipeline_load */
    int line, col;       /* 1-based; 0 when the problem has no place */
    const char *path;    /* key path, e.g. "targets[0].columns.price.type" */
    const char *message; /* the problem, e.g. "unknown type 'nummeric'
                            (did you mean 'numeric'?)" */
} ig_pipeline_diag;

typedef void (*ig_pipeline_diag_fn)(void *ud, const ig_pipeline_diag *d);

typedef struct ig_pipeline_opts {
    const char *lua_dir; /* ingot's own Lua library dir (copied); NULL =
                            search like migrations: ./lua, installed, source */
    int check_hooks;     /* 1 = load the Lua module and verify the named
                            hook functions exist (ingot check, ingot run) */
    ig_pipeline_diag_fn diag; /* NULL, or called once per problem found
                                 (in file order, at most 100); the load
                                 still fails with the first one in err */
    void *diag_ud;
} ig_pipeline_opts;

/* Load and check the pipeline in the YAML file at path. Returns an owned
 * pipeline, or NULL with *err as "file:line:col: key.path: problem
 * (did you mean 'x'?)". Cross-checks done here: key columns are mapped,
 * lookups name an existing earlier target or a table, no target depends on
 * a later one, identifiers are valid, hook functions exist (check_hooks). */
ig_pipeline *ig_pipeline_load(const char *path, const ig_pipeline_opts *opts,
                              ig_err *err) IG_MUSTCHECK;

/* Resolve a pipeline name ("items") to dir/items.yaml and load it. */
ig_pipeline *ig_pipeline_load_named(const char *dir, const char *name,
                                    const ig_pipeline_opts *opts,
                                    ig_err *err) IG_MUSTCHECK;

void ig_pipeline_free(ig_pipeline *p);

/* Accessors; all returns borrowed from p. Cannot fail. */
const char *ig_pipeline_name(const ig_pipeline *p);   /* file stem */
const char *ig_pipeline_file(const ig_pipeline *p);   /* path loaded */
const char *ig_pipeline_description(const ig_pipeline *p); /* or "" */
const ig_source *ig_pipeline_source(const ig_pipeline *p);
size_t ig_pipeline_ntargets(const ig_pipeline *p);
const ig_target *ig_pipeline_target(const ig_pipeline *p, size_t i);
const ig_hooks_decl *ig_pipeline_hooks(const ig_pipeline *p);
/* Whether a column of another target looks target i up (a parent). */
int ig_pipeline_is_parent(const ig_pipeline *p, size_t i);

/* Options to build this pipeline's Lua host (hook.h's ig_hook_opts) from
 * its hooks declaration: path, module, lua_path, pipeline name, limits.
 * *out borrows p's strings. Returns 0 when the pipeline has no hooks. */
struct ig_hook_opts;
int ig_pipeline_hook_opts(const ig_pipeline *p, struct ig_hook_opts *out);

/* Names of the input columns the pipeline reads by name (from: and
 * lookup from:), deduplicated, in first-use order. */
size_t ig_pipeline_ninputs(const ig_pipeline *p);
const char *ig_pipeline_input(const ig_pipeline *p, size_t i);

/* ------------------------------------------------------------------ */
/* The key tables (STYLE rule 13): they drive parsing, unknown-key      */
/* errors, ingot check and docs/pipelines.md (checked by a unit test).  */

typedef enum {
    IG_PSEC_PIPELINE = 0, /* the top-level mapping */
    IG_PSEC_SOURCE,
    IG_PSEC_HOOKS,
    IG_PSEC_TARGET,       /* one item of targets: */
    IG_PSEC_COLUMN,       /* one value of a target's columns: */
    IG_PSEC_LOOKUP,
    IG_PSEC_RULES,
    IG_PSEC_TRANSFORM,    /* the names usable in transforms: [...] */
    IG_PSEC__COUNT
} ig_pipeline_section;

typedef enum {
    IG_PKEY_STRING = 0, /* any scalar */
    IG_PKEY_IDENT,      /* an SQL identifier */
    IG_PKEY_TABLE,      /* identifier or schema.identifier */
    IG_PKEY_SQL,        /* one SQL expression (no ';' or comments) */
    IG_PKEY_CHAR,       /* a one-byte string */
    IG_PKEY_BOOL,
    IG_PKEY_INT,        /* stored as int */
    IG_PKEY_LONG,       /* stored as long */
    IG_PKEY_SIZE,       /* stored as size_t */
    IG_PKEY_ENUM,       /* one of values[], stored as int */
    IG_PKEY_STRLIST,    /* list of scalars (const char **, count) */
    IG_PKEY_IDENTLIST,  /* list of identifiers (a scalar is a list of 1) */
    IG_PKEY_SPECIAL     /* parsed by its section's own code (nested
                           mappings, transforms, const, ...) */
} ig_pkey_type;

typedef struct ig_pipeline_key {
    const char *name;     /* YAML key */
    ig_pkey_type type;
    size_t offset;        /* into the section's descriptor (internal) */
    size_t count_offset;  /* lists: where the count goes */
    int required;
    const char *def;      /* default as text, or NULL */
    const char *doc;      /* one line for docs and ingot check */
    const char *const *values; /* IG_PKEY_ENUM: names, NULL-terminated */
    long min, max;        /* numeric bounds, inclusive */
} ig_pipeline_key;

/* The key table of a section, terminated by a row with name == NULL.
 * Static; cannot fail. */
const ig_pipeline_key *ig_pipeline_keys(ig_pipeline_section s);
/* "pipeline", "source", "hooks", "targets[]", "columns", "lookup",
 * "rules", "transforms"; static. */
const char *ig_pipeline_section_name(ig_pipeline_section s);
/* "string", "identifier", ...; static. */
const char *ig_pkey_type_name(ig_pkey_type t);

/* Total number of columns over all targets. Cannot fail. */
size_t ig_pipeline_ncolumns(const ig_pipeline *p);

/* Name tables, e.g. ig_type_name(IG_TYPE_NUMERIC) == "numeric". Static. */
const char *ig_type_name(ig_type t);
const char *ig_on_conflict_name(ig_on_conflict v);
const char *ig_duplicates_name(ig_duplicates v);
const char *ig_update_rule_name(ig_update_rule v);
const char *ig_xform_name(ig_xform_kind k);

#endif /* IG_PIPELINE_H */
