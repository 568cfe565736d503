/*
 * mapper.c - records to batch rows; see mapper.h.
 *
 * The row a hook sees holds every header column plus every name the
 * pipeline reads that the header lacks (NULL), so a transform hook can
 * fill a column the spreadsheet does not have.
 */
#include "mapper.h"

#include "keyset.h"
#include "log.h"
#include "rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAX_REASONS 32

struct ig_mapper {
    const ig_pipeline *p;
    ig_hook *hook;        /* borrowed, may be NULL */
    ig_results *results;  /* borrowed */
    size_t nnames;        /* header columns + extra names */
    const char **names;   /* borrowed strings (header or pipeline) */
    size_t nheader;
    int width_checked;  /* headerless: the first record's width was
                           checked against the positions read */
    int **col_index;      /* [target][col] -> index into names, or -1 */
    int **key_cols;       /* [target][k] -> column index */
    int **skip_cols;      /* [target][i] -> column index */
    ig_keyset **keysets;  /* [target]: duplicates error/first, else NULL */
    int *eligible;        /* per target, scratch */
    uint64_t *key_seen;   /* per target, scratch: first row or 0 */
    ig_value *vals;       /* per target x column, scratch */
    ig_value *src;        /* per name: the row's source values, scratch */
    size_t nvals;
    size_t *val_base;     /* [target] -> offset into vals */
    char *keybuf;         /* scratch for key bytes */
    size_t keycap;
    long long batch_no;
    /* Keys the database compares otherwise than by their bytes
     * (ig_mapper_hash_keys): every row's duplicate-key decisions wait in
     * pend until ig_mapper_resolve has the database's hashes. */
    ig_mapper_hash_fn *hash; /* NULL: decided row by row, by bytes */
    void *hash_ud;
    unsigned char *hashed;   /* [target]: by the database's hash */
    int waiting;             /* ig_mapper_defer_keys: how is not known yet,
                                every row keeps its key values */
    int by_bytes;            /* told: by bytes after the next resolve */
    struct pending *pend;
    size_t npend, cappend;
};

/* A row whose duplicate-key decisions wait for ig_mapper_resolve. Its
 * arrays are in the batch arena. */
typedef struct pending {
    long long row;        /* index in the batch, or -1: only remembered */
    uint32_t recno;
    unsigned char *elig;  /* [target]: skip_when_null passed */
    unsigned char *knull; /* [target]: the key has a NULL value */
    const char **kbytes;  /* [target]: key bytes (see key_bytes) */
    size_t *klen;
    ig_value **kvals;     /* [target]: the key's values, in key order */
} pending;

static int find_name(const ig_mapper *m, const char *name)
{
    for (size_t i = 0; i < m->nnames; i++)
        if (strcmp(m->names[i], name) == 0)
            return (int)i;
    return -1;
}

static void add_name(ig_mapper *m, const char *name)
{
    if (find_name(m, name) >= 0)
        return;
    m->names = ig_xrealloc(m->names, (m->nnames + 1) * sizeof(*m->names));
    m->names[m->nnames++] = name;
}

/* Name of the input a column reads (from:, or lookup from:), or NULL. */
static const char *col_input(const ig_column *c)
{
    if (c->source == IG_COLSRC_FROM)
        return c->from;
    if (c->source == IG_COLSRC_LOOKUP)
        return c->lookup.from;
    return NULL;
}

static int col_position(const ig_column *c)
{
    if (c->source == IG_COLSRC_FROM)
        return c->from_index;
    if (c->source == IG_COLSRC_LOOKUP)
        return c->lookup.from_index;
    return -1;
}

static int col_by_name(const ig_target *t, const char *name)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* A hint for a header that reads as one column holding another common
 * delimiter (a semicolon-separated export read with the default comma):
 * "" when there is none. */
static void delimiter_hint(const ig_mapper *m, char *hint, size_t size)
{
    static const struct {
        char c;
        const char *said, *yaml;
    } cand[] = {{';', "';'", ";"}, {'\t', "tabs", "\\t"},
                {'|', "'|'", "|"}, {',', "','", ","}};
    const ig_source *src = ig_pipeline_source(m->p);

    hint[0] = '\0';
    if (m->nheader != 1)
        return;
    for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
        if (cand[i].c != src->delimiter &&
            strchr(m->names[0], cand[i].c) != NULL) {
            snprintf(hint, size, "; the header reads as one column: if the "
                     "file is delimited by %s, set source.delimiter: \"%s\"",
                     cand[i].said, cand[i].yaml);
            return;
        }
}

