#!/usr/bin/env bash
# test_run_interrupt.sh - Ctrl-C (SIGINT) or SIGTERM during `ingot run`
# stops at a batch boundary: the batches in flight commit, the summary
# counts exactly what is in the table, failed rows so far are in the
# reject file, exit 2; a second signal ends the process at once.
source "$(dirname "$0")/lib.sh"
D=tests/data/run
run_ingot 0 migrate up

# Every statement on the table sleeps 20 ms, so the import takes seconds
# and the signal lands in it.
sql "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
     \$\$BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END\$\$;
     CREATE TRIGGER slow AFTER INSERT OR UPDATE ON color_master
     FOR EACH STATEMENT EXECUTE FUNCTION slow()"
N=40000
awk -v n=$N 'BEGIN { print "name,code";
  for (i = 1; i <= n; i++) printf "C%06d,%s\n", i, i == 7 ? "bad" : sprintf("#%06X", i) }' \
  > "$IT_TMP/big.csv"

# start_run SIGNAL...: run the import in the background, send each signal
# once its first rows are in the table, and set rc, OUT and ERR.
start_run() {
  sql "TRUNCATE color_master CASCADE" >/dev/null
  rm -f "$IT_TMP/big.csv.rejects.csv"
  # (a script's background job starts with SIGINT ignored: undo that)
  env --default-signal=INT "$INGOT_BIN" run "$D/colors.yaml" "$IT_TMP/big.csv" --batch-size 200 \
    --insert-first 0 --max-rows $N --json >"$IT_TMP/out" 2>"$IT_TMP/err" &
  local pid=$!
  for _ in $(seq 1 200); do
    [ "$(sql "SELECT count(*) > 0 FROM color_master")" = t ] && break
    sleep 0.05
  done
  for s in "$@"; do kill -s "$s" $pid; sleep 0.01; done
  rc=0; wait $pid || rc=$?
  OUT=$(cat "$IT_TMP/out"); ERR=$(cat "$IT_TMP/err")
}
json_count() { sed -n "s/^ *\"$1\": \([0-9]*\),\{0,1\}$/\1/p" <<<"$OUT" | awk 'NR == 1'; }

for sig in INT TERM; do
  start_run $sig
  assert_eq 2 "$rc" "SIG$sig: exit code of a stopped import"
  assert_contains "$ERR" "stopping after the batches in flight" "SIG$sig: said at once"
  assert_contains "$ERR" "interrupted: stopped at a batch boundary; the rows counted above are committed" "SIG$sig: said at the end"
  assert_contains "$OUT" '"status": "canceled"' "SIG$sig: JSON status"
  in_table=$(sql "SELECT count(*) FROM color_master")
  [ "$in_table" -lt $((N - 1)) ] || fail "SIG$sig: the import finished before the signal ($in_table rows)"
  assert_eq "$in_table" "$(json_count inserted)" "SIG$sig: the summary counts what is in the table"
  assert_eq 1 "$(json_count failed)" "SIG$sig: the row that failed before the signal is counted"
  assert_contains "$(cat "$IT_TMP/big.csv.rejects.csv")" '"C000007","bad"' "SIG$sig: and written to the reject file"
done

# A second Ctrl-C does not wait for the batch boundary.
start_run INT INT
assert_eq 130 "$rc" "a second SIGINT ends the process (128 + SIGINT)"

# Ctrl-C before any row is written (the database never answers): the end
# says so, not "the rows counted above".
mute=$(start_mute_server "$IT_TMP/mute.port")
DATABASE_URL="postgresql://nobody@127.0.0.1:$(cat "$IT_TMP/mute.port")/none" \
  env --default-signal=INT "$INGOT_BIN" run "$D/colors.yaml" "$IT_TMP/big.csv" \
  --max-rows $N --no-reject-file >"$IT_TMP/out" 2>"$IT_TMP/err" &
pid=$!
sleep 1
kill -INT $pid
rc=0; wait $pid || rc=$?
kill "$mute" 2>/dev/null || true
ERR=$(cat "$IT_TMP/err")
assert_eq 2 "$rc" "interrupted while connecting"
assert_contains "$ERR" "interrupted: canceled while connecting" "said while connecting"
assert_contains "$ERR" "; no row was written" "and that nothing was written"
assert_not_contains "$ERR" "counted above" "no summary to refer to"
