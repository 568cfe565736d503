/*
 * test_pipeline.c - the pipeline loader: every shipped pipeline loads into
 * the expected descriptors, defaults apply, each broken fixture in
 * tests/data/pipelines/broken/ fails with its exact file:line:col message,
 * all problems reach the diag callback, and docs/pipelines.md documents
 * exactly the keys of the loader's key tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline.h"

#define PIPELINES TEST_SOURCE_DIR "/pipelines"
#define BROKEN_DIR TEST_DATA_DIR "/pipelines/"

static ig_pipeline *load_ok(const char *path)
{
    ig_pipeline_opts o;
    ig_err err;
    ig_pipeline *p;

    memset(&o, 0, sizeof(o));
    o.lua_dir = TEST_SOURCE_DIR "/lua";
    p = ig_pipeline_load(path, &o, &err);
    if (p == NULL)
        fail_msg("%s: %s", path, err.msg);
    return p;
}

static const ig_column *col(const ig_target *t, const char *name)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    fail_msg("no column %s in %s", name, t->name);
    return NULL;
}

static void test_pipeline_items_targets_and_keys(void **state)
{
    ig_pipeline *p = load_ok(PIPELINES "/items.yaml");
    static const char *const names[] = {"item_master", "color_master",
                                        "size_master", "item_variant"};
    const ig_target *v;
    (void)state;

    assert_string_equal(ig_pipeline_name(p), "items");
    assert_non_null(strstr(ig_pipeline_description(p), "variant"));
    assert_int_equal(ig_pipeline_ntargets(p), 4);
    for (size_t i = 0; i < 4; i++) {
        const ig_target *t = ig_pipeline_target(p, i);
        assert_string_equal(t->name, names[i]);
        assert_string_equal(t->table, names[i]);
        assert_string_equal(t->key_predicate, "deleted_at IS NULL");
        assert_string_equal(t->touch, "updated_at");
        assert_int_equal(t->on_conflict, IG_ON_CONFLICT_UPDATE);
        assert_int_equal(t->duplicates, i < 3 ? IG_DUPLICATES_LAST
                                              : IG_DUPLICATES_ERROR);
        assert_null(t->guard);
    }
    assert_null(ig_pipeline_target(p, 4));
    v = ig_pipeline_target(p, 3);
    assert_int_equal(v->n_key, 3);
    assert_string_equal(v->key[0], "item_id");
    assert_string_equal(v->key[2], "size_id");
    assert_true(col(v, "item_id")->is_key);
    assert_false(col(v, "item_id")->update);
    assert_false(col(v, "sku")->is_key);
    assert_true(col(v, "sku")->update);
    assert_int_equal(ig_pipeline_ncolumns(p), 13);
    ig_pipeline_free(p);
}

static void test_pipeline_items_lookups_resolve_to_earlier_targets(void **s)
{
    ig_pipeline *p = load_ok(PIPELINES "/items.yaml");
    const ig_target *v = ig_pipeline_target(p, 3);
    const ig_column *item = col(v, "item_id"), *color = col(v, "color_id");
    (void)s;

    assert_int_equal(item->source, IG_COLSRC_LOOKUP);
    assert_int_equal(item->type, IG_TYPE_BIGINT);
    assert_int_equal(item->lookup.target, 0);
    assert_string_equal(item->lookup.table, "item_master");
    assert_string_equal(item->lookup.key, "name");
    assert_string_equal(item->lookup.id, "id");
    assert_string_equal(item->lookup.from, "item_name");
    assert_int_equal(item->lookup.from_index, -1);
    assert_string_equal(item->lookup.predicate, "deleted_at IS NULL");
    /* the parent's key transforms apply to the natural key */
    assert_int_equal(item->lookup.n_xforms, 2);
    assert_int_equal(item->lookup.xforms[1].kind, IG_XFORM_COLLAPSE_SPACES);
    assert_int_equal(color->lookup.target, 1);
    assert_string_equal(color->lookup.key, "color_name");
    assert_string_equal(color->lookup.from, "color");
    assert_int_equal(col(v, "size_id")->lookup.target, 2);
    /* item, colour and size are looked up by the variant; it by none */
    for (size_t t = 0; t < 3; t++)
        assert_true(ig_pipeline_is_parent(p, t));
    assert_false(ig_pipeline_is_parent(p, 3));
    ig_pipeline_free(p);
}

