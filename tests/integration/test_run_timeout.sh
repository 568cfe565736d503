#!/usr/bin/env bash
# test_run_timeout.sh - IMPORT_TIMEOUT_SECONDS stops an import at a batch
# boundary: exit 2 with a message saying so, only whole batches committed,
# and running the same file again completes the rest (the committed rows
# come back unchanged, the others are inserted).
source "$(dirname "$0")/lib.sh"
D=tests/data/run
run_ingot 0 migrate up

N=60000 B=100
awk -v n=$N 'BEGIN { print "name,code";
  for (i = 1; i <= n; i++) printf "T%06d,#%06X\n", i, (i * 7919) % 16777216 }' > "$IT_TMP/t.csv"

# Every batch statement takes at least 10 ms (a statement trigger sleeps),
# so the 600 batches cannot all finish within the second, however fast
# the machine (two writers once finished all 60000 rows in time). The
# upsert path only: the timeout is the runner's, whatever the path.
sql "CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS
       \$\$ BEGIN PERFORM pg_sleep(0.01); RETURN NULL; END \$\$"
sql "CREATE TRIGGER slow_batch AFTER INSERT ON color_master
       FOR EACH STATEMENT EXECUTE FUNCTION slow_batch()"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/t.csv" --timeout 1 --batch-size $B \
  --max-rows $N --no-reject-file --json --insert-first 0
assert_contains "$ERR$OUT" "timed out" "the timeout is named"
assert_contains "$OUT" '"status": "timed_out"' "JSON status"
got=$(sql "SELECT count(*) FROM color_master")
echo "# timed out after 1 s with $got of $N rows committed ($((got / B)) batches of $B)"
[ "$got" -gt 0 ] || fail "some batches committed before the timeout"
[ "$got" -lt $N ] || fail "the import stopped before the end (got $got)"
# batches of B from the start of the file
assert_eq 0 $((got % B)) "whole batches only ($got rows)"
# The committed rows are exactly the first ones of the file.
assert_eq "$got" "$(sql "SELECT count(*) FROM color_master WHERE color_name <= 'T$(printf %06d "$got")'")" "a prefix of the file committed"
assert_contains "$OUT" "\"inserted\": $got," "the summary counts what was committed"

sql "DROP TRIGGER slow_batch ON color_master"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/t.csv" --batch-size 1000 \
  --max-rows $N --no-reject-file --json
assert_contains "$OUT" "\"inserted\": $((N - got))," "the rest inserted on the second run"
assert_contains "$OUT" "\"unchanged\": $got," "the first run's rows unchanged"
assert_eq "$N|$N" "$(sql "SELECT count(*), count(DISTINCT color_name) FROM color_master")" "all rows once"

# Out of time while the first batch is still being read from a slow pipe
# (a row every 0.3 s): the wait for more input ends at the time limit,
# not when the pipe closes, and the rows read by then are applied as a
# batch and counted as they are in the table, skipped rows of a repeated
# key included.
printf 'targets:\n  - table: color_master\n    key: [color_name]\n    key_predicate: deleted_at IS NULL\n    duplicates: first\n    columns:\n      color_name: name\n      color_code: code\n' > "$IT_TMP/first.yaml"
slow() { echo name,code; for i in $(seq 10); do echo "Slow$((i % 3)),#0000$((i % 10))0"; sleep 0.3; done; }
t0=$(date +%s.%N)
run_ingot 2 run "$IT_TMP/first.yaml" - --batch-size 5 --timeout 1 --json --no-reject-file < <(slow)
t1=$(date +%s.%N)
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 2.5 else 1)" || fail "the timeout waited $(echo "$t1 - $t0" | bc) s for the pipe"
assert_contains "$ERR" "while waiting for more input from standard input" "the wait for input named"
assert_not_contains "$ERR" "dropped its connections" "waiting on the input is not blamed on the database"
IFS='|' read -r st rd ins sk <<<"$(jq -r '"\(.status)|\(.counts.read)|\(.targets[0].inserted)|\(.targets[0].skipped)"' <<<"$OUT")"
assert_eq timed_out "$st" "JSON status"
[ "$rd" -ge 1 ] && [ "$rd" -le 4 ] || fail "the rows that came within the second are read ($rd)"
assert_eq "$rd" "$((ins + sk))" "each row read is inserted or skipped"
assert_eq "$ins" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'Slow%'")" "counted as in the table"

