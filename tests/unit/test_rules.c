/*
 * test_rules.c - built-in transforms, type canonicalisation and value
 * rules: UTF-8 validity and length, every transform (including the
 * no-copy paths), each type's accepted and rejected spellings, and each
 * rule's code and message. Column descriptors are built by hand here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static ig_value V(const char *s)
{
    ig_value v = {s, strlen(s), 0};
    return v;
}

/* A text column with every rule unset. */
static ig_column column(ig_type t)
{
    ig_column c;

    memset(&c, 0, sizeof(c));
    c.name = "c";
    c.type = t;
    c.from_index = -1;
    c.rules.min_length = -1;
    c.rules.max_length = -1;
    return c;
}

static ig_value one_xform(ig_arena *a, ig_xform xf, ig_value in)
{
    ig_value out;

    ig_rules_xforms(&xf, 1, in, a, &out);
    return out;
}

static ig_value xform_kind(ig_arena *a, ig_xform_kind k, const char *in)
{
    ig_xform xf;

    memset(&xf, 0, sizeof(xf));
    xf.kind = k;
    return one_xform(a, xf, V(in));
}

/* The output must be text equal to want and NUL-terminated. */
static void assert_text(ig_value v, const char *want)
{
    assert_int_equal(v.is_null, 0);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.p, want, v.len);
    assert_int_equal(v.p[v.len], '\0');
}

static void type_ok(ig_arena *a, ig_type t, int prec, int scale,
                    const char *fmt, const char *in, const char *want)
{
    ig_value out;
    ig_rule_fail f = {0};
    int rc = ig_rules_type(t, prec, scale, fmt, V(in), a, &out, &f);

    if (rc != IG_OK)
        fail_msg("'%s' rejected: %s %s", in, f.code, f.msg);
    assert_text(out, want);
}