/* Check the header against the pipeline's inputs (missing / unknown
 * columns policies). */
static int check_columns(ig_mapper *m, ig_err *err)
{
    const ig_source *src = ig_pipeline_source(m->p);
    char missing[512] = "", found[512] = "", hint[128];
    size_t nmissing = 0;

    if (m->nheader == 0)
        return IG_OK; /* positional source */
    for (size_t i = 0; i < ig_pipeline_ninputs(m->p); i++) {
        const char *in = ig_pipeline_input(m->p, i);
        int j = find_name(m, in);
        for (size_t k = (size_t)j + 1; j >= 0 && k < m->nheader; k++)
            if (strcmp(m->names[k], in) == 0)
                return ig_err_set(err, IG_CONFIG,
                                  "the header has column '%s' twice "
                                  "(columns %d and %zu) and pipeline %s "
                                  "reads it: which one is meant is unclear; "
                                  "rename one", in, j + 1, k + 1,
                                  ig_pipeline_name(m->p));
        if (j >= 0 && (size_t)j < m->nheader)
            continue;
        nmissing++;
        snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
                 "%s'%s'", nmissing > 1 ? ", " : "", in);
    }
    for (size_t i = 0; i < m->nheader; i++)
        snprintf(found + strlen(found), sizeof(found) - strlen(found),
                 "%s'%s'", i ? ", " : "", m->names[i]);
    delimiter_hint(m, hint, sizeof(hint));
    if (nmissing > 0 && src->missing_columns == IG_MISSING_COLUMNS_ERROR)
        return ig_err_set(err, IG_CONFIG,
                          "the input lacks column%s %s that pipeline %s "
                          "reads (the header has %s); fix the header or "
                          "set source.missing_columns: null%s",
                          nmissing > 1 ? "s" : "", missing,
                          ig_pipeline_name(m->p), found, hint);
    if (src->unknown_columns == IG_UNKNOWN_COLUMNS_ERROR) {
        for (size_t i = 0; i < m->nheader; i++) {
            int used = ig_results_is_reject_column(m->names[i]);
            for (size_t k = 0; k < ig_pipeline_ninputs(m->p); k++)
                if (strcmp(ig_pipeline_input(m->p, k), m->names[i]) == 0)
                    used = 1;
            if (!used)
                return ig_err_set(err, IG_CONFIG,
                                  "the input has column '%s' that pipeline "
                                  "%s does not map (source.unknown_columns: "
                                  "error)",
                                  m->names[i], ig_pipeline_name(m->p));
        }
    }
    return IG_OK;
}

ig_mapper *ig_mapper_new(const ig_pipeline *p, const char *const *header,
                         size_t ncols, ig_hook *hook, ig_results *results,
                         ig_err *err)
{
    ig_mapper *m = ig_xcalloc(1, sizeof(*m));
    size_t nt = ig_pipeline_ntargets(p);

    m->p = p;
    m->hook = hook;
    m->results = results;
    /* Every header name, even one said twice: names[i] is field i. */
    m->names = ig_xcalloc(ncols ? ncols : 1, sizeof(*m->names));
    for (size_t i = 0; i < ncols; i++)
        m->names[m->nnames++] = header[i];
    m->nheader = m->nnames;
    for (size_t i = 0; i < ig_pipeline_ninputs(p); i++)
        add_name(m, ig_pipeline_input(p, i));
    if (check_columns(m, err) != IG_OK) {
        ig_mapper_free(m);
        return NULL;
    }
    m->col_index = ig_xcalloc(nt, sizeof(int *));
    m->key_cols = ig_xcalloc(nt, sizeof(int *));
    m->skip_cols = ig_xcalloc(nt, sizeof(int *));
    m->keysets = ig_xcalloc(nt, sizeof(ig_keyset *));
    m->eligible = ig_xcalloc(nt, sizeof(int));
    m->key_seen = ig_xcalloc(nt, sizeof(uint64_t));
    m->val_base = ig_xcalloc(nt, sizeof(size_t));
    for (size_t ti = 0; ti < nt; ti++) {
        const ig_target *t = ig_pipeline_target(p, ti);
        m->val_base[ti] = m->nvals;
        m->nvals += t->n_cols;
        m->col_index[ti] = ig_xcalloc(t->n_cols ? t->n_cols : 1, sizeof(int));
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            const char *in = col_input(&t->cols[ci]);
            m->col_index[ti][ci] = in ? find_name(m, in) : -1;
        }
        m->key_cols[ti] = ig_xcalloc(t->n_key ? t->n_key : 1, sizeof(int));
        for (size_t k = 0; k < t->n_key; k++)
            m->key_cols[ti][k] = col_by_name(t, t->key[k]);
        m->skip_cols[ti] = ig_xcalloc(t->n_skip_when_null + 1, sizeof(int));
        for (size_t k = 0; k < t->n_skip_when_null; k++)
            m->skip_cols[ti][k] = col_by_name(t, t->skip_when_null[k]);
        if (t->duplicates != IG_DUPLICATES_LAST)
            m->keysets[ti] = ig_keyset_new();
    }
    m->vals = ig_xcalloc(m->nvals ? m->nvals : 1, sizeof(ig_value));
    m->src = ig_xcalloc(m->nnames ? m->nnames : 1, sizeof(ig_value));
    return m;
}

