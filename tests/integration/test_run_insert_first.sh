#!/usr/bin/env bash
# test_run_insert_first.sh - the executor's insert-first path (a batch of
# new keys COPYed straight into the table, the upsert only when that
# fails) gives exactly what the upsert alone gives: the same rows, counts
# and row errors, for new keys, existing keys, soft-deleted keys, repeated
# keys, rows PostgreSQL rejects (check, numeric overflow, varchar length),
# and a key another session holds uncommitted. Each scenario runs with
# --insert-first 1 and 0 and the results are compared; the debug log shows
# the path was really taken and really fell back.
source "$(dirname "$0")/lib.sh"
run_ingot 0 migrate up
sql "CREATE TABLE widget (
       id bigserial PRIMARY KEY,
       code text NOT NULL,
       qty integer NOT NULL CHECK (qty >= 0),
       price numeric(8,2),
       note varchar(12),
       seen date,
       created_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now(),
       deleted_at timestamptz)"
sql "CREATE UNIQUE INDEX widget_code_live ON widget (code) WHERE deleted_at IS NULL"
P="$IT_TMP/widgets.yaml"
cat > "$P" <<'YAML'
description: widgets for the insert-first tests
targets:
  - table: widget
    key: [code]
    key_predicate: deleted_at IS NULL
    duplicates: last
    touch: updated_at
    columns:
      code: { from: code, transforms: [trim], rules: { required: true } }
      qty: { from: qty, type: int }
      price: { from: price, type: numeric }
      note: { from: note }
      seen: { from: seen, type: date }
YAML

# gen FIRST LAST QTY : CSV rows code,qty,price,note,seen for keys FIRST..LAST
gen() { awk -v a="$1" -v b="$2" -v q="${3:-0}" 'BEGIN { for (i = a; i <= b; i++)
  printf "W%04d,%d,%d.%02d,n%d,2026-01-%02d\n", i, q + i % 5, i, i % 100, i, i % 28 + 1 }'; }
HDR="code,qty,price,note,seen"

# 1: 500 new keys in batches of 50 (100 while only inserting; every
# batch starts at a multiple of 50): rows 101-103 are bad (a violated
# check, a numeric overflow, a note too long for varchar(12)), and rows
# 260-261 repeat key W0260 inside one batch.
{ echo "$HDR"; gen 1 100; echo "W0101,-1,1.00,bad qty,2026-01-01"
  echo "W0102,1,12345678.00,overflow,2026-01-01"; echo "W0103,1,1.00,a note far too long,2026-01-01"
  gen 104 260; echo "W0260,7,7.77,repeat,2026-02-02"; gen 261 500; } > "$IT_TMP/f1.csv"
# 2: new keys 501..550, keys 201..250 with changed values, keys 1..50
# unchanged. The table has rows: the first batch (12 rows) upserts, finds
# only new keys, and the next one's attempt meets existing keys.
{ echo "$HDR"; gen 501 550; gen 201 250 10; gen 1 50; } > "$IT_TMP/f2.csv"
# 3: soft-deleted keys come back as new live rows.
{ echo "$HDR"; gen 1 20; } > "$IT_TMP/f3.csv"
# 4: new keys out of order (COPY inserts in file order, the upsert in key
# order: only the ids, which are not compared, may differ).
{ echo "$HDR"; gen 601 900 | shuf --random-source=<(yes); } > "$IT_TMP/f4.csv"

# scenario MODE : the three imports; writes counts and table to files.
scenario() {
  local m=$1
  sql "TRUNCATE widget RESTART IDENTITY"
  : > "$IT_TMP/log.$m"
  for f in f1 f2 f3 f4; do
    [ $f = f3 ] && sql "UPDATE widget SET deleted_at = now() WHERE code IN ('W0001', 'W0002')"
    "$INGOT_BIN" run "$P" "$IT_TMP/$f.csv" --json --no-reject-file --batch-size 50 \
      --insert-first "$m" --log-level debug > "$IT_TMP/$f.$m.json" 2> "$IT_TMP/$f.log.$m" || true
    cat "$IT_TMP/$f.log.$m" >> "$IT_TMP/log.$m"
    comparable "$IT_TMP/$f.$m.json" "$f with --insert-first $m" > "$IT_TMP/$f.$m.counts"
  done
  sql "SELECT code, qty, price, note, seen, deleted_at IS NULL, created_at <= updated_at
       FROM widget ORDER BY code, id" > "$IT_TMP/table.$m"
}
scenario 0
scenario 1