/* Rejected with code, and the message contains fragment. */
static void type_bad(ig_arena *a, ig_type t, int prec, int scale,
                     const char *fmt, const char *in, const char *code,
                     const char *fragment)
{
    ig_value out;
    ig_rule_fail f = {0};
    int rc = ig_rules_type(t, prec, scale, fmt, V(in), a, &out, &f);

    if (rc != IG_DATA)
        fail_msg("'%s' accepted as '%s'", in, out.p);
    assert_string_equal(f.code, code);
    if (strstr(f.msg, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", f.msg, fragment);
}

static void value_ok(ig_arena *a, const ig_column *c, const char *in,
                     const char *want)
{
    ig_value out;
    ig_rule_fail f = {0};

    if (ig_rules_value(c, V(in), a, &out, &f) != IG_OK)
        fail_msg("'%s' rejected: %s %s", in, f.code, f.msg);
    assert_text(out, want);
}

static void value_bad(ig_arena *a, const ig_column *c, const char *in,
                      const char *code, const char *msg)
{
    ig_value out;
    ig_rule_fail f = {0};

    if (ig_rules_value(c, V(in), a, &out, &f) != IG_DATA)
        fail_msg("'%s' accepted", in);
    assert_string_equal(f.code, code);
    if (msg)
        assert_string_equal(f.msg, msg);
}

static int setup(void **state)
{
    *state = ig_arena_new(0);
    return 0;
}

static int teardown(void **state)
{
    ig_arena_free(*state);
    return 0;
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */

static void test_rules_utf8_len_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(ig_utf8_len("Crème", strlen("Crème")), 5);
    assert_int_equal(strlen("Crème"), 6);
    assert_int_equal(ig_utf8_len("", 0), 0);
    assert_int_equal(ig_utf8_len("日本語", strlen("日本語")), 3);
    assert_int_equal(ig_utf8_len("a\xF0\x9F\x98\x80z", 6), 3); /* emoji */
    assert_int_equal(ig_utf8_len("a\0b", 3), 3); /* NUL is a code point */
}

/* Scrubbed: NUL and every byte that starts no well-formed sequence become
 * U+FFFD, one each; good text is left alone (NULL: use it as is). */
static void test_rules_utf8_scrub(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want; /* NULL: already clean */
    } cases[] = {
        {"Crème", 6, NULL},
        {"", 0, NULL},
        {"a\0b", 3, "a\xEF\xBF\xBD" "b"},
        {"x\xFFy", 3, "x\xEF\xBF\xBD" "y"},
        {"\xC3", 1, "\xEF\xBF\xBD"},                    /* truncated */
        {"\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},     /* overlong */
        {"\xED\xA0\x80", 3,                              /* surrogate */
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xF0\x9F\x98\x80\0", 5, "\xF0\x9F\x98\x80\xEF\xBF\xBD"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = 12345;
        char *out = ig_utf8_scrub(cases[i].in, cases[i].n, &len);
        if (cases[i].want == NULL) {
            assert_null(out);
            continue;
        }
        assert_non_null(out);
        assert_int_equal(len, strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, len);
        assert_true(ig_utf8_len(out, len) >= 0);
        free(out);
    }
}

static void test_rules_utf8_len_accepts_every_boundary(void **state)
{
    static const char *const ok[] = {
        "\x7F",         "\xC2\x80",         "\xDF\xBF",
        "\xE0\xA0\x80", "\xED\x9F\xBF",     "\xEE\x80\x80",
        "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(ig_utf8_len(ok[i], strlen(ok[i])), 1);
}

static void test_rules_utf8_len_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "\xC0\x80",         /* overlong NUL */
        "\xC1\xBF",         /* overlong '?' */
        "\xE0\x80\x80",     /* overlong 3-byte */
        "\xE0\x9F\xBF",     /* overlong U+07FF */
        "\xF0\x80\x80\x80", /* overlong 4-byte */
        "\xED\xA0\x80",     /* surrogate U+D800 */
        "\xED\xBF\xBF",     /* surrogate U+DFFF */
        "\xF4\x90\x80\x80", /* U+110000 */
        "\xF5\x80\x80\x80", /* lead byte past U+10FFFF */
        "\xFF",
        "\x80",     /* lone continuation */
        "ab\xC3",   /* truncated at the end */
        "\xE2\x82", /* truncated 3-byte */
        "\xC3(",    /* continuation missing */
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ig_utf8_len(bad[i], strlen(bad[i])) != -1)
            fail_msg("case %zu accepted", i);
}

/* ------------------------------------------------------------------ */
/* Transforms                                                          */

static void test_rules_trim_whitespace_nbsp_and_unicode_spaces(void **state)
{
    ig_arena *a = *state;

    assert_text(xform_kind(a, IG_XFORM_TRIM, " \t\r\n ab c \v\f"), "ab c");
    assert_text(xform_kind(a, IG_XFORM_TRIM, "\xC2\xA0 Crème\xC2\xA0"),
                "Crème");
    assert_text(xform_kind(a, IG_XFORM_TRIM, " \xC2\xA0 "), "");
    /* A lone 0xA0 byte (not NBSP) is not whitespace. */
    assert_text(xform_kind(a, IG_XFORM_TRIM, "\xC3\xA0 "), "\xC3\xA0");
    /* Unicode spaces: ideographic (U+3000), narrow no-break (U+202F),
     * thin (U+2009), en quad (U+2000), hair (U+200A). */
    assert_text(xform_kind(a, IG_XFORM_TRIM,
                           "\xE3\x80\x80 1\xE2\x80\xAF" "000\xE2\x80\xAF"),
                "1\xE2\x80\xAF" "000");
    assert_text(xform_kind(a, IG_XFORM_TRIM,
                           "\xE2\x80\x89\xE2\x80\x80x\xE2\x80\x8A"), "x");
    /* Near misses stay: U+200B (zero width), U+2010 (hyphen). */
    assert_text(xform_kind(a, IG_XFORM_TRIM, "\xE2\x80\x8Bx\xE2\x80\x90"),
                "\xE2\x80\x8Bx\xE2\x80\x90");
}

static void test_rules_trim_avoids_copies(void **state)
{
    ig_arena *a = *state;
    const char *s = "  abc";
    const char *t = "abc";
    ig_value out;
    size_t used = ig_arena_used(a);

    out = xform_kind(a, IG_XFORM_TRIM, s);
    assert_ptr_equal(out.p, s + 2); /* leading only: a slice */
    out = xform_kind(a, IG_XFORM_TRIM, t);
    assert_ptr_equal(out.p, t); /* unchanged: the input */
    assert_int_equal(ig_arena_used(a), used);
    out = xform_kind(a, IG_XFORM_TRIM, "abc  ");
    assert_text(out, "abc"); /* trailing: copied to stay NUL-terminated */
}

static void test_rules_collapse_spaces_runs_become_one_space(void **state)
{
    ig_arena *a = *state;

    assert_text(xform_kind(a, IG_XFORM_COLLAPSE_SPACES, "a  b\t\tc\n d"),
                "a b c d");
    assert_text(xform_kind(a, IG_XFORM_COLLAPSE_SPACES, "a\tb"), "a b");
    assert_text(xform_kind(a, IG_XFORM_COLLAPSE_SPACES, " x\xC2\xA0 y  "),
                " x y ");
    assert_text(xform_kind(a, IG_XFORM_COLLAPSE_SPACES, "Crème  brûlée"),
                "Crème brûlée");
    assert_text(xform_kind(a, IG_XFORM_COLLAPSE_SPACES,
                           "1\xE2\x80\xAF" "000 \xE3\x80\x80x"), "1 000 x");
}

static void test_rules_collapse_spaces_single_spaces_not_copied(void **st)
{
    const char *s = " a b c ";
    ig_value out = xform_kind(*st, IG_XFORM_COLLAPSE_SPACES, s);

    assert_ptr_equal(out.p, s);
}

static void test_rules_lower_ascii_and_latin1(void **state)
{
    ig_arena *a = *state;

    assert_text(xform_kind(a, IG_XFORM_LOWER, "ÉCOLE Ça ÀÖØÞ"),
                "école ça àöøþ");
    assert_text(xform_kind(a, IG_XFORM_LOWER, "×ÿŸ"), "×ÿÿ");
    assert_text(xform_kind(a, IG_XFORM_LOWER, "ŁÓDŹ ΑΒΓ МОСКВА Ё"),
                "łódź αβγ москва ё");
}

static void test_rules_upper_ascii_latin1_and_beyond(void **state)
{
    ig_arena *a = *state;

    assert_text(xform_kind(a, IG_XFORM_UPPER, "crème brûlée"), "CRÈME BRÛLÉE");
    assert_text(xform_kind(a, IG_XFORM_UPPER, "÷ÿ"), "÷Ÿ");
    /* ß has no one-letter uppercase; ı and ĸ have none either. */
    assert_text(xform_kind(a, IG_XFORM_UPPER, "straße ıĸ"), "STRAßE ıĸ");
    assert_text(xform_kind(a, IG_XFORM_UPPER, "łódź σς москва"),
                "ŁÓDŹ ΣΣ МОСКВА");
}

static void test_rules_case_leaves_other_code_points_valid(void **state)
{
    ig_arena *a = *state;
    ig_value out;

    out = xform_kind(a, IG_XFORM_UPPER, "日本a\xF0\x9F\x98\x80");
    assert_text(out, "日本A\xF0\x9F\x98\x80");
    assert_int_equal(ig_utf8_len(out.p, out.len), 4);
    /* Invalid bytes are kept as they are, never merged into a char. */
    assert_text(xform_kind(a, IG_XFORM_LOWER, "A\xFF\xC3"), "a\xFF\xC3");
}

static void test_rules_case_unchanged_not_copied(void **state)
{
    const char *s = "déjà 42";
    ig_value out = xform_kind(*state, IG_XFORM_LOWER, s);

    assert_ptr_equal(out.p, s);
    out = xform_kind(*state, IG_XFORM_UPPER, "ÀÉ 42");
    assert_text(out, "ÀÉ 42");
}

static void test_rules_strip_control_removes_c0_del_and_c1(void **state)
{
    ig_arena *a = *state;

    assert_text(xform_kind(a, IG_XFORM_STRIP_CONTROL,
                           "\x01"
                           "a\tb\nc\x7F"
                           "d\xC2\x85"
                           "e\xC2\x9F"),
                "abcde");
    /* U+00A0 and U+00E9 are not C1 controls. */
    assert_text(xform_kind(a, IG_XFORM_STRIP_CONTROL, "\xC2\xA0\xC3\xA9\x1B"),
                "\xC2\xA0\xC3\xA9");
}

static void test_rules_strip_control_clean_not_copied(void **state)
{
    const char *s = "plain café";
    ig_value out = xform_kind(*state, IG_XFORM_STRIP_CONTROL, s);

    assert_ptr_equal(out.p, s);
}

static void test_rules_replace_exact_match_only(void **state)
{
    static const char *const from[] = {"M", "Medium", "N/A"};
    static const char *const to[] = {"medium", "medium", NULL};
    ig_xform xf = {IG_XFORM_REPLACE, from, to, 3, NULL, 0};
    ig_arena *a = *state;
    ig_value out;

    assert_text(one_xform(a, xf, V("M")), "medium");
    assert_text(one_xform(a, xf, V("Medium")), "medium");
    assert_text(one_xform(a, xf, V("m")), "m");   /* case matters */
    assert_text(one_xform(a, xf, V("M ")), "M "); /* whole value */
    assert_text(one_xform(a, xf, V("MM")), "MM");
    out = one_xform(a, xf, V("N/A")); /* NULL target */
    assert_int_equal(out.is_null, 1);
    xf.case_insensitive = 1;
    assert_text(one_xform(a, xf, V("mEDIUM")), "medium");
}

static void test_rules_null_if_listed_values_become_null(void **state)
{
    static const char *const from[] = {"-", "n/a", ""};
    ig_xform xf = {IG_XFORM_NULL_IF, from, NULL, 3, NULL, 0};
    ig_arena *a = *state;

    assert_int_equal(one_xform(a, xf, V("-")).is_null, 1);
    assert_int_equal(one_xform(a, xf, V("")).is_null, 1);
    assert_int_equal(one_xform(a, xf, V("N/A")).is_null, 0);
    xf.case_insensitive = 1;
    assert_int_equal(one_xform(a, xf, V("N/A")).is_null, 1);
    assert_text(one_xform(a, xf, V("n/a ")), "n/a ");
}

static void test_rules_default_fills_null_and_empty(void **state)
{
    ig_xform xf = {IG_XFORM_DEFAULT, NULL, NULL, 0, "EA", 0};
    ig_arena *a = *state;

    assert_text(one_xform(a, xf, IG_VALUE_NULL), "EA");
    assert_text(one_xform(a, xf, V("")), "EA");
    assert_text(one_xform(a, xf, V(" ")), " ");
    assert_text(one_xform(a, xf, V("BOX")), "BOX");
}

static void test_rules_null_passes_through_all_but_default(void **state)
{
    static const char *const from[] = {"x"};
    static const char *const to[] = {"y"};
    ig_xform xf[] = {
        {IG_XFORM_TRIM, NULL, NULL, 0, NULL, 0},
        {IG_XFORM_COLLAPSE_SPACES, NULL, NULL, 0, NULL, 0},
        {IG_XFORM_LOWER, NULL, NULL, 0, NULL, 0},
        {IG_XFORM_UPPER, NULL, NULL, 0, NULL, 0},
        {IG_XFORM_STRIP_CONTROL, NULL, NULL, 0, NULL, 0},
        {IG_XFORM_REPLACE, from, to, 1, NULL, 0},
        {IG_XFORM_NULL_IF, from, NULL, 1, NULL, 0},
    };
    ig_xform dflt = {IG_XFORM_DEFAULT, NULL, NULL, 0, "d", 0};
    ig_value out;

    ig_rules_xforms(xf, sizeof(xf) / sizeof(xf[0]), IG_VALUE_NULL, *state,
                    &out);
    assert_int_equal(out.is_null, 1);
    assert_text(one_xform(*state, dflt, IG_VALUE_NULL), "d");
}

static void test_rules_xforms_run_in_declaration_order(void **state)
{
    static const char *const nulls[] = {"", "none"};
    ig_xform xf[] = {
        {IG_XFORM_TRIM, NULL, NULL, 0, NULL, 0},
        {IG_XFORM_LOWER, NULL, NULL, 0, NULL, 0},
        {IG_XFORM_NULL_IF, nulls, NULL, 2, NULL, 0},
        {IG_XFORM_DEFAULT, NULL, NULL, 0, "unknown", 0},
    };
    ig_value out;

    ig_rules_xforms(xf, 4, V("  NONE "), *state, &out);
    assert_text(out, "unknown");
    ig_rules_xforms(xf, 4, V("\xC2\xA0Ÿes"), *state, &out);
    assert_text(out, "ÿes");
}

/* ------------------------------------------------------------------ */
/* Types                                                               */

static void test_rules_type_text_requires_utf8(void **state)
{
    ig_arena *a = *state;
    ig_value out;
    ig_rule_fail f;

    type_ok(a, IG_TYPE_TEXT, 0, 0, NULL, "Crème", "Crème");
    type_bad(a, IG_TYPE_TEXT, 0, 0, NULL, "ab\xC0\x80", "utf8",
             "invalid UTF-8 at byte 3 (0xC0) after \"ab\"");
    type_bad(a, IG_TYPE_TEXT, 0, 0, NULL, "\xED\xA0\x80", "utf8",
             "invalid UTF-8");
    assert_int_equal(ig_rules_type(IG_TYPE_TEXT, 0, 0, NULL,
                                   (ig_value){"a\0b", 3, 0}, a, &out, &f),
                     IG_DATA);
    assert_string_equal(f.code, "utf8");
    assert_non_null(strstr(f.msg, "NUL byte"));
}

static void test_rules_int_edges(void **state)
{
    ig_arena *a = *state;

    type_ok(a, IG_TYPE_INT, 0, 0, NULL, "2147483647", "2147483647");
    type_ok(a, IG_TYPE_INT, 0, 0, NULL, "-2147483648", "-2147483648");
    type_bad(a, IG_TYPE_INT, 0, 0, NULL, "2147483648", "type",
             "\"2147483648\" is out of range for int "
             "(-2147483648 to 2147483647)");
    type_bad(a, IG_TYPE_INT, 0, 0, NULL, "-2147483649", "type",
             "out of range for int");
    type_bad(a, IG_TYPE_INT, 0, 0, NULL, "99999999999999999999999", "type",
             "out of range");
}

static void test_rules_int_canonical_forms(void **state)
{
    ig_arena *a = *state;
    const char *s = "+7";
    ig_value out;
    ig_rule_fail f;

    type_ok(a, IG_TYPE_INT, 0, 0, NULL, "-0", "0");
    type_ok(a, IG_TYPE_INT, 0, 0, NULL, "+7", "7");
    type_ok(a, IG_TYPE_INT, 0, 0, NULL, " 42 ", "42");
    type_ok(a, IG_TYPE_INT, 0, 0, NULL, "007", "7");
    type_ok(a, IG_TYPE_INT, 0, 0, NULL, "-0012", "-12");
    /* "+7" -> "7" is the input's tail: a slice, not a copy. */
    assert_int_equal(ig_rules_type(IG_TYPE_INT, 0, 0, NULL, V(s), a, &out, &f),
                     IG_OK);
    assert_ptr_equal(out.p, s + 1);
}

static void test_rules_int_rejects_non_integers(void **state)
{
    static const char *const bad[] = {"4 2",  "",      " ", "1.0",
                                      "0x10", "+",     "-", "1e3",
                                      "--1",  "1_000", "١", "12a"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        type_bad(*state, IG_TYPE_INT, 0, 0, NULL, bad[i], "type",
                 "is not a whole number");
}

static void test_rules_bigint_edges(void **state)
{
    ig_arena *a = *state;

    type_ok(a, IG_TYPE_BIGINT, 0, 0, NULL, "9223372036854775807",
            "9223372036854775807");
    type_ok(a, IG_TYPE_BIGINT, 0, 0, NULL, "-9223372036854775808",
            "-9223372036854775808");
    type_ok(a, IG_TYPE_BIGINT, 0, 0, NULL, "2147483648", "2147483648");
    type_bad(a, IG_TYPE_BIGINT, 0, 0, NULL, "9223372036854775808", "type",
             "out of range for bigint (-9223372036854775808 to "
             "9223372036854775807)");
    type_bad(a, IG_TYPE_BIGINT, 0, 0, NULL, "-9223372036854775809", "type",
             "out of range for bigint");
    type_bad(a, IG_TYPE_BIGINT, 0, 0, NULL, "18446744073709551616", "type",
             "out of range for bigint");
}

static void test_rules_numeric_canonical_keeps_written_scale(void **state)
{
    ig_arena *a = *state;

    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "+001.50", "1.50");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, ".5", "0.5");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "5.", "5");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "-0", "0");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "-0.00", "0.00");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, " -12.340 ", "-12.340");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "000", "0");
}

