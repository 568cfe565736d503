/*
 * test_hook.c - the Lua hook host: loading modules, rows in and out
 * (changes, rejects, ctx, NULL, numbers), batch hooks, and the sandbox:
 * every escape refused and every exhaustion stopped with a clear row
 * outcome, after which the next row still works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hook.h"

#define HOOKS TEST_DATA_DIR "/hooks/"
#define LUA_PATH TEST_SOURCE_DIR "/lua/?.lua;" TEST_DATA_DIR "/hooks/lib/?.lua"

enum { NAME, COLOR, QTY, NOTE, NCOLS };
static const char *const names[NCOLS] = {"name", "color", "qty", "note"};

static ig_hook *open_hook_opts(const char *file, long max_ins, long mem_kb,
                               ig_err *err)
{
    char path[1024];
    ig_hook_opts o = {0};

    snprintf(path, sizeof path, "%s%s", HOOKS, file);
    o.path = path;
    o.module = file;
    o.lua_path = LUA_PATH;
    o.pipeline = "items";
    o.max_instructions = max_ins;
    o.max_memory_kb = mem_kb;
    return ig_hook_new(&o, err);
}

static ig_hook *open_hook(const char *file)
{
    ig_err err;
    ig_hook *h = open_hook_opts(file, 0, 0, &err);

    if (h == NULL)
        fail_msg("%s: %s", file, err.msg);
    return h;
}

/* Expect ig_hook_new to fail with a message containing both fragments. */
static void expect_load_error(const char *file, const char *frag1,
                              const char *frag2)
{
    ig_err err;
    ig_hook *h = open_hook_opts(file, 100000, 0, &err);

    assert_null(h);
    assert_int_equal(err.code, IG_SCRIPT);
    if (strstr(err.msg, frag1) == NULL || strstr(err.msg, frag2) == NULL)
        fail_msg("%s: got \"%s\", wanted \"%s\" and \"%s\"", file, err.msg,
                 frag1, frag2);
}

static void set_row(ig_value *v, const char *const s[NCOLS])
{
    for (int i = 0; i < NCOLS; i++) {
        if (s[i] == NULL)
            v[i] = IG_VALUE_NULL;
        else
            v[i] = (ig_value){s[i], strlen(s[i]), 0};
    }
}

/* Call fn on (name, color, qty, note) and return the outcome; vals holds
 * the row afterwards. */
static void call(ig_hook *h, ig_hook_fn fn, ig_arena *a, ig_value *vals,
                 const char *name, const char *color, const char *qty,
                 const char *note, ig_hook_outcome *out)
{
    const char *const s[NCOLS] = {name, color, qty, note};
    ig_hook_row row = {NCOLS, names, vals, 7, 9, "item_master"};
    ig_err err;

    set_row(vals, s);
    if (ig_hook_call_row(h, fn, &row, a, out, &err) != IG_OK)
        fail_msg("host failure: %s", err.msg);
}

static void assert_val(const ig_value *v, const char *want)
{
    if (want == NULL) {
        assert_true(v->is_null);
        return;
    }
    assert_false(v->is_null);
    assert_int_equal(v->len, strlen(want));
    assert_memory_equal(v->p, want, v->len);
}

static void assert_outcome(const ig_hook_outcome *o, const char *code,
                           const char *frag)
{
    if (!o->rejected)
        fail_msg("not rejected, wanted %s \"%s\"", code, frag);
    assert_string_equal(o->code, code);
    assert_true(o->nreasons >= 1);
    if (strstr(o->reasons[0].message, frag) == NULL)
        fail_msg("got \"%s\", wanted \"%s\"", o->reasons[0].message, frag);
}

/* ---- loading --------------------------------------------------------- */

static void test_hook_loads_a_module_and_resolves_its_hooks(void **state)
{
    ig_hook *h = open_hook("basic.lua");
    (void)state;

    assert_true(ig_hook_has(h, IG_HOOK_TRANSFORM));
    assert_true(ig_hook_has(h, IG_HOOK_VALIDATE));
    assert_false(ig_hook_has(h, IG_HOOK_BEFORE_BATCH));
    assert_false(ig_hook_has(h, IG_HOOK_AFTER_BATCH));
    assert_true(ig_hook_memory(h) > 0);
    ig_hook_free(h);
    ig_hook_free(NULL);
}