static void test_pipeline_items_columns_xforms_rules(void **state)
{
    ig_pipeline *p = load_ok(PIPELINES "/items.yaml");
    const ig_target *im = ig_pipeline_target(p, 0);
    const ig_target *cm = ig_pipeline_target(p, 1);
    const ig_target *v = ig_pipeline_target(p, 3);
    const ig_column *c;
    (void)state;

    c = col(im, "name");
    assert_int_equal(c->source, IG_COLSRC_FROM);
    assert_string_equal(c->from, "item_name");
    assert_int_equal(c->type, IG_TYPE_TEXT);
    assert_true(c->rules.required);
    assert_int_equal(c->rules.min_length, 1);
    assert_int_equal(c->rules.max_length, 200);
    assert_int_equal(col(im, "description")->update_rule, IG_UPDATE_COALESCE);
    assert_int_equal(col(im, "category")->update_rule, IG_UPDATE_OVERWRITE);
    assert_int_equal(col(im, "category")->rules.min_length, -1);

    c = col(cm, "color_code");
    assert_string_equal(c->rules.pattern, "^#[0-9A-F]{6}$");
    assert_non_null(c->rules.pattern_re);
    assert_int_equal(regexec(c->rules.pattern_re, "#A0B1C2", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(c->rules.pattern_re, "#a0b1c2", 0, NULL, 0),
                         0);
    assert_int_equal(c->n_xforms, 2);
    assert_int_equal(c->xforms[1].kind, IG_XFORM_UPPER);

    c = col(v, "price");
    assert_int_equal(c->type, IG_TYPE_NUMERIC);
    assert_int_equal(c->precision, 12);
    assert_int_equal(c->scale, 2);
    assert_string_equal(c->rules.min_value, "0");
    assert_null(c->rules.max_value);
    c = col(v, "stock");
    assert_int_equal(c->type, IG_TYPE_INT);
    assert_int_equal(c->n_xforms, 2); /* trim, then default: "0" */
    assert_int_equal(c->xforms[0].kind, IG_XFORM_TRIM);
    assert_int_equal(c->xforms[1].kind, IG_XFORM_DEFAULT);
    assert_string_equal(c->xforms[1].value, "0");
    ig_pipeline_free(p);
}

static void test_pipeline_items_source_hooks_inputs(void **state)
{
    ig_pipeline *p = load_ok(PIPELINES "/items.yaml");
    const ig_source *src = ig_pipeline_source(p);
    const ig_hooks_decl *h = ig_pipeline_hooks(p);
    static const char *const inputs[] = {
        "item_name", "description", "category", "brand", "color",
        "color_code", "size", "sku", "price", "stock"};
    (void)state;

    assert_int_equal(src->format, IG_FORMAT_CSV);
    assert_int_equal(src->delimiter, ',');
    assert_int_equal(src->quote, '"');
    assert_true(src->header);
    assert_int_equal(src->n_null_markers, 3);
    assert_string_equal(src->null_markers[2], "\\N");
    assert_int_equal(src->max_field_bytes, 1048576);
    assert_int_equal(src->missing_columns, IG_MISSING_COLUMNS_ERROR);

    assert_string_equal(h->module, "hooks.items");
    assert_non_null(strstr(h->path, "lua/hooks/items.lua"));
    assert_int_equal(access(h->path, R_OK), 0);
    assert_non_null(strstr(h->lua_path, "/?.lua;"));
    assert_int_equal(h->max_instructions, 1000000);
    assert_int_equal(h->max_memory_kb, 32768);
    assert_false(h->has_transform); /* filled by the hook check only */

    assert_int_equal(ig_pipeline_ninputs(p), 10);
    for (size_t i = 0; i < 10; i++)
        assert_string_equal(ig_pipeline_input(p, i), inputs[i]);
    assert_null(ig_pipeline_input(p, 10));
    ig_pipeline_free(p);
}

static void test_pipeline_single_table_pipelines_load(void **state)
{
    static const char *const files[] = {"item_master", "color_master",
                                        "size_master", "item_variant"};
    ig_pipeline_opts o;
    ig_err err;
    (void)state;

    memset(&o, 0, sizeof(o));
    for (size_t i = 0; i < 4; i++) {
        ig_pipeline *p = ig_pipeline_load_named(PIPELINES, files[i], &o,
                                                &err);
        if (p == NULL)
            fail_msg("%s", err.msg);
        assert_int_equal(ig_pipeline_ntargets(p), 1);
        assert_string_equal(ig_pipeline_target(p, 0)->table, files[i]);
        assert_string_equal(ig_pipeline_target(p, 0)->name, files[i]);
        assert_null(ig_pipeline_hooks(p)->module);
        ig_pipeline_free(p);
    }
}

static void test_pipeline_item_variant_looks_up_by_table(void **state)
{
    ig_pipeline *p = load_ok(PIPELINES "/item_variant.yaml");
    const ig_target *t = ig_pipeline_target(p, 0);
    const ig_column *c = col(t, "color_id");
    (void)state;

    assert_int_equal(c->lookup.target, -1);
    /* a lookup into a table no target writes makes no parent target */
    assert_false(ig_pipeline_is_parent(p, 0));
    assert_string_equal(c->lookup.table, "color_master");
    assert_string_equal(c->lookup.key, "color_name");
    assert_string_equal(c->lookup.id, "id");
    assert_string_equal(c->lookup.from, "color");
    assert_string_equal(c->lookup.predicate, "deleted_at IS NULL");
    assert_int_equal(c->lookup.n_xforms, 2);
    assert_string_equal(ig_pipeline_input(p, 0), "item_name");
    assert_string_equal(ig_pipeline_input(p, 1), "color");
    ig_pipeline_free(p);
}

/* Write text to a temp .yaml file; returns its path (static buffer). */
static const char *tmp_yaml(const char *text)
{
    static char path[64];
    int fd;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/ingot-test-plXXXXXX.yaml");
    fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_pipeline_defaults_and_features(void **state)
{
    const char *path = tmp_yaml(
        "targets:\n"
        "  - table: app.things\n"
        "    key: id_code\n"
        "    update_columns: [label]\n"
        "    skip_when_null: [label]\n"
        "    columns:\n"
        "      id_code: { position: 2 }\n"
        "      label:\n"
        "        from: Label\n"
        "        transforms:\n"
        "          - {replace: {tees: T-Shirts, caps: Hats, \"N/A\": null,\n"
        "                       \"n.a.\": ~, none: , nil: \"null\"}, "
        "case_insensitive: true}\n"
        "          - {null_if: [\"N/A\", \"-\"]}\n"
        "      made_on: { from: made, type: date, format: \"%d/%m/%Y\",\n"
        "                 rules: { min: 2000-01-01, max: 2099-12-31 } }\n"
        "      origin: { const: import }\n"
        "      legacy: { const: null, update: never }\n"
        "      kind: { from: kind, rules: { enum: [a, b], "
        "enum_case_insensitive: yes } }\n");
    ig_pipeline *p = load_ok(path);
    const ig_source *src = ig_pipeline_source(p);
    const ig_target *t = ig_pipeline_target(p, 0);
    const ig_column *c;
    (void)state;

    unlink(path);
    assert_int_equal(src->n_null_markers, 1);
    assert_string_equal(src->null_markers[0], "");
    assert_int_equal(src->encoding, IG_ENCODING_UTF8);
    assert_int_equal(src->unknown_columns, IG_UNKNOWN_COLUMNS_IGNORE);
    assert_null(ig_pipeline_hooks(p)->module);
    assert_string_equal(ig_pipeline_description(p), "");
    assert_string_equal(t->name, "app.things");
    assert_int_equal(t->n_key, 1);
    assert_int_equal(t->on_conflict, IG_ON_CONFLICT_UPDATE);
    assert_int_equal(t->duplicates, IG_DUPLICATES_ERROR);
    assert_null(t->touch);
    assert_null(t->key_predicate);
    assert_int_equal(t->n_skip_when_null, 1);

    c = col(t, "id_code");
    assert_int_equal(c->source, IG_COLSRC_FROM);
    assert_null(c->from);
    assert_int_equal(c->from_index, 1);
    c = col(t, "label");
    assert_true(c->update);
    assert_int_equal(c->xforms[0].kind, IG_XFORM_REPLACE);
    assert_int_equal(c->xforms[0].n, 6);
    assert_string_equal(c->xforms[0].from[1], "caps");
    assert_string_equal(c->xforms[0].to[1], "Hats");
    /* A YAML null replaces with SQL NULL (to[i] NULL); quoted, the text. */
    assert_string_equal(c->xforms[0].from[2], "N/A");
    assert_null(c->xforms[0].to[2]);
    assert_null(c->xforms[0].to[3]);
    assert_string_equal(c->xforms[0].from[4], "none");
    assert_null(c->xforms[0].to[4]);
    assert_string_equal(c->xforms[0].to[5], "null");
    assert_true(c->xforms[0].case_insensitive);
    assert_int_equal(c->xforms[1].kind, IG_XFORM_NULL_IF);
    assert_int_equal(c->xforms[1].n, 2);
    assert_string_equal(c->xforms[1].from[0], "N/A");
    c = col(t, "made_on");
    assert_int_equal(c->type, IG_TYPE_DATE);
    assert_string_equal(c->date_format, "%d/%m/%Y");
    assert_false(c->update); /* not in update_columns */
    c = col(t, "origin");
    assert_int_equal(c->source, IG_COLSRC_CONST);
    assert_string_equal(c->constant, "import");
    c = col(t, "legacy");
    assert_int_equal(c->source, IG_COLSRC_CONST);
    assert_null(c->constant);
    assert_false(c->update);
    c = col(t, "kind");
    assert_int_equal(c->rules.n_enum, 2);
    assert_true(c->rules.enum_case_insensitive);
    assert_int_equal(ig_pipeline_ninputs(p), 3); /* Label, made, kind */
    assert_string_equal(ig_pipeline_input(p, 0), "Label");
    ig_pipeline_free(p);
}

/* Each broken fixture and the exact start of its message. */
static const struct {
    const char *file;
    const char *msg;
} broken[] = {
    {"broken/two_documents.yaml", "broken/two_documents.yaml:8:1: "
     "pipeline: a second YAML document: a pipeline is one document"},
    {"broken/syntax.yaml", "broken/syntax.yaml:5:12: yaml: did not find "
     "expected ',' or ']' (while parsing a flow sequence started at line 4, "
     "column 10)"},
    {"broken/unknown_top_key.yaml", "broken/unknown_top_key.yaml:2:1: "
     "taregts: unknown key 'taregts' (did you mean 'targets'?)"},
    {"broken/unknown_column_key.yaml", "broken/unknown_column_key.yaml:7:9: "
     "targets[0].columns.name.transfroms: unknown key 'transfroms' (did you "
     "mean 'transforms'?)"},
    {"broken/bad_type.yaml", "broken/bad_type.yaml:9:15: "
     "targets[0].columns.price.type: unknown type 'nummeric' (did you mean "
     "'numeric'?)"},
    {"broken/bad_on_conflict.yaml", "broken/bad_on_conflict.yaml:4:18: "
     "targets[0].on_conflict: unknown on_conflict 'upsert' (expected update, "
     "ignore or error)"},
    {"broken/duplicate_key.yaml", "broken/duplicate_key.yaml:4:5: "
     "targets[0].table: duplicate key 'table' (first at line 2)"},
    {"broken/unmapped_key.yaml", "broken/unmapped_key.yaml:3:11: "
     "targets[0].key[0]: 'nme' is not a mapped column of this target (did "
     "you mean 'name'?)"},
    {"broken/lookup_later.yaml", "broken/lookup_later.yaml:7:36: "
     "targets[0].columns.item_id.lookup.target: 'item_master' is declared "
     "after this target; targets run in order"},
    {"broken/lookup_unknown.yaml", "broken/lookup_unknown.yaml:11:37: "
     "targets[1].columns.color_id.lookup.target: unknown target "
     "'colr_master' (did you mean 'color_master'?)"},
    {"broken/lookup_multikey.yaml", "broken/lookup_multikey.yaml:10:39: "
     "targets[1].columns.variant_id.lookup.target: target 'item_variant' "
     "has a 2-column key; a lookup needs a single-column key"},
    {"broken/lookup_table_without_key.yaml",
     "broken/lookup_table_without_key.yaml:6:27: "
     "targets[0].columns.brand_id.lookup: a lookup by table needs key"},
    {"broken/bad_identifier.yaml", "broken/bad_identifier.yaml:2:12: "
     "targets[0].table: 'item master' is not a valid identifier"},
    {"broken/quote_in_table.yaml", "broken/quote_in_table.yaml:2:12: "
     "targets[0].table: 'item_master\"; --' is not a valid identifier"},
    {"broken/predicate_semicolon.yaml",
     "broken/predicate_semicolon.yaml:4:20: targets[0].key_predicate: must "
     "be a single SQL expression; ';' is not allowed"},
    {"broken/guard_comment.yaml", "broken/guard_comment.yaml:4:12: "
     "targets[0].guard: must be a single SQL expression; '--' is not "
     "allowed"},
    {"broken/bad_pattern.yaml", "broken/bad_pattern.yaml:8:27: "
     "targets[0].columns.color_code.rules.pattern: bad regular expression "
     "'^#[0-9A-F{6}$': "},
    {"broken/scale_gt_precision.yaml",
     "broken/scale_gt_precision.yaml:6:65: targets[0].columns.price.scale: "
     "scale 4 is larger than precision 2"},
    {"broken/precision_on_text.yaml", "broken/precision_on_text.yaml:5:43: "
     "targets[0].columns.name.precision: only numeric columns take "
     "precision and scale (this one is text)"},
    {"broken/format_on_int.yaml", "broken/format_on_int.yaml:6:58: "
     "targets[0].columns.sort_order.format: only date and timestamp columns "
     "take a format (this one is int)"},
    {"broken/min_not_int.yaml", "broken/min_not_int.yaml:9:23: "
     "targets[0].columns.stock.rules.min: 'zero' is not a valid int"},
    {"broken/empty_enum.yaml", "broken/empty_enum.yaml:6:50: "
     "targets[0].columns.category.rules.enum: is empty"},
    {"broken/missing_targets.yaml", "broken/missing_targets.yaml:1:1: "
     "targets: required key is missing"},
    {"broken/empty_columns.yaml", "broken/empty_columns.yaml:4:14: "
     "targets[0].columns: is empty; map at least one column"},
    {"broken/from_and_const.yaml", "broken/from_and_const.yaml:6:17: "
     "targets[0].columns.category: has both from and const"},
    {"broken/no_source.yaml", "broken/no_source.yaml:6:17: "
     "targets[0].columns.category: needs one of from, position, const or "
     "lookup"},
    {"broken/unknown_transform.yaml", "broken/unknown_transform.yaml:5:51: "
     "targets[0].columns.name.transforms[1]: unknown transform "
     "'colapse_spaces' (did you mean 'collapse_spaces'?)"},
    {"broken/duplicate_target.yaml", "broken/duplicate_target.yaml:6:12: "
     "targets[1]: target name 'item_master' is already used by targets[0]"},
    {"broken/update_key_column.yaml", "broken/update_key_column.yaml:4:35: "
     "targets[0].update_columns: 'name' is part of the key"},
    {"broken/bad_delimiter.yaml", "broken/bad_delimiter.yaml:2:14: "
     "source.delimiter: ';;' must be exactly one byte"},
    {"broken/delimiter_is_quote.yaml", "broken/delimiter_is_quote.yaml:3:3: "
     "source: delimiter and quote must be two different ASCII characters "
     "other than CR and LF"},
    {"broken/from_without_header.yaml", "broken/from_without_header.yaml:9:7: "
     "targets[0].columns.brand: reads input column 'brand' by name, but "
     "source.header is false: map it by position"},
    {"broken/hooks_missing/pipelines/missing_hook.yaml",
     "broken/hooks_missing/pipelines/missing_hook.yaml:2:11: hooks.module: "
     "Lua module 'hooks.nope' not found (looked for "},
};

static void test_pipeline_broken_fixtures_name_the_place(void **state)
{
    ig_pipeline_opts o;
    size_t plen = strlen(BROKEN_DIR);
    (void)state;

    memset(&o, 0, sizeof(o));
    o.lua_dir = "/nonexistent/lua";
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        char path[512];
        ig_err err;
        ig_pipeline *p;

        snprintf(path, sizeof(path), "%s%s", BROKEN_DIR, broken[i].file);
        ig_err_clear(&err);
        p = ig_pipeline_load(path, &o, &err);
        if (p != NULL)
            fail_msg("%s loaded but should not", broken[i].file);
        assert_int_equal(err.code, IG_CONFIG);
        if (strncmp(err.msg, BROKEN_DIR, plen) != 0 ||
            strncmp(err.msg + plen, broken[i].msg, strlen(broken[i].msg)))
            fail_msg("%s:\n  expected: %s\n  got:      %s", broken[i].file,
                     broken[i].msg, err.msg);
    }
}

static void count_diag(void *ud, const ig_pipeline_diag *d)
{
    int *n = ud;
    assert_non_null(d->message);
    assert_true(d->line > 0 && d->col > 0);
    (*n)++;
}

static void test_pipeline_diag_reports_every_problem(void **state)
{
    const char *path = tmp_yaml(
        "descriptoin: x\n"
        "targets:\n"
        "  - table: t\n"
        "    key: [a]\n"
        "    on_conflict: upsert\n"
        "    columns:\n"
        "      a: { from: a, type: strng }\n"
        "      b: { from: b, colour: red }\n");
    ig_pipeline_opts o;
    ig_err err;
    int n = 0;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.diag = count_diag;
    o.diag_ud = &n;
    assert_null(ig_pipeline_load(path, &o, &err));
    unlink(path);
    assert_int_equal(n, 4);
    assert_non_null(strstr(err.msg, ":1:1: descriptoin: unknown key"));
}

/* A min / max bound the rules could not read would fail every row: the
 * loader reads it as the rules will (ig_rules_type), not more leniently. */
static void test_pipeline_bounds_read_as_the_rules_do(void **state)
{
    static const struct {
        const char *type, *bound, *msg;
    } bad[] = {
        {"date", "2024-02-30", "'2024-02-30' is not a valid date"},
        {"date", "2024-1-5", "'2024-1-5' is not a valid date"},
        {"timestamp", "2024-01-01 99:99",
         "'2024-01-01 99:99' is not a valid timestamp"},
        {"numeric", "1e2000", "'1e2000' is not a valid numeric"},
        {"int", "3000000000", "'3000000000' is not a valid int"},
    };
    ig_pipeline_opts o;
    (void)state;

    memset(&o, 0, sizeof(o));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[512];
        const char *path;
        ig_err err;

        snprintf(yaml, sizeof(yaml),
                 "targets:\n"
                 "  - table: t\n"
                 "    key: k\n"
                 "    columns:\n"
                 "      k: k\n"
                 "      v: { from: v, type: %s, rules: { max: \"%s\" } }\n",
                 bad[i].type, bad[i].bound);
        path = tmp_yaml(yaml);
        ig_err_clear(&err);
        if (ig_pipeline_load(path, &o, &err) != NULL)
            fail_msg("%s max %s loaded", bad[i].type, bad[i].bound);
        unlink(path);
        if (strstr(err.msg, bad[i].msg) == NULL ||
            strstr(err.msg, "rules.max") == NULL)
            fail_msg("%s max %s: %s", bad[i].type, bad[i].bound, err.msg);
    }
}

