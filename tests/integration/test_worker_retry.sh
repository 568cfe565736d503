#!/usr/bin/env bash
# test_worker_retry.sh - how the worker ends jobs that fail: a transient
# database fault (SQLSTATE 40001 injected by a trigger, deterministically,
# for the first 8 statements: the runner's own 8 retries) makes the
# attempt retryable with backoff and the next attempt succeeds; permanent
# failures (unknown pipeline, a header that does not fit) fail at once;
# SIGTERM while a batch is retried stops the worker at once and releases
# the job.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
# A database without the job queue is a setup mistake, said at once.
run_ingot 2 worker --no-http --threads 1
assert_contains "$ERR" "no job queue (table import_jobs): run 'ingot migrate up' first" "an unmigrated database"
run_ingot 0 migrate up
export INGOT_PIPELINE_DIR=$(pipeline_dir)
export INGOT_LEASE_SECONDS=3
unset REDIS_URL

# --- permanent failures: no retry -----------------------------------------
jp=$(sql "INSERT INTO import_jobs (pipeline, source, source_bytes) VALUES ('nope', convert_to(E'a,b\n1,2\n', 'UTF8'), 8) RETURNING id")
jh=$(sql "INSERT INTO import_jobs (pipeline, source, source_bytes) VALUES ('colors', convert_to(E'x,y\n1,2\n', 'UTF8'), 8) RETURNING id")
start_worker w1 --no-http --threads 1; w1=$W_PID
wait_until 30 '[ "$(job_state '$jp')" = failed ] && [ "$(job_state '$jh')" = failed ]'
assert_eq "1" "$(sql "SELECT attempt FROM import_jobs WHERE id = $jp")" "unknown pipeline: one attempt"
assert_contains "$(sql "SELECT last_error FROM import_jobs WHERE id = $jp")" "nope" "error names the pipeline"
assert_eq "1" "$(sql "SELECT attempt FROM import_jobs WHERE id = $jh")" "bad header: one attempt"
assert_contains "$(sql "SELECT last_error FROM import_jobs WHERE id = $jh")" "lacks column" "error explains the header"

# --- transient failure: retryable with backoff, then success --------------
sql "CREATE SEQUENCE test_fail_seq;
     CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN
       IF nextval('test_fail_seq') <= 8 THEN
         RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
       END IF;
       RETURN NULL;
     END \$\$;
     CREATE TRIGGER test_fail BEFORE INSERT ON color_master
       FOR EACH STATEMENT EXECUTE FUNCTION test_fail();" >/dev/null
printf 'name,code\nRetry1,#000001\nRetry2,#000002\n' > "$IT_TMP/r.csv"
run_ingot 0 submit colors "$IT_TMP/r.csv"; jr=$OUT
wait_until 60 '[ "$(job_state '$jr')" = retryable ] || [ "$(job_state '$jr')" = succeeded ]'
assert_eq "retryable" "$(job_state "$jr")" "transient failure makes the job retryable"
backoff=$(sql "SELECT round(extract(epoch FROM run_after - updated_at)::numeric, 1) FROM import_jobs WHERE id = $jr")
awk -v b="$backoff" 'BEGIN { exit !(b >= 1.4 && b <= 2.6) }' || fail "backoff after attempt 1 is 2 s +-25%, got $backoff"
wait_until 30 '[ "$(job_state '$jr')" = succeeded ]'
assert_eq "2|2|1" "$(sql "SELECT attempt, rows_inserted, jsonb_array_length(errors) FROM import_jobs WHERE id = $jr")" "second attempt succeeded; one error recorded"
assert_contains "$(sql "SELECT errors::text FROM import_jobs WHERE id = $jr")" "injected serialization failure" "the transient error is in the history"
assert_contains "$(cat "$IT_TMP/w1.log")" "attempt 1 failed (transient)" "retry logged"
stop_worker "$w1"; assert_eq 0 "$W_RC" "worker exits 0"

# --- SIGTERM while a batch is being retried: the worker stops at once -----
# (the runner's retries back off for about 16 s in all) and the job goes
# back to the queue without using up an attempt.
sql "ALTER SEQUENCE test_fail_seq RESTART WITH 1; SELECT setval('test_fail_seq', 1, false);
     CREATE OR REPLACE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN
       RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
     END \$\$;" >/dev/null
printf 'name,code\nStop1,#000003\n' > "$IT_TMP/s.csv"
run_ingot 0 submit colors "$IT_TMP/s.csv"; js=$OUT
start_worker w2 --no-http --threads 1; w2=$W_PID
wait_until 30 'grep -q "batch 1, attempt 2:" "$IT_TMP/w2.log"'
t0=$(date +%s.%N)
stop_worker "$w2"; assert_eq 0 "$W_RC" "worker stopped mid-retry exits 0"
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
awk -v t="$took" 'BEGIN { exit !(t < 5) }' || fail "SIGTERM waited ${took}s for the runner's retries"
assert_eq "queued|0" "$(sql "SELECT state, attempt FROM import_jobs WHERE id = $js")" "the job is released, its attempt not counted"

# --- a frozen worker does not hold its batch's row locks for ever ------------
# Stopped (SIGSTOP) inside a batch, a worker's session is ended by the
# server a lease after it went idle in its transaction
# (idle_in_transaction_session_timeout), so the worker that takes the job
# over is not blocked by its row locks.
sql "DROP TRIGGER test_fail ON color_master; DELETE FROM import_jobs WHERE state = 'queued'" >/dev/null
install_slow_trigger
set_sleep 1.5
gen_colors 300 Frz "$IT_TMP/frz.csv"
run_ingot 0 submit colors "$IT_TMP/frz.csv"; jz=$OUT
start_worker frz --no-http --threads 1 --batch-size 100; wf=$W_PID
# its batch is in the trigger's pg_sleep
# (in this test's database: tests running beside it sleep too)
wait_until 20 '[ -n "$(sql "SELECT pid FROM pg_stat_activity WHERE wait_event = '"'"'PgSleep'"'"' AND datname = current_database() LIMIT 1")" ]'
bpid=$(sql "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database() LIMIT 1")
kill -STOP "$wf"
# the statement ends (1.5 s), then the session idles in its transaction
wait_until 15 '[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE pid = '"$bpid"'")" = 0 ]'
kill -CONT "$wf"
set_sleep 0
wait_until 60 '[ "$(job_state '$jz')" = succeeded ]'
assert_eq "300" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'Frz%'")" "every row in once, after the frozen session was ended"
stop_worker "$wf"; assert_eq 0 "$W_RC" "the thawed worker exits 0"
