/*
 * reader.c - streaming CSV reader on libcsv; see reader.h.
 *
 * Data flow inside the reader, one record per ig_reader_next():
 *
 *   chunk (fread, 64 KiB; a pipe's bytes as they arrive, see read_piped;
 *   or the caller's buffer)
 *     -> segment: the bytes up to and including the next delimiter, CR or
 *        LF (or at most chunk_size bytes)
 *     -> scan: line count, record start, blank-line test, NUL and UTF-8
 *        checks on the raw bytes, which are where offsets are meaningful
 *     -> convert: latin-1 / windows-1252 bytes to UTF-8 (a 256-entry
 *        table built with iconv when the reader is made: both are single
 *        byte encodings, so a segment converts on its own)
 *     -> csv_parse (libcsv, CSV_STRICT) -> on_field / on_record
 *     -> field bytes copied once into the caller's arena
 *
 * Why segments: libcsv does not say where in the buffer it was given a
 * callback fired. It can only submit a field on a delimiter, CR or LF, and
 * a record on CR or LF, so when every piece we feed ends at the first such
 * byte, any callback fired on the piece's last byte. That gives exact byte
 * offsets and line numbers without a second CSV state machine, and every
 * byte of a segment belongs to field nseen + 1 of the record in progress
 * (a delimiter inside quotes simply submits nothing). A record therefore
 * also never outlives the ig_reader_next() call that started it.
 *
 * Memory: the chunk, the conversion buffer and libcsv's field buffer are
 * the reader's; they are bounded by chunk_size and max_field_bytes. Field
 * values and the record's ig_value array live in the caller's arena.
 *
 * Recovery from malformed input (see reader.h for the codes):
 * - A quote RFC 4180 does not allow (CSV_STRICT's CSV_EPARSE) ends the
 *   record there: its fields so far are flushed with csv_fini(), the
 *   record is marked CSV_QUOTE, and the rest of that physical line is
 *   not parsed; parsing resumes on the next line with a fresh parser. We
 *   do not try to guess what the author meant, but the rest of the line
 *   is kept as read in the record's last field (held until the line
 *   ends), so the reject file shows the whole line to fix.
 * - An unterminated quote can only be seen at EOF (CSV_STRICT_FINI): the
 *   record that swallowed the rest of the input is marked CSV_QUOTE.
 * - A field outgrowing max_field_bytes: libcsv has no hook to cap its
 *   buffer, and stopping it would lose its quoting state. So once the
 *   field is too long we rewind libcsv's public entry_pos to keep one byte
 *   (the last, which may be the closing quote libcsv will strip) and let it
 *   go on: the field's end is found exactly as RFC 4180 says, the record
 *   is marked CSV_FIELD_SIZE and its value is "".
 */
#include "reader.h"
#include "clock.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CHUNK (64 * 1024)
#define DOS_EOF 0x1A /* Ctrl-Z: some DOS-era exports end with one; the
                        last byte of the input is dropped if it is */
#define MIN_CHUNK 4 /* the first chunk must hold a whole BOM */
#define DEFAULT_MAX_FIELD (1024 * 1024)
#define DEFAULT_MAX_FIELDS 16384
#define CSV_BLOCK 4096 /* libcsv grows its field buffer by this much */
#define UTF8_MAX 3     /* bytes of UTF-8 per latin-1/windows-1252 byte */

struct ig_reader {
    /* input */
    char *name;               /* owned */
    FILE *file;               /* borrowed */
    const unsigned char *mem; /* borrowed */
    size_t mem_len;
    unsigned char *chunk;     /* owned; FILE input only */
    const unsigned char *cur; /* current chunk: chunk or mem */
    size_t cur_len, cur_pos;
    size_t chunk_size;
    int piped;    /* a pipe, terminal or socket: read(2) as data comes */
    int pushback; /* a byte read ahead on a pipe (after a Ctrl-Z), or -1 */
    int (*stop)(void *ud);
    void *stop_ud;
    double stop_checked; /* ig_clock_s() of the last ask */
    int spool_fd; /* a copy of what is read (ig_reader_opts.spool), or -1 */
    int started;  /* first chunk read (BOM checked) */
    int eof;      /* no chunk left */
    int finished; /* csv_fini done: nothing left at all */
    ig_err ioerr; /* sticky read error */

    /* options */
    unsigned char delim, quote;
    ig_encoding encoding;
    size_t max_field, max_fields;

    /* position of the next raw byte */
    long long pos;
    long long line;
    int prev_cr; /* last segment ended with CR */
    int lf_only; /* an LF file: a lone CR is data (decide_line_ends) */
    int decided; /* lf_only was decided by the first line end */
    long long cr_lines; /* lines counted for lone CRs before that */
    /* A record ended by a misplaced quote is held until its line ends,
     * the rest of the line kept (converted, at most max_field bytes) to
     * go into its last field: see stray_quote. */
    int held;
    unsigned char *tail; /* owned */
    size_t tail_len, tail_cap;

