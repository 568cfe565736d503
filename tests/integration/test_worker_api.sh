#!/usr/bin/env bash
# test_worker_api.sh - the HTTP API with curl against a real worker, its
# own Redis and PostgreSQL: every route's success and error statuses, auth,
# limits, CSV and JSON bodies, the sync/background threshold, progress in
# Redis (values, TTL), Redis stopped mid-import and started again, and 503
# with the database unreachable.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
run_ingot 0 migrate up
export INGOT_PIPELINE_DIR=$(pipeline_dir)
export INGOT_LEASE_SECONDS=3 IMPORT_BACKGROUND_THRESHOLD=5 REDIS_PROGRESS_EXPIRY=600
export INGOT_API_TOKEN=test-token-$$
install_slow_trigger

RPORT=$(free_port)
start_redis() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    >"$IT_TMP/redis.log" 2>&1 &
  REDIS_PIDS+=("$!"); RPID=$!
  wait_until 10 'redis-cli -p $RPORT ping >/dev/null 2>&1'
}
start_redis
export REDIS_URL="redis://127.0.0.1:$RPORT/0"

# the token is required unless --no-http
INGOT_API_TOKEN= run_ingot 2 worker
assert_contains "$ERR" "INGOT_API_TOKEN is not set" "refuses to serve without a token"
INGOT_API_TOKEN=' Sp4ced' run_ingot 2 worker
assert_contains "$ERR" "INGOT_API_TOKEN starts or ends with a space" "a token no client can send is refused"
assert_not_contains "$ERR" "Sp4ced" "... unshown"
INGOT_API_TOKEN=$'Fr0mAFile\n' run_ingot 2 worker
assert_contains "$ERR" "INGOT_API_TOKEN (from environment): contains a newline" "a token with a newline is refused"
assert_not_contains "$ERR" "Fr0mAFile" "... unshown"
DATABASE_URL=$'host=127.0.0.1 password = Pw0rdX\n' run_ingot 2 worker --no-http
assert_not_contains "$ERR" "Pw0rdX" "a conninfo password with a newline is not shown"
# a queue older than this ingot is named, with what to run
run_ingot 0 migrate down 1
run_ingot 2 worker --no-http
assert_contains "$ERR" "migration 0006_import_jobs_attempt is not applied): run 'ingot migrate up' first" "an old queue refused"
run_ingot 0 migrate up
# a port outside 1..65535 is refused, not taken modulo 65536
run_ingot 2 worker --listen 127.0.0.1:83714
assert_contains "$ERR" "INGOT_HTTP_LISTEN=127.0.0.1:83714: the port must be a number from 1 to 65535" "port out of range"

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
start_worker api --threads 1 --batch-size 100 --listen "127.0.0.1:$PORT" --max-rows 5000 --max-body-bytes 200000
wpid=$W_PID
wait_until 20 'curl -s "$U/healthz" >/dev/null'
assert_not_contains "$(cat "$IT_TMP/api.log")" "$INGOT_API_TOKEN" "token never logged"