void ig_mapper_free(ig_mapper *m)
{
    size_t nt;

    if (m == NULL)
        return;
    nt = ig_pipeline_ntargets(m->p);
    for (size_t ti = 0; m->col_index && ti < nt; ti++) {
        free(m->col_index[ti]);
        free(m->key_cols[ti]);
        free(m->skip_cols[ti]);
        ig_keyset_free(m->keysets[ti]);
    }
    free(m->col_index);
    free(m->key_cols);
    free(m->skip_cols);
    free(m->keysets);
    free(m->eligible);
    free(m->key_seen);
    free(m->val_base);
    free(m->vals);
    free(m->src);
    free(m->names);
    free(m->keybuf);
    free(m->hashed);
    free(m->pend);
    free(m);
}

/* ------------------------------------------------------------------ */
/* One row                                                             */

typedef struct row_state {
    ig_reason reasons[MAX_REASONS];
    size_t n;
    ig_arena *arena;
} row_state;

static void add_reason(row_state *rs, const char *target, const char *column,
                       const char *code, const char *msg)
{
    if (rs->n >= MAX_REASONS)
        return;
    rs->reasons[rs->n].target = target;
    rs->reasons[rs->n].column = column;
    rs->reasons[rs->n].code = code;
    rs->reasons[rs->n].constraint = NULL;
    rs->reasons[rs->n].message = ig_arena_strdup(rs->arena, msg);
    rs->n++;
}

static int is_null_marker(const ig_source *src, ig_value v)
{
    for (size_t i = 0; i < src->n_null_markers; i++) {
        const char *mk = src->null_markers[i];
        if (strlen(mk) == v.len && memcmp(mk, v.p, v.len) == 0)
            return 1;
    }
    return 0;
}

/* The row as the hooks see it: header fields, then extra names. In the
 * mapper's scratch array, valid while this row is mapped (the strings
 * stay the record's or the hook's, in the batch arena). */
static ig_value *source_row(ig_mapper *m, const ig_record *rec)
{
    const ig_source *src = ig_pipeline_source(m->p);
    ig_value *v = m->src;

    for (size_t i = 0; i < m->nnames; i++) {
        if (i < m->nheader && i < rec->nfields && !rec->fields[i].is_null &&
            !is_null_marker(src, rec->fields[i]))
            v[i] = rec->fields[i];
        else
            v[i] = IG_VALUE_NULL;
    }
    return v;
}

static ig_value raw_input(const ig_mapper *m, const ig_record *rec,
                          const ig_value *row, size_t ti, size_t ci)
{
    const ig_column *c = &ig_pipeline_target(m->p, ti)->cols[ci];
    int idx = m->col_index[ti][ci];
    int pos;

    if (idx >= 0)
        return row[idx];
    pos = col_position(c);
    if (pos >= 0 && (size_t)pos < rec->nfields &&
        !is_null_marker(ig_pipeline_source(m->p), rec->fields[pos]))
        return rec->fields[pos];
    return IG_VALUE_NULL;
}

/* Compute and check every column of every target into m->vals. */
static void map_columns(ig_mapper *m, const ig_record *rec,
                        const ig_value *row, row_state *rs)
{
    for (size_t ti = 0; ti < ig_pipeline_ntargets(m->p); ti++) {
        const ig_target *t = ig_pipeline_target(m->p, ti);
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            const ig_column *c = &t->cols[ci];
            ig_value in, *out = &m->vals[m->val_base[ti] + ci];
            ig_rule_fail fail;

            if (c->source == IG_COLSRC_CONST)
                in = c->constant ? (ig_value){c->constant,
                                              strlen(c->constant), 0}
                                 : IG_VALUE_NULL;
            else
                in = raw_input(m, rec, row, ti, ci);
            if (c->source == IG_COLSRC_LOOKUP) {
                ig_rules_xforms(c->lookup.xforms, c->lookup.n_xforms, in,
                                rs->arena, out);
                if ((out->is_null || out->len == 0) && c->rules.required)
                    add_reason(rs, t->name, c->name, "required",
                               out->is_null ? "a value is required"
                                            : "a value is required (the "
                                              "value is empty)");
                continue;
            }
            memset(&fail, 0, sizeof(fail));
            if (ig_rules_value(c, in, rs->arena, out, &fail) != IG_OK)
                add_reason(rs, t->name, c->name,
                           fail.code ? fail.code : "invalid", fail.msg);
        }
    }
}

