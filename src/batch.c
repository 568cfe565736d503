/*
 * batch.c - rows of one batch as COPY text lines; see batch.h.
 *
 * COPY text format: columns separated by tabs, rows by newlines, NULL as
 * \N, and backslash, tab, newline and carriage return escaped with a
 * backslash. Values go through COPY, never into SQL text.
 */
#include "batch.h"
#include "pages.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of COPY line per row that ig_batch_reserve makes room for, and
 * the most rows it makes room for. */
#define COPY_LINE_GUESS 128
#define RESERVE_MAX_ROWS 65536

struct ig_batch {
    ig_arena *arena;
    ig_batch_row *rows;
    size_t n, cap, rows_bytes; /* cap = rows_bytes / sizeof(row); the
                                  array and buf from pages.h */
    char *buf; /* COPY lines */
    size_t len, bufcap;
    int col;   /* columns put in the current row */
    int huge;  /* its large buffers on huge pages */
    ig_batch_failure *fails; /* failures before the database (heap) */
    size_t nfails, capfails;
    long long end_offset, last_row, read;
};

static ig_batch *batch_new(int huge)
{
    ig_batch *b = ig_xcalloc(1, sizeof(*b));
    b->huge = huge;
    /* A huge batch's fields, by the megabyte, in blocks of a huge page */
    b->arena = huge ? ig_arena_new_huge(IG_PAGES_MIN)
                    : ig_arena_new(256 * 1024);
    b->buf = ig_pages_resize(NULL, &b->bufcap, 0, 64 * 1024, huge);
    return b;
}

ig_batch *ig_batch_new(void)
{
    return batch_new(0);
}

ig_batch *ig_batch_new_huge(void)
{
    return batch_new(1);
}

void ig_batch_free(ig_batch *b)
{
    if (b == NULL)
        return;
    ig_arena_free(b->arena);
    free(b->fails);
    ig_pages_free(b->rows, b->rows_bytes, b->huge);
    ig_pages_free(b->buf, b->bufcap, b->huge);
    free(b);
}

void ig_batch_reset(ig_batch *b)
{
    ig_arena_reset(b->arena);
    b->n = 0;
    b->nfails = 0;
    b->len = 0;
    b->col = 0;
    b->end_offset = b->last_row = b->read = 0;
}

ig_arena *ig_batch_arena(ig_batch *b)
{
    return b->arena;
}

/* Room for at least rows rows in the row array. */
static void grow_rows(ig_batch *b, size_t rows)
{
    b->rows = ig_pages_resize(b->rows, &b->rows_bytes,
                              b->n * sizeof(*b->rows),
                              rows * sizeof(*b->rows), b->huge);
    b->cap = b->rows_bytes / sizeof(*b->rows);
}

void ig_batch_reserve(ig_batch *b, size_t rows)
{
    /* Grown by doubling instead, the arrays of a 5000-row batch were
     * copied three times, and copying touches fresh pages: a page fault
     * each, dear on a virtual machine (hence huge pages, see pages.h).
     * Pages reserved and never written cost nothing; beyond
     * RESERVE_MAX_ROWS (a batch's arena ends it at 8 MiB long before) the
     * arrays grow as needed. */
    if (rows > RESERVE_MAX_ROWS)
        rows = RESERVE_MAX_ROWS;
    if (rows > b->cap)
        grow_rows(b, rows);
    if (rows * COPY_LINE_GUESS > b->bufcap)
        b->buf = ig_pages_resize(b->buf, &b->bufcap, b->len,
                                 rows * COPY_LINE_GUESS, b->huge);
}

static void reserve(ig_batch *b, size_t more)
{
    size_t want = b->bufcap;

    if (b->len + more <= b->bufcap)
        return;
    while (b->len + more > want)
        want *= 2;
    b->buf = ig_pages_resize(b->buf, &b->bufcap, b->len, want, b->huge);
}