for f in f1 f2 f3 f4; do
  diff -u "$IT_TMP/$f.0.counts" "$IT_TMP/$f.1.counts" >&2 || fail "$f: the insert-first path counted differently from the upsert"
done
diff -u "$IT_TMP/table.0" "$IT_TMP/table.1" >&2 || fail "the insert-first path left other table contents than the upsert"

# The results themselves, so that both paths being wrong the same way fails.
assert_eq '"inserted": 497 "failed": 3 "skipped": 1' \
  "$(jq -r '"\"inserted\": \(.counts.inserted) \"failed\": \(.counts.failed) \"skipped\": \(.counts.skipped)"' "$IT_TMP/f1.1.json")" "f1 counts"
assert_eq "23514 22003 22001" "$(jq -r '[.failed_rows[].reasons[0].code] | join(" ")' "$IT_TMP/f1.1.json")" \
  "f1: each bad row carries PostgreSQL's SQLSTATE"
assert_eq "7|7.77|repeat" "$(sql "SELECT qty, price, note FROM widget WHERE code = 'W0260' AND deleted_at IS NULL")" \
  "a key repeated in a batch keeps its last row"
assert_eq "50 50 50" "$(jq -r '"\(.counts.inserted) \(.counts.updated) \(.counts.unchanged)"' "$IT_TMP/f2.1.json")" \
  "f2: 50 new, 50 changed, 50 unchanged"
assert_eq "2 18" "$(jq -r '"\(.counts.inserted) \(.counts.unchanged)"' "$IT_TMP/f3.1.json")" "f3: soft-deleted keys inserted anew"
assert_eq "2" "$(sql "SELECT count(*) FROM widget WHERE deleted_at IS NOT NULL")" "soft-deleted rows stay"

# The path was taken, and fell back where it had to.
copied=$(grep -c 'insert-first: .* rows COPYed' "$IT_TMP/log.1" || true)
fellback=$(grep -c 'insert-first attempt .* rolled back' "$IT_TMP/log.1" || true)
echo "# insert-first: $copied batches COPYed, $fellback attempts rolled back"
# f1: the first batch, and at least the two last ones (the batch with the
# bad rows falls back, the one with a repeated key upserts, and the
# reading thread sizes a batch by the outcome known when it starts it);
# f2 and f3 meet existing keys at once.
[ "$copied" -ge 3 ] || fail "the insert-first path COPYed only $copied batches"
grep -q 'rolled back (23514' "$IT_TMP/log.1" || fail "batch 3's check violation made the attempt fall back"
assert_eq "" "$(grep 'rolled back' "$IT_TMP/log.1" | grep -v -E 'rolled back \((23505|23514):' || true)" \
  "every attempt fell back for a reason of the data (an existing key, a bad row)"
grep -q 'rolled back (23505' "$IT_TMP/log.1" || fail "f2's existing keys made the attempt fall back"
assert_eq "0" "$(grep -c -E 'insert-first(:| attempt)' "$IT_TMP/log.0" || true)" "--insert-first 0 never tries it"
# Into a table with rows the first batch upserts: f3 (every key exists or
# was soft-deleted) never tries the path; f4 (new keys only) COPYs every
# batch but the first, and the second when the other writer took it
# before the first had shown that the keys are new.
assert_eq "0" "$(grep -c -E 'insert-first(:| attempt)' "$IT_TMP/f3.log.1" || true)" "f3: no attempt on a table with rows"
f4_batches=$(grep -c 'batch [0-9]* committed' "$IT_TMP/f4.log.1")
f4_copied=$(grep -c 'insert-first: .* rows COPYed' "$IT_TMP/f4.log.1" || true)
[ "$f4_copied" -ge $((f4_batches - 2)) ] && [ "$f4_copied" -le $((f4_batches - 1)) ] ||
  fail "f4: $f4_copied of $f4_batches batches COPYed, expected all but the first (and maybe the second)"
grep -q 'the table has pages, so it may have rows: not for the first batch' "$IT_TMP/f4.log.1" || fail "f4: the table's rows were not noticed"
assert_eq "0" "$(grep -c -E 'batch [0-9]+, attempt' "$IT_TMP/log.1" || true)" "no batch was retried"

