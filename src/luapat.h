/*
 * luapat.h - Lua 5.4's string.find, match, gmatch and gsub with a step
 * budget, for the hook sandbox (hook.c).
 *
 * The string library's own pattern matcher backtracks in C, where the
 * sandbox's instruction count never runs: one call such as
 * ("a"):rep(30):find(("a-"):rep(15) .. "b") runs for hours, and so does
 * ("%s+$") over a long run of spaces (quadratic). No library offers Lua
 * patterns with a limit, so these four are written here from the Lua 5.4
 * reference manual (section 6.4.1). They give the library's results and
 * errors (tests/unit/test_luapat.c compares the two on many generated
 * cases), count their work as they go, and hand it to a charge callback;
 * the callback stops a call by raising a Lua error. A plain find uses
 * memmem, which is linear, and charges a step per 16 bytes.
 */
#ifndef IG_LUAPAT_H
#define IG_LUAPAT_H

#include <lua.h>

/* Called with the steps done since the last call, at least every
 * IG_LUAPAT_CHARGE_EVERY steps and when a call ends; may raise a Lua
 * error (lua_error), which unwinds the matcher cleanly: it holds nothing
 * outside the Lua stack. A step is one move of the matcher (one pattern
 * item tried at one position) or about 16 bytes scanned in a set, %b or
 * back-reference. */
typedef void (*ig_luapat_charge)(lua_State *L, void *ud, long steps);

#define IG_LUAPAT_CHARGE_EVERY 1024

typedef struct ig_luapat_budget {
    ig_luapat_charge charge;
    void *ud;
} ig_luapat_budget;

/* Set find, match, gmatch and gsub in the table at index t. budget is
 * borrowed and must outlive every function set (and gmatch iterator). */
void ig_luapat_register(lua_State *L, int t, ig_luapat_budget *budget);

#endif