# http METHOD PATH [curl args...] -> $CODE and $BODY
http() {
  local m=$1 p=$2; shift 2
  CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' -X "$m" \
         -H "Authorization: Bearer $INGOT_API_TOKEN" "$@" "$U$p")
  BODY=$(cat "$IT_TMP/body")
}
expect() { # CODE what
  [ "$CODE" = "$1" ] || fail "$2: expected HTTP $1, got $CODE: $BODY"
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1" <<<"$BODY"; }

# --- health, auth, routing ------------------------------------------------
CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' "$U/healthz"); BODY=$(cat "$IT_TMP/body")
expect 200 "healthz needs no token"
assert_eq "ok|ok|ok" "$(jget '["status"]')|$(jget '["database"]')|$(jget '["redis"]')" "healthz body"
CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' "$U/api/imports/jobs"); BODY=$(cat "$IT_TMP/body")
expect 401 "no token"
assert_eq "unauthorized" "$(jget '["error"]["code"]')" "error body shape"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer nope" "$U/api/imports/jobs")
expect 401 "wrong token"
http GET /api/nothing; expect 404 "unknown route"
http GET /api/imports/999999/progress; expect 404 "unknown job progress"
http GET /api/imports/999999/results; expect 404 "unknown job results"
http POST /api/imports/999999/cancel; expect 404 "unknown job cancel"
http GET /api/imports/99999999999999999999/progress; expect 404 "a job id beyond 64 bits"
assert_not_contains "$BODY" "9223372036854775807" "the id is not clamped to another job's"
http DELETE /api/imports/jobs -D "$IT_TMP/hdr"; expect 405 "wrong method"
# The route takes GET (the job list) and POST (a pipeline named jobs).
assert_contains "$(tr -d '\r' < "$IT_TMP/hdr")" "Allow: GET, HEAD, POST" "405 names the methods in Allow"
assert_contains "$BODY" "use GET or POST" "405 says which methods"
http GET /api/imports/colors -D "$IT_TMP/hdr"; expect 405 "GET of an import route"
assert_contains "$(tr -d '\r' < "$IT_TMP/hdr")" "Allow: POST" "405 Allow on a POST route"

# --- uploads: errors --------------------------------------------------------
printf 'name,code\nA1,#000001\nA2,#000002\nA3,bad\n' > "$IT_TMP/a.csv"
http POST /api/imports/nope -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/a.csv"
expect 404 "unknown pipeline"; assert_eq "pipeline_not_found" "$(jget '["error"]["code"]')" "code"
http POST '/api/imports/..%2Fetc' -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/a.csv"
expect 404 "pipeline name outside [A-Za-z0-9_-]"
http POST /api/imports/colors -H 'Content-Type: text/plain' --data-binary @"$IT_TMP/a.csv"
expect 415 "unsupported Content-Type"
head -c 300000 /dev/zero | tr '\0' 'x' > "$IT_TMP/big.csv"
# The 413 comes before the body is read, and the connection is closed
# after it: without Expect a client still sending may see a reset instead
# (curl exit 55, now and then on a busy machine).
http POST /api/imports/colors -H 'Content-Type: text/csv' -H 'Expect: 100-continue' \
  --data-binary @"$IT_TMP/big.csv"
expect 413 "body over INGOT_MAX_BODY_BYTES"; assert_contains "$BODY" "200000" "limit named"
gen_colors 6000 m "$IT_TMP/m.csv"
# (one head: a second one in a pipe may close it early, and under pipefail
# the first one's SIGPIPE ended this script with 141 now and then)
head -n 5001 "$IT_TMP/m.csv" > "$IT_TMP/m2.csv"; printf 'x1,#000001\n' >> "$IT_TMP/m2.csv"
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/m2.csv"
expect 413 "rows over IMPORT_MAX_ROWS"; assert_contains "$BODY" "5001 rows" "row count named"; assert_contains "$BODY" "5000" "limit named"
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary ''
expect 422 "empty body"
http POST "/api/imports/colors?background=1" -H 'Content-Type: text/csv' --data-binary $'name,code\n'
expect 422 "a header without rows"; assert_contains "$BODY" "no data rows" "said so"
printf 'name,code\n' > "$IT_TMP/hdr.csv"
run_ingot 2 submit colors "$IT_TMP/hdr.csv"
assert_contains "$ERR" "hdr.csv has a header but no data rows" "submit refuses it too"
printf 'x,y\n1,2\n' > "$IT_TMP/bad.csv"
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/bad.csv"
expect 422 "columns do not fit the pipeline"; assert_contains "$BODY" "lacks column" "message"
http POST /api/imports/colors -H 'Content-Type: application/json' --data-binary '[{"name": "x",'
expect 400 "malformed JSON"
http POST /api/imports/colors -H 'Content-Type: application/json' --data-binary '{"name": "x"}'
expect 422 "JSON not an array"
http POST /api/imports/colors -H 'Content-Type: application/json' --data-binary '[{"name": "x", "code": {"a": 1}}]'
expect 422 "nested JSON"; assert_contains "$BODY" "nested" "message"
http POST '/api/imports/colors%00x' -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/a.csv"
expect 404 "a NUL in the path does not cut the pipeline name"
http POST /api/imports/colors -H 'Content-Type: text/csv; charset=windows-1252' --data-binary @"$IT_TMP/a.csv"
expect 415 "a charset the pipeline does not read"; assert_contains "$BODY" "charset=windows-1252 is not what pipeline colors reads (utf-8)" "charset named"
http POST /api/imports/colors -H 'Content-Type: application/json; charset="ISO-8859-1"' --data-binary '[]'
expect 415 "JSON in another charset than UTF-8"

# --- synchronous imports (below the threshold of 5 rows) -------------------
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/a.csv"
expect 200 "sync CSV import"
assert_eq "done|partially_succeeded|2|1" "$(jget '["status"]')|$(jget '["state"]')|$(jget '["counts"]["inserted"]')|$(jget '["counts"]["failed"]')" "sync results"
assert_eq "1|False" "$(jget '["failed_rows"].__len__()')|$(jget '["failed_rows_truncated"]')" "failed rows all there, not truncated"
assert_eq "3|pattern" "$(jget '["failed_rows"][0]["row"]')|$(jget '["failed_rows"][0]["reasons"][0]["code"]')" "failed row named"

# The server closing the worker's idle connections (a restart,
# pg_terminate_backend) costs no request a 503: the pool replaces them.
pids=$(sql "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'ingot%'")
[ -n "$pids" ] || fail "the worker holds no connection to terminate"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ($pids)" >/dev/null
wait_until 10 '[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE pid IN ($pids)")" = 0 ]'
http GET "/api/imports/jobs?limit=1"; expect 200 "jobs list after the server closed the pool's connections"
http GET "/api/imports/jobs?state=succeeded&limit=1"; expect 200 "and again"
http POST /api/imports/colors -H 'Content-Type: application/json; charset=utf-8' \
  --data-binary '[{"name": "J1", "code": "#00000A"}, {"code": null, "name": "J2"}, {"name": "J3", "extra": 3.5}]'
expect 200 "sync JSON import"
assert_eq "3|0" "$(jget '["counts"]["inserted"]')|$(jget '["counts"]["failed"]')" "JSON rows imported"
assert_eq "J1=#00000A,J2=,J3=" "$(sql "SELECT string_agg(color_name || '=' || coalesce(color_code, ''), ',' ORDER BY color_name) FROM color_master WHERE color_name LIKE 'J%'")" "JSON null -> NULL"
http POST /api/imports/colors -H 'Content-Type: application/json' --data-binary $'\xEF\xBB\xBF[{"name": "JB", "code": "#00000B"}]'
expect 200 "a JSON body with a UTF-8 BOM"
assert_eq "#00000B" "$(sql "SELECT color_code FROM color_master WHERE color_name = 'JB'")" "read past the BOM"

# Synchronous imports waiting on a row lock (four: as many as the pool
# holds) use a pool of their own: the other routes still answer at once.
psql "$DATABASE_URL" -qAtX -c "BEGIN" -c "SELECT 1 FROM color_master WHERE color_name = 'J1' FOR UPDATE" \
  -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null & locker=$!
wait_until 10 '[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event = '"'PgSleep'"' AND datname = current_database()")" = 1 ]'
printf 'name,code\nJ1,#00000C\n' > "$IT_TMP/j1.csv"
curls=()
for k in 1 2 3 4; do
  curl -s -o "$IT_TMP/lock$k" -H "Authorization: Bearer $INGOT_API_TOKEN" -H 'Content-Type: text/csv' \
    --data-binary @"$IT_TMP/j1.csv" "$U/api/imports/colors" & curls+=($!)
done
wait_until 10 '[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = '"'Lock'"' AND datname = current_database()")" = 4 ]'
t0=$(date +%s.%N)
http GET "/api/imports/jobs?limit=1"; expect 200 "jobs list while four imports wait on a lock"
t1=$(date +%s.%N)
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 2 else 1)" || fail "the jobs list waited $(echo "$t1 - $t0" | bc) s behind imports waiting on a lock"
wait "$locker"; for c in "${curls[@]}"; do wait "$c"; done
for k in 1 2 3 4; do assert_contains "$(cat "$IT_TMP/lock$k")" '"status": "done"' "import $k behind the lock done"; done

