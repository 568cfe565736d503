/*
 * value.h - the one representation of a field value that flows from the
 * reader through the pipeline, the hooks and into COPY: a byte slice that
 * is either text (UTF-8 once past the reader) or SQL NULL.
 *
 * Values never own their bytes: they point into a per-batch ig_arena, into
 * the reader's buffer or into a pipeline's constants, and are valid as long
 * as that storage is (typically: until the batch's arena is reset).
 */
#ifndef IG_VALUE_H
#define IG_VALUE_H

#include <stddef.h>

typedef struct ig_value {
    const char *p; /* borrowed; NUL-terminated when is_null == 0 */
    size_t len;    /* bytes, without the terminating NUL */
    int is_null;   /* 1 = SQL NULL (p may be NULL) */
} ig_value;

#define IG_VALUE_NULL ((ig_value){NULL, 0, 1})

/* One input record after reading: its fields in source order. */
typedef struct ig_record {
    ig_value *fields;    /* borrowed: arena; nfields entries */
    size_t nfields;
    long long recno;     /* data record number, 1-based (header excluded) */
    long long line;      /* physical line where the record starts, 1-based */
    long long offset;    /* byte offset of the record start in the input */
    long long end;       /* byte offset just past its last byte read: the
                            record as written is input[offset, end), a
                            line end it had included */
    const char *error;   /* NULL, or why the record is malformed (arena) */
    const char *error_code; /* NULL, or a short code: "CSV_QUOTE", ... */
    size_t error_field;     /* the field it concerns, 1-based; 0: the
                               record (CSV_RAGGED) */
} ig_record;

#endif /* IG_VALUE_H */