    /* parsing */
    struct csv_parser parser;
    int parser_ok;              /* csv_init done: csv_free needed */
    unsigned char special[256]; /* delimiter, CR, LF: segment ends */
    unsigned char xlat[256][4]; /* byte -> UTF-8 (non-UTF-8 sources) */
    unsigned char xlat_len[256];
    unsigned char *conv;        /* owned; UTF8_MAX * chunk_size */
    int u8_need;                /* continuation bytes still expected */
    unsigned char u8_lo, u8_hi; /* range of the next continuation byte */
    long long u8_lead_off;      /* where the pending sequence started */
    size_t u8_lead_field;

    /* record in progress */
    ig_arena *arena; /* borrowed for one pump() */
    int in_record, rec_ready, skip, rec_blank, field_cut;
    ig_value *fields;    /* arena */
    size_t nfields, cap; /* stored values */
    size_t nseen;        /* fields seen (may exceed max_fields) */
    long long rec_line, rec_off;
    const char *err_code; /* static string or NULL */
    size_t err_field;     /* the field err_code concerns (1-based), or 0 */
    char err_msg[512];

    /* results */
    long long recno;
    long long expected;  /* fields per record; -1 = not known yet */
    ig_arena *hdr_arena; /* owned; header names */
    char **columns;
    size_t ncolumns;
};

/* ------------------------------------------------------------------ */
/* Record bookkeeping                                                  */
/* ------------------------------------------------------------------ */

/* Mark the record in progress as malformed, unless it already is by a
 * problem of the same or a lower rank (below): one problem is reported. */
static void note(ig_reader *r, const char *code, size_t field,
                 const char *fmt, ...) IG_PRINTF(4, 5);

/* Which of a record's problems is reported: the lower rank, then the
 * first found. By rank, not by the order they are found in: that order
 * depends on where the input happens to be cut into segments (a NUL is
 * found when its segment is scanned, a misplaced quote when libcsv parses
 * it, an over-long field at the end of a segment). */
static int rank(const char *code)
{
    static const char *const order[] = {"CSV_QUOTE", "CSV_FIELD_SIZE",
                                        "CSV_NUL", "CSV_UTF8"};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (strcmp(code, order[i]) == 0)
            return (int)i;
    return 4; /* CSV_RAGGED */
}

static void note(ig_reader *r, const char *code, size_t field,
                 const char *fmt, ...)
{
    va_list ap;
    int n;

    if (r->err_code != NULL && rank(code) >= rank(r->err_code))
        return;
    r->err_code = code;
    r->err_field = field;
    n = snprintf(r->err_msg, sizeof(r->err_msg), "%s:%lld: ", r->name,
                 r->rec_line);
    if (n < 0 || (size_t)n >= sizeof(r->err_msg))
        return;
    va_start(ap, fmt);
    vsnprintf(r->err_msg + n, sizeof(r->err_msg) - (size_t)n, fmt, ap);
    va_end(ap);
}

static void start_record(ig_reader *r)
{
    r->in_record = 1;
    r->rec_blank = 1;
    r->rec_line = r->line;
    r->rec_off = r->pos;
    r->fields = NULL;
    r->nfields = r->cap = r->nseen = 0;
    r->field_cut = 0;
    r->err_code = NULL;
    r->err_msg[0] = '\0';
    r->u8_need = 0;
}

/* Append one value; the array lives in the arena, sized for the header's
 * columns and doubled for a longer record, so the waste is below the
 * final size and nothing is malloc'ed per field. */
static void push_field(ig_reader *r, ig_value v)
{
    if (r->nfields == r->cap) {
        size_t cap = r->cap       ? r->cap * 2
                     : r->ncolumns ? r->ncolumns
                                   : 16;
        ig_value *a = ig_arena_alloc(r->arena, cap * sizeof(*a));
        if (r->nfields > 0)
            memcpy(a, r->fields, r->nfields * sizeof(*a));
        r->fields = a;
        r->cap = cap;
    }
    r->fields[r->nfields++] = v;
}

/* libcsv field callback: copy the field into the arena. */
static void on_field(void *s, size_t len, void *data)
{
    ig_reader *r = data;
    ig_value v = {"", 0, 0};
    size_t no = ++r->nseen;

    if (r->field_cut || len > r->max_field)
        note(r, "CSV_FIELD_SIZE", no,
             "field %zu is longer than %zu bytes (record at byte offset "
             "%lld)",
             no, r->max_field, r->rec_off);
    else
        v = (ig_value){ig_arena_strndup(r->arena, s, len), len, 0};
    r->field_cut = 0;
    if (no > r->max_fields) {
        note(r, "CSV_RAGGED", 0, "more than %zu fields", r->max_fields);
        return;
    }
    push_field(r, v);
}

/* libcsv record callback: c is the terminator, or -1 from csv_fini. */
static void on_record(int c, void *data)
{
    ig_reader *r = data;

    (void)c;
    r->in_record = 0;
    r->rec_ready = 1;
}

/* libcsv treats space and tab as trimmable unless told otherwise; RFC 4180
 * says spaces are data. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

/* In an LF file only LF ends a record, and a CR is trimmed like a space
 * at the edges of a field: the CR of a CRLF line, also after a closing
 * quote; inside a field it is data. */
