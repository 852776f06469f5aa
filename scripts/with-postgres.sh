#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at a PostgreSQL server.
#
# With TEST_DATABASE_URL already set, that server is used. Without it, a
# throwaway PostgreSQL cluster is started on a free local port (Debian's
# postgresql package is installed first when missing; the server runs as the
# postgres user when this runs as root) and stopped and deleted on exit;
# WITH_POSTGRES_OPTIONS adds server options to it (`-c name=value ...`).
set -euo pipefail

started_dir=""
cleanup() {
  if [ -n "$started_dir" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$started_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$started_dir"
  fi
}
trap cleanup EXIT

as_postgres() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  PG_BIN="$(find_pg_bin)"
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "PostgreSQL not found: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    PG_BIN="$(find_pg_bin)"
  fi
  started_dir="$(mktemp -d /tmp/ag-pg.XXXXXX)"
  chmod 755 "$started_dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$started_dir"; fi
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  as_postgres "$PG_BIN/initdb" -D "$started_dir/data" -U postgres -A trust -E UTF8 >/dev/null
  as_postgres "$PG_BIN/pg_ctl" -D "$started_dir/data" -l "$started_dir/server.log" -w \
    -o "-p $port -k $started_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 ${WITH_POSTGRES_OPTIONS:-}" start >/dev/null
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "started PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $port"
fi

"$@"
