/*
 * test_reader_props.c - randomized properties of the streaming CSV reader:
 * well-formed CSV comes back byte for byte with its exact lines and
 * offsets; any input, however mangled, reads the same from memory or a
 * FILE at any chunk size; damage stays in its record and is reported with
 * a documented code; records never depend on old arena contents.
 *
 * The seed is fixed, so runs are deterministic. A failure prints the seed,
 * the case and the input as a C literal; PROPS_SEED=<n> PROPS_CASE=<n>
 * replays one case, PROPS_CASES=<n> runs more (or fewer) cases per test,
 * PROPS_DUMP=<path> also writes the failing input's raw bytes there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "../testrng.h"

#define DEFAULT_SEED 0x1A9C0DE5EEDULL
#define MAX_COLS 7
#define MAX_RECS 16     /* header included */
#define ARENA_BLOCK 256 /* small blocks: records span several */

static unsigned long long seed = DEFAULT_SEED;
static long only_case = -1; /* PROPS_CASE */

/* ------------------------------------------------------------------ */
/* Random choices (testrng.h) and byte buffers                         */
/* ------------------------------------------------------------------ */

static int chance(rng *g, unsigned pct)
{
    return below(g, 100) < pct;
}

/* Each case has its own stream, so one case replays on its own. */
static rng case_rng(unsigned test, long cas)
{
    rng g = {seed ^ ((uint64_t)test << 56) ^
             (0xD1B54A32D192ED03ULL * (uint64_t)(cas + 1))};

    (void)next64(&g);
    return g;
}

static long ncases(long dflt)
{
    const char *s = getenv("PROPS_CASES");
    long n = s ? atol(s) : dflt;

    return only_case >= n ? only_case + 1 : n;
}

typedef struct {
    unsigned char *p;
    size_t len, cap;
} bytes;

static void splice(bytes *b, size_t at, size_t del, const void *s, size_t n)
{
    if (b->len - del + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len - del + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memmove(b->p + at + n, b->p + at + del, b->len - at - del);
    if (n > 0)
        memcpy(b->p + at, s, n);
    b->len = b->len - del + n;
    b->p[b->len] = '\0';
}

static void put(bytes *b, const void *s, size_t n)
{
    splice(b, b->len, 0, s, n);
}

static void put1(bytes *b, unsigned char c)
{
    put(b, &c, 1);
}

/* ------------------------------------------------------------------ */
/* Failure reports: seed, case, variant and the input                  */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *prop;
    long cas;
    const unsigned char *in;
    size_t len;
    char variant[96];
} ctx;

static int is_hex(unsigned char b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') ||
           (b >= 'A' && b <= 'F');
}

static void dump_input(const unsigned char *s, size_t n)
{
    int hex = 0;

    fprintf(stderr, "input (%zu bytes) as a C literal:\n\"", n);
    for (size_t i = 0; i < n; i++) {
        unsigned char b = s[i];

        if (hex && is_hex(b))
            fputs("\" \"", stderr);
        hex = 0;
        if (b == '\n')
            fputs(i + 1 < n ? "\\n\"\n\"" : "\\n", stderr);
        else if (b == '\r')
            fputs("\\r", stderr);
        else if (b == '\t')
            fputs("\\t", stderr);
        else if (b == '"' || b == '\\')
            fprintf(stderr, "\\%c", b);
        else if (b < 0x20 || b >= 0x7F) {
            fprintf(stderr, "\\x%02X", b);
            hex = 1;
        } else
            fputc(b, stderr);
    }
    fputs("\"\n", stderr);
}

