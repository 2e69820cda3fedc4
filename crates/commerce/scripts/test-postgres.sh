#!/usr/bin/env bash
# Runs the commerce end-to-end suite against a throwaway Postgres server: initdb in a temp
# dir, listening on 127.0.0.1 only, stopped and removed on exit. Every test gets a fresh
# database (COMMERCE_TEST_POSTGRES_URL, see tests/api/helpers.rs).
#
# Uses the Debian `postgresql` package; installs it with apt-get when missing and running as
# root. If Postgres cannot be had at all, says so loudly and exits 0 (the SQLite run of the
# same suite is part of the workspace tests).
set -euo pipefail
cd "$(dirname "$0")/../../.."

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

PGBIN="$(find_bin || true)"
if [ -z "$PGBIN" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing postgresql (apt-get)"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || true
  PGBIN="$(find_bin || true)"
fi
if [ -z "$PGBIN" ]; then
  echo "SKIPPED: no Postgres server binaries here; the commerce suite ran on SQLite only"
  exit 0
fi

DIR="$(mktemp -d)"
PORT=$((55000 + RANDOM % 1000))
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; fi
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$DIR/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth=trust >"$DIR/initdb.log" 2>&1
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null
echo "Postgres $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"

COMMERCE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT" \
  cargo test -p commerce --all-features --test api
