#!/usr/bin/env bash
# servers.sh - a private, throwaway PostgreSQL cluster and Redis server.
#
#   scripts/servers.sh start   start both (idempotent), print the exports
#   scripts/servers.sh env     print the exports of the running servers
#   scripts/servers.sh stop    stop both and delete their data
#   scripts/servers.sh status
#
# PostgreSQL: initdb into .ingot/pg (git-ignored), run as the 'postgres'
# user when invoked as root (PostgreSQL refuses to run as root), listening
# on a unix socket in that directory and on a free loopback port. A role
# 'ingot' with a random password and CREATEDB owns a database 'ingot'.
# Redis: loopback only, a free port, no persistence (no RDB, no AOF).
#
# Use the printed values with:  eval "$(scripts/servers.sh start)"
# A user with their own servers sets DATABASE_URL / REDIS_URL instead.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${INGOT_STATE_DIR:-$ROOT/.ingot}
ENVFILE=$STATE/env

log() { echo "servers: $*" >&2; }

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { log "PostgreSQL server binaries not found: run scripts/deps.sh"; exit 2; }
  echo "$d"
}

# Run a command as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p i
  for i in $(seq 1 50); do
    p=$(( 20000 + (RANDOM * 7 + i) % 30000 ))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  log "no free loopback port found"; exit 2
}

pg_running() { [ -f "$STATE/pg/data/postmaster.pid" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$STATE/pg/data" status >/dev/null 2>&1; }
redis_running() { [ -f "$STATE/redis/redis.pid" ] && kill -0 "$(cat "$STATE/redis/redis.pid" 2>/dev/null)" 2>/dev/null; }

start_pg() {
  local bin port pw
  bin=$(pg_bindir)
  if pg_running; then return 0; fi
  rm -rf "$STATE/pg"
  mkdir -p "$STATE/pg/data" "$STATE/pg/sock"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$STATE/pg"
    # postgres must be able to reach the state directory.
    if ! runuser -u postgres -- test -w "$STATE/pg/data"; then
      log "the postgres user cannot write $STATE/pg (is a parent directory private?); set INGOT_STATE_DIR"
      exit 2
    fi
  fi
  pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
  echo "$pw" > "$STATE/pg/pw"
  chmod 600 "$STATE/pg/pw"
  [ "$(id -u)" -eq 0 ] && chown postgres "$STATE/pg/pw"
  as_pg "$bin/initdb" -D "$STATE/pg/data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$STATE/pg/initdb.log" 2>&1 \
    || { log "initdb failed:"; cat "$STATE/pg/initdb.log" >&2; exit 2; }
  cat >> "$STATE/pg/data/postgresql.conf" <<CONF
# ingot private test cluster: throwaway, so durability is traded for speed.
unix_socket_directories = '$STATE/pg/sock'
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
CONF
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_pg "$bin/pg_ctl" -D "$STATE/pg/data" -o "-p $port" -w -t 60 \
        -l "$STATE/pg/server.log" start >/dev/null 2>&1; then
      break
    fi
    log "PostgreSQL did not start on port $port (attempt $attempt)"
    port=""
  done
  [ -n "$port" ] || { tail -n 20 "$STATE/pg/server.log" >&2; exit 2; }
  echo "$port" > "$STATE/pg/port"
  as_pg "$bin/psql" -h "$STATE/pg/sock" -p "$port" -U postgres -d postgres -qAt \
      -v ON_ERROR_STOP=1 -v pw="$pw" >/dev/null <<'SQL'
CREATE ROLE ingot LOGIN CREATEDB PASSWORD :'pw';
CREATE DATABASE ingot OWNER ingot;
SQL
}

start_redis() {
  local port
  if redis_running; then return 0; fi
  command -v redis-server >/dev/null || { log "redis-server not found: run scripts/deps.sh"; exit 2; }
  rm -rf "$STATE/redis"
  mkdir -p "$STATE/redis"
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --dir "$STATE/redis" --pidfile "$STATE/redis/redis.pid" \
        --logfile "$STATE/redis/redis.log" >/dev/null 2>&1; then
      for _ in $(seq 1 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
      done
      if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
    fi
    log "Redis did not start on port $port (attempt $attempt)"
    port=""
  done
  [ -n "$port" ] || exit 2
  echo "$port" > "$STATE/redis/port"
}

write_env() {
  local pgport rport pw
  pgport=$(cat "$STATE/pg/port")
  rport=$(cat "$STATE/redis/port")
  pw=$(cat "$STATE/pg/pw")
  umask 077
  cat > "$ENVFILE" <<ENV
export DATABASE_URL='postgresql://ingot:$pw@127.0.0.1:$pgport/ingot'
export REDIS_URL='redis://127.0.0.1:$rport/0'
export INGOT_PG_SOCKET='$STATE/pg/sock'
export INGOT_PG_PORT='$pgport'
export INGOT_PG_BIN='$(pg_bindir)'
export INGOT_REDIS_PORT='$rport'
ENV
}

cmd=${1:-}
case "$cmd" in
  start)
    mkdir -p "$STATE"
    start_pg
    start_redis
    write_env
    log "PostgreSQL on 127.0.0.1:$(cat "$STATE/pg/port") (socket $STATE/pg/sock), Redis on 127.0.0.1:$(cat "$STATE/redis/port")"
    cat "$ENVFILE"
    ;;
  env)
    [ -f "$ENVFILE" ] && pg_running && redis_running || { log "not running: scripts/servers.sh start"; exit 2; }
    cat "$ENVFILE"
    ;;
  status)
    pg_running && log "PostgreSQL running" || log "PostgreSQL stopped"
    redis_running && log "Redis running" || log "Redis stopped"
    ;;
  stop)
    if [ -d "$STATE/pg/data" ]; then
      as_pg "$(pg_bindir)/pg_ctl" -D "$STATE/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if redis_running; then
      kill "$(cat "$STATE/redis/redis.pid" 2>/dev/null)" 2>/dev/null || true
      for _ in $(seq 1 50); do redis_running || break; sleep 0.1; done
    fi
    rm -rf "$STATE/pg" "$STATE/redis" "$ENVFILE"
    log "stopped and cleaned up"
    ;;
  *)
    echo "usage: scripts/servers.sh start|env|status|stop" >&2
    exit 2
    ;;
esac