/* A const or default the column's type cannot read would fail every row
 * it applies to: refused at load, at its place; one in the column's date
 * format is fine. */
static void test_pipeline_const_and_default_read_in_the_type(void **state)
{
    static const struct {
        const char *col, *msg;
    } cases[] = {
        {"{ const: abc, type: int }",
         "columns.v.const: 'abc' is not a valid int, so every row would fail"},
        {"{ from: v, type: date, default: 2024-13-01 }",
         "columns.v.default: '2024-13-01' is not a valid date"},
        {"{ from: v, type: numeric, precision: 4, scale: 2, default: 123.45 }",
         "columns.v.default: '123.45' is not a valid numeric"},
        {"{ from: v, type: date, format: \"%d/%m/%Y\", default: 01/02/2024 }",
         NULL},
        {"{ const: \"42\", type: int }", NULL},
        /* A const goes through the column's transforms first. */
        {"{ const: \"N/A\", type: int, transforms: [{replace: "
         "{\"N/A\": \"0\"}}] }", NULL},
        {"{ const: \"N/A\", type: int, transforms: [{null_if: "
         "[\"N/A\"]}] }", NULL},
        /* A lookup's default is the parent's key, not the id. */
        {"{ lookup: { table: maker, key: code, from: m }, default: M1 }",
         NULL},
    };
    ig_pipeline_opts o;
    (void)state;

    memset(&o, 0, sizeof(o));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        const char *path;
        ig_pipeline *p;
        ig_err err;

        snprintf(yaml, sizeof(yaml),
                 "targets:\n  - table: t\n    key: k\n    columns:\n"
                 "      k: k\n      v: %s\n", cases[i].col);
        path = tmp_yaml(yaml);
        ig_err_clear(&err);
        p = ig_pipeline_load(path, &o, &err);
        unlink(path);
        if (cases[i].msg == NULL) {
            if (p == NULL)
                fail_msg("%s: %s", cases[i].col, err.msg);
            ig_pipeline_free(p);
        } else if (p != NULL || strstr(err.msg, cases[i].msg) == NULL) {
            ig_pipeline_free(p);
            fail_msg("%s: expected '%s', got '%s'", cases[i].col,
                     cases[i].msg, p ? "(loaded)" : err.msg);
        }
    }
}