# A synchronous import whose rows stay locked past its retries is told the
# database is busy, not unavailable (worker "busy": statement timeout
# 300 ms; its eight attempts take about 20 s).
PB=$(free_port)
start_worker busy --threads 1 --listen "127.0.0.1:$PB" --statement-timeout 300
wait_until 20 'curl -s "http://127.0.0.1:$PB/healthz" >/dev/null'
psql "$DATABASE_URL" -qAtX -c "BEGIN" -c "SELECT 1 FROM color_master WHERE color_name = 'J1' FOR UPDATE" \
  -c "SELECT pg_sleep(40)" -c "COMMIT" >/dev/null 2>&1 & locker=$!
wait_until 10 '[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event = '"'PgSleep'"' AND datname = current_database()")" = 1 ]'
CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' -H "Authorization: Bearer $INGOT_API_TOKEN" \
  -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/j1.csv" "http://127.0.0.1:$PB/api/imports/colors"); BODY=$(cat "$IT_TMP/body")
expect 503 "a sync import behind a row lock"
assert_eq "database_busy" "$(jget '["error"]["code"]')" "busy, not unavailable"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()" >/dev/null
wait "$locker" || true
stop_worker "$W_PID"

# --- background imports -----------------------------------------------------
gen_colors 20 b "$IT_TMP/b.csv"; printf 'bbad,zz\n' >> "$IT_TMP/b.csv"
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/b.csv"
expect 202 "at the threshold: queued"
jb=$(jget '["job_id"]')
assert_eq "queued|/api/imports/$jb/progress" "$(jget '["state"]')|$(jget '["links"]["progress"]')" "202 body"
wait_until 30 'http GET /api/imports/'$jb'/progress; [ "$(jget "[\"state\"]")" = partially_succeeded ]'
assert_eq "21|21|20|1|100.0" "$(jget '["total"]')|$(jget '["processed"]')|$(jget '["inserted"]')|$(jget '["failed"]')|$(jget '["percent"]')" "progress of a finished job"
http GET "/api/imports/$jb/results?limit=10"
expect 200 "results"
assert_eq "partially_succeeded|21|pattern|['bbad', 'zz']" "$(jget '["job"]["state"]')|$(jget '["results"][0]["row"]')|$(jget '["results"][0]["code"]')|$(jget '["results"][0]["values"]')" "row outcomes with values"
http GET "/api/imports/$jb/results?limit=0"; expect 400 "bad limit"
http POST "/api/imports/colors?background=1" -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/a.csv"
expect 202 "?background=1 forces queueing"
jf=$(jget '["job_id"]')
wait_until 30 '[ "$(job_state '$jf')" = partially_succeeded ]'
http GET "/api/imports/jobs?state=partially_succeeded&limit=1"
expect 200 "jobs list"
assert_eq "1|$jf" "$(jget '["jobs"].__len__()')|$(jget '["jobs"][0]["job_id"]')" "newest first, limited"
http GET "/api/imports/jobs?pipeline=colors"; expect 200 "by pipeline"
assert_eq "2" "$(jget '["jobs"].__len__()')" "two colors jobs"
http GET "/api/imports/jobs?state=bogus"; expect 400 "unknown state"
http GET "/api/imports/jobs?pipeline=no/such"; expect 400 "not a pipeline name"

