/*
 * jsontext.c - JSON numbers as text; see jsontext.h.
 */
#include "jsontext.h"

#include "err.h"

#include <string.h>

static size_t digits(const char *p, size_t i, size_t n)
{
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    return i;
}

int ig_jsontext_is_number(const char *p, size_t n)
{
    size_t i = 0, d;

    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0')
        i++;
    else if (i < n && p[i] >= '1' && p[i] <= '9')
        i = digits(p, i, n);
    else
        return 0;
    if (i < n && p[i] == '.') {
        d = ++i;
        if ((i = digits(p, i, n)) == d)
            return 0;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        d = i;
        if ((i = digits(p, i, n)) == d)
            return 0;
    }
    return i == n;
}

void ig_jsontext_numbers(const char *p, size_t n, int row_values,
                         size_t **spans, size_t *nspans)
{
    size_t cap = 0;
    int depth = 0, in_str = 0, esc = 0;
    char last = 0; /* the last character outside strings but spaces */

    *spans = NULL;
    *nspans = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if ((c == '-' || (c >= '0' && c <= '9')) &&
            (!row_values || (depth == 2 && last == ':'))) {
            size_t j = i;
            while (j < n && p[j] != '\0' &&
                   strchr("+-.eE0123456789", p[j]) != NULL)
                j++;
            if (ig_jsontext_is_number(p + i, j - i)) {
                if (*nspans + 2 > cap) {
                    cap = cap ? 2 * cap : 64;
                    *spans = ig_xrealloc(*spans, cap * sizeof(**spans));
                }
                (*spans)[(*nspans)++] = i;
                (*spans)[(*nspans)++] = j;
            }
            last = '0';
            i = j - 1;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{')
            depth++;
        else if (c == ']' || c == '}')
            depth--;
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            last = c;
    }
}

char *ig_jsontext_rewrite(const char *p, size_t n, const size_t *spans,
                          size_t nspans, ig_jsontext_how how,
                          size_t *outlen)
{
    /* QUOTE adds two bytes per number, ZERO never grows the text */
    char *out = ig_xmalloc(n + (how == IG_JSONTEXT_QUOTE ? nspans : 0) + 1);
    char *o = out;
    size_t from = 0;

    for (size_t k = 0; k + 1 < nspans; k += 2) {
        memcpy(o, p + from, spans[k] - from);
        o += spans[k] - from;
        if (how == IG_JSONTEXT_QUOTE) {
            *o++ = '"';
            memcpy(o, p + spans[k], spans[k + 1] - spans[k]);
            o += spans[k + 1] - spans[k];
            *o++ = '"';
        } else {
            *o++ = '0';
        }
        from = spans[k + 1];
    }
    memcpy(o, p + from, n - from);
    o += n - from;
    *o = '\0';
    *outlen = (size_t)(o - out);
    return out;
}
