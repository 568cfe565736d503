/*
 * hook.c - the sandboxed Lua 5.4 host for pipeline hooks; see hook.h.
 *
 * Sits between the pipeline's built-in rules and the batcher: each row
 * crosses into Lua as one reused table, the module's transform/validate
 * runs under a fresh instruction budget, and the results come back as
 * ig_values whose new bytes live in the caller's arena.
 *
 * The sandbox is built here from an allow-list, never luaL_openlibs (Redis
 * script_lua.c does the same): base minus load/loadfile/dofile/rawset/
 * warn, with print, collectgarbage, setmetatable and require replaced;
 * string (no dump), table, math, utf8 and an os with time/clock/date/
 * difftime only. Every library table the script sees is an empty read-only
 * proxy, and the string metatable hides behind a locked __metatable, so a
 * script can poison neither the host nor ingot's own Lua modules.
 *
 * Limits:
 *  - memory: hook_alloc counts the bytes of this state and refuses growth
 *    past the cap; Lua then raises "not enough memory". A refusal that
 *    survives Lua's emergency collection marks the call (mem_hit) even if
 *    the script swallows the error with pcall.
 *  - time: a LUA_MASKCOUNT hook charges the instructions of each window
 *    (BUDGET_STEP, or fewer, see below) at its tick;
 *    once the budget is spent it re-arms itself on every line and every
 *    instruction and raises again, so pcall in the script only delays the
 *    unwinding by one instruction (Redis luaMaskCountHook). The count hook
 *    never runs inside a C function, so the library functions whose time
 *    is not bounded by the memory they take charge the same budget for
 *    their work (budget_steps): string.find, match, gmatch and gsub are
 *    luapat.c's, which count the matcher's steps; the table guards
 *    (sb_move and the others) charge for the elements they will touch;
 *    string.rep makes an empty result at once instead of looping for it.
 *  - CPU time, for what instructions the budget counts as one can do:
 *    utf8.len, string.upper, a < b, a == b, s .. t, s + 0 take time in
 *    proportion to their strings, and a full collection to the heap.
 *    Each tick, every BUDGET_STEP instructions' worth of charges and each
 *    collectgarbage() check the clocks (clock_check): the wall clock
 *    (vDSO, no system call) bounds the CPU time used, and the thread's
 *    CPU clock (a system call) is read only when that bound passes the
 *    limit. So that no window of instructions between two ticks can run
 *    long, the period is not always BUDGET_STEP: hook_alloc keeps the set
 *    of big blocks alive, strings apart, and a window of the period for
 *    the largest (period_for) reads at most 16 MiB of string (1
 *    instruction at 8 MiB), or a table 32 times larger; a new larger
 *    block or a refused allocation (Lua then collects the whole heap)
 *    lowers the period for the rest of the call and makes the next
 *    instruction tick (bring_tick_forward); and a window that took more
 *    than WINDOW_NS of wall time lowers it in proportion. The CPU limit
 *    is thus overshot by about a window (~10-30 ms) and one C call or
 *    instruction at most.
 *    Signals and timers are out: libingot runs inside other programs.
 *  - finalizers: setmetatable refuses __gc, so no script code can run
 *    outside a budgeted call (in a GC step of the host, or in lua_close).
 * After a limit the state is closed and rebuilt before the next row.
 *
 * The C functions find their ig_hook through an upvalue; the count hook,
 * which gets only the lua_State, through the allocator's ud (lua_getallocf),
 * which is this same ig_hook. There is no global state.
 *
 * Everything that may allocate Lua memory runs inside lua_pcall (hook_pcall
 * with a C body), so hitting the cap is always a row error, never a panic.
 */
#include "hook.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "luapat.h"
#include "rules.h"

#define DEFAULT_MAX_INSTRUCTIONS 1000000L
#define DEFAULT_MAX_MEMORY_KB 32768L
#define DEFAULT_MAX_CPU_MS 2000L
#define MIN_MEMORY_KB 256L          /* an empty sandbox takes ~30 KiB */
#define BUDGET_STEP 1000            /* instructions per tick, at most */
#define BIG_BLOCK_LOG2 12           /* blocks of 4 KiB and more are tracked */
#define WINDOW_BYTES_LOG2 24        /* period x longest string <= 16 MiB */
#define OTHER_BLOCK_SHIFT 5         /* other blocks: 32 times cheaper a byte */
#define WINDOW_NS 10000000LL        /* a window slower than 10 ms: shorter */
#define CPU_LAZY_NS 1000000LL       /* see clock_check */
#define STEPS_PER_INSTRUCTION 4     /* C library steps charged as one */
#define MAX_SOURCE_BYTES (4L << 20) /* larger module files are refused */
#define MAX_MESSAGE 1000            /* bytes of a reason that are kept */
#define MAX_PATH_LEN 4096

#define CTX_MT "ingot.ctx"
#define NULL_MT "ingot.null"

static const char *const fn_names[IG_HOOK__COUNT] = {
    "transform", "validate", "before_batch", "after_batch"};

/* What the state is doing right now; read by ctx's methods. */
typedef enum { CALL_NONE = 0, CALL_ROW, CALL_BATCH } call_kind;

typedef struct call {
    call_kind kind;
    ig_hook_fn fn;
    ig_hook_row *row;               /* borrowed, CALL_ROW */
    ig_arena *arena;                /* borrowed, CALL_ROW */
    ig_hook_outcome *out;           /* borrowed, CALL_ROW */
    const ig_hook_summary *summary; /* borrowed, CALL_BATCH; may be NULL */
} call;

struct ig_hook {
    lua_State *L; /* owned; NULL while broken */

    /* options, copied */
    char *path, *module, *lua_path, *pipeline;
    char *chunk; /* "items.lua": the name in messages */
    lua_Integer max_instructions;
    long max_memory_kb;

    /* memory cap (hook_alloc) */
    size_t mem_cap, mem_used;
    const void *refused_ptr; /* last refused request, to spot Lua's retry */
    size_t refused_osize, refused_nsize;
    int refused;
    int mem_hit; /* a refusal survived the emergency GC */

    /* the blocks of BIG_BLOCK bytes and more that are alive (hook_alloc):
     * a set of their addresses (| 1 for a string), and how many there
     * are of each size class floor(log2(size)), other blocks [0] and
     * strings [1] */
    uintptr_t *big; /* open addressing, big_cap slots (a power of 2) */
    size_t big_cap, big_n;
    size_t big_count[2][64];
    int big_top[2]; /* the largest class with a block, or -1 */

    /* instruction budget and CPU time (budget_hook, budget_steps) */
    lua_Integer steps_left;
    int budget_hit;
    int armed;       /* inside hook_pcall */
    long lib_steps;  /* C library steps not yet charged (< 4) */
    long max_cpu_ms;
    int period; /* instructions per tick for the rest of the call */
    int window; /* what the count hook was set to: charged per tick */
    int forced; /* hook_alloc brought the next tick forward */
    long long wall_tick;  /* wall clock (ns) at the last tick, or -1 */
    long long wall_first; /* ... at the call's first clock reading */
    long long cpu_start;  /* the call's CPU clock (ns) once started, or -1 */
    long long cpu_seen;   /* CPU used at the last reading of it */
    long long wall_seen;  /* wall clock at that reading */
    long unclocked;   /* instructions charged since the last clock_check */
    ig_luapat_budget pat; /* {budget_pat, this}, for luapat.c */
    char limit_msg[256]; /* "items.lua:3: instruction budget of ..." */

    /* registry references, valid for the current L */
    int fnref[IG_HOOK__COUNT];
    int rowref, ctxref, nullref, loadedref, colsref, colsetref;
    const void *null_p; /* the ingot.null block, for identity checks */

    /* which column names cols/colset describe (hook.h: fixed per import) */
    const char *const *col_names;
    size_t col_n;
    size_t *canon;       /* canon[i]: first column with the same name */
    unsigned char *seen; /* scratch for read-back, col_n entries */
    ig_value *newvals;   /* transform results before they are committed */

    call cur;
    unsigned rebuilds;
    int broken; /* sticky: the state could not be rebuilt */
    ig_err broken_err;
};

/* ------------------------------------------------------------------------
 * Memory cap, and the big blocks alive
 * ---------------------------------------------------------------------- */

static void budget_hook(lua_State *L, lua_Debug *ar);

#define BIG_BLOCK ((size_t)1 << BIG_BLOCK_LOG2)

/* This thread's CPU time in ns: a system call (~0.2 to 1.5 us); 0 if
 * the clock cannot be read. */
static long long thread_cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Monotonic wall time in ns: no system call where the vDSO has it (~25
 * ns). The CPU time a thread uses never exceeds the wall time that
 * passes, so this bounds it cheaply; where it cannot be read, the CPU
 * clock (which bounds itself) stands in. */
static long long wall_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return thread_cpu_ns();
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Start the call's CPU clock now. */
static void start_cpu_clock(ig_hook *h, long long wall)
{
    h->cpu_start = thread_cpu_ns();
    h->cpu_seen = 0;
    h->wall_seen = wall;
}

static int size_class(size_t n)
{
    int k = 0;

    while (n >>= 1)
        k++;
    return k;
}

static size_t big_slot(const ig_hook *h, uintptr_t p)
{
    uint64_t x = (uint64_t)(p & ~(uintptr_t)1) >> 4;

    x *= UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(x >> 32) & (h->big_cap - 1);
}

