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
