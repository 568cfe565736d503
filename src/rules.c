/*
 * rules.c - built-in transforms, type checks and validation rules for one
 * column value; see rules.h.
 *
 * Sits between the reader and the hooks: every mapped value of every row
 * passes through ig_rules_value() once. Everything here is a pure function
 * of the read-only column descriptor and the input; new bytes go only into
 * the caller's arena, so any number of workers can run it at once.
 *
 * Two invariants shape the code:
 * - Outputs keep the ig_value promise that non-NULL text is NUL-terminated
 *   (regexec() and strptime() below rely on it). So a value cut only at
 *   its start is returned as a slice of the input, but one cut at its end
 *   is copied.
 * - Canonical text is what PostgreSQL's COPY text format reads back as the
 *   same value, so equal values are equal byte for byte in the batcher's
 *   duplicate-key check, and min/max bounds compare against one spelling.
 */
#define _XOPEN_SOURCE 700 /* strptime() */

#include "rules.h"

#include "jsontext.h"

#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Failures                                                            */

#define QUOTE_MAX 64 /* bytes of a value quoted in a message */

/* Room for '"', QUOTE_MAX bytes (each shown as up to six), "...", '"'
 * and NUL. */
typedef struct qbuf {
    char s[QUOTE_MAX * 6 + 8];
} qbuf;

/* The escape an invisible character at p (n bytes left) is shown as in
 * a message, and its length in *len; NULL for a visible one. A value
 * that differs from an accepted one only by a non-breaking space or a
 * zero-width character must not read the same. */
static const char *invisible(const unsigned char *p, size_t n, size_t *len)
{
    static const struct {
        const char *utf8, *shown;
    } marks[] = {{"\xC2\xA0", "\\u00A0"},     {"\xE2\x80\x87", "\\u2007"},
                 {"\xE2\x80\x8B", "\\u200B"}, {"\xE2\x80\x8C", "\\u200C"},
                 {"\xE2\x80\x8D", "\\u200D"}, {"\xE2\x80\xAF", "\\u202F"},
                 {"\xE2\x81\xA0", "\\u2060"}, {"\xEF\xBB\xBF", "\\uFEFF"}};
    static const char *const c0[] = {
        "\\x00", "\\x01", "\\x02", "\\x03", "\\x04", "\\x05", "\\x06", "\\x07",
        "\\x08", "\\t",   "\\n",   "\\x0B", "\\x0C", "\\r",   "\\x0E", "\\x0F",
        "\\x10", "\\x11", "\\x12", "\\x13", "\\x14", "\\x15", "\\x16", "\\x17",
        "\\x18", "\\x19", "\\x1A", "\\x1B", "\\x1C", "\\x1D", "\\x1E", "\\x1F"};

    if (p[0] < 0x20 || p[0] == 0x7F) {
        *len = 1;
        return p[0] == 0x7F ? "\\x7F" : c0[p[0]];
    }
    for (size_t i = 0; p[0] >= 0xC2 && i < sizeof(marks) / sizeof(marks[0]);
         i++) {
        size_t k = strlen(marks[i].utf8);
        if (k <= n && memcmp(p, marks[i].utf8, k) == 0) {
            *len = k;
            return marks[i].shown;
        }
    }
    return NULL;
}

/* v in double quotes for a message, cut to QUOTE_MAX bytes at a UTF-8
 * boundary (never in the middle of a character) and marked "..." when
 * cut; control characters and invisible spaces are shown as escapes
 * (\t, \x01, \u00A0). Returns q->s. */
static const char *quoted(ig_value v, qbuf *q)
{
    const unsigned char *p = (const unsigned char *)v.p;
    size_t n = v.len < QUOTE_MAX ? v.len : QUOTE_MAX, o = 0;
    int cut = n < v.len;

    if (v.is_null)
        return "NULL";
    /* v.p[n] is the first byte left out: if it continues a character,
     * that character's lead byte must go too. */
    while (cut && n > 0 && (p[n] & 0xC0) == 0x80)
        n--;
    q->s[o++] = '"';
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        const char *e = invisible(p + i, n - i, &len);

        if (e != NULL) {
            memcpy(q->s + o, e, strlen(e));
            o += strlen(e);
        } else {
            q->s[o++] = (char)p[i];
        }
        i += len;
    }
    snprintf(q->s + o, sizeof(q->s) - o, "%s\"", cut ? "..." : "");
    return q->s;
}

/* Fill *f (NULL allowed, for callers that only want the verdict) and
 * return IG_DATA, so checks can end with `return fail_set(...)`. */
static int fail_set(ig_rule_fail *f, const char *code, const char *fmt, ...)
    IG_PRINTF(3, 4);

