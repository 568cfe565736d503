/*
 * luapat.c - Lua 5.4's string.find, match, gmatch and gsub with a step
 * budget; see luapat.h.
 *
 * The matcher is the backtracking one the reference manual describes, and
 * it keeps the library's observable limits: 32 captures, a recursion depth
 * of 200 ("pattern too complex"), '^' an anchor only at the start of a
 * find, match or gsub pattern, '$' only at the end. Every entry into
 * match() and every character an item is tried on counts a step; scans
 * that do not backtrack (sets, %b, back-references) count a step per 16
 * bytes. The count is handed to the budget every IG_LUAPAT_CHARGE_EVERY
 * steps and when the call ends.
 *
 * Subjects and patterns are Lua strings, so a byte '\0' always follows
 * their last byte; the matcher relies on that where it peeks one past the
 * end, as the library does.
 */
#define _GNU_SOURCE /* memmem */
#include "luapat.h"

#include <lauxlib.h>

#include <ctype.h>
#include <stddef.h>
#include <string.h>

#define MAX_CAPTURES 32 /* LUA_MAXCAPTURES */
#define MAX_DEPTH 200   /* the library's MAXCCALLS */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define ESC '%'
#define SPECIALS "^$*+?.([%-"

typedef struct mstate {
    const char *src_init, *src_end, *p_end;
    lua_State *L;
    const ig_luapat_budget *budget;
    long pending; /* steps not yet charged */
    int depth;    /* recursion left */
    int level;    /* captures open or closed */
    struct {
        const char *init;
        ptrdiff_t len; /* or CAP_UNFINISHED, CAP_POSITION */
    } cap[MAX_CAPTURES];
} mstate;

static void step(mstate *ms, long n)
{
    ms->pending += n;
    if (ms->pending >= IG_LUAPAT_CHARGE_EVERY) {
        long k = ms->pending;

        ms->pending = 0;
        ms->budget->charge(ms->L, ms->budget->ud, k);
    }
}

/* Charge what is left at the end of a call. */
static void settle(mstate *ms)
{
    long k = ms->pending;

    ms->pending = 0;
    if (k > 0)
        ms->budget->charge(ms->L, ms->budget->ud, k);
}

static void prep(mstate *ms, lua_State *L, const char *s, size_t ls,
                 const char *p, size_t lp, const ig_luapat_budget *budget)
{
    ms->L = L;
    ms->src_init = s;
    ms->src_end = s + ls;
    ms->p_end = p + lp;
    ms->budget = budget;
    ms->pending = 0;
    ms->depth = MAX_DEPTH;
    ms->level = 0;
}

/* Before each new start position. */
static void reprep(mstate *ms)
{
    ms->level = 0;
    ms->depth = MAX_DEPTH;
}

/* A position argument as the library reads it: 1-based, negative from the
 * end, clamped to 1 below. */
static size_t posrelat(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

/* ------------------------------------------------------------------------
 * Single items
 * ---------------------------------------------------------------------- */

/* Whether c is in the class %cl (cl a letter) or equals cl. */
static int match_class(int c, int cl)
{
    int res;

    switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'g': res = isgraph(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    case 'z': res = c == 0; break; /* deprecated, still accepted */
    default: return cl == c;
    }
    return isupper(cl) ? !res : res != 0;
}

/* Whether c is in the set that opens at p ('[') and closes at ec (']'). */
static int match_set(int c, const char *p, const char *ec)
{
    int in = 1;

    if (p[1] == '^') {
        in = 0;
        p++;
    }
    while (++p < ec) {
        if (*p == ESC) {
            p++;
            if (match_class(c, (unsigned char)*p))
                return in;
        } else if (p[1] == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char)p[-2] <= c && c <= (unsigned char)*p)
                return in;
        } else if ((unsigned char)*p == c) {
            return in;
        }
    }
    return !in;
}

/* Past the single item at p: a character, %x, or a set. */
static const char *item_end(mstate *ms, const char *p)
{
    const char *q;

    if (*p == ESC) {
        if (p + 1 >= ms->p_end)
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 2;
    }
    if (*p != '[')
        return p + 1;
    q = p + 1;
    if (*q == '^')
        q++;
    do { /* the first character is never the closing ']' */
        if (q >= ms->p_end)
            luaL_error(ms->L, "malformed pattern (missing ']')");
        if (*q++ == ESC && q < ms->p_end)
            q++;
    } while (*q != ']');
    step(ms, (q - p) / 16);
    return q + 1;
}