/* Make room for one more block in the set. 0 when it cannot grow. */
static int big_reserve(ig_hook *h)
{
    size_t ocap = h->big_cap, cap = ocap ? 2 * ocap : 64, i;
    uintptr_t *old = h->big, *nw;

    if (2 * (h->big_n + 1) <= h->big_cap) /* keep it at most half full */
        return 1;
    nw = calloc(cap, sizeof *nw);
    if (nw == NULL)
        return 0;
    h->big = nw;
    h->big_cap = cap;
    for (size_t j = 0; j < ocap; j++) {
        if (old[j] == 0)
            continue;
        for (i = big_slot(h, old[j]); nw[i]; i = (i + 1) & (cap - 1))
            ;
        nw[i] = old[j];
    }
    free(old);
    return 1;
}

/* Put the block p (not in the set; big_reserve made room) in it. */
static void big_add(ig_hook *h, const void *p, size_t size, int str)
{
    uintptr_t e = (uintptr_t)p | (uintptr_t)str; /* malloc aligns to 8+ */
    int k = size_class(size);
    size_t i;

    for (i = big_slot(h, e); h->big[i]; i = (i + 1) & (h->big_cap - 1))
        ;
    h->big[i] = e;
    h->big_n++;
    h->big_count[str][k]++;
    if (k > h->big_top[str])
        h->big_top[str] = k;
}

/* Take the block p of size bytes out of the set: -1 if it was not there,
 * else 1 for a string and 0 for another block. */
static int big_remove(ig_hook *h, const void *p, size_t size)
{
    size_t mask = h->big_cap - 1, i, j;
    int k, str;

    if (h->big_n == 0)
        return -1;
    for (i = big_slot(h, (uintptr_t)p);
         (h->big[i] & ~(uintptr_t)1) != (uintptr_t)p; i = (i + 1) & mask)
        if (h->big[i] == 0)
            return -1;
    str = (int)(h->big[i] & 1);
    /* backward-shift deletion: pull later entries of the run into the
     * hole unless their home slot lies cyclically in (hole, entry] */
    for (j = (i + 1) & mask; h->big[j]; j = (j + 1) & mask) {
        size_t home = big_slot(h, h->big[j]);
        if (((home - i) & mask) == 0 ||
            ((home - i) & mask) > ((j - i) & mask)) {
            h->big[i] = h->big[j];
            i = j;
        }
    }
    h->big[i] = 0;
    h->big_n--;
    k = size_class(size);
    if (--h->big_count[str][k] == 0 && k == h->big_top[str])
        while (h->big_top[str] >= 0 &&
               h->big_count[str][h->big_top[str]] == 0)
            h->big_top[str]--;
    return str;
}

/* Instructions per tick when each may read 2^s bytes: a window reads at
 * most 2^WINDOW_BYTES_LOG2 bytes. */
static int window_period(int s)
{
    if (s >= WINDOW_BYTES_LOG2)
        return 1;
    return s <= WINDOW_BYTES_LOG2 - 10 ? BUDGET_STEP
                                       : 1 << (WINDOW_BYTES_LOG2 - s);
}

/* Instructions per tick while the longest string alive is shorter than
 * 2^(big_top[1] + 1) bytes: a window of instructions that each read that
 * many bytes reads at most 2^WINDOW_BYTES_LOG2 (utf8.len, among the
 * slowest string functions, takes ~2 ns a byte: ~30 ms, and a call takes
 * two instructions or more, so ~15 ms). The largest other block (a
 * table's parts, the stack, a buffer) counts too, at ~1 ns for 16 bytes
 * (next over a sparse table, a call with a table's values). */
static int period_for(const ig_hook *h)
{
    int p = BUDGET_STEP, q;

    if (h->big_top[1] >= 0)
        p = window_period(h->big_top[1] + 1);
    if (h->big_top[0] >= 0 &&
        (q = window_period(h->big_top[0] + 1 - OTHER_BLOCK_SHIFT)) < p)
        p = q;
    return p > h->max_instructions ? (int)h->max_instructions : p;
}

/* From hook_alloc, inside a budgeted call: lower the period for the rest
 * of the call to period and, unless done already, make the very next
 * instruction tick (the window in progress is cut short; budget_hook
 * charges it as if it were full). The allocator cannot raise, but it may
 * set the hook. */
static void bring_tick_forward(ig_hook *h, int period)
{
    if (!h->armed || h->budget_hit || period >= h->period)
        return;
    h->period = period;
    if (!h->forced) {
        h->forced = 1;
        lua_sethook(h->L, budget_hook, LUA_MASKCOUNT, 1);
    }
}

static int same_request(const ig_hook *h, const void *ptr, size_t osize,
                        size_t nsize)
{
    return h->refused_ptr == ptr && h->refused_osize == osize &&
           h->refused_nsize == nsize;
}

/* lua_Alloc with a byte count per state (the shape of lauxlib's l_alloc).
 * Growth past mem_cap is refused. Lua may answer a refusal with an
 * emergency full GC and one retry of the very same request; a refusal that
 * is not rescued that way (the retry fails too, the next request is a
 * different one, or the call ends with it pending: lauxlib's buffers raise
 * without a retry) counts as a memory-cap hit.
 *
 * It also keeps the set of the blocks of BIG_BLOCK bytes and more that
 * are alive, strings apart, for the count hook's period (period_for): Lua
 * allocates a string with osize = LUA_TSTRING (luaC_newobj passes the
 * basic type as the tag; strings are never resized), and frees and
 * resizes every block with its size. */
static void *hook_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ig_hook *h = ud;
    size_t old = ptr ? osize : 0; /* osize is a type tag when ptr == NULL */
    int retry = h->refused && same_request(h, ptr, osize, nsize);
    int tag; /* the set's: -1 (not in it), 0 or 1 (a string) */
    void *np;

    if (nsize == 0) {
        if (old >= BIG_BLOCK)
            big_remove(h, ptr, old);
        free(ptr);
        h->mem_used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > h->mem_cap - h->mem_used)
        goto refuse;
    tag = old >= BIG_BLOCK ? big_remove(h, ptr, old) : -1;
    if (nsize >= BIG_BLOCK && tag < 0 && !big_reserve(h))
        goto refuse; /* the host is out of memory: as good as a refusal */
    np = realloc(ptr, nsize);
    if (np == NULL) {
        if (tag >= 0)
            big_add(h, ptr, old, tag); /* room: it was just taken out */
        goto refuse;
    }
    if (nsize >= BIG_BLOCK) {
        if (tag < 0) /* new, or grown: a new string, or another block */
            tag = ptr == NULL && osize == LUA_TSTRING;
        big_add(h, np, nsize, tag);
        /* an instruction may now read more: shorten the period at once,
         * not at the end of the window */
        bring_tick_forward(h, period_for(h));
    }
    /* a call that makes big blocks does something that may take long:
     * count its CPU time from here, not from its first tick */
    if (nsize >= BIG_BLOCK && nsize > old && h->armed && h->cpu_start < 0)
        start_cpu_clock(h, wall_ns());
    h->mem_used = h->mem_used - old + nsize;
    if (h->refused && nsize > old) { /* frees and shrinks do not tell */
        if (!retry)
            h->mem_hit = 1; /* the refused request was given up */
        h->refused = 0;
    }
    return np;

refuse:
    if (h->refused)
        h->mem_hit = 1; /* a retry failed, or an earlier refusal stuck */
    /* Lua answers with a full collection, of the whole heap, for each
     * refusal: from here on, the clock is read after every instruction */
    bring_tick_forward(h, 1);
    h->refused = 1;
    h->refused_ptr = ptr;
    h->refused_osize = osize;
    h->refused_nsize = nsize;
    return NULL;
}

/* Reached only if an allocation fails outside any pcall, which the code
 * below never lets happen; log it before Lua aborts. */
static int hook_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    ig_log(IG_LOG_ERROR, "Lua panic in hook host: %s", msg ? msg : "?");
    return 0; /* Lua calls abort() */
}

/* ------------------------------------------------------------------------
 * Instruction budget
 * ---------------------------------------------------------------------- */

/* A limit is spent (what: "instruction budget of 1000000"; unused once
 * one was, whose message is raised again): note where,
 * in the innermost Lua function with a current line from level (0: ar
 * is the running function's), re-arm the hook on every line and
 * instruction, and raise (again and again, so that a pcall in the script
 * cannot swallow it). */