static int lf_term(unsigned char c)
{
    return c == '\n';
}

static int cr_space(unsigned char c)
{
    return c == '\r';
}

/* The first line end outside quotes (eol: the byte) decides the input's:
 * LF alone (not CRLF, whose CR comes first) makes it an LF file, where a
 * CR that spreadsheet scripts write unquoted inside a field is data, not
 * a line end that cuts the row short. Lone CRs counted as lines before
 * (inside the first record's quotes) are taken back. libcsv reads its
 * functions once per csv_parse() call: they apply from the next one. */
static void decide_line_ends(ig_reader *r, unsigned char eol)
{
    r->decided = 1;
    r->lf_only = eol == '\n';
    if (r->lf_only) {
        r->line -= r->cr_lines;
        csv_set_term_func(&r->parser, lf_term);
        csv_set_space_func(&r->parser, cr_space);
    }
}

/* ------------------------------------------------------------------ */
/* Raw byte checks: UTF-8, NUL, blank lines                            */
/* ------------------------------------------------------------------ */

static void bad_utf8(ig_reader *r, long long off, size_t field)
{
    note(r, "CSV_UTF8", field,
         "field %zu: invalid UTF-8 at byte offset %lld (if the file is "
         "Latin-1 or Windows-1252, set source.encoding)",
         field, off);
}

/* Start a sequence on lead byte b (>= 0x80). Ranges follow Unicode's
 * table 3-7, which rules out overlongs, surrogates and > U+10FFFF. */
static void utf8_lead(ig_reader *r, unsigned char b, long long off)
{
    r->u8_lo = 0x80;
    r->u8_hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        r->u8_need = 1;
    else if (b >= 0xE0 && b <= 0xEF)
        r->u8_need = 2;
    else if (b >= 0xF0 && b <= 0xF4)
        r->u8_need = 3;
    else {
        bad_utf8(r, off, r->nseen + 1); /* 80..C1, F5..FF */
        return;
    }
    if (b == 0xE0)
        r->u8_lo = 0xA0;
    else if (b == 0xED)
        r->u8_hi = 0x9F;
    else if (b == 0xF0)
        r->u8_lo = 0x90;
    else if (b == 0xF4)
        r->u8_hi = 0x8F;
    r->u8_lead_off = off;
    r->u8_lead_field = r->nseen + 1;
}

/* One byte through the validator. State carries across segments and
 * chunks, so a character split by a chunk boundary is fine. */
static void utf8_byte(ig_reader *r, unsigned char b, long long off)
{
    if (r->u8_need > 0) {
        if (b >= r->u8_lo && b <= r->u8_hi) {
            r->u8_need--;
            r->u8_lo = 0x80;
            r->u8_hi = 0xBF;
            return;
        }
        bad_utf8(r, r->u8_lead_off, r->u8_lead_field); /* truncated */
        r->u8_need = 0;
    }
    if (b >= 0x80)
        utf8_lead(r, b, off);
}

static int is_eol(unsigned char c)
{
    return c == '\r' || c == '\n';
}

/* Whether c ends a line of this input. */
static int is_term(const ig_reader *r, unsigned char c)
{
    return c == '\n' || (c == '\r' && !r->lf_only);
}

/* Check a segment of the record in progress before libcsv sees it. */
static void scan(ig_reader *r, const unsigned char *s, size_t n)
{
    int utf8 = r->encoding == IG_ENCODING_UTF8;

    for (size_t i = 0; i < n; i++) {
        unsigned char b = s[i];

        if (r->rec_blank && !((b == ' ' || b == '\t') && b != r->delim) &&
            !is_eol(b))
            r->rec_blank = 0;
        if (b == '\0')
            note(r, "CSV_NUL", r->nseen + 1,
                 "field %zu: NUL byte at byte offset %lld",
                 r->nseen + 1, r->pos + (long long)i);
        if (utf8 && (b >= 0x80 || r->u8_need > 0))
            utf8_byte(r, b, r->pos + (long long)i);
    }
}

/* ------------------------------------------------------------------ */
/* Feeding libcsv                                                      */
/* ------------------------------------------------------------------ */

static size_t convert(ig_reader *r, const unsigned char *s, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        memcpy(r->conv + o, r->xlat[s[i]], r->xlat_len[s[i]]);
        o += r->xlat_len[s[i]];
    }
    return o;
}

/* Raw index in s of the byte that converted to position conv_pos. */
static size_t raw_index(const ig_reader *r, const unsigned char *s, size_t n,
                        size_t conv_pos)
{
    size_t i = 0, o = 0;

    if (r->encoding == IG_ENCODING_UTF8)
        return conv_pos;
    while (i < n && o + r->xlat_len[s[i]] <= conv_pos)
        o += r->xlat_len[s[i++]];
    return i;
}

/* Keep raw bytes p[0..len) of a held record's line (a line end that
 * ends it left out), converted to UTF-8, up to max_field bytes. */