# Ctrl-C or SIGTERM while a pipe's writer is stuck (it never closes the
# pipe): the import stops at once, with the row it had read applied.
mkfifo "$IT_TMP/hang"
( echo name,code; echo "Hang1,#000001"; exec sleep 60 ) > "$IT_TMP/hang" & feeder=$!
t0=$(date +%s.%N)
"$INGOT_BIN" run "$IT_TMP/first.yaml" - --json --no-reject-file < "$IT_TMP/hang" > "$IT_TMP/out" 2> "$IT_TMP/err" & pid=$!
sleep 1.5
kill -TERM $pid
rc=0; wait $pid || rc=$?
t1=$(date +%s.%N)
kill $feeder 2>/dev/null || true; wait $feeder 2>/dev/null || true
OUT=$(cat "$IT_TMP/out"); ERR=$(cat "$IT_TMP/err")
assert_eq 2 "$rc" "SIGTERM on a stuck pipe: exit code"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 4 else 1)" || fail "SIGTERM waited $(echo "$t1 - $t0" | bc) s for the pipe"
assert_eq "canceled|1" "$(jq -r '"\(.status)|\(.targets[0].inserted)"' <<<"$OUT")" "SIGTERM on a stuck pipe: status and the row read"
assert_eq 1 "$(sql "SELECT count(*) FROM color_master WHERE color_name = 'Hang1'")" "the row read is in the table"

# A bad header is reported at once, whatever the database is doing: the
# executor is planned only once the input and the pipeline fit.
HP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); held = []
while True:
    c, _ = s.accept(); held.append(c)' "$HP" &
hole=$!
printf 'nom,code\nA,#000001\n' > "$IT_TMP/badhdr.csv"
t0=$(date +%s.%N)
DATABASE_URL="postgresql://nobody@127.0.0.1:$HP/none" run_ingot 2 run "$D/colors.yaml" "$IT_TMP/badhdr.csv"
t1=$(date +%s.%N)
kill "$hole"; wait "$hole" 2>/dev/null || true
assert_contains "$ERR" "the input lacks column 'name'" "the bad header named"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 3 else 1)" || fail "the bad header waited $(echo "$t1 - $t0" | bc) s for a database that does not answer"

# The connection is opened as the import starts; an import refused later
# (a file over --max-rows, found by counting its lines) gives it up at
# once, even from a server that lets it in and then never answers its
# session settings.
mute=$(start_mute_server "$IT_TMP/mute.port")
{ echo name,code; for i in $(seq 1 200000); do echo "Big$i,#0000AA"; done; } > "$IT_TMP/big.csv"
t0=$(date +%s.%N)
DATABASE_URL="postgresql://nobody@127.0.0.1:$(cat "$IT_TMP/mute.port")/none" run_ingot 2 run "$D/colors.yaml" "$IT_TMP/big.csv" --max-rows 10 --no-reject-file
t1=$(date +%s.%N)
kill "$mute"; wait "$mute" 2>/dev/null || true
assert_contains "$ERR" "more than IMPORT_MAX_ROWS=10" "the over-limit file refused"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 1.5 else 1)" || fail "the refusal waited $(echo "$t1 - $t0" | bc) s for a connection to a server that never answers"

# A database that stops answering in the middle of a batch (here: a batch
# whose statement sleeps for ten minutes, and no statement timeout) does
# not hold the import past its time limit: once the server has sent
# nothing for the statement timeout (none) and STOP_GRACE_MS (5 s), the
# import drops its connections. Only whole batches before that one
# are in the table and counted; the same for a cancel (SIGINT).
sql "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS
       \$\$ BEGIN PERFORM pg_sleep(600); RETURN NEW; END \$\$"