/* "missing_columns: null" unquoted is the enum value null, not YAML's
 * "no value" (which would silently keep the default, error). */
static void test_pipeline_unquoted_null_enum_value(void **state)
{
    const char *path = tmp_yaml("source:\n"
                                "  missing_columns: null\n"
                                "targets:\n"
                                "  - table: t\n"
                                "    key: [a]\n"
                                "    columns:\n"
                                "      a: x\n");
    ig_pipeline *p = load_ok(path);
    (void)state;
    assert_int_equal(ig_pipeline_source(p)->missing_columns,
                     IG_MISSING_COLUMNS_NULL);
    ig_pipeline_free(p);
    unlink(path);
}

static void test_pipeline_missing_file_is_not_found(void **state)
{
    ig_err err;
    (void)state;
    assert_null(ig_pipeline_load("/nonexistent/x.yaml", NULL, &err));
    assert_int_equal(err.code, IG_NOTFOUND);
    assert_null(ig_pipeline_load_named(PIPELINES, "../etc", NULL, &err));
    assert_null(ig_pipeline_load(PIPELINES, NULL, &err)); /* a directory */
    assert_int_equal(err.code, IG_IO);
    assert_non_null(strstr(err.msg, "is a directory"));
}

static void test_pipeline_name_tables(void **state)
{
    (void)state;
    assert_string_equal(ig_type_name(IG_TYPE_NUMERIC), "numeric");
    assert_string_equal(ig_type_name(IG_TYPE_JSON), "json");
    assert_string_equal(ig_on_conflict_name(IG_ON_CONFLICT_IGNORE), "ignore");
    assert_string_equal(ig_duplicates_name(IG_DUPLICATES_LAST), "last");
    assert_string_equal(ig_update_rule_name(IG_UPDATE_COALESCE), "coalesce");
    assert_string_equal(ig_xform_name(IG_XFORM_NULL_IF), "null_if");
    assert_string_equal(ig_pipeline_section_name(IG_PSEC_RULES), "rules");
}

