/*
 * batch.h - one batch of accepted rows on its way to PostgreSQL.
 *
 * The map stage appends each accepted row as one line of COPY text
 * (_row, one eligibility flag per target, then every staged value) and
 * keeps the row's source record (for the reject file and results) in the
 * batch's arena. The executor sends all lines, or any subset of them while
 * it isolates rows PostgreSQL rejects, and marks those rows failed with a
 * reason. Reset between uses: memory is reused, so it stays flat.
 *
 * Not thread-safe: owned by the map thread while filling and by the
 * database thread while executing; the runner hands it over.
 */
#ifndef IG_BATCH_H
#define IG_BATCH_H

#include <stddef.h>

#include "arena.h"
#include "results.h"
#include "value.h"

typedef struct ig_batch ig_batch; /* opaque */

typedef struct ig_batch_row {
    ig_record rec;       /* source record; fields in the batch arena */
    size_t copy_off;     /* this row's COPY line in the buffer */
    size_t copy_len;
    unsigned long long key_hash; /* hash of the first target's key: rows
                                    with equal keys go to the same writer */
    unsigned char *elig;       /* per target: 1 = eligible (arena) */
    unsigned long long *khash; /* per target: key hash (arena) */
    int failed;          /* set by the executor */
    ig_reason reason;    /* why (strings in the batch arena) */
} ig_batch_row;

/* A row that failed, in the batch arena: before the database (reader,
 * rules, hooks, duplicate keys) or in it (marked by the executor). */
typedef struct ig_batch_failure {
    long long row, line;
    long long offset, end;    /* the record's bytes in the input (see
                                 ig_record) */
    const ig_value *values;   /* original fields */
    size_t nvalues;
    const ig_reason *reasons;
    size_t nreasons;
} ig_batch_failure;

ig_batch *ig_batch_new(void);
/* The same, its large buffers on huge pages (see pages.h): for a batch
 * whose filling the import waits for, the first (the later batches that
 * reuse it keep them). */
ig_batch *ig_batch_new_huge(void);
void ig_batch_free(ig_batch *b);

/* Make room for rows rows in all (up to 65536, and about 128 bytes of
 * COPY line each) at once, so that filling a batch of such rows does not
 * move its arrays. */
void ig_batch_reserve(ig_batch *b, size_t rows);

/* Forget all rows and reuse the memory. Cannot fail. */
void ig_batch_reset(ig_batch *b);

/* The arena for everything of this batch (records, values, reasons). */
ig_arena *ig_batch_arena(ig_batch *b);

/* Start a row whose COPY line is built with the put functions below.
 * rec is copied (its field pointers must already live in the arena). */
void ig_batch_begin_row(ig_batch *b, const ig_record *rec);
void ig_batch_put_bool(ig_batch *b, int v);
void ig_batch_put_value(ig_batch *b, ig_value v);
void ig_batch_end_row(ig_batch *b);

/* Record a row that failed before the database (reasons copied into the
 * arena; rec's fields must already live there). */
void ig_batch_add_failure(ig_batch *b, const ig_record *rec,
                          const ig_reason *reasons, size_t nreasons);

/* Every failure of the batch (added ones and rows the executor marked),
 * sorted by row number, in the arena: valid until the next reset. */
const ig_batch_failure *ig_batch_failures(ig_batch *b, size_t *n);

size_t ig_batch_nrows(const ig_batch *b);
ig_batch_row *ig_batch_row_at(ig_batch *b, size_t i);

/* Change row i's flag for target t, once mapped: its eligibility
 * (ig_batch_row.elig) and, in its COPY line, the boolean put for it,
 * which the stage layout puts right after _row (column 1 + t). */
void ig_batch_set_flag(ig_batch *b, size_t i, size_t t, int v);

/* Change row i's key hash for target t (ig_batch_row.khash, and key_hash
 * for target 0). */
void ig_batch_set_key_hash(ig_batch *b, size_t i, size_t t,
                           unsigned long long h);

/* The whole COPY buffer (all rows). Borrowed. */
const char *ig_batch_copy_data(const ig_batch *b, size_t *len);

/* The COPY line of row i, with its newline: *len bytes at the returned
 * pointer, borrowed from the batch. */
const char *ig_batch_line(const ig_batch *b, size_t i, size_t *len);

/* Source position after the batch's last record (for checkpoints), and
 * the last data row number in it. */
void ig_batch_set_end(ig_batch *b, long long offset, long long last_row);
long long ig_batch_end_offset(const ig_batch *b);
long long ig_batch_last_row(const ig_batch *b);

/* Per-batch bookkeeping of the map stage: rows read (good and bad) and
 * rows skipped per target before the database. */
void ig_batch_note_read(ig_batch *b, long long n);
long long ig_batch_read(const ig_batch *b);

#endif /* IG_BATCH_H */
