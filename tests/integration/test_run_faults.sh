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
json_count() { sed -n "s/^ *\"$1\": \([0-9]*\),\{0,1\}$/\1/p" <<<"$OUT" | awk 'NR == 1'; }

# --- backends terminated mid-import (shared server) ----------------------
CLEAN_DB="${IT_DB}_clean"
N=200000
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
  sleep 0.$((RANDOM % 2 + 1))
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

# --- a throwaway cluster of our own: we may stop it and reconfigure it ----
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
: "${INGOT_PG_BIN:?INGOT_PG_BIN must point at the PostgreSQL server binaries}"
PGT=$(mktemp -d "${TMPDIR:-/tmp}/ingot-faults-pg.XXXXXX")
[ "$(id -u)" = 0 ] && chown postgres "$PGT"
PGT_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pgt_ctl() { as_pg "$INGOT_PG_BIN/pg_ctl" -D "$PGT/data" -l "$PGT/log" "$@" >/dev/null; }
pgt_start() {
  pgt_ctl -w -t 30 -o "-p $PGT_PORT -k $PGT -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start
}
faults_cleanup() {
  local rc=$?
  set +e
  pgt_ctl -m immediate stop 2>/dev/null
  rm -rf "$PGT"
  psql_admin -c "DROP DATABASE IF EXISTS \"$CLEAN_DB\" WITH (FORCE)" >/dev/null 2>&1
  (exit $rc)
  it_cleanup
}
trap faults_cleanup EXIT
as_pg "$INGOT_PG_BIN/initdb" -D "$PGT/data" -A trust -U postgres --no-sync >/dev/null
pgt_start
T_URL="postgresql://postgres@127.0.0.1:$PGT_PORT/postgres"
tsql() { psql "$T_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
run_ingot 0 migrate up --database-url "$T_URL"

# --- the server stopped and started again mid-import ---------------------
# Each statement on the table sleeps 30 ms, so the import takes seconds and
# the stop below lands in it (unslowed it could finish between the poll
# that sees its first rows and the stop, and never meet the restart).
tsql "CREATE FUNCTION ingot_test_slow() RETURNS trigger LANGUAGE plpgsql AS
      \$\$BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END\$\$;
      CREATE TRIGGER ingot_test_slow AFTER INSERT OR UPDATE ON color_master
      FOR EACH STATEMENT EXECUTE FUNCTION ingot_test_slow()"
N2=60000
gen_colors "$IT_TMP/mid.csv" $N2
"$INGOT_BIN" run "$D/colors.yaml" "$IT_TMP/mid.csv" --database-url "$T_URL" \
  --batch-size 300 --max-rows $N2 --json --no-reject-file >"$IT_TMP/stop.out" 2>"$IT_TMP/stop.err" &
pid=$!
for _ in $(seq 1 100); do  # wait until batches are landing
  [ "$(tsql "SELECT count(*) > 0 FROM color_master" 2>/dev/null)" = t ] && break
  sleep 0.1
done
before=$(tsql "SELECT count(*) FROM color_master")
t0=$(date +%s.%N)
pgt_ctl -m fast -w stop
sleep 2
pgt_start
down=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
rc=0; wait $pid || rc=$?
OUT=$(cat "$IT_TMP/stop.out"); ERR=$(cat "$IT_TMP/stop.err")
[ $rc -eq 0 ] || { echo "$OUT"; echo "$ERR" >&2; fail "import across a server restart: exit $rc"; }
echo "# server down ${down}s mid-import (after $before of $N2 rows); import finished"
[ "$before" -lt "$N2" ] || fail "the server stop came after the import finished"
assert_contains "$ERR" "retrying" "the import waited for the server"
assert_eq "$N2" "$(json_count inserted)" "every row inserted exactly once across the restart"
assert_eq "0" "$(json_count unchanged)" "no batch applied twice across the restart"
assert_eq "$N2" "$(tsql "SELECT count(*) FROM color_master")" "row count across the restart"
assert_eq "$(file_md5 "$IT_TMP/mid.csv")" "$(tsql "$TABLE_MD5")" "contents across the restart"
tsql "DROP TRIGGER ingot_test_slow ON color_master"

# --- the connection lost during COMMIT, after the commit -----------------
# With a synchronous standby that never comes, COMMIT writes the commit
# record and then waits in SyncRep. Killing the backend there (SIGKILL: a
# crash of our throwaway server, which restarts and recovers) drops the
# connection of a transaction that has committed. ingot must ask the
# server (pg_xact_status) and not apply the batch again. Every batch of the
# import goes through this. (pg_terminate_backend is no use here: in
# PostgreSQL 15 the backend stops waiting but never answers the COMMIT nor
# closes the connection, so the client waits forever.)
tsql "DELETE FROM color_master"
tsql "ALTER SYSTEM SET synchronous_standby_names = 'ingot_nobody'"
tsql "SELECT pg_reload_conf()" >/dev/null
N3=2000
gen_colors "$IT_TMP/commit.csv" $N3
"$INGOT_BIN" run "$D/colors.yaml" "$IT_TMP/commit.csv" --database-url "$T_URL" \
  --batch-size 500 --writers 1 --max-rows $N3 --json --no-reject-file --log-level debug \
  >"$IT_TMP/commit.out" 2>"$IT_TMP/commit.err" &
pid=$!
killed=0
for _ in $(seq 1 600); do
  kill -0 $pid 2>/dev/null || break
  for p in $(tsql "SELECT pid FROM pg_stat_activity WHERE application_name = 'ingot'
                   AND state = 'active' AND wait_event = 'SyncRep'" 2>/dev/null); do
    kill -KILL "$p" && killed=$((killed + 1))
  done
  sleep 0.1
done
if kill $pid 2>/dev/null; then
  head -c 3000 "$IT_TMP/commit.err" >&2
  fail "the import hung with every COMMIT's connection lost ($killed lost)"
fi
rc=0; wait $pid || rc=$?
tsql "ALTER SYSTEM RESET synchronous_standby_names"
tsql "SELECT pg_reload_conf()" >/dev/null
OUT=$(cat "$IT_TMP/commit.out"); ERR=$(cat "$IT_TMP/commit.err")
[ $rc -eq 0 ] || { echo "$OUT"; echo "$ERR" >&2; fail "import with lost COMMITs: exit $rc"; }
echo "# $killed connections lost during a COMMIT that had committed; $(grep -c 'batch was committed' <<<"$ERR" || true) recognised as committed"
batches=$(grep -c -E 'batch [0-9]+ committed' <<<"$ERR" || true)
[ "$batches" -ge 3 ] || fail "only $batches batches for $N3 rows in batches of at most 1000"
assert_eq "$batches" "$killed" "every batch's COMMIT lost its connection"
assert_eq "$killed" "$(grep -c 'batch was committed' <<<"$ERR" || true)" "each lost COMMIT recognised as committed"
assert_eq "$N3" "$(json_count inserted)" "every row counted inserted once"
assert_eq "0" "$(json_count unchanged)" "no batch applied twice after a lost COMMIT"
assert_eq "$N3" "$(tsql "SELECT count(*) FROM color_master")" "row count after lost COMMITs"
assert_eq "$(file_md5 "$IT_TMP/commit.csv")" "$(tsql "$TABLE_MD5")" "contents after lost COMMITs"