static int budget_spent(lua_State *L, ig_hook *h, lua_Debug *ar, int level,
                        const char *what)
{
    if (!h->budget_hit) {
        lua_Debug up;
        int line = 0;

        h->budget_hit = 1;
        if (ar != NULL && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
            line = ar->currentline;
        for (; line == 0 && level > 0 && lua_getstack(L, level, &up); level++)
            if (lua_getinfo(L, "Sl", &up) && up.currentline > 0) {
                line = up.currentline;
                ar = &up;
            }
        if (line > 0)
            snprintf(h->limit_msg, sizeof h->limit_msg, "%s:%d: %s exceeded",
                     ar->short_src, line, what);
        else
            snprintf(h->limit_msg, sizeof h->limit_msg, "%s: %s exceeded",
                     h->chunk, what);
        lua_sethook(L, budget_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
    }
    lua_pushstring(L, h->limit_msg); /* stack: msg */
    return lua_error(L);
}

static int instructions_spent(lua_State *L, ig_hook *h, lua_Debug *ar,
                              int level)
{
    char what[64];

    snprintf(what, sizeof what, "instruction budget of %lld",
             (long long)h->max_instructions);
    return budget_spent(L, h, ar, level, what);
}

/* Read the clocks (at a tick of the count hook when tick, else after
 * library work) and raise once the call has used more than max_cpu_ms of
 * CPU time.
 *
 * The wall clock is read every time, the CPU clock only when it matters:
 * the CPU time used is at most what was seen at the last reading of it
 * plus the wall time since, so while that bound is within the limit
 * nothing more is read. A call's CPU clock starts when it first makes a
 * block of BIG_BLOCK bytes or more (hook_alloc), else at its first tick
 * if the period is short (a big block is alive), else at the first
 * reading CPU_LAZY_NS of wall time after its first tick: calls of
 * ordinary instructions never make the system call. What runs before is
 * not counted: at most the first window, and in the last case
 * CPU_LAZY_NS and a window of ordinary instructions after it.
 *
 * At a tick, a window (the instructions since the last tick) that took
 * more than WINDOW_NS means the instructions are expensive in a way the
 * big blocks alive do not show (a slow collation, many small objects,
 * ...): the period is cut in proportion for the rest of the call. */
static void clock_check(lua_State *L, ig_hook *h, lua_Debug *ar, int level,
                        int tick)
{
    long long now = wall_ns();
    long long limit = (long long)h->max_cpu_ms * 1000000;
    long long used;
    char what[64];

    if (h->wall_tick < 0) { /* the call's first reading */
        h->wall_tick = h->wall_first = now;
    } else if (tick) {
        long long win = now - h->wall_tick;
        h->wall_tick = now;
        if (win > WINDOW_NS && h->period > 1) {
            long long p = (long long)h->window * WINDOW_NS / win;
            if (p < h->period)
                h->period = p > 1 ? (int)p : 1;
        }
    }
    if (h->cpu_start < 0) {
        if (h->period < BUDGET_STEP || now - h->wall_first >= CPU_LAZY_NS)
            start_cpu_clock(h, now);
        return;
    }
    if (h->cpu_seen + (now - h->wall_seen) <= limit)
        return;
    used = thread_cpu_ns() - h->cpu_start;
    if (used <= limit) {
        h->cpu_seen = used;
        h->wall_seen = now;
        return;
    }
    snprintf(what, sizeof what, "CPU time limit of %ld ms", h->max_cpu_ms);
    budget_spent(L, h, ar, level, what);
}

/* lua_Hook: charge the window that ended (as a full one when hook_alloc
 * cut it short), check the CPU time, and set the count for the next
 * window if the period changed; raise once a limit is spent. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    void *ud;
    ig_hook *h;

    lua_getallocf(L, &ud); /* the allocator's ud is our ig_hook */
    h = ud;
    if (h->budget_hit) /* again, on every line and instruction */
        budget_spent(L, h, ar, 0, NULL);
    h->steps_left -= h->window;
    if (h->steps_left <= 0)
        instructions_spent(L, h, ar, 0);
    clock_check(L, h, ar, 0, 1);
    if (h->forced || h->window != h->period) {
        h->forced = 0;
        h->window = h->period;
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, h->period);
    }
}

/* Charge steps of work done by the C library function running now (one
 * instruction per STEPS_PER_INSTRUCTION) and check the CPU time; raise,
 * naming the script's line that called it, once either is spent. Free
 * outside hook_pcall. */
static void budget_steps(lua_State *L, ig_hook *h, long steps)
{
    long n;

    if (!h->armed)
        return;
    if (steps > LONG_MAX - h->lib_steps)
        steps = LONG_MAX - h->lib_steps;
    h->lib_steps += steps;
    n = h->lib_steps / STEPS_PER_INSTRUCTION;
    h->lib_steps %= STEPS_PER_INSTRUCTION;
    if (h->budget_hit || n >= h->steps_left) {
        h->steps_left = 0;
        instructions_spent(L, h, NULL, 1);
    }
    h->steps_left -= n;
    h->unclocked += n;
    if (h->unclocked >= BUDGET_STEP) {
        h->unclocked = 0;
        clock_check(L, h, NULL, 1, 0);
    }
}

/* ig_luapat_charge: ud is the ig_hook. */
static void budget_pat(lua_State *L, void *ud, long steps)
{
    budget_steps(L, ud, steps);
}

/* Charge one step per element from..to (none if to < from). */
static void budget_range(lua_State *L, ig_hook *h, lua_Integer from,
                         lua_Integer to)
{
    lua_Unsigned n;

    if (to < from)
        return;
    n = (lua_Unsigned)to - (lua_Unsigned)from; /* count - 1: no overflow */
    budget_steps(L, h, n >= (lua_Unsigned)LONG_MAX ? LONG_MAX : (long)n + 1);
}

static void budget_arm(ig_hook *h)
{
    h->steps_left = h->max_instructions;
    h->budget_hit = 0;
    h->armed = 1;
    h->lib_steps = 0;
    h->period = h->window = period_for(h); /* strings kept from before */
    h->forced = 0;
    h->wall_tick = -1;
    h->cpu_start = -1;
    h->unclocked = 0;
    h->mem_hit = 0;
    h->refused = 0;
    h->limit_msg[0] = '\0';
    lua_sethook(h->L, budget_hook, LUA_MASKCOUNT, h->window);
}

static void budget_disarm(ig_hook *h)
{
    lua_sethook(h->L, NULL, 0, 0);
    h->armed = 0;
}

/* ------------------------------------------------------------------------
 * Protected calls
 * ---------------------------------------------------------------------- */

/* Message handler (lua.c msghandler): turn the error object into a string,
 * log the traceback at debug level, return the message itself so that its
 * first line ("items.lua:12: attempt to ...") is what the row gets. */
static int hook_msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (msg == NULL) {
        void *ud;
        lua_getallocf(L, &ud); /* our ig_hook */
        /* after the budget hook, hooks are off here: no script code */
        if (!((ig_hook *)ud)->budget_hit && luaL_callmeta(L, 1, "__tostring") &&
            lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1); /* stack: err str */
        else
            msg = lua_pushfstring(L, "(error object is a %s value)",
                                  luaL_typename(L, 1)); /* stack: err str */
    }
    if (ig_log_get_level() <= IG_LOG_DEBUG) {
        luaL_traceback(L, L, msg, 1); /* stack: ... msg traceback */
        ig_log(IG_LOG_DEBUG, "hook: %s", lua_tostring(L, -1));
        lua_pop(L, 1); /* stack: ... msg */
    }
    return 1;
}

/* 1 when msg starts with "something:<digits>:", i.e. names a place. */
static int has_location(const char *msg)
{
    const char *c = strchr(msg, ':');
    const char *d;

    if (c == NULL || c == msg)
        return 0;
    for (d = c + 1; *d >= '0' && *d <= '9'; d++)
        ;
    return d > c + 1 && *d == ':';
}

/* Run body(h) with no other arguments under a fresh budget, protected by
 * hook_msgh. Returns the Lua status; on error msg holds the first line of
 * the message, prefixed with the script's name when it names no place.
 * Leaves the stack empty. */
static int hook_pcall(ig_hook *h, lua_CFunction body, char *msg, size_t msgsz)
{
    lua_State *L = h->L;
    int st;

    lua_settop(L, 0);
    lua_pushcfunction(L, hook_msgh); /* stack: msgh (no allocation) */
    lua_pushcfunction(L, body);      /* stack: msgh body */
    lua_pushlightuserdata(L, h);     /* stack: msgh body h */
    budget_arm(h);
    st = lua_pcall(L, 1, 0, 1); /* stack: msgh [err] */
    budget_disarm(h);
    if (h->refused)
        h->mem_hit = 1; /* a refusal nobody rescued */
    if (st != LUA_OK) {
        const char *e = lua_tostring(L, -1);
        size_t n;

        if (e == NULL)
            e = "(error object is not a string)";
        n = strcspn(e, "\n");
        if (n > MAX_MESSAGE)
            n = MAX_MESSAGE;
        if (has_location(e) || (strncmp(e, h->chunk, strlen(h->chunk)) == 0 &&
                                e[strlen(h->chunk)] == ':'))
            snprintf(msg, msgsz, "%.*s", (int)n, e); /* placed already */
        else
            snprintf(msg, msgsz, "%s: %.*s", h->chunk, (int)n, e);
    }
    lua_settop(L, 0);
    return st;
}

/* Raise "items.lua: <formatted>" from a host function; never returns. */
static int host_error(lua_State *L, const ig_hook *h, const char *fmt, ...)
{
    va_list ap;

    lua_pushfstring(L, "%s: ", h->chunk); /* stack: prefix */
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap); /* stack: prefix text */
    va_end(ap);
    lua_concat(L, 2); /* stack: msg */
    return lua_error(L);
}

static ig_hook *upvalue_hook(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ------------------------------------------------------------------------
 * Read-only proxies
 * ---------------------------------------------------------------------- */

/* __newindex of a proxy: always an error. Upvalue 1 is the table's name. */
static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify the read-only table '%s'",
                      lua_tostring(L, lua_upvalueindex(1)));
}

/* next-like iterator over the real table: ro_next(real, key) */
static int ro_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2); /* stack: real key */
    if (lua_next(L, 1))
        return 2; /* stack: real key' value */
    lua_pushnil(L);
    return 1;
}

/* __pairs of a proxy: pairs(proxy) walks the real table (upvalue 1). */
static int ro_pairs(lua_State *L)
{
    lua_pushcfunction(L, ro_next);         /* stack: proxy next */
    lua_pushvalue(L, lua_upvalueindex(1)); /* stack: proxy next real */
    lua_pushnil(L);                        /* stack: proxy next real nil */
    return 3;
}

