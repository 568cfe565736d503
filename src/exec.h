/*
 * exec.h - the upsert executor: applies one batch to PostgreSQL with
 * row locks only.
 *
 * For each batch, inside the caller's transaction: COPY the batch's rows
 * into a per-connection temporary stage table, then per target in
 * dependency order one
 *   INSERT INTO t (..) SELECT .. FROM stage [LEFT JOIN parents] ORDER BY key
 *   ON CONFLICT (key) WHERE <predicate> DO UPDATE SET ..
 *   WHERE (t.c, ..) IS DISTINCT FROM (new c, ..) RETURNING (xmax = 0)
 * counting inserted, updated and unchanged rows. Ordering by key gives
 * every writer the same lock order; the IS DISTINCT FROM guard skips no-op
 * updates (updated_at is not touched); no statement ever takes a table
 * lock. duplicates: last is resolved here with DISTINCT ON (key) keeping
 * the highest row; first / error were resolved before (keyset.h).
 *
 * Insert-first path: for a one-target pipeline without lookups whose
 * columns have the declared types, a caller expecting new keys
 * (IG_EXEC_INSERT_FIRST) gets the batch COPYed straight into the table in
 * a savepoint, with a short lock_timeout. COPY inserts rows in bulk and
 * runs about twice as fast as the upsert; if anything fails (a key exists,
 * a row is bad, a lock wait) the savepoint is rolled back and the upsert
 * below runs as if nothing happened. Same rows, same counts.
 *
 * MERGE form: for a one-target pipeline whose batch is staged in key
 * order, whose mapped values are cast to their columns' exact types,
 * whose key predicate (if any) is `col IS NULL` on a column it does not
 * map, and whose table's constraints MERGE checks as the upsert would
 * (no NOT NULL or CHECK on a column whose proposed value may differ from
 * the value that stays; no row security, partition, generated column or
 * trigger; see mergeable in exec.c), a whole batch is
 * first applied as one MERGE .. WHEN MATCHED AND (..) IS DISTINCT FROM
 * (..) THEN UPDATE .. WHEN NOT MATCHED THEN INSERT, in a savepoint:
 * without the upsert's speculative insertion of every new row and lock
 * of every unchanged one, 1.06x-1.15x as fast. If anything fails (a bad
 * row, a key a concurrent session inserted) the savepoint is rolled back
 * and the upsert's forms run: the same rows, counts and row errors
 * (IG_EXEC_NO_MERGE: never). What differs: a row left unchanged is not
 * locked (so a concurrent change committed after the MERGE's snapshot
 * stays, where the upsert would wait for it and write over it), and
 * serial or identity values are drawn for inserted rows only.
 *
 * Row failures never sink a batch. Rows whose lookup finds no parent, rows
 * that hit an existing key under on_conflict: error, and rows PostgreSQL
 * rejects (constraint, trigger, cast) are isolated -- the last by a row
 * pass (a PL/pgSQL loop in pg_temp applying the subset one row at a time,
 * each in an exception block, rolled back after) or, where no row fails
 * alone or the pass cannot run, by bisection with savepoints -- marked
 * failed in the batch with their
 * SQLSTATE, constraint and message, and the rest is applied. A row is
 * atomic across targets: a row that fails in any target writes nothing.
 *
 * Stage layout (the map stage writes COPY lines in this order): _row (the
 * row's index in the batch), one boolean per target (is the target
 * eligible for this row), then for each target each column's value (for a
 * lookup column: the parent's natural key).
 *
 * An ig_exec is immutable after ig_exec_new (but for one flag, set
 * atomically, that ends the MERGE form after a failure of the statement
 * itself) and may be shared by threads; each call uses the connection it
 * is given.
 */
#ifndef IG_EXEC_H
#define IG_EXEC_H

#include <libpq-fe.h>

#include "batch.h"
#include "err.h"
#include "pipeline.h"
#include "results.h"

typedef struct ig_exec ig_exec; /* opaque */

/* Build the statements for p. conn (borrowed) is used once to resolve the
 * types of lookup keys in the catalog. Owned; NULL with *err (a parent
 * table or column missing: IG_CONFIG; database trouble: IG_DB*). */
ig_exec *ig_exec_new(const ig_pipeline *p, PGconn *conn, ig_err *err)
    IG_MUSTCHECK;

void ig_exec_free(ig_exec *ex);