static void test_rules_numeric_scale_rounds_half_away_from_zero(void **st)
{
    ig_arena *a = *st;

    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "0.005", "0.01");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "-0.005", "-0.01");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "0.0049999", "0.00");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "-0.004", "0.00");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "12.345", "12.35");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "9.995", "10.00");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "1.5", "1.50");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "7", "7.00");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "-99.999", "-100.00");
}

static void test_rules_numeric_precision_overflow(void **state)
{
    ig_arena *a = *state;

    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "99999999.994", "99999999.99");
    type_bad(a, IG_TYPE_NUMERIC, 10, 2, NULL, "99999999.995", "type",
             "\"99999999.995\" exceeds numeric(10,2): at most 8 digits "
             "before the decimal point");
    type_bad(a, IG_TYPE_NUMERIC, 10, 2, NULL, "-123456789", "type",
             "exceeds numeric(10,2)");
    type_ok(a, IG_TYPE_NUMERIC, 2, 2, NULL, "0.994", "0.99");
    type_bad(a, IG_TYPE_NUMERIC, 2, 2, NULL, "0.995", "type",
             "exceeds numeric(2,2)");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "00000000000000012", "12.00");
}

static void
test_rules_numeric_precision_without_scale_rounds_to_integer(void **state)
{
    ig_arena *a = *state;

    type_ok(a, IG_TYPE_NUMERIC, 5, 0, NULL, "2.5", "3");
    type_ok(a, IG_TYPE_NUMERIC, 5, 0, NULL, "-2.5", "-3");
    type_ok(a, IG_TYPE_NUMERIC, 5, 0, NULL, "0.4", "0");
    type_ok(a, IG_TYPE_NUMERIC, 5, 0, NULL, "99999.4", "99999");
    type_bad(a, IG_TYPE_NUMERIC, 5, 0, NULL, "99999.5", "type",
             "exceeds numeric(5,0)");
}