/* Replace the table on top of the stack with an empty proxy that reads
 * through to it, refuses writes and hides its metatable. [-1, +1] */
static void to_readonly(lua_State *L, const char *name)
{
    int real = lua_gettop(L);

    lua_createtable(L, 0, 0); /* stack: real proxy */
    lua_createtable(L, 0, 4); /* stack: real proxy mt */
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index"); /* mt.__index = real */
    lua_pushstring(L, name);
    lua_pushcclosure(L, ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, real);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable"); /* getmetatable(proxy) == false */
    lua_setmetatable(L, -2);            /* stack: real proxy */
    lua_replace(L, real);               /* stack: proxy */
}

/* ------------------------------------------------------------------------
 * Base library replacements
 * ---------------------------------------------------------------------- */

/* print(...) -> nothing. Goes to the log at debug level, tab-separated. */
static int sb_print(lua_State *L)
{
    ig_hook *h = upvalue_hook(L);
    int n = lua_gettop(L);
    luaL_Buffer b;

    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL); /* stack: ... buffer? str */
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b); /* stack: args line */
    ig_log(IG_LOG_DEBUG, "hook %s: print: %s", h->chunk, lua_tostring(L, -1));
    return 0;
}

/* collectgarbage([opt]) with opt "collect", "count" or "step" only:
 * "stop", "incremental", "generational", ... are refused. */
static int sb_collectgarbage(lua_State *L)
{
    static const char *const opts[] = {"collect", "count", "step", NULL};

    switch (luaL_checkoption(L, 1, "collect", opts)) {
    case 0:
        lua_gc(L, LUA_GCCOLLECT);
        if (upvalue_hook(L)->armed) /* the whole heap: look at the clock */
            clock_check(L, upvalue_hook(L), NULL, 1, 0);
        lua_pushinteger(L, 0);
        return 1;
    case 1:
        lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT) +
                              (lua_Number)lua_gc(L, LUA_GCCOUNTB) / 1024);
        return 1;
    default:
        lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, 0));
        return 1;
    }
}

/* ------------------------------------------------------------------------
 * String and table library guards (upvalue 1: the ig_hook, upvalue 2: the
 * library's function). A library function loops in C, where the count
 * hook never runs: each guard charges the budget for the elements the
 * loop will touch, where nothing else bounds them (the memory cap bounds
 * a plain table's length, not a range nobody stored or a __len), then
 * runs the library's function in its own frame (so errors name the
 * function and the script's line as they would).
 * ---------------------------------------------------------------------- */

static int call_library(lua_State *L)
{
    return lua_tocfunction(L, lua_upvalueindex(2))(L);
}

static int has_metafield(lua_State *L, int i, const char *field)
{
    if (luaL_getmetafield(L, i, field) == LUA_TNIL)
        return 0;
    lua_pop(L, 1);
    return 1;
}

/* string.rep(s, n [, sep]): an empty result at once. The library would
 * loop n times to build it, and an empty string takes no memory. */
static int sb_rep(lua_State *L)
{
    size_t l, lsep;
    lua_Integer n;

    luaL_checklstring(L, 1, &l);
    n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0 && l == 0 && lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    return call_library(L);
}

/* For table.concat and table.unpack: list (at 1) with a metatable, whose
 * __index can answer every index of range first..last (args at
 * first, first + 1; last defaults to #list): charge the range, and pass
 * last explicitly so that __len runs once. */
static void charge_proxy_range(lua_State *L, int first)
{
    lua_Integer i, j;

    if (lua_type(L, 1) != LUA_TTABLE || !lua_getmetatable(L, 1))
        return; /* a plain table's loop stops at its first nil */
    lua_pop(L, 1);
    i = luaL_optinteger(L, first, 1);
    if (lua_isnoneornil(L, first + 1)) {
        j = luaL_len(L, 1);
        lua_settop(L, first + 1);
        lua_pushinteger(L, i);
        lua_replace(L, first);
        lua_pushinteger(L, j);
        lua_replace(L, first + 1);
    } else {
        j = luaL_checkinteger(L, first + 1);
    }
    budget_range(L, upvalue_hook(L), i, j);
}

/* table.concat(list [, sep [, i [, j]]]) */
static int sb_concat(lua_State *L)
{
    luaL_optlstring(L, 2, "", NULL);
    charge_proxy_range(L, 3);
    return call_library(L);
}

/* table.unpack(list [, i [, j]]) */
static int sb_unpack(lua_State *L)
{
    charge_proxy_range(L, 2);
    return call_library(L);
}

/* table.insert(list, [pos,] value). With a __len, done here from one
 * reading of #list (the library reads it again, and a __len that grows
 * between the two would make it loop for ever), charging the shift. */
static int sb_insert(lua_State *L)
{
    lua_Integer e, pos;

    if (lua_type(L, 1) != LUA_TTABLE || !has_metafield(L, 1, "__len"))
        return call_library(L); /* #list is bounded by its memory */
    e = luaL_intop(+, luaL_len(L, 1), 1); /* first empty element */
    switch (lua_gettop(L)) {
    case 2:
        pos = e;
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2,
                      "position out of bounds");
        budget_range(L, upvalue_hook(L), pos + 1, e);
        for (lua_Integer i = e; i > pos; i--) { /* move up */
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos); /* t[pos] = v */
    return 0;
}

/* table.remove(list [, pos]). With a __len, done here (see sb_insert). */
static int sb_remove(lua_State *L)
{
    lua_Integer size, pos;

    if (lua_type(L, 1) != LUA_TTABLE || !has_metafield(L, 1, "__len"))
        return call_library(L);
    size = luaL_len(L, 1);
    pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                      "position out of bounds");
    budget_range(L, upvalue_hook(L), pos, size - 1);
    lua_geti(L, 1, pos); /* the result */
    for (; pos < size; pos++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

/* table.sort(list [, comp]). With a __len: #list read once, the elements
 * copied to a plain table (charged), sorted there by the library, and
 * written back. */
static int sb_sort(lua_State *L)
{
    lua_Integer n;

    if (lua_type(L, 1) != LUA_TTABLE || !has_metafield(L, 1, "__len"))
        return call_library(L);
    n = luaL_len(L, 1);
    luaL_argcheck(L, n < INT_MAX, 1, "array too big");
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    budget_range(L, upvalue_hook(L), 1, 2 * n);
    lua_createtable(L, n > 0 ? (int)n : 0, 0); /* stack: list comp copy */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lua_rawseti(L, 3, i);
    }
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 0); /* the library's sort of the copy */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        lua_seti(L, 1, i);
    }
    return 0;
}

static int can_index(lua_State *L, int i, const char *field)
{
    return lua_type(L, i) == LUA_TTABLE || has_metafield(L, i, field);
}

/* table.move(a1, f, e, t [, a2]): elements f..e. Even between plain
 * tables: moving nils stores nothing, so no memory bounds the loop. */
static int sb_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;

    if (e >= f && can_index(L, 1, "__index") &&
        can_index(L, tt, "__newindex")) { /* else the library says why */
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3,
                      "too many elements to move");
        luaL_argcheck(L, t <= LUA_MAXINTEGER - (e - f), 4,
                      "destination wrap around");
        budget_range(L, upvalue_hook(L), f, e);
    }
    return call_library(L);
}

/* Replace lib[name] (lib on top of the stack) with guard(h, lib[name]). */
static void guard(lua_State *L, ig_hook *h, const char *name,
                  lua_CFunction fn)
{
    lua_pushlightuserdata(L, h);   /* stack: lib h */
    lua_getfield(L, -2, name);     /* stack: lib h libfn */
    lua_pushcclosure(L, fn, 2);    /* stack: lib guarded */
    lua_setfield(L, -2, name);     /* stack: lib */
}

/* setmetatable(t, mt) -> t. As the base one, but refuses a metatable with
 * __gc: a finalizer would run script code outside any budgeted call. */
static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc"); /* stack: t mt "__gc" */
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in hooks");
        lua_pop(L, 1); /* stack: t mt */
    }
    lua_settop(L, 2);
    lua_setmetatable(L, 1); /* stack: t */
    return 1;
}

/* 1 when name is "seg(.seg)*" with segments of [A-Za-z0-9_-], so that it
 * can never spell a path outside the Lua path ("..", "/", "~"). */
static int valid_modname(const char *name)
{
    size_t seg = 0, n = 0;

    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (c == '.') {
            if (seg == 0)
                return 0;
            seg = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '_' || c == '-') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0 && n <= 200;
}

/* Load the text chunk in file as chunkname ("@..."): reads it into a Lua
 * userdata (so a memory error leaks nothing) and pushes the function, or
 * raises. Bytecode is refused (mode "t"). [-0, +1] */
static void load_file(lua_State *L, const ig_hook *h, const char *file,
                      const char *chunkname)
{
    struct stat st;
    FILE *f;
    void *buf;
    size_t got;

    errno = 0;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        host_error(L, h, "cannot read %s: %s", file,
                   errno ? strerror(errno) : "not a regular file");
    if (st.st_size > MAX_SOURCE_BYTES)
        host_error(L, h, "%s is larger than %d bytes", file,
                   (int)MAX_SOURCE_BYTES);
    buf = lua_newuserdatauv(L, (size_t)st.st_size + 1, 0); /* stack: buf */
    f = fopen(file, "rb"); /* no Lua allocation until fclose */
    if (f == NULL)
        host_error(L, h, "cannot read %s: %s", file, strerror(errno));
    got = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (luaL_loadbufferx(L, buf, got, chunkname, "t") != LUA_OK)
        lua_error(L);  /* stack: buf msg; "items.lua:3: ... near ..." */
    lua_remove(L, -2); /* stack: fn */
}

