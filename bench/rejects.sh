#!/usr/bin/env bash
# bench/rejects.sh - what rows the database rejects cost: ingot run on
# files where about 1% and about 20% of the rows break a CHECK constraint
# that no pipeline rule knows of, against the same file with no constraint
# (every row lands), measured in the same round on the same server.
#
#   source .ingot/env; bash bench/rejects.sh [SIZES...]   default: 10000 50000
#   BENCH_ROUNDS=N   rounds per size (default 3); medians are reported
#   INGOT_BIN=PATH   the binary to measure (default build/ingot)
#
# Two pipelines: pipelines/item_master.yaml on bench/gen.py's items file
# (CHECK on item_master: 1% of names end in 00, 20% of rows have brand
# Kite), and pipelines/items.yaml on its variants file (CHECK on
# item_variant.stock: 1.2% of rows are a multiple of 100, 20% of 5).
# Before timing, the script checks the failed count against the file
# (which rows and why: tests/integration/test_run_rejected_rows.sh).
# Uses a scratch database next to DATABASE_URL (created and dropped here).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 50000)
SCRATCH=bench_rejects
source "$ROOT/bench/scratch.sh"

reset() { q -c "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE" \
            -c "ALTER TABLE item_master DROP CONSTRAINT IF EXISTS bench_bad" \
            -c "ALTER TABLE item_variant DROP CONSTRAINT IF EXISTS bench_bad" >/dev/null; }

# case: label|pipeline|file kind|table|CHECK expression ("" = clean)|expected failed rows (python over the file)
CASES=(
  "item_master clean|item_master|items|item_master||0"
  "item_master 1% bad|item_master|items|item_master|right(name, 2) <> '00'|sum(1 for r in rows if r['name'].endswith('00'))"
  "item_master 20% bad|item_master|items|item_master|brand <> 'Kite'|sum(1 for r in rows if r['brand'] == 'Kite')"
  "items.yaml clean|items|variants|item_variant||0"
  "items.yaml 1% bad|items|variants|item_variant|stock % 100 <> 0|sum(1 for r in rows if int(r['stock']) % 100 == 0)"
  "items.yaml 20% bad|items|variants|item_variant|stock % 5 <> 0|sum(1 for r in rows if int(r['stock']) % 5 == 0)"
)

run_case() { # label pipeline file table check -> seconds on stdout, failed count in $OUT/rej.failed
  reset
  [ -z "$5" ] || q -c "ALTER TABLE $4 ADD CONSTRAINT bench_bad CHECK ($5)" >/dev/null
  timed_run rej "pipelines/$2.yaml" "$3"
}

echo "ingot rejects benchmark $(date -u +%FT%TZ), $(nproc) cores, medians of $ROUNDS rounds" | tee "$OUT/rejects.txt"
for n in "${SIZES[@]}"; do
  items=$OUT/items_$n.csv; variants=$OUT/variants_$n.csv
  [ -f "$items" ] || python3 bench/gen.py items "$n" "$items"
  [ -f "$variants" ] || python3 bench/gen.py variants "$n" "$variants"
  declare -A T=()
  for c in "${CASES[@]}"; do # every bad row must be reported, once
    IFS='|' read -r label pl kind table check expect <<<"$c"
    file=$items; [ "$kind" = variants ] && file=$variants
    want=$(python3 -c "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); print($expect)" "$file")
    run_case "$label" "$pl" "$file" "$table" "$check" >/dev/null
    got=$(cat "$OUT/rej.failed")
    [ "$got" = "$want" ] || { echo "$label: $got failed rows, expected $want" >&2; cat "$OUT/rej.err" >&2; exit 1; }
  done
  for r in $(seq "$ROUNDS"); do
    for c in "${CASES[@]}"; do
      IFS='|' read -r label pl kind table check expect <<<"$c"
      file=$items; [ "$kind" = variants ] && file=$variants
      T[$label]+=" $(run_case "$label" "$pl" "$file" "$table" "$check")"
    done
  done
  for c in "${CASES[@]}"; do
    IFS='|' read -r label pl kind table check expect <<<"$c"
    m=$(median ${T[$label]})
    clean=$(median ${T[${label%% *} clean]})
    printf '%-24s %8d rows %8.2f s %10.0f rows/s %6.2fx the clean run\n' "$label" "$n" "$m" \
      "$(echo "$n / $m" | bc -l)" "$(echo "$m / $clean" | bc -l)" | tee -a "$OUT/rejects.txt"
  done
  unset T
done
