#!/usr/bin/env bash
# deps.sh - install what ingot needs to build, test and run, with apt.
#
# Idempotent: packages already present are left alone and apt is not even
# called when nothing is missing. Works on a machine where 'apt-get update'
# has never run (it runs it first when the package lists are empty, and
# again once if an install fails on stale lists). Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  liblua5.4-dev lua5.4 lua-busted
  libpq-dev libhiredis-dev libyaml-dev libcsv-dev libcmocka-dev
  libmicrohttpd-dev libjansson-dev libxxhash-dev
  postgresql postgresql-contrib redis-server
  valgrind curl ca-certificates procps iproute2 util-linux
  python3 time bc
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 2; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the postgresql package from creating and starting a system cluster we
# never use (ingot runs its own private one, scripts/servers.sh).
if [ ! -e /etc/postgresql-common/createcluster.conf ] && [ -n "$(printf '%s\n' "${missing[@]}" | grep -x postgresql || true)" ]; then
  $SUDO mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
echo "deps: installing ${missing[*]}"
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "deps: install failed; refreshing package lists and retrying" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "deps: done"
