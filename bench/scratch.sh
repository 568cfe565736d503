# bench/scratch.sh - sourced by bench scripts that measure `ingot run` on a
# scratch database next to DATABASE_URL (created here, dropped on exit).
# Before sourcing: ROOT (the checkout) and SCRATCH (the database's name
# prefix). Sets BIN (INGOT_BIN or build/ingot, built if missing), OUT
# (bench/out), ROUNDS (BENCH_ROUNDS, default 3), DATABASE_URL (the scratch
# database, migrated), and the helpers q (psql on it), now and median.
BIN=${INGOT_BIN:-$ROOT/build/ingot}
[ -x "$BIN" ] || bash "$ROOT/scripts/build.sh" release >/dev/null
ROUNDS=${BENCH_ROUNDS:-3}
: "${DATABASE_URL:?source .ingot/env first (bash scripts/servers.sh start)}"
base=${DATABASE_URL%%\?*}; qs=""; [ "$base" = "$DATABASE_URL" ] || qs="?${DATABASE_URL#*\?}"
DB=${SCRATCH}_$$
ADMIN="${base%/*}/ingot$qs"
export DATABASE_URL="${base%/*}/$DB$qs"
OUT=$ROOT/bench/out
mkdir -p "$OUT"
trap 'psql "$ADMIN" -qAtX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql "$ADMIN" -qAtX -c "CREATE DATABASE $DB" >/dev/null
"$BIN" migrate up >/dev/null
export IMPORT_MAX_ROWS=100000000 INGOT_LOG_LEVEL=error
unset REDIS_URL || true

q() { PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# timed_run NAME ARGS... : `ingot run ARGS --json --no-reject-file` (exit 0
# or 1); prints its seconds, and writes its failed-row count to
# $OUT/NAME.failed (its summary to $OUT/NAME.json, stderr to $OUT/NAME.err).
timed_run() {
  local name=$1 t0 t1; shift
  t0=$(now)
  "$BIN" run "$@" --json --no-reject-file >"$OUT/$name.json" 2>"$OUT/$name.err" || [ $? = 1 ]
  t1=$(now)
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["failed"])' "$OUT/$name.json" >"$OUT/$name.failed"
  echo "$t1 - $t0" | bc -l
}
