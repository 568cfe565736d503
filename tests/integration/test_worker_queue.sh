#!/usr/bin/env bash
# test_worker_queue.sh - `ingot worker` against the real job queue: many
# jobs over two worker processes run exactly once; kill -9 mid-job, then
# the job is rescued and resumed from its checkpoint (no row applied
# twice, table identical to a clean run); a worker whose lease is stolen
# stops writing; cancel of queued and running jobs; timeout; graceful
# shutdown releases the job without burning an attempt.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
run_ingot 0 migrate up
export INGOT_PIPELINE_DIR=$(pipeline_dir)
export INGOT_LEASE_SECONDS=3
unset REDIS_URL  # progress in memory: Redis keys would clash across test dbs
install_slow_trigger

# --- 20 small jobs, two worker processes, each job exactly once ----------
for i in $(seq 1 20); do
  printf 'name,code\nq%02da,#000001\nq%02db,#000002\n' "$i" "$i" > "$IT_TMP/q$i.csv"
  run_ingot 0 submit colors "$IT_TMP/q$i.csv"
done
start_worker w1 --no-http --threads 2; w1=$W_PID
start_worker w2 --no-http --threads 2; w2=$W_PID
wait_until 60 '[ "$(sql "SELECT count(*) FROM import_jobs WHERE state = '"'succeeded'"'")" = 20 ]'
assert_eq "0" "$(sql "SELECT count(*) FROM import_jobs WHERE attempt <> 1")" "every job ran in one attempt"
assert_eq "40|40|0" "$(sql "SELECT sum(rows_inserted), sum(rows_processed), sum(rows_unchanged) FROM import_jobs")" "each row inserted once, never re-applied"
assert_eq "40" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'q%'")" "target has all 40 rows"
claims=$(( $(grep -c 'claimed by' "$IT_TMP/w1.log" || true) + $(grep -c 'claimed by' "$IT_TMP/w2.log" || true) ))
assert_eq "20" "$claims" "20 claims in total over both workers"
stop_worker "$w1"; assert_eq 0 "$W_RC" "w1 exits 0 on SIGTERM"
stop_worker "$w2"; assert_eq 0 "$W_RC" "w2 exits 0 on SIGTERM"

# --- kill -9 mid-job: rescued, resumed from the checkpoint ---------------
gen_colors 3000 k "$IT_TMP/k.csv"
set_sleep 0.1 # per batch: 15 batches of 200 rows (new keys double --batch-size 100)
run_ingot 0 submit colors "$IT_TMP/k.csv"; jk=$OUT
start_worker w3 --no-http --threads 1 --batch-size 100; w3=$W_PID
wait_until 60 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$jk'")" -ge 500 ]'
kill -9 "$w3"; wait "$w3" 2>/dev/null || true
cp_kill=$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = $jk")
assert_eq "running" "$(job_state "$jk")" "killed worker's job is still 'running'"
[ "$cp_kill" -lt 3000 ] || fail "the kill came too late (checkpoint $cp_kill)"
set_sleep 0
start_worker w4 --no-http --threads 1 --batch-size 100; w4=$W_PID
wait_until 60 '[ "$(job_state '$jk')" = succeeded ]'
assert_eq "2|3000|3000|3000|0" "$(sql "SELECT attempt, rows_processed, checkpoint_row, rows_inserted, rows_unchanged FROM import_jobs WHERE id = $jk")" "attempt 2 resumed: every row counted once, none re-applied"
assert_contains "$(cat "$IT_TMP/w4.log")" "resuming after row $cp_kill" "second attempt started after the checkpoint"
assert_contains "$(cat "$IT_TMP/w4.log")" "rescued 1 job" "rescuer returned the job"
assert_contains "$(sql "SELECT errors::text FROM import_jobs WHERE id = $jk")" "expired (worker died?)" "rescue recorded in the errors history"
md5_k() { sql "SELECT md5(string_agg(color_name || '=' || coalesce(color_code, ''), ',' ORDER BY color_name)) || ':' || count(*) FROM color_master WHERE color_name LIKE 'k%' AND deleted_at IS NULL"; }
after_resume=$(md5_k)
sql "DELETE FROM color_master WHERE color_name LIKE 'k%'"
run_ingot 0 run colors "$IT_TMP/k.csv" --no-reject-file
assert_eq "$(md5_k)" "$after_resume" "table after kill+resume equals a clean run"
stop_worker "$w4"; assert_eq 0 "$W_RC" "w4 exits 0"

