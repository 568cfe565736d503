/*
 * mapper.h - turns source records into batch rows: the pipeline's column
 * mapping, built-in transforms and rules (rules.h), the Lua hooks
 * (hook.h), per-target skip conditions and the duplicate-key policies.
 *
 * For each record: null markers applied; transform hook; every column of
 * every target computed and checked (all failures of a row are collected,
 * not just the first); validate hook; then a row that passed gets its
 * eligibility per target (skip_when_null, duplicates: first) and its
 * duplicate check (duplicates: error) and is appended to the batch as a
 * COPY line in the stage layout of exec.h. (With keys the database
 * compares otherwise than by their bytes, ig_mapper_hash_keys, the two
 * duplicate-key decisions are made per batch instead, by
 * ig_mapper_resolve.) A row that failed is recorded
 * in the results with all its reasons and original values; nothing of it
 * reaches the database.
 *
 * One mapper per import, used by one thread (it owns the keysets and
 * borrows the hook, which must belong to the same thread).
 */
#ifndef IG_MAPPER_H
#define IG_MAPPER_H

#include "batch.h"
#include "err.h"
#include "hook.h"
#include "pipeline.h"
#include "results.h"
#include "value.h"

typedef struct ig_mapper ig_mapper; /* opaque */

/* Resolve the pipeline's input columns against the source header
 * (header/ncols borrowed for the mapper's life; ncols 0 for headerless
 * sources, which map by position). hook may be NULL. Owned; NULL with
 * *err (IG_CONFIG) when a mapped column is missing under
 * missing_columns: error, or an unmapped one exists under
 * unknown_columns: error; the message names them and the columns found. */
ig_mapper *ig_mapper_new(const ig_pipeline *p, const char *const *header,
                         size_t ncols, ig_hook *hook, ig_results *results,
                         ig_err *err) IG_MUSTCHECK;

void ig_mapper_free(ig_mapper *m);

/* Map one record (fields in b's arena) into b, or record it as failed.
 * IG_OK either way; another code only when the hook host broke. */
int ig_mapper_row(ig_mapper *m, const ig_record *rec, ig_batch *b,
                  ig_err *err) IG_MUSTCHECK;

/* Map a record that an earlier attempt already committed (a resumed job)
 * only so its keys enter the duplicates: error / first key sets: nothing is
 * appended to b and no failure is recorded (its arena is used for
 * scratch). IG_OK, or another code when the hook host broke. */
int ig_mapper_remember(ig_mapper *m, const ig_record *rec, ig_batch *b,
                       ig_err *err) IG_MUSTCHECK;

/* The database's 64-bit hash of each of n keys of target ti (n * n_key
 * values, row-major, in key order) into out[0..n): see
 * ig_exec_key_hashes. IG_OK or an error code with *err. */
typedef int ig_mapper_hash_fn(void *ud, size_t ti, const ig_value *keys,
                              size_t n, unsigned long long *out,
                              ig_err *err);

/* Compare the keys of the targets with hashed[ti] set by fn's hashes,
 * not by their mapped bytes (a citext key is equal in another case).
 * Then every row's duplicate-key decisions (duplicates: error / first,
 * for every target) wait until ig_mapper_resolve, which must run before
 * b is handed on or its arena reset; the rows' key hashes (ig_batch_row)
 * become the database's. Call before the first row; nothing changes when
 * no target is set. */
void ig_mapper_hash_keys(ig_mapper *m, const unsigned char *hashed,
                         ig_mapper_hash_fn *fn, void *ud);

/* Make room for the duplicate-key decisions of rows rows at once (see
 * ig_batch_reserve). */
void ig_mapper_reserve(ig_mapper *m, size_t rows);

/* Map rows before it is known how keys compare (the database's catalog
 * is still being read): every row's duplicate-key decisions wait, with
 * its key values, until ig_mapper_hash_keys says how (and after that, if
 * by bytes for every target, until the next ig_mapper_resolve only).
 * ig_mapper_resolve before ig_mapper_hash_keys is IG_STATE. Call before
 * the first row. */
void ig_mapper_defer_keys(ig_mapper *m);

/* Decide the duplicate keys of the rows mapped or remembered into b since
 * the last call, in their order, as ig_mapper_row would have: a row
 * with a key seen before fails (DUPLICATE_KEY, error) or skips the target
 * (first); its flags in b are updated. A no-op without
 * ig_mapper_hash_keys. IG_OK, or fn's error (the rows stay undecided). */
int ig_mapper_resolve(ig_mapper *m, ig_batch *b, ig_err *err) IG_MUSTCHECK;

/* Call the before_batch / after_batch hooks when defined; a hook error is
 * logged, not fatal. */
void ig_mapper_before_batch(ig_mapper *m, long long batch_no);
void ig_mapper_after_batch(ig_mapper *m, const ig_hook_summary *s);

#endif /* IG_MAPPER_H */
