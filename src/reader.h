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
 * with the next record wherever the format allows. The message starts
 * with "<name>:<line>: " (the line where the record starts). Codes:
 *   CSV_RAGGED     wrong number of fields (vs the header, or the first
 *                  clean record without a header), or more than
 *                  max_fields; the fields read are still returned
 *   CSV_QUOTE      unterminated quoted field (reported at EOF: it swallowed
 *                  the rest of the input), or a quote where RFC 4180 allows
 *                  none ('a"b', '"a"b'): the fields up to there are
 *                  returned, the last one with the rest of that physical
 *                  line, from the refused byte on, appended as read
 *                  (converted to UTF-8; 'a"b,c' stays 'a"b,c', but
 *                  '"a"b,c' is 'ab,c': the field's own quotes are
 *                  gone), which is not parsed further
 *   CSV_UTF8       invalid UTF-8 (in a UTF-8 source): bad byte, truncated
 *                  or overlong sequence, surrogate, > U+10FFFF
 *   CSV_NUL        a NUL byte in a field
 *   CSV_FIELD_SIZE a field longer than max_field_bytes (its value is "")
 * One problem per record is reported, whatever the chunk size: a quote
 * problem first, then an over-long field, a NUL byte, invalid UTF-8 and
 * the field count, in that order; of two of one kind, the first.
 *
 * Spaces are data (RFC 4180): fields are not trimmed, and a space after
 * a closing quote is a CSV_QUOTE error. Lines that hold nothing but spaces
 * and tabs are blank; blank lines are skipped (not records). A lone CR,
 * CRLF and LF all end a line, except in an LF file (its first line ends
 * with a bare LF: see ig_reader_lf_only), where a CR inside a field is
 * data. Empty fields are "" (is_null = 0): NULL markers are the
 * pipeline's business.
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
    FILE *file;      /* borrowed; read until EOF; or NULL and: */
    const char *buf; /* borrowed memory input */
    size_t buf_len;
    const char *name; /* copied; for messages: path, "-" or
                         "request body"; NULL = "input" */
    char delimiter;   /* 0 = ','; ASCII, not CR, LF or the quote */
    char quote;       /* 0 = '"'; ASCII, not CR or LF */
    int header;       /* 1 = first record is the header */
    ig_encoding encoding;
    size_t max_field_bytes; /* 0 = 1 MiB (after conversion to UTF-8) */
    size_t max_fields;      /* per record; 0 = 16384 */
    size_t chunk_size;      /* read size; 0 = 64 KiB, minimum 4 (tests use
                               tiny chunks to hit every boundary) */
    /* Polled about every 100 ms while a pipe, terminal or socket has no
     * data yet (a regular file or memory never waits): once it returns
     * nonzero the reader stops with IG_CANCELED. NULL: wait as long as
     * the input takes. Such an input is read as its bytes arrive, not
     * in whole chunks, so the rows already written to a pipe are read
     * while its writer is still busy. */
    int (*stop)(void *ud);
    void *stop_ud;
    /* Borrowed, or NULL: every byte read from file is also written to it
     * (write(2), in input order, so a byte offset of the input is one of
     * the spool): a pipe's copy, from which the reject file copies the
     * rows the reader could not parse. A failed write ends the copy
     * (rows past it are written from their values instead). */
    FILE *spool;
} ig_reader_opts;

/* Create a reader and, when opts->header, read the header record.
 * Owned; NULL with *err: IG_CONFIG for bad options (delimiter, quote,
 * no usable encoding), IG_IO on a read error, IG_DATA for an empty input
 * with header = 1 ("empty input: no header row") or a malformed header. */
ig_reader *ig_reader_new(const ig_reader_opts *opts, ig_err *err) IG_MUSTCHECK;

/* Free the reader (not opts->file: the caller closes it). NULL is a
 * no-op. Cannot fail. */
void ig_reader_free(ig_reader *r);

/* Header names (borrowed: valid until ig_reader_free). Zero columns when
 * the source has no header. Names are trimmed of surrounding spaces and
 * tabs. ig_reader_column() gives NULL for i >= ig_reader_ncolumns(). */
size_t ig_reader_ncolumns(const ig_reader *r);
const char *ig_reader_column(const ig_reader *r, size_t i);

/* Index of the header column named exactly name (after trimming), the
 * first one if repeated, or -1. Cannot fail. */
long ig_reader_find_column(const ig_reader *r, const char *name);

/* ig_reader_next: IG_OK with *got = 1 (record) or *got = 0 (end of input),
 * or IG_IO with *err on a read error, or IG_CANCELED when opts->stop
 * stopped a wait for input (both sticky: later calls fail the same; a
 * record cut by the stop is not returned). ig_reader_new fails the same
 * way while it reads the header.
 * The record's fields, their bytes and its error message are borrowed
 * from arena: valid until the caller resets or frees it. A record is
 * always built in the arena of the call that returns it, so the caller
 * may reset the arena between any two calls. */
int ig_reader_next(ig_reader *r, ig_arena *arena, ig_record *rec, int *got,
                   ig_err *err) IG_MUSTCHECK;

/* Bytes consumed from the input so far, BOM included (for progress: at
 * end of input it is the input's size). Cannot fail. */
long long ig_reader_bytes(const ig_reader *r);

/* Whether the input is an LF file: its first line ended with a bare LF,
 * so only LF ends a line and a CR inside a field (which scripts write
 * unquoted) is data; a CR at a field's edge (a CRLF line's) is dropped.
 * Otherwise (CRLF, or CR-only files) CR, LF and CRLF each end a line.
 * Decided at the first line end; 0 before it. Cannot fail. */
int ig_reader_lf_only(const ig_reader *r);

/* Fields a record should have: the header's count, or for an input
 * without a header row its first clean record's; -1 before that record.
 * Cannot fail. */
long long ig_reader_width(const ig_reader *r);

#endif /* IG_READER_H */