# No stage table until a batch needs the upsert: f1's first batches were
# COPYed without one, the batch with the bad rows created it.
grep -q 'no stage table yet' "$IT_TMP/f1.log.1" || fail "f1: the first batch created a stage it did not need"
grep -q 'creating the stage table for the upsert' "$IT_TMP/f1.log.1" || fail "f1: the fallback did not create the stage"
# A first batch with a repeated key is not tried at all: its stage comes
# before its transaction, and the upsert keeps the key's last row.
sql "TRUNCATE widget RESTART IDENTITY"
{ echo "$HDR"; echo "W0001,1,1.00,first,2026-01-01"; echo "W0001,2,2.00,last,2026-01-02"; gen 2 30; } > "$IT_TMP/f6.csv"
run_ingot 0 run "$P" "$IT_TMP/f6.csv" --json --no-reject-file --batch-size 12 --log-level debug
assert_contains "$ERR" "creating the stage table for the upsert" "f6: the stage was created for the upsert"
assert_eq "19" "$(grep -o 'insert-first: [0-9]* rows COPYed' <<<"$ERR" | awk '{ s += $2 } END { print s }')" \
  "f6: the first batch (12 rows, a repeated key) upserted; the other 19 rows were COPYed"
assert_eq "30 1" "$(jq -r '"\(.counts.inserted) \(.counts.skipped)"' <<<"$OUT")" "f6: 30 keys inserted, the repeat skipped"
assert_eq "2|last" "$(sql "SELECT qty, note FROM widget WHERE code = 'W0001'")" "f6: the key's last row won"

# --- a key another session holds uncommitted -------------------------------
# The attempt gives up on the lock wait at once (no deadlock cycle can form
# through it); the upsert then waits for the other session, and updates
# the row it committed. The held key is in the second batch: the first
# one upserts (it proves the upsert can run).
sql "TRUNCATE widget RESTART IDENTITY"
{ echo "$HDR"; gen 501 600; } > "$IT_TMP/f5.csv"
psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 > "$IT_TMP/holder.out" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO widget (code, qty) VALUES ('W0580', 99);
SELECT pg_sleep(2);
COMMIT;
SQL
holder=$!
held=0
for _ in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.pid <> pg_backend_pid() AND a.query LIKE '%pg_sleep%'
              AND a.datname = current_database()
              AND l.locktype = 'transactionid'")" -gt 0 ] && { held=1; break; }
  sleep 0.05
done
[ $held = 1 ] || fail "the holding session never showed its transaction"
# (--batch-size 40: 100 rows in two windows would be one batch)
run_ingot 0 run "$P" "$IT_TMP/f5.csv" --json --no-reject-file --batch-size 40 --log-level debug
wait $holder || fail "the holding session failed: $(cat "$IT_TMP/holder.out")"
assert_contains "$ERR" "rolled back (55P03" "the attempt gave up on the lock wait"
assert_eq "99 1 0" "$(jq -r '"\(.counts.inserted) \(.counts.updated) \(.counts.failed)"' <<<"$OUT")" \
  "the held key was updated after the other session committed, the rest inserted"
assert_eq "100|0" "$(sql "SELECT count(*), count(*) FILTER (WHERE qty = 99) FROM widget")" "the import's values won"

# --- a table without a unique index for the key ----------------------------
# The upsert cannot run (no arbiter): the import must stop on its first
# batch, both ways, instead of COPYing every row in.
sql "CREATE TABLE loose (code text NOT NULL, qty integer)"
sed 's/table: widget/table: loose/; /key_predicate/d; /touch:/d; /price:/d; /note:/d; /seen:/d' "$P" > "$IT_TMP/loose.yaml"
for m in 1 0; do
  run_ingot 2 run "$IT_TMP/loose.yaml" "$IT_TMP/f5.csv" --no-reject-file --insert-first $m
  assert_contains "$ERR" "no unique or exclusion constraint matching the ON CONFLICT" "--insert-first $m: no arbiter index named"
  assert_eq "0" "$(sql "SELECT count(*) FROM loose")" "--insert-first $m: nothing written without an arbiter index"
done

# --- batch sizes do not depend on timing -------------------------------------
# Batches double while they only insert, sized by the outcomes of batches a
# fixed number back (all accounted by then), so a file whose keys repeat
# across --batch-size windows (a key in two windows of one doubled batch is
# a repeat there, in two batches an update) gives the same counts, row
# errors and rows in every run, and its dry run says so beforehand. A bad
# row in the windows that repeat a key checks row errors too.
{ echo "$HDR"
  for w in $(seq 0 14); do
    gen $((w * 20 + 1)) $((w * 20 + 17)) | sed "s/^W/D/"
    echo "D0003,$w,1.00,again $w,2026-03-01"
    [ $((w % 4)) = 1 ] && echo "D0007,-1,1.00,bad $w,2026-03-01" || echo "D0009,$w,2.00,again $w,2026-03-02"
    echo "D$(printf %04d $((w * 20 + 18))),1,1.00,x,2026-03-03"
  done; } > "$IT_TMP/rep.csv"
{ echo "$HDR"; i=0; for k in E3 E0 E2 E3 E3 E2 E3; do i=$((i + 1)); echo "$k,$i,1.00,x,2026-01-01"; done; } > "$IT_TMP/tiny.csv"
for how in --dry-run ""; do
  sql "TRUNCATE widget RESTART IDENTITY"
  run_ingot 0 run "$P" "$IT_TMP/tiny.csv" --json --no-reject-file --batch-size 2 $how
  assert_eq "3 4 0" "$(jq -r '"\(.counts.inserted) \(.counts.updated) \(.counts.skipped)"' <<<"$OUT")" "tiny file${how:+ ($how)}: the same batches"