static int call_hook(ig_mapper *m, ig_hook_fn fn, const ig_record *rec,
                     ig_value *row, row_state *rs, ig_err *err)
{
    ig_hook_row hr;
    ig_hook_outcome out;
    int rc;

    if (m->hook == NULL || !ig_hook_has(m->hook, fn))
        return IG_OK;
    hr.n = m->nnames;
    hr.names = m->names;
    hr.vals = row;
    hr.rowno = rec->recno;
    hr.line = rec->line;
    hr.target = NULL;
    memset(&out, 0, sizeof(out));
    rc = ig_hook_call_row(m->hook, fn, &hr, rs->arena, &out, err);
    if (rc != IG_OK)
        return rc;
    if (out.rejected) {
        if (out.nreasons == 0)
            add_reason(rs, NULL, NULL, out.code ? out.code : "HOOK",
                       "rejected by the hook");
        for (size_t i = 0; i < out.nreasons; i++)
            add_reason(rs, NULL, out.reasons[i].column,
                       out.code ? out.code : "HOOK", out.reasons[i].message);
    }
    return IG_OK;
}

/* Bytes identifying target ti's key for this row, in m->keybuf. */
static size_t key_bytes(ig_mapper *m, size_t ti)
{
    const ig_target *t = ig_pipeline_target(m->p, ti);
    size_t len = 0;

    for (size_t k = 0; k < t->n_key; k++) {
        const ig_value *v = &m->vals[m->val_base[ti] + (size_t)m->key_cols[ti][k]];
        uint32_t n = v->is_null ? UINT32_MAX : (uint32_t)v->len;
        size_t need = len + 4 + (v->is_null ? 0 : v->len);
        if (need > m->keycap) {
            m->keycap = need * 2;
            m->keybuf = ig_xrealloc(m->keybuf, m->keycap);
        }
        memcpy(m->keybuf + len, &n, 4);
        len += 4;
        if (!v->is_null) {
            memcpy(m->keybuf + len, v->p, v->len);
            len += v->len;
        }
    }
    return len;
}

/* The length of what key_bytes renders for target ti. */
static size_t key_len(const ig_mapper *m, size_t ti)
{
    const ig_target *t = ig_pipeline_target(m->p, ti);
    size_t len = 0;

    for (size_t k = 0; k < t->n_key; k++) {
        const ig_value *v = &m->vals[m->val_base[ti] + (size_t)m->key_cols[ti][k]];
        len += 4 + (v->is_null ? 0 : v->len);
    }
    return len;
}

/* Whether target ti's key for this row has a NULL value: such a key
 * equals no other (a unique index holds any number of them), so it is
 * never a duplicate and never remembered. */
static int key_has_null(const ig_mapper *m, size_t ti)
{
    const ig_target *t = ig_pipeline_target(m->p, ti);

    for (size_t k = 0; k < t->n_key; k++)
        if (m->vals[m->val_base[ti] + (size_t)m->key_cols[ti][k]].is_null)
            return 1;
    return 0;
}

/* The key hash of a row whose key has a NULL value: its own (seeded with
 * its record number), so that no other row shares it. */
static unsigned long long null_key_hash(const void *key, size_t len,
                                        long long recno)
{
    return XXH3_64bits_withSeed(key, len, (XXH64_hash_t)recno + 1);
}

/* The DUPLICATE_KEY reason of a row whose key row `first` had. */
static void duplicate(const ig_target *t, row_state *rs, uint64_t first)
{
    char msg[320], keys[200] = "";

    for (size_t k = 0; k < t->n_key; k++)
        snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s",
                 k ? ", " : "", t->key[k]);
    snprintf(msg, sizeof(msg),
             "duplicate key (%s) in this import: row %llu has the same key",
             keys, (unsigned long long)first);
    /* One column only when the key is one column. */
    add_reason(rs, t->name, t->n_key == 1 ? t->key[0] : NULL,
               "DUPLICATE_KEY", msg);
}