# --- a lease that ran out while the worker lived (the database away) ------
# is not rescued by the worker's own housekeeper: its heartbeat renews it.
gen_colors 3000 e "$IT_TMP/e.csv"
set_sleep 0.2
run_ingot 0 submit colors "$IT_TMP/e.csv"; je=$OUT
start_worker w4b --no-http --threads 1 --batch-size 100; w4b=$W_PID
wait_until 60 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$je'")" -ge 200 ]'
# kept expired for 4 s (heartbeats renew it every second, the housekeeper
# looks every 1.5 s)
for _ in $(seq 40); do
  sql "UPDATE import_jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $je AND state = 'running'" >/dev/null
  sleep 0.1
done
set_sleep 0.05
wait_until 60 '[ "$(job_state '$je')" = succeeded ]'
assert_eq "1|3000" "$(sql "SELECT attempt, rows_processed FROM import_jobs WHERE id = $je")" "the live job kept its attempt"
assert_not_contains "$(cat "$IT_TMP/w4b.log")" "rescued" "the worker did not rescue its own live job"
set_sleep 0
stop_worker "$w4b"; assert_eq 0 "$W_RC" "w4b exits 0"

# --- a stolen lease: the old worker stops writing -------------------------
gen_colors 3000 s "$IT_TMP/s.csv"
set_sleep 0.2
run_ingot 0 submit colors "$IT_TMP/s.csv"; js=$OUT
start_worker w5 --no-http --threads 1 --batch-size 100; w5=$W_PID
wait_until 60 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$js'")" -ge 200 ]'
sql "UPDATE import_jobs SET worker_id = 'thief/1', lease_expires_at = now() + interval '1 hour' WHERE id = $js" >/dev/null
wait_until 20 'grep -q "lease lost" "$IT_TMP/w5.log"'
n1=$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 's%'")
cp1=$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = $js")
sleep 1.5
assert_eq "$n1" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 's%'")" "no rows written after the lease was lost"
assert_eq "running|thief/1|$cp1" "$(sql "SELECT state, worker_id, checkpoint_row FROM import_jobs WHERE id = $js")" "job left to its new owner, untouched"
[ "$n1" -eq "$cp1" ] || fail "rows in the table ($n1) match the checkpoint ($cp1): the in-flight batch rolled back"
# hand it back and let it finish, so the database is quiet again
sql "UPDATE import_jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $js" >/dev/null
set_sleep 0
wait_until 30 '[ "$(job_state '$js')" = succeeded ]'
assert_eq "3000|3000" "$(sql "SELECT rows_processed, (SELECT count(*) FROM color_master WHERE color_name LIKE 's%') FROM import_jobs WHERE id = $js")" "rescued job finished the rest"

# --- cancel: queued (at once) and running (at a batch boundary) ----------
stop_worker "$w5"; assert_eq 0 "$W_RC" "w5 exits 0"
run_ingot 0 submit colors "$IT_TMP/q1.csv"; jq=$OUT
run_ingot 0 cancel "$jq" --json
assert_contains "$OUT" '"result": "cancelled"' "queued job cancelled at once"
assert_eq "cancelled" "$(job_state "$jq")" "queued job state"
gen_colors 3000 c "$IT_TMP/c.csv"
set_sleep 0.2
run_ingot 0 submit colors "$IT_TMP/c.csv"; jc=$OUT
start_worker w6 --no-http --threads 1 --batch-size 100; w6=$W_PID
wait_until 60 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$jc'")" -ge 200 ]'
run_ingot 0 cancel "$jc" --json
assert_contains "$OUT" '"result": "cancel_requested"' "running job: cancel requested"
wait_until 20 '[ "$(job_state '$jc')" = cancelled ]'
p=$(sql "SELECT rows_processed FROM import_jobs WHERE id = $jc")
[ "$p" -gt 0 ] && [ "$p" -lt 3000 ] || fail "cancelled mid-way (processed $p)"
assert_eq "$p" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'c%'")" "committed batches stay, nothing more"
run_ingot 2 cancel "$jc"
assert_contains "$ERR" "already finished" "cancel of a finished job refused"
run_ingot 2 cancel 999999
stop_worker "$w6"; assert_eq 0 "$W_RC" "w6 exits 0"

