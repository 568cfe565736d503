/*
 * err.c - error codes, the ig_err context, and checked allocation.
 *
 * Everything here is reentrant and lock-free; ig_err lives in the caller.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const code_names[] = {
#define IG_ERR_NAME(name, text) "IG_" #name,
    IG_ERRORS(IG_ERR_NAME)
#undef IG_ERR_NAME
};

static const char *const code_texts[] = {
#define IG_ERR_TEXT(name, text) text,
    IG_ERRORS(IG_ERR_TEXT)
#undef IG_ERR_TEXT
};

void ig_err_clear(ig_err *err)
{
    if (err == NULL)
        return;
    err->code = IG_OK;
    err->msg[0] = '\0';
}

int ig_err_set(ig_err *err, ig_code code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

int ig_err_prefix(ig_err *err, const char *fmt, ...)
{
    char head[512];
    char old[sizeof(err->msg)];
    va_list ap;

    if (err == NULL)
        return IG_INTERNAL;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", head, old);
    return err->code;
}

const char *ig_code_name(ig_code code)
{
    if ((int)code < 0 || code >= IG__CODE_COUNT)
        return "IG_?";
    return code_names[code];
}

const char *ig_code_text(ig_code code)
{
    if ((int)code < 0 || code >= IG__CODE_COUNT)
        return "unknown error";
    return code_texts[code];
}

void ig_oom(size_t n)
{
    fprintf(stderr, "ingot: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ig_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        ig_oom(n);
    return p;
}

void *ig_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        ig_oom(n * size);
    return p;
}

void *ig_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        ig_oom(n);
    return q;
}

char *ig_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *ig_xstrdup(const char *s)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        ig_oom(strlen(s) + 1);
    return d;
}

char *ig_xasprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    s = ig_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void ig_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "ingot: %s:%d: invariant failed: %s\n", file, line, what);
    abort();
}