/* Decide eligibility per target and apply duplicates: error / first.
 * Keys are only remembered once the row is known to pass. */
static void check_targets(ig_mapper *m, const ig_record *rec, row_state *rs,
                          int count_skips)
{
    size_t nt = ig_pipeline_ntargets(m->p);

    for (size_t ti = 0; ti < nt; ti++) {
        const ig_target *t = ig_pipeline_target(m->p, ti);
        m->eligible[ti] = 1;
        m->key_seen[ti] = 0;
        for (size_t k = 0; k < t->n_skip_when_null; k++) {
            int ci = m->skip_cols[ti][k];
            if (ci >= 0 && m->vals[m->val_base[ti] + (size_t)ci].is_null)
                m->eligible[ti] = 0;
        }
        if (!m->eligible[ti] || m->keysets[ti] == NULL || m->hash ||
            key_has_null(m, ti))
            continue; /* with m->hash: ig_mapper_resolve decides */
        {
            size_t len = key_bytes(m, ti); /* may move keybuf: call first */
            m->key_seen[ti] = ig_keyset_find(m->keysets[ti], m->keybuf, len);
        }
        if (m->key_seen[ti] == 0)
            continue;
        if (t->duplicates == IG_DUPLICATES_FIRST)
            m->eligible[ti] = 0; /* keep the first occurrence */
        else
            duplicate(t, rs, m->key_seen[ti]);
    }
    if (rs->n > 0 || m->hash)
        return;
    for (size_t ti = 0; ti < nt; ti++) {
        ig_counts skip = {0, 0, 0, 0, 1, 0};
        if (m->keysets[ti] && m->eligible[ti] && m->key_seen[ti] == 0 &&
            !key_has_null(m, ti)) {
            size_t len = key_bytes(m, ti);
            ig_keyset_add(m->keysets[ti], m->keybuf, len,
                          (uint32_t)rec->recno);
        }
        if (!m->eligible[ti] && count_skips)
            ig_results_add(m->results, (int)ti, &skip);
    }
}

/* Give the batch row just added its per-target eligibility and key
 * hashes: the executor counts rows and distinct keys from them, and the
 * first target's hash picks the row's writer. */
static void note_keys(ig_mapper *m, ig_batch *b)
{
    size_t nt = ig_pipeline_ntargets(m->p);
    ig_batch_row *r = ig_batch_row_at(b, ig_batch_nrows(b) - 1);
    /* One allocation: the hashes, then the flags (aligned for both). */
    unsigned long long *kh = ig_arena_alloc(
        ig_batch_arena(b), (nt ? nt : 1) * (sizeof(*kh) + 1));
    unsigned char *elig = (unsigned char *)(kh + (nt ? nt : 1));

    for (size_t ti = 0; ti < nt; ti++) {
        size_t len = key_bytes(m, ti);
        elig[ti] = (unsigned char)m->eligible[ti];
        kh[ti] = key_has_null(m, ti)
                     ? null_key_hash(m->keybuf, len, r->rec.recno)
                     : XXH3_64bits(m->keybuf, len);
    }
    r->elig = elig;
    r->khash = kh;
    r->key_hash = nt ? kh[0] : 0;
}

/* Queue the row just mapped (row: its index in b, or -1) for
 * ig_mapper_resolve, with copies of its keys in b's arena. */