# --- cancel: queued 200, running 202, finished 409 --------------------------
jq=$(sql "INSERT INTO import_jobs (pipeline, source, source_bytes, run_after) VALUES ('colors', convert_to(E'name,code\nQ,#000001\n', 'UTF8'), 20, now() + interval '1 hour') RETURNING id")
http POST "/api/imports/$jq/cancel"; expect 200 "cancel queued"
assert_eq "cancelled" "$(jget '["result"]')" "cancelled at once"
http POST "/api/imports/$jb/cancel"; expect 409 "cancel finished"
gen_colors 3000 r "$IT_TMP/r.csv"
set_sleep 0.6 # 15 batches (of 200 rows: new keys double --batch-size 100) of 0.6 s: still running when the cancel lands
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/r.csv"
expect 202 "slow job queued"; jr=$(jget '["job_id"]')
wait_until 30 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$jr'")" -ge 200 ]'

# --- progress in Redis while running: values and TTL ------------------------
h=$(redis-cli -p "$RPORT" HGET "ingot:progress:$jr" state)
assert_eq "running" "$h" "progress hash in Redis"
ttl=$(redis-cli -p "$RPORT" TTL "ingot:progress:$jr")
[ "$ttl" -gt 500 ] && [ "$ttl" -le 600 ] || fail "TTL is REDIS_PROGRESS_EXPIRY (got $ttl)"
assert_eq "3000" "$(redis-cli -p "$RPORT" HGET "ingot:progress:$jr" total)" "total in Redis"
http GET "/api/imports/$jr/progress"
assert_eq "running|redis" "$(jget '["state"]')|$(jget '["source"]')" "API reads Redis"
http POST "/api/imports/$jr/cancel"; expect 202 "cancel running"
assert_eq "cancel_requested" "$(jget '["result"]')" "cancel requested"
wait_until 20 '[ "$(job_state '$jr')" = cancelled ]'

