/*
 * results.h - what an import did: counts (overall and per target), the
 * failed rows with their reasons and original values, and the reject file.
 *
 * Row failures are data, not errors (STYLE rule 7): they are recorded here
 * and processing goes on. Each failed source row is recorded once with all
 * of its reasons; the reject file gets one line per failed row, in the
 * input's own CSV dialect, with the original columns followed by
 * ingot_row, ingot_line and ingot_error, so a user can fix it and re-import
 * just those rows.
 *
 * The in-memory list keeps at most max_kept failed rows, each with at
 * most its first 1024 values and 64 KiB of them (the counts and the
 * reject file always cover all of them, whole). Thread-safe: the map thread
 * and the database thread both record into it (one mutex inside).
 */
#ifndef IG_RESULTS_H
#define IG_RESULTS_H

#include <stdio.h>

#include "err.h"
#include "value.h"

typedef struct ig_results ig_results; /* opaque */

typedef struct ig_counts {
    long long read;      /* data rows read (good or bad) */
    long long inserted;
    long long updated;
    long long unchanged;
    long long skipped;
    long long failed;
} ig_counts;

/* One reason a row failed. */
typedef struct ig_reason {
    const char *target;     /* target name, or NULL (reader, hooks) */
    const char *column;     /* column name, or NULL */
    const char *code;       /* rule name, HOOK*, CSV_*, DUPLICATE_KEY,
                               MISSING_PARENT,
                               AMBIGUOUS_PARENT, or a SQLSTATE */
    const char *constraint; /* constraint name, or NULL */
    const char *message;
} ig_reason;

/* A failed row as kept in memory. All strings owned by the results. */
typedef struct ig_failed_row {
    long long row;           /* data row number, 1-based */
    long long line;          /* source line, 1-based (0 = unknown) */
    size_t nreasons;
    const ig_reason *reasons;
    size_t nvalues;            /* at most 1024, and 64 KiB of values */
    const char *const *values; /* original fields (NULL = empty/NULL) */
} ig_failed_row;

typedef struct ig_results_opts {
    size_t ntargets;
    const char *const *targets; /* target names (copied) */
    size_t max_kept;            /* failed rows kept in memory; 0 = 1000 */
} ig_results_opts;

ig_results *ig_results_new(const ig_results_opts *opts);
void ig_results_free(ig_results *r);

/* Write failed rows to the reject file at path (copied), in the input's
 * dialect: header holds the input's column names (copied), delimiter and
 * quote are the input's, and so is the encoding (an iconv name such as
 * "WINDOWS-1252", or NULL for UTF-8), so the file re-imports through the
 * same pipeline. Nothing is opened until the first failed row,
 * so an import without one leaves path alone (it is not created, and a
 * file already there is not truncated). */
void ig_results_set_reject(ig_results *r, const char *path,
                           const char *const *header, size_t ncols,
                           char delimiter, char quote, const char *encoding);

/* Where the reject file copies a row the reader could not parse from:
 * fd, a regular file read with pread() (never moved; -1: none), or the
 * input in memory (buf, len; NULL: none). Such a row is then written as
 * it was in the input, byte for byte, followed by the ingot_* fields: it
 * fails the same way when imported again until someone fixes it, and
 * nothing of it is lost (an over-long field, a misplaced quote). Without
 * a source its fields are written as read. Call after
 * ig_results_set_reject. */
void ig_results_set_reject_source(ig_results *r, int fd, const char *buf,
                                  size_t len);

/* The input's width when it has no header row (its first clean record's
 * field count): a ragged row of such an input is padded or cut to it, so
 * its ingot_* fields never fall under data columns of a re-import. */
void ig_results_set_reject_width(ig_results *r, size_t width);

/* Close the reject file, if a failed row opened it; IG_IO naming the path
 * if it could not be created or written. */
int ig_results_close_reject(ig_results *r, ig_err *err) IG_MUSTCHECK;

/* Whether name is one of the columns a reject file adds (ingot_row,
 * ingot_line, ingot_error): a reject file imported again is read without
 * them and written with them once. */
int ig_results_is_reject_column(const char *name);

/* Whether the reject file was created (some row failed since
 * ig_results_set_reject). */
int ig_results_reject_written(const ig_results *r);

/* Record a failed row with its reasons and original fields (all copied;
 * the kept copies, which callers show, in valid UTF-8: a NUL byte or an
 * invalid sequence as U+FFFD). offset, end: the record's bytes in the
 * input (see ig_record; -1 when unknown). Counts it as failed. Cannot
 * fail (allocation aborts). */
void ig_results_fail_row(ig_results *r, long long row, long long line,
                         long long offset, long long end,
                         const ig_value *values, size_t nvalues,
                         const ig_reason *reasons, size_t nreasons);

/* Add to the overall counts (read/inserted/... deltas) and to target t's
 * counts (t < 0: overall only). */
void ig_results_add(ig_results *r, int t, const ig_counts *delta);

/* Snapshot of the counts (overall or for target t). The overall skipped
 * count is derived: read - failed - inserted - updated - unchanged. */
ig_counts ig_results_counts(const ig_results *r);
ig_counts ig_results_target_counts(const ig_results *r, size_t t);
size_t ig_results_ntargets(const ig_results *r);
const char *ig_results_target_name(const ig_results *r, size_t t);

/* Failed rows kept in memory, in the order recorded. Borrowed: valid until
 * ig_results_free; read only after the import finished. */
size_t ig_results_nfailed_kept(const ig_results *r);
const ig_failed_row *ig_results_failed_row(const ig_results *r, size_t i);

#endif /* IG_RESULTS_H */