static void fail_case(const ctx *c, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
static void fail_case(const ctx *c, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dump_input(c->in, c->len);
    if (getenv("PROPS_DUMP") != NULL) {
        FILE *f = fopen(getenv("PROPS_DUMP"), "wb");
        if (f != NULL) {
            fwrite(c->in, 1, c->len, f);
            fclose(f);
        }
    }
    fail_msg("%s: seed %#llx case %ld (%s): %s [test line %d; replay with "
             "PROPS_SEED=%#llx PROPS_CASE=%ld]",
             c->prop, seed, c->cas, c->variant, msg, line, seed, c->cas);
    abort(); /* not reached: fail_msg longjmps */
}

#define CHECK(c, cond, ...)                                                    \
    do {                                                                       \
        if (!(cond))                                                           \
            fail_case((c), __LINE__, __VA_ARGS__);                             \
    } while (0)

/* ------------------------------------------------------------------ */
/* Well-formed CSV generator                                           */
/* ------------------------------------------------------------------ */

typedef struct {
    size_t val_off, val_len; /* the value, in doc.vals */
    size_t at, out_len;      /* its encoded bytes in text, quotes excluded */
    int quoted;
} gfield;

typedef struct {
    gfield f[MAX_COLS];
    size_t offset; /* first byte of the record in text */
    size_t end;    /* just past its last field (before the line end) */
} grec;

typedef struct {
    bytes text, vals;
    size_t ncols, nrecs; /* nrecs counts the header: recs[0] */
    grec recs[MAX_RECS];
    int bom, crlf;
} doc;

/* clang-format off */
#define S(lit) {lit, sizeof(lit) - 1}
/* clang-format on */
typedef struct {
    const char *s;
    size_t n;
} piece;

/* Field material: CSV specials, spaces, and UTF-8 of every length up to
 * the edges of the valid ranges. */
static const piece pieces[] = {
    S(","),
    S("\""),
    S("\"\""),
    S("\r"),
    S("\n"),
    S("\r\n"),
    S(" "),
    S("  "),
    S("\t"),
    S("'"),
    S(";"),
    S("\\"),
    S("\xC3\xA9"),         /* e acute */
    S("\xC2\x80"),         /* U+0080 */
    S("\xDF\xBF"),         /* U+07FF */
    S("\xE0\xA0\x80"),     /* U+0800 */
    S("\xE2\x82\xAC"),     /* euro */
    S("\xED\x9F\xBF"),     /* U+D7FF */
    S("\xEE\x80\x80"),     /* U+E000 */
    S("\xEF\xBF\xBD"),     /* U+FFFD */
    S("\xF0\x90\x80\x80"), /* U+10000 */
    S("\xF0\x9F\x98\x80"), /* emoji */
    S("\xF4\x8F\xBF\xBF"), /* U+10FFFF */
    S("\xEF\xBB\xBF"),     /* U+FEFF: data, except at the very start */
};
#define NPIECES (sizeof(pieces) / sizeof(pieces[0]))

static void gen_value(rng *g, bytes *v, int header)
{
    static const char plain[] = "abcxyzABXZ0189-_.#";
    size_t n;

    if (chance(g, 20))
        return; /* empty */
    n = 1 + below(g, chance(g, 5) ? 150 : 8);
    for (size_t i = 0; i < n; i++) {
        if (chance(g, 50)) {
            put1(v, (unsigned char)plain[below(g, sizeof(plain) - 1)]);
        } else {
            /* The header leaves U+FEFF out: at the start of the first
             * name it would be a BOM. */
            const piece *p = &pieces[below(g, NPIECES - (header ? 1 : 0))];
            put(v, p->s, p->n);
        }
    }
}

static int is_blank_byte(unsigned char b)
{
    return b == ' ' || b == '\t';
}

static int needs_quotes(const unsigned char *v, size_t n, size_t ncols)
{
    int blank = 1;

    for (size_t i = 0; i < n; i++) {
        if (v[i] == ',' || v[i] == '"' || v[i] == '\r' || v[i] == '\n')
            return 1;
        if (!is_blank_byte(v[i]))
            blank = 0;
    }
    /* A lone unquoted field of spaces (or nothing) is a blank line. */
    return ncols == 1 && blank;
}

static void put_eol(doc *d)
{
    if (d->crlf)
        put(&d->text, "\r\n", 2);
    else
        put1(&d->text, '\n');
}

static void blank_lines(doc *d, rng *g)
{
    if (!chance(g, 12))
        return;
    for (size_t k = 1 + below(g, 2); k > 0; k--) {
        for (size_t n = below(g, 4); n > 0; n--)
            put1(&d->text, chance(g, 50) ? ' ' : '\t');
        put_eol(d);
    }
}

static void gen_doc(doc *d, rng *g)
{
    memset(d, 0, sizeof(*d));
    d->ncols = 1 + below(g, MAX_COLS);
    d->nrecs = 1 + below(g, MAX_RECS);
    d->crlf = chance(g, 50);
    d->bom = chance(g, 25);
    put(&d->text, "", 0);
    put(&d->vals, "", 0);
    if (d->bom)
        put(&d->text, "\xEF\xBB\xBF", 3);
    for (size_t r = 0; r < d->nrecs; r++) {
        grec *rec = &d->recs[r];

        blank_lines(d, g);
        rec->offset = d->text.len;
        for (size_t c = 0; c < d->ncols; c++) {
            gfield *f = &rec->f[c];
            const unsigned char *v;

            if (c > 0)
                put1(&d->text, ',');
            f->val_off = d->vals.len;
            gen_value(g, &d->vals, r == 0);
            f->val_len = d->vals.len - f->val_off;
            v = d->vals.p + f->val_off;
            f->quoted = needs_quotes(v, f->val_len, d->ncols) || chance(g, 20);
            if (f->quoted)
                put1(&d->text, '"');
            f->at = d->text.len;
            for (size_t i = 0; i < f->val_len; i++) {
                put1(&d->text, v[i]);
                if (v[i] == '"')
                    put1(&d->text, '"');
            }
            f->out_len = d->text.len - f->at;
            if (f->quoted)
                put1(&d->text, '"');
        }
        rec->end = d->text.len;
        if (r + 1 < d->nrecs) {
            put_eol(d);
        } else if (chance(g, 70)) {
            put_eol(d);
            blank_lines(d, g);
        }
    }
}

static void doc_free(doc *d)
{
    free(d->text.p);
    free(d->vals.p);
}

/* The physical line (1-based) holding byte off: CRLF, a lone CR and LF
 * each end a line, except in an LF file (lf: its first line ended with a
 * bare LF), where only LF does. */
static long long line_at(const unsigned char *s, size_t len, size_t off,
                         int lf)
{
    long long line = 1;

    for (size_t i = 0; i < off && i < len; i++)
        if (s[i] == '\n' ||
            (!lf && s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n')))
            line++;
    return line;
}

/* ------------------------------------------------------------------ */
/* Running the reader into a transcript                                */
/* ------------------------------------------------------------------ */

typedef struct {
    long long recno, line, offset;
    long long bytes_after; /* ig_reader_bytes() once it was returned */
    char *code, *msg;      /* copies, or NULL */
    size_t nfields;
    size_t *len;
    unsigned char **val; /* copies, NUL-terminated */
} crec;

typedef struct {
    int new_rc; /* ig_reader_new: IG_OK, or the code it failed with */
    char new_msg[1024];
    size_t ncolumns;
    char **columns;
    crec *recs;
    size_t nrecs, cap;
    int next_rc; /* IG_OK, or the first code ig_reader_next failed with */
    char next_msg[1024];
    long long bytes; /* ig_reader_bytes() at the end */
    int lf_only;     /* ig_reader_lf_only() at the end */
} run;

static char *dup_or_null(const char *s)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    assert_non_null(d);
    return d;
}

static void run_free(run *t)
{
    for (size_t i = 0; i < t->ncolumns; i++)
        free(t->columns[i]);
    free(t->columns);
    for (size_t i = 0; i < t->nrecs; i++) {
        crec *c = &t->recs[i];
        for (size_t f = 0; f < c->nfields; f++)
            free(c->val[f]);
        free(c->val);
        free(c->len);
        free(c->code);
        free(c->msg);
    }
    free(t->recs);
    memset(t, 0, sizeof(*t));
}

/* Reset the arena, then fill every byte it holds with garbage and reset
 * again: a record that leaned on old arena contents reads the garbage. */
static void scribble_reset(ig_arena *a)
{
    size_t reserved;

    ig_arena_reset(a);
    reserved = ig_arena_reserved(a);
    while (ig_arena_used(a) + 16 <= reserved)
        memset(ig_arena_alloc(a, 16), 0xA5, 16);
    assert_int_equal(ig_arena_reserved(a), reserved);
    ig_arena_reset(a);
}

static int same_str(const char *x, const char *y)
{
    return (x == NULL && y == NULL) ||
           (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* A record handed out earlier, not yet reset away, must be unchanged. */
static void check_still(const ctx *c, const ig_record *rec, const crec *cp)
{
    CHECK(c, rec->nfields == cp->nfields, "record %lld changed: nfields",
          cp->recno);
    CHECK(
        c, same_str(rec->error, cp->msg) && same_str(rec->error_code, cp->code),
        "record %lld: its error changed before the arena was reset", cp->recno);
    for (size_t f = 0; f < rec->nfields; f++)
        CHECK(c,
              rec->fields[f].len == cp->len[f] &&
                  memcmp(rec->fields[f].p, cp->val[f], cp->len[f] + 1) == 0,
              "record %lld field %zu changed before the arena was reset",
              cp->recno, f + 1);
}

static void copy_record(const ctx *c, const ig_record *rec, long long done,
                        crec *cp)
{
    cp->recno = rec->recno;
    cp->line = rec->line;
    cp->offset = rec->offset;
    cp->bytes_after = done;
    cp->code = dup_or_null(rec->error_code);
    cp->msg = dup_or_null(rec->error);
    cp->nfields = rec->nfields;
    cp->len = calloc(rec->nfields + 1, sizeof(*cp->len));
    cp->val = calloc(rec->nfields + 1, sizeof(*cp->val));
    assert_true(cp->len != NULL && cp->val != NULL);
    CHECK(c, rec->nfields == 0 || rec->fields != NULL,
          "record %lld: %zu fields but no array", rec->recno, rec->nfields);
    for (size_t f = 0; f < rec->nfields; f++) {
        const ig_value *v = &rec->fields[f];

        CHECK(c, !v->is_null && v->p != NULL,
              "record %lld field %zu is NULL (the reader never makes NULLs)",
              rec->recno, f + 1);
        CHECK(c, v->p[v->len] == '\0',
              "record %lld field %zu is not NUL-terminated", rec->recno, f + 1);
        cp->len[f] = v->len;
        cp->val[f] = malloc(v->len + 1);
        assert_non_null(cp->val[f]);
        memcpy(cp->val[f], v->p, v->len + 1);
    }
}

/* Read everything o describes into t, resetting the arena at random
 * points (g); every record alive since the last reset is checked to be
 * intact just before each reset. */
static void run_reader(const ctx *c, const ig_reader_opts *o, ig_arena *a,
                       rng *g, run *t)
{
    ig_record *live = NULL;
    size_t nlive = 0;
    ig_reader *r;
    ig_err err;

    memset(t, 0, sizeof(*t));
    r = ig_reader_new(o, &err);
    if (r == NULL) {
        t->new_rc = err.code;
        snprintf(t->new_msg, sizeof(t->new_msg), "%s", err.msg);
        CHECK(c, err.code != IG_OK, "ig_reader_new gave NULL with IG_OK");
        return;
    }
    t->ncolumns = ig_reader_ncolumns(r);
    t->columns = calloc(t->ncolumns + 1, sizeof(*t->columns));
    assert_non_null(t->columns);
    for (size_t i = 0; i < t->ncolumns; i++) {
        const char *name = ig_reader_column(r, i);
        size_t first = i;

        CHECK(c, name != NULL, "column %zu of %zu is NULL", i, t->ncolumns);
        t->columns[i] = dup_or_null(name);
        for (size_t j = 0; j < i && first == i; j++)
            if (strcmp(t->columns[j], name) == 0)
                first = j;
        CHECK(c, ig_reader_find_column(r, name) == (long)first,
              "find_column(\"%s\") = %ld, want %zu (the first such)", name,
              ig_reader_find_column(r, name), first);
    }
    CHECK(c, ig_reader_column(r, t->ncolumns) == NULL,
          "column %zu exists past ncolumns", t->ncolumns);
    for (;;) {
        ig_record rec;
        int got = -1, rc;

        memset(&rec, 0x5A, sizeof(rec));
        rc = ig_reader_next(r, a, &rec, &got, &err);
        if (rc != IG_OK) {
            t->next_rc = rc;
            snprintf(t->next_msg, sizeof(t->next_msg), "%s", err.msg);
            CHECK(c, got == 0, "ig_reader_next failed with *got = %d", got);
            break;
        }
        CHECK(c, got == 0 || got == 1, "*got = %d", got);
        if (!got) {
            /* The end stays the end. */
            rc = ig_reader_next(r, a, &rec, &got, &err);
            CHECK(c, rc == IG_OK && got == 0, "after the end: rc %d got %d", rc,
                  got);
            break;
        }
        if (t->nrecs == t->cap) {
            t->cap = t->cap ? 2 * t->cap : 16;
            t->recs = realloc(t->recs, t->cap * sizeof(*t->recs));
            live = realloc(live, t->cap * sizeof(*live));
            assert_true(t->recs != NULL && live != NULL);
        }
        copy_record(c, &rec, ig_reader_bytes(r), &t->recs[t->nrecs]);
        live[nlive++] = rec;
        t->nrecs++;
        if (chance(g, 30)) {
            for (size_t i = 0; i < nlive; i++)
                check_still(c, &live[i], &t->recs[t->nrecs - nlive + i]);
            scribble_reset(a);
            nlive = 0;
        }
    }
    for (size_t i = 0; i < nlive; i++)
        check_still(c, &live[i], &t->recs[t->nrecs - nlive + i]);
    t->bytes = ig_reader_bytes(r);
    t->lf_only = ig_reader_lf_only(r);
    ig_reader_free(r);
    scribble_reset(a);
    free(live);
}

static FILE *file_with(const unsigned char *s, size_t n)
{
    FILE *f = tmpfile();

    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    return f;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char b = s[i], lo = 0x80, hi = 0xBF;
        size_t need;

        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF)
            need = 2;
        else if (b >= 0xF0 && b <= 0xF4)
            need = 3;
        else
            return 0;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
        else if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if (s[i + k] < lo || s[i + k] > hi)
                return 0;
            lo = 0x80;
            hi = 0xBF;
        }
        i += need + 1;
    }
    return 1;
}

static const char *const codes[] = {"CSV_RAGGED", "CSV_QUOTE", "CSV_UTF8",
                                    "CSV_NUL", "CSV_FIELD_SIZE"};

static int known_code(const char *code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i]) == 0)
            return 1;
    return 0;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* What reader.h promises of any input read from memory or a file. */
