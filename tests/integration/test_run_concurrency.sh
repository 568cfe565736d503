#!/usr/bin/env bash
# test_run_concurrency.sh - ingot run next to other writers: a large import
# into item_master while other sessions update and insert rows (some the
# import touches too) never holds a relation lock stronger than
# RowExclusiveLock, nobody waits on a relation lock, and the other
# sessions' statements stay fast; two imports with the same keys at once,
# and two items.yaml imports (four tables, lookups) at once, finish without
# deadlock and leave a consistent state.
source "$(dirname "$0")/lib.sh"
run_ingot 0 migrate up

deadlocks() { sql "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"; }

# --- a 200k-row import with concurrent writers and a pg_locks sampler -----
N=200000
awk -v n=$N 'BEGIN { print "name,description,category,brand,is_active";
  for (i = 1; i <= n; i++) printf "Item %06d,imported %d,Cat %d,Brand %d,true\n", i, i, i % 50, i % 7 }' > "$IT_TMP/items.csv"
sql "INSERT INTO item_master (name, description)
     SELECT 'Other ' || g, 'untouched' FROM generate_series(1, 1000) g"

# The writer: one session, one statement per kind per round, each timed
# (psql \timing). Untouched rows updated, new rows inserted, and rows of
# the import's own key range updated and inserted.
{
  echo '\timing on'
  for r in $(seq 1 250); do
    k=$(( (r * 797) % N + 1 ))
    echo "UPDATE item_master SET description = 'writer $r' WHERE name = 'Other $(( r % 1000 + 1 ))' AND deleted_at IS NULL;"
    echo "INSERT INTO item_master (name, description) VALUES ('Writer $r', 'new');"
    echo "UPDATE item_master SET brand = 'Writer' WHERE name = 'Item $(printf %06d $k)' AND deleted_at IS NULL;"
    echo "INSERT INTO item_master (name, description) VALUES ('Item $(printf %06d $(( N - r * 13 )))', 'writer first') ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING;"
    echo '\! sleep 0.02'
  done
} > "$IT_TMP/writer.sql"
# The sampler: ingot's relation locks on item_master, and any relation lock
# anyone waits for in this database.
{
  for _ in $(seq 1 2000); do
    echo "SELECT 'S';"
    echo "SELECT l.mode || ' granted=' || l.granted || ' by=' || coalesce(a.application_name, '?')
          FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((l.relation = 'item_master'::regclass AND a.application_name = 'ingot') OR NOT l.granted);"
    echo '\! sleep 0.01'
  done
} > "$IT_TMP/sampler.sql"

psql "$DATABASE_URL" -qAtX -f "$IT_TMP/sampler.sql" > "$IT_TMP/locks.txt" 2>&1 &
sampler=$!
"$INGOT_BIN" run pipelines/item_master.yaml "$IT_TMP/items.csv" --max-rows $N \
  --json --no-reject-file > "$IT_TMP/imp.out" 2> "$IT_TMP/imp.err" &
imp=$!
for _ in $(seq 1 100); do
  [ "$(sql "SELECT count(*) > 0 FROM item_master WHERE name LIKE 'Item %'")" = t ] && break
  sleep 0.05
done
psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -f "$IT_TMP/writer.sql" > "$IT_TMP/writer.out" 2>&1 &
writer=$!
rc=0; wait $imp || rc=$?
import_done=$(date +%s.%N)
wrc=0; wait $writer || wrc=$?
kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true
OUT=$(cat "$IT_TMP/imp.out")
[ $rc -eq 0 ] || { echo "$OUT"; cat "$IT_TMP/imp.err" >&2; fail "import next to writers: exit $rc"; }
[ $wrc -eq 0 ] || { tail "$IT_TMP/writer.out" >&2; fail "the writer session failed"; }

samples=$(grep -c '^S$' "$IT_TMP/locks.txt" || true)
held=$(grep -c 'by=ingot' "$IT_TMP/locks.txt" || true)
modes=$(grep 'by=' "$IT_TMP/locks.txt" | sed 's/ by=.*//' | sort | uniq -c | tr -s ' ' | paste -sd ';' -)
echo "# $samples pg_locks samples, $held with ingot holding a lock on item_master; modes seen: $modes"
[ "$held" -ge 5 ] || fail "the sampler saw ingot's locks only $held times (sampling too sparse to prove anything)"
assert_eq "" "$(grep 'by=' "$IT_TMP/locks.txt" | grep -v -E '^(AccessShareLock|RowShareLock|RowExclusiveLock) granted=true by=ingot$' || true)" \
  "ingot holds no relation lock stronger than RowExclusiveLock, and nobody waits on a relation lock"

