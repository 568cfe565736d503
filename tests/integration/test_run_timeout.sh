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

# (the upsert path only: COPYing new keys straight in can finish all 60000
# rows within the second, and the timeout is the runner's, whatever path)
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/t.csv" --timeout 1 --batch-size $B \
  --max-rows $N --no-reject-file --json --insert-first 0
assert_contains "$ERR$OUT" "timed out" "the timeout is named"
assert_contains "$OUT" '"status": "timed_out"' "JSON status"
got=$(sql "SELECT count(*) FROM color_master")
echo "# timed out after 1 s with $got of $N rows committed ($((got / B)) batches of $B)"
[ "$got" -gt 0 ] || fail "some batches committed before the timeout"
[ "$got" -lt $N ] || fail "the import stopped before the end (got $got)"
# a quarter-size first batch, then batches of B
assert_eq 0 $(((got - B / 4) % B)) "whole batches only ($got rows)"
# The committed rows are exactly the first ones of the file.
assert_eq "$got" "$(sql "SELECT count(*) FROM color_master WHERE color_name <= 'T$(printf %06d "$got")'")" "a prefix of the file committed"
assert_contains "$OUT" "\"inserted\": $got," "the summary counts what was committed"

run_ingot 0 run "$D/colors.yaml" "$IT_TMP/t.csv" --batch-size 1000 \
  --max-rows $N --no-reject-file --json
assert_contains "$OUT" "\"inserted\": $((N - got))," "the rest inserted on the second run"
assert_contains "$OUT" "\"unchanged\": $got," "the first run's rows unchanged"
assert_eq "$N|$N" "$(sql "SELECT count(*), count(DISTINCT color_name) FROM color_master")" "all rows once"
