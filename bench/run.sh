#!/usr/bin/env bash
# run.sh - ingot's benchmark: rows/s and the ratio to plain COPY of the same
# rows, measured in the same run on the same private server (this machine
# is noisy: only ratios within one run mean anything).
#
#   bash bench/run.sh [SIZES...]      default sizes: 10000 100000 1000000
#
# For each size it times, on an empty and on a half-populated item_master:
#   copy      plain COPY of the rows (the physical reference; empty only)
#   staged    hand-written staged upsert: COPY to a temp table, then one
#             INSERT .. SELECT .. ORDER BY key ON CONFLICT .. DO UPDATE
#             .. WHERE IS DISTINCT FROM, via psql, in one transaction
#   ingot     ingot run pipelines/item_master.yaml
#   ingot+lua the same with a trivial Lua transform hook
#   items     ingot run pipelines/items.yaml (four tables, one row per
#             variant; ratio against the item table's plain COPY rate)
# and prints ingot's peak RSS; then batch sizes 1000 (the seed's) and 10000,
# and two writers (IMPORT_WRITERS=2), for comparison. Output: bench/out/results.txt
# (and stdout).
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

q() { psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
reset_tables() { q -c "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE" -c "VACUUM ANALYZE item_master" >/dev/null; }
now() { date +%s.%N; }
RSS=0
# time_cmd VAR cmd... : seconds in VAR; ingot runs also record peak RSS (KiB)
time_cmd() {
  local var=$1; shift
  local t0 t1
  t0=$(now)
  if [ "$1" = "$INGOT" ]; then
    /usr/bin/time -f %M -o "$OUTDIR/rss" "$@" >"$OUTDIR/last.out" 2>"$OUTDIR/last.err" || { cat "$OUTDIR/last.err" >&2; return 1; }
    RSS=$(cat "$OUTDIR/rss")
  else
    "$@" >"$OUTDIR/last.out" 2>"$OUTDIR/last.err" || { cat "$OUTDIR/last.err" >&2; return 1; }
  fi
  t1=$(now)
  printf -v "$var" '%s' "$(echo "$t1 - $t0" | bc -l)"
}

staged_sql() { # file
  cat <<SQL
BEGIN;
CREATE TEMP TABLE s (name text, description text, category text, brand text, is_active boolean) ON COMMIT DROP;
\copy s FROM '$1' CSV HEADER
INSERT INTO item_master AS t (name, description, category, brand, is_active)
SELECT name, description, category, brand, is_active FROM s ORDER BY name
ON CONFLICT (name) WHERE deleted_at IS NULL DO UPDATE
SET description = COALESCE(EXCLUDED.description, t.description), category = EXCLUDED.category,
    brand = EXCLUDED.brand, is_active = EXCLUDED.is_active, updated_at = now()
WHERE (t.description, t.category, t.brand, t.is_active) IS DISTINCT FROM
      (COALESCE(EXCLUDED.description, t.description), EXCLUDED.category, EXCLUDED.brand, EXCLUDED.is_active);
COMMIT;
SQL
}

report() { # label seconds rows copy_seconds
  local rate ratio
  rate=$(echo "$3 / $2" | bc -l)
  ratio=$(echo "$4 / $2" | bc -l)
  printf '%-34s %9d rows %8.2f s %10.0f rows/s %6.2fx COPY%s\n' "$1" "$3" "$2" "$rate" "$ratio" "${5:-}" | tee -a "$OUTDIR/results.txt"
}

: > "$OUTDIR/results.txt"
echo "ingot benchmark $(date -u +%FT%TZ), $(nproc) cores, batch size ${IMPORT_BATCH_SIZE:-5000}" | tee -a "$OUTDIR/results.txt"
for n in "${SIZES[@]}"; do
  f=$OUTDIR/items_$n.csv; h=$OUTDIR/items_half_$n.csv; v=$OUTDIR/variants_$n.csv
  [ -f "$f" ] || python3 bench/gen.py items "$n" "$f"
  [ -f "$h" ] || python3 bench/gen.py items-half "$n" "$h"
  [ -f "$v" ] || python3 bench/gen.py variants "$n" "$v"
  echo "-- $n rows" | tee -a "$OUTDIR/results.txt"

  reset_tables
  time_cmd t_copy q -c "\\copy item_master (name, description, category, brand, is_active) FROM '$f' CSV HEADER"
  report "copy (empty table)" "$t_copy" "$n" "$t_copy"

  reset_tables
  time_cmd t_staged q -f <(staged_sql "$f")
  report "staged upsert (empty)" "$t_staged" "$n" "$t_copy"

  reset_tables
  time_cmd t_ingot "$INGOT" run pipelines/item_master.yaml "$f" --quiet --no-reject-file
  report "ingot item_master (empty)" "$t_ingot" "$n" "$t_copy" "  peak RSS $((RSS / 1024)) MB"
  rss_single=$RSS

  reset_tables
  time_cmd t_lua "$INGOT" run bench/pipelines/item_master_hook.yaml "$f" --quiet --no-reject-file
  report "ingot item_master + Lua hook" "$t_lua" "$n" "$t_copy" "  peak RSS $((RSS / 1024)) MB, hook cost $(printf '%.0f' "$(echo "($t_lua / $t_ingot - 1) * 100" | bc -l)")%"

  reset_tables; q -c "\\copy item_master (name, description, category, brand, is_active) FROM '$h' CSV HEADER" -c "VACUUM ANALYZE item_master" >/dev/null
  time_cmd t_staged_h q -f <(staged_sql "$f")
  report "staged upsert (half populated)" "$t_staged_h" "$n" "$t_copy"

  reset_tables; q -c "\\copy item_master (name, description, category, brand, is_active) FROM '$h' CSV HEADER" -c "VACUUM ANALYZE item_master" >/dev/null
  time_cmd t_ingot_h "$INGOT" run pipelines/item_master.yaml "$f" --quiet --no-reject-file
  report "ingot item_master (half populated)" "$t_ingot_h" "$n" "$t_copy"

  reset_tables
  time_cmd t_items "$INGOT" run pipelines/items.yaml "$v" --quiet --no-reject-file
  report "ingot items.yaml (4 tables)" "$t_items" "$n" "$t_copy" "  peak RSS $((RSS / 1024)) MB"

  for bs in 1000 10000; do
    reset_tables
    time_cmd t_bs "$INGOT" run pipelines/item_master.yaml "$f" --quiet --no-reject-file --batch-size "$bs"
    report "ingot item_master batch $bs (empty)" "$t_bs" "$n" "$t_copy"
  done
  reset_tables
  time_cmd t_w2 "$INGOT" run pipelines/item_master.yaml "$f" --quiet --no-reject-file --writers 2
  report "ingot item_master 2 writers (empty)" "$t_w2" "$n" "$t_copy"
  echo "   single-table ingot vs staged upsert: empty $(printf '%.2f' "$(echo "$t_staged / $t_ingot" | bc -l)")x, half populated $(printf '%.2f' "$(echo "$t_staged_h / $t_ingot_h" | bc -l)")x faster; peak RSS $((rss_single / 1024)) MB" | tee -a "$OUTDIR/results.txt"
done