void ig_batch_begin_row(ig_batch *b, const ig_record *rec)
{
    ig_batch_row *r;
    char num[24];
    size_t n = 0, v = b->n;

    if (b->n == b->cap)
        grow_rows(b, b->cap ? b->cap * 2 : 1024);
    r = &b->rows[b->n];
    memset(r, 0, sizeof(*r));
    r->rec = *rec;
    r->copy_off = b->len;
    do { /* _row: the index in the batch, in decimal (backwards) */
        num[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    reserve(b, n);
    while (n > 0)
        b->buf[b->len++] = num[--n];
    b->col = 1;
}

void ig_batch_put_bool(ig_batch *b, int v)
{
    reserve(b, 2);
    b->buf[b->len++] = '\t';
    b->buf[b->len++] = v ? 't' : 'f';
    b->col++;
}

void ig_batch_put_value(ig_batch *b, ig_value v)
{
    reserve(b, 3 + 2 * v.len);
    b->buf[b->len++] = '\t';
    if (v.is_null) {
        b->buf[b->len++] = '\\';
        b->buf[b->len++] = 'N';
    } else {
        for (size_t i = 0; i < v.len; i++) {
            char c = v.p[i];
            switch (c) {
            case '\\': b->buf[b->len++] = '\\'; b->buf[b->len++] = '\\'; break;
            case '\t': b->buf[b->len++] = '\\'; b->buf[b->len++] = 't'; break;
            case '\n': b->buf[b->len++] = '\\'; b->buf[b->len++] = 'n'; break;
            case '\r': b->buf[b->len++] = '\\'; b->buf[b->len++] = 'r'; break;
            default: b->buf[b->len++] = c;
            }
        }
    }
    b->col++;
}

void ig_batch_end_row(ig_batch *b)
{
    reserve(b, 1);
    b->buf[b->len++] = '\n';
    b->rows[b->n].copy_len = b->len - b->rows[b->n].copy_off;
    b->n++;
}

void ig_batch_set_flag(ig_batch *b, size_t i, size_t t, int v)
{
    ig_batch_row *r = &b->rows[i];
    char *p = b->buf + r->copy_off;

    r->elig[t] = (unsigned char)(v != 0);
    for (size_t tabs = 0; tabs < t + 1; p++) /* values are escaped: every */
        tabs += *p == '\t';                 /* tab separates a column */
    *p = v ? 't' : 'f';
}

void ig_batch_set_key_hash(ig_batch *b, size_t i, size_t t,
                           unsigned long long h)
{
    ig_batch_row *r = &b->rows[i];

    r->khash[t] = h;
    if (t == 0)
        r->key_hash = h;
}

void ig_batch_add_failure(ig_batch *b, const ig_record *rec,
                          const ig_reason *reasons, size_t nreasons)
{
    ig_reason *rs = ig_arena_alloc(b->arena, (nreasons ? nreasons : 1) *
                                                 sizeof(*rs));
    ig_batch_failure *f;

    for (size_t i = 0; i < nreasons; i++) {
        rs[i] = reasons[i];
        rs[i].message = ig_arena_strdup(b->arena, reasons[i].message);
    }
    if (b->nfails == b->capfails) {
        b->capfails = b->capfails ? b->capfails * 2 : 64;
        b->fails = ig_xrealloc(b->fails, b->capfails * sizeof(*b->fails));
    }
    f = &b->fails[b->nfails++];
    f->row = rec->recno;
    f->line = rec->line;
    f->offset = rec->offset;
    f->end = rec->end;
    f->values = rec->fields;
    f->nvalues = rec->nfields;
    f->reasons = rs;
    f->nreasons = nreasons;
}

static int cmp_failure(const void *a, const void *b)
{
    const ig_batch_failure *x = a, *y = b;
    return (x->row > y->row) - (x->row < y->row);
}

const ig_batch_failure *ig_batch_failures(ig_batch *b, size_t *n)
{
    size_t ndb = 0, k = 0;
    ig_batch_failure *all;

    for (size_t i = 0; i < b->n; i++)
        ndb += b->rows[i].failed != 0;
    *n = b->nfails + ndb;
    all = ig_arena_alloc(b->arena, (*n ? *n : 1) * sizeof(*all));
    for (size_t i = 0; i < b->nfails; i++)
        all[k++] = b->fails[i];
    for (size_t i = 0; i < b->n; i++) {
        ig_batch_row *r = &b->rows[i];
        if (!r->failed)
            continue;
        all[k].row = r->rec.recno;
        all[k].line = r->rec.line;
        all[k].offset = r->rec.offset;
        all[k].end = r->rec.end;
        all[k].values = r->rec.fields;
        all[k].nvalues = r->rec.nfields;
        all[k].reasons = &r->reason;
        all[k].nreasons = 1;
        k++;
    }
    qsort(all, *n, sizeof(*all), cmp_failure);
    return all;
}

size_t ig_batch_nrows(const ig_batch *b)
{
    return b->n;
}

ig_batch_row *ig_batch_row_at(ig_batch *b, size_t i)
{
    return i < b->n ? &b->rows[i] : NULL;
}

const char *ig_batch_copy_data(const ig_batch *b, size_t *len)
{
    *len = b->len;
    return b->buf;
}

const char *ig_batch_line(const ig_batch *b, size_t i, size_t *len)
{
    *len = b->rows[i].copy_len;
    return b->buf + b->rows[i].copy_off;
}

void ig_batch_set_end(ig_batch *b, long long offset, long long last_row)
{
    b->end_offset = offset;
    b->last_row = last_row;
}

long long ig_batch_end_offset(const ig_batch *b) { return b->end_offset; }
long long ig_batch_last_row(const ig_batch *b) { return b->last_row; }
void ig_batch_note_read(ig_batch *b, long long n) { b->read += n; }
long long ig_batch_read(const ig_batch *b) { return b->read; }