# --- cancel of a job whose batch the database never answers (no statement
# timeout): after 5 s of silence the import drops its connections, and the
# job's last_error says so rather than "at a batch boundary"
gen_colors 3000 d "$IT_TMP/d.csv"
set_sleep 0.2
run_ingot 0 submit colors "$IT_TMP/d.csv"; jd=$OUT
start_worker w6b --no-http --threads 1 --batch-size 100 --statement-timeout 0; w6b=$W_PID
wait_until 60 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$jd'")" -ge 200 ]'
set_sleep 600
stuck="SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep' AND query_start < now() - interval '1 second'"
wait_until 30 '[ "$(sql "$stuck")" -ge 1 ]'
run_ingot 0 cancel "$jd" --json
assert_contains "$OUT" '"result": "cancel_requested"' "stalled job: cancel requested"
wait_until 30 '[ "$(job_state '$jd')" = cancelled ]'
assert_contains "$(sql "SELECT last_error FROM import_jobs WHERE id = $jd")" "dropped its connections" "the drop is the recorded reason"
set_sleep 0
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'" >/dev/null
p=$(sql "SELECT rows_processed FROM import_jobs WHERE id = $jd")
assert_eq "$p" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'd%'")" "stalled job: what is counted is what committed"
stop_worker "$w6b"; assert_eq 0 "$W_RC" "w6b exits 0"

# --- timeout: IMPORT_TIMEOUT_SECONDS=1 fails a slow job, no retry ---------
gen_colors 3000 t "$IT_TMP/t.csv"
set_sleep 0.4
run_ingot 0 submit colors "$IT_TMP/t.csv"; jt=$OUT
start_worker w7 --no-http --threads 1 --batch-size 100 --timeout 1; w7=$W_PID
wait_until 30 '[ "$(job_state '$jt')" = failed ]'
assert_contains "$(sql "SELECT last_error FROM import_jobs WHERE id = $jt")" "timed out" "timeout recorded"
assert_eq "1" "$(sql "SELECT attempt FROM import_jobs WHERE id = $jt")" "no retry after a timeout"
stop_worker "$w7"; assert_eq 0 "$W_RC" "w7 exits 0"

# --- graceful shutdown: SIGTERM mid-job releases it, attempt not burned --
gen_colors 3000 g "$IT_TMP/g.csv"
set_sleep 0.2
run_ingot 0 submit colors "$IT_TMP/g.csv"; jg=$OUT
start_worker w8 --no-http --threads 1 --batch-size 100; w8=$W_PID
wait_until 60 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$jg'")" -ge 200 ]'
stop_worker "$w8"
assert_eq 0 "$W_RC" "worker exits 0 after SIGTERM mid-job"
assert_eq "queued|0" "$(sql "SELECT state, attempt FROM import_jobs WHERE id = $jg")" "job back to queued, attempt not burned"
cpg=$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = $jg")
[ "$cpg" -gt 0 ] || fail "checkpoint kept"
assert_contains "$(cat "$IT_TMP/w8.log")" "released to the queue" "release logged"
set_sleep 0
start_worker w9 --no-http --threads 1 --batch-size 100; w9=$W_PID
wait_until 30 '[ "$(job_state '$jg')" = succeeded ]'
assert_eq "1|3000|3000" "$(sql "SELECT attempt, rows_processed, rows_inserted FROM import_jobs WHERE id = $jg")" "resumed in attempt 1, no row twice"
assert_contains "$(cat "$IT_TMP/w9.log")" "resuming after row $cpg" "resumed after the checkpoint"
stop_worker "$w9"; assert_eq 0 "$W_RC" "w9 exits 0"

# A second SIGTERM ends the worker at once, without waiting for the
# batch in flight (here 10 s long) to reach its boundary.
gen_colors 300 h "$IT_TMP/h.csv"
set_sleep 10
run_ingot 0 submit colors "$IT_TMP/h.csv"; jh=$OUT
start_worker w10 --no-http --threads 1 --batch-size 100; w10=$W_PID
wait_until 30 '[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event = '"'PgSleep'"' AND datname = current_database()")" -ge 1 ]'
kill -TERM "$w10"
wait_until 10 'grep -q "again to quit at once" "$IT_TMP/w10.log"'
t0=$(date +%s.%N)
W_RC=0; kill -TERM "$w10"; wait "$w10" || W_RC=$?
t1=$(date +%s.%N)
assert_eq 143 "$W_RC" "the second SIGTERM's default action"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 3 else 1)" || fail "the second SIGTERM took $(echo "$t1 - $t0" | bc) s"
set_sleep 0
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()" >/dev/null

# Progress read from the job row is as of the row's last write, not of the
# question: a queued job (or one whose worker died) does not look alive.
run_ingot 0 submit colors "$IT_TMP/q1.csv"; jp=$OUT
REDIS_URL= run_ingot 0 progress "$jp" --json; p1=$OUT
sleep 1.2
REDIS_URL= run_ingot 0 progress "$jp" --json; p2=$OUT
assert_eq "$(jq -r .updated_at <<<"$p1")" "$(jq -r .updated_at <<<"$p2")" "updated_at is the job row's, not the time of asking"
assert_eq "queued|0|null" "$(jq -r '"\(.state)|\(.rows_per_sec)|\(.eta_seconds)"' <<<"$p2")" "a queued job has no rate and no ETA"
