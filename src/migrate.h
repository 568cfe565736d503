/*
 * migrate.h - numbered SQL migrations with up and down halves.
 *
 * A migration is one file "NNNN_name.sql" in the migrations directory:
 *
 *     -- ingot:up
 *     CREATE TABLE ...;
 *     -- ingot:down
 *     DROP TABLE ...;
 *
 * A line "-- ingot:no-transaction" before "-- ingot:up" marks a file whose
 * statements cannot run inside a transaction (CREATE INDEX CONCURRENTLY):
 * its statements are then run one by one in autocommit mode.
 *
 * Applied migrations are recorded in schema_migrations with a checksum
 * (XXH3-128) of the whole file. A file edited after it was applied is
 * refused: up, down and status stop with a message naming it. Every run
 * holds a session advisory lock, so two concurrent "migrate up" never apply
 * anything twice: the second waits, then finds nothing pending.
 */
#ifndef IG_MIGRATE_H
#define IG_MIGRATE_H

#include <stdio.h>
#include <libpq-fe.h>

#include "err.h"

typedef struct ig_migset ig_migset; /* opaque: the files of one directory */

/* Read and parse every NNNN_*.sql file of dir. Owned result, free with
 * ig_migset_free(); NULL with *err naming the file and problem (missing
 * half, duplicate version, unreadable file). */
ig_migset *ig_migset_load(const char *dir, ig_err *err) IG_MUSTCHECK;
void ig_migset_free(ig_migset *set);

size_t ig_migset_count(const ig_migset *set);
/* Accessors for migration i (0 <= i < count, sorted by version). Borrowed:
 * valid until ig_migset_free(). */
int ig_migset_version(const ig_migset *set, size_t i);
const char *ig_migset_name(const ig_migset *set, size_t i);
const char *ig_migset_up(const ig_migset *set, size_t i);
const char *ig_migset_down(const ig_migset *set, size_t i);
int ig_migset_no_tx(const ig_migset *set, size_t i);
const char *ig_migset_checksum(const ig_migset *set, size_t i);

/* Apply up to steps pending migrations (steps < 0: all), in version order,
 * each in its own transaction. Progress lines go to out (NULL = silent).
 * IG_OK, IG_CONFIG (edited migration), or a database error naming the
 * migration. conn is borrowed. */
int ig_migrate_up(PGconn *conn, const ig_migset *set, int steps, FILE *out,
                  ig_err *err) IG_MUSTCHECK;

/* Reverse up to steps applied migrations (steps < 0: all), newest first. */
int ig_migrate_down(PGconn *conn, const ig_migset *set, int steps, FILE *out,
                    ig_err *err) IG_MUSTCHECK;

/* Print one line per migration: version, name, applied time or "pending",
 * and "MODIFIED" / "MISSING FILE" where disk and database disagree.
 * Returns IG_CONFIG when any applied file was edited, after printing. */
int ig_migrate_status(PGconn *conn, const ig_migset *set, FILE *out,
                      ig_err *err) IG_MUSTCHECK;

#endif /* IG_MIGRATE_H */