static void check_invariants(const ctx *c, const ig_reader_opts *o,
                             const run *t)
{
    const char *name = o->name ? o->name : "input";
    const unsigned char *in = c->in;
    size_t len = c->len;
    size_t max_field = o->max_field_bytes ? o->max_field_bytes : 1 << 20;
    size_t max_fields = o->max_fields ? o->max_fields : 16384;
    int bom = len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0;
    long long expected = o->header ? (long long)t->ncolumns : -1;
    long long prev_off = -1, prev_line = 0, prev_bytes = 0;
    char prefix[128];

    if (t->new_rc != IG_OK) {
        CHECK(c, o->header && t->new_rc == IG_DATA,
              "ig_reader_new failed with %s: %s", ig_code_name(t->new_rc),
              t->new_msg);
        snprintf(prefix, sizeof(prefix), "%s:", name);
        CHECK(c, starts_with(t->new_msg, prefix),
              "header error \"%s\" does not start with \"%s\"", t->new_msg,
              prefix);
        return;
    }
    CHECK(c, t->next_rc == IG_OK, "ig_reader_next failed with %s: %s",
          ig_code_name(t->next_rc), t->next_msg);
    CHECK(c, t->bytes == (long long)len,
          "ig_reader_bytes() = %lld at the end of %zu bytes", t->bytes, len);
    CHECK(c, !o->header || t->ncolumns > 0, "header with no columns");
    for (size_t i = 0; i < t->nrecs; i++) {
        const crec *r = &t->recs[i];
        size_t off = (size_t)r->offset, e;

        CHECK(c, r->recno == (long long)i + 1, "record %zu has recno %lld",
              i + 1, r->recno);
        CHECK(c, r->offset > prev_off, "record %lld: offset %lld after %lld",
              r->recno, r->offset, prev_off);
        CHECK(c, r->line >= prev_line, "record %lld: line %lld after %lld",
              r->recno, r->line, prev_line);
        CHECK(c, r->offset >= 0 && off < len,
              "record %lld: offset %lld outside %zu bytes", r->recno, r->offset,
              len);
        CHECK(c, r->line == line_at(in, len, off, t->lf_only),
              "record %lld: line %lld, but offset %lld is on line %lld",
              r->recno, r->line, r->offset, line_at(in, len, off, t->lf_only));
        CHECK(c,
              off == 0 || (bom && off == 3) || in[off - 1] == '\r' ||
                  in[off - 1] == '\n',
              "record %lld: offset %lld is not the start of a line", r->recno,
              r->offset);
        for (e = off; e < len && (is_blank_byte(in[e]) ||
                                  (t->lf_only && in[e] == '\r'));
             e++)
            ;
        CHECK(c, e < len && in[e] != '\r' && in[e] != '\n',
              "record %lld: line %lld (offset %lld) is blank but came back "
              "as a record (%s)",
              r->recno, r->line, r->offset, r->code ? r->msg : "no error");
        CHECK(c,
              r->bytes_after > r->offset && r->bytes_after >= prev_bytes &&
                  r->bytes_after <= (long long)len,
              "record %lld: ig_reader_bytes() = %lld after it (offset %lld, "
              "%lld before, %zu in all)",
              r->recno, r->bytes_after, r->offset, prev_bytes, len);
        prev_off = r->offset;
        prev_line = r->line;
        prev_bytes = r->bytes_after;
        CHECK(c, (r->code == NULL) == (r->msg == NULL),
              "record %lld: error_code %s with error %s", r->recno,
              r->code ? r->code : "NULL", r->msg ? r->msg : "NULL");
        CHECK(c, r->nfields <= max_fields, "record %lld: %zu fields > %zu",
              r->recno, r->nfields, max_fields);
        for (size_t f = 0; f < r->nfields; f++)
            CHECK(c, r->len[f] <= max_field,
                  "record %lld field %zu: %zu bytes > max_field_bytes %zu",
                  r->recno, f + 1, r->len[f], max_field);
        if (r->code != NULL) {
            CHECK(c, known_code(r->code), "record %lld: unknown code %s",
                  r->recno, r->code);
            snprintf(prefix, sizeof(prefix), "%s:%lld: ", name, r->line);
            CHECK(c, starts_with(r->msg, prefix),
                  "record %lld: message \"%s\" does not start with \"%s\"",
                  r->recno, r->msg, prefix);
            continue;
        }
        /* A clean record: the right width, no NUL, valid UTF-8. */
        if (expected < 0)
            expected = (long long)r->nfields;
        CHECK(c, (long long)r->nfields == expected,
              "record %lld: %zu fields, no CSV_RAGGED, expected %lld", r->recno,
              r->nfields, expected);
        for (size_t f = 0; f < r->nfields; f++) {
            CHECK(c, memchr(r->val[f], '\0', r->len[f]) == NULL,
                  "record %lld field %zu holds a NUL, no CSV_NUL", r->recno,
                  f + 1);
            CHECK(c, valid_utf8(r->val[f], r->len[f]),
                  "record %lld field %zu is invalid UTF-8, no CSV_UTF8",
                  r->recno, f + 1);
        }
    }
}

