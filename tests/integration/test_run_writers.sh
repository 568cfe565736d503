#!/usr/bin/env bash
# test_run_writers.sh - two writers (IMPORT_WRITERS=2, the default for a
# single-table pipeline) apply consecutive batches at once, and give
# exactly what one writer gives: the same rows, the same counts, the same
# failed rows and reject file in file order, and a key's last version
# wins even when its versions sit in consecutive batches (such a batch
# waits for the other instead of going into flight beside it). A row
# trigger records each write's transaction and time, so the test also
# sees that two transactions really overlapped. A pipeline with a lookup
# (here into its own table) keeps one writer, so a row always finds the
# rows of the batches before it.
source "$(dirname "$0")/lib.sh"
run_ingot 0 migrate up
sql "CREATE TABLE gadget (
       id bigserial PRIMARY KEY,
       code text NOT NULL,
       qty integer NOT NULL CHECK (qty >= 0),
       note text,
       updated_at timestamptz NOT NULL DEFAULT now(),
       deleted_at timestamptz)"
sql "CREATE UNIQUE INDEX gadget_code_live ON gadget (code) WHERE deleted_at IS NULL"
# Every write: its transaction, backend and time; 1 ms each, so that a
# batch lasts long enough for the next one to start beside it.
sql "CREATE TABLE gadget_log (xid xid8, pid int, at timestamptz)"
sql "CREATE FUNCTION gadget_log() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN
       INSERT INTO gadget_log VALUES (pg_current_xact_id(), pg_backend_pid(), clock_timestamp());
       PERFORM pg_sleep(0.001);
       RETURN NEW;
     END \$\$"
sql "CREATE TRIGGER gadget_log BEFORE INSERT OR UPDATE ON gadget
     FOR EACH ROW EXECUTE FUNCTION gadget_log()"
P="$IT_TMP/gadgets.yaml"
cat > "$P" <<'YAML'
description: gadgets for the writers tests
targets:
  - table: gadget
    key: [code]
    key_predicate: deleted_at IS NULL
    duplicates: last
    touch: updated_at
    columns:
      code: { from: code, rules: { required: true } }
      qty: { from: qty, type: int }
      note: { from: note }
YAML

# gen N QTY : keys G0001..GN; keys 100, 600 and 1100 come again 150 rows
# later with qty 77 (their later version, in the next batch); every 300th
# row is rejected by the check constraint (qty -1).
gen() {
  awk -v n="$1" -v q="$2" 'BEGIN { print "code,qty,note";
    for (i = 1; i <= n; i++) {
      printf "G%04d,%d,note %d\n", i, (i % 300 == 0) ? -1 : q + i % 7, i
      if (i % 500 == 250) printf "G%04d,77,later %d\n", i - 150, i - 150
    } }'
}
gen 1500 1 > "$IT_TMP/f1.csv"
# f0: 1000 new keys and nothing else, so that no rolled-back attempt hides
# a batch's writes from the log; then the same keys with other quantities.
for pass in ins upd; do
  awk -v q=$([ $pass = ins ] && echo 0 || echo 1) 'BEGIN { print "code,qty,note";
    for (i = 1; i <= 1000; i++) printf "H%04d,%d,n\n", i, q + i % 9 }' > "$IT_TMP/f0$pass.csv"
done
gen 1500 3 > "$IT_TMP/f2.csv" # the same keys, other quantities: updates

# run MODE : both imports with --writers MODE; counts, reject files and
# the table go to files.
run() {
  local w=$1
  sql "TRUNCATE gadget, gadget_log RESTART IDENTITY"
  # f0 twice: inserting (insert-first: one batch at a time), then the
  # same keys again as updates (upserts: two at once).
  for pass in ins upd; do
    sql "TRUNCATE gadget_log"
    "$INGOT_BIN" run "$P" "$IT_TMP/f0$pass.csv" --quiet --batch-size 100 --writers "$w" \
      --no-reject-file || fail "f0 ($pass) with --writers $w failed"
    sql "SELECT count(DISTINCT pid) || ' ' || (
           WITH t AS (SELECT xid, min(at) AS a, max(at) AS b FROM gadget_log GROUP BY xid)
           SELECT count(*) FROM t t1 JOIN t t2 ON t1.xid < t2.xid AND t1.a < t2.b AND t2.a < t1.b)
         FROM gadget_log" > "$IT_TMP/overlap.$pass.$w"
  done
  sql "TRUNCATE gadget, gadget_log RESTART IDENTITY"
  : > "$IT_TMP/log.$w"
  for f in f1 f2; do
    "$INGOT_BIN" run "$P" "$IT_TMP/$f.csv" --json --batch-size 100 --writers "$w" \
      --reject-file "$IT_TMP/$f.$w.rej" --log-level debug > "$IT_TMP/$f.$w.json" 2>> "$IT_TMP/log.$w" || true
    comparable "$IT_TMP/$f.$w.json" "$f with --writers $w" > "$IT_TMP/$f.$w.counts"
  done
  sql "SELECT code, qty, note, deleted_at IS NULL FROM gadget ORDER BY code, id" > "$IT_TMP/table.$w"
}
run 1
run 2

