#!/usr/bin/env bash
# test_run_faults.sh - ingot run survives the database going away under it:
# backends terminated mid-import (shared server), the server stopped and
# started again mid-import, and the connection lost during COMMIT after the
# transaction committed (both on a throwaway cluster of our own). In every
# case the import exits 0, the table holds exactly the file's rows, and the
# counts say every row was inserted once: a batch applied twice would show
# up as "unchanged" rows, a lost one as missing rows.
source "$(dirname "$0")/lib.sh"
D=tests/data/run
run_ingot 0 migrate up

# gen_colors FILE N: N distinct colours, already in canonical form, so the
# expected table contents are the file's own lines.
gen_colors() {
  awk -v n="$2" 'BEGIN { print "name,code";
    for (i = 1; i <= n; i++) printf "C%06d,#%06X\n", i, (i * 7919) % 16777216 }' > "$1"
}
# md5 of the file's data lines in the byte order the query below uses.
file_md5() { tail -n +2 "$1" | LC_ALL=C sort | md5sum | cut -d' ' -f1; }
TABLE_MD5="SELECT md5(string_agg(color_name || ',' || color_code, E'\n'
             ORDER BY color_name COLLATE \"C\") || E'\n') FROM color_master"
# json_count NAME: a top-level count from $OUT (the --json summary)
json_count() { sed -n "s/^ *\"$1\": \([0-9]*\),\{0,1\}$/\1/p" <<<"$OUT" | head -1; }

# --- backends terminated mid-import (shared server) ----------------------
N=100000
gen_colors "$IT_TMP/big.csv" $N
want_md5=$(file_md5 "$IT_TMP/big.csv")

# A clean run into a second database is the reference.
CLEAN_DB="${IT_DB}_clean"
psql_admin -c "CREATE DATABASE \"$CLEAN_DB\"" >/dev/null
trap 'psql_admin -c "DROP DATABASE IF EXISTS \"$CLEAN_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; it_cleanup' EXIT
CLEAN_URL=$(db_url "$CLEAN_DB")
run_ingot 0 migrate up --database-url "$CLEAN_URL"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/big.csv" --database-url "$CLEAN_URL" \
  --batch-size 1000 --max-rows $N --json --no-reject-file
clean_md5=$(psql "$CLEAN_URL" -qAtX -c "$TABLE_MD5")
assert_eq "$want_md5" "$clean_md5" "clean run holds exactly the file"

"$INGOT_BIN" run "$D/colors.yaml" "$IT_TMP/big.csv" --batch-size 200 \
  --max-rows $N --json --no-reject-file >"$IT_TMP/kill.out" 2>"$IT_TMP/kill.err" &
pid=$!
killed=0 polls=0
while kill -0 $pid 2>/dev/null && [ $polls -lt 400 ]; do
  polls=$((polls + 1))
  # Only once rows are landing, so the kills hit batches, not the start.
  n=$(sql "SELECT count(pg_terminate_backend(pid)) FILTER (WHERE true)
           FROM pg_stat_activity WHERE application_name = 'ingot'
            AND datname = current_database()
            AND EXISTS (SELECT 1 FROM color_master)" 2>/dev/null || echo 0)
  killed=$((killed + n))
  [ $killed -ge 8 ] && break
  sleep 0.$((RANDOM % 3 + 2))
done
rc=0; wait $pid || rc=$?
OUT=$(cat "$IT_TMP/kill.out"); ERR=$(cat "$IT_TMP/kill.err")
[ $rc -eq 0 ] || { echo "$OUT"; echo "$ERR" >&2; fail "import under pg_terminate_backend: exit $rc"; }
echo "# terminated $killed ingot backends mid-import; $(grep -c 'retrying' <<<"$ERR" || true) batch retries logged"
[ $killed -ge 3 ] || fail "expected to terminate at least 3 backends mid-import, managed $killed"
assert_contains "$ERR" "retrying" "the lost batches were retried"
assert_eq "$N" "$(json_count inserted)" "every row inserted exactly once"
assert_eq "0" "$(json_count updated)" "no row updated (no batch applied twice)"
assert_eq "0" "$(json_count unchanged)" "no row unchanged (no batch applied twice)"
assert_eq "$N|$N" "$(sql "SELECT count(*), count(DISTINCT color_name) FROM color_master")" "row count after kills"
assert_eq "$clean_md5" "$(sql "$TABLE_MD5")" "contents equal the clean run's"