static void test_hook_load_errors_name_file_and_line(void **state)
{
    (void)state;
    expect_load_error("syntax.lua", "syntax.lua:4:", "near 'end'");
    expect_load_error("notable.lua",
                      "notable.lua:", "must return a table, not number");
    expect_load_error("badfield.lua", "badfield.lua:",
                      "'transform' must be a function, not a string");
    expect_load_error("nohooks.lua", "nohooks.lua:", "defines none of");
    expect_load_error("loaderror.lua",
                      "loaderror.lua:3:", "attempt to index a nil value");
    expect_load_error("loadloop.lua", "loadloop.lua:2:",
                      "instruction budget of 100000 exceeded");
    expect_load_error("missing.lua", "cannot read", "missing.lua");
}

static void test_hook_bad_options_are_refused(void **state)
{
    ig_err err;
    ig_hook_opts o = {0};
    (void)state;

    assert_null(ig_hook_new(&o, &err));
    assert_int_equal(err.code, IG_CONFIG);
    assert_null(open_hook_opts("basic.lua", -1, 0, &err));
    assert_int_equal(err.code, IG_CONFIG);
    assert_null(open_hook_opts("basic.lua", 0, 10, &err));
    assert_int_equal(err.code, IG_CONFIG);
}

/* Write f's bytecode (from a plain Lua state) to path. */
static void write_bytecode(const char *path)
{
    lua_State *L = luaL_newstate();
    FILE *f;
    size_t n;
    const char *s;

    luaL_openlibs(L);
    assert_int_equal(luaL_dostring(L, "return string.dump(load('return "
                                      "{transform = function(r) return r "
                                      "end}'))"),
                     LUA_OK);
    s = lua_tolstring(L, -1, &n);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    fclose(f);
    lua_close(L);
}

static void test_hook_bytecode_is_refused(void **state)
{
    char dir[] = "/tmp/ingot-hook-XXXXXX";
    char mod[256], main[256], lpath[256];
    ig_hook_opts o = {0};
    ig_err err;
    FILE *f;
    ig_hook *h;
    ig_arena *a = ig_arena_new(0);
    ig_value v[NCOLS];
    ig_hook_outcome out;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(mod, sizeof mod, "%s/binmod.lua", dir);
    snprintf(main, sizeof main, "%s/main.lua", dir);
    snprintf(lpath, sizeof lpath, "%s/?.lua", dir);
    write_bytecode(mod);

    /* a bytecode module file */
    o.path = mod;
    assert_null(ig_hook_new(&o, &err));
    assert_non_null(strstr(err.msg, "binary chunk"));

    /* a text module that requires a bytecode one */
    f = fopen(main, "w");
    assert_non_null(f);
    fputs("return { transform = function(row)\n"
          "  return require('binmod') end }\n",
          f);
    fclose(f);
    o.path = main;
    o.lua_path = lpath;
    h = ig_hook_new(&o, &err);
    assert_non_null(h);
    call(h, IG_HOOK_TRANSFORM, a, v, "x", "y", "1", "n", &out);
    assert_outcome(&out, "HOOK_ERROR", "binary chunk");

    ig_hook_free(h);
    ig_arena_free(a);
    unlink(mod);
    unlink(main);
    rmdir(dir);
}

/* ---- rows ------------------------------------------------------------ */

typedef struct fx {
    ig_hook *h;
    ig_arena *a;
    ig_value v[NCOLS];
    ig_hook_outcome out;
} fx;

