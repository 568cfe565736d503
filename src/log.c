/*
 * log.c - levelled logging to stderr; see log.h for the rules.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Set by main or by ingot_settings_init, which an embedding program may
 * call while other threads import: read and written atomically. */
static int g_level = IG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void ig_log_set_level(ig_log_level level)
{
    __atomic_store_n(&g_level, (int)level, __ATOMIC_RELAXED);
}

ig_log_level ig_log_get_level(void)
{
    return (ig_log_level)__atomic_load_n(&g_level, __ATOMIC_RELAXED);
}

int ig_log_parse_level(const char *s)
{
    for (int i = 0; i <= (int)IG_LOG_OFF; i++)
        if (s != NULL && strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void ig_log_write(ig_log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;
    ssize_t w;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ",
                          ts.tv_nsec / 1000000L,
                          level_names[level <= IG_LOG_OFF ? level : 0]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    /* One entry, one line: a line end inside the message (libpq's DETAIL
     * line, or a file name or value a user chose) would read as an entry
     * of its own, so control characters become spaces. */
    for (char *p = line + n; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            *p = ' ';
    n = strlen(line);
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    w = write(STDERR_FILENO, line, n); /* one write: lines never interleave */
    (void)w;
}
