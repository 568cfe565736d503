/*
 * results.c - counts, failed rows and the reject file; see results.h.
 */
#include "results.h"

#include "rules.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEPT_VALUES 1024
#define KEPT_BYTES (64 * 1024)

typedef struct kept_row {
    ig_failed_row row;
    ig_reason *reasons;
    char **values;
} kept_row;

struct ig_results {
    pthread_mutex_t mu;
    ig_counts all;
    ig_counts *per_target;
    char **target_names;
    size_t ntargets;
    kept_row *kept;
    size_t nkept, cap, max_kept;
    char *reject_path;   /* NULL: no reject file */
    FILE *reject;        /* opened by the first failed row */
    char **reject_header;
    unsigned char *reject_skip; /* [column]: an ingot_* column of an input
                                   that is itself a reject file */
    char delim, quote;
    size_t reject_ncols; /* input columns: every reject line has as many */
    size_t reject_width; /* a headerless input's width, or 0 */
    int raw_fd;          /* rows the reader could not parse are copied */
    const char *raw_buf; /* from here (see ig_results_set_reject_source) */
    size_t raw_len;
    int reject_failed;
    int reject_errno;    /* why, when it could not be opened or written */
    int reject_opened;   /* the file was created */
    iconv_t to_src;      /* UTF-8 to the input's encoding, or (iconv_t)-1
                            for UTF-8 input */
    char *conv;          /* to_source()'s buffer */
    size_t conv_cap;
};

ig_results *ig_results_new(const ig_results_opts *opts)
{
    ig_results *r = ig_xcalloc(1, sizeof(*r));

    pthread_mutex_init(&r->mu, NULL);
    r->to_src = (iconv_t)-1;
    r->raw_fd = -1;
    r->ntargets = opts->ntargets;
    r->per_target = ig_xcalloc(opts->ntargets ? opts->ntargets : 1,
                               sizeof(*r->per_target));
    r->target_names = ig_xcalloc(opts->ntargets ? opts->ntargets : 1,
                                 sizeof(char *));
    for (size_t i = 0; i < opts->ntargets; i++)
        r->target_names[i] = ig_xstrdup(opts->targets[i]);
    r->max_kept = opts->max_kept ? opts->max_kept : 1000;
    return r;
}

static void free_kept(kept_row *k)
{
    for (size_t i = 0; i < k->row.nreasons; i++) {
        free((char *)(uintptr_t)k->reasons[i].target);
        free((char *)(uintptr_t)k->reasons[i].column);
        free((char *)(uintptr_t)k->reasons[i].code);
        free((char *)(uintptr_t)k->reasons[i].constraint);
        free((char *)(uintptr_t)k->reasons[i].message);
    }
    free(k->reasons);
    for (size_t i = 0; i < k->row.nvalues; i++)
        free(k->values[i]);
    free(k->values);
}