times=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$IT_TMP/writer.out")
nstmt=$(wc -l <<<"$times" | tr -d ' ')
max=$(sort -g <<<"$times" | tail -1)
p99=$(sort -g <<<"$times" | awk '{ a[NR] = $1 } END { print a[int(NR * 0.99)] }')
echo "# $nstmt concurrent single-row statements during a $(sed -n 's/.*"duration_s": \([0-9]*\).*/\1/p' <<<"$OUT") s import; max ${max} ms, p99 ${p99} ms"
assert_eq 1000 "$nstmt" "every writer statement ran and was timed"
awk -v m="$max" 'BEGIN { exit !(m < 1000) }' || fail "a concurrent statement took ${max} ms (>= 1 s)"

assert_contains "$OUT" '"status": "done"' "import done"
assert_eq "$N|$N" "$(sql "SELECT count(*), count(DISTINCT name) FROM item_master WHERE name LIKE 'Item %' AND deleted_at IS NULL")" "every imported key present once"
assert_eq "0" "$(sql "SELECT count(*) FROM item_master WHERE name LIKE 'Item %' AND description <> 'imported ' || ltrim(substr(name, 6), '0') AND description <> 'writer first'")" "imported rows hold the file's values (or the writer's, inserted first and then updated by the import)"
assert_eq "0" "$(sql "SELECT count(*) FROM item_master WHERE name LIKE 'Item %' AND description = 'writer first'")" "rows the writer inserted first were updated by the import"
assert_eq "250|1000" "$(sql "SELECT count(*) FILTER (WHERE name LIKE 'Writer %'), count(*) FILTER (WHERE name LIKE 'Other %') FROM item_master")" "the writer's rows and the untouched ones all there"
assert_eq "0" "$(deadlocks)" "no deadlock"

# run_bg NAME args... : start ingot in the background; wait_bg NAME checks it
declare -A BG
run_bg() { local n=$1; shift; "$INGOT_BIN" "$@" > "$IT_TMP/$n.out" 2> "$IT_TMP/$n.err" & BG[$n]=$!; }
wait_bg() {
  local rc=0; wait "${BG[$1]}" || rc=$?
  [ $rc -eq 0 ] || { cat "$IT_TMP/$1.out"; cat "$IT_TMP/$1.err" >&2; fail "import $1: exit $rc"; }
  if grep -q deadlock "$IT_TMP/$1.err"; then grep deadlock "$IT_TMP/$1.err" >&2; fail "import $1 hit a deadlock"; fi
}

# --- two imports with the same 50k keys at once --------------------------
sql "DELETE FROM item_master"
M=50000
awk -v n=$M 'BEGIN { print "name,description,category,brand,is_active";
  for (i = 1; i <= n; i++) printf "Key %05d,from A %d,Cat A,Brand A,true\n", i, i }' > "$IT_TMP/a.csv"
{ echo "name,description,category,brand,is_active"
  awk -v n=$M 'BEGIN { for (i = 1; i <= n; i++) printf "Key %05d,from B %d,Cat B,Brand B,false\n", i, i }' | shuf --random-source=<(yes); } > "$IT_TMP/b.csv"
d0=$(deadlocks)
run_bg a run pipelines/item_master.yaml "$IT_TMP/a.csv" --max-rows $M --batch-size 500 --json --no-reject-file
run_bg b run pipelines/item_master.yaml "$IT_TMP/b.csv" --max-rows $M --batch-size 500 --json --no-reject-file
wait_bg a; wait_bg b
assert_eq "$d0" "$(deadlocks)" "no deadlock between the overlapping imports"
assert_eq "$M|$M" "$(sql "SELECT count(*), count(DISTINCT name) FROM item_master WHERE deleted_at IS NULL")" "every key present once"
assert_eq "0" "$(sql "SELECT count(*) FROM item_master
  WHERE (description, category, brand, is_active) IS DISTINCT FROM ('from A ' || ltrim(substr(name, 5), '0'), 'Cat A', 'Brand A', true)
    AND (description, category, brand, is_active) IS DISTINCT FROM ('from B ' || ltrim(substr(name, 5), '0'), 'Cat B', 'Brand B', false)")" \
  "each row's values come entirely from one file"
echo "# overlapping imports: $(sql "SELECT count(*) FILTER (WHERE brand = 'Brand A') || ' rows from A, ' || count(*) FILTER (WHERE brand = 'Brand B') || ' from B' FROM item_master")"