/* Find name on h->lua_path: the first "dir/?.lua" pattern whose file
 * exists. Fills file and chunkname ("@ingot/text.lua"); 0 when none. */
static int find_module(const ig_hook *h, const char *name, char *file,
                       char *chunk)
{
    const char *pat = h->lua_path;

    while (pat && *pat) {
        size_t plen = strcspn(pat, ";");
        size_t fo = 0, co = 0;
        int has_q = 0, ok = 1;
        struct stat st;

        chunk[co++] = '@';
        for (size_t i = 0; i < plen && ok; i++) {
            const char *ins = NULL;
            char one[2] = {pat[i], '\0'};
            if (pat[i] == '?')
                has_q = 1;
            ins = pat[i] == '?' ? name : one;
            for (const char *s = ins; *s; s++) {
                char c = (pat[i] == '?' && *s == '.') ? '/' : *s;
                if (fo + 2 >= MAX_PATH_LEN || co + 2 >= MAX_PATH_LEN) {
                    ok = 0;
                    break;
                }
                file[fo++] = c;
                if (has_q) /* the chunk name starts at the first '?' */
                    chunk[co++] = c;
            }
        }
        file[fo] = '\0';
        chunk[co] = '\0';
        if (ok && has_q && stat(file, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
        pat += plen;
        if (*pat == ';')
            pat++;
    }
    return 0;
}

static char loading_marker; /* address only: "module is being loaded" */

/* require(name) -> module. Only modules found on the hook's Lua path (or
 * the preloaded "ingot") load; text only; each loads once per state. */
static int sb_require(lua_State *L)
{
    ig_hook *h = upvalue_hook(L);
    const char *name = luaL_checkstring(L, 1);
    char file[MAX_PATH_LEN], chunk[MAX_PATH_LEN];
    int st;

    lua_settop(L, 1);
    if (!valid_modname(name))
        return luaL_error(L, "require: invalid module name '%s'", name);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->loadedref); /* stack: name loaded */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {      /* stack: .. mod */
        if (lua_touserdata(L, -1) == &loading_marker)
            return luaL_error(L, "require: module '%s' requires itself", name);
        return 1;
    }
    lua_pop(L, 1); /* stack: name loaded */
    if (!find_module(h, name, file, chunk))
        return luaL_error(L,
                          "module '%s' not found on the hook's Lua path "
                          "(the sandbox has no io, os or debug modules)",
                          name);
    lua_pushlightuserdata(L, &loading_marker);
    lua_setfield(L, 2, name);     /* loaded[name] = marker */
    load_file(L, h, file, chunk); /* stack: name loaded chunk */
    lua_pushvalue(L, 1);          /* stack: name loaded chunk name */
    st = lua_pcall(L, 1, 1, 0);   /* stack: name loaded result|err */
    if (st != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, 2, name); /* forget the marker; no allocation */
        return lua_error(L);      /* rethrow err */
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1); /* stack: name loaded true */
    }
    lua_pushvalue(L, -1);     /* stack: name loaded mod mod */
    lua_setfield(L, 2, name); /* stack: name loaded mod */
    return 1;
}

/* Message handler wrapped around a script's xpcall handler (upvalues: h,
 * handler). An error raised by the budget hook reaches the handler while
 * Lua still has hooks switched off (luaG_errormsg calls it before any
 * pcall restores allowhook), so a handler that loops would never be
 * stopped: once the budget is spent the script's handler is skipped and
 * the error passes through unchanged. */
static int xpcall_msgh(lua_State *L)
{
    ig_hook *h = upvalue_hook(L);

    if (h->budget_hit)
        return 1;                          /* stack: err */
    lua_pushvalue(L, lua_upvalueindex(2)); /* stack: err handler */
    lua_insert(L, 1);                      /* stack: handler err */
    lua_call(L, 1, 1);                     /* stack: result */
    return 1;
}

/* xpcall(f, msgh, ...) -> true, ... | false, msgh's result. As the base
 * one, with msgh behind xpcall_msgh. */
static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);

    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, lua_upvalueindex(1)); /* stack: f msgh args.. h */
    lua_pushvalue(L, 2);                   /* stack: f msgh args.. h msgh */
    lua_pushcclosure(L, xpcall_msgh, 2);   /* stack: f msgh args.. wrap */
    lua_replace(L, 2);                     /* stack: f wrap args.. */
    lua_pushboolean(L, 1);                 /* stack: f wrap args.. true */
    lua_pushvalue(L, 1);                   /* stack: f wrap args.. true f */
    lua_rotate(L, 3, 2);                   /* stack: f wrap true f args.. */
    if (lua_pcall(L, n - 2, LUA_MULTRET, 2) != LUA_OK) {
        lua_pushboolean(L, 0); /* stack: f wrap true err false */
        lua_pushvalue(L, -2);  /* stack: ... false err */
        return 2;
    }
    return lua_gettop(L) - 2; /* true, results... */
}

static const luaL_Reg sb_base[] = {{"print", sb_print},
                                   {"xpcall", sb_xpcall},
                                   {"collectgarbage", sb_collectgarbage},
                                   {"setmetatable", sb_setmetatable},
                                   {"require", sb_require},
                                   {NULL, NULL}};

/* Removed from the base library: code loading, raw writes that would
 * bypass the read-only proxies, and warn (no sink). */
static const char *const sb_removed[] = {"load",   "loadfile", "dofile",
                                         "rawset", "warn",     NULL};

/* ------------------------------------------------------------------------
 * ctx
 * ---------------------------------------------------------------------- */

typedef struct ctxud {
    ig_hook *h;
} ctxud;

static ig_hook *check_ctx(lua_State *L)
{
    return ((ctxud *)luaL_checkudata(L, 1, CTX_MT))->h;
}

/* Copy a script's message for the log: bounded, control chars blanked, so
 * a message cannot forge log lines. */
static void log_safe(char *dst, size_t dstsz, const char *s, size_t n)
{
    size_t i;

    if (n >= dstsz)
        n = dstsz - 1;
    for (i = 0; i < n; i++)
        dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
    dst[i] = '\0';
}

/* A hook's text (a reason, a column name) as the results keep it: at
 * most MAX_MESSAGE bytes, cut before a UTF-8 sequence rather than inside
 * it, and valid UTF-8 without NUL (anything else is U+FFFD), so that the
 * JSON summary, the job's import_results and the reject file can hold it
 * (a hook may cut a value in the middle of a character). In the arena. */
/* Where to cut s[0..len) to at most max bytes: before a UTF-8 sequence
 * rather than inside it (at most 3 bytes back). */
static size_t text_cut(const char *s, size_t len, size_t max)
{
    size_t cut = len;

    if (cut > max) {
        cut = max;
        for (int back = 0; back < 3 && cut > 0 &&
                           ((unsigned char)s[cut] & 0xC0) == 0x80;
             back++)
            cut--;
    }
    return cut;
}

static char *hook_text(ig_arena *a, const char *s, size_t len)
{
    size_t cut = text_cut(s, len, MAX_MESSAGE), n;
    char *clean, *out;

    clean = ig_utf8_scrub(s, cut, &n);
    if (clean != NULL) /* each bad byte became three */
        n = text_cut(clean, n, MAX_MESSAGE);
    out = clean ? ig_arena_strndup(a, clean, n) : ig_arena_strndup(a, s, cut);
    free(clean);
    return out;
}

/* ctx:reject([column,] message) -> nothing. Records a reason; the row is
 * rejected once the hook returns. With one argument it concerns the row. */
static int ctx_reject(lua_State *L)
{
    ig_hook *h = check_ctx(L);
    call *c = &h->cur;
    const char *col = NULL, *msg;
    size_t len;
    ig_hook_reason *r;

    if (lua_gettop(L) >= 3) {
        col = luaL_optstring(L, 2, NULL);
        msg = luaL_checklstring(L, 3, &len);
    } else {
        msg = luaL_checklstring(L, 2, &len);
    }
    if (c->kind != CALL_ROW)
        return luaL_error(L, "ctx:reject() is only allowed in transform "
                             "and validate");
    if (c->out->nreasons >= IG_HOOK_MAX_REASONS)
        return 0; /* enough said: the row is rejected anyway */
    r = &c->out->reasons[c->out->nreasons++];
    r->column = col ? hook_text(c->arena, col, strlen(col)) : NULL;
    r->message = hook_text(c->arena, msg, len);
    c->out->rejected = 1;
    c->out->code = "HOOK";
    return 0;
}

/* ctx:log(message) -> nothing. Info-level line with the row number. */
static int ctx_log(lua_State *L)
{
    ig_hook *h = check_ctx(L);
    size_t len;
    const char *msg = luaL_checklstring(L, 2, &len);
    char safe[512];

    log_safe(safe, sizeof safe, msg, len);
    if (h->cur.kind == CALL_ROW)
        ig_log(IG_LOG_INFO, "hook %s: row %lld: %s", h->chunk,
               h->cur.row->rowno, safe);
    else
        ig_log(IG_LOG_INFO, "hook %s: %s", h->chunk, safe);
    return 0;
}

static const luaL_Reg ctx_methods[] = {
    {"reject", ctx_reject}, {"log", ctx_log}, {NULL, NULL}};

