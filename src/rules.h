/*
 * rules.h - the built-in transforms, type checks and validation rules of a
 * pipeline column, run in C for every value (a pipeline with no Lua pays no
 * Lua cost).
 *
 * For one value of one column: transforms run in declaration order
 * (trim, collapse_spaces, lower, upper, strip_control, replace, null_if,
 * default), then the value is checked against the declared type and turned
 * into the canonical text PostgreSQL's COPY text format accepts for that
 * type (e.g. bool "yes" -> "t", date "31/12/2024" with date_format
 * "%d/%m/%Y" -> "2024-12-31", numeric "+001.50" -> "1.50"), then
 * the rules run (required, min/max length in characters, min/max value in
 * the type's order, enum, pattern).
 *
 * Pure functions over read-only descriptors: thread-safe. Output bytes go
 * into the caller's arena; a value that does not change is returned as it
 * came, without a copy. Every non-NULL output is NUL-terminated, as
 * ig_value promises (a value cut at its end is therefore copied).
 *
 * Transforms:
 *   trim             ASCII whitespace and U+00A0 NO-BREAK SPACE, both ends
 *   collapse_spaces  each run of that whitespace (even a lone tab or NBSP)
 *                    becomes one ' '
 *   lower / upper    ASCII, Latin-1, Latin Extended-A, basic Greek and
 *                    Cyrillic, one-to-one only (ß, ı, µ are left alone);
 *                    other code points and invalid bytes are kept
 *   strip_control    removes U+0000-U+001F (tab and newline too), U+007F
 *                    and U+0080-U+009F
 *   replace          whole-value match; a NULL to[i] gives SQL NULL
 *   null_if          whole-value match gives SQL NULL
 *   default          NULL or "" becomes value
 * NULL passes through every transform but default.
 *
 * Canonical forms: int/bigint without '+' or leading zeros; numeric with
 * the written scale (exponents expanded) or rounded half away from zero
 * to the declared scale; bool "t"/"f"; date YYYY-MM-DD; timestamp
 * "YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]" (fraction rounded to
 * microseconds as PostgreSQL rounds it, through a double, ties to even;
 * a bare date is midnight, no offset stays without one);
 * uuid lowercase 8-4-4-4-12; json the original text (parsed by jansson,
 * which also rejects numbers beyond a double, such as 1e400, that jsonb
 * would take); text must be valid UTF-8 without NUL bytes.
 *
 * min/max bounds are written in YAML in ISO/plain form (never the column's
 * date_format) and compared in the column's type: integers and decimals
 * exactly, dates and timestamps chronologically (a timestamp without an
 * offset counts as UTC), everything else by bytes.
 */
#ifndef IG_RULES_H
#define IG_RULES_H

#include "arena.h"
#include "pipeline.h"
#include "value.h"

/* Why a value was rejected: a short code (the rule's name: "required",
 * "max_length", "min_length", "min", "max", "enum", "pattern", or "type"
 * for a value that is not of the declared type, "utf8" for invalid UTF-8
 * or a NUL byte in text) and a message naming the problem
 * ("\"abcdefg\" is 7 characters long, at most 5 allowed"). The message
 * never exceeds its buffer; it quotes the value (canonical once the type
 * check passed), cut to 64 bytes at a character boundary and ended with
 * "..." when cut. */
typedef struct ig_rule_fail {
    const char *code; /* static string */
    char msg[256];
} ig_rule_fail;

/* Apply a list of transforms to in. *out is the result: either in itself,
 * a slice of it, a constant from the pipeline, or new bytes in arena.
 * Cannot fail (allocation aborts). */
void ig_rules_xforms(const ig_xform *xf, size_t n, ig_value in, ig_arena *arena,
                     ig_value *out);

/* Transform, type-check, canonicalise and validate one value of col.
 * IG_OK with *out set (borrowed: in, the pipeline, a static constant, or
 * arena), or IG_DATA with *fail filled (fail may be NULL). The first
 * failing check wins, in the order: required, type, min_length,
 * max_length, min, max, enum, pattern. A NULL value is only checked by
 * required. A case-insensitive enum match takes the enum's spelling. */
int ig_rules_value(const ig_column *col, ig_value in, ig_arena *arena,
                   ig_value *out, ig_rule_fail *fail) IG_MUSTCHECK;

/* Check one value against a type alone (after transforms): IG_OK with the
 * canonical text in *out (borrowed like ig_rules_value's), or IG_DATA with
 * *fail filled (fail may be NULL). NULL is IG_OK and stays NULL. Used by
 * ig_rules_value and by hooks' helpers. precision/scale apply to numeric
 * (both 0 = unconstrained; precision 0 with scale > 0 rounds without a
 * digit limit), fmt (a strptime() format, NULL = ISO 8601) to
 * date/timestamp. in must be NUL-terminated, as ig_value promises. */
int ig_rules_type(ig_type t, int precision, int scale, const char *fmt,
                  ig_value in, ig_arena *arena, ig_value *out,
                  ig_rule_fail *fail) IG_MUSTCHECK;

/* Number of UTF-8 code points in s[0..n), or -1 when s is not valid UTF-8
 * (overlongs, surrogates and values above U+10FFFF are invalid). */
long ig_utf8_len(const char *s, size_t n);

/* s[0..n) as valid UTF-8 without NUL, for a JSON string or a jsonb
 * column: NULL when it already is (use s as is), else a malloc'ed copy in
 * which each NUL byte and each byte that does not start a well-formed
 * sequence is U+FFFD; *out_len its length. */
char *ig_utf8_scrub(const char *s, size_t n, size_t *out_len);

#endif /* IG_RULES_H */
