#!/usr/bin/env bash
# test_run_merge.sh - the executor's MERGE form (a whole batch in key
# order applied as one MERGE, the upsert only when that fails) gives
# exactly what the upsert alone gives: the same rows, counts and row
# errors, for new, changed, unchanged and soft-deleted keys and rows
# PostgreSQL rejects; each scenario runs with --merge 1 and 0 and the
# results are compared. Then what only the MERGE does: it leaves an
# unchanged row unlocked; it falls back when a concurrent session inserts
# one of its new keys; and it is not used where the table's constraints
# would judge a row otherwise than the upsert does.
source "$(dirname "$0")/lib.sh"
run_ingot 0 migrate up
# (The MERGE form needs each mapped value cast to its column's exact
# type: numeric, not numeric(8,2); text with a CHECK, not varchar(12).)
sql "CREATE TABLE widget (
       id bigserial PRIMARY KEY,
       code text NOT NULL CHECK (code <> ''),
       qty integer NOT NULL CHECK (qty >= 0),
       price numeric,
       note text CHECK (length(note) <= 12),
       memo text,
       lot integer,
       created_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now(),
       deleted_at timestamptz)"
sql "CREATE UNIQUE INDEX widget_code_live ON widget (code) WHERE deleted_at IS NULL"
P="$IT_TMP/widgets.yaml"
cat > "$P" <<'YAML'
description: widgets for the MERGE tests
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
      memo: { from: memo, update: coalesce }
      lot: { from: lot, update: never }
YAML

# gen FIRST LAST QTY : CSV rows code,qty,price,note,memo,lot for keys FIRST..LAST
gen() { awk -v a="$1" -v b="$2" -v q="${3:-0}" 'BEGIN { for (i = a; i <= b; i++)
  printf "W%04d,%d,%d.%03d,n%d,%s,%d\n", i, q + i % 5, i, i % 1000, i, (i % 3 ? "m" i : ""), i }'; }
HDR="code,qty,price,note,memo,lot"

# 1: 300 new keys in batches of 100: row 150 breaks the CHECK on qty, row
# 151's lot is no integer (the pipeline leaves it text: PostgreSQL casts
# it), row 152's note breaks the CHECK on its length; key W0250 repeats.
{ echo "$HDR"; gen 1 149; echo "W0150,-1,1.00,bad qty,,1"; echo "W0151,1,1.00,bad lot,,x"
  echo "W0152,1,1.00,a note far too long,,1"; gen 153 250; echo "W0250,7,7.77,repeat,,1"; gen 251 300; } > "$IT_TMP/f1.csv"
# 2: new keys 301..350, keys 101..200 changed (their memo empty: kept),
# keys 1..50 unchanged, one existing key with a bad qty.
{ echo "$HDR"; gen 301 350; gen 101 200 10 | sed 's/,m[0-9]*,/,,/'; gen 1 50
  echo "W0060,-5,1.00,bad again,,1"; } > "$IT_TMP/f2.csv"
# 3: soft-deleted keys come back as new live rows; the unchanged key
# W0070 comes with a lot (never updated, so never compared) that is no
# integer: the upsert's INSERT casts every value of the row it proposes,
# and so must the MERGE (alone in its batch, so the MERGE meets it).
{ echo "$HDR"; gen 1 20; echo "W0070,0,70.070,n70,m70,x"; } > "$IT_TMP/f3.csv"