/* ctx.key -> method or field (row, line, pipeline, target, batch);
 * upvalue 1 is the methods table. */
static int ctx_index(lua_State *L)
{
    ig_hook *h = check_ctx(L);
    call *c = &h->cur;
    const char *k;

    lua_settop(L, 2);
    lua_pushvalue(L, 2); /* stack: ctx key key */
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1; /* stack: ctx key method */
    k = lua_tostring(L, 2);
    if (k == NULL)
        return 1; /* nil */
    if (strcmp(k, "pipeline") == 0 && h->pipeline)
        lua_pushstring(L, h->pipeline);
    else if (strcmp(k, "module") == 0)
        lua_pushstring(L, h->module);
    else if (c->kind == CALL_ROW && strcmp(k, "row") == 0)
        lua_pushinteger(L, (lua_Integer)c->row->rowno);
    else if (c->kind == CALL_ROW && strcmp(k, "line") == 0)
        lua_pushinteger(L, (lua_Integer)c->row->line);
    else if (c->kind == CALL_ROW && strcmp(k, "target") == 0 && c->row->target)
        lua_pushstring(L, c->row->target);
    else if (c->kind == CALL_BATCH && strcmp(k, "batch") == 0 && c->summary)
        lua_pushinteger(L, (lua_Integer)c->summary->batch);
    else
        lua_pushnil(L);
    return 1;
}

/* ctx.key = v: always an error. */
static int ctx_newindex(lua_State *L)
{
    return luaL_error(L, "ctx is read-only");
}

/* Create the ctx metatable and the one ctx of this state. [-0, +1] */
static void push_new_ctx(lua_State *L, ig_hook *h)
{
    ctxud *u;

    luaL_newmetatable(L, CTX_MT); /* stack: mt */
    luaL_newlib(L, ctx_methods);  /* stack: mt methods */
    lua_pushcclosure(L, ctx_index, 1);
    lua_setfield(L, -2, "__index"); /* stack: mt */
    lua_pushcfunction(L, ctx_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);                          /* stack: (as before) */
    u = lua_newuserdatauv(L, sizeof *u, 0); /* stack: ctx */
    u->h = h;
    luaL_setmetatable(L, CTX_MT);
}

/* ------------------------------------------------------------------------
 * Building the state
 * ---------------------------------------------------------------------- */

/* tostring(ingot.null) -> "ingot.null" */
static int null_tostring(lua_State *L)
{
    lua_pushliteral(L, "ingot.null");
    return 1;
}

/* Open one allowed library, strip and guard it, publish it read-only as
 * name. */
static void open_lib(lua_State *L, ig_hook *h, const char *name,
                     lua_CFunction open)
{
    luaL_requiref(L, name, open, 0); /* stack: lib */
    if (strcmp(name, LUA_STRLIBNAME) == 0) {
        lua_pushnil(L);
        lua_setfield(L, -2, "dump"); /* no bytecode out of the sandbox */
        h->pat.charge = budget_pat;
        h->pat.ud = h;
        ig_luapat_register(L, -1, &h->pat); /* find match gmatch gsub */
        guard(L, h, "rep", sb_rep);
    } else if (strcmp(name, LUA_TABLIBNAME) == 0) {
        guard(L, h, "concat", sb_concat);
        guard(L, h, "insert", sb_insert);
        guard(L, h, "remove", sb_remove);
        guard(L, h, "move", sb_move);
        guard(L, h, "sort", sb_sort);
        guard(L, h, "unpack", sb_unpack);
    }
    to_readonly(L, name);   /* stack: proxy */
    lua_setglobal(L, name); /* stack: (empty) */
}

/* The string metatable keeps __index = the real string table (fast method
 * calls) but answers getmetatable("") with a read-only look-alike whose
 * __index is the read-only proxy. */
static void lock_string_metatable(lua_State *L)
{
    lua_pushliteral(L, "");   /* stack: "" */
    lua_getmetatable(L, -1);  /* stack: "" mt */
    lua_createtable(L, 0, 1); /* stack: "" mt fake */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_setfield(L, -2, "__index");     /* fake.__index = string proxy */
    to_readonly(L, "string metatable"); /* stack: "" mt fakeproxy */
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2); /* stack: (empty) */
}

/* os with time, clock, date and difftime only. */
static void open_os_subset(lua_State *L)
{
    static const char *const keep[] = {"time", "clock", "date", "difftime",
                                       NULL};

    lua_pushcfunction(L, luaopen_os);
    lua_call(L, 0, 1);        /* stack: fullos */
    lua_createtable(L, 0, 4); /* stack: fullos os */
    for (int i = 0; keep[i]; i++) {
        lua_getfield(L, -2, keep[i]);
        lua_setfield(L, -2, keep[i]);
    }
    lua_remove(L, -2); /* stack: os */
    to_readonly(L, "os");
    lua_setglobal(L, "os");
}

/* The ingot table: { null = <sentinel>, version = "x.y.z" }, global and
 * preloaded for require "ingot". */
static void open_ingot(lua_State *L, ig_hook *h)
{
    lua_createtable(L, 0, 2);               /* stack: ingot */
    h->null_p = lua_newuserdatauv(L, 1, 0); /* stack: ingot null */
    luaL_newmetatable(L, NULL_MT);          /* stack: ingot null mt */
    lua_pushcfunction(L, null_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2); /* stack: ingot null */
    lua_pushvalue(L, -1);
    h->nullref = luaL_ref(L, LUA_REGISTRYINDEX); /* stack: ingot null */
    lua_setfield(L, -2, "null");
    lua_pushliteral(L, INGOT_VERSION);
    lua_setfield(L, -2, "version");
    to_readonly(L, "ingot"); /* stack: proxy */
    lua_pushvalue(L, -1);
    lua_setglobal(L, "ingot");    /* stack: proxy */
    lua_createtable(L, 0, 4);     /* stack: proxy loaded */
    lua_insert(L, -2);            /* stack: loaded proxy */
    lua_setfield(L, -2, "ingot"); /* stack: loaded */
    h->loadedref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The base library, minus and plus what the sandbox says. */
static void open_base(lua_State *L, ig_hook *h)
{
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1); /* stack: _G */
    for (int i = 0; sb_removed[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, sb_removed[i]);
    }
    lua_pushlightuserdata(L, h);
    luaL_setfuncs(L, sb_base, 1); /* upvalue: h */
    lua_createtable(L, 0, 1);     /* stack: _G mt */
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable"); /* setmetatable(_G, ..) fails */
    lua_setmetatable(L, -2);            /* stack: _G */
    lua_pop(L, 1);
}

/* Resolve the module's hook functions from the table on top. */
static void resolve_hooks(lua_State *L, ig_hook *h)
{
    int t = lua_gettop(L), any = 0;

    for (int i = 0; i < IG_HOOK__COUNT; i++) {
        int ty = lua_getfield(L, t, fn_names[i]); /* stack: mod f */
        if (ty == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        if (ty != LUA_TFUNCTION)
            host_error(L, h, "'%s' must be a function, not a %s", fn_names[i],
                       luaL_typename(L, -1));
        h->fnref[i] = luaL_ref(L, LUA_REGISTRYINDEX); /* stack: mod */
        any = 1;
    }
    if (!any)
        host_error(L, h,
                   "the module defines none of transform, validate, "
                   "before_batch, after_batch");
}

/* Protected body: build the sandbox, load and run the module, resolve its
 * hooks, create the reused row table and ctx. [h] -> nothing */
static int open_body(lua_State *L)
{
    ig_hook *h = lua_touserdata(L, 1);
    char chunkname[MAX_PATH_LEN];

    lua_settop(L, 0);
    open_base(L, h);
    open_lib(L, h, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, h, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, h, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, h, LUA_UTF8LIBNAME, luaopen_utf8);
    open_os_subset(L);
    lock_string_metatable(L);
    open_ingot(L, h);

    push_new_ctx(L, h); /* stack: ctx */
    h->ctxref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* the reused row table */
    h->rowref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* cols: i -> name (filled per import) */
    h->colsref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* colset: name -> i */
    h->colsetref = luaL_ref(L, LUA_REGISTRYINDEX);

    snprintf(chunkname, sizeof chunkname, "@%s", h->chunk);
    load_file(L, h, h->path, chunkname); /* stack: chunk */
    lua_pushstring(L, h->module);        /* stack: chunk modname */
    lua_call(L, 1, 1);                   /* stack: mod */
    if (!lua_istable(L, -1))
        host_error(L, h, "the module must return a table, not %s",
                   luaL_typename(L, -1));
    resolve_hooks(L, h);
    return 0;
}

static void close_state(ig_hook *h)
{
    if (h->L)
        lua_close(h->L); /* frees every block: the set is empty */
    h->L = NULL;
    h->big_n = 0;
    if (h->big)
        memset(h->big, 0, h->big_cap * sizeof *h->big);
    memset(h->big_count, 0, sizeof h->big_count);
    h->big_top[0] = h->big_top[1] = -1;
    h->col_names = NULL; /* cols/colset went with the state */
    h->col_n = 0;
}

/* Build a fresh state with the module loaded. IG_OK, or IG_SCRIPT/IG_NOMEM
 * with *err "items.lua:12: ..." and no state. */
static int build_state(ig_hook *h, ig_err *err)
{
    char msg[MAX_MESSAGE + 300];
    int st;

    for (int i = 0; i < IG_HOOK__COUNT; i++)
        h->fnref[i] = LUA_NOREF;
    h->mem_used = 0;
    h->L = lua_newstate(hook_alloc, h);
    if (h->L == NULL)
        return ig_err_set(err, IG_NOMEM, "%s: cannot create a Lua state",
                          h->chunk);
    lua_atpanic(h->L, hook_panic);
    st = hook_pcall(h, open_body, msg, sizeof msg);
    if (st == LUA_OK && !h->mem_hit && !h->budget_hit)
        return IG_OK;
    if (h->budget_hit)
        snprintf(msg, sizeof msg, "%s", h->limit_msg);
    else if (h->mem_hit || st == LUA_ERRMEM)
        snprintf(msg, sizeof msg, "%s: memory cap of %ld KiB exceeded",
                 h->chunk, h->max_memory_kb);
    close_state(h);
    return ig_err_set(err, IG_SCRIPT, "%s", msg);
}

/* ------------------------------------------------------------------------
 * Rows: into Lua and back
 * ---------------------------------------------------------------------- */

/* Make cols/colset describe row->names (once per import). */
static void ensure_columns(lua_State *L, ig_hook *h, const ig_hook_row *r)
{
    if (h->col_names == r->names && h->col_n == r->n)
        return;
    h->canon = ig_xrealloc(h->canon, (r->n ? r->n : 1) * sizeof *h->canon);
    h->seen = ig_xrealloc(h->seen, r->n ? r->n : 1);
    h->newvals =
        ig_xrealloc(h->newvals, (r->n ? r->n : 1) * sizeof *h->newvals);
    lua_createtable(L, (int)r->n, 0); /* stack: cols */
    lua_createtable(L, 0, (int)r->n); /* stack: cols colset */
    for (size_t i = 0; i < r->n; i++) {
        lua_pushstring(L, r->names[i]);
        lua_rawseti(L, -3, (lua_Integer)i + 1); /* cols[i+1] = name */
        if (lua_getfield(L, -1, r->names[i]) == LUA_TNIL) {
            h->canon[i] = i;
            lua_pushinteger(L, (lua_Integer)i + 1);
            lua_setfield(L, -3, r->names[i]); /* colset[name] = i+1 */
        } else {
            h->canon[i] = (size_t)lua_tointeger(L, -1) - 1; /* duplicate */
        }
        lua_pop(L, 1); /* stack: cols colset */
    }
    lua_rawseti(L, LUA_REGISTRYINDEX, h->colsetref); /* stack: cols */
    lua_rawseti(L, LUA_REGISTRYINDEX, h->colsref);   /* stack: (empty) */
    h->col_names = r->names;
    h->col_n = r->n;
}

/* Push the reused row table, emptied and refilled from r. [-0, +1] */
static void push_row(lua_State *L, const ig_hook *h, const ig_hook_row *r)
{
    int t;

    lua_rawgeti(L, LUA_REGISTRYINDEX, h->rowref); /* stack: row */
    t = lua_gettop(L);
    lua_pushnil(L);
    lua_setmetatable(L, t);   /* whatever the last call set is gone */
    lua_pushnil(L);           /* stack: row nil */
    while (lua_next(L, t)) {  /* stack: row key value */
        lua_pop(L, 1);        /* stack: row key */
        lua_pushvalue(L, -1); /* stack: row key key */
        lua_pushnil(L);
        lua_rawset(L, t); /* clearing during next is allowed */
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->colsref); /* stack: row cols */
    for (size_t i = 0; i < r->n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1); /* stack: row cols name */
        if (r->vals[i].is_null)
            lua_rawgeti(L, LUA_REGISTRYINDEX, h->nullref);
        else
            lua_pushlstring(L, r->vals[i].p, r->vals[i].len);
        lua_rawset(L, t); /* stack: row cols */
    }
    lua_pop(L, 1); /* stack: row */
}

static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0; /* truncated sequence */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* The number at idx as text: integers exactly, whole floats below 1e21 in
 * digits, other floats in the shortest "%.Ng" that reads back to the same
 * double. Arena copy, or raises. */
static const char *number_text(lua_State *L, const ig_hook *h, int idx,
                               const char *col, ig_arena *a, size_t *len)
{
    char buf[64];
    int n;

    if (lua_isinteger(L, idx)) {
        n = snprintf(buf, sizeof buf, LUA_INTEGER_FMT, lua_tointeger(L, idx));
    } else {
        double d = (double)lua_tonumber(L, idx);
        if (!isfinite(d))
            host_error(L, h, "column \"%s\" is %s, which is not a value", col,
                       isnan(d) ? "nan" : "infinite");
        n = 0;
        if (d == floor(d) && fabs(d) < 1e21) {
            /* A whole number in digits: 1e15 is "1000000000000000", which
             * an int or bigint column takes, not "1e+15". */
            n = snprintf(buf, sizeof buf, "%.0f", d);
        } else {
            /* The shortest form that reads back as the same double. */
            for (int prec = 1; prec <= 17; prec++) {
                n = snprintf(buf, sizeof buf, "%.*g", prec, d);
                if (strtod(buf, NULL) == d)
                    break;
            }
        }
    }
    *len = (size_t)n;
    return ig_arena_strndup(a, buf, (size_t)n);
}

/* Convert the Lua value at idx for column i into *v; raises on a value that
 * has no SQL text (table, function, NUL byte, invalid UTF-8, ...). */
static void to_value(lua_State *L, ig_hook *h, size_t i, int idx, ig_value *v)
{
    const ig_hook_row *r = h->cur.row;
    const char *col = r->names[i];
    size_t len;
    const char *s;

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        if (!r->vals[i].is_null && r->vals[i].len == len &&
            memcmp(r->vals[i].p, s, len) == 0) {
            *v = r->vals[i]; /* unchanged: keep the original bytes */
            return;
        }
        if (memchr(s, '\0', len))
            host_error(L, h, "column \"%s\" contains a NUL byte", col);
        if (!valid_utf8((const unsigned char *)s, len))
            host_error(L, h, "column \"%s\" is not valid UTF-8", col);
        v->p = ig_arena_strndup(h->cur.arena, s, len);
        v->len = len;
        v->is_null = 0;
        return;
    case LUA_TNUMBER:
        v->p = number_text(L, h, idx, col, h->cur.arena, &v->len);
        v->is_null = 0;
        return;
    case LUA_TBOOLEAN:
        v->p = lua_toboolean(L, idx) ? "t" : "f"; /* static constants */
        v->len = 1;
        v->is_null = 0;
        return;
    case LUA_TUSERDATA:
        if (lua_touserdata(L, idx) == h->null_p) {
            *v = IG_VALUE_NULL;
            return;
        }
        break;
    default:
        break;
    }
    host_error(L, h,
               "transform set column \"%s\" to a %s (expected a string, "
               "number, boolean or ingot.null)",
               col, luaL_typename(L, idx));
}

/* Read the table at t into h->newvals: every key must be a known column;
 * a column that is missing reads as NULL. */
static void read_row(lua_State *L, ig_hook *h, int t)
{
    size_t n = h->cur.row->n;
    int cs;

    for (size_t i = 0; i < n; i++) {
        h->newvals[i] = IG_VALUE_NULL;
        h->seen[i] = 0;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->colsetref); /* stack: .. colset */
    cs = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) { /* stack: .. colset key value */
        size_t i;
        if (lua_type(L, -2) != LUA_TSTRING)
            host_error(L, h,
                       "transform returned a row with a %s key "
                       "(column names are strings)",
                       luaL_typename(L, -2));
        lua_pushvalue(L, -2); /* stack: .. key value key */
        if (lua_rawget(L, cs) != LUA_TNUMBER)
            host_error(L, h, "transform returned unknown column \"%s\"",
                       lua_tostring(L, -3));
        i = (size_t)lua_tointeger(L, -1) - 1;
        lua_pop(L, 1); /* stack: .. key value */
        to_value(L, h, i, -1, &h->newvals[i]);
        h->seen[i] = 1;
        lua_pop(L, 1); /* stack: .. key */
    }
    lua_pop(L, 1); /* stack: .. */
    for (size_t i = 0; i < n; i++)
        if (!h->seen[i] && h->canon[i] != i) /* a duplicate name */
            h->newvals[i] = h->newvals[h->canon[i]];
}

/* Add the reason at idx (a string, else a default) to the outcome. */
static void add_reason(lua_State *L, ig_hook *h, int idx)
{
    ig_hook_outcome *o = h->cur.out;
    const char *why;
    size_t len;

    o->rejected = 1;
    o->code = "HOOK";
    if (o->nreasons >= IG_HOOK_MAX_REASONS)
        return;
    why = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    if (why == NULL) {
        why = h->cur.fn == IG_HOOK_TRANSFORM ? "rejected by transform"
                                             : "rejected by validate";
        len = strlen(why);
    }
    o->reasons[o->nreasons].column = NULL;
    o->reasons[o->nreasons].message = hook_text(h->cur.arena, why, len);
    o->nreasons++;
}

/* Protected body of a row call: [h] -> nothing. Calls fn(row, ctx) and
 * turns its results into h->cur.out and, for transform, h->newvals. */
