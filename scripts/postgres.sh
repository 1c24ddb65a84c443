#!/usr/bin/env bash
# A local PostgreSQL 15 for `make run`, the tests and the benchmarks.
#
#   scripts/postgres.sh start|stop|status|psql DATA_DIR PORT [psql args...]
#
# start: creates the cluster on first use (trust auth, listening on 127.0.0.1:PORT only, socket
# in DATA_DIR), includes the repo's postgresql-tuning.conf, appends $PG_EXTRA_OPTS to the server
# options (to size memory for this machine or a test), waits until it accepts connections and
# creates the database $PGDATABASE_NAME (default challenge_db). Running it twice is fine.
# PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
set -euo pipefail

action=${1:?usage: postgres.sh start|stop|status|psql DATA_DIR PORT}
data=${2:?data directory required}
port=${3:?port required}
shift 3 || true
root=$(cd "$(dirname "$0")/.." && pwd)
database=${PGDATABASE_NAME:-challenge_db}

bindir=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)
[ -n "$bindir" ] || { echo "PostgreSQL 15 is not installed (scripts/install-deps.sh)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

case "$action" in
start)
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$data"; fi
    chmod 700 "$data"
    as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    {
      echo "# added by scripts/postgres.sh"
      if [ -f "$root/postgresql-tuning.conf" ]; then echo "include '$root/postgresql-tuning.conf'"; fi
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = '$data'"
      echo "logging_collector = off"
    } >> "$data/postgresql.conf"
  fi
  if running; then
    echo "PostgreSQL already running on 127.0.0.1:$port ($data)"
  else
    if [ "$(id -u)" -eq 0 ]; then chmod o+rx "$root" 2>/dev/null || true; fi
    # shellcheck disable=SC2086
    if ! as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-p $port ${PG_EXTRA_OPTS:-}" start >/dev/null; then
      echo "PostgreSQL did not start; the end of $data/server.log:" >&2
      tail -n 20 "$data/server.log" >&2 || true
      exit 1
    fi
  fi
  for _ in $(seq 1 100); do
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.1
  done
  if ! psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc \
      "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
    psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE \"$database\""
  fi
  echo "PostgreSQL ready on 127.0.0.1:$port, database $database ($data)"
  ;;
stop)
  if running; then as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
  ;;
status)
  running
  ;;
psql)
  exec psql -X -h 127.0.0.1 -p "$port" -U postgres -d "$database" "$@"
  ;;
*)
  echo "usage: postgres.sh start|stop|status|psql DATA_DIR PORT" >&2
  exit 2
  ;;
esac