static int setup_basic(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->h = open_hook("basic.lua");
    f->a = ig_arena_new(0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ig_hook_free(f->h);
    ig_arena_free(f->a);
    free(f);
    return 0;
}

static void tr(fx *f, const char *name, const char *color, const char *qty,
               const char *note)
{
    call(f->h, IG_HOOK_TRANSFORM, f->a, f->v, name, color, qty, note, &f->out);
}

static void test_hook_transform_changes_values(void **state)
{
    fx *f = *state;
    const char *color = "red";

    tr(f, "  navy   blue ", color, "3", "plain");
    assert_false(f->out.rejected);
    assert_val(&f->v[NAME], "Navy Blue");
    assert_ptr_equal(f->v[COLOR].p, color); /* unchanged keeps its bytes */
    assert_val(&f->v[QTY], "3");

    tr(f, "bob", "x", "1", "helper"); /* require from the pipeline path */
    assert_false(f->out.rejected);
    assert_val(&f->v[NAME], "BOB!");

    tr(f, "a", "b", "c", "unchanged");
    assert_false(f->out.rejected);
    assert_val(&f->v[NAME], "a");
}

static void test_hook_transform_rejects_with_a_reason(void **state)
{
    fx *f = *state;

    tr(f, "a", "b", "c", "reject");
    assert_outcome(&f->out, "HOOK", "note says reject");
    assert_null(f->out.reasons[0].column);
    assert_int_equal(f->out.nreasons, 1);

    tr(f, "a", "b", "c", "reject_noreason");
    assert_outcome(&f->out, "HOOK", "rejected by transform");
}

static void test_hook_ctx_reject_records_columns(void **state)
{
    fx *f = *state;

    tr(f, "a", "b", "c", "ctxreject");
    assert_outcome(&f->out, "HOOK", "bad color");
    assert_int_equal(f->out.nreasons, 2);
    assert_string_equal(f->out.reasons[0].column, "color");
    assert_null(f->out.reasons[1].column);
    assert_string_equal(f->out.reasons[1].message, "whole row looks odd");
    assert_val(&f->v[COLOR], "b"); /* a rejected row keeps its values */
}

/* A reason becomes valid UTF-8 without NUL (bad bytes are U+FFFD), cut
 * before a character rather than in it: the JSON summary, the job's
 * import_results and the reject file must hold it. */
static void test_hook_reasons_are_valid_utf8(void **state)
{
    fx *f = *state;
    const char *m;

    tr(f, "a", "b", "c", "reject_cut");
    assert_outcome(&f->out, "HOOK", "too long: Cr\xEF\xBF\xBD");
    assert_string_equal(f->out.reasons[0].message, "too long: Cr\xEF\xBF\xBD");

    tr(f, "a", "b", "c", "ctxreject_bad");
    assert_int_equal(f->out.nreasons, 2);
    assert_string_equal(f->out.reasons[0].column, "col\xEF\xBF\xBD");
    assert_string_equal(f->out.reasons[0].message, "a\xEF\xBF\xBD" "b");
    assert_string_equal(f->out.reasons[1].message, "x\xEF\xBF\xBDy");

    tr(f, "a", "b", "c", "error_cut");
    assert_string_equal(f->out.code, "HOOK_ERROR");
    assert_non_null(strstr(f->out.reasons[0].message, "bad \xEF\xBF\xBD"));

    tr(f, "a", "b", "c", "reject_long"); /* 1200 bytes of two-byte chars */
    m = f->out.reasons[0].message;
    assert_int_equal(strlen(m), 1000);
    assert_int_equal((unsigned char)m[998], 0xC3);
    assert_int_equal((unsigned char)m[999], 0xA8);

    tr(f, "a", "b", "c", "reject_bad_long"); /* 900 bad bytes: 2700 once scrubbed */
    m = f->out.reasons[0].message;
    assert_int_equal(strlen(m), 999); /* 333 whole U+FFFD, not 1000 bytes */
    assert_memory_equal(m + 996, "\xEF\xBF\xBD", 3);
}

static void test_hook_null_round_trip(void **state)
{
    fx *f = *state;

    tr(f, "a", NULL, "1", "isnull");
    assert_false(f->out.rejected);
    assert_val(&f->v[NOTE], "was null");
    assert_val(&f->v[COLOR], NULL);

    tr(f, "a", "", "1", "isnull");
    assert_val(&f->v[NOTE], "not null");

    tr(f, "a", "red", "1", "nullout"); /* ingot.null and nil both give NULL */
    assert_false(f->out.rejected);
    assert_val(&f->v[COLOR], NULL);
    assert_val(&f->v[QTY], NULL);
    assert_val(&f->v[NAME], "a");

    tr(f, "a", "red", "1", "newtable"); /* missing keys read as NULL */
    assert_false(f->out.rejected);
    assert_val(&f->v[NAME], "fresh");
    assert_val(&f->v[COLOR], NULL);
    assert_val(&f->v[NOTE], NULL);

    tr(f, "a", NULL, "1", "concatnull");
    assert_outcome(&f->out, "HOOK_ERROR", "ingot.null");
}

static void test_hook_numbers_and_booleans_become_text(void **state)
{
    fx *f = *state;

    tr(f, "a", "b", "c", "numbers");
    assert_false(f->out.rejected);
    assert_val(&f->v[QTY], "42");
    assert_val(&f->v[COLOR], "1.5");
    assert_val(&f->v[NAME], "9007199254740992");

    tr(f, "a", "b", "c", "tenth");
    assert_val(&f->v[QTY], "0.1");
    assert_val(&f->v[COLOR], "-12");

    /* Whole numbers in digits (a bigint column takes "1000000000000000",
     * not "1e+15"), others in the shortest form that reads back. */
    tr(f, "a", "b", "c", "bignum");
    assert_false(f->out.rejected);
    assert_val(&f->v[QTY], "1000000000000000");
    assert_val(&f->v[COLOR], "1e-320");
    assert_val(&f->v[NAME], "123456789012");

    tr(f, "a", "b", "c", "bools");
    assert_val(&f->v[COLOR], "t");
    assert_val(&f->v[QTY], "f");

    tr(f, "a", "b", "c", "gccount");
    assert_val(&f->v[QTY], "t");
}

static void test_hook_bad_results_are_hook_errors(void **state)
{
    static const struct {
        const char *note, *frag;
    } cases[] = {
        {"badret", "transform returned a string"},
        {"badkey", "with a number key"},
        {"unknowncol", "unknown column \"colour\""},
        {"tablevalue", "column \"color\" to a table"},
        {"nul", "NUL byte"},
        {"badutf8", "not valid UTF-8"},
        {"nothing", "transform returned nothing"},
        {"float", "infinite"},
    };
    fx *f = *state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tr(f, "a", "b", "c", cases[i].note);
        assert_outcome(&f->out, "HOOK_ERROR", cases[i].frag);
        assert_non_null(strstr(f->out.reasons[0].message, "basic.lua"));
        assert_null(strstr(f->out.reasons[0].message, "basic.lua: basic.lua"));
        assert_val(&f->v[COLOR], "b"); /* nothing half-written */
        assert_val(&f->v[NOTE], cases[i].note);
    }
}