sql "CREATE TRIGGER stall BEFORE INSERT ON color_master FOR EACH ROW
       WHEN (NEW.color_name = 'S000450') EXECUTE FUNCTION stall()"
awk 'BEGIN { print "name,code"; for (i = 1; i <= 2000; i++) printf "S%06d,#%06X\n", i, i }' > "$IT_TMP/s.csv"
stalled() { # the stalled batch's backend: its pid once it sleeps
  for _ in $(seq 1 100); do
    p=$(sql "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'")
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}
unstall() { sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'" >/dev/null; }
for how in timeout cancel; do
  sql "TRUNCATE color_master CASCADE" >/dev/null
  t0=$(date +%s.%N)
  if [ $how = timeout ]; then
    env "$INGOT_BIN" run "$D/colors.yaml" "$IT_TMP/s.csv" --batch-size 100 --writers 1 \
      --statement-timeout 0 --timeout 1 --no-reject-file --json >"$IT_TMP/out" 2>"$IT_TMP/err" &
  else
    env --default-signal=INT "$INGOT_BIN" run "$D/colors.yaml" "$IT_TMP/s.csv" --batch-size 100 --writers 1 \
      --statement-timeout 0 --no-reject-file --json >"$IT_TMP/out" 2>"$IT_TMP/err" &
  fi
  pid=$!
  stalled >/dev/null || { kill $pid; fail "$how: the batch never stalled"; }
  [ $how = cancel ] && kill -INT $pid
  rc=0; wait $pid || rc=$?
  t1=$(date +%s.%N)
  OUT=$(cat "$IT_TMP/out"); ERR=$(cat "$IT_TMP/err")
  unstall
  assert_eq 2 "$rc" "$how: a stalled import's exit code"
  python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 20 else 1)" || fail "$how: the import waited $(echo "$t1 - $t0" | bc) s on a stalled batch"
  assert_contains "$ERR" "sent nothing for longer than its statement timeout and 5 s: the import dropped its connections" "$how: said why"
  if [ $how = timeout ]; then
    assert_eq "timed_out" "$(jq -r .status <<<"$OUT")" "$how: JSON status"
  else
    assert_eq "canceled" "$(jq -r .status <<<"$OUT")" "$how: JSON status"
  fi
  assert_eq "400|400" "$(sql "SELECT count(*), max(color_name) FROM color_master" | sed 's/S000//')" "$how: the batches before the stalled one, and only those"
  assert_eq 400 "$(jq -r .counts.inserted <<<"$OUT")" "$how: counted as in the table"
done

# A batch that is only slow (its statement takes 3 s, well within the
# statement timeout) is not a database that stopped answering: out of
# time meanwhile, the import lets it commit and stops after it.
sql "DROP TRIGGER stall ON color_master"
sql "CREATE FUNCTION slow3() RETURNS trigger LANGUAGE plpgsql AS
       \$\$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END \$\$"
sql "CREATE TRIGGER slow3 BEFORE INSERT ON color_master FOR EACH ROW
       WHEN (NEW.color_name = 'S000050') EXECUTE FUNCTION slow3()"
sql "TRUNCATE color_master CASCADE" >/dev/null
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/s.csv" --batch-size 100 --writers 1 \
  --timeout 1 --no-reject-file --json
assert_contains "$ERR" "stopped at a batch boundary" "a slow batch ends at its boundary"
assert_not_contains "$ERR" "dropped its connections" "a slow batch is not dropped"
got=$(sql "SELECT count(*) FROM color_master")
assert_eq "timed_out|$got" "$(jq -r '"\(.status)|\(.counts.inserted)"' <<<"$OUT")" "what committed is counted"
[ "$got" -ge 100 ] && [ "$got" -lt 2000 ] && [ $((got % 100)) = 0 ] || fail "the slow batch and the one queued behind it commit, whole ($got rows)"