static void keep_tail(ig_reader *r, const unsigned char *p, size_t len)
{
    if (len > 0 && is_term(r, p[len - 1]))
        len--;
    if (r->encoding != IG_ENCODING_UTF8) {
        len = convert(r, p, len);
        p = r->conv;
    }
    if (len > r->max_field - r->tail_len)
        len = r->max_field - r->tail_len;
    if (r->tail_len + len > r->tail_cap) {
        r->tail_cap = (r->tail_len + len) * 2;
        r->tail = ig_xrealloc(r->tail, r->tail_cap);
    }
    memcpy(r->tail + r->tail_len, p, len);
    r->tail_len += len;
}

/* The held record's line ended: its last field gets the rest of the line
 * as read, so nothing of the line is lost (x"y,z stays x"y,z, and the
 * reject file shows it), and the record is ready. */
static void release_held(ig_reader *r)
{
    size_t n = r->tail_len;
    ig_value last = r->nfields ? r->fields[r->nfields - 1] : IG_VALUE_NULL;
    char *v;

    r->held = 0;
    r->rec_ready = 1;
    if (r->lf_only && n > 0 && r->tail[n - 1] == '\r')
        n--; /* a CRLF line's CR */
    if (last.is_null)
        last = (ig_value){"", 0, 0};
    if (n > r->max_field - last.len) /* a field's bound holds */
        n = r->max_field - last.len;
    if (n == 0)
        return;
    v = ig_arena_alloc(r->arena, last.len + n + 1);
    memcpy(v, last.p, last.len);
    memcpy(v + last.len, r->tail, n);
    v[last.len + n] = '\0';
    if (r->nfields == 0)
        push_field(r, (ig_value){v, n, 0});
    else
        r->fields[r->nfields - 1] = (ig_value){v, last.len + n, 0};
}

/* libcsv refused a quote (CSV_EPARSE) at converted position at: end the
 * record with what it holds, skip the rest of the line for parsing, and
 * hold the record until the line ends to keep that rest in its last
 * field. */
static void stray_quote(ig_reader *r, const unsigned char *s, size_t n,
                        size_t at)
{
    size_t raw = raw_index(r, s, n, at);

    note(r, "CSV_QUOTE", r->nseen + 1,
         "field %zu: misplaced quote near byte offset %lld; the rest of "
         "the line is kept, as read, in that field",
         r->nseen + 1, r->pos + (long long)raw);
    r->rec_blank = 0;
    (void)csv_fini(&r->parser, on_field, on_record, r); /* flush, reset */
    r->rec_ready = 0;
    r->held = 1;
    r->tail_len = 0;
    keep_tail(r, s + raw, n - raw);
    r->skip = 1;
    r->u8_need = 0;
}

/* Keep libcsv's buffer for the current field bounded (see the file
 * comment): the field's value is lost anyway. A quoted field's buffer may
 * end with its closing quote until libcsv sees the next byte, so it is
 * only certainly too long one byte later; on_field checks the exact
 * length of every field it gets. */
static void cap_field(ig_reader *r)
{
    struct csv_parser *p = &r->parser;

    if (p->entry_pos <= r->max_field + (p->quoted ? 1 : 0))
        return;
    note(r, "CSV_FIELD_SIZE", r->nseen + 1,
         "field %zu is longer than %zu bytes (record at byte offset %lld)",
         r->nseen + 1, r->max_field, r->rec_off);
    r->field_cut = 1;
    p->entry_buf[0] = p->entry_buf[p->entry_pos - 1];
    p->entry_pos = 1;
}

static void feed(ig_reader *r, const unsigned char *s, size_t n)
{
    const unsigned char *in = s;
    size_t len = n, used;

    if (r->encoding != IG_ENCODING_UTF8) {
        len = convert(r, s, n);
        in = r->conv;
    }
    /* The realloc function aborts on OOM, so a short count can only be
     * CSV_EPARSE. */
    used = csv_parse(&r->parser, in, len, on_field, on_record, r);
    if (used < len)
        stray_quote(r, s, n, used);
    else
        cap_field(r);
}

/* Length of the segment at s: up to and including the first delimiter,
 * CR or LF, and at most chunk_size bytes (the conversion buffer's size). */
static size_t segment_len(const ig_reader *r, const unsigned char *s,
                          size_t avail)
{
    size_t max = avail < r->chunk_size ? avail : r->chunk_size;

    for (size_t i = 0; i < max; i++)
        if (r->special[s[i]])
            return i + 1;
    return max;
}

/* Process one segment of the current chunk. */
static void step(ig_reader *r)
{
    const unsigned char *s = r->cur + r->cur_pos;
    size_t n = segment_len(r, s, r->cur_len - r->cur_pos);
    unsigned char last = s[n - 1];

    /* A CR not followed by LF ended a line of its own (not in an LF
     * file). */
    if (r->prev_cr && s[0] != '\n') {
        r->line++;
        r->cr_lines++;
    }
    r->prev_cr = 0;
    if (!r->skip) {
        /* In an LF file a CR segment (a CR is one) starts no record: it
         * is the CR of a CRLF blank line, or trimmed from the field. */
        if (!r->in_record && !is_eol(s[0]))
            start_record(r);
        if (r->in_record)
            scan(r, s, n);
        feed(r, s, n);
    } else if (r->held) {
        keep_tail(r, s, n);
    }
    if (!r->decided && is_eol(last) &&
        (r->skip || r->parser.pstate == 0)) /* 0: ROW_NOT_BEGUN */
        decide_line_ends(r, last);
    if (r->skip && is_term(r, last)) {
        r->skip = 0;
        if (r->held)
            release_held(r);
    }
    r->cur_pos += n;
    r->pos += (long long)n;
    if (last == '\n')
        r->line++;
    else if (last == '\r' && !r->lf_only)
        r->prev_cr = 1;
}

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