/* Flags for ig_exec_batch: what the caller knows of conn's stage table. */
enum {
    IG_EXEC_STAGE_EXISTS = 1, /* created by an earlier committed batch on
                                 this connection (skip CREATE) */
    IG_EXEC_STAGE_DIRTY = 2,  /* may hold rows of an earlier batch of the
                                 same transaction (dry run): clear it */
    IG_EXEC_INSERT_FIRST = 4, /* the rows' keys are probably new: try the
                                 insert-first path (see below) */
    IG_EXEC_PROVE = 8,        /* this import has not run its upsert yet:
                                 plan it (EXPLAIN) before an insert-first
                                 COPY, so a table without a unique index
                                 matching the key fails as the upsert
                                 would instead of taking every row */
    IG_EXEC_BEGIN = 16,       /* conn is not in a transaction: start the
                                 batch's own in the first query string
                                 (one round trip less) and report its xid */
    IG_EXEC_NO_MERGE = 32     /* never try the MERGE form (see below) */
};

/* Room for the xid ig_exec_batch reports under IG_EXEC_BEGIN. */
#define IG_EXEC_XID_LEN 32

/* Identifies the stage layout: a connection whose tag equals it already
 * has the stage table (see ig_pool_conn_tag). */
unsigned long long ig_exec_stage_id(const ig_exec *ex);

/* Apply rows[0..n) of batch b (rows == NULL: all of them) on conn, which
 * must be inside a transaction unless flags has IG_EXEC_BEGIN: then the
 * call starts one (BEGIN rides with its first statements) and writes its
 * xid to xid[IG_EXEC_XID_LEN]; xid stays "" when no transaction was
 * started (nothing to send, or the call failed before BEGIN ran), and the
 * caller commits or rolls back as usual. *has_stage says whether conn has
 * the stage table once the transaction commits (a batch the insert-first
 * path took whole may not have created it). Failed rows are marked in b,
 * their reason strings allocated in arena (so writers applying disjoint
 * row sets of one batch from several threads never share an allocator). flags: the
 * IG_EXEC_STAGE_* bits. Adds each target's inserted / updated /
 * unchanged / skipped to per_target[t].
 * IG_OK: the caller may commit (failed rows are marked in b). IG_DB_RETRY:
 * a transient failure (connection lost, deadlock, ...): roll back and
 * retry the whole batch. IG_DB: the batch could not be run at all. */
int ig_exec_batch(const ig_exec *ex, PGconn *conn, ig_batch *b,
                  const size_t *rows, size_t n, ig_arena *arena, int flags,
                  char *xid, int *has_stage, ig_counts *per_target,
                  ig_err *err) IG_MUSTCHECK;

/* Whether the insert-first path applies to this pipeline at all. */
int ig_exec_can_insert_first(const ig_exec *ex);

/* Whether, where the insert-first path applies, the target table had no
 * pages when ig_exec_new planned it (a partitioned table counts as
 * empty): an import's first batch then tries that path. On a table with
 * rows its first batch upserts, and later batches try the path once a
 * batch inserted only. */
int ig_exec_target_was_empty(const ig_exec *ex);

/* NULL when every target's conflict key is equal in the database exactly
 * when its mapped values' bytes are; else which key column may not be,
 * "target t, key column c (type)" (borrowed): a citext key, say, is equal
 * in another case. Duplicate keys in an import (the `duplicates` policy,
 * the batches two writers may apply at once) are found by those bytes, so
 * such rows are applied one after the other in file order instead. */
const char *ig_exec_inexact_key(const ig_exec *ex);

/* Have PostgreSQL plan (EXPLAIN, nothing runs) each target's upsert, its
 * DISTINCT ON form and its missing-parent query as an import would send
 * them, over a one-row subquery in place of the stage table, so a guard,
 * predicate or touch column the database refuses is found before any row
 * is read (ingot check). Works in a read-only transaction. IG_OK, or the
 * first refusal in *err, naming the target, its index in *target and in
 * *missing whether the missing-parent query (a lookup's predicate) was
 * refused rather than the upsert; the transaction is then aborted. */
int ig_exec_explain(ig_exec *ex, PGconn *conn, size_t *target, int *missing,
                    ig_err *err) IG_MUSTCHECK;

/* Whether target t's keys are compared by the database's hash of them
 * (ig_exec_key_hashes) instead of their mapped bytes: a key column of
 * type citext or character(n), or of a nondeterministic collation. */
int ig_exec_hashes_keys(const ig_exec *ex, size_t t);

/* The database's hash of each of n keys of target t, by the equality of
 * the key columns' types and collations (hash_record_extended), into
 * out[0..n). keys holds n keys of the target's n_key values each, in key
 * order (row-major). IG_OK, or an IG_DB / IG_DB_RETRY error. */
int ig_exec_key_hashes(const ig_exec *ex, PGconn *conn, size_t t,
                       const ig_value *keys, size_t n,
                       unsigned long long *out, ig_err *err) IG_MUSTCHECK;

/* Number of targets, and the SQL of target t's upsert (for docs, tests
 * and --explain). Borrowed. */
size_t ig_exec_ntargets(const ig_exec *ex);
const char *ig_exec_upsert_sql(const ig_exec *ex, size_t t);

#endif /* IG_EXEC_H */
