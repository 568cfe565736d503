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
