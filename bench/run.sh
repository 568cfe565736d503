#!/usr/bin/env bash
# run.sh - ingot's benchmark: rows/s and the ratio to plain COPY of the same
# rows, measured in the same run on the same private server (this machine
# is noisy: only ratios within one run mean anything).
#
#   bash bench/run.sh [SIZES...]      default sizes: 10000 100000 1000000
#   BENCH_ROUNDS=N                    rounds per size (default 11 up to
#                                     10k rows, where a round takes a few
#                                     seconds and noise weighs most; 5 up
#                                     to 100k, 3 above)
#
# For each size it times, on an empty and on a half-populated item_master:
#   copy      plain COPY of the rows (the physical reference; empty only)
#   staged    hand-written staged upsert: COPY to a temp table, then one
#             INSERT .. SELECT .. ORDER BY key ON CONFLICT .. DO UPDATE
#             .. WHERE IS DISTINCT FROM, via psql, in one transaction
#   ingot     ingot run pipelines/item_master.yaml (the defaults: insert-
#             first on, two writers), and the same with --insert-first 0
#             (upsert only) and with --writers 1
#   ingot+lua the same with a trivial Lua transform hook
#   items     ingot run pipelines/items.yaml (four tables, one row per
#             variant; ratio against the item table's plain COPY rate)
# and prints ingot's peak RSS; then batch sizes 1000 (the seed's) and 10000,
# and one writer (IMPORT_WRITERS=1) on both table states, for comparison.
# Every case runs once per round, the rounds interleaved, and the median
# is reported (this machine's speed drifts by 25% over minutes). The
# comparisons of ingot with the staged upsert are also given as the
# median of the per-round ratios: the two run back to back, so each ratio
# is taken under the same conditions. Output: bench/out/results.txt (and
# stdout).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000 1000000)
OUTDIR=$ROOT/bench/out
mkdir -p "$OUTDIR"
INGOT=$ROOT/build/ingot
[ -x "$INGOT" ] || bash scripts/build.sh release >/dev/null

started=0
if [ -z "${DATABASE_URL:-}" ]; then
  eval "$(bash scripts/servers.sh start 2>/dev/null)"
  started=1
fi
trap '[ $started = 1 ] && bash scripts/servers.sh stop >/dev/null 2>&1 || true' EXIT

BASE_URL=$DATABASE_URL
base=${BASE_URL%%\?*}
export DATABASE_URL="${base%/*}/ingot_bench"
psql "${base%/*}/ingot" -qAtX -c "DROP DATABASE IF EXISTS ingot_bench" -c "CREATE DATABASE ingot_bench" >/dev/null
"$INGOT" migrate up >/dev/null
export IMPORT_MAX_ROWS=100000000 INGOT_LOG_LEVEL=warn