static void compare_runs(const ctx *c, const run *want, const run *got)
{
    CHECK(c,
          got->new_rc == want->new_rc &&
              strcmp(got->new_msg, want->new_msg) == 0,
          "ig_reader_new: %s \"%s\", from memory %s \"%s\"",
          ig_code_name(got->new_rc), got->new_msg, ig_code_name(want->new_rc),
          want->new_msg);
    CHECK(c, got->ncolumns == want->ncolumns, "%zu columns, from memory %zu",
          got->ncolumns, want->ncolumns);
    for (size_t i = 0; i < got->ncolumns; i++)
        CHECK(c, strcmp(got->columns[i], want->columns[i]) == 0,
              "column %zu \"%s\", from memory \"%s\"", i, got->columns[i],
              want->columns[i]);
    for (size_t i = 0; i < got->nrecs && i < want->nrecs; i++) {
        const crec *g = &got->recs[i], *w = &want->recs[i];

        CHECK(c,
              g->recno == w->recno && g->line == w->line &&
                  g->offset == w->offset,
              "record %zu: recno %lld line %lld offset %lld, from memory "
              "%lld %lld %lld",
              i + 1, g->recno, g->line, g->offset, w->recno, w->line,
              w->offset);
        CHECK(c, same_str(g->code, w->code) && same_str(g->msg, w->msg),
              "record %zu: %s \"%s\", from memory %s \"%s\"", i + 1,
              g->code ? g->code : "clean", g->msg ? g->msg : "",
              w->code ? w->code : "clean", w->msg ? w->msg : "");
        CHECK(c, g->nfields == w->nfields,
              "record %zu: %zu fields, from memory %zu", i + 1, g->nfields,
              w->nfields);
        for (size_t f = 0; f < g->nfields; f++)
            CHECK(c,
                  g->len[f] == w->len[f] &&
                      memcmp(g->val[f], w->val[f], g->len[f]) == 0,
                  "record %zu field %zu: \"%s\" (%zu bytes), from memory "
                  "\"%s\" (%zu bytes)",
                  i + 1, f + 1, (const char *)g->val[f], g->len[f],
                  (const char *)w->val[f], w->len[f]);
    }
    CHECK(c, got->nrecs == want->nrecs, "%zu records, from memory %zu",
          got->nrecs, want->nrecs);
    CHECK(c, got->next_rc == want->next_rc,
          "ig_reader_next: %s, from memory %s", ig_code_name(got->next_rc),
          ig_code_name(want->next_rc));
    CHECK(c, got->bytes == want->bytes,
          "ig_reader_bytes() %lld at the end, from memory %lld", got->bytes,
          want->bytes);
}