# --- Redis stopped mid-import: the import finishes, progress still served ---
gen_colors 3000 d "$IT_TMP/d.csv"
set_sleep 0.4 # 15 batches of 200 rows: still running while Redis goes away
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/d.csv"
expect 202 "job queued"; jd=$(jget '["job_id"]')
wait_until 30 '[ "$(sql "SELECT checkpoint_row FROM import_jobs WHERE id = '$jd'")" -ge 200 ]'
redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
wait "$RPID" 2>/dev/null || true
wait_until 10 'http GET /api/imports/'$jd'/progress; [ "$(jget "[\"source\"]")" = memory ]'
assert_eq "running" "$(jget '["state"]')" "progress readable from memory while Redis is down"
set_sleep 0
wait_until 30 '[ "$(job_state '$jd')" = succeeded ]'
http GET "/api/imports/$jd/progress"; expect 200 "progress after Redis died"
assert_eq "succeeded|3000" "$(jget '["state"]')|$(jget '["processed"]')" "final progress"
CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' "$U/healthz"); BODY=$(cat "$IT_TMP/body")
assert_eq "200|fallback" "$CODE|$(jget '["redis"]')" "healthz reports the fallback"
start_redis
wait_until 15 'curl -s "$U/healthz" | grep -q "\"redis\": \"ok\""'
wait_until 10 '[ "$(redis-cli -p $RPORT HGET ingot:progress:'$jd' state)" = succeeded ]'
http GET /metrics
assert_contains "$BODY" "ingot_progress_redis 1" "store back on Redis"
assert_contains "$BODY" "ingot_progress_reconnects_total 1" "reconnect counted"

# --- metrics ------------------------------------------------------------------
http GET /metrics; expect 200 "metrics"
assert_contains "$BODY" 'ingot_imports_total{mode="background",outcome="succeeded"} 1' "background outcomes"
assert_contains "$BODY" 'ingot_imports_total{mode="sync",outcome="partially_succeeded"} 1' "sync outcomes"
assert_contains "$BODY" 'ingot_queue_jobs{state="cancelled"} 2' "queue depth by state"
assert_contains "$BODY" 'ingot_worker_threads 1' "threads"
assert_contains "$BODY" 'ingot_progress_fallbacks_total 1' "fallback counted"
assert_contains "$BODY" 'ingot_import_duration_seconds_count{mode="sync"} 7' "durations (three imports above, four behind a lock)"
# One address holding idle connections (a slow or hostile client) gets
# at most 32 of the 64: /healthz still answers another.
python3 - "$PORT" >"$IT_TMP/hog.out" 2>&1 <<'PY' &
import socket, sys, time
held = []
for _ in range(70):  # more than all 64
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
    except OSError:
        pass  # refused over the limit
    held.append(s)
print("holding", flush=True)
time.sleep(8)
PY
hog=$!
wait_until 10 'grep -q holding "$IT_TMP/hog.out"'
CODE=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "$U/healthz")
assert_eq 200 "$CODE" "healthz answers while another address holds idle connections"
kill "$hog" 2>/dev/null || true; wait "$hog" 2>/dev/null || true
# Every pooled connection busy (requests waiting on a lock held
# elsewhere): /healthz does not wait for one, it checks on a connection
# of its own and says 200 within its bound.
psql "$DATABASE_URL" -qAtX -c "BEGIN" -c "LOCK TABLE import_jobs IN ACCESS EXCLUSIVE MODE" \
  -c "SELECT 'locked'" -c "SELECT pg_sleep(30)" >"$IT_TMP/lock.out" 2>&1 &
locker=$!
wait_until 10 'grep -q locked "$IT_TMP/lock.out"'
busy=()
for _ in 1 2 3 4 5; do
  curl -s -m 40 -o /dev/null -H "Authorization: Bearer $INGOT_API_TOKEN" "$U/api/imports/jobs" &
  busy+=("$!")