static void test_hook_runtime_errors_name_file_and_line(void **state)
{
    fx *f = *state;

    tr(f, "a", "b", "c", "error");
    assert_outcome(&f->out, "HOOK_ERROR", "basic.lua:45: boom");
    tr(f, "a", "b", "c", "error0");
    assert_outcome(&f->out, "HOOK_ERROR", "basic.lua: bare");
    tr(f, "a", "b", "c", "errortable");
    assert_outcome(&f->out, "HOOK_ERROR", "error object is a table value");
    tr(f, "a", "b", "c", "nilindex");
    assert_outcome(&f->out, "HOOK_ERROR", "basic.lua:48: attempt to index");
    tr(f, "a", "b", "c", "ctxwrite");
    assert_outcome(&f->out, "HOOK_ERROR", "ctx is read-only");
    /* errors leave the state usable: no rebuild needed */
    tr(f, "x  y", "b", "c", "plain");
    assert_false(f->out.rejected);
    assert_val(&f->v[NAME], "X Y");
    assert_int_equal(ig_hook_rebuilds(f->h), 0);
}

static void test_hook_ctx_offers_fields_and_log(void **state)
{
    fx *f = *state;

    tr(f, "a", "b", "c", "ctx");
    assert_false(f->out.rejected);
    assert_val(&f->v[NOTE], "items/7/9/item_master");
    tr(f, "a", "b", "c", "print");
    assert_false(f->out.rejected);
}

static void va(fx *f, const char *name)
{
    call(f->h, IG_HOOK_VALIDATE, f->a, f->v, name, "b", "c", "d", &f->out);
}

static void test_hook_validate(void **state)
{
    fx *f = *state;

    va(f, "good");
    assert_false(f->out.rejected);
    va(f, "bad");
    assert_outcome(&f->out, "HOOK", "name must not be bad");
    va(f, "false");
    assert_outcome(&f->out, "HOOK", "rejected by validate");
    va(f, "col");
    assert_outcome(&f->out, "HOOK", "not this one");
    assert_string_equal(f->out.reasons[0].column, "name");
    va(f, "none");
    assert_outcome(&f->out, "HOOK_ERROR", "validate returned nothing");
    va(f, "err");
    assert_outcome(&f->out, "HOOK_ERROR", "validate failed");
    va(f, "good");
    assert_false(f->out.rejected);
}

static void test_hook_row_table_is_reused(void **state)
{
    fx *f = *state;
    size_t before, after;

    for (int i = 0; i < 200; i++)
        tr(f, "a b", "b", "c", "plain");
    before = ig_hook_memory(f->h);
    for (int i = 0; i < 5000; i++) {
        tr(f, "a b", "b", "c", "plain");
        ig_arena_reset(f->a);
    }
    after = ig_hook_memory(f->h);
    /* garbage comes and goes, but nothing accumulates per row */
    assert_true(after < before + 256 * 1024);
}

/* ---- sandbox --------------------------------------------------------- */

