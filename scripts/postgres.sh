#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and benchmarks, never a service of the machine:
#
#   scripts/postgres.sh start DIR   makes a cluster in DIR/data, listening on a Unix socket
#                                   in DIR only (no TCP), with two roles and a database:
#                                   `sandbox_owner` (owns the schema, runs migrations) and
#                                   `sandbox_app` (what a server connects as: no ownership,
#                                   so it can neither disable a trigger nor truncate), and
#                                   prints the owner's and the server's connection strings
#   scripts/postgres.sh database DIR NAME
#                                   makes one more database NAME in the cluster in DIR, set
#                                   up as `sandbox` is, and prints its two connection strings
#                                   (the tests make one per domain)
#   scripts/postgres.sh stop DIR    stops it and removes DIR
#   scripts/postgres.sh install     installs PostgreSQL 15 when it is missing (`./dev test`
#                                   does, before the tests that start servers in parallel)
#
# Debian's PostgreSQL 15 (`/usr/lib/postgresql/15/bin`) is installed with apt when missing.
# initdb and postgres refuse to run as root: as root they run as the `postgres` user.
set -euo pipefail

BIN=${SANDBOX_PG_BIN:-/usr/lib/postgresql/15/bin}

usage() {
    echo "usage: scripts/postgres.sh start DIR | database DIR NAME | stop DIR | install" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
cmd=$1
if [[ $cmd == database ]]; then
    [[ $# -eq 3 && $3 =~ ^[a-z_][a-z0-9_]*$ ]] || usage
    dir=$(realpath -m "$2")
    name=$3
elif [[ $cmd != install ]]; then
    [[ $# -eq 2 ]] || usage
    dir=$(realpath -m "$2")
fi

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_installed() {
    if [[ -x "$BIN/initdb" ]]; then
        return
    fi
    echo "postgres.sh: installing PostgreSQL 15 with apt" >&2
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >&2 ||
        { "${sudo[@]}" apt-get update -q >&2 &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >&2; }
}

psql() { as_owner /usr/bin/env PGHOST="$dir" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres "$@"; }

# A database owned by `sandbox_owner`, its schema's tables granted to `sandbox_app` row by
# row only (no TRUNCATE, no REFERENCES, no TRIGGER); the roles are made once per cluster.
make_database() {
    local db=$1
    psql -d postgres <<SQL
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sandbox_owner') THEN CREATE ROLE sandbox_owner LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sandbox_app') THEN CREATE ROLE sandbox_app LOGIN; END IF;
END \$\$;
CREATE DATABASE $db OWNER sandbox_owner;
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE $db TO sandbox_app;
SQL
    psql -d "$db" <<'SQL'
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO sandbox_owner;
GRANT USAGE ON SCHEMA public TO sandbox_app;
ALTER DEFAULT PRIVILEGES FOR ROLE sandbox_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sandbox_app;
ALTER DEFAULT PRIVILEGES FOR ROLE sandbox_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO sandbox_app;
SQL
    echo "owner=host=$dir user=sandbox_owner dbname=$db"
    echo "app=host=$dir user=sandbox_app dbname=$db"
}

case "$cmd" in
    install)
        ensure_installed
        ;;
    start)
        ensure_installed
        if [[ -e "$dir/data/postmaster.pid" ]]; then
            echo "postgres.sh: a cluster is running in $dir already" >&2
            exit 1
        fi
        # Trust authentication, on a socket no one else can reach: only the cluster's user
        # (and root) may enter DIR.
        mkdir -p "$dir"
        chmod 700 "$dir"
        if [[ $(id -u) -eq 0 ]]; then
            chown postgres: "$dir"
        fi
        as_owner "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
        as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=on -c max_connections=200" \
            start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
        make_database sandbox
        ;;
    database)
        [[ -e "$dir/data/postmaster.pid" ]] || { echo "postgres.sh: no cluster runs in $dir" >&2; exit 1; }
        make_database "$name"
        ;;
    stop)
        if [[ -e "$dir/data/postmaster.pid" ]]; then
            as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
        fi
        rm -rf "$dir"
        ;;
    *)
        usage
        ;;
esac
