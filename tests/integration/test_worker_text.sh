#!/usr/bin/env bash
# test_worker_text.sh - bytes that are not text in JSON documents: a failed
# row holding a NUL byte in a queued job (its values go to the jsonb column
# import_results.source_values, which cannot hold \u0000), a failed row
# holding invalid UTF-8, and error messages that quote a request's bytes
# that are not UTF-8 (jansson refuses such a string: the client used to get
# no answer at all). Each must be answered, with such bytes as U+FFFD, and
# the job must keep its good rows.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
run_ingot 0 migrate up
export INGOT_PIPELINE_DIR=$(pipeline_dir) INGOT_API_TOKEN=test-token-$$
# colors.yaml in other dialects, for JSON rows
for v in 'semi:  delimiter: ";"' "squote:  quote: \"'\"" 'latin:  encoding: latin-1' \
         'nohdr:  header: false'; do
  { echo "source:"; echo "${v#*:}"; cat tests/data/run/colors.yaml; } \
    > "$INGOT_PIPELINE_DIR/colors_${v%%:*}.yaml"
done
sed -i 's/      color_name:$/      color_name:\n        position: 1/; /^        from: name$/d; s/^        from: code$/        position: 2/' \
  "$INGOT_PIPELINE_DIR/colors_nohdr.yaml"

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
start_worker text --threads 1 --listen "127.0.0.1:$PORT" \
  --max-body-bytes 100000 --max-rows 5000
wpid=$W_PID
wait_until 30 'curl -s "$U/healthz" >/dev/null'

# http METHOD PATH [curl args...] -> $CODE and $BODY
http() {
  local m=$1 p=$2; shift 2
  CODE=$(curl -s -o "$IT_TMP/body" -w '%{http_code}' -X "$m" \
         -H "Authorization: Bearer $INGOT_API_TOKEN" "$@" "$U$p")
  BODY=$(cat "$IT_TMP/body")
}
FFFD=$(printf '\357\277\275')

# A queued job whose second row holds a NUL byte: that row fails as
# CSV_NUL, the others land, and its values are kept with U+FFFD.
printf 'name,code\nNulA,#000001\nNu\000lB,#000002\nNulC,#000003\n' > "$IT_TMP/nul.csv"
http POST "/api/imports/colors?background=1" -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/nul.csv"
assert_eq 202 "$CODE" "queued: $BODY"
job=$(jq -r .job_id <<<"$BODY")
wait_until 30 '[ "$(job_state '$job')" = partially_succeeded ] || [ "$(job_state '$job')" = failed ]'
assert_eq partially_succeeded "$(job_state "$job")" "the job keeps its good rows ($(sql "SELECT last_error FROM import_jobs WHERE id = $job"))"
assert_eq "2" "$(sql "SELECT count(*) FROM color_master WHERE color_name IN ('NulA', 'NulC')")" "the rows around the NUL landed"
http GET "/api/imports/$job/results"
assert_eq 200 "$CODE" "results"
assert_eq "CSV_NUL" "$(jq -r '.results[0].code' <<<"$BODY")" "the NUL row's code"
assert_eq "Nu${FFFD}lB" "$(jq -r '.results[0].values[0]' <<<"$BODY")" "the NUL kept as U+FFFD"

# A synchronous import whose failed row holds invalid UTF-8 (the default
# encoding is UTF-8): the row is reported with its values, as U+FFFD.
printf 'name,code\nBadA,#000004\nBad\377B,#000005\n' > "$IT_TMP/bad.csv"
http POST "/api/imports/colors" -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/bad.csv"
assert_eq 200 "$CODE" "sync import with an invalid byte: $BODY"
assert_eq "CSV_UTF8" "$(jq -r '.failed_rows[0].reasons[0].code' <<<"$BODY")" "the invalid row's code"
assert_eq "Bad${FFFD}B" "$(jq -r '.failed_rows[0].values[0]' <<<"$BODY")" "the invalid byte as U+FFFD"

# Error messages that quote bytes of the request that are not UTF-8.
http GET "/api/imports/jobs?state=x%FF"
assert_eq 400 "$CODE" "a state filter that is not UTF-8"
assert_contains "$BODY" "query parameter 'state' is not UTF-8" "named, not quoted"
http GET "/nope%FF"
assert_eq 404 "$CODE" "a path that is not UTF-8"
assert_eq not_found "$(jq -r .error.code <<<"$BODY")" "its error code"
assert_contains "$BODY" "no route GET /nope${FFFD}" "the path quoted with U+FFFD"