# scenario MODE : the imports; writes counts and table to files.
scenario() {
  local m=$1
  sql "TRUNCATE widget RESTART IDENTITY"
  : > "$IT_TMP/log.$m"
  for f in f1 f2 f3; do
    [ $f = f3 ] && sql "UPDATE widget SET deleted_at = now() WHERE code IN ('W0001', 'W0002')"
    "$INGOT_BIN" run "$P" "$IT_TMP/$f.csv" --json --no-reject-file --batch-size 100 \
      --insert-first 0 --merge "$m" --log-level debug > "$IT_TMP/$f.$m.json" 2> "$IT_TMP/$f.log.$m" || true
    cat "$IT_TMP/$f.log.$m" >> "$IT_TMP/log.$m"
    comparable "$IT_TMP/$f.$m.json" "$f with --merge $m" > "$IT_TMP/$f.$m.counts"
  done
  sql "SELECT code, qty, price, note, memo, lot, deleted_at IS NULL, updated_at > created_at
       FROM widget ORDER BY code, id" > "$IT_TMP/table.$m"
}
scenario 0
scenario 1

for f in f1 f2 f3; do
  diff -u "$IT_TMP/$f.0.counts" "$IT_TMP/$f.1.counts" >&2 || fail "$f: the MERGE form counted differently from the upsert"
done
diff -u "$IT_TMP/table.0" "$IT_TMP/table.1" >&2 || fail "the MERGE form left other table contents than the upsert"

# The results themselves, so that both paths being wrong the same way fails.
assert_eq "297 3 1" "$(jq -r '"\(.counts.inserted) \(.counts.failed) \(.counts.skipped)"' "$IT_TMP/f1.1.json")" "f1 counts"
assert_eq "23514 22P02 23514" "$(jq -r '[.failed_rows[].reasons[0].code] | join(" ")' "$IT_TMP/f1.1.json")" \
  "f1: each bad row carries PostgreSQL's SQLSTATE"
assert_eq "53 97 50 1" "$(jq -r '"\(.counts.inserted) \(.counts.updated) \(.counts.unchanged) \(.counts.failed)"' "$IT_TMP/f2.1.json")" \
  "f2: 53 new (301-350 and the three keys f1 rejected), 97 changed, 50 unchanged, 1 bad"
assert_eq "W0060:23514" "$(jq -r '[.failed_rows[] | "\(.values[0]):\(.reasons[0].code)"] | join(" ")' "$IT_TMP/f2.1.json")" \
  "f2: an existing key's bad qty"
assert_eq "m101|10|t" "$(sql "SELECT memo, qty - 1, updated_at > created_at FROM widget WHERE code = 'W0101'")" \
  "an empty memo kept the stored one (update: coalesce); the row touched"
assert_eq "f" "$(sql "SELECT updated_at > created_at FROM widget WHERE code = 'W0010'")" "an unchanged row not touched"
assert_eq "2 18 1" "$(jq -r '"\(.counts.inserted) \(.counts.unchanged) \(.counts.failed)"' "$IT_TMP/f3.1.json")" \
  "f3: soft-deleted keys inserted anew, the rest unchanged"
assert_eq "W0070:22P02" "$(jq -r '[.failed_rows[] | "\(.values[0]):\(.reasons[0].code)"] | join(" ")' "$IT_TMP/f3.1.json")" \
  "f3: an existing key's bad lot fails it, though lot is never updated"

# The form was tried, and fell back only for the bad rows.
grep -q 'whole batches tried as a MERGE first' "$IT_TMP/log.1" || fail "the MERGE form was not planned"
merged=$(grep -c 'batch [0-9]* committed' "$IT_TMP/log.1")
fellback=$(grep -c 'MERGE of [0-9]* rows rolled back' "$IT_TMP/log.1" || true)
applied=$(grep -c 'rows applied by MERGE' "$IT_TMP/log.1" || true)
echo "# merge: $merged batches, $applied applied by MERGE, $fellback MERGE attempts rolled back"
assert_eq "" "$(grep 'MERGE of' "$IT_TMP/log.1" | grep -v -E 'rolled back \((23514|22P02):.*isolating the rows at fault' || true)" \
  "every MERGE fell back for a reason of the data, and went on to isolate the rows"
