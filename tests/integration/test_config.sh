#!/usr/bin/env bash
# test_config.sh - settings errors name the setting and exit 2; flags
# override the environment; passwords never reach the output; CLI usage
# errors exit 2.
source "$(dirname "$0")/lib.sh"

for bad in abc 0 -3 99999999999 12abc; do
  IMPORT_BATCH_SIZE=$bad run_ingot 2 migrate status
  assert_contains "$ERR" "IMPORT_BATCH_SIZE=$bad (from environment)" "bad IMPORT_BATCH_SIZE=$bad named"
done
IMPORT_MAX_ROWS=-1 run_ingot 2 migrate status
assert_contains "$ERR" "IMPORT_MAX_ROWS" "bad IMPORT_MAX_ROWS named"
run_ingot 2 migrate status --batch-size nope
assert_contains "$ERR" "IMPORT_BATCH_SIZE=nope (from --batch-size)" "bad flag named"
# a flag overrides a bad environment value only when valid itself
IMPORT_TIMEOUT_SECONDS=5 run_ingot 0 migrate status --timeout 7

# .env file is read from the working directory; the environment wins
mkdir -p "$IT_TMP/wd"
printf 'IMPORT_BATCH_SIZE=zero\n' > "$IT_TMP/wd/.env"
(cd "$IT_TMP/wd" && run_ingot 2 migrate status --migrations-dir "$OLDPWD/migrations"; assert_contains "$ERR" ".env:1" ".env error names file and line")
(cd "$IT_TMP/wd" && IMPORT_BATCH_SIZE=10 run_ingot 0 migrate status --migrations-dir "$OLDPWD/migrations")
run_ingot 2 migrate status --env-file "$IT_TMP/missing.env"
assert_contains "$ERR" "missing.env: cannot open" "explicit --env-file must exist"

# Database down / wrong password: clear error, exit 2, and no password shown.
pw_url=$(echo "$DATABASE_URL" | sed -E 's#//([^:]+):[^@]*@#//\1:WrongHunter2@#')
DATABASE_URL=$pw_url run_ingot 2 migrate status
assert_contains "$ERR" "cannot connect to PostgreSQL" "bad password reported"
assert_not_contains "$ERR" "WrongHunter2" "password not echoed"
# A database that does not exist is said at once, not retried for 30 s.
t0=$(date +%s)
DATABASE_URL=$(db_url "no_such_db_$$") run_ingot 2 migrate status
assert_contains "$ERR" "no_such_db_$$\" does not exist" "the missing database is named"
[ $(( $(date +%s) - t0 )) -lt 5 ] || fail "a missing database was retried ($(( $(date +%s) - t0 )) s)"
# So is a connection setting libpq refuses, or SSL the server lacks, by
# the import's pool as well (which retries a server that is down).
sep='?'; case $DATABASE_URL in *'?'*) sep='&' ;; esac
printf 'name,code\nRed,#FF0000\n' > "$IT_TMP/one.csv"
for opt in sslmode=bogus connect_timeout=soon sslmode=require; do
    t0=$(date +%s)
    DATABASE_URL="$DATABASE_URL$sep$opt" run_ingot 2 run tests/data/run/colors.yaml "$IT_TMP/one.csv"
    [ $(( $(date +%s) - t0 )) -lt 5 ] || fail "$opt was retried ($(( $(date +%s) - t0 )) s)"
done
assert_contains "$ERR" "SSL" "the SSL requirement is named"
DATABASE_URL="$DATABASE_URL${sep}sslmode=bogus" run_ingot 2 migrate status
assert_contains "$ERR" 'invalid sslmode value: "bogus"' "the refused setting is named"
real_pw=$(echo "$BASE_URL" | sed -E 's#.*//[^:]+:([^@]*)@.*#\1#')
DATABASE_URL=$(echo "$DATABASE_URL" | sed -E 's#:[0-9]+/#:1/#') run_ingot 2 migrate status
assert_not_contains "$ERR" "$real_pw" "password not echoed on connection failure"

# CLI skeleton
run_ingot 0 --version
assert_contains "$OUT" "ingot " "--version"
run_ingot 0 --help
assert_contains "$OUT" "migrate" "--help lists migrate"
assert_contains "$OUT" "IMPORT_BATCH_SIZE" "--help lists settings"
run_ingot 0 migrate --help
assert_contains "$OUT" "usage: ingot migrate" "command --help"
run_ingot 2 frobnicate
assert_contains "$ERR" "unknown command 'frobnicate'" "unknown command"
run_ingot 2 --frob
assert_contains "$ERR" "unknown option '--frob'" "unknown global option"
run_ingot 2 migrate status --no-such-flag
assert_contains "$ERR" "unknown option '--no-such-flag'" "unknown command option"
run_ingot 2

# A malformed URL is a setting error, quickly, and its pieces are not echoed.
DATABASE_URL='postgresql://ingot:s3cr%ZZet@127.0.0.1:1/x' run_ingot 2 migrate status
assert_contains "$ERR" "not a valid PostgreSQL URL" "malformed URL named"
assert_not_contains "$ERR" "s3cr" "no piece of the password in the message"

# A server refusing the start-up options (an unknown setting) will refuse
# them again: said at once, not retried for 30 s.
t0=$(date +%s.%N)
DATABASE_URL="$DATABASE_URL?options=-c%20nosuchparam%3D1" run_ingot 2 migrate status
t1=$(date +%s.%N)
assert_contains "$ERR" 'unrecognized configuration parameter "nosuchparam"' "the server's refusal named"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 5 else 1)" || fail "a refused option was retried for $(echo "$t1 - $t0" | bc) s"