static void test_rules_numeric_exponents_are_expanded(void **state)
{
    ig_arena *a = *state;

    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "1.5e3", "1500");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "1.5E-3", "0.0015");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "1.50e1", "15.0");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "-2e+2", "-200");
    type_ok(a, IG_TYPE_NUMERIC, 0, 0, NULL, "2e0", "2");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "1.2345e2", "123.45");
    type_ok(a, IG_TYPE_NUMERIC, 10, 2, NULL, "5e-3", "0.01");
    type_bad(a, IG_TYPE_NUMERIC, 0, 0, NULL, "1e1001", "type",
             "exponent beyond");
    type_bad(a, IG_TYPE_NUMERIC, 10, 2, NULL, "1e8", "type",
             "exceeds numeric(10,2)");
}

static void test_rules_numeric_rejects_non_decimals(void **state)
{
    static const char *const bad[] = {
        "NaN", "nan", "Infinity", "-Infinity", "1,000", "1 000",
        "",    " ",   ".",        "1.2.3",     "e5",    "1e",
        "1e+", "--1", "0x1F",     "1.5f",      "€5"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        type_bad(*state, IG_TYPE_NUMERIC, 0, 0, NULL, bad[i], "type",
                 "is not a number");
}

static void test_rules_numeric_long_values_are_exact(void **state)
{
    char in[300], want[300];

    /* Longer than the stack scratch buffer: takes the arena path. */
    memset(in, '9', 200);
    strcpy(in + 200, ".5");
    want[0] = '1';
    memset(want + 1, '0', 200);
    want[201] = '\0';
    type_ok(*state, IG_TYPE_NUMERIC, 0, 0, NULL, in, in);
    type_ok(*state, IG_TYPE_NUMERIC, 300, 0, NULL, in, want);
}

static void test_rules_bool_spellings(void **state)
{
    static const char *const yes[] = {"true", "TRUE", "t",    "Yes",
                                      "y",    "1",    " on ", "ON"};
    static const char *const no[] = {"false", "F",   "no",     "N",
                                     "0",     "off", "\tOff\n"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        type_ok(*state, IG_TYPE_BOOL, 0, 0, NULL, yes[i], "t");
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        type_ok(*state, IG_TYPE_BOOL, 0, 0, NULL, no[i], "f");
}

static void test_rules_bool_rejects_others(void **state)
{
    static const char *const bad[] = {"",  "2",   "tru", "yess",
                                      "o", "oui", "-1",  "truex"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        type_bad(*state, IG_TYPE_BOOL, 0, 0, NULL, bad[i], "type",
                 "is not a boolean");
}

static void test_rules_date_iso_and_leap_years(void **state)
{
    ig_arena *a = *state;

    type_ok(a, IG_TYPE_DATE, 0, 0, NULL, "2024-12-31", "2024-12-31");
    type_ok(a, IG_TYPE_DATE, 0, 0, NULL, " 2024-01-05 ", "2024-01-05");
    type_ok(a, IG_TYPE_DATE, 0, 0, NULL, "2000-02-29", "2000-02-29");
    type_ok(a, IG_TYPE_DATE, 0, 0, NULL, "2024-02-29", "2024-02-29");
    type_ok(a, IG_TYPE_DATE, 0, 0, NULL, "0001-01-01", "0001-01-01");
    type_bad(a, IG_TYPE_DATE, 0, 0, NULL, "1900-02-29", "type",
             "not a valid date");
    type_bad(a, IG_TYPE_DATE, 0, 0, NULL, "2023-02-29", "type",
             "not a valid date");
}

static void test_rules_date_rejects_impossible_and_malformed(void **state)
{
    static const char *const bad[] = {
        "2023-13-01",  "2023-00-10",       "2023-04-31", "2023-01-00",
        "0000-01-01",  "2023-1-5",         "23-01-05",   "2023/01/05",
        "2023-01-05x", "2023-01-05 10:00", "",           "20230105"};
    ig_arena *a = *state;
    size_t i;

    type_bad(a, IG_TYPE_DATE, 0, 0, NULL, "2023-02-30", "type",
             "\"2023-02-30\" is not a valid date (expected YYYY-MM-DD)");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        type_bad(a, IG_TYPE_DATE, 0, 0, NULL, bad[i], "type",
                 "is not a valid date");
}

static void test_rules_date_custom_format(void **state)
{
    ig_arena *a = *state;
    const char *fmt = "%d/%m/%Y";

    type_ok(a, IG_TYPE_DATE, 0, 0, fmt, "31/12/2024", "2024-12-31");
    type_ok(a, IG_TYPE_DATE, 0, 0, fmt, "29/02/2000 ", "2000-02-29");
    type_ok(a, IG_TYPE_DATE, 0, 0, fmt, "5/1/2024", "2024-01-05");
    type_bad(a, IG_TYPE_DATE, 0, 0, fmt, "31/02/2024", "type",
             "\"31/02/2024\" is not a valid date (expected %d/%m/%Y)");
    type_bad(a, IG_TYPE_DATE, 0, 0, fmt, "29/02/1900", "type", "valid date");
    type_bad(a, IG_TYPE_DATE, 0, 0, fmt, "2024-12-31", "type", "valid date");
    type_bad(a, IG_TYPE_DATE, 0, 0, fmt, "31/12/2024 x", "type", "valid date");
    type_ok(a, IG_TYPE_DATE, 0, 0, "%Y%m%d", "20240105", "2024-01-05");
}

static void test_rules_timestamp_iso_forms(void **state)
{
    ig_arena *a = *state;
    const ig_type T = IG_TYPE_TIMESTAMP;

    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56", "2024-03-01 12:34:56");
    type_ok(a, T, 0, 0, NULL, "2024-03-01T12:34", "2024-03-01 12:34:00");
    type_ok(a, T, 0, 0, NULL, "2024-03-01", "2024-03-01 00:00:00");
    type_ok(a, T, 0, 0, NULL, "2024-03-01T12:34:56Z",
            "2024-03-01 12:34:56+00:00");
    type_ok(a, T, 0, 0, NULL, "2024-03-01T12:34:56+05:30",
            "2024-03-01 12:34:56+05:30");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56-0800",
            "2024-03-01 12:34:56-08:00");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34+02",
            "2024-03-01 12:34:00+02:00");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56 -03:30",
            "2024-03-01 12:34:56-03:30");
}

static void test_rules_timestamp_fractions(void **state)
{
    ig_arena *a = *state;
    const ig_type T = IG_TYPE_TIMESTAMP;

    type_ok(a, T, 0, 0, NULL, "2024-03-01T12:34:56.5Z",
            "2024-03-01 12:34:56.5+00:00");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.000123",
            "2024-03-01 12:34:56.000123");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.120",
            "2024-03-01 12:34:56.12");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.000", "2024-03-01 12:34:56");
    /* Beyond microseconds PostgreSQL rounds as rint(strtod(".digits") *
     * 1e6) does, ties to even through the double; so do we, carrying
     * over (what PostgreSQL 15 stores for each). */
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.1234565",
            "2024-03-01 12:34:56.123456");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.0000005",
            "2024-03-01 12:34:56");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.0000015",
            "2024-03-01 12:34:56.000002");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.5055755",
            "2024-03-01 12:34:56.505575");
    type_ok(a, T, 0, 0, NULL, "2024-03-01 12:34:56.00000050001",
            "2024-03-01 12:34:56.000001");
    type_ok(a, T, 0, 0, NULL, "2024-12-31 23:59:59.9999995",
            "2025-01-01 00:00:00");
}

