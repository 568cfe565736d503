/*
 * test_luapat.c - ingot's budgeted string.find/match/gmatch/gsub: the
 * same results and errors as the Lua library on fixed and generated cases
 * (tests/data/luapat_diff.lua), work charged in proportion to what the
 * matcher does, and a charge that raises stopping patterns that would run
 * for hours.
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
#include <string.h>

#include "luapat.h"

typedef struct meter {
    long charged; /* steps charged so far */
    long calls;   /* charge calls */
    long limit;   /* raise once charged passes it; 0: never */
} meter;

static void meter_charge(lua_State *L, void *ud, long steps)
{
    meter *m = ud;

    assert_true(steps > 0);
    m->charged += steps;
    m->calls++;
    if (m->limit > 0 && m->charged > m->limit)
        luaL_error(L, "step budget spent");
}

/* A state with the full standard library and pat = ingot's four. */
static lua_State *open_state(ig_luapat_budget *b)
{
    lua_State *L = luaL_newstate();

    assert_non_null(L);
    luaL_openlibs(L);
    lua_newtable(L);
    ig_luapat_register(L, -1, b);
    lua_setglobal(L, "pat");
    return L;
}

/* Run chunk; on success leave its results; fail the test on an error. */
static void run(lua_State *L, const char *chunk, int nres)
{
    if (luaL_loadstring(L, chunk) != LUA_OK ||
        lua_pcall(L, 0, nres, 0) != LUA_OK)
        fail_msg("%s: %s", chunk, lua_tostring(L, -1));
}

static void test_luapat_same_as_the_library(void **state)
{
    meter m = {0, 0, 0};
    ig_luapat_budget b = {meter_charge, &m};
    lua_State *L = open_state(&b);
    lua_Integer cases;
    size_t nbad;
    (void)state;

    if (luaL_dofile(L, TEST_DATA_DIR "/luapat_diff.lua") != LUA_OK)
        fail_msg("luapat_diff.lua: %s", lua_tostring(L, -1));
    cases = lua_tointeger(L, -2);
    nbad = lua_rawlen(L, -1);
    for (size_t i = 1; i <= nbad; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        print_message("mismatch: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    assert_int_equal(nbad, 0);
    assert_true(cases > 60000); /* the generator really ran */
    assert_true(m.charged > 0);
    lua_close(L);
}

/* Steps charged by one chunk. */
static long charged_by(lua_State *L, meter *m, const char *chunk)
{
    long before = m->charged;

    run(L, chunk, 0);
    return m->charged - before;
}

static void test_luapat_charges_what_the_matcher_does(void **state)
{
    meter m = {0, 0, 0};
    ig_luapat_budget b = {meter_charge, &m};
    lua_State *L = open_state(&b);
    long lin, quad, small, plain;
    (void)state;

    /* linear: a digit run found once in 100000 bytes */
    lin = charged_by(L, &m, "local s = ('x'):rep(99990) .. '1234567890' "
                            "assert(pat.find(s, '%d+') == 99991)");
    assert_true(lin >= 99990 && lin <= 4 * 100000);

    /* quadratic: '%s+$' over 2000 spaces followed by a letter */
    quad = charged_by(L, &m, "local s = (' '):rep(2000) .. 'x' "
                             "assert(pat.gsub(s, '%s+$', '') == s)");
    assert_true(quad >= 2000L * 2000 / 2);

    /* a short match costs a handful of steps, charged when it ends */
    small = charged_by(L, &m, "assert(pat.match('k=v', '(%w+)=(%w+)') == 'k')");
    assert_true(small > 0 && small < 50);

    /* a plain find is a memmem: linear, a step per 16 bytes */
    plain = charged_by(L, &m, "local s = ('a'):rep(200000) "
                              "assert(pat.find(s, ('a'):rep(100000) .. 'b', "
                              "1, true) == nil)");
    assert_true(plain >= 300000 / 16 && plain <= 300001 / 16 + 1);
    lua_close(L);
}

static void test_luapat_a_raising_charge_stops_runaway_patterns(void **state)
{
    static const char *const bombs[] = {
        "return pat.find(('a'):rep(30), ('a-'):rep(15) .. 'b')",
        "return pat.match(('a'):rep(40), ('a*'):rep(20) .. 'b')",
        "return pat.gsub((' '):rep(200000) .. 'x', '%s+$', '')",
        "for w in pat.gmatch(('a'):rep(30), ('a?'):rep(30) .. 'b') do end",
        "return pat.gsub(('a'):rep(30), ('a-'):rep(15) .. 'b', "
        "function(x) return x end)",
        "return pat.find(('('):rep(100000), '%b()')",
        "return pat.find(('ab'):rep(50000), '(.*)%1%1c')",
        "return pat.find(('a'):rep(100000), '[' .. ('b'):rep(10000) .. ']')",
        "local s = ('a'):rep(1 << 20) "
        "while true do pat.find(s, ('a'):rep(15) .. 'b', 1, true) end",
    };
    meter m = {0, 0, 1000000};
    ig_luapat_budget b = {meter_charge, &m};
    lua_State *L = open_state(&b);
    (void)state;

    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        m.charged = 0;
        if (luaL_loadstring(L, bombs[i]) != LUA_OK)
            fail_msg("%s: %s", bombs[i], lua_tostring(L, -1));
        if (lua_pcall(L, 0, 0, 0) == LUA_OK)
            fail_msg("%s ran to its end", bombs[i]);
        if (strstr(lua_tostring(L, -1), "step budget spent") == NULL)
            fail_msg("%s: %s", bombs[i], lua_tostring(L, -1));
        lua_pop(L, 1);
        /* stopped at the first charge past the limit (one charge may
         * hold a scan of the whole subject) */
        assert_true(m.charged <= 2 * m.limit);
    }
    /* the functions still work after being stopped */
    m.charged = 0;
    run(L, "assert(pat.gsub('a b', '%s', '_') == 'a_b')", 0);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luapat_same_as_the_library),
        cmocka_unit_test(test_luapat_charges_what_the_matcher_does),
        cmocka_unit_test(test_luapat_a_raising_charge_stops_runaway_patterns),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