/* Whether the subject's character at s matches the item p..ep. */
static int single(mstate *ms, const char *s, const char *p, const char *ep)
{
    int c;

    if (s >= ms->src_end)
        return 0;
    c = (unsigned char)*s;
    switch (*p) {
    case '.':
        return 1;
    case ESC:
        return match_class(c, (unsigned char)p[1]);
    case '[':
        step(ms, (ep - p) / 16);
        return match_set(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

/* ------------------------------------------------------------------------
 * The matcher
 * ---------------------------------------------------------------------- */

static const char *match(mstate *ms, const char *s, const char *p);

/* %bxy at p (p points at x). */
static const char *balance(mstate *ms, const char *s, const char *p)
{
    const char *from = s;
    int depth = 1;

    if (p >= ms->p_end - 1)
        luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
    if (*s != *p) /* s may be src_end, where the '\0' is */
        return NULL;
    while (++s < ms->src_end) {
        if (*s == p[1]) {
            if (--depth == 0) {
                step(ms, (s - from) / 16);
                return s + 1;
            }
        } else if (*s == *p) {
            depth++;
        }
    }
    step(ms, (s - from) / 16);
    return NULL;
}

/* The longest run of the item p..ep from s, then back off one at a time
 * until the rest of the pattern matches. */
static const char *max_expand(mstate *ms, const char *s, const char *p,
                              const char *ep)
{
    ptrdiff_t i = 0;

    while (single(ms, s + i, p, ep))
        i++;
    step(ms, i);
    for (; i >= 0; i--) {
        const char *r = match(ms, s + i, ep + 1);
        if (r != NULL)
            return r;
    }
    return NULL;
}

/* The shortest run of the item p..ep from s for which the rest matches. */
static const char *min_expand(mstate *ms, const char *s, const char *p,
                              const char *ep)
{
    for (;;) {
        const char *r = match(ms, s, ep + 1);
        if (r != NULL)
            return r;
        if (!single(ms, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *start_capture(mstate *ms, const char *s, const char *p,
                                 ptrdiff_t what)
{
    const char *r;

    if (ms->level >= MAX_CAPTURES)
        luaL_error(ms->L, "too many captures");
    ms->cap[ms->level].init = s;
    ms->cap[ms->level].len = what;
    ms->level++;
    if ((r = match(ms, s, p)) == NULL)
        ms->level--;
    return r;
}

static const char *end_capture(mstate *ms, const char *s, const char *p)
{
    const char *r;
    int l;

    for (l = ms->level - 1; l >= 0; l--)
        if (ms->cap[l].len == CAP_UNFINISHED)
            break;
    if (l < 0)
        luaL_error(ms->L, "invalid pattern capture");
    ms->cap[l].len = s - ms->cap[l].init;
    if ((r = match(ms, s, p)) == NULL)
        ms->cap[l].len = CAP_UNFINISHED;
    return r;
}

/* The capture a back-reference %1-%9 (or a replacement's %1-%9) names. */
static int check_capture(mstate *ms, int c)
{
    int l = c - '1';

    if (l < 0 || l >= ms->level || ms->cap[l].len == CAP_UNFINISHED)
        return luaL_error(ms->L, "invalid capture index %%%d", l + 1);
    return l;
}

/* %1-%9 in a pattern: the same bytes again. A position capture's length
 * is negative, so it never matches. */
static const char *back_reference(mstate *ms, const char *s, int c)
{
    int l = check_capture(ms, c);
    size_t len = (size_t)ms->cap[l].len;

    if ((size_t)(ms->src_end - s) < len)
        return NULL;
    step(ms, (long)(len / 16));
    return memcmp(ms->cap[l].init, s, len) == 0 ? s + len : NULL;
}

/* Where the pattern p, matched from s, ends in the subject; NULL if it
 * does not match. The same recursion as the library's, so the depth limit
 * falls at the same patterns. */
static const char *match(mstate *ms, const char *s, const char *p)
{
    if (ms->depth-- == 0)
        luaL_error(ms->L, "pattern too complex");
again:
    step(ms, 1);
    if (p == ms->p_end)
        goto out;
    switch (*p) {
    case '(':
        if (p[1] == ')')
            s = start_capture(ms, s, p + 2, CAP_POSITION);
        else
            s = start_capture(ms, s, p + 1, CAP_UNFINISHED);
        goto out;
    case ')':
        s = end_capture(ms, s, p + 1);
        goto out;
    case '$':
        if (p + 1 != ms->p_end)
            break; /* an ordinary character */
        if (s != ms->src_end)
            s = NULL;
        goto out;
    case ESC:
        switch (p[1]) {
        case 'b':
            s = balance(ms, s, p + 2);
            if (s != NULL) {
                p += 4;
                goto again;
            }
            goto out;
        case 'f': {
            const char *ep;
            int prev, cur;

            p += 2;
            if (*p != '[')
                luaL_error(ms->L, "missing '[' after '%%f' in pattern");
            ep = item_end(ms, p);
            prev = s == ms->src_init ? '\0' : (unsigned char)s[-1];
            cur = s < ms->src_end ? (unsigned char)*s : '\0';
            if (!match_set(prev, p, ep - 1) && match_set(cur, p, ep - 1)) {
                p = ep;
                goto again;
            }
            s = NULL;
            goto out;
        }
        case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
            s = back_reference(ms, s, (unsigned char)p[1]);
            if (s != NULL) {
                p += 2;
                goto again;
            }
            goto out;
        default:
            break; /* %x: a single item */
        }
        break;
    default:
        break;
    }

    /* A single item, maybe with a quantifier. */
    {
        const char *ep = item_end(ms, p);

        if (!single(ms, s, p, ep)) {
            if (*ep == '*' || *ep == '?' || *ep == '-') {
                p = ep + 1; /* zero repetitions */
                goto again;
            }
            s = NULL;
            goto out;
        }
        switch (*ep) {
        case '?': {
            const char *r = match(ms, s + 1, ep + 1);
            if (r != NULL) {
                s = r;
                goto out;
            }
            p = ep + 1;
            goto again;
        }
        case '+':
            s = max_expand(ms, s + 1, p, ep);
            goto out;
        case '*':
            s = max_expand(ms, s, p, ep);
            goto out;
        case '-':
            s = min_expand(ms, s, p, ep);
            goto out;
        default:
            s++;
            p = ep;
            goto again;
        }
    }
out:
    ms->depth++;
    return s;
}

/* ------------------------------------------------------------------------
 * Captures
 * ---------------------------------------------------------------------- */

/* Capture i of the match s..e: its bytes in *cap and its length, or
 * CAP_POSITION with the position pushed. With no captures, capture 0 is
 * the whole match. */
static ptrdiff_t get_capture(mstate *ms, int i, const char *s, const char *e,
                             const char **cap)
{
    ptrdiff_t l;

    if (i >= ms->level) {
        if (i != 0)
            luaL_error(ms->L, "invalid capture index %%%d", i + 1);
        *cap = s;
        return e - s;
    }
    l = ms->cap[i].len;
    *cap = ms->cap[i].init;
    if (l == CAP_UNFINISHED)
        luaL_error(ms->L, "unfinished capture");
    else if (l == CAP_POSITION)
        lua_pushinteger(ms->L, (ms->cap[i].init - ms->src_init) + 1);
    return l;
}

static void push_capture(mstate *ms, int i, const char *s, const char *e)
{
    const char *cap;
    ptrdiff_t l = get_capture(ms, i, s, e, &cap);

    if (l != CAP_POSITION)
        lua_pushlstring(ms->L, cap, (size_t)l);
}

/* The captures, or the whole match s..e if there are none and s is set. */
static int push_captures(mstate *ms, const char *s, const char *e)
{
    int n = (ms->level == 0 && s != NULL) ? 1 : ms->level;

    luaL_checkstack(ms->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(ms, i, s, e);
    return n;
}

/* ------------------------------------------------------------------------
 * The library functions
 * ---------------------------------------------------------------------- */

static const ig_luapat_budget *budget_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* Whether p (which may hold '\0's) has no magic character. */
static int no_specials(const char *p, size_t lp)
{
    size_t upto = 0;

    do {
        if (strpbrk(p + upto, SPECIALS) != NULL)
            return 0;
        upto += strlen(p + upto) + 1;
    } while (upto <= lp);
    return 1;
}

static int find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = posrelat(luaL_optinteger(L, 3, 1), ls) - 1;

    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
        const ig_luapat_budget *b = budget_of(L);
        const char *q = memmem(s + init, ls - init, p, lp);
        long scanned = (long)((ls - init + lp) / 16);

        if (scanned > 0) /* linear, but called in a loop it adds up */
            b->charge(L, b->ud, scanned);

        if (q != NULL) {
            lua_pushinteger(L, (q - s) + 1);
            lua_pushinteger(L, (lua_Integer)((size_t)(q - s) + lp));
            return 2;
        }
    } else {
        mstate ms;
        const char *s1 = s + init;
        int anchor = *p == '^';

        if (anchor) {
            p++;
            lp--;
        }
        prep(&ms, L, s, ls, p, lp, budget_of(L));
        do {
            const char *e;

            reprep(&ms);
            if ((e = match(&ms, s1, p)) != NULL) {
                settle(&ms);
                if (find) {
                    lua_pushinteger(L, (s1 - s) + 1);
                    lua_pushinteger(L, e - s);
                    return push_captures(&ms, NULL, NULL) + 2;
                }
                return push_captures(&ms, s1, e);
            }
        } while (s1++ < ms.src_end && !anchor);
        settle(&ms);
    }
    luaL_pushfail(L);
    return 1;
}

static int l_find(lua_State *L)
{
    return find_aux(L, 1);
}

static int l_match(lua_State *L)
{
    return find_aux(L, 0);
}

/* gmatch's iterator state: offsets into the subject. */
typedef struct gstate {
    size_t src;  /* where the next search starts */
    size_t last; /* end of the last match, if has_last */
    int has_last;
} gstate;

/* Upvalues: budget, subject, pattern, gstate. */
static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
    gstate *g = lua_touserdata(L, lua_upvalueindex(4));
    mstate ms;

    prep(&ms, L, s, ls, p, lp, budget_of(L));
    for (size_t i = g->src; i <= ls; i++) {
        const char *e;

        reprep(&ms);
        e = match(&ms, s + i, p);
        if (e != NULL && !(g->has_last && e == s + g->last)) {
            g->src = g->last = (size_t)(e - s);
            g->has_last = 1;
            settle(&ms);
            return push_captures(&ms, s + i, e);
        }
    }
    settle(&ms);
    return 0;
}

static int l_gmatch(lua_State *L)
{
    size_t ls;
    size_t init;
    gstate *g;

    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    init = posrelat(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls)
        init = ls + 1; /* past the end: no match */
    lua_settop(L, 2);                       /* stack: s p */
    lua_pushvalue(L, lua_upvalueindex(1));  /* stack: s p budget */
    lua_insert(L, 1);                       /* stack: budget s p */
    g = lua_newuserdatauv(L, sizeof(*g), 0); /* stack: budget s p g */
    g->src = init;
    g->last = 0;
    g->has_last = 0;
    lua_pushcclosure(L, gmatch_next, 4);
    return 1;
}

/* A replacement string's bytes, with %0-%9 and %% expanded. */
static void add_string(mstate *ms, luaL_Buffer *b, const char *s,
                       const char *e)
{
    lua_State *L = ms->L;
    size_t l;
    const char *news = lua_tolstring(L, 3, &l);
    const char *p;

    step(ms, 1 + (long)(l / 16));
    while ((p = memchr(news, ESC, l)) != NULL) {
        luaL_addlstring(b, news, (size_t)(p - news));
        p++; /* past the '%'; the string's '\0' if it was the last byte */
        if (*p == ESC) {
            luaL_addchar(b, *p);
        } else if (*p == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)*p)) {
            const char *cap;
            ptrdiff_t len = get_capture(ms, *p - '1', s, e, &cap);

            if (len == CAP_POSITION)
                luaL_addvalue(b);
            else
                luaL_addlstring(b, cap, (size_t)len);
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        }
        l -= (size_t)(p + 1 - news);
        news = p + 1;
    }
    luaL_addlstring(b, news, l);
}

/* Add the replacement of the match s..e; 0 if it kept the match. */
static int add_value(mstate *ms, luaL_Buffer *b, const char *s, const char *e,
                     int tr)
{
    lua_State *L = ms->L;

    switch (tr) {
    case LUA_TFUNCTION: {
        int n;

        lua_pushvalue(L, 3);
        n = push_captures(ms, s, e);
        lua_call(L, n, 1);
        break;
    }
    case LUA_TTABLE:
        push_capture(ms, 0, s, e);
        lua_gettable(L, 3);
        break;
    default:
        add_string(ms, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the match */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)",
                          luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int l_gsub(lua_State *L)
{
    size_t srcl, lp;
    const char *src = luaL_checklstring(L, 1, &srcl);
    const char *p = luaL_checklstring(L, 2, &lp);
    const char *lastmatch = NULL;
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
    int anchor = *p == '^';
    lua_Integer n = 0;
    int changed = 0;
    mstate ms;
    luaL_Buffer b;

    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING ||
                            tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                     3, "string/function/table");
    luaL_buffinit(L, &b);
    if (anchor) {
        p++;
        lp--;
    }
    prep(&ms, L, src, srcl, p, lp, budget_of(L));
    while (n < max_s) {
        const char *e;

        reprep(&ms);
        if ((e = match(&ms, src, p)) != NULL && e != lastmatch) {
            n++;
            changed = add_value(&ms, &b, src, e, tr) | changed;
            src = lastmatch = e;
        } else if (src < ms.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
    }
    settle(&ms);
    if (!changed) {
        lua_pushvalue(L, 1); /* the subject itself */
    } else {
        luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void ig_luapat_register(lua_State *L, int t, ig_luapat_budget *budget)
{
    static const luaL_Reg fns[] = {{"find", l_find},
                                   {"match", l_match},
                                   {"gmatch", l_gmatch},
                                   {"gsub", l_gsub},
                                   {NULL, NULL}};

    t = lua_absindex(L, t);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, budget);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, t, f->name);
    }
}