/* Record k of d came back exactly as generated (skip_field: the one field
 * not compared, or SIZE_MAX). */
static void expect_record(const ctx *c, const doc *d, size_t k, const crec *r,
                          size_t skip_field, int lf)
{
    const grec *g = &d->recs[k];
    long long line = line_at(d->text.p, d->text.len, g->offset, lf);

    CHECK(c, r->recno == (long long)k, "record %zu has recno %lld", k,
          r->recno);
    CHECK(c, r->line == line && r->offset == (long long)g->offset,
          "record %zu at line %lld offset %lld, want line %lld offset %zu", k,
          r->line, r->offset, line, g->offset);
    CHECK(c, r->nfields == d->ncols, "record %zu: %zu fields, want %zu", k,
          r->nfields, d->ncols);
    for (size_t f = 0; f < d->ncols; f++) {
        const unsigned char *v = d->vals.p + g->f[f].val_off;
        size_t n = g->f[f].val_len;

        if (f == skip_field)
            continue;
        CHECK(c, r->len[f] == n && memcmp(r->val[f], v, n) == 0,
              "record %zu field %zu: got \"%s\" (%zu bytes), want \"%.*s\" "
              "(%zu bytes)",
              k, f + 1, (const char *)r->val[f], r->len[f], (int)n,
              (const char *)v, n);
    }
}

