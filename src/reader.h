/*
 * reader.h - streaming CSV reader on libcsv.
 *
 * Reads RFC 4180 CSV (quoted fields, embedded newlines, doubled quotes,
 * CRLF or LF) from a FILE * or a memory buffer with a configurable
 * delimiter and quote, strips a UTF-8 BOM, converts latin-1 /
 * windows-1252 to UTF-8 when declared, and hands out one record at a time.
 * Field bytes live in the caller's per-batch arena, not one malloc per
 * field: memory stays flat whatever the file size.
 *
 * A malformed record is not an ig_err: it comes back as a record with
 * error/error_code set and its line and byte offset, and reading goes on
 * with the next record wherever the format allows. Codes:
 *   CSV_RAGGED     wrong number of fields (vs the header, or the first row)
 *   CSV_QUOTE      unterminated quoted field (reported at EOF: it swallowed
 *                  the rest of the input) or a stray quote in strict mode
 *   CSV_UTF8       invalid UTF-8 (in a UTF-8 source)
 *   CSV_NUL        a NUL byte in a field
 *   CSV_FIELD_SIZE a field longer than max_field_bytes
 * Blank lines are skipped (not records).
 *
 * Not thread-safe: one reader belongs to one thread.
 */
#ifndef IG_READER_H
#define IG_READER_H

#include <stdio.h>

#include "arena.h"
#include "err.h"
#include "pipeline.h"
#include "value.h"

typedef struct ig_reader ig_reader; /* opaque */

typedef struct ig_reader_opts {
    FILE *file;             /* borrowed; read until EOF; or NULL and: */
    const char *buf;        /* borrowed memory input */
    size_t buf_len;
    const char *name;       /* for messages: path, "-" or "request body" */
    char delimiter;         /* 0 = ',' */
    char quote;             /* 0 = '"' */
    int header;             /* 1 = first record is the header */
    ig_encoding encoding;
    size_t max_field_bytes; /* 0 = 1 MiB */
} ig_reader_opts;

/* Create a reader and, when opts->header, read the header record.
 * Owned; NULL with *err on a read error, an empty input with header = 1
 * ("empty input: no header row"), or a malformed header. */
ig_reader *ig_reader_new(const ig_reader_opts *opts, ig_err *err)
    IG_MUSTCHECK;

void ig_reader_free(ig_reader *r);

/* Header names (borrowed: valid until ig_reader_free). Zero columns when
 * the source has no header. Names are trimmed of surrounding blanks. */
size_t ig_reader_ncolumns(const ig_reader *r);
const char *ig_reader_column(const ig_reader *r, size_t i);

/* ig_reader_next: IG_OK with *got = 1 (record) or *got = 0 (end of input),
 * or IG_IO with *err on a read error. */
int ig_reader_next(ig_reader *r, ig_arena *arena, ig_record *rec, int *got,
                   ig_err *err) IG_MUSTCHECK;

/* Bytes consumed from the input so far (for progress). */
long long ig_reader_bytes(const ig_reader *r);

#endif /* IG_READER_H */