done
# A file of at most two windows is one batch (a second transaction would
# cost more than it overlaps), also without a line end after its last
# row; one row more and it is cut into windows.
batches() { grep -o 'batch [0-9]* committed ([0-9]* rows)' <<<"$ERR" | paste -sd' ' -; }
{ echo "$HDR"; gen 701 710; } > "$IT_TMP/two_eol.csv"
head -c -1 "$IT_TMP/two_eol.csv" > "$IT_TMP/two.csv"
for f in two_eol two; do
  sql "TRUNCATE widget RESTART IDENTITY"
  run_ingot 0 run "$P" "$IT_TMP/$f.csv" --json --no-reject-file --batch-size 5 --log-level debug
  assert_eq "batch 1 committed (10 rows)" "$(batches)" "two windows ($f.csv): one batch"
done
# ... unless the pipeline has a hook: its per-row work overlaps the
# first window's upsert instead
mkdir -p "$IT_TMP/hp" "$IT_TMP/lua/hooks"
printf 'return { transform = function(row, ctx) return row end }\n' > "$IT_TMP/lua/hooks/it_trivial.lua"
{ printf 'hooks:\n  module: hooks.it_trivial\n'; cat "$P"; } > "$IT_TMP/hp/widgets.yaml"
sql "TRUNCATE widget RESTART IDENTITY"
run_ingot 0 run "$IT_TMP/hp/widgets.yaml" "$IT_TMP/two.csv" --json --no-reject-file --batch-size 5 --log-level debug
assert_eq "batch 1 committed (5 rows) batch 2 committed (5 rows)" "$(batches)" "two windows with a hook: two batches"
{ echo "$HDR"; gen 701 711; } > "$IT_TMP/three.csv"
sql "TRUNCATE widget RESTART IDENTITY"
run_ingot 0 run "$P" "$IT_TMP/three.csv" --json --no-reject-file --batch-size 5 --log-level debug
assert_eq "batch 1 committed (5 rows) batch 2 committed (5 rows) batch 3 committed (1 rows)" "$(batches)" "three windows: three batches"
assert_eq "11" "$(sql "SELECT count(*) FROM widget WHERE code BETWEEN 'W0701' AND 'W0711'")" "every row of them landed"

cp "$P" "$IT_TMP/rep.yaml"
sql "TRUNCATE widget RESTART IDENTITY"
run_ingot 1 run "$IT_TMP/rep.yaml" "$IT_TMP/rep.csv" --json --no-reject-file --batch-size 20 --dry-run
comparable "$IT_TMP/out" "dry run" | jq -S 'del(.status)' > "$IT_TMP/rep.dry"
for i in 1 2 3 4 5; do
  sql "TRUNCATE widget RESTART IDENTITY"
  run_ingot 1 run "$IT_TMP/rep.yaml" "$IT_TMP/rep.csv" --json --no-reject-file --batch-size 20 --log-level debug
  comparable "$IT_TMP/out" "run $i" | jq -S 'del(.status)' > "$IT_TMP/rep.$i"
  sql "SELECT code, qty, price, note FROM widget ORDER BY code" > "$IT_TMP/rep.table.$i"
  [ $i = 1 ] && { grep -c 'committed (40 rows)' "$IT_TMP/err" >/dev/null || fail "no batch was doubled: $(grep committed "$IT_TMP/err")"; }
  diff "$IT_TMP/rep.dry" "$IT_TMP/rep.$i" >/dev/null || fail "run $i counted otherwise than its dry run: $(diff "$IT_TMP/rep.dry" "$IT_TMP/rep.$i" | head -20)"
  [ $i = 1 ] || diff "$IT_TMP/rep.table.1" "$IT_TMP/rep.table.$i" >/dev/null || fail "run $i stored other rows than run 1"
done