/* The input's first bytes: a UTF-8 BOM is skipped. A UTF-16 file (a
 * UTF-16 BOM, or NUL bytes between the first ASCII characters), as
 * Excel's "Unicode Text" saves it, a workbook (ZIP) or a gzip file is
 * refused with what to do about it, rather than with a NUL byte in its
 * header. */
static int check_start(ig_reader *r)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    const unsigned char *s = r->cur;
    size_t n = r->cur_len;

    if ((n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) ||
                    (s[0] == 0xFE && s[1] == 0xFF))) ||
        (n >= 4 && ((s[0] && !s[1] && s[2] && !s[3]) ||
                    (!s[0] && s[1] && !s[2] && s[3]))))
        return ig_err_set(&r->ioerr, IG_DATA,
                          "%s: the file is UTF-16, which ingot does not "
                          "read: save it as \"CSV UTF-8\", or convert it "
                          "(iconv -f UTF-16 -t UTF-8)",
                          r->name);
    if (n >= 4 && memcmp(s, "PK\x03\x04", 4) == 0)
        return ig_err_set(&r->ioerr, IG_DATA,
                          "%s: the file is a ZIP archive (an .xlsx or .ods "
                          "workbook?), not CSV: save the sheet as CSV",
                          r->name);
    if (n >= 2 && s[0] == 0x1F && s[1] == 0x8B)
        return ig_err_set(&r->ioerr, IG_DATA,
                          "%s: the file is gzip-compressed: decompress it "
                          "first (zcat FILE | ingot run PIPELINE -)",
                          r->name);
    if (r->encoding == IG_ENCODING_UTF8 && n >= 3 &&
        memcmp(s, bom, 3) == 0) {
        r->cur_pos = 3;
        r->pos = 3;
    }
    return IG_OK;
}

/* Bytes stdio has read from f's descriptor and not yet handed out (what
 * gnulib's freadahead tells), so that a pipe can be read with read(2)
 * after them without losing any. */
static size_t stdio_pending(FILE *f)
{
#ifdef __GLIBC__
    return f->_IO_read_ptr < f->_IO_read_end
               ? (size_t)(f->_IO_read_end - f->_IO_read_ptr)
               : 0;
#else
    (void)f;
    return 0;
#endif
}

/* Whether stdio_pending tells all that f has buffered: glibc, and f not
 * in ungetc's backup area (_IO_IN_BACKUP, 0x100 in libio's flags: the
 * main buffer's bytes are then out of sight). Otherwise a pipe is read
 * through stdio, with no stop while it waits. */
static int stdio_pending_exact(FILE *f)
{
#ifdef __GLIBC__
    return (f->_flags & 0x100) == 0;
#else
    (void)f;
    return 0;
#endif
}

/* r->stop, asked at most every 100 ms: IG_CANCELED in r->ioerr when it
 * says stop. Asked while data keeps coming too, so a pipe that trickles
 * rows in does not hold a stop up. */
static int stop_now(ig_reader *r, int force)
{
    double now;

    if (r->stop == NULL)
        return 0;
    now = ig_clock_s();
    if (!force && now - r->stop_checked < 0.1)
        return 0;
    r->stop_checked = now;
    if (!r->stop(r->stop_ud))
        return 0;
    ig_err_set(&r->ioerr, IG_CANCELED,
               "%s: stopped while waiting for more input", r->name);
    return 1;
}

