#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on loopback for the tests and prints its URL
# (`postgres://iea@127.0.0.1:PORT/postgres`); each test then creates a database of its
# own on it. Debian's `postgresql` package is installed if missing. The cluster lives in
# a temporary directory owned by the unprivileged `postgres` user (the server refuses to
# run as root) and is stopped by `tests/scripts/postgres.sh stop DIR`.
#
#   url=$(tests/scripts/postgres.sh start /tmp/iea-pg)
#   IEA_TEST_DATABASE_URL=$url cargo test -p iea-orchestrator
#   tests/scripts/postgres.sh stop /tmp/iea-pg
#
# For speed the cluster does not wait for the disk (fsync off): a crash would lose it,
# which tests never need. IEA_PG_DURABLE=1 keeps PostgreSQL's defaults (benchmarks).
set -euo pipefail

cmd=${1:-start}
dir=${2:-/tmp/iea-test-postgres}

bin_dir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && echo "$d"
}

run_as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    if [ -z "$(bin_dir)" ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends postgresql >&2
    fi
    bin=$(bin_dir)
    # Debian starts its own cluster on install; ours is separate, on its own port.
    if [ -f "$dir/postmaster.pid" ]; then
      run_as_postgres "$bin/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    run_as_postgres "$bin/initdb" -D "$dir" -U iea --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=300"
    if [ "${IEA_PG_DURABLE:-0}" != 1 ]; then
      options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    run_as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "$options" start >/dev/null
    echo "postgres://iea@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(bin_dir)
    run_as_postgres "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac
