/*
 * hook.h - the Lua 5.4 host for pipeline hooks, sandboxed.
 *
 * One ig_hook owns one lua_State and belongs to one thread (each worker
 * thread builds its own). The state is built from an allow-list: base
 * minus load/loadfile/dofile/rawset/warn (print goes to the debug log,
 * collectgarbage allows only "collect"/"count"/"step", setmetatable
 * refuses __gc, xpcall's handler cannot outlive the budget), string
 * without dump, table, math, utf8, and os.time/clock/date/difftime. No io,
 * debug, package or coroutine. require loads only text modules found on
 * opts.lua_path (names are dotted words, never paths) plus the built-in
 * "ingot". Every library table is a read-only proxy, the string metatable
 * and _G's are locked, there is an instruction budget per call (a count
 * hook that pcall inside the script cannot swallow) and a memory cap per
 * state (custom lua_Alloc). A hook error, a budget or memory overrun is the
 * row's outcome (with the script's file:line), never a crash; after a
 * limit the state is rebuilt and the next row works.
 *
 * A hook module returns a table with any of:
 *   transform(row, ctx) -> row | nil, "why"      per row, may change values
 *   validate(row, ctx)  -> true | nil, "why"     per row; changes ignored
 *   before_batch(ctx)                            per batch
 *   after_batch(ctx, summary)                    per batch
 * A field with one of these names that is not a function, or a module
 * with none of them, fails ig_hook_new.
 *
 * row maps field names to strings, or ingot.null for SQL NULL. It is one
 * table reused for every row of the state: copy what must outlive a call.
 * transform may return it or a new table; on the way back a missing key
 * (nil) reads as NULL, integers become "42", floats the shortest "%.17g"
 * form that reads back exactly, booleans "t"/"f". A key that is not a
 * column, a value of another type, a NUL byte or invalid UTF-8, or a
 * return that is neither a table nor nil is a HOOK_ERROR; returning
 * nothing at all is one too (a forgotten "return row"). A rejected or
 * failed row keeps its input values.
 *
 * ctx is read-only: ctx.row, ctx.line, ctx.target (row hooks), ctx.batch
 * (after_batch), ctx.pipeline, ctx.module; ctx:reject([column,] message)
 * records a reason (up to IG_HOOK_MAX_REASONS) and rejects the row once
 * the hook returns; ctx:log(message) logs at info with the row number.
 */
#ifndef IG_HOOK_H
#define IG_HOOK_H

#include "arena.h"
#include "err.h"
#include "value.h"

typedef struct ig_hook ig_hook; /* opaque; one thread at a time */

typedef enum {
    IG_HOOK_TRANSFORM = 0,
    IG_HOOK_VALIDATE,
    IG_HOOK_BEFORE_BATCH,
    IG_HOOK_AFTER_BATCH,
    IG_HOOK__COUNT
} ig_hook_fn;

typedef struct ig_hook_opts {
    const char *path;      /* the module's file (copied) */
    const char *module;    /* its name, for messages (copied) */
    const char *lua_path;  /* ';'-separated "dir/?.lua" patterns that
                              require may search (copied); NULL = only
                              the built-in "ingot" */
    const char *pipeline;  /* ctx.pipeline (copied) */
    long max_instructions; /* per call; 0 = 1000000 */
    long max_memory_kb;    /* per state; 0 = 32768 */
    long max_cpu_ms;       /* per call; 0 = 2000 */
} ig_hook_opts;

/* One row crossing into Lua and back. names and n are fixed for an
 * import; vals is read before the call and written after it. */
typedef struct ig_hook_row {
    size_t n;
    const char *const *names; /* borrowed */
    ig_value *vals;           /* in/out; new bytes go to the call's arena */
    long long rowno;          /* ctx.row */
    long long line;           /* ctx.line */
    const char *target;       /* ctx.target, or NULL */
} ig_hook_row;

#define IG_HOOK_MAX_REASONS 8

typedef struct ig_hook_reason {
    const char *column;  /* arena, or NULL for the whole row */
    const char *message; /* arena */
} ig_hook_reason;

typedef struct ig_hook_outcome {
    int rejected;     /* 1 = the row is rejected */
    const char *code; /* static: "HOOK" (nil, why / ctx:reject),
                         "HOOK_ERROR" (runtime error), "HOOK_LIMIT"
                         (instruction budget or memory cap) */
    size_t nreasons;
    ig_hook_reason reasons[IG_HOOK_MAX_REASONS];
} ig_hook_outcome;

/* Counts handed to after_batch as the summary table. */
typedef struct ig_hook_summary {
    long long batch; /* 1-based batch number */
    long long rows, inserted, updated, unchanged, skipped, failed;
} ig_hook_summary;

/* Build the sandboxed state and load the module (under the same limits as
 * a call). Owned; NULL with *err: IG_CONFIG for bad options (no path,
 * negative limits, max_memory_kb below 256), IG_SCRIPT "items.lua:12: ..."
 * when the module does not load or return a table, or a hook field is not
 * a function, IG_NOMEM when no state can be created. */
ig_hook *ig_hook_new(const ig_hook_opts *opts, ig_err *err) IG_MUSTCHECK;

/* Close the state and free. NULL is a no-op. Cannot fail. */
void ig_hook_free(ig_hook *h);

/* 1 when the module defines fn. Cannot fail. */
int ig_hook_has(const ig_hook *h, ig_hook_fn fn);

/* Bytes the state holds now (counted by the capped allocator). */
size_t ig_hook_memory(const ig_hook *h);

/* How many times the state was rebuilt after a limit. */
unsigned ig_hook_rebuilds(const ig_hook *h);

/* Call transform or validate on row. IG_OK with *out describing the
 * outcome (rejected or not; for transform, row->vals updated, new bytes and
 * reason strings in arena); a module without fn lets the row pass. An
 * error other than IG_OK means the host itself failed: IG_STATE for bad
 * arguments, IG_SCRIPT when the state could not be rebuilt after a limit
 * (sticky: every later call fails the same way). Stop the import. */
int ig_hook_call_row(ig_hook *h, ig_hook_fn fn, ig_hook_row *row,
                     ig_arena *arena, ig_hook_outcome *out,
                     ig_err *err) IG_MUSTCHECK;

/* Call before_batch (summary NULL) or after_batch; IG_OK when the module
 * does not define fn. A hook error or limit here is returned as IG_SCRIPT
 * with *err "file:line: message" (after a limit the state is rebuilt); the
 * caller decides (the engine logs it and goes on). IG_STATE for a row fn. */
int ig_hook_call_batch(ig_hook *h, ig_hook_fn fn,
                       const ig_hook_summary *summary,
                       ig_err *err) IG_MUSTCHECK;

#endif /* IG_HOOK_H */