static void defer(ig_mapper *m, const ig_record *rec, ig_batch *b,
                  long long row)
{
    size_t nt = ig_pipeline_ntargets(m->p);
    ig_arena *a = ig_batch_arena(b);
    pending *e;

    if (m->npend == m->cappend) {
        m->cappend = m->cappend ? m->cappend * 2 : 1024;
        m->pend = ig_xrealloc(m->pend, m->cappend * sizeof(*m->pend));
    }
    e = &m->pend[m->npend++];
    e->row = row;
    e->recno = (uint32_t)rec->recno;
    /* One arena block for the entry's arrays and key bytes: five small
     * allocations a row, each rounded up, took twice the memory. The
     * pointer arrays go first, so they are aligned. */
    {
        size_t keys = 0, n = nt ? nt : 1;
        char *blk;
        for (size_t ti = 0; ti < nt; ti++)
            keys += key_len(m, ti) + 1;
        blk = ig_arena_alloc(a, n * (sizeof(*e->kbytes) + sizeof(*e->klen) +
                                     sizeof(*e->kvals) + 2) + keys);
        e->kbytes = (const char **)(void *)blk;
        e->klen = (size_t *)(void *)(blk + n * sizeof(*e->kbytes));
        e->kvals = (ig_value **)(void *)(blk + n * (sizeof(*e->kbytes) +
                                                    sizeof(*e->klen)));
        e->elig = (unsigned char *)(blk + n * (sizeof(*e->kbytes) +
                                               sizeof(*e->klen) +
                                               sizeof(*e->kvals)));
        e->knull = e->elig + n;
        blk = (char *)e->knull + n; /* the key bytes, each NUL-ended */
        for (size_t ti = 0; ti < nt; ti++) {
            size_t len = key_bytes(m, ti);
            memcpy(blk, m->keybuf, len);
            blk[len] = '\0';
            e->kbytes[ti] = blk;
            e->klen[ti] = len;
            blk += len + 1;
        }
    }
    for (size_t ti = 0; ti < nt; ti++) {
        const ig_target *t = ig_pipeline_target(m->p, ti);
        e->elig[ti] = (unsigned char)m->eligible[ti];
        e->knull[ti] = (unsigned char)key_has_null(m, ti);
        e->kvals[ti] = NULL;
        if (!m->hashed[ti] && !m->waiting)
            continue;
        e->kvals[ti] = ig_arena_alloc(a, (t->n_key ? t->n_key : 1) *
                                             sizeof(ig_value));
        for (size_t k = 0; k < t->n_key; k++) {
            ig_value v = m->vals[m->val_base[ti] + (size_t)m->key_cols[ti][k]];
            if (!v.is_null)
                v.p = ig_arena_strndup(a, v.p, v.len);
            e->kvals[ti][k] = v;
        }
    }
}

/* ig_mapper_defer_keys' stand-in until ig_mapper_hash_keys: never
 * called, as no target is hashed meanwhile. */
static int hash_not_yet(void *ud, size_t ti, const ig_value *keys, size_t n,
                        unsigned long long *out, ig_err *err)
{
    (void)ud, (void)ti, (void)keys, (void)n, (void)out;
    return ig_err_set(err, IG_STATE, "ig_mapper_resolve before "
                      "ig_mapper_hash_keys");
}

void ig_mapper_reserve(ig_mapper *m, size_t rows)
{
    if (rows > m->cappend) {
        m->cappend = rows;
        m->pend = ig_xrealloc(m->pend, m->cappend * sizeof(*m->pend));
    }
}

void ig_mapper_defer_keys(ig_mapper *m)
{
    m->hashed = ig_xcalloc(ig_pipeline_ntargets(m->p) ?
                           ig_pipeline_ntargets(m->p) : 1, 1);
    m->hash = hash_not_yet;
    m->waiting = 1;
}

void ig_mapper_hash_keys(ig_mapper *m, const unsigned char *hashed,
                         ig_mapper_hash_fn *fn, void *ud)
{
    size_t nt = ig_pipeline_ntargets(m->p);
    int any = 0;

    for (size_t ti = 0; ti < nt; ti++)
        any |= hashed[ti] != 0;
    if (m->waiting) {
        memcpy(m->hashed, hashed, nt);
        m->hash = fn;
        m->hash_ud = ud;
        m->waiting = 0;
        m->by_bytes = !any; /* once the waiting rows are decided */
        return;
    }
    if (!any)
        return;
    m->hashed = ig_xcalloc(nt, 1);
    memcpy(m->hashed, hashed, nt);
    m->hash = fn;
    m->hash_ud = ud;
}

/* The database's hashes of the pending rows' keys of hashed targets, into
 * h[row * nt + target]. */
static int fetch_hashes(ig_mapper *m, unsigned long long *h, ig_err *err)
{
    size_t nt = ig_pipeline_ntargets(m->p);
    size_t *idx = ig_xmalloc(m->npend * sizeof(*idx));
    unsigned long long *out = ig_xmalloc(m->npend * sizeof(*out));
    ig_value *keys = NULL;
    int rc = IG_OK;

    for (size_t ti = 0; rc == IG_OK && ti < nt; ti++) {
        size_t nkey = ig_pipeline_target(m->p, ti)->n_key, n = 0;
        if (!m->hashed[ti])
            continue;
        keys = ig_xrealloc(keys, m->npend * (nkey ? nkey : 1) *
                                     sizeof(*keys));
        for (size_t i = 0; i < m->npend; i++) {
            if (!m->pend[i].elig[ti])
                continue;
            memcpy(keys + n * nkey, m->pend[i].kvals[ti],
                   nkey * sizeof(*keys));
            idx[n++] = i;
        }
        if (n > 0)
            rc = m->hash(m->hash_ud, ti, keys, n, out, err);
        for (size_t j = 0; rc == IG_OK && j < n; j++)
            h[idx[j] * nt + ti] = out[j];
    }
    free(keys);
    free(out);
    free(idx);
    return rc;
}