# --- items.yaml (four tables, lookups) twice at once, overlapping ---------
# Items 1..1500 in one file and 1000..2500 in the other (501 shared), each
# with 4 colours x 3 sizes; shared variants have other prices and stock.
gen_items() { # FIRST LAST PRICE_BASE
  echo "item_name,description,category,brand,color,color_code,size,sku,price,stock"
  awk -v a="$1" -v b="$2" -v p="$3" 'BEGIN {
    split("red blue green black", c, " "); split("#FF0000 #0000FF #00FF00 #000000", cc, " ")
    split("S M L", s, " ")
    for (i = a; i <= b; i++) for (j = 1; j <= 4; j++) for (k = 1; k <= 3; k++)
      printf "Prod %04d,desc %d,Cat,Brand,%s,%s,%s,P%04d-%s-%s,%d.%02d,%d\n", i, i, c[j], cc[j], s[k], i, c[j], s[k], p + i % 100, k, p }'
}
sql "DELETE FROM item_master"
gen_items 1 1500 10 > "$IT_TMP/i1.csv"
gen_items 1000 2500 20 | shuf --random-source=<(yes) > "$IT_TMP/i2.body"
{ head -1 "$IT_TMP/i1.csv"; grep -v '^item_name' "$IT_TMP/i2.body"; } > "$IT_TMP/i2.csv"
d0=$(deadlocks)
run_bg i1 run items "$IT_TMP/i1.csv" --max-rows 100000 --batch-size 500 --json --no-reject-file
run_bg i2 run items "$IT_TMP/i2.csv" --max-rows 100000 --batch-size 500 --json --no-reject-file
wait_bg i1; wait_bg i2
assert_eq "$d0" "$(deadlocks)" "no deadlock between the two items imports"
assert_eq "2500|4|3" "$(sql "SELECT (SELECT count(*) FROM item_master), (SELECT count(*) FROM color_master), (SELECT count(*) FROM size_master)")" "parents: each once"
assert_eq "30000|30000" "$(sql "SELECT count(*), count(DISTINCT (item_id, color_id, size_id)) FROM item_variant")" "variants: each once"
assert_eq "0" "$(sql "SELECT count(*) FROM item_variant v JOIN item_master i ON i.id = v.item_id
  JOIN color_master c ON c.id = v.color_id JOIN size_master s ON s.id = v.size_id
  WHERE v.sku <> format('P%s-%s-%s', substr(i.name, 6), lower(c.color_name), s.size_name)")" "every variant joined to its own parents"
assert_eq "0" "$(sql "SELECT count(*) FROM item_variant v JOIN item_master i ON i.id = v.item_id
  JOIN size_master s ON s.id = v.size_id
  WHERE v.price <> v.stock + substr(i.name, 6)::int % 100 + 0.01 * array_position(ARRAY['S','M','L'], s.size_name)
     OR v.stock NOT IN (10, 20)
     OR (substr(i.name, 6)::int < 1000 AND v.stock <> 10)
     OR (substr(i.name, 6)::int > 1500 AND v.stock <> 20)")" "each variant's price and stock come from one file"
echo "# items.yaml twice at once: $(sql "SELECT count(*) FILTER (WHERE stock = 10) || ' variants from file 1, ' || count(*) FILTER (WHERE stock = 20) || ' from file 2' FROM item_variant")"

# --- a parent table held by a VACUUM-like lock ------------------------------
# The import ANALYZEs the parent tables it grows; another session holding
# SHARE UPDATE EXCLUSIVE on item_master (as VACUUM, CREATE INDEX
# CONCURRENTLY or an ANALYZE do) must not hold the import up: the refresh
# is skipped, and the import ends while the lock is still held.
sql "TRUNCATE item_variant, item_master, color_master, size_master"
gen_items 3001 3600 30 > "$IT_TMP/i3.csv"
psql "$DATABASE_URL" -qAtX -c "BEGIN" -c "LOCK TABLE item_master IN SHARE UPDATE EXCLUSIVE MODE" \
  -c "SELECT pg_sleep(60)" -c "COMMIT" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM pg_locks WHERE relation = 'item_master'::regclass AND mode = 'ShareUpdateExclusiveLock' AND granted")" = 1 ] && break
  sleep 0.05
done
run_ingot 0 run items "$IT_TMP/i3.csv" --max-rows 100000 --batch-size 500 --json --no-reject-file
kill -0 $holder 2>/dev/null || fail "the lock holder ended before the import did: the import waited for it"
assert_not_contains "$ERR" "skipping analyze" "a skipped refresh is not logged as a warning"
assert_eq "1" "$(sql "SELECT count(*) FROM pg_locks WHERE relation = 'item_master'::regclass AND mode = 'ShareUpdateExclusiveLock' AND granted")" "the lock was held throughout"
assert_eq "600|7200" "$(sql "SELECT (SELECT count(*) FROM item_master), (SELECT count(*) FROM item_variant)")" "the import landed in full"
sql "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND datname = current_database()" >/dev/null
wait $holder 2>/dev/null || true
