# lib.sh - shared helpers for integration tests (sourced, not run).
#
# Each test gets its own fresh database on the private server (created from
# DATABASE_URL, dropped on exit), so tests can run in any order and in
# parallel. Assertions print what was expected and what came, then exit 1.
set -euo pipefail

: "${INGOT_BIN:?INGOT_BIN must point at the ingot binary (ctest sets it)}"
: "${DATABASE_URL:?DATABASE_URL must be set: eval \"\$(scripts/servers.sh start)\"}"

IT_NAME=$(basename "$0" .sh)
IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ingot-$IT_NAME.XXXXXX")
IT_DB="it_${IT_NAME#test_}_$$"
BASE_URL=$DATABASE_URL
# postgresql://user:pw@host:port/dbname[?params] -> same with another dbname
db_url() {
  local base=${BASE_URL%%\?*} query=""
  [ "$base" = "$BASE_URL" ] || query="?${BASE_URL#*\?}"
  echo "${base%/*}/$1$query"
}
export DATABASE_URL=$(db_url "$IT_DB")
ADMIN_URL=$(db_url ingot)

psql_admin() { psql "$ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql() { psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

it_cleanup() {
  local rc=$?
  psql_admin -c "DROP DATABASE IF EXISTS \"$IT_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$IT_TMP"
  if [ $rc -eq 0 ]; then echo "ok - $IT_NAME"; else echo "FAILED - $IT_NAME (exit $rc)"; fi
}
trap it_cleanup EXIT
psql_admin -c "CREATE DATABASE \"$IT_DB\"" >/dev/null

fail() { echo "FAIL: $*" >&2; exit 1; }

assert_eq() { # expected actual what
  [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

assert_contains() { # haystack needle what
  case "$1" in *"$2"*) ;; *) fail "$3: expected to contain '$2', got: $1" ;; esac
}

assert_not_contains() {
  case "$1" in *"$2"*) fail "$3: must not contain '$2', got: $1" ;; *) ;; esac
}

# comparable JSON WHAT : an import's --json summary without what differs
# between two runs that did the same work (timings; a failing row's detail
# shows its id and timestamps), on stdout; fails the test naming WHAT when
# JSON holds no summary.
comparable() {
  jq -S '{status, exit_code, counts, targets, failed_rows}
         | .failed_rows[].reasons[].message |= sub(": Failing row contains.*"; "")' "$1" \
    || fail "$2: no JSON summary: $(cat "$1")"
}

# run_ingot EXPECTED_RC args... ; output in $OUT (stdout) and $ERR (stderr)
run_ingot() {
  local want=$1; shift
  local rc=0
  "$INGOT_BIN" "$@" >"$IT_TMP/out" 2>"$IT_TMP/err" || rc=$?
  OUT=$(cat "$IT_TMP/out"); ERR=$(cat "$IT_TMP/err")
  if [ "$rc" != "$want" ]; then
    echo "--- stdout:" >&2; echo "$OUT" >&2; echo "--- stderr:" >&2; echo "$ERR" >&2
    fail "ingot $*: expected exit $want, got $rc"
  fi
}

# start_mute_server PORTFILE: a fake PostgreSQL on 127.0.0.1 that lets
# every client in (no password) and then never answers; writes its port
# to PORTFILE and prints its pid (kill it when done).
start_mute_server() {
  python3 -c 'import socket, struct, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16); print(s.getsockname()[1], flush=True)
def msg(t, body): return t + struct.pack("!I", len(body) + 4) + body
def serve(c):
    try:
        while True:
            n = struct.unpack("!I", c.recv(4, socket.MSG_WAITALL))[0]
            body = c.recv(n - 4, socket.MSG_WAITALL)
            if struct.unpack("!I", body[:4])[0] in (80877103, 80877104):
                c.sendall(b"N")  # no SSL, no GSS encryption
                continue
            break
        c.sendall(msg(b"R", struct.pack("!I", 0)) + msg(b"Z", b"I"))  # in; never answers
        while c.recv(4096):
            pass
    except Exception:
        pass
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()' > "$1" &
  local pid=$!
  for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.1; done
  [ -s "$1" ] || fail "the mute server did not start"
  echo "$pid"
}