done
wait_until 10 "[ \"\$(sql \"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%import_jobs%' AND datname = current_database()\")\" -ge 4 ]"
t0=$(date +%s.%N)
CODE=$(curl -s -m 10 -o "$IT_TMP/body" -w "%{http_code}" "$U/healthz" || true); BODY=$(cat "$IT_TMP/body")
t1=$(date +%s.%N)
assert_eq "200|ok" "$CODE|$(jget '["database"]')" "healthz with every pooled connection busy"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 4 else 1)" || fail "healthz took $(echo "$t1 - $t0" | bc) s with the pool busy"
kill "$locker" 2>/dev/null || true; wait "$locker" 2>/dev/null || true
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid() AND datname = current_database()" >/dev/null
for b in "${busy[@]}"; do wait "$b" 2>/dev/null || true; done
# An idle worker notices Redis is gone at the next healthz, not at the
# next progress update.
redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
wait "$RPID" 2>/dev/null || true
CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' "$U/healthz"); BODY=$(cat "$IT_TMP/body")
assert_eq "200|fallback" "$CODE|$(jget '["redis"]')" "healthz asks Redis itself"
# (after the metrics, which count imports)
# A pipeline may be named jobs: GET lists jobs, POST imports into it.
sed 's/^description:.*/description: colours, under the name jobs/' "$INGOT_PIPELINE_DIR/colors.yaml" > "$INGOT_PIPELINE_DIR/jobs.yaml"
printf 'name,code\nPjA,#00AA01\n' > "$IT_TMP/jobs.csv"
http POST /api/imports/jobs -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/jobs.csv"
expect 200 "POST /api/imports/jobs imports into the pipeline jobs"
assert_eq "1" "$(sql "SELECT count(*) FROM color_master WHERE color_name = 'PjA'")" "its row landed"
stop_worker "$wpid"; assert_eq 0 "$W_RC" "worker exits 0"

# --- SIGTERM during a synchronous import: it stops at a batch boundary and
# the client gets its answer, with counts that match the table ------------
P3=$(free_port)
unset REDIS_URL
IMPORT_BACKGROUND_THRESHOLD=100000 start_worker sync --threads 1 --batch-size 100 \
  --insert-first 0 --listen "127.0.0.1:$P3"
wsync=$W_PID
wait_until 20 'curl -s "http://127.0.0.1:$P3/healthz" >/dev/null'
gen_colors 2000 t "$IT_TMP/t.csv"
set_sleep 0.1 # 20 batches of 100: two seconds
curl -s -o "$IT_TMP/sync.body" -w '%{http_code}' -H "Authorization: Bearer $INGOT_API_TOKEN" \
  -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/t.csv" \
  "http://127.0.0.1:$P3/api/imports/colors" >"$IT_TMP/sync.code" &
cpid=$!
wait_until 20 '[ "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE '"'t%'"'")" -gt 0 ]'
stop_worker "$wsync"; assert_eq 0 "$W_RC" "worker exits 0 after answering"
wait "$cpid" || fail "curl got no answer"
set_sleep 0
BODY=$(cat "$IT_TMP/sync.body")
assert_eq 200 "$(cat "$IT_TMP/sync.code")" "the synchronous import is answered"
assert_eq canceled "$(jget '["status"]')" "stopped at a batch boundary"
in_table=$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 't%'")
assert_eq "$in_table" "$(jget '["counts"]["inserted"]')" "the answer counts what is in the table"
[ "$in_table" -lt 2000 ] || fail "the import finished before SIGTERM"

# --- 503: database unreachable --------------------------------------------------
P2=$(free_port)
DATABASE_URL="postgresql://nobody@127.0.0.1:$(free_port)/none?connect_timeout=1" \
  start_worker down --threads 1 --listen "127.0.0.1:$P2"
U="http://127.0.0.1:$P2"
wait_until 20 'curl -s "$U/healthz" >/dev/null'
CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' "$U/healthz"); BODY=$(cat "$IT_TMP/body")
expect 503 "healthz with the database down"
assert_not_contains "$BODY" "nobody" "healthz does not tell an unauthenticated caller the role"
assert_not_contains "$BODY" "127.0.0.1" "nor the host"
http POST /api/imports/colors -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/a.csv"
expect 503 "sync import with the database down"
http GET /api/imports/jobs; expect 503 "jobs with the database down"
assert_eq "database_unavailable" "$(jget '["error"]["code"]')" "503 error code"


# A database that accepts connections and never answers (a frozen host):
# /healthz still says 503 within its 3 s, not after libpq's 10 s.
HP=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64); held = []
while True:
    c, _ = s.accept(); held.append(c)' "$HP" &
WORKER_PIDS+=("$!")
P3=$(free_port)
DATABASE_URL="postgresql://nobody@127.0.0.1:$HP/none" start_worker frozen --threads 1 --listen "127.0.0.1:$P3"
wait_until 30 'curl -s -m 20 "http://127.0.0.1:$P3/healthz" >/dev/null'
t0=$(date +%s.%N)
CODE=$(curl -s -m 20 -o "$IT_TMP/body" -w '%{http_code}' "http://127.0.0.1:$P3/healthz")
t1=$(date +%s.%N)
assert_eq 503 "$CODE" "healthz with a database that never answers"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 5 else 1)" || fail "healthz took $(echo "$t1 - $t0" | bc) s, over its 3 s"