static int fail_set(ig_rule_fail *f, const char *code, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (f == NULL)
        return IG_DATA;
    f->code = code;
    va_start(ap, fmt);
    n = vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    /* Cut short, the message may end inside a character (a quoted value
     * with escapes, then an enum list): drop that partial character, so
     * the message stays UTF-8 for the text columns it is stored in. */
    if (n >= (int)sizeof(f->msg)) {
        size_t len = strlen(f->msg), k = len;

        while (k > 0 && ((unsigned char)f->msg[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)f->msg[k - 1] >= 0xC0 &&
            ig_utf8_len(f->msg + k - 1, len - k + 1) < 0)
            f->msg[k - 1] = '\0';
    }
    return IG_DATA;
}

/* Our own copy of the type names: messages must not depend on the
 * pipeline loader being linked in. */
static const char *type_name(ig_type t)
{
    switch (t) {
    case IG_TYPE_TEXT:
        return "text";
    case IG_TYPE_INT:
        return "int";
    case IG_TYPE_BIGINT:
        return "bigint";
    case IG_TYPE_NUMERIC:
        return "numeric";
    case IG_TYPE_BOOL:
        return "bool";
    case IG_TYPE_DATE:
        return "date";
    case IG_TYPE_TIMESTAMP:
        return "timestamp";
    case IG_TYPE_UUID:
        return "uuid";
    case IG_TYPE_JSON:
        return "json";
    }
    return "?";
}

/* ------------------------------------------------------------------ */
/* Byte and UTF-8 helpers                                              */

/* Decode the code point starting at s[*i] (s has n bytes) and advance *i
 * past it. Returns the code point, or -1 (and *i unchanged) for a byte
 * that does not start a well-formed, shortest-form scalar value. */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    size_t need, k;
    unsigned long cp, min;

    if (c < 0x80) {
        (*i)++;
        return (long)c;
    }
    if (c >= 0xC2 && c <= 0xDF) { /* C0/C1 would be overlong */
        need = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        need = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) { /* F5.. start > U+10FFFF */
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n - *i <= need) /* truncated sequence */
        return -1;
    for (k = 1; k <= need; k++) {
        unsigned b = s[*i + k];
        if ((b & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += need + 1;
    return (long)cp;
}

long ig_utf8_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    long count = 0;

    while (i < n) {
        if (utf8_next(u, n, &i) < 0)
            return -1;
        count++;
    }
    return count;
}

char *ig_utf8_scrub(const char *s, size_t n, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    char *out;

    if (ig_utf8_len(s, n) >= 0 && memchr(s, '\0', n) == NULL)
        return NULL;
    out = ig_xmalloc(3 * n + 1); /* every byte may become 3 */
    while (i < n) {
        size_t from = i;
        if (u[i] != 0 && utf8_next(u, n, &i) >= 0) {
            memcpy(out + o, s + from, i - from);
            o += i - from;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Write cp (< U+0800, as produced by case_map) at d; returns bytes. */
static size_t utf8_put2(char *d, unsigned long cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    d[0] = (char)(0xC0 | (cp >> 6));
    d[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static int is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/* Whether u[0..3) is one of the three-byte Unicode spaces spreadsheet
 * exports carry: U+1680, U+2000..U+200A (en quad .. hair space), U+2028
 * and U+2029 (line and paragraph separators), U+202F (the narrow
 * no-break space of French number formats), U+205F and U+3000
 * (ideographic space). */
static int wide_space(const unsigned char *u)
{
    if (u[0] == 0xE2 && u[1] == 0x80)
        return (u[2] >= 0x80 && u[2] <= 0x8A) || u[2] == 0xA8 ||
               u[2] == 0xA9 || u[2] == 0xAF;
    return (u[0] == 0xE1 && u[1] == 0x9A && u[2] == 0x80) ||
           (u[0] == 0xE2 && u[1] == 0x81 && u[2] == 0x9F) ||
           (u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x80);
}

/* Length of the whitespace character at p[i] (p has n bytes): 1 for ASCII
 * whitespace, 2 for U+00A0 NO-BREAK SPACE (spreadsheets love it), 3 for a
 * wide_space, else 0. */
static size_t space_at(const char *p, size_t n, size_t i)
{
    const unsigned char *u = (const unsigned char *)p;

    if (is_ascii_space(u[i]))
        return 1;
    if (u[i] == 0xC2 && i + 1 < n && u[i + 1] == 0xA0)
        return 2;
    if (u[i] >= 0xE1 && i + 2 < n && wide_space(u + i))
        return 3;
    return 0;
}

/* Length of the whitespace character ending just before p[e], looking no
 * further back than p[lo]; 0 when there is none. */
static size_t space_before(const char *p, size_t lo, size_t e)
{
    const unsigned char *u = (const unsigned char *)p;

    if (is_ascii_space(u[e - 1]))
        return 1;
    if (e - lo >= 2 && u[e - 2] == 0xC2 && u[e - 1] == 0xA0)
        return 2;
    if (e - lo >= 3 && wide_space(u + e - 3))
        return 3;
    return 0;
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Equal bytes, or equal ignoring ASCII case when ci. */
static int same_text(const char *a, size_t an, const char *b, size_t bn, int ci)
{
    size_t i;

    if (an != bn)
        return 0;
    if (!ci)
        return memcmp(a, b, an) == 0;
    for (i = 0; i < an; i++)
        if (ascii_lower((unsigned char)a[i]) !=
            ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Text value borrowing a NUL-terminated constant (pipeline or static). */
static ig_value const_value(const char *s)
{
    ig_value v = {s, strlen(s), 0};
    return v;
}

/* v[b..e) as a value: a slice when it still ends at v's NUL, else a copy
 * in the arena (see the NUL invariant at the top). */
static ig_value sub_value(ig_value v, size_t b, size_t e, ig_arena *a)
{
    ig_value r = {v.p + b, e - b, 0};

    if (b == 0 && e == v.len)
        return v;
    if (e != v.len)
        r.p = ig_arena_strndup(a, v.p + b, e - b);
    return r;
}

/* Make *out the text buf[0..n) (scratch, e.g. on the stack): in itself
 * when the bytes are the same, a slice of in when they are its tail (as
 * "+7" -> "7"), else a copy in the arena. Canonical forms usually equal
 * their input, so this keeps the common path free of allocation. */
static void emit(ig_value in, const char *buf, size_t n, ig_arena *a,
                 ig_value *out)
{
    if (n <= in.len && memcmp(in.p + in.len - n, buf, n) == 0) {
        *out = sub_value(in, in.len - n, in.len, a);
        return;
    }
    out->p = ig_arena_strndup(a, buf, n);
    out->len = n;
    out->is_null = 0;
}

/* The ASCII-blank-trimmed bounds of v, for type parsers (PostgreSQL's
 * input functions skip isspace() around numbers and booleans too). */
static void blank_bounds(ig_value v, size_t *b, size_t *e)
{
    *b = 0;
    *e = v.len;
    while (*b < *e && is_ascii_space((unsigned char)v.p[*b]))
        (*b)++;
    while (*e > *b && is_ascii_space((unsigned char)v.p[*e - 1]))
        (*e)--;
}

/* ------------------------------------------------------------------ */
/* Case mapping                                                        */

/* Simple case mapping for the scripts most master data is written in:
 * ASCII, Latin-1 Supplement, Latin Extended-A, basic Greek and Cyrillic.
 * Every pair has the same UTF-8 length (all below U+0800), so mapping
 * never changes a value's byte length. Code points without a one-to-one
 * mapping (ß, µ, dotted/dotless i, final-sigma lowering) are left alone. */
static unsigned long lower_cp(unsigned long c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7))
        return c + 32;
    if (c == 0x178) /* Ÿ -> ÿ */
        return 0xFF;
    if (c >= 0x100 && c <= 0x17E && c != 0x130 && c != 0x138 && c != 0x149) {
        int upper_even = c <= 0x137 || (c >= 0x14A && c <= 0x177);
        if ((c % 2 == 0) == upper_even)
            return c + 1;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

static unsigned long upper_cp(unsigned long c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7))
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if (c >= 0x101 && c <= 0x17E && c != 0x131 && c != 0x138 && c != 0x149 &&
        c != 0x178) {
        int upper_even = c <= 0x137 || (c >= 0x14A && c <= 0x177);
        if ((c % 2 == 0) != upper_even)
            return c - 1;
        return c;
    }
    if (c == 0x3C2) /* final sigma */
        return 0x3A3;
    if (c >= 0x3B1 && c <= 0x3C9)
        return c - 32;
    if (c >= 0x430 && c <= 0x44F)
        return c - 32;
    if (c >= 0x450 && c <= 0x45F)
        return c - 80;
    return c;
}

static unsigned long case_map(unsigned long c, int upper)
{
    return upper ? upper_cp(c) : lower_cp(c);
}

/* Offset of the first character that case mapping changes, or len. Bytes
 * that are not valid UTF-8 are stepped over one by one and kept as they
 * are, so mapping cannot make a valid value invalid. */
static size_t first_case_change(ig_value v, int upper)
{
    const unsigned char *u = (const unsigned char *)v.p;
    size_t i = 0, at;
    long cp;

    while (i < v.len) {
        at = i;
        cp = utf8_next(u, v.len, &i);
        if (cp < 0)
            i++;
        else if (case_map((unsigned long)cp, upper) != (unsigned long)cp)
            return at;
    }
    return v.len;
}

static ig_value xf_case(ig_value v, int upper, ig_arena *a)
{
    size_t i = first_case_change(v, upper), at;
    char *d;
    long cp;
    unsigned long m;

    if (i == v.len)
        return v;
    d = ig_arena_strndup(a, v.p, v.len);
    while (i < v.len) {
        at = i;
        cp = utf8_next((const unsigned char *)d, v.len, &i);
        if (cp < 0) {
            i++;
            continue;
        }
        m = case_map((unsigned long)cp, upper);
        if (m != (unsigned long)cp) /* same length: see lower_cp */
            utf8_put2(d + at, m);
    }
    return (ig_value){d, v.len, 0};
}

/* Equal after lowering both sides with lower_cp (enum matching). */
static int same_folded(const char *a, size_t an, const char *b, size_t bn)
{
    const unsigned char *ua = (const unsigned char *)a;
    const unsigned char *ub = (const unsigned char *)b;
    size_t i = 0, j = 0;
    long ca, cb;

    size_t i0, j0;

    while (i < an && j < bn) {
        i0 = i;
        j0 = j;
        ca = utf8_next(ua, an, &i);
        cb = utf8_next(ub, bn, &j);
        /* An invalid byte only equals the same invalid byte: give it a
         * value past Unicode, which lower_cp leaves alone. */
        if (ca < 0)
            ca = 0x110000L + ua[i0], i = i0 + 1;
        if (cb < 0)
            cb = 0x110000L + ub[j0], j = j0 + 1;
        if (lower_cp((unsigned long)ca) != lower_cp((unsigned long)cb))
            return 0;
    }
    return i == an && j == bn;
}

/* ------------------------------------------------------------------ */
/* Transforms                                                          */

static ig_value xf_trim(ig_value v, ig_arena *a)
{
    size_t b = 0, e = v.len, w;

    while (b < e && (w = space_at(v.p, e, b)) > 0)
        b += w;
    while (e > b && (w = space_before(v.p, b, e)) > 0)
        e -= w;
    return sub_value(v, b, e, a);
}

/* Does v hold whitespace other than lone ' ' characters? */
static int collapse_needed(ig_value v)
{
    size_t i = 0, w;

    while (i < v.len) {
        w = space_at(v.p, v.len, i);
        if (w == 0) {
            i++;
            continue;
        }
        if (v.p[i] != ' ' || (i + 1 < v.len && space_at(v.p, v.len, i + 1)))
            return 1;
        i++;
    }
    return 0;
}

static ig_value xf_collapse(ig_value v, ig_arena *a)
{
    size_t i = 0, o = 0, w;
    char *d;

    if (!collapse_needed(v))
        return v;
    d = ig_arena_alloc(a, v.len + 1);
    while (i < v.len) {
        if (space_at(v.p, v.len, i) == 0) {
            d[o++] = v.p[i++];
            continue;
        }
        d[o++] = ' ';
        while (i < v.len && (w = space_at(v.p, v.len, i)) > 0)
            i += w;
    }
    d[o] = '\0';
    return (ig_value){d, o, 0};
}

/* Bytes of the control character at p[i]: C0 and DEL are one byte, C1
 * (U+0080..U+009F) is 0xC2 followed by 0x80..0x9F. 0 when not a control. */
static size_t control_at(const char *p, size_t n, size_t i)
{
    const unsigned char *u = (const unsigned char *)p;

    if (u[i] < 0x20 || u[i] == 0x7F)
        return 1;
    if (u[i] == 0xC2 && i + 1 < n && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F)
        return 2;
    return 0;
}

static ig_value xf_strip_control(ig_value v, ig_arena *a)
{
    size_t i = 0, o = 0, w;
    char *d;

    while (i < v.len && control_at(v.p, v.len, i) == 0)
        i++;
    if (i == v.len)
        return v;
    d = ig_arena_alloc(a, v.len + 1);
    memcpy(d, v.p, i);
    o = i;
    while (i < v.len) {
        w = control_at(v.p, v.len, i);
        if (w > 0)
            i += w;
        else
            d[o++] = v.p[i++];
    }
    d[o] = '\0';
    return (ig_value){d, o, 0};
}

/* Index in xf->from of the entry equal to v, or xf->n. */
static size_t xf_find(const ig_xform *xf, ig_value v)
{
    size_t i;

    for (i = 0; i < xf->n; i++)
        if (same_text(v.p, v.len, xf->from[i], strlen(xf->from[i]),
                      xf->case_insensitive))
            return i;
    return xf->n;
}

static ig_value xf_replace(const ig_xform *xf, ig_value v)
{
    size_t i = xf_find(xf, v);

    if (i == xf->n)
        return v;
    /* A NULL replacement means SQL NULL ("N/A" -> NULL). */
    return xf->to[i] ? const_value(xf->to[i]) : IG_VALUE_NULL;
}

static ig_value xf_apply(const ig_xform *xf, ig_value v, ig_arena *a)
{
    switch (xf->kind) {
    case IG_XFORM_TRIM:
        return xf_trim(v, a);
    case IG_XFORM_COLLAPSE_SPACES:
        return xf_collapse(v, a);
    case IG_XFORM_LOWER:
        return xf_case(v, 0, a);
    case IG_XFORM_UPPER:
        return xf_case(v, 1, a);
    case IG_XFORM_STRIP_CONTROL:
        return xf_strip_control(v, a);
    case IG_XFORM_REPLACE:
        return xf_replace(xf, v);
    case IG_XFORM_NULL_IF:
        return xf_find(xf, v) < xf->n ? IG_VALUE_NULL : v;
    case IG_XFORM_DEFAULT:
        if ((v.is_null || v.len == 0) && xf->value)
            return const_value(xf->value);
        return v;
    }
    return v; /* unknown kinds are refused by the loader */
}

void ig_rules_xforms(const ig_xform *xf, size_t n, ig_value in, ig_arena *arena,
                     ig_value *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        /* NULL has no text to transform; only default gives it one. */
        if (in.is_null && xf[i].kind != IG_XFORM_DEFAULT)
            continue;
        in = xf_apply(&xf[i], in, arena);
    }
    *out = in;
}

/* ------------------------------------------------------------------ */
/* Types: text, integers, bool, uuid, json                             */

static int type_text(ig_value v, ig_value *out, ig_rule_fail *f)
{
    qbuf q;
    size_t i = 0, at;

    /* Stop at the first invalid byte or NUL (U+0000 is valid UTF-8, but
     * PostgreSQL text cannot store it). */
    while (i < v.len) {
        at = i;
        if (utf8_next((const unsigned char *)v.p, v.len, &i) <= 0) {
            i = at;
            break;
        }
    }
    if (i < v.len && v.p[i] == '\0')
        return fail_set(f, "utf8",
                        "%s contains a NUL byte, which PostgreSQL text "
                        "cannot hold",
                        quoted((ig_value){v.p, i, 0}, &q));
    if (i < v.len)
        return fail_set(
            f, "utf8", "invalid UTF-8 at byte %zu (0x%02X) after %s", i + 1,
            (unsigned)(unsigned char)v.p[i], quoted((ig_value){v.p, i, 0}, &q));
    *out = v;
    return IG_OK;
}

enum { NUM_OK = 0, NUM_SYNTAX = -1, NUM_RANGE = -2 };

/* Parse [blanks][+-]digits[blanks] within [lo, hi]. NUM_SYNTAX or
 * NUM_RANGE on failure (syntax wins: "99999999999x" is not a number). */
static int parse_int(ig_value v, int64_t lo, int64_t hi, int64_t *res)
{
    size_t b, e;
    uint64_t mag = 0, limit;
    int neg = 0, over = 0;

    blank_bounds(v, &b, &e);
    if (b < e && (v.p[b] == '+' || v.p[b] == '-'))
        neg = v.p[b++] == '-';
    if (b == e)
        return NUM_SYNTAX;
    for (; b < e; b++) {
        unsigned d = (unsigned)(unsigned char)v.p[b] - '0';
        if (d > 9)
            return NUM_SYNTAX;
        if (mag > (UINT64_MAX - d) / 10)
            over = 1;
        else
            mag = mag * 10 + d;
    }
    limit = neg ? (uint64_t)(-(lo + 1)) + 1 : (uint64_t)hi;
    if (over || mag > limit)
        return NUM_RANGE;
    /* -(mag - 1) - 1 reaches INT64_MIN without overflowing. */
    *res = neg && mag > 0 ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
    return NUM_OK;
}

static int type_int(ig_value v, ig_type t, ig_arena *a, ig_value *out,
                    ig_rule_fail *f)
{
    int64_t lo = t == IG_TYPE_INT ? INT32_MIN : INT64_MIN;
    int64_t hi = t == IG_TYPE_INT ? INT32_MAX : INT64_MAX;
    int64_t x = 0;
    char buf[32];
    qbuf q;
    int rc = parse_int(v, lo, hi, &x);

    if (rc == NUM_SYNTAX)
        return fail_set(f, "type", "%s is not a whole number", quoted(v, &q));
    if (rc == NUM_RANGE)
        return fail_set(f, "type", "%s is out of range for %s (%lld to %lld)",
                        quoted(v, &q), type_name(t), (long long)lo,
                        (long long)hi);
    emit(v, buf, (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)x), a,
         out);
    return IG_OK;
}

static int type_bool(ig_value v, ig_value *out, ig_rule_fail *f)
{
    static const char *const yes[] = {"true", "t", "yes", "y", "1", "on"};
    static const char *const no[] = {"false", "f", "no", "n", "0", "off"};
    size_t b, e, i;
    qbuf q;

    blank_bounds(v, &b, &e);
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (same_text(v.p + b, e - b, yes[i], strlen(yes[i]), 1)) {
            *out = const_value("t");
            return IG_OK;
        }
        if (same_text(v.p + b, e - b, no[i], strlen(no[i]), 1)) {
            *out = const_value("f");
            return IG_OK;
        }
    }
    return fail_set(f, "type",
                    "%s is not a boolean (expected true/false, yes/no, "
                    "y/n, t/f, on/off or 1/0)",
                    quoted(v, &q));
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)ascii_lower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Collect the 32 hex digits of a UUID written bare, hyphenated 8-4-4-4-12
 * and/or in braces into hex[] (lowercase). 0 or -1. */
static int uuid_digits(const char *p, size_t n, char hex[32])
{
    size_t i, k = 0;
    int hyphens = n == 36;

    if (n != 32 && n != 36)
        return -1;
    for (i = 0; i < n; i++) {
        if (hyphens && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (p[i] != '-')
                return -1;
            continue;
        }
        if (hex_value(p[i]) < 0)
            return -1;
        hex[k++] = (char)ascii_lower((unsigned char)p[i]);
    }
    return 0;
}

static int type_uuid(ig_value v, ig_arena *a, ig_value *out, ig_rule_fail *f)
{
    size_t b, e;
    char hex[32], buf[37];
    qbuf q;

    blank_bounds(v, &b, &e);
    if (e - b >= 2 && v.p[b] == '{' && v.p[e - 1] == '}')
        b++, e--;
    if (uuid_digits(v.p + b, e - b, hex) < 0)
        return fail_set(f, "type",
                        "%s is not a UUID (expected 32 hex digits, "
                        "optionally as 8-4-4-4-12)",
                        quoted(v, &q));
    snprintf(buf, sizeof(buf), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
             hex + 12, hex + 16, hex + 20);
    emit(v, buf, 36, a, out);
    return IG_OK;
}

static int type_json(ig_value v, ig_value *out, ig_rule_fail *f)
{
    json_error_t jerr;
    json_t *j;
    qbuf q;

    /* INT_AS_REAL: jsonb takes integers of any size, jansson's json_int_t
     * does not. Duplicate keys are allowed, as jsonb allows them. */
    j = json_loadb(v.p, v.len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL,
                   &jerr);
    if (j == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        /* A number beyond a double (1e400): jsonb takes it. Check the
         * rest with every number written as 0. */
        size_t *spans, nspans;
        ig_jsontext_numbers(v.p, v.len, 0, &spans, &nspans);
        if (nspans > 0) {
            size_t zlen;
            char *z = ig_jsontext_rewrite(v.p, v.len, spans, nspans,
                                          IG_JSONTEXT_ZERO, &zlen);
            j = json_loadb(z, zlen, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL,
                           &jerr);
            free(z);
        }
        free(spans);
    }
    if (j == NULL)
        return fail_set(f, "type", "%s is not valid JSON: %s", quoted(v, &q),
                        jerr.text);
    json_decref(j);
    *out = v; /* jsonb reads the original text; no need to re-serialise */
    return IG_OK;
}

/* ------------------------------------------------------------------ */
/* Types: numeric                                                      */

/* A decimal as written: sign, integer digits, fraction digits, exponent.
 * The digit pointers borrow the input. */
typedef struct numtext {
    int neg;
    const char *ip, *fp;
    size_t ni, nf;
    long exp;
} numtext;

/* PostgreSQL's own exponent limit (NUMERIC_MAX_PRECISION), which also
 * bounds the scratch memory an expanded value needs. */
#define NUM_MAX_EXP 1000

static size_t scan_digits(const char *p, size_t i, size_t e)
{
    while (i < e && p[i] >= '0' && p[i] <= '9')
        i++;
    return i;
}

/* [+-]digits after 'e' in p[i..e) into *exp. NUM_RANGE beyond
 * NUM_MAX_EXP. */
static int scan_exponent(const char *p, size_t i, size_t e, long *exp)
{
    int neg = 0;
    long x = 0;

    if (i < e && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    if (i == e)
        return NUM_SYNTAX;
    for (; i < e; i++) {
        if (p[i] < '0' || p[i] > '9')
            return NUM_SYNTAX;
        if (x <= NUM_MAX_EXP)
            x = x * 10 + (p[i] - '0');
    }
    if (x > NUM_MAX_EXP)
        return NUM_RANGE;
    *exp = neg ? -x : x;
    return NUM_OK;
}

/* Parse [blanks][+-]digits[.digits][e[+-]digits][blanks], with at least
 * one mantissa digit. No NaN, Infinity, separators or hex. */
static int num_scan(ig_value v, numtext *nt)
{
    size_t b, e, i;

    memset(nt, 0, sizeof(*nt));
    blank_bounds(v, &b, &e);
    if (b < e && (v.p[b] == '+' || v.p[b] == '-'))
        nt->neg = v.p[b++] == '-';
    i = scan_digits(v.p, b, e);
    nt->ip = v.p + b;
    nt->ni = i - b;
    nt->fp = v.p + i;
    if (i < e && v.p[i] == '.') {
        b = ++i;
        i = scan_digits(v.p, b, e);
        nt->fp = v.p + b;
        nt->nf = i - b;
    }
    if (nt->ni + nt->nf == 0)
        return NUM_SYNTAX;
    if (i < e && (v.p[i] == 'e' || v.p[i] == 'E'))
        return scan_exponent(v.p, i + 1, e, &nt->exp);
    return i == e ? NUM_OK : NUM_SYNTAX;
}

/* Mantissa digit k of the integer digits followed by the fraction digits;
 * '0' outside them (leading and trailing zeros are implied). */
static char num_digit(const numtext *nt, long k)
{
    if (k < 0 || (size_t)k >= nt->ni + nt->nf)
        return '0';
    if ((size_t)k < nt->ni)
        return nt->ip[k];
    return nt->fp[(size_t)k - nt->ni];
}

/* Add one unit in the last place of d[0..n) (ASCII digits, '.' skipped).
 * d[0] is a spare '0' that takes the final carry. */
static void num_increment(char *d, size_t n)
{
    while (n-- > 0) {
        if (d[n] == '.')
            continue;
        if (d[n] != '9') {
            d[n]++;
            return;
        }
        d[n] = '0';
    }
}

/* Write the canonical text of nt with `scale` fraction digits (rounded
 * half away from zero, or zero-padded) into d, which has room for
 * num_room() bytes. Returns the start of the text in d; *nint gets the
 * count of significant integer digits, for the precision check. */
static char *num_format(const numtext *nt, long scale, char *d, size_t *nint)
{
    long pos = (long)nt->ni + nt->exp; /* digits before the point */
    long ni = pos > 0 ? pos : 0, k;
    char *s = d + 1, *w; /* d[0] for '-', d[1] for a carry digit */
    int zero = 1;

    w = s;
    *w++ = '0';
    for (k = 0; k < ni; k++)
        *w++ = num_digit(nt, k);
    if (scale > 0)
        *w++ = '.';
    for (k = 0; k < scale; k++)
        *w++ = num_digit(nt, pos + k);
    *w = '\0';
    if (num_digit(nt, pos + scale) >= '5')
        num_increment(s, (size_t)(w - s));
    /* Keep one integer digit; drop the others' leading zeros. */
    while (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        s++;
    for (w = s; *w; w++)
        if (*w >= '1' && *w <= '9')
            zero = 0;
    *nint = (size_t)(strcspn(s, ".") - (s[0] == '0'));
    if (nt->neg && !zero) /* PostgreSQL has no negative zero */
        *--s = '-';
    return s;
}

static size_t num_room(const numtext *nt, long scale)
{
    long pos = (long)nt->ni + nt->exp;

    return (size_t)(pos > 0 ? pos : 0) + (size_t)scale + 8;
}

static int type_numeric(ig_value v, int precision, int scale, ig_arena *a,
                        ig_value *out, ig_rule_fail *f)
{
    numtext nt;
    long dscale;
    size_t room, nint;
    char small[128], *d, *s;
    qbuf q;
    int rc = num_scan(v, &nt);

    if (rc == NUM_SYNTAX)
        return fail_set(f, "type", "%s is not a number", quoted(v, &q));
    if (rc == NUM_RANGE)
        return fail_set(f, "type", "%s has an exponent beyond +/-%d",
                        quoted(v, &q), NUM_MAX_EXP);
    /* Unconstrained numeric keeps the scale as written, as PostgreSQL's
     * display scale does ("1.50" stays "1.50", "1.5e3" is "1500"). */
    dscale = (long)nt.nf - nt.exp;
    if (dscale < 0)
        dscale = 0;
    if (precision > 0 || scale > 0)
        dscale = scale > 0 ? scale : 0;
    room = num_room(&nt, dscale);
    d = room <= sizeof(small) ? small : ig_arena_alloc(a, room);
    s = num_format(&nt, dscale, d, &nint);
    if (precision > 0 && (long)nint > (long)precision - dscale)
        return fail_set(f, "type",
                        "%s exceeds numeric(%d,%d): at most %ld digits "
                        "before the decimal point",
                        quoted(v, &q), precision, scale,
                        (long)precision - dscale);
    emit(v, s, strlen(s), a, out);
    return IG_OK;
}

/* ------------------------------------------------------------------ */
/* Types: date and timestamp                                           */

/* A broken-down date and time as parsed; off is minutes east of UTC. */
typedef struct civil {
    int y, mo, d, h, mi, s;
    long us;
    int has_off, off;
} civil;

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int mo)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return mo == 2 && is_leap(y) ? 29 : dim[mo - 1];
}

static int date_valid(const civil *c)
{
    return c->y >= 1 && c->y <= 9999 && c->mo >= 1 && c->mo <= 12 &&
           c->d >= 1 && c->d <= days_in_month(c->y, c->mo);
}

/* Ranges as PostgreSQL accepts them: second 60 and 24:00:00 exactly roll
 * over (see civil_carry); offsets up to 15:59 either way. */
static int time_valid(const civil *c)
{
    if (c->h == 24 && (c->mi || c->s || c->us))
        return 0;
    return c->h >= 0 && c->h <= 24 && c->mi >= 0 && c->mi <= 59 && c->s >= 0 &&
           c->s <= 60 && c->off > -16 * 60 && c->off < 16 * 60;
}

/* Propagate overflow from microseconds up to the year (a rounded
 * fraction, a leap second, 24:00). 0, or -1 past 9999-12-31. */
static int civil_carry(civil *c)
{
    if (c->us >= 1000000)
        c->us -= 1000000, c->s++;
    if (c->s >= 60)
        c->s -= 60, c->mi++;
    if (c->mi >= 60)
        c->mi -= 60, c->h++;
    if (c->h >= 24)
        c->h -= 24, c->d++;
    if (c->d > days_in_month(c->y, c->mo))
        c->d = 1, c->mo++;
    if (c->mo > 12)
        c->mo = 1, c->y++;
    return c->y <= 9999 ? 0 : -1;
}

/* A cursor over the trimmed value for the hand-written ISO parser. */
typedef struct cur {
    const char *p;
    size_t i, e;
} cur;

/* Exactly k digits into *out. */
static int cur_num(cur *c, int k, int *out)
{
    int x = 0;

    if (c->e - c->i < (size_t)k)
        return -1;
    for (; k > 0; k--, c->i++) {
        if (c->p[c->i] < '0' || c->p[c->i] > '9')
            return -1;
        x = x * 10 + (c->p[c->i] - '0');
    }
    *out = x;
    return 0;
}

/* Consume ch if it is next. */
static int cur_eat(cur *c, char ch)
{
    if (c->i < c->e && c->p[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

static int iso_date(cur *c, civil *t)
{
    if (cur_num(c, 4, &t->y) || !cur_eat(c, '-') || cur_num(c, 2, &t->mo) ||
        !cur_eat(c, '-') || cur_num(c, 2, &t->d))
        return -1;
    return date_valid(t) ? 0 : -1;
}

static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;
static locale_t c_numeric; /* NULL if newlocale failed: then strtod */

static void make_c_numeric(void)
{
    c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* .digits in microseconds, rounded as PostgreSQL rounds them (datetime.c,
 * ParseFractionalSecond: rint(strtod(".digits") * 1e6), so an exact tie
 * such as .0000005 goes to even, through the double), whatever locale an
 * embedding program set. */
static int iso_fraction(cur *c, civil *t)
{
    char small[64], *buf = small;
    size_t from, n;
    double frac;

    if (!cur_eat(c, '.'))
        return 0;
    from = c->i;
    while (c->i < c->e && c->p[c->i] >= '0' && c->p[c->i] <= '9')
        c->i++;
    n = c->i - from;
    if (n == 0)
        return -1; /* "12:00:00." is not a time */
    if (n <= 6) {
        /* Up to microseconds, PostgreSQL's rint(strtod(".digits") * 1e6)
         * is the digits themselves: the double is within 1e-9 of them
         * (test_rules checks every 1-6 digit fraction), so no strtod. */
        int us = 0;
        for (size_t k = 0; k < 6; k++)
            us = us * 10 + (k < n ? c->p[from + k] - '0' : 0);
        t->us = us;
        return 0;
    }
    if (n + 2 > sizeof(small)) /* every digit counts for strtod */
        buf = ig_xmalloc(n + 2);
    buf[0] = '.';
    memcpy(buf + 1, c->p + from, n);
    buf[n + 1] = '\0';
    pthread_once(&c_numeric_once, make_c_numeric);
    if (c_numeric) { /* this thread only, for this call */
        locale_t old = uselocale(c_numeric);
        frac = strtod(buf, NULL);
        uselocale(old);
    } else {
        frac = strtod(buf, NULL);
    }
    if (buf != small)
        free(buf);
    t->us = (int)rint(frac * 1e6); /* 1000000: civil_carry handles it */
    return 0;
}

/* [ ](Z | +-HH[[:]MM]) */
static int iso_offset(cur *c, civil *t)
{
    int hh = 0, mm = 0, neg;

    if (c->i < c->e && c->p[c->i] == ' ')
        c->i++;
    if (cur_eat(c, 'Z') || cur_eat(c, 'z')) {
        t->has_off = 1;
        return 0;
    }
    if (c->i == c->e || (c->p[c->i] != '+' && c->p[c->i] != '-'))
        return -1;
    neg = c->p[c->i++] == '-';
    if (cur_num(c, 2, &hh))
        return -1;
    if (c->i < c->e) { /* minutes, with or without a colon */
        cur_eat(c, ':');
        if (cur_num(c, 2, &mm) || mm >= 60) /* PostgreSQL refuses +05:75 */
            return -1;
    }
    t->has_off = 1;
    t->off = (neg ? -1 : 1) * (hh * 60 + mm);
    return 0;
}

/* YYYY-MM-DD[( |T)HH:MM[:SS[.f]][offset]]; a bare date is midnight. */
static int iso_timestamp(cur *c, civil *t)
{
    if (iso_date(c, t))
        return -1;
    if (c->i == c->e)
        return 0;
    if (!cur_eat(c, 'T') && !cur_eat(c, 't') && !cur_eat(c, ' '))
        return -1;
    if (cur_num(c, 2, &t->h) || !cur_eat(c, ':') || cur_num(c, 2, &t->mi))
        return -1;
    if (cur_eat(c, ':') && (cur_num(c, 2, &t->s) || iso_fraction(c, t)))
        return -1;
    if (c->i < c->e && iso_offset(c, t))
        return -1;
    return c->i == c->e ? 0 : -1;
}

/* Parse with a strptime() format; the whole value must be consumed
 * (trailing blanks aside). %z fills the offset. -2 for a year under 1000
 * read by %Y: glibc takes "25" there, which is the year 25, never what a
 * spreadsheet's short year means. */
static int fmt_parse(ig_value v, const char *fmt, civil *t)
{
    struct tm tm;
    const char *end;

    if (memchr(v.p, '\0', v.len)) /* strptime() would stop there */
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = 1; /* a format without %d means the 1st */
    end = strptime(v.p, fmt, &tm);
    if (end == NULL)
        return -1;
    while (is_ascii_space((unsigned char)*end))
        end++;
    if (*end != '\0')
        return -1;
    t->y = tm.tm_year + 1900;
    if (t->y < 1000 && strstr(fmt, "%Y") != NULL)
        return -2;
    t->mo = tm.tm_mon + 1;
    t->d = tm.tm_mday;
    t->h = tm.tm_hour;
    t->mi = tm.tm_min;
    t->s = tm.tm_sec;
    t->has_off = strstr(fmt, "%z") != NULL;
    t->off = t->has_off ? (int)(tm.tm_gmtoff / 60) : 0;
    return 0;
}

/* Parse a date (ts == 0) or timestamp into *t; ISO unless fmt. 0, -1,
 * or -2 (see fmt_parse). */
static int civil_parse(ig_value v, const char *fmt, int ts, civil *t)
{
    cur c;
    int rc;

    memset(t, 0, sizeof(*t));
    if (fmt != NULL) {
        rc = fmt_parse(v, fmt, t);
    } else {
        blank_bounds(v, &c.i, &c.e);
        c.p = v.p;
        rc = ts ? iso_timestamp(&c, t) : iso_date(&c, t);
        if (rc == 0 && c.i != c.e)
            rc = -1;
    }
    if (rc)
        return rc;
    if (!date_valid(t) || (ts && !time_valid(t)))
        return -1;
    return ts ? civil_carry(t) : 0;
}

static size_t civil_format(const civil *t, int ts, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%04d-%02d-%02d", t->y, t->mo, t->d);
    long us = t->us;
    int digits = 6;

    if (!ts)
        return (size_t)n;
    n += snprintf(buf + n, size - (size_t)n, " %02d:%02d:%02d", t->h, t->mi,
                  t->s);
    if (us) {
        for (; us % 10 == 0; us /= 10)
            digits--; /* PostgreSQL prints no trailing zeros either */
        n += snprintf(buf + n, size - (size_t)n, ".%0*ld", digits, us);
    }
    if (t->has_off)
        n += snprintf(buf + n, size - (size_t)n, "%c%02d:%02d",
                      t->off < 0 ? '-' : '+', abs(t->off) / 60,
                      abs(t->off) % 60);
    return (size_t)n;
}

static int type_civil(ig_value v, int ts, const char *fmt, ig_arena *a,
                      ig_value *out, ig_rule_fail *f)
{
    civil t;
    char buf[64];
    qbuf q;
    int rc = civil_parse(v, fmt, ts, &t);

    if (rc == -2)
        return fail_set(f, "type",
                        "%s has a year before 1000 where %s reads %%Y "
                        "(use %%y for a two-digit year)",
                        quoted(v, &q), fmt);
    if (rc)
        return fail_set(f, "type", "%s is not a valid %s (expected %s)",
                        quoted(v, &q), ts ? "timestamp" : "date",
                        fmt  ? fmt
                        : ts ? "YYYY-MM-DD HH:MM[:SS[.ffffff]][+HH:MM]"
                             : "YYYY-MM-DD");
    emit(v, buf, civil_format(&t, ts, buf, sizeof(buf)), a, out);
    return IG_OK;
}

int ig_rules_type(ig_type t, int precision, int scale, const char *fmt,
                  ig_value in, ig_arena *arena, ig_value *out,
                  ig_rule_fail *fail)
{
    if (in.is_null) {
        *out = in;
        return IG_OK;
    }
    switch (t) {
    case IG_TYPE_TEXT:
        return type_text(in, out, fail);
    case IG_TYPE_INT:
    case IG_TYPE_BIGINT:
        return type_int(in, t, arena, out, fail);
    case IG_TYPE_NUMERIC:
        return type_numeric(in, precision, scale, arena, out, fail);
    case IG_TYPE_BOOL:
        return type_bool(in, out, fail);
    case IG_TYPE_DATE:
        return type_civil(in, 0, fmt, arena, out, fail);
    case IG_TYPE_TIMESTAMP:
        return type_civil(in, 1, fmt, arena, out, fail);
    case IG_TYPE_UUID:
        return type_uuid(in, arena, out, fail);
    case IG_TYPE_JSON:
        return type_json(in, out, fail);
    }
    return fail_set(fail, "type", "unknown type %d", (int)t);
}

/* ------------------------------------------------------------------ */
/* Comparing canonical values                                          */

static int sign_of(long long x)
{
    return (x > 0) - (x < 0);
}

static int bytes_cmp(ig_value a, ig_value b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;

    return c ? sign_of(c) : sign_of((long long)a.len - (long long)b.len);
}

/* Compare the magnitudes of two canonical decimals (no sign, no leading
 * zeros but a lone "0", optional fraction): the longer integer part is
 * larger; then digits left to right, a missing fraction digit being 0. */
static int dec_cmp_abs(const char *a, size_t an, const char *b, size_t bn)
{
    size_t ia = strcspn(a, "."), ib = strcspn(b, "."), i;
    char da, db;

    if (ia != ib)
        return ia < ib ? -1 : 1;
    for (i = 0; i < ia; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    for (i = ia + 1; i < an || i < bn; i++) {
        da = i < an ? a[i] : '0';
        db = i < bn ? b[i] : '0';
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

/* Exact order of two canonical numerics, without floating point. */
static int dec_cmp(ig_value a, ig_value b)
{
    int na = a.p[0] == '-', nb = b.p[0] == '-'; /* zero is never "-0" */

    if (na != nb)
        return na ? -1 : 1;
    if (na)
        return -dec_cmp_abs(a.p + 1, a.len - 1, b.p + 1, b.len - 1);
    return dec_cmp_abs(a.p, a.len, b.p, b.len);
}

/* Seconds since 1970-01-01 for a proleptic Gregorian date (Howard
 * Hinnant's days_from_civil). */
static long long days_from_civil(int y, int m, int d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Chronological order of two canonical timestamps. A value without an
 * offset is taken as UTC: the session time zone is not known here. */
static int ts_cmp(ig_value a, ig_value b)
{
    civil ta, tb;
    long long sa, sb;

    if (civil_parse(a, NULL, 1, &ta) || civil_parse(b, NULL, 1, &tb))
        return bytes_cmp(a, b); /* cannot happen for canonical input */
    sa = days_from_civil(ta.y, ta.mo, ta.d) * 86400 + ta.h * 3600 + ta.mi * 60 +
         ta.s - ta.off * 60;
    sb = days_from_civil(tb.y, tb.mo, tb.d) * 86400 + tb.h * 3600 + tb.mi * 60 +
         tb.s - tb.off * 60;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return sign_of(ta.us - tb.us);
}

/* Order of two canonical values of type t. */
static int value_cmp(ig_type t, ig_value a, ig_value b)
{
    int64_t x = 0, y = 0;

    switch (t) {
    case IG_TYPE_INT:
    case IG_TYPE_BIGINT:
        if (parse_int(a, INT64_MIN, INT64_MAX, &x) ||
            parse_int(b, INT64_MIN, INT64_MAX, &y))
            return bytes_cmp(a, b);
        return (x > y) - (x < y);
    case IG_TYPE_NUMERIC:
        return dec_cmp(a, b);
    case IG_TYPE_TIMESTAMP:
        return ts_cmp(a, b);
    case IG_TYPE_DATE: /* YYYY-MM-DD sorts chronologically as bytes */
    case IG_TYPE_TEXT:
    case IG_TYPE_BOOL:
    case IG_TYPE_UUID:
    case IG_TYPE_JSON:
        return bytes_cmp(a, b);
    }
    return bytes_cmp(a, b);
}

/* ------------------------------------------------------------------ */
/* Rules                                                               */

static int rule_length(const ig_rules *r, ig_value v, ig_rule_fail *f)
{
    long n = ig_utf8_len(v.p, v.len);
    qbuf q;

    if (n < 0) /* only non-text types get here unchecked; count bytes */
        n = (long)v.len;
    if (r->min_length >= 0 && n < r->min_length)
        return fail_set(f, "min_length",
                        "%s is %ld characters long, at least %ld required",
                        quoted(v, &q), n, r->min_length);
    if (r->max_length >= 0 && n > r->max_length)
        return fail_set(f, "max_length",
                        "%s is %ld characters long, at most %ld allowed",
                        quoted(v, &q), n, r->max_length);
    return IG_OK;
}

/* One bound: the value must not be below (is_max == 0) or above it. The
 * bound is as written in YAML, so it is canonicalised first (ISO dates,
 * no numeric scale), then compared in the column's type. */
static int rule_bound(const ig_column *col, ig_value v, const char *bound,
                      int is_max, ig_arena *a, ig_rule_fail *f)
{
    const char *code = is_max ? "max" : "min";
    ig_value bv;
    qbuf q;
    int c;

    if (bound == NULL)
        return IG_OK;
    if (col->type == IG_TYPE_TEXT) {
        bv = const_value(bound);
    } else if (ig_rules_type(col->type, 0, 0, NULL, const_value(bound), a, &bv,
                             NULL) != IG_OK) {
        return fail_set(f, code, "the %s bound \"%s\" is not a valid %s", code,
                        bound, type_name(col->type));
    }
    c = value_cmp(col->type, v, bv);
    if (is_max && c > 0)
        return fail_set(f, code, "%s is greater than the maximum %s",
                        quoted(v, &q), bound);
    if (!is_max && c < 0)
        return fail_set(f, code, "%s is less than the minimum %s",
                        quoted(v, &q), bound);
    return IG_OK;
}

/* The allowed values as "a, b, c" for a message, cut to fit. */
static void enum_list(const ig_rules *r, char *buf, size_t size)
{
    size_t i, o = 0;
    int n;

    buf[0] = '\0';
    /* Keep room for ", ..." so a cut list always says it was cut. */
    for (i = 0; i < r->n_enum && o < size; i++) {
        n = snprintf(buf + o, size - o, "%s%s", i ? ", " : "",
                     r->enum_values[i]);
        if (n < 0 || (size_t)n >= size - o - 6) {
            snprintf(buf + o, size - o, "%s...", i ? ", " : "");
            return;
        }
        o += (size_t)n;
    }
}

/* Membership; when case-insensitive the value takes the enum's spelling,
 * so "xl" is stored as the "XL" the pipeline declared. */
static int rule_enum(const ig_rules *r, ig_value *v, ig_rule_fail *f)
{
    char list[160];
    size_t i, n;
    qbuf q;

    if (r->n_enum == 0)
        return IG_OK;
    for (i = 0; i < r->n_enum; i++) {
        n = strlen(r->enum_values[i]);
        if (same_text(v->p, v->len, r->enum_values[i], n, 0))
            return IG_OK;
        if (r->enum_case_insensitive &&
            same_folded(v->p, v->len, r->enum_values[i], n)) {
            *v = const_value(r->enum_values[i]);
            return IG_OK;
        }
    }
    enum_list(r, list, sizeof(list));
    return fail_set(f, "enum", "%s is not one of: %s", quoted(*v, &q), list);
}

static int rule_pattern(const ig_rules *r, ig_value v, ig_rule_fail *f)
{
    qbuf q;

    /* pattern_re is compiled by the loader; without it there is nothing
     * to run (and compiling per value would be far too slow). */
    if (r->pattern_re == NULL)
        return IG_OK;
    if (regexec(r->pattern_re, v.p, 0, NULL, 0) == 0)
        return IG_OK;
    return fail_set(f, "pattern", "%s does not match the pattern %s",
                    quoted(v, &q), r->pattern ? r->pattern : "(compiled)");
}

/* The value rules on a canonical, non-NULL value; may respell *v (enum). */
static int rules_check(const ig_column *col, ig_value *v, ig_arena *a,
                       ig_rule_fail *f)
{
    const ig_rules *r = &col->rules;
    int rc;

    rc = rule_length(r, *v, f);
    if (rc == IG_OK)
        rc = rule_bound(col, *v, r->min_value, 0, a, f);
    if (rc == IG_OK)
        rc = rule_bound(col, *v, r->max_value, 1, a, f);
    if (rc == IG_OK)
        rc = rule_enum(r, v, f);
    if (rc == IG_OK)
        rc = rule_pattern(r, *v, f);
    return rc;
}

int ig_rules_value(const ig_column *col, ig_value in, ig_arena *arena,
                   ig_value *out, ig_rule_fail *fail)
{
    ig_value v;
    int rc;

    ig_rules_xforms(col->xforms, col->n_xforms, in, arena, &v);
    if (col->rules.required && (v.is_null || v.len == 0))
        return fail_set(fail, "required", v.is_null ? "a value is required"
                                                    : "a value is required "
                                                      "(the value is empty)");
    if (v.is_null) {
        *out = v;
        return IG_OK;
    }
    rc = ig_rules_type(col->type, col->precision, col->scale, col->date_format,
                       v, arena, &v, fail);
    if (rc == IG_OK)
        rc = rules_check(col, &v, arena, fail);
    if (rc == IG_OK)
        *out = v;
    return rc;
}