void ig_results_free(ig_results *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nkept; i++)
        free_kept(&r->kept[i]);
    free(r->kept);
    for (size_t i = 0; i < r->ntargets; i++)
        free(r->target_names[i]);
    free(r->target_names);
    free(r->per_target);
    if (r->reject)
        fclose(r->reject);
    for (size_t i = 0; i < r->reject_ncols; i++)
        free(r->reject_header[i]);
    free(r->reject_header);
    free(r->reject_skip);
    free(r->reject_path);
    if (r->to_src != (iconv_t)-1)
        iconv_close(r->to_src);
    free(r->conv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* s (n bytes of UTF-8) in the reject file's single-byte encoding, in
 * r->conv: a character the encoding has as its byte; U+0080..U+009F that
 * windows-1252 leaves undefined as the byte of the same number (how the
 * reader read them); anything else, which only a message can hold, as
 * '?'. Returns the length. */
static size_t to_source(ig_results *r, const char *s, size_t n)
{
    char *ip, *op;
    size_t il = n, ol;

    memcpy(&ip, &s, sizeof(ip)); /* iconv() reads, never writes, *ip */
    if (r->conv_cap < n + 1) {
        r->conv_cap = n + 1;
        r->conv = ig_xrealloc(r->conv, r->conv_cap);
    }
    op = r->conv;
    ol = r->conv_cap;
    (void)iconv(r->to_src, NULL, NULL, NULL, NULL);
    while (il > 0 && iconv(r->to_src, &ip, &il, &op, &ol) == (size_t)-1) {
        unsigned char c0 = (unsigned char)ip[0];
        size_t len = c0 < 0x80 ? 1 : c0 < 0xE0 ? 2 : c0 < 0xF0 ? 3 : 4;

        if (len > il) /* cannot happen: values are valid UTF-8 */
            len = il;
        *op++ = len == 2 && c0 == 0xC2 && (unsigned char)ip[1] < 0xA0
                    ? ip[1] /* U+0080..U+009F */
                    : '?';
        ol--;
        ip += len;
        il -= len;
    }
    return (size_t)(op - r->conv);
}

/* Write one CSV field in the reject file's dialect and encoding. Fields
 * are always quoted: safe for any content, and re-readable by ingot. */
static void put_field(ig_results *r, const char *s, size_t n, int first)
{
    if (!first && fputc(r->delim, r->reject) == EOF)
        r->reject_failed = 1, r->reject_errno = errno;
    if (s != NULL && r->to_src != (iconv_t)-1) {
        n = to_source(r, s, n);
        s = r->conv;
    }
    if (csv_fwrite2(r->reject, s ? s : "", s ? n : 0,
                    (unsigned char)r->quote) != 0)
        r->reject_failed = 1, r->reject_errno = errno;
}

void ig_results_set_reject(ig_results *r, const char *path,
                           const char *const *header, size_t ncols,
                           char delimiter, char quote, const char *encoding)
{
    if (encoding != NULL) {
        r->to_src = iconv_open(encoding, "UTF-8");
        if (r->to_src == (iconv_t)-1) /* reported by the close */
            r->reject_failed = 1, r->reject_errno = errno;
    }
    r->reject_path = ig_xstrdup(path);
    r->reject_ncols = ncols;
    r->reject_header = ig_xcalloc(ncols ? ncols : 1, sizeof(char *));
    r->reject_skip = ig_xcalloc(ncols ? ncols : 1, 1);
    for (size_t i = 0; i < ncols; i++) {
        r->reject_header[i] = ig_xstrdup(header[i]);
        /* A reject file imported again gets its ingot_* columns anew,
         * not a second set after the first. */
        r->reject_skip[i] = ig_results_is_reject_column(header[i]);
    }
    r->delim = delimiter ? delimiter : ',';
    r->quote = quote ? quote : '"';
}

/* Create the reject file and write its header line (under the lock, at
 * the first failed row). 0, or -1 with reject_failed set. */
static int open_reject(ig_results *r)
{
    static const char *const extra[] = {"ingot_row", "ingot_line",
                                        "ingot_error"};

    r->reject = fopen(r->reject_path, "w");
    if (r->reject == NULL) {
        r->reject_failed = 1, r->reject_errno = errno;
        return -1;
    }
    r->reject_opened = 1;
    /* An input without a header row gets a reject file without one: its
     * rows re-import by position, the ingot_* fields after the data. */
    if (r->reject_ncols == 0)
        return 0;
    int first = 1;

    for (size_t i = 0; i < r->reject_ncols; i++)
        if (!r->reject_skip[i]) {
            put_field(r, r->reject_header[i], strlen(r->reject_header[i]),
                      first);
            first = 0;
        }
    for (size_t i = 0; i < 3; i++) {
        put_field(r, extra[i], strlen(extra[i]), first);
        first = 0;
    }
    if (fputc('\n', r->reject) == EOF)
        r->reject_failed = 1, r->reject_errno = errno;
    return 0;
}

int ig_results_close_reject(ig_results *r, ig_err *err)
{
    int failed = r->reject_failed;

    if (r->reject != NULL) {
        if (fclose(r->reject) != 0 && !failed) {
            failed = 1;
            r->reject_errno = errno;
        }
        r->reject = NULL;
    }
    if (failed)
        return ig_err_set(err, IG_IO, "%s: cannot write the reject file: %s",
                          r->reject_path,
                          strerror(r->reject_errno ? r->reject_errno : EIO));
    return IG_OK;
}

int ig_results_is_reject_column(const char *name)
{
    return strcmp(name, "ingot_row") == 0 || strcmp(name, "ingot_line") == 0 ||
           strcmp(name, "ingot_error") == 0;
}

int ig_results_reject_written(const ig_results *r)
{
    return r->reject_opened;
}

void ig_results_set_reject_source(ig_results *r, int fd, const char *buf,
                                  size_t len)
{
    pthread_mutex_lock(&r->mu);
    r->raw_fd = fd;
    r->raw_buf = buf;
    r->raw_len = len;
    pthread_mutex_unlock(&r->mu);
}

void ig_results_set_reject_width(ig_results *r, size_t width)
{
    pthread_mutex_lock(&r->mu);
    r->reject_width = width;
    pthread_mutex_unlock(&r->mu);
}

/* Bytes [off, off + n) of the raw source into buf; 0, or -1 (errno). */
static int raw_read(ig_results *r, long long off, char *buf, size_t n)
{
    if (r->raw_buf != NULL) {
        if (off < 0 || (size_t)off > r->raw_len || n > r->raw_len - (size_t)off) {
            errno = EINVAL;
            return -1;
        }
        memcpy(buf, r->raw_buf + off, n);
        return 0;
    }
    while (n > 0) {
        ssize_t got = pread(r->raw_fd, buf, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO; /* the input shrank under us */
            return -1;
        }
        buf += got;
        off += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Whether the input is itself a reject file, its ingot_* columns last. */
static int ingot_columns_last(const ig_results *r)
{
    size_t n = r->reject_ncols;

    return n >= 3 && r->reject_skip[n - 1] && r->reject_skip[n - 2] &&
           r->reject_skip[n - 3];
}

/* The end of input[off, end) without its last three fields (outside
 * quotes, the delimiters that separate them), or end when it has fewer:
 * a row of a reject file imported again loses its old ingot_* fields
 * before it gets new ones. -1 on a read error. */
static long long without_last_three(ig_results *r, long long off,
                                    long long end)
{
    char buf[64 * 1024];
    long long delim[3] = {-1, -1, -1}; /* the last three, oldest first */
    int inq = 0;

    for (long long at = off; at < end;) {
        size_t part = end - at < (long long)sizeof(buf) ? (size_t)(end - at)
                                                        : sizeof(buf);
        if (raw_read(r, at, buf, part) != 0)
            return -1;
        for (size_t i = 0; i < part; i++) {
            if (buf[i] == r->quote) {
                inq = !inq; /* a doubled quote toggles twice */
            } else if (buf[i] == r->delim && !inq) {
                delim[0] = delim[1];
                delim[1] = delim[2];
                delim[2] = at + (long long)i;
            }
        }
        at += (long long)part;
    }
    return delim[0] >= 0 ? delim[0] : end;
}

/* Copy the record input[off, end) to the reject file as it was, without
 * its line end (and, from a reject file, without its old ingot_* fields
 * unless its quotes are broken: see without_last_three). 1 when copied;
 * 0 when there is no source or the range is unknown (the caller writes
 * the fields); a read error after that marks the reject file failed (it
 * is reported when closed). */
static int copy_raw(ig_results *r, long long off, long long end,
                    int quotes_ok)
{
    char buf[64 * 1024], tail[2];
    size_t n;

    if ((r->raw_fd < 0 && r->raw_buf == NULL) || off < 0 || end <= off)
        return 0;
    /* The line end it was read with (LF, CR or CRLF) is not the record's. */
    n = end - off >= 2 ? 2 : 1;
    if (raw_read(r, end - (long long)n, tail, n) != 0)
        return 0;
    while (n > 0 && end > off && (tail[n - 1] == '\n' || tail[n - 1] == '\r')) {
        end--;
        n--;
    }
    if (quotes_ok && ingot_columns_last(r) &&
        (end = without_last_three(r, off, end)) < 0)
        return 0;
    while (off < end && !r->reject_failed) {
        size_t part = end - off < (long long)sizeof(buf) ? (size_t)(end - off)
                                                         : sizeof(buf);
        if (raw_read(r, off, buf, part) != 0 ||
            fwrite(buf, 1, part, r->reject) != part) {
            r->reject_failed = 1, r->reject_errno = errno;
            break;
        }
        off += (long long)part;
    }
    return 1;
}

/* The reader's code when the row failed only because it could not be
 * parsed (CSV_QUOTE, CSV_RAGGED, ...), else NULL. */
static const char *reader_code(const ig_reason *reasons, size_t nreasons)
{
    if (nreasons == 1 && reasons[0].target == NULL &&
        strncmp(reasons[0].code, "CSV_", 4) == 0)
        return reasons[0].code;
    return NULL;
}

static void write_reject(ig_results *r, long long row, long long line,
                         long long offset, long long end,
                         const ig_value *values, size_t nvalues,
                         const ig_reason *reasons, size_t nreasons)
{
    char num[32];
    size_t len = 0, cap = 256;
    char *msg;
    const char *parse = reader_code(reasons, nreasons);
    int ragged = parse != NULL && strcmp(parse, "CSV_RAGGED") == 0;
    size_t ncols = r->reject_ncols ? r->reject_ncols
                   : ragged && r->reject_width ? r->reject_width
                                               : nvalues;
    int first = 1;

    /* A row the reader could not parse goes as it was, so that it fails
     * again until it is fixed (padded, a short row would land with NULLs)
     * and keeps what the reader could not (an over-long field, the quotes
     * around a misplaced one). Not a ragged row of an input without a
     * header: the first clean record sets such a file's width, and this
     * one could come first. */
    if (parse != NULL && !(ragged && r->reject_ncols == 0) &&
        copy_raw(r, offset, end, strcmp(parse, "CSV_QUOTE") != 0)) {
        ncols = 0;
        nvalues = 0;
        first = 0;
    }
    /* Otherwise a ragged row is cut or padded to the input's width, so
     * the ingot_* columns stay in place; fields beyond it go into the
     * message. */
    for (size_t i = 0; i < ncols; i++) {
        int have = i < nvalues && !values[i].is_null;
        if (r->reject_ncols && r->reject_skip[i])
            continue;
        put_field(r, have ? values[i].p : "", have ? values[i].len : 0,
                  first);
        first = 0;
    }
    msg = ig_xmalloc(cap);
    snprintf(num, sizeof(num), "%lld", row);
    put_field(r, num, strlen(num), first);
    snprintf(num, sizeof(num), "%lld", line);
    put_field(r, num, strlen(num), 0);
    msg[0] = '\0';
    for (size_t i = 0; i < nreasons; i++) {
        const ig_reason *e = &reasons[i];
        size_t need = strlen(e->message) + 64 +
                      (e->column ? strlen(e->column) : 0) +
                      (e->target ? strlen(e->target) : 0) +
                      strlen(e->code);
        if (len + need >= cap) {
            cap = (len + need) * 2;
            msg = ig_xrealloc(msg, cap);
        }
        len += (size_t)snprintf(msg + len, cap - len, "%s%s%s%s%s[%s] %s",
                                i ? "; " : "", e->target ? e->target : "",
                                e->target && e->column ? "." : "",
                                e->column ? e->column : "",
                                e->target || e->column ? ": " : "", e->code,
                                e->message);
    }
    for (size_t i = ncols; i < nvalues; i++) {
        const char *v = values[i].is_null ? "" : values[i].p;
        size_t need = values[i].is_null ? 0 : values[i].len;
        if (len + need + 32 >= cap) {
            cap = (len + need + 32) * 2;
            msg = ig_xrealloc(msg, cap);
        }
        len += (size_t)snprintf(msg + len, cap - len, "%s", i == ncols ?
                                "; extra fields: " : " | ");
        memcpy(msg + len, v, need);
        len += need;
        msg[len] = '\0';
    }
    put_field(r, msg, len, 0);
    if (fputc('\n', r->reject) == EOF)
        r->reject_failed = 1, r->reject_errno = errno;
    free(msg);
}

/* Value v as kept in memory (owned): text, a NUL byte or a byte that
 * starts no UTF-8 sequence as U+FFFD, so that JSON and the API can show
 * it in its place rather than cut or drop it. */
static char *kept_text(const ig_value *v, size_t *len)
{
    const char *p = v->p ? v->p : "";
    size_t n = v->p ? v->len : 0;
    char *clean = ig_utf8_scrub(p, n, len);

    if (clean == NULL) {
        clean = ig_xmalloc(n + 1);
        memcpy(clean, p, n);
        clean[n] = '\0';
        *len = n;
    }
    return clean;
}

/* Keep a failed row's values: at most KEPT_VALUES, and no more than
 * KEPT_BYTES of them as kept (scrubbed text may be longer than the
 * bytes read), so a thousand ragged rows of 20000 fields cannot take
 * gigabytes (the reject file gets them all). How many in *n. */
static char **keep_values(const ig_value *values, size_t nvalues, size_t *n)
{
    char **kept = ig_xcalloc(nvalues && nvalues < KEPT_VALUES
                                 ? nvalues
                                 : nvalues ? KEPT_VALUES : 1,
                             sizeof(char *));
    size_t bytes = 0;

    for (*n = 0; *n < nvalues && *n < KEPT_VALUES; (*n)++) {
        size_t len = 0;
        char *v = values[*n].is_null ? NULL : kept_text(&values[*n], &len);
        bytes += sizeof(char *) + (v ? len + 1 : 0);
        if (bytes > KEPT_BYTES) {
            free(v);
            break;
        }
        kept[*n] = v;
    }
    return kept;
}

void ig_results_fail_row(ig_results *r, long long row, long long line,
                         long long offset, long long end,
                         const ig_value *values, size_t nvalues,
                         const ig_reason *reasons, size_t nreasons)
{
    pthread_mutex_lock(&r->mu);
    r->all.failed++;
    if (r->reject_path && !r->reject_failed &&
        (r->reject != NULL || open_reject(r) == 0))
        write_reject(r, row, line, offset, end, values, nvalues, reasons,
                     nreasons);
    if (r->nkept < r->max_kept) {
        kept_row *k;
        if (r->nkept == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->kept = ig_xrealloc(r->kept, r->cap * sizeof(*r->kept));
        }
        k = &r->kept[r->nkept++];
        memset(k, 0, sizeof(*k));
        k->reasons = ig_xcalloc(nreasons ? nreasons : 1, sizeof(ig_reason));
        for (size_t i = 0; i < nreasons; i++) {
            k->reasons[i].target = ig_xstrdup(reasons[i].target);
            k->reasons[i].column = ig_xstrdup(reasons[i].column);
            k->reasons[i].code = ig_xstrdup(reasons[i].code);
            k->reasons[i].constraint = ig_xstrdup(reasons[i].constraint);
            k->reasons[i].message = ig_xstrdup(reasons[i].message);
        }
        k->values = keep_values(values, nvalues, &nvalues);
        k->row.row = row;
        k->row.line = line;
        k->row.nreasons = nreasons;
        k->row.reasons = k->reasons;
        k->row.nvalues = nvalues;
        k->row.values = (const char *const *)k->values;
    }
    pthread_mutex_unlock(&r->mu);
}

static void add_counts(ig_counts *to, const ig_counts *d)
{
    to->read += d->read;
    to->inserted += d->inserted;
    to->updated += d->updated;
    to->unchanged += d->unchanged;
    to->skipped += d->skipped;
    to->failed += d->failed;
}

void ig_results_add(ig_results *r, int t, const ig_counts *delta)
{
    pthread_mutex_lock(&r->mu);
    if (t < 0)
        add_counts(&r->all, delta);
    else if ((size_t)t < r->ntargets)
        add_counts(&r->per_target[t], delta);
    pthread_mutex_unlock(&r->mu);
}

ig_counts ig_results_counts(const ig_results *r)
{
    ig_counts c;
    pthread_mutex_lock((pthread_mutex_t *)(uintptr_t)&r->mu);
    c = r->all;
    pthread_mutex_unlock((pthread_mutex_t *)(uintptr_t)&r->mu);
    /* Overall, a row that reached no outcome in the primary target and did
     * not fail was skipped (skip_when_null, or its key folded into a later
     * row's). While an import runs, a batch's early failures can make this
     * briefly negative: clamp. */
    c.skipped = c.read - c.failed - c.inserted - c.updated - c.unchanged;
    if (c.skipped < 0)
        c.skipped = 0;
    return c;
}

ig_counts ig_results_target_counts(const ig_results *r, size_t t)
{
    ig_counts c;
    memset(&c, 0, sizeof(c));
    pthread_mutex_lock((pthread_mutex_t *)(uintptr_t)&r->mu);
    if (t < r->ntargets)
        c = r->per_target[t];
    pthread_mutex_unlock((pthread_mutex_t *)(uintptr_t)&r->mu);
    return c;
}

size_t ig_results_ntargets(const ig_results *r) { return r->ntargets; }
const char *ig_results_target_name(const ig_results *r, size_t t)
{
    return t < r->ntargets ? r->target_names[t] : NULL;
}
size_t ig_results_nfailed_kept(const ig_results *r) { return r->nkept; }
const ig_failed_row *ig_results_failed_row(const ig_results *r, size_t i)
{
    return i < r->nkept ? &r->kept[i].row : NULL;
}