[ "$fellback" -ge 3 ] || fail "f1's, f2's and f3's bad rows made the MERGE fall back ($fellback)"
# f1: 2 of its 4 batches (the one with a repeated key is upserted, the
# one with bad rows isolated); f2: 2 of 3; f3: none
[ "$applied" -ge 3 ] || fail "only $applied batches were applied by MERGE"
assert_eq "0" "$(grep -c 'MERGE of' "$IT_TMP/log.0" || true)" "--merge 0 never tries it"

# --- an unchanged row another session holds locked ----------------------------
# The upsert locks every row whose key exists, changed or not, so it
# waits for the holder; the MERGE writes (and locks) only changed rows.
sql "TRUNCATE widget RESTART IDENTITY"
{ echo "$HDR"; gen 1 40; } > "$IT_TMP/same.csv"
run_ingot 0 run "$P" "$IT_TMP/same.csv" --no-reject-file --insert-first 0
# Sessions are told apart by application_name, never by timing.
active() { # active APP PATTERN: is session APP running a query LIKE PATTERN
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
            AND application_name = '$1' AND state = 'active' AND query LIKE '$2'")" -gt 0 ]
}
await() { # await WHAT CMD...: poll CMD for 15 s
  local what=$1; shift
  for _ in $(seq 1 300); do "$@" && return 0; sleep 0.05; done
  fail "$what never happened"
}
# lock_waiter: a session of this test's database waits on a row lock
lock_waiter() {
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
            AND wait_event_type = 'Lock' AND application_name NOT LIKE 'it_%'")" -gt 0 ]
}
# The holder keeps W0020 locked FOR UPDATE until it is terminated.
PGAPPNAME=it_holder psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 > "$IT_TMP/holder.out" 2>&1 <<'SQL' &
BEGIN;
SELECT 1 FROM widget WHERE code = 'W0020' FOR UPDATE;
SELECT pg_sleep(120);
COMMIT;
SQL
holder=$!
await "the holder's lock" active it_holder 'SELECT pg_sleep%'
t0=$(date +%s.%N)
run_ingot 0 run "$P" "$IT_TMP/same.csv" --json --no-reject-file --insert-first 0 --log-level debug
t1=$(date +%s.%N)
active it_holder 'SELECT pg_sleep%' || fail "the holder was gone before the MERGE finished"
assert_eq "0 40" "$(jq -r '"\(.counts.updated) \(.counts.unchanged)"' <<<"$OUT")" "every row unchanged"
assert_contains "$ERR" "40 rows applied by MERGE" "the MERGE applied the batch beside the held row"
echo "# unchanged re-import beside a held row: $(echo "$t1 - $t0" | bc) s"
# The upsert, by contrast, waits for the holder: what makes the check
# above mean something. It is seen waiting, then the holder goes.
"$INGOT_BIN" run "$P" "$IT_TMP/same.csv" --json --no-reject-file --insert-first 0 --merge 0 \
  > "$IT_TMP/upsert.json" 2> "$IT_TMP/upsert.err" &
upserter=$!
await "the upsert waiting on the held row" lock_waiter
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'it_holder'" >/dev/null
wait $holder 2>/dev/null || true
wait $upserter || fail "the upsert failed once the holder went: $(cat "$IT_TMP/upsert.err")"
assert_eq "0 40" "$(jq -r '"\(.counts.updated) \(.counts.unchanged)"' "$IT_TMP/upsert.json")" "the upsert: every row unchanged"