/* Up to six digits the rules read a fraction's digits as they are, where
 * PostgreSQL computes rint(strtod(".digits") * 1e6): the same, for every
 * 1-4 digit fraction and 5-6 digit ones at a stride. */
static void test_rules_timestamp_short_fractions_exact(void **state)
{
    ig_arena *a = *state;
    static const long stride[] = {0, 1, 1, 1, 1, 37, 37};
    long tried = 0;

    for (int n = 1; n <= 6; n++) {
        long top = 1;
        for (int k = 0; k < n; k++)
            top *= 10;
        for (long v = 0; v < top; v += stride[n]) {
            char in[64], want[64], frac[16];
            long us;

            snprintf(frac, sizeof(frac), ".%0*ld", n, v);
            us = (long)rint(strtod(frac, NULL) * 1e6); /* PostgreSQL's */
            snprintf(in, sizeof(in), "2024-03-01 12:34:56%s", frac);
            if (us == 0) {
                snprintf(want, sizeof(want), "2024-03-01 12:34:56");
            } else {
                size_t len;
                snprintf(want, sizeof(want), "2024-03-01 12:34:56.%06ld", us);
                len = strlen(want);
                while (want[len - 1] == '0')
                    want[--len] = '\0';
            }
            ig_arena_reset(a);
            type_ok(a, IG_TYPE_TIMESTAMP, 0, 0, NULL, in, want);
            tried++;
        }
    }
    assert_true(tried > 10000);
}

static void test_rules_timestamp_rollovers_like_postgres(void **state)
{
    ig_arena *a = *state;
    const ig_type T = IG_TYPE_TIMESTAMP;

    type_ok(a, T, 0, 0, NULL, "2024-02-28 24:00:00", "2024-02-29 00:00:00");
    type_ok(a, T, 0, 0, NULL, "2016-12-31 23:59:60Z",
            "2017-01-01 00:00:00+00:00");
    type_bad(a, T, 0, 0, NULL, "2024-02-28 24:00:01", "type",
             "not a valid timestamp");
    /* PostgreSQL refuses offset minutes past 59 rather than carry them */
    type_bad(a, T, 0, 0, NULL, "2024-02-28 10:00:00+05:75", "type",
             "not a valid timestamp");
    type_ok(a, T, 0, 0, NULL, "2024-02-28 10:00:00+05:59",
            "2024-02-28 10:00:00+05:59");
}

static void test_rules_timestamp_rejects_malformed(void **state)
{
    static const char *const bad[] = {"2024-03-01 25:00",
                                      "2024-03-01 12:60",
                                      "2024-03-01 12:00:61",
                                      "2023-02-29 10:00",
                                      "2024-03-01 12:00+16:00",
                                      "2024-03-01 12:00:00.",
                                      "2024-03-01 12:00:00 x",
                                      "2024-03-01X12:00",
                                      "2024-03-01 12",
                                      "2024-03-01 12:00+2",
                                      "12:00",
                                      "",
                                      "2024-03-01 12:00+02:",
                                      "2024-03-01 12:00:00.5ZZ"};
    size_t i;

    type_bad(*state, IG_TYPE_TIMESTAMP, 0, 0, NULL, "2024-13-01 10:00", "type",
             "\"2024-13-01 10:00\" is not a valid timestamp (expected "
             "YYYY-MM-DD HH:MM[:SS[.ffffff]][+HH:MM])");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        type_bad(*state, IG_TYPE_TIMESTAMP, 0, 0, NULL, bad[i], "type",
                 "is not a valid timestamp");
}

static void test_rules_timestamp_custom_format(void **state)
{
    ig_arena *a = *state;
    const ig_type T = IG_TYPE_TIMESTAMP;

    type_ok(a, T, 0, 0, "%d/%m/%Y %H:%M", "31/12/2024 23:05",
            "2024-12-31 23:05:00");
    type_ok(a, T, 0, 0, "%d/%m/%Y %H:%M:%S %z", "01/07/2024 08:00:00 +0200",
            "2024-07-01 08:00:00+02:00");
    type_ok(a, T, 0, 0, "%d/%m/%Y %H:%M:%S%z", "01/07/2024 08:00:00-01:30",
            "2024-07-01 08:00:00-01:30");
    type_ok(a, T, 0, 0, "%d %b %Y %H:%M", "05 Jan 2024 10:00",
            "2024-01-05 10:00:00");
    type_bad(a, T, 0, 0, "%d/%m/%Y %H:%M", "31/04/2024 10:00", "type",
             "(expected %d/%m/%Y %H:%M)");
}

/* %Y wants the whole year: glibc's strptime reads "25" as the year 25. */
static void test_rules_format_year_needs_four_digits(void **state)
{
    ig_arena *a = *state;

    type_bad(a, IG_TYPE_DATE, 0, 0, "%d/%m/%Y", "3/4/25", "type",
             "\"3/4/25\" has a year before 1000 where "
             "%d/%m/%Y reads %Y (use %y for a two-digit year)");
    type_bad(a, IG_TYPE_DATE, 0, 0, "%d/%m/%Y", "03/04/202", "type",
             "a year before 1000");
    type_bad(a, IG_TYPE_TIMESTAMP, 0, 0, "%d/%m/%Y %H:%M", "03/04/25 14:30",
             "type", "a year before 1000");
    /* Four digits, but before 1000: the message must not say "fewer". */
    type_bad(a, IG_TYPE_DATE, 0, 0, "%d/%m/%Y", "01/01/0999", "type",
             "\"01/01/0999\" has a year before 1000");
    type_ok(a, IG_TYPE_DATE, 0, 0, "%d/%m/%Y", "3/4/2025", "2025-04-03");
    type_ok(a, IG_TYPE_DATE, 0, 0, "%d/%m/%y", "3/4/25", "2025-04-03");
    type_ok(a, IG_TYPE_DATE, 0, 0, "%Y%m%d", "20250403", "2025-04-03");
}

static void test_rules_uuid_forms_become_lowercase_hyphenated(void **state)
{
    ig_arena *a = *state;
    const char *want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    ig_value out;
    ig_rule_fail f;

    type_ok(a, IG_TYPE_UUID, 0, 0, NULL, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            want);
    type_ok(a, IG_TYPE_UUID, 0, 0, NULL, "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            want);
    type_ok(a, IG_TYPE_UUID, 0, 0, NULL,
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", want);
    type_ok(a, IG_TYPE_UUID, 0, 0, NULL, " {A0EEBC999C0B4EF8BB6D6BB9BD380A11} ",
            want);
    /* Already canonical: the input itself. */
    assert_int_equal(
        ig_rules_type(IG_TYPE_UUID, 0, 0, NULL, V(want), a, &out, &f), IG_OK);
    assert_ptr_equal(out.p, want);
}

static void test_rules_uuid_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",   /* 31 digits */
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", /* 33 digits */
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  /* not hex */
        "a0eebc999-c0b-4ef8-bb6d-6bb9bd380a11",  /* hyphen misplaced */
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", /* unbalanced brace */
        "",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        type_bad(*state, IG_TYPE_UUID, 0, 0, NULL, bad[i], "type",
                 "is not a UUID");
}

static void test_rules_json_valid_passes_original_text(void **state)
{
    static const char *const ok[] = {"{\"a\": [1, 2.5, null, true]}",
                                     "\"str\"",
                                     "42",
                                     "null",
                                     " [ ] ",
                                     "{\"a\":1,\"a\":2}",
                                     "123456789012345678901234567890",
                                     /* beyond a double: jsonb takes it */
                                     "1e400",
                                     "{\"a\": [1e400, -2E+999, \"1e400\"]}"};
    ig_value out;
    ig_rule_fail f;
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (ig_rules_type(IG_TYPE_JSON, 0, 0, NULL, V(ok[i]), *state, &out,
                          &f) != IG_OK)
            fail_msg("'%s' rejected: %s", ok[i], f.msg);
        assert_ptr_equal(out.p, ok[i]);
    }
}

