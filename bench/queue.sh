#!/usr/bin/env bash
# bench/queue.sh - two figures for the background-import side:
#   1. jobs/s the queue sustains with tiny jobs (one row each), drained by
#      one `ingot worker` with INGOT_WORKER_THREADS threads;
#   2. the overhead of background vs synchronous for a ROWS-row import:
#      `ingot run` vs `ingot submit` + waiting until the job finished.
# Uses a scratch database next to DATABASE_URL (created and dropped here).
# Usage: source /work/main/.ingot/env; bench/queue.sh [JOBS] [ROWS] [THREADS]
# Build without sanitizers for real numbers (cmake -DCMAKE_BUILD_TYPE=Release).
set -euo pipefail
JOBS=${1:-500} ROWS=${2:-10000} THREADS=${3:-2}
BIN=${INGOT_BIN:-build/ingot}
: "${DATABASE_URL:?source the servers env first}"
base=${DATABASE_URL%%\?*}; q=""; [ "$base" = "$DATABASE_URL" ] || q="?${DATABASE_URL#*\?}"
DB=bench_queue_$$
ADMIN="${base%/*}/ingot$q"
export DATABASE_URL="${base%/*}/$DB$q"
TMP=$(mktemp -d)
WPID=
cleanup() {
  [ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null || true
  psql "$ADMIN" -qAtX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
psql "$ADMIN" -qAtX -c "CREATE DATABASE $DB" >/dev/null
"$BIN" migrate up >/dev/null
mkdir -p "$TMP/p"; cp pipelines/*.yaml tests/data/run/colors.yaml "$TMP/p/"
export INGOT_PIPELINE_DIR=$TMP/p INGOT_LOG_LEVEL=warn
unset REDIS_URL || true
sql() { psql "$DATABASE_URL" -qAtX -c "$1"; }
now() { date +%s.%N; }

# 1. tiny jobs: enqueue them all in one statement, then drain
sql "INSERT INTO import_jobs (pipeline, source, source_bytes)
     SELECT 'colors', convert_to('name,code' || chr(10) || 'b' || g || ',#000001' || chr(10), 'UTF8'), 20
     FROM generate_series(1, $JOBS) g" >/dev/null
t0=$(now)
"$BIN" worker --no-http --threads "$THREADS" 2>"$TMP/w.log" & WPID=$!
until [ "$(sql "SELECT count(*) FROM import_jobs WHERE state = 'succeeded'")" = "$JOBS" ]; do sleep 0.05; done
t1=$(now)
echo "queue: $JOBS one-row jobs with $THREADS thread(s) in $(echo "$t1 - $t0" | bc) s: $(echo "scale=1; $JOBS / ($t1 - $t0)" | bc) jobs/s"

# 2. background vs synchronous, ROWS rows
awk -v n="$ROWS" 'BEGIN { print "name,code"; for (i = 1; i <= n; i++) printf "r%07d,#%06X\n", i, i % 16777216 }' > "$TMP/r.csv"
sql "DELETE FROM color_master" >/dev/null
t0=$(now); "$BIN" run colors "$TMP/r.csv" --no-reject-file --quiet; t1=$(now)
sync=$(echo "$t1 - $t0" | bc)
sql "DELETE FROM color_master" >/dev/null
t0=$(now)
id=$("$BIN" submit colors "$TMP/r.csv" 2>/dev/null)
until [ "$(sql "SELECT state FROM import_jobs WHERE id = $id")" = succeeded ]; do sleep 0.02; done
t1=$(now)
bg=$(echo "$t1 - $t0" | bc)
echo "import of $ROWS rows: ingot run $sync s; submit + wait $bg s (overhead $(echo "$bg - $sync" | bc) s)"
kill -TERM "$WPID"; wait "$WPID" || true; WPID=
