#!/usr/bin/env bash
# test_migrate_concurrent.sh - several "migrate up" at once apply every
# migration exactly once (the advisory lock serialises them) and all succeed.
source "$(dirname "$0")/lib.sh"

nfiles=$(ls migrations/[0-9]*_*.sql | wc -l)
# A slow first migration widens the window in which the runs overlap.
cp -r migrations "$IT_TMP/mig"
cat > "$IT_TMP/mig/0000_slow.sql" <<'SQL'
-- ingot:up
SELECT pg_sleep(1);
CREATE TABLE slow_marker (id int);
-- ingot:down
DROP TABLE slow_marker;
SQL
export INGOT_MIGRATIONS_DIR=$IT_TMP/mig

pids=()
for i in 1 2 3 4; do
  "$INGOT_BIN" migrate up >"$IT_TMP/out$i" 2>"$IT_TMP/err$i" &
  pids+=($!)
done
for i in 0 1 2 3; do
  wait "${pids[$i]}" || fail "run $((i + 1)) failed: $(cat "$IT_TMP/err$((i + 1))")"
done

assert_eq "$((nfiles + 1))" "$(sql 'SELECT count(*) FROM schema_migrations')" "each migration recorded once"
applied=$(cat "$IT_TMP"/out* | grep -c '^applied ' || true)
assert_eq "$((nfiles + 1))" "$applied" "each migration applied by exactly one run"
nothing=$(cat "$IT_TMP"/out* | grep -c 'nothing to apply' || true)
assert_eq "3" "$nothing" "the other runs found nothing to do"
