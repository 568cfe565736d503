#!/usr/bin/env bash
# test.sh - the whole test suite, from a fresh machine: install what is
# missing, build the normal and the sanitizer (ASan + UBSan) variants, start
# the private PostgreSQL and Redis (unless DATABASE_URL and REDIS_URL are
# already set), then run every test (unit, Lua, integration) on the
# sanitizer build, then the unit tests and real imports by the program
# under valgrind.
#
# Exit code 0 only when every test passed. .ci/run calls exactly this.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/deps.sh
bash scripts/build.sh release
bash scripts/build.sh asan

started=0
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
  # A failed start must stop here: eval of a failed substitution succeeds.
  server_env=$(bash scripts/servers.sh start) || { echo "$0: the private servers did not start" >&2; exit 1; }
  eval "$server_env"
  started=1
fi
cleanup() { if [ $started = 1 ]; then bash scripts/servers.sh stop || true; fi; }
trap cleanup EXIT

# Leak checking stays on; libraries' one-time allocations are suppressed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}

status=0
echo "== ctest (ASan + UBSan build): unit, lua, integration"
ctest --test-dir build-asan --output-on-failure -j2 || status=1

echo "== valgrind: unit tests (release build)"
vpass=0; vfail=0
for src in tests/unit/test_*.c; do
  t=build/tests/$(basename "$src" .c)
  [ -x "$t" ] || { echo "valgrind: $t was not built"; vfail=$((vfail + 1)); status=1; continue; }
  if INGOT_SOURCE_DIR=$ROOT valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite --suppressions="$ROOT/tests/valgrind.supp" \
      "$t" >"build/$(basename "$t").valgrind.log" 2>&1; then
    vpass=$((vpass + 1))
  else
    vfail=$((vfail + 1)); status=1
    echo "valgrind: $(basename "$t") FAILED"; tail -n 40 "build/$(basename "$t").valgrind.log"
  fi
done
# The program itself under valgrind, on real imports into a fresh database:
# exit 99 is a valgrind finding; 0/1 are the import's own outcomes.
vgdb=ingot_valgrind_$$
base=${DATABASE_URL%%\?*}
PGOPTIONS="-c client_min_messages=warning" psql "${base%/*}/ingot" -qAtX -c "DROP DATABASE IF EXISTS $vgdb" -c "CREATE DATABASE $vgdb" >/dev/null
vgurl="${base%/*}/$vgdb"
./build/ingot migrate up --database-url "$vgurl" >/dev/null
# item_master twice (inserts, then half updates in several batches): the
# one-table path, its key-ordered stage and its counts by statistics.
python3 bench/gen.py items-half 3000 build/valgrind-items-half.csv
python3 bench/gen.py items 3000 build/valgrind-items.csv
for args in "check items" "run items examples/items.csv --no-reject-file" \
            "run items examples/items_with_errors.csv --no-reject-file --json" \
            "run items examples/items.csv --dry-run --no-reject-file" \
            "run item_master build/valgrind-items-half.csv --no-reject-file" \
            "run item_master build/valgrind-items.csv --no-reject-file --batch-size 500"; do
  rc=0
  # shellcheck disable=SC2086
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --suppressions="$ROOT/tests/valgrind.supp" ./build/ingot $args --database-url "$vgurl" \
    >"build/valgrind-ingot.log" 2>&1 || rc=$?
  if [ $rc -eq 99 ] || [ $rc -gt 2 ]; then
    vfail=$((vfail + 1)); status=1
    echo "valgrind: ingot $args FAILED (exit $rc)"; tail -n 40 build/valgrind-ingot.log
  else
    vpass=$((vpass + 1))
  fi
done
psql "${base%/*}/ingot" -qAtX -c "DROP DATABASE IF EXISTS $vgdb WITH (FORCE)" >/dev/null
echo "valgrind: $vpass passed, $vfail failed"
exit $status