static void test_rules_json_invalid_rejected(void **state)
{
    static const char *const bad[] = {"{a:1}", "[1,]",        "",   "{\"a\":1",
                                      "'x'",   "\"\\u0000\"", "1 2",
                                      "[1e400,]", "{\"a\": 1e400 2}"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        type_bad(*state, IG_TYPE_JSON, 0, 0, NULL, bad[i], "type",
                 "is not valid JSON");
}

static void test_rules_json_nul_byte_rejected(void **state)
{
    ig_value out;
    ig_rule_fail f;

    /* jsonb cannot hold NUL; jansson must not stop reading at it. */
    assert_int_equal(ig_rules_type(IG_TYPE_JSON, 0, 0, NULL,
                                   (ig_value){"1\0x", 3, 0}, *state, &out, &f),
                     IG_DATA);
    assert_string_equal(f.code, "type");
}

static void test_rules_canonical_input_not_copied(void **state)
{
    static const char *const same[] = {"12.50", "-7", "2024-01-31",
                                       "2024-01-31 10:00:00+01:00"};
    static const ig_type types[] = {IG_TYPE_NUMERIC, IG_TYPE_INT, IG_TYPE_DATE,
                                    IG_TYPE_TIMESTAMP};
    ig_arena *a = *state;
    size_t used = ig_arena_used(a), i;
    ig_value out;
    ig_rule_fail f;

    for (i = 0; i < 4; i++) {
        assert_int_equal(
            ig_rules_type(types[i], 0, 0, NULL, V(same[i]), a, &out, &f),
            IG_OK);
        assert_ptr_equal(out.p, same[i]);
    }
    assert_int_equal(ig_arena_used(a), used);
}

static void test_rules_fail_may_be_null(void **state)
{
    ig_column c = column(IG_TYPE_INT);
    ig_value out;

    c.rules.required = 1;
    assert_int_equal(
        ig_rules_type(IG_TYPE_INT, 0, 0, NULL, V("x"), *state, &out, NULL),
        IG_DATA);
    assert_int_equal(ig_rules_value(&c, IG_VALUE_NULL, *state, &out, NULL),
                     IG_DATA);
}

static void test_rules_type_null_passes_through(void **state)
{
    ig_value out;
    ig_rule_fail f;

    assert_int_equal(
        ig_rules_type(IG_TYPE_INT, 0, 0, NULL, IG_VALUE_NULL, *state, &out, &f),
        IG_OK);
    assert_int_equal(out.is_null, 1);
}

/* ------------------------------------------------------------------ */
/* Rules through ig_rules_value                                        */

static void test_rules_value_required_rejects_null(void **state)
{
    static const char *const nulls[] = {"-"};
    ig_xform xf = {IG_XFORM_NULL_IF, nulls, NULL, 1, NULL, 0};
    ig_column c = column(IG_TYPE_TEXT);
    ig_value out;
    ig_rule_fail f;

    c.rules.required = 1;
    assert_int_equal(ig_rules_value(&c, IG_VALUE_NULL, *state, &out, &f),
                     IG_DATA);
    assert_string_equal(f.code, "required");
    assert_string_equal(f.msg, "a value is required");
    /* NULL made by a transform counts too. */
    c.xforms = &xf;
    c.n_xforms = 1;
    value_bad(*state, &c, "-", "required", "a value is required");
    /* Empty text (an empty field without "" in null_markers, or spaces
     * after trim) is no value either; without `required` it stays empty
     * text. */
    value_bad(*state, &c, "", "required",
              "a value is required (the value is empty)");
    c.xforms = NULL;
    c.n_xforms = 0;
    value_bad(*state, &c, "", "required",
              "a value is required (the value is empty)");
    c.rules.required = 0;
    value_ok(*state, &c, "", "");
}

static void test_rules_value_required_rejects_spaces_after_trim(void **st)
{
    ig_xform xf = {IG_XFORM_TRIM, NULL, NULL, 0, NULL, 0};
    ig_column c = column(IG_TYPE_TEXT);

    c.rules.required = 1;
    c.xforms = &xf;
    c.n_xforms = 1;
    value_bad(*st, &c, "   ", "required",
              "a value is required (the value is empty)");
    value_bad(*st, &c, "\xc2\xa0\t", "required",
              "a value is required (the value is empty)");
    value_ok(*st, &c, " x ", "x");
}

static void test_rules_value_null_skips_other_rules(void **state)
{
    static const char *const sizes[] = {"S", "M"};
    ig_column c = column(IG_TYPE_INT);
    ig_value out = V("x");
    ig_rule_fail f;

    c.rules.min_length = 3;
    c.rules.min_value = "10";
    c.rules.enum_values = sizes;
    c.rules.n_enum = 2;
    assert_int_equal(ig_rules_value(&c, IG_VALUE_NULL, *state, &out, &f),
                     IG_OK);
    assert_int_equal(out.is_null, 1);
}

static void test_rules_value_default_satisfies_required(void **state)
{
    ig_xform xf[] = {{IG_XFORM_TRIM, NULL, NULL, 0, NULL, 0},
                     {IG_XFORM_DEFAULT, NULL, NULL, 0, "0", 0}};
    ig_column c = column(IG_TYPE_INT);
    ig_value out;
    ig_rule_fail f;

    c.rules.required = 1;
    c.xforms = xf;
    c.n_xforms = 2;
    value_ok(*state, &c, "  ", "0");
    assert_int_equal(ig_rules_value(&c, IG_VALUE_NULL, *state, &out, &f),
                     IG_OK);
    assert_text(out, "0");
}

static void test_rules_value_type_failure_has_code_type(void **state)
{
    ig_column c = column(IG_TYPE_NUMERIC);

    c.precision = 10;
    c.scale = 2;
    value_bad(*state, &c, "12,5", "type", "\"12,5\" is not a number");
    value_ok(*state, &c, "12.345", "12.35"); /* rounded, like PostgreSQL */
}

static void test_rules_value_max_length_counts_characters(void **state)
{
    ig_column c = column(IG_TYPE_TEXT);

    c.rules.max_length = 5;
    value_ok(*state, &c, "Crème", "Crème"); /* 6 bytes, 5 characters */
    value_bad(*state, &c, "abcdefg", "max_length",
              "\"abcdefg\" is 7 characters long, at most 5 allowed");
    value_bad(*state, &c, "Crèmes", "max_length",
              "\"Crèmes\" is 6 characters long, at most 5 allowed");
}

static void test_rules_value_min_length_counts_characters(void **state)
{
    ig_column c = column(IG_TYPE_TEXT);

    c.rules.min_length = 3;
    value_ok(*state, &c, "été", "été");
    value_bad(*state, &c, "ab", "min_length",
              "\"ab\" is 2 characters long, at least 3 required");
}

static void test_rules_value_min_max_numeric_exact(void **state)
{
    ig_column c = column(IG_TYPE_NUMERIC);

    c.rules.min_value = "9.75";
    value_ok(*state, &c, "10.5", "10.5"); /* 10.5 > 9.75 though "1" < "9" */
    value_ok(*state, &c, "9.750", "9.750");
    value_bad(*state, &c, "9.7499", "min",
              "\"9.7499\" is less than the minimum 9.75");
    c.rules.min_value = "0";
    value_bad(*state, &c, "-1", "min", NULL);
    value_bad(*state, &c, "-0.001", "min", NULL);
    value_ok(*state, &c, "-0.000", "0.000");
    c.rules.min_value = "-10";
    value_ok(*state, &c, "-9.99", "-9.99");
    value_bad(*state, &c, "-10.01", "min", NULL);
    c.rules.max_value = "1e3";
    value_ok(*state, &c, "999.999", "999.999");
    value_ok(*state, &c, "1000.000", "1000.000");
    value_bad(*state, &c, "1000.0001", "max",
              "\"1000.0001\" is greater than the maximum 1e3");
}

static void test_rules_value_min_max_integers(void **state)
{
    ig_column c = column(IG_TYPE_BIGINT);

    c.rules.min_value = "-5";
    c.rules.max_value = "100";
    value_ok(*state, &c, "+100", "100");
    value_ok(*state, &c, "-5", "-5");
    value_bad(*state, &c, "101", "max", NULL);
    value_bad(*state, &c, "-6", "min", NULL);
    value_bad(*state, &c, "9223372036854775807", "max", NULL);
}

static void test_rules_value_min_max_dates(void **state)
{
    ig_column c = column(IG_TYPE_DATE);

    c.date_format = "%d/%m/%Y"; /* bounds stay ISO, as written in YAML */
    c.rules.min_value = "2000-01-01";
    c.rules.max_value = "2024-12-31";
    value_ok(*state, &c, "01/01/2000", "2000-01-01");
    value_ok(*state, &c, "31/12/2024", "2024-12-31");
    value_bad(*state, &c, "31/12/1999", "min",
              "\"1999-12-31\" is less than the minimum 2000-01-01");
    value_bad(*state, &c, "01/01/2025", "max", NULL);
}

static void test_rules_value_min_max_timestamps_chronological(void **state)
{
    ig_column c = column(IG_TYPE_TIMESTAMP);

    c.rules.min_value = "2024-01-01T00:00:00Z";
    /* 01:00 at +02:00 is 23:00 UTC the day before. */
    value_bad(*state, &c, "2024-01-01 01:00+02:00", "min", NULL);
    value_ok(*state, &c, "2023-12-31 19:00-05:00", "2023-12-31 19:00:00-05:00");
    value_bad(*state, &c, "2023-12-31 18:59:59.999999-05:00", "min", NULL);
    c.rules.min_value = NULL;
    c.rules.max_value = "2024-06-30";
    value_ok(*state, &c, "2024-06-30T00:00:00", "2024-06-30 00:00:00");
    value_bad(*state, &c, "2024-06-30T00:00:00.000001", "max", NULL);
}

static void test_rules_value_bad_bound_is_reported(void **state)
{
    ig_column c = column(IG_TYPE_INT);

    c.rules.max_value = "ten";
    value_bad(*state, &c, "5", "max",
              "the max bound \"ten\" is not a valid int");
}

static void test_rules_value_min_max_text_by_bytes(void **state)
{
    ig_column c = column(IG_TYPE_TEXT);

    c.rules.min_value = "B";
    c.rules.max_value = "M";
    value_ok(*state, &c, "Bob", "Bob");
    value_bad(*state, &c, "Alice", "min", NULL);
    value_bad(*state, &c, "b", "max", NULL); /* 'b' > 'M' in bytes */
}

static void test_rules_value_enum_exact(void **state)
{
    static const char *const sizes[] = {"S", "M", "L"};
    ig_column c = column(IG_TYPE_TEXT);

    c.rules.enum_values = sizes;
    c.rules.n_enum = 3;
    value_ok(*state, &c, "M", "M");
    value_bad(*state, &c, "m", "enum", "\"m\" is not one of: S, M, L");
    value_bad(*state, &c, "XL", "enum", NULL);
}

static void
test_rules_value_enum_case_insensitive_takes_enum_spelling(void **state)
{
    static const char *const vals[] = {"XL", "École", "Ñandú"};
    ig_column c = column(IG_TYPE_TEXT);
    ig_value out;
    ig_rule_fail f;

    c.rules.enum_values = vals;
    c.rules.n_enum = 3;
    c.rules.enum_case_insensitive = 1;
    value_ok(*state, &c, "xl", "XL");
    value_ok(*state, &c, "ÉCOLE", "École");
    value_ok(*state, &c, "ñandú", "Ñandú");
    value_bad(*state, &c, "xxl", "enum", NULL);
    assert_int_equal(ig_rules_value(&c, V("xL"), *state, &out, &f), IG_OK);
    assert_ptr_equal(out.p, vals[0]); /* borrowed from the pipeline */
}

static void test_rules_value_enum_compares_canonical_values(void **state)
{
    static const char *const vals[] = {"1", "2", "3"};
    ig_column c = column(IG_TYPE_INT);

    c.rules.enum_values = vals;
    c.rules.n_enum = 3;
    value_ok(*state, &c, " +02", "2");
    value_bad(*state, &c, "4", "enum", "\"4\" is not one of: 1, 2, 3");
}

static void test_rules_value_pattern_matches_canonical_value(void **state)
{
    ig_column c = column(IG_TYPE_UUID);
    regex_t re;

    assert_int_equal(regcomp(&re, "^[0-9a-f-]+$", REG_EXTENDED | REG_NOSUB), 0);
    c.rules.pattern = "^[0-9a-f-]+$";
    c.rules.pattern_re = &re;
    /* Upper-case input matches because the canonical uuid is lowercase. */
    value_ok(*state, &c, "A0EEBC999C0B4EF8BB6D6BB9BD380A11",
             "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    c.type = IG_TYPE_TEXT;
    value_bad(*state, &c, "SKU-1", "pattern",
              "\"SKU-1\" does not match the pattern ^[0-9a-f-]+$");
    regfree(&re);
}

static void test_rules_value_message_quote_cut_at_utf8_boundary(void **st)
{
    char in[200], want_prefix[80];
    ig_column c = column(IG_TYPE_TEXT);
    ig_value out;
    ig_rule_fail f;
    const char *end;
    size_t i;

    /* "a" then 99 "é": byte 64 falls in the middle of an "é". */
    in[0] = 'a';
    for (i = 0; i < 99; i++)
        memcpy(in + 1 + 2 * i, "\xC3\xA9", 2);
    in[199] = '\0';
    c.rules.max_length = 10;
    assert_int_equal(ig_rules_value(&c, V(in), *st, &out, &f), IG_DATA);
    assert_string_equal(f.code, "max_length");
    end = strstr(f.msg, "...\" is 100 characters long, at most 10 allowed");
    assert_non_null(end);
    /* Quote + "a" + 31 whole "é" = 63 bytes of value. */
    assert_int_equal(end - f.msg, 1 + 63);
    snprintf(want_prefix, sizeof(want_prefix), "\"%.63s", in);
    assert_memory_equal(f.msg, want_prefix, 64);
    assert_true(ig_utf8_len(f.msg, strlen(f.msg)) > 0);
}

/* A value that differs from an accepted one only by an invisible
 * character must not read the same in the message. */
static void test_rules_message_shows_invisible_characters(void **state)
{
    ig_arena *a = *state;

    type_bad(a, IG_TYPE_INT, 0, 0, NULL, "\xC2\xA0" "12", "type",
             "\"\\u00A012\" is not");
    type_bad(a, IG_TYPE_INT, 0, 0, NULL, "1\t2\x01", "type",
             "\"1\\t2\\x01\" is not");
    type_bad(a, IG_TYPE_INT, 0, 0, NULL, "12\xE2\x80\x8B", "type",
             "\"12\\u200B\" is not");
    type_bad(a, IG_TYPE_INT, 0, 0, NULL, "caf\xC3\xA9", "type",
             "\"caf\xC3\xA9\" is not");
}

/* However a long message is cut to fit, it stays UTF-8 (it is stored in
 * text columns): a quoted value full of escapes, then an enum list of
 * accented names, the cut moved through twelve byte positions. */
static void test_rules_cut_message_stays_utf8(void **st)
{
    static const char *const towns[] = {
        "Gen\xC3\xA8" "ve",  "Z\xC3\xBCrich",  "M\xC3\xBCnchen",
        "K\xC3\xB8" "benhavn", "Malm\xC3\xB6", "Tr\xC3\xB8" "ndelag",
        "G\xC3\xB6" "teborg", "Li\xC3\xA8ge",  "S\xC3\xA8te"};
    ig_column c = column(IG_TYPE_TEXT);
    char in[80];
    ig_value out;
    ig_rule_fail f;

    c.rules.enum_values = towns;
    c.rules.n_enum = sizeof(towns) / sizeof(towns[0]);
    for (size_t pad = 0; pad < 12; pad++) {
        size_t n = 0;

        for (size_t i = 0; i < pad; i++)
            in[n++] = 'x';
        while (n + 2 <= 64) { /* non-breaking spaces, shown as \u00A0 */
            in[n++] = '\xC2';
            in[n++] = '\xA0';
        }
        in[n] = '\0';
        assert_int_equal(ig_rules_value(&c, V(in), *st, &out, &f), IG_DATA);
        assert_string_equal(f.code, "enum");
        if (ig_utf8_len(f.msg, strlen(f.msg)) < 0)
            fail_msg("pad %zu: message is not UTF-8: %s", pad, f.msg);
    }
}

static void test_rules_value_runs_xforms_type_then_rules(void **state)
{
    ig_xform xf[] = {{IG_XFORM_UPPER, NULL, NULL, 0, NULL, 0}};
    static const char *const sizes[] = {"T", "F"};
    ig_column c = column(IG_TYPE_BOOL);

    /* "yes" -> upper "YES" -> bool "t" -> enum must see "t", not "YES". */
    c.xforms = xf;
    c.n_xforms = 1;
    c.rules.enum_values = sizes;
    c.rules.n_enum = 2;
    c.rules.enum_case_insensitive = 1;
    value_ok(*state, &c, "yes", "T");
    c.rules.max_length = 1;
    value_ok(*state, &c, "false", "F");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_utf8_len_counts_code_points),
        cmocka_unit_test(test_rules_utf8_len_accepts_every_boundary),
        cmocka_unit_test(test_rules_utf8_len_rejects_malformed),
        cmocka_unit_test(test_rules_trim_whitespace_nbsp_and_unicode_spaces),
        cmocka_unit_test(test_rules_trim_avoids_copies),
        cmocka_unit_test(test_rules_collapse_spaces_runs_become_one_space),
        cmocka_unit_test(test_rules_collapse_spaces_single_spaces_not_copied),
        cmocka_unit_test(test_rules_lower_ascii_and_latin1),
        cmocka_unit_test(test_rules_upper_ascii_latin1_and_beyond),
        cmocka_unit_test(test_rules_case_leaves_other_code_points_valid),
        cmocka_unit_test(test_rules_case_unchanged_not_copied),
        cmocka_unit_test(test_rules_strip_control_removes_c0_del_and_c1),
        cmocka_unit_test(test_rules_strip_control_clean_not_copied),
        cmocka_unit_test(test_rules_replace_exact_match_only),
        cmocka_unit_test(test_rules_null_if_listed_values_become_null),
        cmocka_unit_test(test_rules_default_fills_null_and_empty),
        cmocka_unit_test(test_rules_null_passes_through_all_but_default),
        cmocka_unit_test(test_rules_xforms_run_in_declaration_order),
        cmocka_unit_test(test_rules_type_text_requires_utf8),
        cmocka_unit_test(test_rules_int_edges),
        cmocka_unit_test(test_rules_int_canonical_forms),
        cmocka_unit_test(test_rules_int_rejects_non_integers),
        cmocka_unit_test(test_rules_bigint_edges),
        cmocka_unit_test(test_rules_numeric_canonical_keeps_written_scale),
        cmocka_unit_test(test_rules_numeric_scale_rounds_half_away_from_zero),
        cmocka_unit_test(test_rules_numeric_precision_overflow),
        cmocka_unit_test(
            test_rules_numeric_precision_without_scale_rounds_to_integer),
        cmocka_unit_test(test_rules_numeric_exponents_are_expanded),
        cmocka_unit_test(test_rules_numeric_rejects_non_decimals),
        cmocka_unit_test(test_rules_numeric_long_values_are_exact),
        cmocka_unit_test(test_rules_bool_spellings),
        cmocka_unit_test(test_rules_bool_rejects_others),
        cmocka_unit_test(test_rules_date_iso_and_leap_years),
        cmocka_unit_test(test_rules_date_rejects_impossible_and_malformed),
        cmocka_unit_test(test_rules_date_custom_format),
        cmocka_unit_test(test_rules_timestamp_iso_forms),
        cmocka_unit_test(test_rules_timestamp_fractions),
        cmocka_unit_test(test_rules_timestamp_short_fractions_exact),
        cmocka_unit_test(test_rules_utf8_scrub),
        cmocka_unit_test(test_rules_timestamp_rollovers_like_postgres),
        cmocka_unit_test(test_rules_timestamp_rejects_malformed),
        cmocka_unit_test(test_rules_timestamp_custom_format),
        cmocka_unit_test(test_rules_format_year_needs_four_digits),
        cmocka_unit_test(test_rules_uuid_forms_become_lowercase_hyphenated),
        cmocka_unit_test(test_rules_uuid_rejects_malformed),
        cmocka_unit_test(test_rules_json_valid_passes_original_text),
        cmocka_unit_test(test_rules_json_invalid_rejected),
        cmocka_unit_test(test_rules_json_nul_byte_rejected),
        cmocka_unit_test(test_rules_canonical_input_not_copied),
        cmocka_unit_test(test_rules_fail_may_be_null),
        cmocka_unit_test(test_rules_type_null_passes_through),
        cmocka_unit_test(test_rules_value_required_rejects_null),
        cmocka_unit_test(test_rules_value_required_rejects_spaces_after_trim),
        cmocka_unit_test(test_rules_value_null_skips_other_rules),
        cmocka_unit_test(test_rules_value_default_satisfies_required),
        cmocka_unit_test(test_rules_value_type_failure_has_code_type),
        cmocka_unit_test(test_rules_value_max_length_counts_characters),
        cmocka_unit_test(test_rules_value_min_length_counts_characters),
        cmocka_unit_test(test_rules_value_min_max_numeric_exact),
        cmocka_unit_test(test_rules_value_min_max_integers),
        cmocka_unit_test(test_rules_value_min_max_dates),
        cmocka_unit_test(test_rules_value_min_max_timestamps_chronological),
        cmocka_unit_test(test_rules_value_bad_bound_is_reported),
        cmocka_unit_test(test_rules_value_min_max_text_by_bytes),
        cmocka_unit_test(test_rules_value_enum_exact),
        cmocka_unit_test(
            test_rules_value_enum_case_insensitive_takes_enum_spelling),
        cmocka_unit_test(test_rules_value_enum_compares_canonical_values),
        cmocka_unit_test(test_rules_value_pattern_matches_canonical_value),
        cmocka_unit_test(test_rules_value_message_quote_cut_at_utf8_boundary),
        cmocka_unit_test(test_rules_message_shows_invisible_characters),
        cmocka_unit_test(test_rules_cut_message_stays_utf8),
        cmocka_unit_test(test_rules_value_runs_xforms_type_then_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