# --- a new key a concurrent session inserts ----------------------------------
# PostgreSQL 15's MERGE does not wait out a concurrent insert of the same
# key as ON CONFLICT does: it fails (23505), and the batch runs again as
# the upsert, which updates the row the other session committed. The
# other session commits only once the import waits on its key.
sql "TRUNCATE widget RESTART IDENTITY"
{ echo "$HDR"; gen 501 540; } > "$IT_TMP/race.csv"
PGAPPNAME=it_racer psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 > "$IT_TMP/racer.out" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO widget (code, qty, note) VALUES ('W0520', 99, 'theirs');
DO $$
BEGIN
  FOR i IN 1..600 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                      AND wait_event_type = 'Lock' AND application_name NOT LIKE 'it_%');
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
COMMIT;
SQL
racer=$!
await "the racer's insert" active it_racer 'DO %'
run_ingot 0 run "$P" "$IT_TMP/race.csv" --json --no-reject-file --insert-first 0 --log-level debug
wait $racer || fail "the racing session failed: $(cat "$IT_TMP/racer.out")"
assert_contains "$ERR" "rolled back (23505" "the MERGE met the concurrent insert and fell back"
assert_eq "39 1 0" "$(jq -r '"\(.counts.inserted) \(.counts.updated) \(.counts.failed)"' <<<"$OUT")" \
  "the racing key was updated once its session committed, the rest inserted"
assert_eq "40|0|n520" "$(sql "SELECT count(*), count(*) FILTER (WHERE qty = 99), max(note) FILTER (WHERE code = 'W0520') FROM widget")" \
  "the import's values won"

# --- tables whose constraints would judge the proposed row otherwise ---------
# INSERT .. ON CONFLICT checks the row it proposes before it finds the
# conflict; MERGE only the row it writes. Where that could differ, the
# upsert alone runs -- and rejects what it always rejected.
plan_line() { # plan_line PIPELINE CSV: whether the MERGE form was planned
  "$INGOT_BIN" run "$1" "$2" --json --no-reject-file --insert-first 0 --log-level debug \
    > "$IT_TMP/pl.json" 2> "$IT_TMP/pl.err" || true
  grep -c 'tried as a MERGE first' "$IT_TMP/pl.err" || true
}
mk() { # mk TABLE EXTRA_DDL: a fresh copy of widget's columns with EXTRA_DDL after them
  sql "SET client_min_messages = warning; DROP TABLE IF EXISTS $1; CREATE TABLE $1 (id bigserial PRIMARY KEY, code text NOT NULL,
       qty integer NOT NULL, price numeric, note text, memo text, lot integer$2,
       created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
       deleted_at timestamptz);
       CREATE UNIQUE INDEX ON $1 (code) WHERE deleted_at IS NULL"
  sed "s/table: widget/table: $1/" "$P" > "$IT_TMP/$1.yaml"
}
{ echo "$HDR"; gen 1 5; } > "$IT_TMP/five.csv"
mk plain ""
assert_eq "1" "$(plan_line "$IT_TMP/plain.yaml" "$IT_TMP/five.csv")" "a plain copy of widget is merged"
mk keepnn ""; sql "ALTER TABLE keepnn ALTER memo SET NOT NULL"
sql "INSERT INTO keepnn (code, qty, memo) VALUES ('W0003', 1, 'stored')"
assert_eq "0" "$(plan_line "$IT_TMP/keepnn.yaml" "$IT_TMP/five.csv")" "NOT NULL on a coalesce column: upsert only"
# W0003's empty memo would keep 'stored', yet the upsert rejects the
# proposed row: so does ingot, as it always has.
assert_eq "23502" "$(jq -r '[.failed_rows[] | select(.line == 4) | .reasons[0].code] | join(" ")' "$IT_TMP/pl.json")" \
  "the proposed row's NULL memo is rejected though the key exists"
