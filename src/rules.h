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
 * into the caller's arena.
 */
#ifndef IG_RULES_H
#define IG_RULES_H

#include "arena.h"
#include "pipeline.h"
#include "value.h"

/* Why a value was rejected: a short code (the rule's name: "required",
 * "max_length", "min_length", "min", "max", "enum", "pattern", or "type"
 * for a value that is not of the declared type, "utf8" for invalid UTF-8)
 * and a message naming the problem ("123456 is longer than 5 characters").
 * The message never exceeds its buffer; it may quote the value, truncated
 * to 64 bytes. */
typedef struct ig_rule_fail {
    const char *code; /* static string */
    char msg[256];
} ig_rule_fail;

/* Apply a list of transforms to in. *out is the result: either in itself,
 * a slice of it, a constant from the pipeline, or new bytes in arena.
 * Cannot fail (allocation aborts). */
void ig_rules_xforms(const ig_xform *xf, size_t n, ig_value in,
                     ig_arena *arena, ig_value *out);

/* Transform, type-check, canonicalise and validate one value of col.
 * IG_OK with *out set (borrowed: in, the pipeline, or arena), or IG_DATA
 * with *fail filled. */
int ig_rules_value(const ig_column *col, ig_value in, ig_arena *arena,
                   ig_value *out, ig_rule_fail *fail) IG_MUSTCHECK;

/* Check one value against a type alone (after transforms): IG_OK with the
 * canonical text in *out, or IG_DATA. Used by ig_rules_value and by hooks'
 * helpers. precision/scale apply to numeric, fmt to date/timestamp. */
int ig_rules_type(ig_type t, int precision, int scale, const char *fmt,
                  ig_value in, ig_arena *arena, ig_value *out,
                  ig_rule_fail *fail) IG_MUSTCHECK;

/* Number of UTF-8 code points in s[0..n), or -1 when s is not valid UTF-8
 * (overlongs, surrogates and values above U+10FFFF are invalid). */
long ig_utf8_len(const char *s, size_t n);

#endif /* IG_RULES_H */