static int row_body(lua_State *L)
{
    ig_hook *h = lua_touserdata(L, 1);
    call *c = &h->cur;
    const char *what = fn_names[c->fn];
    int nres;

    lua_settop(L, 0);
    ensure_columns(L, h, c->row);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->fnref[c->fn]); /* stack: fn */
    push_row(L, h, c->row);                             /* stack: fn row */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ctxref);       /* stack: fn row ctx */
    lua_call(L, 2, LUA_MULTRET);                        /* stack: results... */
    nres = lua_gettop(L);
    if (nres == 0)
        return host_error(L, h,
                          "%s returned nothing (expected %s, or nil and a "
                          "reason)",
                          what,
                          c->fn == IG_HOOK_TRANSFORM ? "the row" : "true");
    if (c->fn == IG_HOOK_VALIDATE) {
        if (!lua_toboolean(L, 1))
            add_reason(L, h, 2);
        return 0;
    }
    switch (lua_type(L, 1)) {
    case LUA_TTABLE:
        if (!c->out->rejected)
            read_row(L, h, 1);
        return 0;
    case LUA_TNIL:
        add_reason(L, h, 2);
        return 0;
    default:
        return host_error(L, h,
                          "transform returned a %s (expected the row "
                          "table, or nil and a reason)",
                          luaL_typename(L, 1));
    }
}

/* Fill *out with a single reason; message copied into the arena. */
static void set_failure(ig_hook_outcome *out, ig_arena *a, const char *code,
                        const char *msg)
{
    out->rejected = 1;
    out->code = code;
    out->nreasons = 1;
    out->reasons[0].column = NULL;
    out->reasons[0].message = hook_text(a, msg, strlen(msg));
}

/* After a limit: close and rebuild the state so the next row starts
 * clean. IG_OK, or the sticky failure. */
static int rebuild(ig_hook *h, ig_err *err)
{
    int rc;

    close_state(h);
    h->rebuilds++;
    rc = build_state(h, &h->broken_err);
    if (rc != IG_OK) {
        h->broken = 1;
        ig_log(IG_LOG_ERROR, "hook %s: cannot rebuild the Lua state: %s",
               h->chunk, h->broken_err.msg);
        return ig_err_set(err, IG_SCRIPT, "%s", h->broken_err.msg);
    }
    return IG_OK;
}

/* Run body under the limits and classify the result. Returns 0 for a
 * clean call, 1 for a hook error (msg set), 2 for a limit (msg set). */
static int run_classified(ig_hook *h, lua_CFunction body, char *msg,
                          size_t msgsz)
{
    int st = hook_pcall(h, body, msg, msgsz);

    if (h->budget_hit) {
        snprintf(msg, msgsz, "%s", h->limit_msg);
        return 2;
    }
    if (h->mem_hit || st == LUA_ERRMEM) {
        snprintf(msg, msgsz, "%s: memory cap of %ld KiB exceeded", h->chunk,
                 h->max_memory_kb);
        return 2;
    }
    return st == LUA_OK ? 0 : 1;
}

/* ------------------------------------------------------------------------
 * Batches
 * ---------------------------------------------------------------------- */

static void set_count(lua_State *L, const char *k, long long v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

/* Protected body of a batch call: [h] -> nothing. fn(ctx[, summary]). */
static int batch_body(lua_State *L)
{
    ig_hook *h = lua_touserdata(L, 1);
    const ig_hook_summary *s = h->cur.summary;
    int nargs = 1;

    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->fnref[h->cur.fn]); /* stack: fn */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ctxref);           /* stack: fn ctx */
    if (h->cur.fn == IG_HOOK_AFTER_BATCH) {
        lua_createtable(L, 0, 7); /* stack: fn ctx summary */
        set_count(L, "batch", s ? s->batch : 0);
        set_count(L, "rows", s ? s->rows : 0);
        set_count(L, "inserted", s ? s->inserted : 0);
        set_count(L, "updated", s ? s->updated : 0);
        set_count(L, "unchanged", s ? s->unchanged : 0);
        set_count(L, "skipped", s ? s->skipped : 0);
        set_count(L, "failed", s ? s->failed : 0);
        nargs = 2;
    }
    lua_call(L, nargs, 0);
    return 0;
}

/* ------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------- */

static char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return ig_xstrdup(s ? s + 1 : path);
}

ig_hook *ig_hook_new(const ig_hook_opts *opts, ig_err *err)
{
    ig_hook *h = NULL;

    if (opts == NULL || opts->path == NULL || opts->path[0] == '\0') {
        ig_err_set(err, IG_CONFIG, "hook: no module path given");
        return NULL;
    }
    if (opts->max_instructions < 0 || opts->max_memory_kb < 0 ||
        opts->max_cpu_ms < 0 ||
        (opts->max_memory_kb > 0 && opts->max_memory_kb < MIN_MEMORY_KB)) {
        ig_err_set(err, IG_CONFIG,
                   "hook %s: max_instructions and max_cpu_ms must be >= 0 "
                   "and max_memory_kb 0 or >= %ld",
                   opts->path, MIN_MEMORY_KB);
        return NULL;
    }
    h = ig_xcalloc(1, sizeof *h);
    h->big_top[0] = h->big_top[1] = -1;
    h->path = ig_xstrdup(opts->path);
    h->chunk = base_name(opts->path);
    h->module = ig_xstrdup(opts->module ? opts->module : h->chunk);
    h->lua_path = opts->lua_path ? ig_xstrdup(opts->lua_path) : NULL;
    h->pipeline = opts->pipeline ? ig_xstrdup(opts->pipeline) : NULL;
    h->max_instructions = opts->max_instructions
                              ? (lua_Integer)opts->max_instructions
                              : DEFAULT_MAX_INSTRUCTIONS;
    h->max_memory_kb =
        opts->max_memory_kb ? opts->max_memory_kb : DEFAULT_MAX_MEMORY_KB;
    h->mem_cap = (size_t)h->max_memory_kb * 1024;
    h->max_cpu_ms = opts->max_cpu_ms ? opts->max_cpu_ms : DEFAULT_MAX_CPU_MS;
    if (build_state(h, err) != IG_OK) {
        ig_hook_free(h);
        return NULL;
    }
    return h;
}

void ig_hook_free(ig_hook *h)
{
    if (h == NULL)
        return;
    close_state(h);
    free(h->path);
    free(h->chunk);
    free(h->module);
    free(h->lua_path);
    free(h->pipeline);
    free(h->canon);
    free(h->seen);
    free(h->newvals);
    free(h->big);
    free(h);
}

int ig_hook_has(const ig_hook *h, ig_hook_fn fn)
{
    return h && h->L && fn >= 0 && fn < IG_HOOK__COUNT &&
           h->fnref[fn] != LUA_NOREF;
}

size_t ig_hook_memory(const ig_hook *h)
{
    return h ? h->mem_used : 0;
}

unsigned ig_hook_rebuilds(const ig_hook *h)
{
    return h ? h->rebuilds : 0;
}

int ig_hook_call_row(ig_hook *h, ig_hook_fn fn, ig_hook_row *row,
                     ig_arena *arena, ig_hook_outcome *out, ig_err *err)
{
    char msg[MAX_MESSAGE + 300];
    int res;

    if (out)
        memset(out, 0, sizeof *out);
    if (h == NULL || row == NULL || arena == NULL || out == NULL ||
        (fn != IG_HOOK_TRANSFORM && fn != IG_HOOK_VALIDATE))
        return ig_err_set(err, IG_STATE,
                          "ig_hook_call_row: needs a hook, a row, an arena, "
                          "an outcome and transform or validate");
    if (h->broken)
        return ig_err_set(err, IG_SCRIPT, "%s", h->broken_err.msg);
    if (h->fnref[fn] == LUA_NOREF)
        return IG_OK; /* nothing to run: the row passes unchanged */

    h->cur = (call){
        .kind = CALL_ROW, .fn = fn, .row = row, .arena = arena, .out = out};
    res = run_classified(h, row_body, msg, sizeof msg);
    h->cur = (call){0};
    if (res == 0) {
        if (!out->rejected && fn == IG_HOOK_TRANSFORM)
            memcpy(row->vals, h->newvals, row->n * sizeof *row->vals);
        return IG_OK;
    }
    memset(out, 0, sizeof *out); /* ctx:reject reasons do not matter now */
    set_failure(out, arena, res == 2 ? "HOOK_LIMIT" : "HOOK_ERROR", msg);
    if (res == 2)
        ig_log(IG_LOG_WARN, "hook %s: row %lld: %s; rebuilding the state",
               h->chunk, row->rowno, msg);
    return res == 2 ? rebuild(h, err) : IG_OK;
}

int ig_hook_call_batch(ig_hook *h, ig_hook_fn fn,
                       const ig_hook_summary *summary, ig_err *err)
{
    char msg[MAX_MESSAGE + 300];
    int res;

    if (h == NULL || (fn != IG_HOOK_BEFORE_BATCH && fn != IG_HOOK_AFTER_BATCH))
        return ig_err_set(err, IG_STATE,
                          "ig_hook_call_batch: needs a hook and "
                          "before_batch or after_batch");
    if (h->broken)
        return ig_err_set(err, IG_SCRIPT, "%s", h->broken_err.msg);
    if (h->fnref[fn] == LUA_NOREF)
        return IG_OK;
    h->cur = (call){.kind = CALL_BATCH, .fn = fn, .summary = summary};
    res = run_classified(h, batch_body, msg, sizeof msg);
    h->cur = (call){0};
    if (res == 0)
        return IG_OK;
    if (res == 2 && rebuild(h, NULL) != IG_OK)
        return ig_err_set(err, IG_SCRIPT,
                          "%s; and the state could not be "
                          "rebuilt: %s",
                          msg, h->broken_err.msg);
    return ig_err_set(err, IG_SCRIPT, "%s", msg);
}
