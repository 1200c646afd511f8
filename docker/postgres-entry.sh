#!/bin/sh
# The `postgres` service of docker-compose.postgres.yml: Debian's PostgreSQL server (in the
# iea-connect image, docker/build-images.sh) run as the unprivileged `postgres` user.
#
# On first start (no cluster in the volume yet) it initialises one in $PGDATA:
#   1. `initdb` into a temporary directory of the volume;
#   2. a server on that directory with no TCP listener (unix socket in /tmp only) creates
#      the role IEA_POSTGRES_USER (LOGIN, not superuser) with IEA_POSTGRES_PASSWORD and
#      the database IEA_POSTGRES_DB it owns;
#   3. pg_hba.conf: the `postgres` superuser by peer on the unix socket (for
#      `compose exec postgres psql`), IEA_POSTGRES_USER with its password (SCRAM) from the
#      compose network only (`samenet`), nothing else;
#   4. the directory renamed to $PGDATA: a start interrupted before this point starts
#      over rather than leaving a half-made cluster.
# Then (every start) the server itself, listening on every address of the container (the
# compose network; no port is published on the host), its unix socket in /tmp.
#
# The password is set once, at initialisation: changing IEA_POSTGRES_PASSWORD later does
# not change it (`ALTER ROLE … PASSWORD` does, or `down -v` starts over).
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${IEA_POSTGRES_USER:=iea}"
: "${IEA_POSTGRES_DB:=iea}"
: "${IEA_POSTGRES_PASSWORD:?IEA_POSTGRES_PASSWORD must be set}"
SOCKETS=/tmp

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || {
    echo "postgres-entry: no PostgreSQL server in this image (/usr/lib/postgresql/*/bin)" >&2
    exit 1
}
if [ "$(id -u)" = 0 ]; then
    echo "postgres-entry: run this service as the postgres user, not root" >&2
    exit 1
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "postgres-entry: first start, initialising a cluster in $PGDATA"
    tmp=$PGDATA.init
    rm -rf "$tmp"
    "$bin/initdb" -D "$tmp" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    "$bin/pg_ctl" -D "$tmp" -w -l "$tmp/init.log" \
        -o "-c listen_addresses='' -c unix_socket_directories=$SOCKETS" start >/dev/null
    # psql variables, quoted by psql itself (:'pw', :"user"): any password is taken as is.
    "$bin/psql" -h "$SOCKETS" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 \
        -v user="$IEA_POSTGRES_USER" -v db="$IEA_POSTGRES_DB" -v pw="$IEA_POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user";
SQL
    "$bin/pg_ctl" -D "$tmp" -w -m fast stop >/dev/null
    rm -f "$tmp/init.log"
    cat >"$tmp/pg_hba.conf" <<EOF
# Written by docker/postgres-entry.sh at initialisation.
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all       postgres       peer
host    "$IEA_POSTGRES_DB"  "$IEA_POSTGRES_USER"  samenet  scram-sha-256
EOF
    mv "$tmp" "$PGDATA"
    echo "postgres-entry: cluster ready (role $IEA_POSTGRES_USER, database $IEA_POSTGRES_DB)"
fi

unset IEA_POSTGRES_PASSWORD
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$SOCKETS"