static void test_hook_sandbox_refuses_escapes_and_stops_bombs(void **state)
{
    static const struct {
        const char *what, *code, *frag;
    } cases[] = {
        {"io_open", "HOOK_ERROR", "global 'io'"},
        {"os_execute", "HOOK_ERROR", "field 'execute'"},
        {"os_exit", "HOOK_ERROR", "field 'exit'"},
        {"os_getenv", "HOOK_ERROR", "field 'getenv'"},
        {"os_write", "HOOK_ERROR", "read-only table 'os'"},
        {"require_os", "HOOK_ERROR", "module 'os' not found"},
        {"require_io", "HOOK_ERROR", "module 'io' not found"},
        {"require_debug", "HOOK_ERROR", "module 'debug' not found"},
        {"require_traverse", "HOOK_ERROR", "invalid module name"},
        {"require_dots", "HOOK_ERROR", "invalid module name"},
        {"require_secret", "HOOK_ERROR", "module 'secret' not found"},
        {"load_dump", "HOOK_ERROR", "field 'dump'"},
        {"load", "HOOK_ERROR", "global 'load'"},
        {"dofile", "HOOK_ERROR", "global 'dofile'"},
        {"loadfile", "HOOK_ERROR", "global 'loadfile'"},
        {"setmeta_G", "HOOK_ERROR", "protected metatable"},
        {"poison_rep", "HOOK_ERROR", "read-only table 'string'"},
        {"poison_mt", "HOOK_ERROR", "read-only table 'string metatable'"},
        {"poison_mt2", "HOOK_ERROR", "read-only table 'string'"},
        {"unlock_string", "HOOK_ERROR", "protected metatable"},
        {"rawset_string", "HOOK_ERROR", "global 'rawset'"},
        {"gc_stop", "HOOK_ERROR", "invalid option 'stop'"},
        {"gc_finalizer", "HOOK_ERROR", "__gc metamethods are not allowed"},
        {"debug_sethook", "HOOK_ERROR", "global 'debug'"},
        {"coroutine", "HOOK_ERROR", "global 'coroutine'"},
        {"package", "HOOK_ERROR", "global 'package'"},
        {"rep_bomb", "HOOK_LIMIT", "memory cap of 4096 KiB exceeded"},
        {"rep_bomb_pcall", "HOOK_LIMIT", "memory cap of 4096 KiB exceeded"},
        {"concat_bomb", "HOOK_LIMIT", "memory cap of 4096 KiB exceeded"},
        {"table_bomb", "HOOK_LIMIT", "memory cap of 4096 KiB exceeded"},
        {"loop", "HOOK_LIMIT", "instruction budget of 1000000 exceeded"},
        {"loop_pcall", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"loop_pcall_many", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"loop_xpcall", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"loop_tostring_error", "HOOK_LIMIT", "instruction budget"},
        {"loop_close", "HOOK_LIMIT", "instruction budget"},
        {"find_bomb", "HOOK_LIMIT", "attack.lua:70: instruction budget"},
        {"find_bomb_method", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"find_bomb_pcall", "HOOK_LIMIT", "attack.lua:76: instruction budget"},
        {"trim_bomb", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"gmatch_bomb", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"balance_bomb", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"move_bomb", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"concat_bomb_index", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"remove_bomb", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"insert_bomb", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"sort_bomb", "HOOK_LIMIT", "instruction budget of 1000000"},
        {"insert_oob", "HOOK_ERROR",
         "attack.lua:115: bad argument #2 to 'insert' (position out of "
         "bounds)"},
        {"plain_find_loop", "HOOK_LIMIT", "attack.lua:122: instruction budget"},
        {"string_eq_loop", "HOOK_LIMIT", "attack.lua:126: CPU time limit of 2000 ms"},
        {"gc_bomb", "HOOK_LIMIT", "CPU time limit of 2000 ms exceeded"},
        {"recurse", NULL, NULL}, /* memory cap or stack overflow */
    };
    ig_err err;
    ig_hook *h = open_hook_opts("attack.lua", 1000000, 4096, &err);
    ig_arena *a = ig_arena_new(0);
    ig_value v[NCOLS];
    const char *const cols4[NCOLS] = {"what", "out", "x", "y"};
    ig_hook_row row = {NCOLS, cols4, v, 1, 2, NULL};
    ig_hook_outcome out;
    unsigned limits = 0;
    (void)state;

    assert_non_null(h);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const in[NCOLS] = {cases[i].what, "", "", ""};
        const char *const ok[NCOLS] = {"ok", "", "", ""};

        set_row(v, in);
        assert_int_equal(
            ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err), IG_OK);
        if (!out.rejected)
            fail_msg("%s was not stopped (out=%s)", cases[i].what,
                     v[1].p ? v[1].p : "NULL");
        if (cases[i].code) {
            if (strcmp(out.code, cases[i].code) != 0 ||
                strstr(out.reasons[0].message, cases[i].frag) == NULL)
                fail_msg("%s: got %s \"%s\"", cases[i].what, out.code,
                         out.reasons[0].message);
        } else {
            assert_true(strcmp(out.code, "HOOK_LIMIT") == 0 ||
                        strstr(out.reasons[0].message, "stack overflow"));
        }
        assert_non_null(strstr(out.reasons[0].message, "attack.lua"));
        if (strcmp(out.code, "HOOK_LIMIT") == 0)
            limits++;

        /* the next row works, with an unpoisoned string library */
        set_row(v, ok);
        assert_int_equal(
            ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err), IG_OK);
        if (out.rejected)
            fail_msg("after %s: %s", cases[i].what, out.reasons[0].message);
        assert_val(&v[1], "ababX1");
        ig_arena_reset(a);
    }
    assert_int_equal(ig_hook_rebuilds(h), limits); /* one per limit */
    assert_true(limits >= 20);

    /* Calls the library would make loop for days end at once: string.rep
     * of an empty string a quadrillion times; insert, remove and sort of
     * a table whose __len answers 1 and then a huge number; and a range
     * check stays a catchable error. */
    {
        static const struct {
            const char *what, *out;
        } quick[] = {
            {"rep_empty", "0"},
            {"lying_len", "ok"},
            {"concat_catchable",
             "at index 1 in table for 'concat'"},
        };

        for (size_t i = 0; i < sizeof quick / sizeof quick[0]; i++) {
            const char *const in[NCOLS] = {quick[i].what, "", "", ""};

            set_row(v, in);
            assert_int_equal(
                ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err),
                IG_OK);
            if (out.rejected)
                fail_msg("%s: %s", quick[i].what, out.reasons[0].message);
            if (v[1].p == NULL || strstr(v[1].p, quick[i].out) == NULL)
                fail_msg("%s: got %s", quick[i].what,
                         v[1].p ? v[1].p : "NULL");
        }
    }
    ig_hook_free(h);
    ig_arena_free(a);
}

