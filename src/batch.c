/*
 * batch.c - rows of one batch as COPY text lines; see batch.h.
 *
 * COPY text format: columns separated by tabs, rows by newlines, NULL as
 * \N, and backslash, tab, newline and carriage return escaped with a
 * backslash. Values go through COPY, never into SQL text.
 */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

struct ig_batch {
    ig_arena *arena;
    ig_batch_row *rows;
    size_t n, cap;
    char *buf; /* COPY lines */
    size_t len, bufcap;
    int col;   /* columns put in the current row */
    long long end_offset, last_row, read;
};

ig_batch *ig_batch_new(void)
{
    ig_batch *b = ig_xcalloc(1, sizeof(*b));
    b->arena = ig_arena_new(256 * 1024);
    b->bufcap = 64 * 1024;
    b->buf = ig_xmalloc(b->bufcap);
    return b;
}

void ig_batch_free(ig_batch *b)
{
    if (b == NULL)
        return;
    ig_arena_free(b->arena);
    free(b->rows);
    free(b->buf);
    free(b);
}

void ig_batch_reset(ig_batch *b)
{
    ig_arena_reset(b->arena);
    b->n = 0;
    b->len = 0;
    b->col = 0;
    b->end_offset = b->last_row = b->read = 0;
}

ig_arena *ig_batch_arena(ig_batch *b)
{
    return b->arena;
}

static void reserve(ig_batch *b, size_t more)
{
    if (b->len + more <= b->bufcap)
        return;
    while (b->len + more > b->bufcap)
        b->bufcap *= 2;
    b->buf = ig_xrealloc(b->buf, b->bufcap);
}

void ig_batch_begin_row(ig_batch *b, const ig_record *rec)
{
    ig_batch_row *r;
    char num[24];
    int n;

    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->rows = ig_xrealloc(b->rows, b->cap * sizeof(*b->rows));
    }
    r = &b->rows[b->n];
    memset(r, 0, sizeof(*r));
    r->rec = *rec;
    r->copy_off = b->len;
    n = snprintf(num, sizeof(num), "%zu", b->n); /* _row: index in batch */
    reserve(b, (size_t)n);
    memcpy(b->buf + b->len, num, (size_t)n);
    b->len += (size_t)n;
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

void ig_batch_append_line(const ig_batch *b, size_t i, char **dst,
                          size_t *len, size_t *cap)
{
    const ig_batch_row *r = &b->rows[i];
    if (*len + r->copy_len > *cap) {
        *cap = (*len + r->copy_len) * 2;
        *dst = ig_xrealloc(*dst, *cap);
    }
    memcpy(*dst + *len, b->buf + r->copy_off, r->copy_len);
    *len += r->copy_len;
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
