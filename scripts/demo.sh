#!/usr/bin/env bash
# demo.sh - from a fresh machine to a real import: install what is missing,
# build, start the private PostgreSQL and Redis, apply the migrations, check
# the shipped items pipeline against the live schema, and import the example
# data (examples/items.csv) through it, twice: the second run finds every
# row unchanged. The servers keep running afterwards (stop them with
# scripts/servers.sh stop); their settings are in .ingot/env.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/deps.sh
bash scripts/build.sh release
if [ -z "${DATABASE_URL:-}" ]; then
  # A failed start must stop here: eval of a failed substitution succeeds.
  server_env=$(bash scripts/servers.sh start) || { echo "$0: the private servers did not start" >&2; exit 1; }
  eval "$server_env"
fi
./build/ingot migrate up
./build/ingot check items
echo "== first import"
./build/ingot run items examples/items.csv
echo "== the same file again"
./build/ingot run items examples/items.csv
echo
psql "$DATABASE_URL" -X -c "SELECT i.name AS item, c.color_name AS colour, s.size_name AS size, v.sku, v.price, v.stock
  FROM item_variant v JOIN item_master i ON i.id = v.item_id
  JOIN color_master c ON c.id = v.color_id JOIN size_master s ON s.id = v.size_id
  ORDER BY v.sku LIMIT 8"
echo "ingot is built (./build/ingot) and the private servers are running."
echo "Use them from your shell with:  source .ingot/env"