mk chk ", extra integer DEFAULT 0 CHECK (extra >= 0)"
assert_eq "0" "$(plan_line "$IT_TMP/chk.yaml" "$IT_TMP/five.csv")" "a CHECK on an unmapped column: upsert only"
mk chkmemo ", CHECK (memo <> 'x')"
assert_eq "0" "$(plan_line "$IT_TMP/chkmemo.yaml" "$IT_TMP/five.csv")" "a CHECK on a coalesce column: upsert only"
mk nodef ", extra integer NOT NULL"
assert_eq "0" "$(plan_line "$IT_TMP/nodef.yaml" "$IT_TMP/five.csv")" "an unmapped NOT NULL column without default: upsert only"
mk notvalid ""; sql "ALTER TABLE notvalid ADD CHECK (qty < 1000) NOT VALID"
assert_eq "0" "$(plan_line "$IT_TMP/notvalid.yaml" "$IT_TMP/five.csv")" "a CHECK not validated: upsert only"
mk rls ""; sql "ALTER TABLE rls ENABLE ROW LEVEL SECURITY"
assert_eq "0" "$(plan_line "$IT_TMP/rls.yaml" "$IT_TMP/five.csv")" "row security: upsert only"
mk predcol ", live boolean NOT NULL DEFAULT true"
sql "DROP INDEX predcol_code_idx; CREATE UNIQUE INDEX ON predcol (code) WHERE live"
sed 's/deleted_at IS NULL/live/; s/memo: { from: memo, update: coalesce }/live: { from: live, type: bool }/' \
  "$IT_TMP/predcol.yaml" > "$IT_TMP/predcol2.yaml"
{ echo "code,qty,price,note,live,lot"; echo "W0001,1,1.00,a,true,1"; } > "$IT_TMP/live.csv"
assert_eq "0" "$(plan_line "$IT_TMP/predcol2.yaml" "$IT_TMP/live.csv")" "a key predicate naming a mapped column: upsert only"
assert_eq "1" "$(sql "SELECT count(*) FROM predcol WHERE live")" "that pipeline still imports"
# A key predicate the proposed row may not meet: ON CONFLICT then finds no
# conflict and inserts; only `col IS NULL` on an unmapped column without
# a default is certain to hold.
mk preddef ", live boolean NOT NULL DEFAULT false"
sql "DROP INDEX preddef_code_idx; CREATE UNIQUE INDEX ON preddef (code) WHERE live"
sed 's/key_predicate: deleted_at IS NULL/key_predicate: live/' "$IT_TMP/preddef.yaml" > "$IT_TMP/preddef2.yaml"
assert_eq "0" "$(plan_line "$IT_TMP/preddef2.yaml" "$IT_TMP/five.csv")" "a predicate on a column with a default: upsert only"
mk prednn ""
sql "DROP INDEX prednn_code_idx; CREATE UNIQUE INDEX ON prednn (code) WHERE deleted_at IS NOT NULL"
sed 's/key_predicate: deleted_at IS NULL/key_predicate: deleted_at IS NOT NULL/' "$IT_TMP/prednn.yaml" > "$IT_TMP/prednn2.yaml"
assert_eq "0" "$(plan_line "$IT_TMP/prednn2.yaml" "$IT_TMP/five.csv")" "a predicate a NULL does not meet: upsert only"
assert_eq "5" "$(sql "SELECT count(*) FROM prednn")" "... which inserts every row (no conflict is ever found)"
mk predq ""
sed "s/key_predicate: deleted_at IS NULL/key_predicate: '( \"deleted_at\"  is   null )'/" "$IT_TMP/predq.yaml" > "$IT_TMP/predq2.yaml"
assert_eq "1" "$(plan_line "$IT_TMP/predq2.yaml" "$IT_TMP/five.csv")" "a quoted, spaced IS NULL predicate is merged"
# Casts named otherwise than the column's type, to the same type: merged.
mk tsz ", seen timestamptz, tag varchar"
printf '      seen: { from: seen, type: timestamp }\n      tag: { from: tag }\n' >> "$IT_TMP/tsz.yaml"
{ echo "$HDR,seen,tag"; gen 1 3 | sed 's/$/,2026-01-02 03:04:05+00,t/'; } > "$IT_TMP/tsz.csv"
assert_eq "1" "$(plan_line "$IT_TMP/tsz.yaml" "$IT_TMP/tsz.csv")" "timestamptz for a timestamp, varchar for text: merged"
assert_eq "3 0" "$(jq -r '"\(.counts.inserted) \(.counts.failed)"' "$IT_TMP/pl.json")" "... and imported"
# A CHECK on an overwritten column whose equal values may differ (1.5 and
# 1.50): an unchanged row is then no proof the proposed one passes.
mk scale ", CHECK (scale(price) <= 3)"
assert_eq "0" "$(plan_line "$IT_TMP/scale.yaml" "$IT_TMP/five.csv")" "a CHECK on a numeric column: upsert only"
mk gen ", total numeric GENERATED ALWAYS AS (qty * price) STORED"
assert_eq "0" "$(plan_line "$IT_TMP/gen.yaml" "$IT_TMP/five.csv")" "a generated column: upsert only"
mk constchk ", CHECK (1 = 1)"
assert_eq "0" "$(plan_line "$IT_TMP/constchk.yaml" "$IT_TMP/five.csv")" "a CHECK naming no column: upsert only"
mk rowchk ""; sql "ALTER TABLE rowchk ADD CHECK (rowchk IS NOT NULL)"
assert_eq "0" "$(plan_line "$IT_TMP/rowchk.yaml" "$IT_TMP/five.csv")" "a CHECK on the whole row: upsert only"
# A value the upsert's INSERT would round, refuse or compare otherwise in
# the column's type than as the pipeline casts it.
mk typmod ""; sql "ALTER TABLE typmod ALTER price TYPE numeric(8,2)"
assert_eq "0" "$(plan_line "$IT_TMP/typmod.yaml" "$IT_TMP/five.csv")" "numeric(8,2) for a numeric value: upsert only"
mk vchar ""; sql "ALTER TABLE vchar ALTER note TYPE varchar(12)"
assert_eq "0" "$(plan_line "$IT_TMP/vchar.yaml" "$IT_TMP/five.csv")" "varchar(12) for a text value: upsert only"
mk coll ""; sql "ALTER TABLE coll ALTER note TYPE text COLLATE \"C\""
assert_eq "0" "$(plan_line "$IT_TMP/coll.yaml" "$IT_TMP/five.csv")" "a column with a collation of its own: upsert only"
# A partition: the proposed row is checked against its bounds.
sql "CREATE TABLE ppar (id bigserial, code text NOT NULL, qty integer NOT NULL, price numeric, note text,
       memo text, lot integer, created_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz) PARTITION BY LIST (code);
     CREATE TABLE pleaf PARTITION OF ppar FOR VALUES IN ('W0001', 'W0002', 'W0003', 'W0004', 'W0005');
     CREATE UNIQUE INDEX ON pleaf (code) WHERE deleted_at IS NULL"
sed "s/table: widget/table: pleaf/" "$P" > "$IT_TMP/pleaf.yaml"
assert_eq "0" "$(plan_line "$IT_TMP/pleaf.yaml" "$IT_TMP/five.csv")" "a partition: upsert only"
assert_eq "5" "$(sql "SELECT count(*) FROM pleaf")" "the partition's rows imported"

# --- a table with an inheriting child ------------------------------------------
# The upsert writes the table itself and finds conflicts in its own index;
# a row of the same key in a child is another row. So for the MERGE.
mk par ""
sql "CREATE TABLE par_kid () INHERITS (par); INSERT INTO par_kid (code, qty, note) VALUES ('W0004', 1, 'kid')"
assert_eq "1" "$(plan_line "$IT_TMP/par.yaml" "$IT_TMP/five.csv")" "a table with a child is merged"
assert_eq "5 0" "$(jq -r '"\(.counts.inserted) \(.counts.updated)"' "$IT_TMP/pl.json")" "every key new to the table itself"
assert_eq "kid|n4" "$(sql "SELECT (SELECT note FROM ONLY par_kid), (SELECT note FROM ONLY par WHERE code = 'W0004')")" \
  "the child's row untouched, the table got its own"
