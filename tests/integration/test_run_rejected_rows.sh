#!/usr/bin/env bash
# test_run_rejected_rows.sh - rows the database rejects, many of them: the
# row pass finds each one with PostgreSQL's reason, in one try per row
# (not a bisection's many), every good row lands with the counts a clean
# import gives, and rows that fail only together still go through
# bisection. (How much faster than bisection: bench/rejects.sh.)
source "$(dirname "$0")/lib.sh"
run_ingot 0 migrate up
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# --- a fifth of a four-table import breaks a CHECK no rule knows of -------
python3 "$ROOT/bench/gen.py" variants 600 "$IT_TMP/v.csv"
bad=$(python3 -c 'import csv,sys; print(sum(1 for r in csv.DictReader(open(sys.argv[1])) if int(r["stock"]) % 5 == 0))' "$IT_TMP/v.csv")
[ "$bad" -gt 60 ] || fail "the generated file has $bad rows to reject, expected over 60"
good=$((600 - bad))

# The counts of a clean import of the good rows alone, for comparison.
python3 -c '
import csv, sys
r = csv.reader(open(sys.argv[1])); w = csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n")
h = next(r); w.writerow(h)
for row in r:
    if int(row[h.index("stock")]) % 5: w.writerow(row)' "$IT_TMP/v.csv" "$IT_TMP/good.csv"
run_ingot 0 run "$ROOT/pipelines/items.yaml" "$IT_TMP/good.csv" --json --batch-size 200
# (A parent's unchanged and skipped split its rows by batch, and the
# batches differ once rows fail: their sum is what must agree.)
outcome() { jq -S '{counts: (.counts | del(.read) | .failed = 0), targets: [.targets[] | {name, inserted, updated, rows: (.inserted + .updated + .unchanged + .skipped)}]}'; }
outcome <<<"$OUT" >"$IT_TMP/clean.json"
sql "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE"

sql "ALTER TABLE item_variant ADD CONSTRAINT stock_not_fives CHECK (stock % 5 <> 0)"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$ROOT/pipelines/items.yaml" "$IT_TMP/v.csv" --json --batch-size 200
assert_eq "$bad" "$(jq '.counts.failed' <<<"$OUT")" "every rejected row reported"
assert_eq "$good" "$(jq '.counts.inserted' <<<"$OUT")" "every good row inserted"
assert_eq "$bad" "$(jq '[.failed_rows[] | select(.reasons[0].code == "23514" and .reasons[0].constraint == "stock_not_fives" and .reasons[0].target == "item_variant" and (.reasons[0].message | startswith("new row for relation \"item_variant\" violates check constraint \"stock_not_fives\"")))] | length' <<<"$OUT")" \
  "each failed row carries SQLSTATE, constraint, target and PostgreSQL's message"
assert_eq "[]" "$(jq -c '[.failed_rows[] | select((.values[9] | tonumber) % 5 != 0)]' <<<"$OUT")" "only rows breaking the constraint failed"
assert_eq "$good|0" "$(sql "SELECT count(*), count(*) FILTER (WHERE stock % 5 = 0) FROM item_variant")" "the good rows, and only they, are in the table"
assert_eq "$(cat "$IT_TMP/clean.json")" "$(outcome <<<"$OUT")" \
  "per-target counts as a clean import of the good rows gives them"
# Found by the row pass, one pass per batch that failed (the debug log
# says so), not by splitting batches in two.
assert_contains "$ERR" "row pass: " "the row pass isolated the rows"
assert_eq "$bad" "$(grep -o 'row pass: [0-9]* of' <<<"$ERR" | awk '{ s += $3 } END { print s }')" "the row passes found every rejected row"

# --- rows that fail only together: the row pass finds none, bisection does
sql "CREATE FUNCTION at_most_40() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN
       IF (SELECT count(*) FROM new_rows) > 40 THEN
         RAISE EXCEPTION 'more than 40 colours in one statement';
       END IF;
       RETURN NULL;
     END \$\$"
sql "CREATE TRIGGER at_most_40 AFTER INSERT ON color_master REFERENCING NEW TABLE AS new_rows
     FOR EACH STATEMENT EXECUTE FUNCTION at_most_40()"
python3 -c '
print("name,code")
for i in range(200): print("Colour %03d,#%06X" % (i, i))' >"$IT_TMP/c.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$ROOT/tests/data/run/colors.yaml" "$IT_TMP/c.csv" --json
assert_contains "$ERR" "the row pass found no row failing alone; bisecting" "bisection takes over when no row fails alone"
assert_eq "200|0" "$(jq -r '"\(.counts.inserted)|\(.counts.failed)"' <<<"$OUT")" "all 200 colours land, in subsets of at most 40"
assert_eq "200" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'Colour %'")" "all 200 colours in the table"

# --- duplicates: last: the pass tries only the row the upsert applies -----
# An earlier row of a key is skipped, as in a batch nothing rejects, even
# when its own values would be rejected and other rows of its batch are.
sql "ALTER TABLE color_master ADD CONSTRAINT no_bad_codes CHECK (color_code NOT LIKE '#BAD%')"
python3 -c '
print("name,code")
print("Twice,#BAD000")
for i in range(20): print("Bad %02d,#BAD0%02d" % (i, i))
for i in range(10): print("Fine %02d,#00FF%02d" % (i, i))
print("Twice,#00FF00")' >"$IT_TMP/d.csv"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$ROOT/tests/data/run/colors.yaml" "$IT_TMP/d.csv" --json
assert_contains "$ERR" "row pass: 20 of 32 rows failed" "one row pass found the 20 bad rows"
assert_eq "11|1|20" "$(jq -r '"\(.counts.inserted)|\(.counts.skipped)|\(.counts.failed)"' <<<"$OUT")" "the first 'Twice' skipped, not failed"
assert_eq "[]" "$(jq -c '[.failed_rows[] | select(.values[0] | startswith("Bad") | not)]' <<<"$OUT")" "only the Bad rows failed"
assert_eq "#00FF00" "$(sql "SELECT color_code FROM color_master WHERE color_name = 'Twice'")" "the last 'Twice' landed"