for f in f1 f2; do
  diff -u "$IT_TMP/$f.1.counts" "$IT_TMP/$f.2.counts" >&2 || fail "$f: two writers counted differently from one"
  # (the failing row's detail shows its id and timestamps: those differ)
  diff -u <(sed 's/: Failing row contains.*"$/"/' "$IT_TMP/$f.1.rej") \
          <(sed 's/: Failing row contains.*"$/"/' "$IT_TMP/$f.2.rej") >&2 \
    || fail "$f: two writers wrote another reject file than one"
done
diff -u "$IT_TMP/table.1" "$IT_TMP/table.2" >&2 || fail "two writers left other table contents than one"

# The results themselves, so that both being wrong the same way fails.
assert_eq "1503 5" "$(jq -r '"\(.counts.read) \(.counts.failed)"' "$IT_TMP/f1.2.json")" "f1: rows read, failed"
assert_eq "1503" "$(jq -r '.counts | .inserted + .updated + .unchanged + .skipped + .failed' "$IT_TMP/f1.2.json")" \
  "f1: every row accounted once"
assert_eq "1496" "$(sql "SELECT count(*) FROM gadget")" "every key but the four only ever bad"
assert_eq "G0300 G0600 G0900 G1200 G1500" "$(sed -n '2,$p' "$IT_TMP/f1.2.rej" | cut -d, -f1 | tr -d '"' | tr '\n' ' ' | sed 's/ $//')" \
  "the reject file lists the bad rows in file order"
assert_eq "77|later 100" "$(sql "SELECT qty, note FROM gadget WHERE code = 'G0100'")" \
  "a key's later version (150 rows on) won"
assert_eq "77|later 600" "$(sql "SELECT qty, note FROM gadget WHERE code = 'G0600'")" \
  "a rejected row's key came back with its later, good version"
assert_eq "0" "$(sql "SELECT count(*) FROM gadget WHERE note LIKE 'note %' AND code IN
  (SELECT 'G' || lpad((i - 150)::text, 4, '0') FROM generate_series(250, 1250, 500) i)")" \
  "no repeated key kept its earlier version"
assert_eq "0 5" "$(jq -r '"\(.counts.inserted) \(.counts.failed)"' "$IT_TMP/f2.2.json")" \
  "f2: every good row met its key"

# Two writers really worked at once on updates (f0), one at a time while
# inserting, and the repeated keys made batches wait (f1, f2).
read -r _ overlap_ins2 < "$IT_TMP/overlap.ins.2"
read -r pids1 overlap1 < "$IT_TMP/overlap.upd.1"
read -r pids2 overlap2 < "$IT_TMP/overlap.upd.2"
echo "# updates, one writer: $pids1 backend(s), $overlap1 overlapping transaction pairs; two: $pids2, $overlap2"
assert_eq "0" "$overlap1" "one writer: no two batch transactions overlap"
assert_eq "0" "$overlap_ins2" "two writers, inserting only (insert-first): one batch at a time"
[ "$pids2" -ge 2 ] || fail "two writers wrote from $pids2 backend(s)"
[ "$overlap2" -ge 1 ] || fail "two writers never had two batch transactions at once"
grep -q 'waits: batches that only insert go one at a time' "$IT_TMP/log.2" \
  || fail "no inserting batch waited for the one before"
grep -q 'waits: a key of it is in a batch being applied' "$IT_TMP/log.2" \
  || fail "no batch waited for the one holding its key's earlier version"
assert_eq "0" "$(grep -c 'waits: a key' "$IT_TMP/log.1" || true)" "one writer never waits"
assert_eq "0" "$(grep -c -E 'batch [0-9]+, attempt' "$IT_TMP/log.2" || true)" "no batch was retried"

# --- a lookup into the target's own table -----------------------------------
# Each employee's boss is 20 rows up, in the batch before (batches of 20
# after a first one of 5), so a row needs a row of the previous batch
# committed: such a pipeline keeps one writer whatever --writers says, and
# no row misses its boss. (A lookup sees the table as it was before the
# row's own batch.)
sql "CREATE TABLE employee (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE,
                            boss_id bigint REFERENCES employee (id))"
# (2 ms a row, so that a batch is still running when the next one could start)
sql "CREATE FUNCTION employee_slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END \$\$"
sql "CREATE TRIGGER employee_slow BEFORE INSERT ON employee FOR EACH ROW EXECUTE FUNCTION employee_slow()"
cat > "$IT_TMP/employees.yaml" <<'YAML'
description: employees and their bosses, in one table
targets:
  - table: employee
    key: [code]
    columns:
      code: { from: code }
      boss_id: { lookup: { table: employee, key: code, from: boss } }
YAML
awk 'BEGIN { print "code,boss";
  for (i = 1; i <= 400; i++) if (i <= 20) printf "E%04d,\n", i; else printf "E%04d,E%04d\n", i, i - 20 }' > "$IT_TMP/emp.csv"
run_ingot 0 run "$IT_TMP/employees.yaml" "$IT_TMP/emp.csv" --json --batch-size 20 --writers 2 --no-reject-file
assert_eq "400 0" "$(jq -r '"\(.counts.inserted) \(.counts.failed)"' <<<"$OUT")" "every employee found its boss"
assert_eq "380" "$(sql "SELECT count(*) FROM employee e JOIN employee b ON b.id = e.boss_id
                       WHERE substr(b.code, 2)::int = substr(e.code, 2)::int - 20")" "every boss link points 20 rows up"