/* What identifies pending row e's key of target ti in the key set: the
 * database's hash *h, or the key's bytes. */
static const void *key_id(const ig_mapper *m, const pending *e,
                          const unsigned long long *h, size_t ti,
                          size_t *len)
{
    if (m->hashed[ti]) {
        *len = sizeof(*h);
        return h;
    }
    *len = e->klen[ti];
    return e->kbytes[ti];
}

int ig_mapper_resolve(ig_mapper *m, ig_batch *b, ig_err *err)
{
    size_t nt = ig_pipeline_ntargets(m->p);
    unsigned long long *h;
    int rc;

    if (m->waiting)
        return ig_err_set(err, IG_STATE, "ig_mapper_resolve before "
                          "ig_mapper_hash_keys");
    if (m->hash == NULL || m->npend == 0) {
        if (m->by_bytes) { /* nothing was waiting */
            m->hash = NULL;
            m->by_bytes = 0;
        }
        return IG_OK;
    }
    h = ig_xcalloc(m->npend * (nt ? nt : 1), sizeof(*h));
    rc = fetch_hashes(m, h, err);
    for (size_t i = 0; rc == IG_OK && i < m->npend; i++) {
        pending *e = &m->pend[i];
        ig_batch_row *r = e->row >= 0 ? ig_batch_row_at(b, (size_t)e->row)
                                      : NULL;
        row_state rs;

        rs.n = 0;
        rs.arena = ig_batch_arena(b);
        /* As check_targets would have, with the database's equality. */
        for (size_t ti = 0; ti < nt; ti++) {
            const ig_target *t = ig_pipeline_target(m->p, ti);
            size_t len;
            const void *id = key_id(m, e, &h[i * nt + ti], ti, &len);
            m->key_seen[ti] = 0;
            if (!e->elig[ti] || m->keysets[ti] == NULL || e->knull[ti])
                continue;
            m->key_seen[ti] = ig_keyset_find(m->keysets[ti], id, len);
            if (m->key_seen[ti] == 0)
                continue;
            if (t->duplicates == IG_DUPLICATES_FIRST)
                e->elig[ti] = 0;
            else
                duplicate(t, &rs, m->key_seen[ti]);
        }
        if (rs.n > 0) {
            if (r != NULL) { /* it reaches no target: a failed row */
                for (size_t ti = 0; ti < nt; ti++)
                    ig_batch_set_flag(b, (size_t)e->row, ti, 0);
                ig_batch_add_failure(b, &r->rec, rs.reasons, rs.n);
            }
            continue;
        }
        for (size_t ti = 0; ti < nt; ti++) {
            ig_counts skip = {0, 0, 0, 0, 1, 0};
            if (m->keysets[ti] && e->elig[ti] && m->key_seen[ti] == 0 &&
                !e->knull[ti]) {
                size_t len;
                const void *id = key_id(m, e, &h[i * nt + ti], ti, &len);
                ig_keyset_add(m->keysets[ti], id, len, e->recno);
            }
            if (r == NULL)
                continue;
            if (!e->elig[ti]) {
                ig_batch_set_flag(b, (size_t)e->row, ti, 0);
                ig_results_add(m->results, (int)ti, &skip);
            }
            if (m->hashed[ti] && !e->knull[ti]) /* the executor and the
                                                   writers compare keys by
                                                   these */
                ig_batch_set_key_hash(b, (size_t)e->row, ti, h[i * nt + ti]);
        }
    }
    free(h);
    m->npend = 0;
    if (rc == IG_OK && m->by_bytes) { /* the waiting rows are decided */
        m->hash = NULL;
        m->by_bytes = 0;
    }
    return rc;
}

/* A headerless input's first good record sets its width (the reader
 * refuses later rows of another width): a position the pipeline reads
 * beyond it would be NULL in every row, so it is refused as a header
 * without the column is (source.missing_columns: error). */