/* This thread's CPU time in ms. */
static double thread_cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One instruction can do C work in proportion to a string of megabytes
 * (utf8.len, string.upper, a < b, a .. b): the CPU time limit stops such
 * a loop soon after it is spent, not after a thousand of them. */
static void test_hook_cpu_limit_holds_for_expensive_instructions(void **state)
{
    static const struct {
        const char *what;
        long limit_ms;
    } cases[] = {
        {"utf8_len", 100},
        {"upper", 100},
        {"less_than", 100},
        {"concat", 150},
    };
    const char *const cols[NCOLS] = {"what", "out", "x", "y"};
    ig_value v[NCOLS];
    ig_hook_row row = {NCOLS, cols, v, 1, 2, NULL};
    ig_arena *a = ig_arena_new(0);
    ig_hook_outcome out;
    ig_err err;
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const in[NCOLS] = {cases[i].what, "", "", ""};
        char path[1024], want[64];
        ig_hook_opts o = {0};
        ig_hook *h;
        double t0, used;

        snprintf(path, sizeof path, "%s%s", HOOKS, "cpu.lua");
        o.path = path;
        o.module = "cpu";
        o.max_memory_kb = 128 * 1024; /* two 16 MiB strings and a buffer */
        o.max_cpu_ms = cases[i].limit_ms;
        h = ig_hook_new(&o, &err);
        if (h == NULL)
            fail_msg("cpu.lua: %s", err.msg);
        set_row(v, in);
        t0 = thread_cpu_ms();
        assert_int_equal(
            ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err), IG_OK);
        used = thread_cpu_ms() - t0;
        snprintf(want, sizeof want, "CPU time limit of %ld ms exceeded",
                 cases[i].limit_ms);
        if (!out.rejected || strcmp(out.code, "HOOK_LIMIT") != 0 ||
            strstr(out.reasons[0].message, want) == NULL)
            fail_msg("%s: got %s \"%s\"", cases[i].what,
                     out.rejected ? out.code : "no rejection",
                     out.rejected ? out.reasons[0].message : "");
        /* generous for ASan and valgrind; before the fix: 7x to 50x */
        if (used > 5.0 * (double)cases[i].limit_ms)
            fail_msg("%s: the call took %.0f ms of CPU time with a limit of "
                     "%ld ms",
                     cases[i].what, used, cases[i].limit_ms);
        print_message("%s: %.0f ms of CPU time, limit %ld ms\n", cases[i].what,
                      used, cases[i].limit_ms);
        ig_hook_free(h);
        ig_arena_reset(a);
    }
    ig_arena_free(a);
}

