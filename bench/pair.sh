#!/usr/bin/env bash
# pair.sh - ingot builds against the hand-written staged upsert on the
# half-populated item_master, back to back in every round: on this noisy
# machine a change of a few percent only shows in the ratios of runs made
# under the same conditions.
#
#   source .ingot/env; bash bench/pair.sh [-n ROWS] BIN [BIN...]
#       ROWS: 10000 unless given; BENCH_ROUNDS (default 15) rounds.
#
# Each round: the staged upsert (bench/staged.sh, through the psql
# program), then each BIN running `run pipelines/item_master.yaml` (the
# order of the BINs rotating from round to round), each on a freshly
# half-populated table. Prints each case's median time and, for each BIN,
# the median over rounds of staged time / BIN time (above 1: faster than
# the staged upsert). Runs on a scratch database next to DATABASE_URL.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ROWS=10000
if [ "${1:-}" = -n ]; then ROWS=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: bench/pair.sh [-n ROWS] BIN [BIN...]" >&2; exit 2; }
BINS=("$@")
for b in "${BINS[@]}"; do [ -x "$b" ] || { echo "pair.sh: $b is not executable" >&2; exit 2; }; done
SCRATCH=ingot_pair
# shellcheck source=bench/scratch.sh
source "$ROOT/bench/scratch.sh"
# shellcheck source=bench/staged.sh
source "$ROOT/bench/staged.sh"
ROUNDS=${BENCH_ROUNDS:-15}
INGOT_LOG_LEVEL=warn

f=$OUT/items_$ROWS.csv; h=$OUT/items_half_$ROWS.csv
[ -f "$f" ] || python3 bench/gen.py items "$ROWS" "$f"
[ -f "$h" ] || python3 bench/gen.py items-half "$ROWS" "$h"
staged_sql "$f" >"$OUT/pair_staged.sql"
half() {
  q -c "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE" \
    -c "\\copy item_master (name, description, category, brand, is_active) FROM '$h' CSV HEADER" \
    -c "VACUUM ANALYZE item_master" >/dev/null
}
# timed VAR cmd...: seconds in VAR
timed() {
  local var=$1 t0 t1; shift
  t0=$(now)
  "$@" >/dev/null
  t1=$(now)
  printf -v "$var" '%s' "$(echo "$t1 - $t0" | bc -l)"
}

declare -a S=() T=()
n=${#BINS[@]}
for r in $(seq 1 "$ROUNDS"); do
  half
  timed s "$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -f "$OUT/pair_staged.sql"
  S+=("$s")
  for k in $(seq 0 $((n - 1))); do
    j=$(( (k + r) % n ))
    half
    timed t "${BINS[$j]}" run pipelines/item_master.yaml "$f" --quiet --no-reject-file
    T[$j]="${T[$j]:-} $t"
  done
done
printf 'pair.sh: %s rows, half-populated table, %s rounds\n' "$ROWS" "$ROUNDS"
printf '%-40s %8.1f ms\n' "staged upsert (psql)" "$(echo "$(median "${S[@]}") * 1000" | bc -l)"
for j in $(seq 0 $((n - 1))); do
  read -ra A <<<"${T[$j]}"
  ratios=()
  for k in "${!A[@]}"; do ratios+=("$(echo "${S[$k]} / ${A[$k]}" | bc -l)"); done
  printf '%-40s %8.1f ms  %.3fx the staged upsert (paired)\n' "${BINS[$j]}" \
    "$(echo "$(median "${A[@]}") * 1000" | bc -l)" "$(median "${ratios[@]}")"
done