static char *trimmed(const unsigned char *v, size_t n)
{
    size_t i = 0;
    char *s;

    while (n > 0 && is_blank_byte(v[n - 1]))
        n--;
    while (i < n && is_blank_byte(v[i]))
        i++;
    s = malloc(n - i + 1);
    assert_non_null(s);
    memcpy(s, v + i, n - i);
    s[n - i] = '\0';
    return s;
}

static void expect_header(const ctx *c, const doc *d, const run *t)
{
    CHECK(c, t->new_rc == IG_OK, "ig_reader_new failed: %s", t->new_msg);
    CHECK(c, t->ncolumns == d->ncols, "%zu columns, want %zu", t->ncolumns,
          d->ncols);
    for (size_t i = 0; i < d->ncols; i++) {
        const gfield *f = &d->recs[0].f[i];
        char *want = trimmed(d->vals.p + f->val_off, f->val_len);
        int same = strcmp(t->columns[i], want) == 0;

        free(want);
        CHECK(c, same, "column %zu is \"%s\", not the trimmed header field", i,
              t->columns[i]);
    }
}

/* A chunk size: the tiny ones hit every boundary. */
static size_t pick_chunk(rng *g)
{
    static const size_t sizes[] = {4, 5, 6, 7, 8, 9, 13, 16, 31, 64, 0};
    return sizes[below(g, sizeof(sizes) / sizeof(sizes[0]))];
}

/* ------------------------------------------------------------------ */
/* 1. Round trip                                                       */
/* ------------------------------------------------------------------ */

static void test_props_round_trip(void **state)
{
    ig_arena *a = ig_arena_new(ARENA_BLOCK);
    long n = ncases(300);

    (void)state;
    for (long cas = 0; cas < n; cas++) {
        rng g = case_rng(1, cas);
        doc d;
        FILE *f;

        if (only_case >= 0 && cas != only_case)
            continue;
        gen_doc(&d, &g);
        f = file_with(d.text.p, d.text.len);
        for (int v = 0; v < 2; v++) {
            ig_reader_opts o = {.header = 1,
                                .name = chance(&g, 50) ? "rt.csv" : NULL};
            ctx c = {"round trip", cas, d.text.p, d.text.len, ""};
            run t;

            if (v == 0) {
                o.buf = (const char *)d.text.p;
                o.buf_len = d.text.len;
            } else {
                rewind(f);
                o.file = f;
                o.chunk_size = pick_chunk(&g);
            }
            snprintf(c.variant, sizeof(c.variant), "%s, chunk_size %zu",
                     v ? "FILE" : "memory", o.chunk_size);
            run_reader(&c, &o, a, &g, &t);
            expect_header(&c, &d, &t);
            CHECK(&c, t.next_rc == IG_OK, "ig_reader_next: %s", t.next_msg);
            for (size_t k = 1; k < d.nrecs && k <= t.nrecs; k++) {
                const crec *r = &t.recs[k - 1];

                CHECK(&c, r->code == NULL, "record %zu: unexpected %s: %s", k,
                      r->code, r->msg);
                expect_record(&c, &d, k, r, SIZE_MAX, t.lf_only);
                CHECK(
                    &c,
                    r->bytes_after >= (long long)d.recs[k].end &&
                        r->bytes_after <= (long long)d.text.len &&
                        (k == 1 || r->bytes_after >= t.recs[k - 2].bytes_after),
                    "record %zu: ig_reader_bytes() = %lld after it "
                    "(record ends at %zu)",
                    k, r->bytes_after, d.recs[k].end);
            }
            CHECK(&c, t.nrecs == d.nrecs - 1, "%zu records, want %zu", t.nrecs,
                  d.nrecs - 1);
            CHECK(&c, t.bytes == (long long)d.text.len,
                  "ig_reader_bytes() = %lld at the end of %zu bytes", t.bytes,
                  d.text.len);
            check_invariants(&c, &o, &t);
            run_free(&t);
        }
        fclose(f);
        doc_free(&d);
    }
    ig_arena_free(a);
}