/* Long strings come and go (the host tracks them to time the ticks):
 * many at once, dropped out of order, collected, do ordinary work; and
 * with one alive the instruction budget still counts every instruction. */
static void test_hook_long_strings_alive_keep_the_budget(void **state)
{
    const char *const cols[NCOLS] = {"what", "out", "x", "y"};
    const char *const many[NCOLS] = {"many_long", "", "", ""};
    const char *const loop[NCOLS] = {"loop_long", "", "", ""};
    ig_value v[NCOLS];
    ig_hook_row row = {NCOLS, cols, v, 1, 2, NULL};
    ig_arena *a = ig_arena_new(0);
    ig_hook_outcome out;
    ig_err err;
    char path[1024];
    ig_hook_opts o = {0};
    ig_hook *h;
    (void)state;

    snprintf(path, sizeof path, "%s%s", HOOKS, "cpu.lua");
    o.path = path;
    o.module = "cpu";
    o.max_instructions = 200000;
    o.max_cpu_ms = 20000; /* a tick an instruction is slow under valgrind */
    h = ig_hook_new(&o, &err);
    if (h == NULL)
        fail_msg("cpu.lua: %s", err.msg);
    for (int i = 0; i < 2; i++) {
        set_row(v, many);
        assert_int_equal(
            ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err), IG_OK);
        if (out.rejected)
            fail_msg("many_long: %s", out.reasons[0].message);
        assert_val(&v[1], "2251"); /* the strings kept: 750 + 750 + 751 */
        ig_arena_reset(a);
    }
    set_row(v, loop);
    assert_int_equal(
        ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err), IG_OK);
    assert_outcome(&out, "HOOK_LIMIT", "instruction budget of 200000");
    assert_int_equal(ig_hook_rebuilds(h), 1);
    ig_hook_free(h);
    ig_arena_free(a);
}

/* ---- ingot's Lua library and the shipped items hook ------------------- */

static void test_hook_library_modules_run_in_the_sandbox(void **state)
{
    ig_hook *h = open_hook("libs.lua");
    ig_arena *a = ig_arena_new(0);
    ig_value v[NCOLS];
    ig_hook_outcome out;
    (void)state;

    call(h, IG_HOOK_TRANSFORM, a, v, "Crème Brûlée", "1,234.55", "a@b.example",
         "https://x.example/", &out);
    if (out.rejected)
        fail_msg("%s", out.reasons[0].message);
    assert_val(&v[NAME], "creme-brulee");
    assert_val(&v[COLOR], "1234.6");
    assert_val(&v[QTY], "true/true");
    assert_val(&v[NOTE], "Ok");
    ig_hook_free(h);
    ig_arena_free(a);
}

static void test_hook_items_hook_normalises_a_row(void **state)
{
    static const char *const cols[] = {
        "item_name",  "description", "category", "brand", "color",
        "color_code", "size",        "sku",      "price", "stock"};
    enum { N = 10 };
    ig_hook_opts o = {0};
    ig_err err;
    ig_hook *h;
    ig_arena *a = ig_arena_new(0);
    ig_value v[N];
    ig_hook_row row = {N, cols, v, 1, 2, "item_master"};
    ig_hook_outcome out;
    const char *const in[N] = {"Tee",    "",        "Shirts", "Acme",  " navy ",
                               "ff0000", "x-large", "TEE-1",  "12,50", "3"};
    const char *const bad[N] = {"Tee", "",  "Shirts", "Acme",  "red",
                                "zz",  "M", "tee-1",  "1,234", "3"};
    (void)state;

    o.path = TEST_SOURCE_DIR "/lua/hooks/items.lua";
    o.module = "items";
    o.lua_path = TEST_SOURCE_DIR "/lua/?.lua";
    o.pipeline = "items";
    h = ig_hook_new(&o, &err);
    if (h == NULL)
        fail_msg("%s", err.msg);
    assert_true(ig_hook_has(h, IG_HOOK_VALIDATE));

    for (int i = 0; i < N; i++)
        v[i] = (ig_value){in[i], strlen(in[i]), 0};
    assert_int_equal(
        ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err), IG_OK);
    assert_false(out.rejected);
    assert_val(&v[4], "Navy Blue");
    assert_val(&v[5], "#FF0000");
    assert_val(&v[6], "XL");
    assert_val(&v[8], "12.50");
    assert_int_equal(ig_hook_call_row(h, IG_HOOK_VALIDATE, &row, a, &out, &err),
                     IG_OK);
    assert_false(out.rejected);

    for (int i = 0; i < N; i++)
        v[i] = (ig_value){bad[i], strlen(bad[i]), 0};
    assert_int_equal(
        ig_hook_call_row(h, IG_HOOK_TRANSFORM, &row, a, &out, &err), IG_OK);
    assert_outcome(&out, "HOOK", "ambiguous price");
    assert_string_equal(out.reasons[0].column, "price");
    assert_int_equal(ig_hook_call_row(h, IG_HOOK_VALIDATE, &row, a, &out, &err),
                     IG_OK);
    assert_true(out.rejected);
    assert_int_equal(out.nreasons, 1); /* the sku; the YAML rules judge the
                                          colour code and price */
    assert_string_equal(out.reasons[0].column, "sku");

    ig_hook_free(h);
    ig_arena_free(a);
}