/* Append buf[0..n) to the spool; a failed write ends it. */
static void spool(ig_reader *r, const void *buf, size_t n)
{
    const char *p = buf;

    while (r->spool_fd >= 0 && n > 0) {
        ssize_t w = write(r->spool_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r->spool_fd = -1;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* A pipe's next bytes into buf (at most cap; at least want of them
 * unless the input ends first): stdio's buffered bytes first, then
 * read(2) as data arrives, polling r->stop while none does. The count,
 * 0 at end of input, or -1 with r->ioerr set (a read error, or
 * IG_CANCELED when stopped). */
static long read_piped(ig_reader *r, unsigned char *buf, size_t cap,
                       size_t want)
{
    int fd = fileno(r->file);
    size_t got = 0;

    if (r->pushback >= 0 && cap > 0) {
        buf[got++] = (unsigned char)r->pushback;
        r->pushback = -1;
    }
    if (got < want && stop_now(r, 0))
        return -1;
    while (got < want) {
        size_t pend = stdio_pending(r->file);
        ssize_t n;

        if (pend > 0) {
            n = (ssize_t)fread(buf + got, 1, pend < cap - got ? pend : cap - got,
                               r->file);
        } else {
            struct pollfd pfd = {fd, POLLIN, 0};
            int ready = poll(&pfd, 1, 100);
            if (ready < 0 && errno != EINTR) {
                ig_err_set(&r->ioerr, IG_IO, "%s: read error: %s", r->name,
                           strerror(errno));
                return -1;
            }
            if (ready <= 0) {
                if (stop_now(r, 1))
                    return -1;
                continue;
            }
            n = read(fd, buf + got, cap - got);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
        }
        if (n < 0) {
            ig_err_set(&r->ioerr, IG_IO, "%s: read error: %s", r->name,
                       strerror(errno));
            return -1;
        }
        if (n == 0)
            break; /* end of input */
        spool(r, buf + got, (size_t)n);
        got += (size_t)n;
    }
    return (long)got;
}

/* The next chunk of a pipe: what has arrived, at least 4 bytes for the
 * first one (the start checks), and a Ctrl-Z at its end dropped only if
 * the input ends there. -1 with r->ioerr set on error or stop. */
static long fill_piped(ig_reader *r)
{
    long n = read_piped(r, r->chunk, r->chunk_size, r->started ? 1 : 4);
    unsigned char next;

    if (n > 0 && r->chunk[n - 1] == DOS_EOF) {
        long more = read_piped(r, &next, 1, 1);
        if (more < 0 && r->ioerr.code == IG_CANCELED && n > 1) {
            /* Stopped while looking past the Ctrl-Z: the bytes before it
             * go on; the Ctrl-Z waits for the next chunk, which stops. */
            ig_err_clear(&r->ioerr);
            r->pushback = DOS_EOF;
            return n - 1;
        }
        if (more < 0)
            return -1;
        if (more == 0)
            n--;
        else
            r->pushback = next;
    }
    return n;
}

/* Get the next chunk, or set eof. IG_IO (sticky, in r->ioerr) on error,
 * IG_CANCELED (sticky) when r->stop ended a wait on a pipe. */
static int fill(ig_reader *r)
{
    size_t n;

    if (r->file == NULL) {
        if (r->started || r->mem_len == 0) {
            r->eof = 1;
            return IG_OK;
        }
        r->cur = r->mem;
        r->cur_len = r->mem_len;
        if (r->mem[r->mem_len - 1] == DOS_EOF)
            r->cur_len--;
    } else if (r->piped) {
        long got = fill_piped(r);
        if (got < 0)
            return r->ioerr.code;
        if (got == 0) {
            r->eof = 1;
            return IG_OK;
        }
        r->cur = r->chunk;
        r->cur_len = (size_t)got;
    } else {
        /* fread() loops until chunk_size bytes or EOF, so the first chunk
         * holds a whole BOM if there is one. */
        n = fread(r->chunk, 1, r->chunk_size, r->file);
        if (n == 0 && ferror(r->file))
            return ig_err_set(&r->ioerr, IG_IO, "%s: read error: %s", r->name,
                              strerror(errno));
        spool(r, r->chunk, n);
        if (n > 0 && r->chunk[n - 1] == DOS_EOF) {
            int c = getc(r->file);
            if (c == EOF)
                n--;
            else
                ungetc(c, r->file);
        }
        if (n == 0) {
            r->eof = 1;
            return IG_OK;
        }
        r->cur = r->chunk;
        r->cur_len = n;
    }
    r->cur_pos = 0;
    if (!r->started) {
        r->started = 1;
        return check_start(r);
    }
    return IG_OK;
}

/* End of input: report what only EOF reveals and flush the last record. */
static void finish(ig_reader *r)
{
    struct csv_parser *p = &r->parser;

    r->finished = 1;
    if (r->skip) {
        if (r->held) /* the input ended on its line */
            release_held(r);
        return;
    }
    if (r->in_record && r->u8_need > 0)
        bad_utf8(r, r->u8_lead_off, r->u8_lead_field);
    r->u8_need = 0;
    csv_set_opts(p, CSV_STRICT | CSV_STRICT_FINI);
    if (csv_fini(p, on_field, on_record, r) != 0) {
        /* A runaway quote usually outgrows max_field_bytes first; the
         * quote is the cause worth naming, and outranks it. */
        note(r, "CSV_QUOTE", r->nseen + 1,
             "field %zu: quoted field not closed before the end of the "
             "input (record at byte offset %lld)",
             r->nseen + 1, r->rec_off);
        r->rec_blank = 0;
        csv_set_opts(p, CSV_STRICT);
        (void)csv_fini(p, on_field, on_record, r); /* flush, reset */
    }
    csv_set_opts(p, CSV_STRICT);
}

/* Run segments through libcsv until a non-blank record is complete or
 * the input is exhausted. Records are built in arena. */
static int pump(ig_reader *r, ig_arena *arena)
{
    int rc = IG_OK;

    r->arena = arena;
    r->rec_ready = 0;
    while (!r->finished) {
        if (r->cur_pos < r->cur_len)
            step(r);
        else if (!r->eof)
            rc = fill(r);
        else
            finish(r);
        if (rc != IG_OK)
            break;
        /* Spaces and tabs only: a blank line, however long (the only
         * problem it can have is that length). */
        if (r->rec_ready && r->rec_blank)
            r->rec_ready = 0;
        if (r->rec_ready)
            break;
    }
    r->arena = NULL;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Construction                                                        */
/* ------------------------------------------------------------------ */

/* Fill xlat with each byte's UTF-8 form. glibc rejects the five bytes
 * windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D); like the
 * WHATWG encoding standard, we map them to the C1 control of the same
 * number rather than refuse the file. */
static int build_xlat(ig_reader *r, ig_err *err)
{
    const char *from =
        r->encoding == IG_ENCODING_LATIN1 ? "ISO-8859-1" : "WINDOWS-1252";
    iconv_t cd = iconv_open("UTF-8", from);

    if (cd == (iconv_t)-1)
        return ig_err_set(err, IG_CONFIG, "%s: cannot convert from %s: %s",
                          r->name, from, strerror(errno));
    for (int b = 0; b < 256; b++) {
        char in = (char)b;
        char *ip = &in, *op = (char *)r->xlat[b];
        size_t il = 1, ol = sizeof(r->xlat[b]);

        (void)iconv(cd, NULL, NULL, NULL, NULL); /* initial state */
        if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1) {
            r->xlat_len[b] = (unsigned char)(sizeof(r->xlat[b]) - ol);
        } else if (b < 0x80) {
            r->xlat[b][0] = (unsigned char)b; /* cannot happen; be safe */
            r->xlat_len[b] = 1;
        } else {
            r->xlat[b][0] = (unsigned char)(0xC0 | (b >> 6));
            r->xlat[b][1] = (unsigned char)(0x80 | (b & 0x3F));
            r->xlat_len[b] = 2;
        }
    }
    iconv_close(cd);
    return IG_OK;
}

static int check_opts(const ig_reader_opts *o, ig_err *err)
{
    unsigned char d = o->delimiter ? (unsigned char)o->delimiter : ',';
    unsigned char q = o->quote ? (unsigned char)o->quote : '"';
    const char *name = o->name ? o->name : "input";

    if (d >= 0x80 || q >= 0x80 || is_eol(d) || is_eol(q) || d == q)
        return ig_err_set(err, IG_CONFIG,
                          "%s: delimiter and quote must be two different "
                          "ASCII characters other than CR and LF",
                          name);
    if (o->buf == NULL && o->buf_len > 0)
        return ig_err_set(err, IG_CONFIG, "%s: buf_len without buf", name);
    if (o->encoding != IG_ENCODING_UTF8 && o->encoding != IG_ENCODING_LATIN1 &&
        o->encoding != IG_ENCODING_WIN1252)
        return ig_err_set(err, IG_CONFIG, "%s: unknown encoding %d", name,
                          (int)o->encoding);
    return IG_OK;
}

static void copy_opts(ig_reader *r, const ig_reader_opts *o)
{
    r->name = ig_xstrdup(o->name ? o->name : "input");
    r->file = o->file;
    r->mem = (const unsigned char *)o->buf;
    r->mem_len = o->file ? 0 : o->buf_len;
    r->delim = o->delimiter ? (unsigned char)o->delimiter : ',';
    r->quote = o->quote ? (unsigned char)o->quote : '"';
    r->encoding = o->encoding;
    r->max_field = o->max_field_bytes ? o->max_field_bytes : DEFAULT_MAX_FIELD;
    r->max_fields = o->max_fields ? o->max_fields : DEFAULT_MAX_FIELDS;
    r->chunk_size = o->chunk_size ? o->chunk_size : DEFAULT_CHUNK;
    if (r->chunk_size < MIN_CHUNK)
        r->chunk_size = MIN_CHUNK;
    r->stop = o->stop;
    r->stop_ud = o->stop_ud;
    r->spool_fd = o->spool ? fileno(o->spool) : -1;
    r->pushback = -1;
    if (r->file != NULL) {
        struct stat st;
        r->piped = fstat(fileno(r->file), &st) == 0 &&
                   (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
                    S_ISCHR(st.st_mode)) &&
                   stdio_pending_exact(r->file);
    }
    r->line = 1;
    r->expected = -1;
    r->special[r->delim] = r->special['\r'] = r->special['\n'] = 1;
}

static int init_parser(ig_reader *r, ig_err *err)
{
    if (csv_init(&r->parser, CSV_STRICT) != 0)
        return ig_err_set(err, IG_INTERNAL, "%s: csv_init failed", r->name);
    r->parser_ok = 1;
    csv_set_delim(&r->parser, r->delim);
    csv_set_quote(&r->parser, r->quote);
    csv_set_space_func(&r->parser, no_space);
    csv_set_realloc_func(&r->parser, ig_xrealloc);
    csv_set_blk_size(&r->parser, CSV_BLOCK);
    return IG_OK;
}

/* Copy of v without surrounding spaces and tabs, in arena. */
static char *trimmed(ig_arena *arena, ig_value v)
{
    size_t n = v.len, i = 0;

    while (n > 0 && (v.p[n - 1] == ' ' || v.p[n - 1] == '\t'))
        n--;
    while (i < n && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    return ig_arena_strndup(arena, v.p + i, n - i);
}

/* Read the first record as the header, into the reader's own arena. */
static int read_header(ig_reader *r, ig_err *err)
{
    int rc;

    r->hdr_arena = ig_arena_new(4096);
    rc = pump(r, r->hdr_arena);
    if (rc != IG_OK)
        return ig_err_set(err, rc, "%s", r->ioerr.msg);
    if (!r->rec_ready)
        return ig_err_set(err, IG_DATA, "%s: empty input: no header row",
                          r->name);
    r->rec_ready = 0;
    if (r->err_code != NULL)
        return ig_err_set(err, IG_DATA, "%s (header row)", r->err_msg);
    r->ncolumns = r->nfields;
    r->columns =
        ig_arena_alloc(r->hdr_arena, r->ncolumns * sizeof(*r->columns));
    for (size_t i = 0; i < r->ncolumns; i++)
        r->columns[i] = trimmed(r->hdr_arena, r->fields[i]);
    r->expected = (long long)r->ncolumns;
    r->fields = NULL;
    return IG_OK;
}

ig_reader *ig_reader_new(const ig_reader_opts *opts, ig_err *err)
{
    ig_reader *r = NULL;
    int rc;

    rc = check_opts(opts, err);
    if (rc != IG_OK)
        return NULL; /* nothing acquired yet */
    r = ig_xcalloc(1, sizeof(*r));
    copy_opts(r, opts);
    if (r->file != NULL)
        r->chunk = ig_xmalloc(r->chunk_size);
    if (r->encoding != IG_ENCODING_UTF8) {
        r->conv = ig_xmalloc(UTF8_MAX * r->chunk_size);
        rc = build_xlat(r, err);
        if (rc != IG_OK)
            goto out;
    }
    rc = init_parser(r, err);
    if (rc != IG_OK)
        goto out;
    if (opts->header)
        rc = read_header(r, err);

out:
    if (rc != IG_OK) {
        ig_reader_free(r);
        r = NULL;
    }
    return r;
}

void ig_reader_free(ig_reader *r)
{
    if (r == NULL)
        return;
    if (r->parser_ok)
        csv_free(&r->parser);
    ig_arena_free(r->hdr_arena);
    free(r->conv);
    free(r->tail);
    free(r->chunk);
    free(r->name);
    free(r);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

size_t ig_reader_ncolumns(const ig_reader *r)
{
    return r->ncolumns;
}

const char *ig_reader_column(const ig_reader *r, size_t i)
{
    return i < r->ncolumns ? r->columns[i] : NULL;
}

long ig_reader_find_column(const ig_reader *r, const char *name)
{
    for (size_t i = 0; i < r->ncolumns; i++)
        if (strcmp(r->columns[i], name) == 0)
            return (long)i;
    return -1;
}

int ig_reader_lf_only(const ig_reader *r)
{
    return r->lf_only;
}

long long ig_reader_width(const ig_reader *r)
{
    return r->expected;
}

long long ig_reader_bytes(const ig_reader *r)
{
    return r->pos;
}

/* Fill rec from the completed record: field count check, numbering and
 * the message copied into the arena. */
static void emit(ig_reader *r, ig_arena *arena, ig_record *rec)
{
    if (r->expected >= 0 && (long long)r->nseen != r->expected)
        note(r, "CSV_RAGGED", 0,
             "%zu field%s, expected %lld (record at byte "
             "offset %lld)",
             r->nseen, r->nseen == 1 ? "" : "s", r->expected, r->rec_off);
    else if (r->expected < 0 && r->err_code == NULL)
        r->expected = (long long)r->nseen; /* no header: first clean row */
    rec->fields = r->fields;
    rec->nfields = r->nfields;
    rec->recno = ++r->recno;
    rec->line = r->rec_line;
    rec->offset = r->rec_off;
    rec->end = r->pos;
    rec->error_code = r->err_code;
    rec->error_field = r->err_code ? r->err_field : 0;
    rec->error = r->err_code ? ig_arena_strdup(arena, r->err_msg) : NULL;
    r->fields = NULL;
}

int ig_reader_next(ig_reader *r, ig_arena *arena, ig_record *rec, int *got,
                   ig_err *err)
{
    int rc;

    *got = 0;
    if (arena == NULL)
        return ig_err_set(err, IG_STATE,
                          "%s: ig_reader_next without an "
                          "arena",
                          r->name);
    if (r->ioerr.code != IG_OK)
        return ig_err_set(err, r->ioerr.code, "%s", r->ioerr.msg);
    rc = pump(r, arena);
    if (rc != IG_OK)
        return ig_err_set(err, rc, "%s", r->ioerr.msg);
    if (!r->rec_ready)
        return IG_OK;
    r->rec_ready = 0;
    emit(r, arena, rec);
    *got = 1;
    return IG_OK;
}
