# worker_lib.sh - helpers for the worker / HTTP integration tests (sourced
# after lib.sh, not run). Every worker started here runs in the background
# with its log in $IT_TMP/<name>.log and is killed by PID when the test
# exits; tests that need Redis down start their own redis-server.

WORKER_PIDS=()
REDIS_PIDS=()

worker_cleanup() {
  local rc=$? p
  for p in "${WORKER_PIDS[@]}" "${REDIS_PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null || true
  done
  for p in "${WORKER_PIDS[@]}" "${REDIS_PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    for f in "$IT_TMP"/*.log; do
      [ -f "$f" ] || continue
      echo "--- $f (last 30 lines)" >&2; tail -30 "$f" >&2
    done
  fi
  set +e  # (exit 1) must not end the trap under set -e
  (exit $rc)
  it_cleanup
}
trap worker_cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_worker NAME ARGS... : ingot worker in the background; $W_PID is set.
start_worker() {
  local name=$1; shift
  "$INGOT_BIN" worker "$@" >"$IT_TMP/$name.log" 2>&1 &
  W_PID=$!
  WORKER_PIDS+=("$W_PID")
}

# stop_worker PID : SIGTERM and wait; its exit code in $W_RC.
stop_worker() {
  W_RC=0
  kill -TERM "$1"
  wait "$1" || W_RC=$?
}

# wait_until SECONDS CONDITION... : poll the condition every 0.1 s.
wait_until() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until eval "$*"; do
    [ $SECONDS -lt $end ] || fail "timed out after ${limit}s waiting for: $*"
    sleep 0.1
  done
}

job_state() { sql "SELECT state FROM import_jobs WHERE id = $1"; }

# gen_colors N PREFIX FILE : a colors.yaml CSV with N distinct rows.
gen_colors() {
  awk -v n="$1" -v p="$2" 'BEGIN { print "name,code";
    for (i = 1; i <= n; i++) printf "%s%06d,#%06X\n", p, i, i }' > "$3"
}

# A statement trigger that makes every upsert into color_master sleep
# test_ctl.sleep seconds: turns any job into a slow one, deterministically.
install_slow_trigger() {
  sql "CREATE TABLE IF NOT EXISTS test_ctl (sleep float8 NOT NULL);
       INSERT INTO test_ctl SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM test_ctl);
       CREATE OR REPLACE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
       BEGIN PERFORM pg_sleep((SELECT sleep FROM test_ctl LIMIT 1)); RETURN NULL; END \$\$;
       DROP TRIGGER IF EXISTS test_slow ON color_master;
       CREATE TRIGGER test_slow BEFORE INSERT ON color_master
         FOR EACH STATEMENT EXECUTE FUNCTION test_slow();" >/dev/null
}
set_sleep() { sql "UPDATE test_ctl SET sleep = $1" >/dev/null; }

pipeline_dir() { # a pipeline dir with the shipped pipelines + colors.yaml
  mkdir -p "$IT_TMP/pipelines"
  cp pipelines/*.yaml tests/data/run/colors.yaml "$IT_TMP/pipelines/"
  echo "$IT_TMP/pipelines"
}