static int check_width(ig_mapper *m, const ig_record *rec, ig_err *err)
{
    const ig_source *src = ig_pipeline_source(m->p);

    m->width_checked = 1;
    if (src->missing_columns != IG_MISSING_COLUMNS_ERROR)
        return IG_OK;
    for (size_t ti = 0; ti < ig_pipeline_ntargets(m->p); ti++) {
        const ig_target *t = ig_pipeline_target(m->p, ti);
        for (size_t ci = 0; ci < t->n_cols; ci++) {
            int pos = col_position(&t->cols[ci]);
            if (pos >= 0 && (size_t)pos >= rec->nfields)
                return ig_err_set(err, IG_CONFIG,
                                  "line %lld: the input has %zu field%s per "
                                  "row and pipeline %s reads position %d "
                                  "(target %s, column %s); fix the input or "
                                  "set source.missing_columns: null",
                                  rec->line, rec->nfields,
                                  rec->nfields == 1 ? "" : "s",
                                  ig_pipeline_name(m->p), pos + 1, t->name,
                                  t->cols[ci].name);
        }
    }
    return IG_OK;
}

/* Map one record. write = 1: append it to b (or record its failure);
 * write = 0: only let its keys enter the duplicate key sets. */
static int map_one(ig_mapper *m, const ig_record *rec, ig_batch *b,
                   int write, ig_err *err)
{
    row_state rs;
    ig_value *row;
    int rc;

    rs.n = 0;
    rs.arena = ig_batch_arena(b);
    if (m->nheader == 0 && !m->width_checked && rec->error == NULL &&
        (rc = check_width(m, rec, err)) != IG_OK)
        return rc;
    if (rec->error != NULL) {
        /* The input column of the field it concerns, when there is a
         * header (the message says "field N" either way). */
        const char *col = rec->error_field > 0 &&
                                  rec->error_field <= m->nheader
                              ? m->names[rec->error_field - 1]
                              : NULL;
        add_reason(&rs, NULL, col,
                   rec->error_code ? rec->error_code : "CSV", rec->error);
        goto failed;
    }
    row = source_row(m, rec);
    rc = call_hook(m, IG_HOOK_TRANSFORM, rec, row, &rs, err);
    if (rc != IG_OK)
        return rc;
    if (rs.n > 0)
        goto failed;
    map_columns(m, rec, row, &rs);
    if (rs.n == 0) {
        rc = call_hook(m, IG_HOOK_VALIDATE, rec, row, &rs, err);
        if (rc != IG_OK)
            return rc;
    }
    if (rs.n == 0)
        check_targets(m, rec, &rs, write);
    if (rs.n > 0)
        goto failed;
    if (!write) {
        if (m->hash)
            defer(m, rec, b, -1);
        return IG_OK;
    }

    ig_batch_begin_row(b, rec);
    for (size_t ti = 0; ti < ig_pipeline_ntargets(m->p); ti++)
        ig_batch_put_bool(b, m->eligible[ti]);
    for (size_t i = 0; i < m->nvals; i++)
        ig_batch_put_value(b, m->vals[i]);
    ig_batch_end_row(b);
    note_keys(m, b);
    if (m->hash)
        defer(m, rec, b, (long long)ig_batch_nrows(b) - 1);
    return IG_OK;

failed:
    if (write)
        ig_batch_add_failure(b, rec, rs.reasons, rs.n);
    return IG_OK;
}

int ig_mapper_row(ig_mapper *m, const ig_record *rec, ig_batch *b,
                  ig_err *err)
{
    return map_one(m, rec, b, 1, err);
}

int ig_mapper_remember(ig_mapper *m, const ig_record *rec, ig_batch *b,
                       ig_err *err)
{
    return map_one(m, rec, b, 0, err);
}

void ig_mapper_before_batch(ig_mapper *m, long long batch_no)
{
    ig_err err;
    ig_hook_summary s;

    m->batch_no = batch_no;
    if (m->hook == NULL || !ig_hook_has(m->hook, IG_HOOK_BEFORE_BATCH))
        return;
    memset(&s, 0, sizeof(s));
    s.batch = batch_no;
    if (ig_hook_call_batch(m->hook, IG_HOOK_BEFORE_BATCH, NULL, &err) !=
        IG_OK)
        ig_log(IG_LOG_WARN, "before_batch hook (batch %lld): %s", batch_no,
               err.msg);
}

void ig_mapper_after_batch(ig_mapper *m, const ig_hook_summary *s)
{
    ig_err err;

    if (m->hook == NULL || !ig_hook_has(m->hook, IG_HOOK_AFTER_BATCH))
        return;
    if (ig_hook_call_batch(m->hook, IG_HOOK_AFTER_BATCH, s, &err) != IG_OK)
        ig_log(IG_LOG_WARN, "after_batch hook (batch %lld): %s", s->batch,
               err.msg);
}