/* ------------------------------------------------------------------ */
/* 2 and 3. Any input: same records whatever the chunking; invariants  */
/* ------------------------------------------------------------------ */

/* What mutations put in: CSV specials, NUL, invalid UTF-8 (a lone lead,
 * a bad byte, overlongs, a surrogate, > U+10FFFF, a cut sequence). */
static const piece tokens[] = {
    S("\""),
    S("\"\""),
    S(","),
    S("\r"),
    S("\n"),
    S("\r\n"),
    S("\0"),
    S("\xC3"),
    S("\xFF"),
    S("\x80"),
    S("\xC0\x80"),
    S("\xE0\x80\xAF"),
    S("\xED\xA0\x80"),
    S("\xF4\x90\x80\x80"),
    S("\xE2\x82"),
    S(" "),
    S("\t"),
    S("x"),
    S("\xEF\xBB\xBF"),
};
#define NTOKENS (sizeof(tokens) / sizeof(tokens[0]))

static void mutate(bytes *t, const doc *d, rng *g)
{
    size_t n = 1 + below(g, 4);

    if (chance(g, 25)) {
        /* Truncate inside a quoted field, when there is one. */
        size_t nq = 0, pick;

        for (size_t r = 0; r < d->nrecs; r++)
            for (size_t f = 0; f < d->ncols; f++)
                nq += (size_t)d->recs[r].f[f].quoted;
        if (nq > 0) {
            pick = below(g, nq);
            for (size_t r = 0; r < d->nrecs; r++)
                for (size_t f = 0; f < d->ncols; f++) {
                    const gfield *q = &d->recs[r].f[f];
                    if (q->quoted && pick-- == 0)
                        t->len = q->at + below(g, q->out_len + 1);
                }
            t->p[t->len] = '\0';
            n--;
        }
    }
    while (n-- > 0) {
        size_t at = below(g, t->len + 1), op = below(g, 100);
        const piece *p = &tokens[below(g, NTOKENS)];

        if (op < 35 && at < t->len) {
            splice(t, at, 1, p->s, p->n); /* replace a byte */
        } else if (op < 70) {
            splice(t, at, 0, p->s, p->n); /* insert */
        } else if (op < 92) {
            size_t del = 1 + below(g, 3);
            if (del > t->len - at)
                del = t->len - at;
            splice(t, at, del, NULL, 0);
        } else {
            t->len = at; /* truncate */
            t->p[t->len] = '\0';
        }
    }
}

static void test_props_same_records_any_chunking(void **state)
{
    ig_arena *a = ig_arena_new(ARENA_BLOCK);
    long n = ncases(250);

    (void)state;
    for (long cas = 0; cas < n; cas++) {
        static const size_t file_chunks[] = {4, 5, 7, 64, 0};
        rng g = case_rng(2, cas);
        ig_reader_opts o = {0};
        bytes in = {0};
        ctx c = {"same records whatever the chunking", cas, NULL, 0, ""};
        run want;
        doc d;
        FILE *f;

        if (only_case >= 0 && cas != only_case)
            continue;
        gen_doc(&d, &g);
        put(&in, d.text.p, d.text.len);
        if (chance(&g, 85))
            mutate(&in, &d, &g);
        c.in = in.p;
        c.len = in.len;
        o.header = chance(&g, 80);
        o.name = chance(&g, 50) ? "in.csv" : NULL;
        if (chance(&g, 25))
            o.max_field_bytes = 1 + below(&g, 20);
        if (chance(&g, 15))
            o.max_fields = 1 + below(&g, 6);

        o.buf = (const char *)in.p;
        o.buf_len = in.len;
        snprintf(c.variant, sizeof(c.variant),
                 "memory, chunk_size 0, header %d, max_field_bytes %zu, "
                 "max_fields %zu",
                 o.header, o.max_field_bytes, o.max_fields);
        run_reader(&c, &o, a, &g, &want);
        check_invariants(&c, &o, &want);

        f = file_with(in.p, in.len);
        for (size_t v = 0; v < 2 + sizeof(file_chunks) / sizeof(size_t); v++) {
            ig_reader_opts ov = o;
            run got;

            if (v == 0) {
                ov.chunk_size = 4; /* memory, tiny segments */
            } else {
                rewind(f);
                ov.buf = NULL;
                ov.buf_len = 0;
                ov.file = f;
                ov.chunk_size = v <= sizeof(file_chunks) / sizeof(size_t)
                                    ? file_chunks[v - 1]
                                    : 8 + below(&g, 40);
            }
            snprintf(c.variant, sizeof(c.variant),
                     "%s, chunk_size %zu, header %d, max_field_bytes %zu, "
                     "max_fields %zu",
                     ov.file ? "FILE" : "memory", ov.chunk_size, ov.header,
                     ov.max_field_bytes, ov.max_fields);
            run_reader(&c, &ov, a, &g, &got);
            compare_runs(&c, &want, &got);
            run_free(&got);
        }
        fclose(f);
        run_free(&want);
        free(in.p);
        doc_free(&d);
    }
    ig_arena_free(a);
}