/* ---- batches --------------------------------------------------------- */

static void test_hook_batch_hooks_get_ctx_and_summary(void **state)
{
    ig_hook *h = open_hook("batch.lua");
    ig_hook_summary s = {3, 10, 4, 3, 1, 1, 1};
    ig_hook_summary bad = {4, 200, 0, 0, 0, 0, 200};
    ig_arena *a = ig_arena_new(0);
    ig_value v[NCOLS];
    ig_hook_outcome out;
    ig_err err;
    (void)state;

    assert_true(ig_hook_has(h, IG_HOOK_BEFORE_BATCH));
    assert_true(ig_hook_has(h, IG_HOOK_AFTER_BATCH));
    assert_int_equal(ig_hook_call_batch(h, IG_HOOK_BEFORE_BATCH, NULL, &err),
                     IG_OK);
    assert_int_equal(ig_hook_call_batch(h, IG_HOOK_AFTER_BATCH, &s, &err),
                     IG_OK);
    call(h, IG_HOOK_TRANSFORM, a, v, "a", "b", "c", "d", &out);
    assert_false(out.rejected);
    assert_val(&v[NOTE], "before:items,after:3:10:4:3:1:1:1");

    assert_int_equal(ig_hook_call_batch(h, IG_HOOK_AFTER_BATCH, &bad, &err),
                     IG_SCRIPT);
    assert_non_null(strstr(err.msg, "batch.lua:"));
    assert_non_null(strstr(err.msg, "too many failures"));
    assert_int_equal(ig_hook_call_batch(h, IG_HOOK_TRANSFORM, NULL, &err),
                     IG_STATE);

    ig_hook_free(h);
    ig_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_loads_a_module_and_resolves_its_hooks),
        cmocka_unit_test(test_hook_load_errors_name_file_and_line),
        cmocka_unit_test(test_hook_bad_options_are_refused),
        cmocka_unit_test(test_hook_bytecode_is_refused),
        cmocka_unit_test_setup_teardown(test_hook_transform_changes_values,
                                        setup_basic, teardown),
        cmocka_unit_test_setup_teardown(
            test_hook_transform_rejects_with_a_reason, setup_basic, teardown),
        cmocka_unit_test_setup_teardown(test_hook_ctx_reject_records_columns,
                                        setup_basic, teardown),
        cmocka_unit_test_setup_teardown(test_hook_reasons_are_valid_utf8,
                                        setup_basic, teardown),
        cmocka_unit_test_setup_teardown(test_hook_null_round_trip, setup_basic,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_hook_numbers_and_booleans_become_text, setup_basic, teardown),
        cmocka_unit_test_setup_teardown(test_hook_bad_results_are_hook_errors,
                                        setup_basic, teardown),
        cmocka_unit_test_setup_teardown(
            test_hook_runtime_errors_name_file_and_line, setup_basic, teardown),
        cmocka_unit_test_setup_teardown(test_hook_ctx_offers_fields_and_log,
                                        setup_basic, teardown),
        cmocka_unit_test_setup_teardown(test_hook_validate, setup_basic,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hook_row_table_is_reused,
                                        setup_basic, teardown),
        cmocka_unit_test(test_hook_sandbox_refuses_escapes_and_stops_bombs),
        cmocka_unit_test(test_hook_cpu_limit_holds_for_expensive_instructions),
        cmocka_unit_test(test_hook_long_strings_alive_keep_the_budget),
        cmocka_unit_test(test_hook_library_modules_run_in_the_sandbox),
        cmocka_unit_test(test_hook_items_hook_normalises_a_row),
        cmocka_unit_test(test_hook_batch_hooks_get_ctx_and_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