# Query values that are not UTF-8 are 400 (they used to reach the
# database: 500), as is an unknown ?background= value (it used to run the
# import synchronously); a JSON scalar is the wrong shape (422), not
# malformed JSON (400).
http GET "/api/imports/jobs?pipeline=%FF"
assert_eq 400 "$CODE" "a pipeline filter that is not UTF-8: $BODY"
assert_contains "$BODY" "query parameter 'pipeline' is not UTF-8" "the parameter named"
http POST "/api/imports/colors?background=1&name=%FF%FE.csv" -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/bad.csv"
assert_eq 400 "$CODE" "a job name that is not UTF-8: $BODY"
http POST "/api/imports/colors?background=yes" -H 'Content-Type: text/csv' --data-binary @"$IT_TMP/bad.csv"
assert_eq 400 "$CODE" "background=yes: $BODY"
assert_contains "$BODY" "background must be 1, true, 0 or false, not 'yes'" "the value named"
http POST "/api/imports/colors" -H 'Content-Type: application/json' --data-binary 'null'
assert_eq 422 "$CODE" "a JSON null body: $BODY"

# JSON rows are written as CSV in the pipeline's own dialect; a pipeline
# that maps by position or reads another encoding cannot take them (the
# header row was imported as data, or the text read as Latin-1).
for d in semi squote; do
  http POST "/api/imports/colors_$d" -H 'Content-Type: application/json' \
    --data-binary "[{\"name\": \"Dia;le'ct-$d\", \"code\": \"#0000AA\"}]"
  assert_eq 200 "$CODE" "JSON rows into colors_$d: $BODY"
  assert_eq "1" "$(sql "SELECT count(*) FROM color_master WHERE color_name = 'Dia;le''ct-$d'")" "the row landed as sent ($d)"
done
for d in latin nohdr; do
  http POST "/api/imports/colors_$d" -H 'Content-Type: application/json' \
    --data-binary '[{"name": "Café", "code": "#0000AB"}]'
  assert_eq 422 "$CODE" "JSON rows into colors_$d: $BODY"
  assert_contains "$BODY" "JSON rows cannot be read by it; send CSV" "why ($d)"
done
assert_eq "0" "$(sql "SELECT count(*) FROM color_master WHERE color_name IN ('Café', 'CafÃ©', 'name')")" "nothing misread landed"

# JSON bodies whose shape would cost far more memory than their bytes are
# refused before they are built: rows counted off the bytes (6000 empty
# objects), rows x distinct keys bounded by the body limit (each of 400
# rows with a key of its own would be 160000 CSV fields), nesting found
# off the bytes with the row and key named.
python3 -c 'print("[" + ",".join(["{}"] * 6000) + "]")' > "$IT_TMP/flood.json"
http POST "/api/imports/colors" -H 'Content-Type: application/json' --data-binary @"$IT_TMP/flood.json"
assert_eq 413 "$CODE" "6000 empty objects: $BODY"
assert_contains "$BODY" "the body has 6000 rows, more than IMPORT_MAX_ROWS=5000" "rows counted before parsing"
python3 -c 'import json; print(json.dumps([{"name": "W%d" % i, "code": "#000000", "k%d" % i: 1} for i in range(400)]))' > "$IT_TMP/wide.json"
http POST "/api/imports/colors" -H 'Content-Type: application/json' --data-binary @"$IT_TMP/wide.json"
assert_eq 422 "$CODE" "a key of its own in every row: $BODY"
assert_contains "$BODY" "400 rows with 402 distinct keys between them would be 160800 CSV fields" "rows x keys bounded"
http POST "/api/imports/colors" -H 'Content-Type: application/json' --data-binary '[{"name": "N1", "code": "#000000"}, {"name": "N2", "code": {"a": [1]}}]'
assert_eq 422 "$CODE" "a nested value: $BODY"
assert_contains "$BODY" 'row 2, key \"code\": nested objects and arrays are not supported' "the nested value named"

assert_not_contains "$(cat "$IT_TMP/text.log")" "Nu" "no row value in the log"
stop_worker "$wpid"; assert_eq 0 "$W_RC" "worker exits 0"