/* ------------------------------------------------------------------ */
/* docs/pipelines.md documents exactly the key tables                  */

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The doc's key table for a section: the lines after the marker
 * "<!-- keys: NAME -->" up to the next blank line. Owned copy. */
static char *doc_section(const char *doc, const char *name)
{
    char marker[64];
    const char *s, *e;

    snprintf(marker, sizeof(marker), "<!-- keys: %s -->", name);
    s = strstr(doc, marker);
    if (s == NULL)
        fail_msg("docs/pipelines.md has no '%s'", marker);
    s += strlen(marker);
    e = strstr(s + 1, "\n\n");
    if (e == NULL)
        e = s + strlen(s);
    return strndup(s, (size_t)(e - s));
}

static void test_pipeline_docs_match_key_tables(void **state)
{
    char *doc = read_all(TEST_SOURCE_DIR "/docs/pipelines.md");
    (void)state;

    for (int s = 0; s < IG_PSEC__COUNT; s++) {
        const ig_pipeline_key *keys = ig_pipeline_keys((ig_pipeline_section)s);
        char *sec = doc_section(doc, ig_pipeline_section_name(
                                         (ig_pipeline_section)s));
        char *line, *save = NULL;

        /* every key of the table is a row, enum values are named */
        for (const ig_pipeline_key *k = keys; k->name; k++) {
            char row[80], *r;
            snprintf(row, sizeof(row), "| `%s` |", k->name);
            r = strstr(sec, row);
            if (r == NULL)
                fail_msg("docs/pipelines.md, keys: %s: key '%s' is not "
                         "documented", ig_pipeline_section_name(
                                           (ig_pipeline_section)s), k->name);
            for (int v = 0; k->values && k->values[v]; v++) {
                char val[64];
                char *eol = strchr(r, '\n');
                snprintf(val, sizeof(val), "`%s`", k->values[v]);
                if (eol)
                    *eol = '\0';
                if (strstr(r, val) == NULL)
                    fail_msg("docs: %s.%s does not name value %s",
                             ig_pipeline_section_name(
                                 (ig_pipeline_section)s), k->name, val);
                if (eol)
                    *eol = '\n';
            }
        }
        /* every documented row is a key of the table */
        for (line = strtok_r(sec, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char name[64];
            int found = 0;
            if (sscanf(line, "| `%63[^`]` |", name) != 1)
                continue;
            for (const ig_pipeline_key *k = keys; k->name; k++)
                found |= strcmp(k->name, name) == 0;
            if (!found)
                fail_msg("docs/pipelines.md, keys: %s documents '%s', which "
                         "the loader does not know",
                         ig_pipeline_section_name((ig_pipeline_section)s),
                         name);
        }
        free(sec);
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_items_targets_and_keys),
        cmocka_unit_test(test_pipeline_items_lookups_resolve_to_earlier_targets),
        cmocka_unit_test(test_pipeline_items_columns_xforms_rules),
        cmocka_unit_test(test_pipeline_items_source_hooks_inputs),
        cmocka_unit_test(test_pipeline_single_table_pipelines_load),
        cmocka_unit_test(test_pipeline_item_variant_looks_up_by_table),
        cmocka_unit_test(test_pipeline_defaults_and_features),
        cmocka_unit_test(test_pipeline_broken_fixtures_name_the_place),
        cmocka_unit_test(test_pipeline_diag_reports_every_problem),
        cmocka_unit_test(test_pipeline_unquoted_null_enum_value),
        cmocka_unit_test(test_pipeline_missing_file_is_not_found),
        cmocka_unit_test(test_pipeline_bounds_read_as_the_rules_do),
        cmocka_unit_test(test_pipeline_const_and_default_read_in_the_type),
        cmocka_unit_test(test_pipeline_name_tables),
        cmocka_unit_test(test_pipeline_docs_match_key_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
