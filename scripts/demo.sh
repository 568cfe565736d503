#!/usr/bin/env bash
# demo.sh - from a fresh machine to a working ingot: install what is
# missing, build, start the private PostgreSQL and Redis, apply the
# migrations, and show the result. The servers keep running afterwards
# (stop them with scripts/servers.sh stop); their settings are in .ingot/env.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/deps.sh
bash scripts/build.sh release
if [ -z "${DATABASE_URL:-}" ]; then
  eval "$(bash scripts/servers.sh start)"
fi
./build/ingot migrate up
./build/ingot migrate status
echo
echo "ingot is built (./build/ingot) and the private servers are running."
echo "Use them from your shell with:  source .ingot/env"
