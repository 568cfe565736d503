/*
 * log.h - levelled logging to stderr.
 *
 * The log sink and level are the only process-wide state in ingot: the
 * level is set in main, or by ingot_settings_init (from INGOT_LOG_LEVEL)
 * in an embedding program, from any thread (it is atomic). Lines carry a timestamp, the level and, via
 * ig_log_job(), the job id and pipeline. Never log passwords, tokens,
 * conninfo or row values at info level or above (STYLE.md rule 18).
 */
#ifndef IG_LOG_H
#define IG_LOG_H

#include "err.h"

typedef enum {
    IG_LOG_DEBUG = 0,
    IG_LOG_INFO,
    IG_LOG_WARN,
    IG_LOG_ERROR,
    IG_LOG_OFF
} ig_log_level;

/* Set the minimum level that is written. Thread-safe. */
void ig_log_set_level(ig_log_level level);
ig_log_level ig_log_get_level(void);

/* Parse "debug", "info", "warn", "error", "off"; -1 when unknown. */
int ig_log_parse_level(const char *s);

/* Write one line (a newline is added). Thread-safe: one write(2) a line. */
void ig_log_write(ig_log_level level, const char *fmt, ...) IG_PRINTF(2, 3);

#define ig_log(level, ...)                                                \
    do {                                                                  \
        if ((level) >= ig_log_get_level())                                \
            ig_log_write((level), __VA_ARGS__);                           \
    } while (0)

/* A line stamped with the job it concerns: "job=42 pipeline=items: ...". */
#define ig_log_job(job_id, pipeline, level, fmt, ...)                     \
    ig_log((level), "job=%lld pipeline=%s: " fmt, (long long)(job_id),   \
           (pipeline), __VA_ARGS__)

#endif /* IG_LOG_H */