# shellcheck source=bench/staged.sh
source "$ROOT/bench/staged.sh"
q() { "$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
reset_tables() { q -c "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE" -c "VACUUM ANALYZE item_master" >/dev/null; }
now() { date +%s.%N; }
RSS=0
# time_cmd VAR cmd... : seconds in VAR; ingot runs also record peak RSS
# (KiB). Every command runs under /usr/bin/time, so all pay its fork.
time_cmd() {
  local var=$1; shift
  local t0 t1
  [ "$1" = q ] && set -- "$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "${@:2}"
  t0=$(now)
  /usr/bin/time -f %M -o "$OUTDIR/rss" "$@" >"$OUTDIR/last.out" 2>"$OUTDIR/last.err" || { cat "$OUTDIR/last.err" >&2; return 1; }
  t1=$(now)
  [ "$1" = "$INGOT" ] && RSS=$(cat "$OUTDIR/rss")
  printf -v "$var" '%s' "$(echo "$t1 - $t0" | bc -l)"
}

report() { # label seconds rows copy_seconds [suffix]
  local rate ratio
  rate=$(echo "$3 / $2" | bc -l)
  ratio=$(echo "$4 / $2" | bc -l)
  printf '%-44s %9d rows %8.2f s %10.0f rows/s %6.2fx COPY%s\n' "$1" "$3" "$2" "$rate" "$ratio" "${5:-}" | tee -a "$OUTDIR/results.txt"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# paired I J: the median over rounds of case I's time / case J's time
paired() {
  local -a a b r=()
  read -ra a <<<"${T[$1]}"; read -ra b <<<"${T[$2]}"
  for k in "${!a[@]}"; do r+=("$(echo "${a[$k]} / ${b[$k]}" | bc -l)"); done
  printf '%.2f' "$(median "${r[@]}")"
}
half_populate() { reset_tables; q -c "\\copy item_master (name, description, category, brand, is_active) FROM '$1' CSV HEADER" -c "VACUUM ANALYZE item_master" >/dev/null; }

# The cases, measured in this order in every round. Each: label|setup|command
# (setup: empty or half; command run through time_cmd; $f $h $v are the
# files of the size at hand).
CASES=(
  "copy (empty table)|empty|q -c \"\\\\copy item_master (name, description, category, brand, is_active) FROM '\$f' CSV HEADER\""
  "staged upsert (empty)|empty|q -f <(staged_sql \"\$f\")"
  "ingot item_master (empty)|empty|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file"
  "ingot upsert only (empty)|empty|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file --insert-first 0"
  "ingot item_master + Lua hook|empty|\$INGOT run bench/pipelines/item_master_hook.yaml \"\$f\" --quiet --no-reject-file"
  "staged upsert (half populated)|half|q -f <(staged_sql \"\$f\")"
  "ingot item_master (half populated)|half|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file"
  "ingot upsert only (half populated)|half|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file --insert-first 0"
  "ingot items.yaml (4 tables)|empty|\$INGOT run pipelines/items.yaml \"\$v\" --quiet --no-reject-file"
  "ingot item_master batch 1000 (empty)|empty|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file --batch-size 1000"
  "ingot item_master batch 10000 (empty)|empty|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file --batch-size 10000"
  "ingot item_master 1 writer (empty)|empty|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file --writers 1"
  "ingot item_master 1 writer (half populated)|half|\$INGOT run pipelines/item_master.yaml \"\$f\" --quiet --no-reject-file --writers 1"
)

: > "$OUTDIR/results.txt"
echo "ingot benchmark $(date -u +%FT%TZ), $(nproc) cores, batch size ${IMPORT_BATCH_SIZE:-5000}, medians of ${BENCH_ROUNDS:-11 (5 above 10k, 3 above 100k)} rounds, references by $PSQL" | tee -a "$OUTDIR/results.txt"
for n in "${SIZES[@]}"; do
  if [ -n "${BENCH_ROUNDS:-}" ]; then ROUNDS=$BENCH_ROUNDS
  elif [ "$n" -le 10000 ]; then ROUNDS=11
  elif [ "$n" -le 100000 ]; then ROUNDS=5
  else ROUNDS=3; fi
  f=$OUTDIR/items_$n.csv; h=$OUTDIR/items_half_$n.csv; v=$OUTDIR/variants_$n.csv
  [ -f "$f" ] || python3 bench/gen.py items "$n" "$f"
  [ -f "$h" ] || python3 bench/gen.py items-half "$n" "$h"
  [ -f "$v" ] || python3 bench/gen.py variants "$n" "$v"
  echo "-- $n rows ($ROUNDS rounds)" | tee -a "$OUTDIR/results.txt"
  declare -A T=() PEAK=()
  for r in $(seq 1 "$ROUNDS"); do
    for i in "${!CASES[@]}"; do
      IFS='|' read -r label setup cmd <<<"${CASES[$i]}"
      if [ "$setup" = half ]; then half_populate "$h"; else reset_tables; fi
      RSS=0
      eval "time_cmd secs $cmd"
      T[$i]="${T[$i]:-} $secs"
      [ "$RSS" -gt "${PEAK[$i]:-0}" ] && PEAK[$i]=$RSS
    done
  done
  declare -A M=()
  for i in "${!CASES[@]}"; do
    # shellcheck disable=SC2086
    M[$i]=$(median ${T[$i]})
  done
  t_copy=${M[0]}
  for i in "${!CASES[@]}"; do
    label=${CASES[$i]%%|*}
    extra=""
    [ "${PEAK[$i]:-0}" -gt 0 ] && extra="  peak RSS $(( PEAK[$i] / 1024 )) MB"
    [ "$i" = 4 ] && extra="$extra, hook cost $(printf '%.0f' "$(echo "(${M[4]} / ${M[2]} - 1) * 100" | bc -l)")%"
    [ "$ROUNDS" -gt 1 ] && extra="$extra  (rounds:${T[$i]})"
    report "$label" "${M[$i]}" "$n" "$t_copy" "$extra"
  done
  echo "   single-table ingot vs staged upsert: empty $(printf '%.2f' "$(echo "${M[1]} / ${M[2]}" | bc -l)")x, half populated $(printf '%.2f' "$(echo "${M[5]} / ${M[6]}" | bc -l)")x faster; insert-first vs upsert only: $(printf '%.2f' "$(echo "${M[3]} / ${M[2]}" | bc -l)")x (empty), $(printf '%.2f' "$(echo "${M[7]} / ${M[6]}" | bc -l)")x (half populated); two writers vs one: $(printf '%.2f' "$(echo "${M[11]} / ${M[2]}" | bc -l)")x (empty), $(printf '%.2f' "$(echo "${M[12]} / ${M[6]}" | bc -l)")x (half populated)" | tee -a "$OUTDIR/results.txt"
  echo "   paired (median of per-round ratios): ingot vs staged upsert: empty $(paired 1 2)x, half populated $(paired 5 6)x faster; two writers vs one: $(paired 11 2)x (empty), $(paired 12 6)x (half populated)" | tee -a "$OUTDIR/results.txt"
  unset T PEAK M
done
