/*
 * err.h - error codes and the error context every fallible call fills.
 *
 * An operation that fails returns an ig_code (never IG_OK) and, when the
 * caller passed a non-NULL ig_err, leaves a message there that names the
 * place: "file:line:col" for YAML and Lua, "row N, column \"c\"" for data,
 * table and SQLSTATE for the database. All codes, their names and default
 * messages come from the one IG_ERRORS table below (libuv's UV_ERRNO_MAP).
 *
 * A bad data row is not an error of this kind: rows go to ig_rowerrs.
 */
#ifndef IG_ERR_H
#define IG_ERR_H

#include <stddef.h>

#if defined(__GNUC__)
#define IG_MUSTCHECK __attribute__((warn_unused_result))
#define IG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define IG_UNUSED __attribute__((unused))
#else
#define IG_MUSTCHECK
#define IG_PRINTF(fmt, args)
#define IG_UNUSED
#endif

#define IG_ERRORS(X)                                                      \
    X(OK, "success")                                                      \
    X(NOMEM, "out of memory")                                             \
    X(IO, "I/O error")                                                    \
    X(USAGE, "invalid command-line usage")                                \
    X(CONFIG, "invalid pipeline or configuration")                        \
    X(DB, "database error")                                               \
    X(DB_RETRY, "transient database error")                               \
    X(SCRIPT, "Lua hook error")                                           \
    X(DATA, "invalid input data")                                         \
    X(LIMIT, "limit exceeded")                                            \
    X(TIMEOUT, "timed out")                                               \
    X(CANCELED, "canceled")                                               \
    X(NOTFOUND, "not found")                                              \
    X(STATE, "invalid state")                                             \
    X(INTERNAL, "internal error")

typedef enum {
#define IG_ERR_ENUM(name, text) IG_##name,
    IG_ERRORS(IG_ERR_ENUM)
#undef IG_ERR_ENUM
    IG__CODE_COUNT
} ig_code;

typedef struct ig_err {
    ig_code code;
    char msg[1024]; /* names the place: "items.yaml:12:5: ..." */
} ig_err;

/* Reset *err (NULL allowed) to IG_OK with an empty message. Cannot fail. */
void ig_err_clear(ig_err *err);

/* Set *err (if non-NULL) to code and the formatted message, and return
 * code, so callers can write `return ig_err_set(err, IG_CONFIG, ...)`.
 * The message is truncated to fit. */
int ig_err_set(ig_err *err, ig_code code, const char *fmt, ...)
    IG_PRINTF(3, 4);

/* Prepend "prefix: " to the message already in *err (NULL allowed) and
 * return its code; used to add the outer context on the way up. */
int ig_err_prefix(ig_err *err, const char *fmt, ...) IG_PRINTF(2, 3);

/* "IG_DB_RETRY"; static string, cannot fail ("IG_?" for a bad code). */
const char *ig_code_name(ig_code code);

/* Default message for a code ("transient database error"); static. */
const char *ig_code_text(ig_code code);

/* Invariants only (STYLE rule 10): input is validated, never asserted.
 * Aborts with the place on failure, in every build type. */
#define ig_assert(cond)                                                   \
    ((cond) ? (void)0 : ig_assert_fail(#cond, __FILE__, __LINE__))
void ig_assert_fail(const char *what, const char *file, int line)
    __attribute__((noreturn));

/* Pure helpers every module needs once and nobody should write twice. */

/* Copy of s (NULL gives NULL); owned, free(). */
char *ig_strdup(const char *s);
/* Allocate n bytes or abort the process: used only where failing to get a
 * few bytes of bookkeeping leaves no sane way on (same policy as Lua's and
 * Redis's allocator wrappers). Owned, free(). */
void *ig_xmalloc(size_t n);
void *ig_xcalloc(size_t n, size_t size);
void *ig_xrealloc(void *p, size_t n);
char *ig_xstrdup(const char *s);
/* Say that n bytes could not be had, and abort: what the above do. */
void ig_oom(size_t n) __attribute__((noreturn));
/* printf into a new owned string (never NULL; aborts on OOM). */
char *ig_xasprintf(const char *fmt, ...) IG_PRINTF(1, 2);

#endif /* IG_ERR_H */
