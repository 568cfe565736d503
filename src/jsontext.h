/*
 * jsontext.h - JSON numbers as text, where jansson would read them as an
 * int64 or a double: which tokens of a JSON text are numbers, so that the
 * HTTP API can hand a row's numbers to the parser as strings of their own
 * text and the `json` type rule can check a text whose numbers are out of
 * a double's range (jsonb takes them).
 */
#ifndef IG_JSONTEXT_H
#define IG_JSONTEXT_H

#include <stddef.h>

/* Whether p[0..n) is exactly one JSON number (RFC 8259, section 6). */
int ig_jsontext_is_number(const char *p, size_t n);

/* The numbers of the JSON text p[0..n), outside strings, as spans: their
 * starts and ends (exclusive) in *spans (owned, NULL when none; 2 per
 * number), 2 x their count in *nspans. With row_values, only the values
 * of keys of objects inside a top-level array (a row's fields). A token
 * that is not a JSON number is left out: the parser refuses it. */
void ig_jsontext_numbers(const char *p, size_t n, int row_values,
                         size_t **spans, size_t *nspans);

/* What ig_jsontext_rewrite makes of each number. */
typedef enum {
    IG_JSONTEXT_QUOTE, /* a string of its own text: 1.10 -> "1.10" */
    IG_JSONTEXT_ZERO   /* 0: the text's shape without its numbers */
} ig_jsontext_how;

/* p[0..n) with each number of spans (ig_jsontext_numbers) rewritten as
 * how says: owned, NUL-terminated, its length in *outlen. */
char *ig_jsontext_rewrite(const char *p, size_t n, const size_t *spans,
                          size_t nspans, ig_jsontext_how how,
                          size_t *outlen);

#endif
