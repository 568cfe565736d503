#!/usr/bin/env bash
# bench/conflict_error.sh - what `on_conflict: error` costs against the
# default `on_conflict: update`: ingot run of the same file into
# item_master, upsert path throughout (--insert-first 0), measured in the
# same round on the same server.
#
#   source .ingot/env; bash bench/conflict_error.sh [SIZES...]   default: 50000
#   BENCH_ROUNDS=N   rounds per size (default 3); medians are reported
#   INGOT_BIN=PATH   the binary to measure (default build/ingot)
#
# Cases (bench/gen.py's items file; the table holds one unrelated row, or
# every other key of the file: the items-half file):
#   update, new keys        pipelines/item_master.yaml (the reference)
#   error, new keys         bench/pipelines/item_master_conflict_error.yaml
#   error, half existing    the same; half the rows fail ALREADY_EXISTS
# Before timing, the script checks each case's failed count.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(50000)
SCRATCH=bench_conflict
source "$ROOT/bench/scratch.sh"

# case: label|pipeline|table contents (one / half)|expected failed rows
CASES=(
  "update, new keys|pipelines/item_master.yaml|one|0"
  "error, new keys|bench/pipelines/item_master_conflict_error.yaml|one|0"
  "error, half existing|bench/pipelines/item_master_conflict_error.yaml|half|HALF"
)

run_case() { # pipeline contents file half-file -> seconds on stdout, failed count in $OUT/conflict.failed
  q -c "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE" >/dev/null
  if [ "$2" = half ]; then
    q -c "\\copy item_master (name, description, category, brand, is_active) FROM '$4' CSV HEADER" >/dev/null
  else
    q -c "INSERT INTO item_master (name) VALUES ('not in the file')" >/dev/null
  fi
  q -c "VACUUM ANALYZE item_master" >/dev/null
  timed_run conflict "$1" "$3" --insert-first 0
}

echo "ingot on_conflict: error benchmark $(date -u +%FT%TZ), $(nproc) cores, medians of $ROUNDS rounds" | tee "$OUT/conflict_error.txt"
for n in "${SIZES[@]}"; do
  items=$OUT/items_$n.csv; half=$OUT/items_half_$n.csv
  [ -f "$items" ] || python3 bench/gen.py items "$n" "$items"
  [ -f "$half" ] || python3 bench/gen.py items-half "$n" "$half"
  nhalf=$(( $(wc -l <"$half") - 1 ))
  declare -A T=()
  for c in "${CASES[@]}"; do
    IFS='|' read -r label pl contents want <<<"$c"
    [ "$want" = HALF ] && want=$nhalf
    run_case "$pl" "$contents" "$items" "$half" >/dev/null
    got=$(cat "$OUT/conflict.failed")
    [ "$got" = "$want" ] || { echo "$label: $got failed rows, expected $want" >&2; cat "$OUT/conflict.err" >&2; exit 1; }
  done
  for r in $(seq "$ROUNDS"); do
    for c in "${CASES[@]}"; do
      IFS='|' read -r label pl contents want <<<"$c"
      T[$label]+=" $(run_case "$pl" "$contents" "$items" "$half")"
    done
  done
  ref=$(median ${T[update, new keys]})
  for c in "${CASES[@]}"; do
    label=${c%%|*}
    m=$(median ${T[$label]})
    printf '%-24s %8d rows %8.2f s %10.0f rows/s %6.2fx the update run\n' "$label" "$n" "$m" \
      "$(echo "$n / $m" | bc -l)" "$(echo "$m / $ref" | bc -l)" | tee -a "$OUT/conflict_error.txt"
  done
  unset T
done
