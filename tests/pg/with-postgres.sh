#!/bin/sh
# with-postgres.sh CMD [ARG…]: runs CMD with a PostgreSQL of its own (issue 13: the store
# suites on PostgreSQL). A temporary directory holds the cluster and its Unix socket;
# initdb and the server run as an unprivileged user (initdb refuses root: as root, the
# Debian package's "postgres" user), with fsync on as in production. CMD gets
# TRUNKLINE_TEST_PG, a libpq conninfo of a database it may use freely. The server is
# stopped and the directory removed when this script exits, whatever CMD did.
set -eu

bindir=""
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && bindir="$d"
done
if [ -z "$bindir" ]; then
    echo "with-postgres: no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
    exit 2
fi

as_user() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
    as_user() { runuser -u postgres -- "$@"; }
fi

dir=$(mktemp -d /tmp/tl-pg.XXXXXX)
chmod 0755 "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
cleanup() {
    rc=$?
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_user "$bindir/initdb" -D "$dir/data" --auth=trust --username=trunkline -E UTF8 \
    --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }

# a free TCP port number names the Unix socket (listen_addresses is empty: no TCP at all)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=on -c synchronous_commit=on -c max_connections=50" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

TRUNKLINE_TEST_PG="host=$dir port=$port user=trunkline dbname=postgres"
export TRUNKLINE_TEST_PG
"$@"