/* ------------------------------------------------------------------ */
/* 3. Damage to one record stays in that record                        */
/* ------------------------------------------------------------------ */

typedef struct {
    size_t rec, field, at; /* record (0 = header), field, byte in text */
} spot;

/* A byte inside an unquoted field of the header (header) or of a data
 * record: changing it to a byte that is no delimiter, quote, CR or LF
 * leaves the structure of the file as it was. nul: only bytes that are no
 * UTF-8 continuation byte, so that the NUL is the record's first problem. */
static int pick_spot(const doc *d, rng *g, int header, int nul, spot *s)
{
    size_t n = 0, pick = 0;

    for (int pass = 0; pass < 2; pass++) {
        for (size_t r = header ? 0 : 1; r < (header ? 1 : d->nrecs); r++)
            for (size_t f = 0; f < d->ncols; f++) {
                const gfield *q = &d->recs[r].f[f];

                if (q->quoted)
                    continue;
                for (size_t i = q->at; i < q->at + q->out_len; i++) {
                    if (nul && (d->text.p[i] & 0xC0) == 0x80)
                        continue;
                    if (pass == 0) {
                        n++;
                    } else if (pick-- == 0) {
                        s->rec = r;
                        s->field = f;
                        s->at = i;
                        return 1;
                    }
                }
            }
        if (n == 0)
            return 0;
        pick = below(g, n);
    }
    return 0;
}

static void test_props_damage_stays_in_its_record(void **state)
{
    static const unsigned char bad_utf8[] = {0xFF, 0xFE, 0xC0,
                                             0xC1, 0xF5, 0xF8};
    ig_arena *a = ig_arena_new(ARENA_BLOCK);
    long n = ncases(250);

    (void)state;
    for (long cas = 0; cas < n; cas++) {
        rng g = case_rng(3, cas);
        int nul = chance(&g, 50);
        unsigned char b = nul ? 0 : bad_utf8[below(&g, sizeof(bad_utf8))];
        const char *want_code = nul ? "CSV_NUL" : "CSV_UTF8";
        int header = chance(&g, 10);
        spot s = {0, 0, 0};
        bytes in = {0};
        doc d;
        FILE *f;
        int found = 0;

        if (only_case >= 0 && cas != only_case)
            continue;
        for (int tries = 0; tries < 20 && !found; tries++) {
            gen_doc(&d, &g);
            found = d.nrecs > 1 && pick_spot(&d, &g, header, nul, &s);
            if (!found)
                doc_free(&d);
        }
        if (!found)
            continue;
        put(&in, d.text.p, d.text.len);
        in.p[s.at] = b;
        f = file_with(in.p, in.len);
        for (int v = 0; v < 2; v++) {
            ig_reader_opts o = {.header = 1, .name = "dmg.csv"};
            ctx c = {"damage stays in its record", cas, in.p, in.len, ""};
            run t;

            if (v == 0) {
                o.buf = (const char *)in.p;
                o.buf_len = in.len;
            } else {
                rewind(f);
                o.file = f;
                o.chunk_size = pick_chunk(&g);
            }
            snprintf(c.variant, sizeof(c.variant),
                     "%s, chunk_size %zu; byte %zu (record %zu field %zu) "
                     "set to 0x%02X",
                     v ? "FILE" : "memory", o.chunk_size, s.at, s.rec,
                     s.field + 1, b);
            run_reader(&c, &o, a, &g, &t);
            check_invariants(&c, &o, &t);
            if (s.rec == 0) {
                CHECK(&c, t.new_rc == IG_DATA,
                      "a %s in the header: ig_reader_new gave %s", want_code,
                      ig_code_name(t.new_rc));
                run_free(&t);
                continue;
            }
            CHECK(&c, t.new_rc == IG_OK, "ig_reader_new: %s", t.new_msg);
            CHECK(&c, t.nrecs == d.nrecs - 1, "%zu records, want %zu", t.nrecs,
                  d.nrecs - 1);
            for (size_t k = 1; k < d.nrecs; k++) {
                const crec *r = &t.recs[k - 1];

                if (k != s.rec) {
                    CHECK(&c, r->code == NULL, "record %zu (undamaged): %s: %s",
                          k, r->code, r->msg);
                    expect_record(&c, &d, k, r, SIZE_MAX, t.lf_only);
                    continue;
                }
                CHECK(&c, r->code != NULL && strcmp(r->code, want_code) == 0,
                      "damaged record %zu: %s (%s), want %s", k,
                      r->code ? r->code : "clean", r->msg ? r->msg : "",
                      want_code);
                expect_record(&c, &d, k, r, s.field, t.lf_only);
            }
            run_free(&t);
        }
        fclose(f);
        free(in.p);
        doc_free(&d);
    }
    ig_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_props_round_trip),
        cmocka_unit_test(test_props_same_records_any_chunking),
        cmocka_unit_test(test_props_damage_stays_in_its_record),
    };
    const char *s = getenv("PROPS_SEED");

    if (s != NULL)
        seed = strtoull(s, NULL, 0);
    s = getenv("PROPS_CASE");
    if (s != NULL)
        only_case = atol(s);
    fprintf(stderr, "reader props: seed %#llx\n", seed);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
