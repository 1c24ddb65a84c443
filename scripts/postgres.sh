#!/usr/bin/env bash
# One way to run a local PostgreSQL 15: for `make run`, the tests and the benchmarks.
#
#   scripts/postgres.sh start|stop|status|psql DATA_DIR PORT [psql args...]
#
# start   Creates the cluster in DATA_DIR on first use (UTF8, trust auth, superuser `postgres`),
#         listening on 127.0.0.1:PORT only with its unix socket in DATA_DIR. postgresql.conf
#         includes the repository's postgresql-tuning.conf when there is one. Memory is scaled to
#         this machine (shared_buffers ~25% of RAM, never above the tuning file's 2GB) unless
#         PG_EXTRA_OPTS sets it; PG_EXTRA_OPTS (`-c name=value ...`) comes last, so it wins.
#         Waits until the server accepts connections, then creates the database
#         $PGDATABASE_NAME (default challenge_db) if it is missing. Running it twice is fine.
# stop    Fast shutdown (clients are disconnected), waits for it.
# status  Exit status 0 when the server runs.
# psql    psql against the database, with the remaining arguments.
#
# initdb and postgres refuse to run as root: as root, DATA_DIR belongs to the `postgres` OS user
# and the server runs through `runuser -u postgres --`. The log is DATA_DIR/server.log.
set -euo pipefail

usage="usage: postgres.sh start|stop|status|psql DATA_DIR PORT [psql args...]"
action=${1:?$usage}
data=${2:?$usage}
port=${3:?$usage}
shift 3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
database=${PGDATABASE_NAME:-challenge_db}
bindir=/usr/lib/postgresql/15/bin

if [ ! -x "$bindir/postgres" ]; then
  echo "PostgreSQL 15 is not installed in $bindir (run scripts/install-deps.sh)" >&2
  exit 1
fi

# Runs a server binary as the cluster's owner.
as_owner() {
  if [ "$EUID" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The postmaster recorded in postmaster.pid is alive. A zombie is not: after a crash (SIGKILL)
# the postmaster may stay a zombie when PID 1 does not reap orphans, and pg_ctl (kill -0)
# would still take it for a running server.
is_running() {
  [ -f "$data/postmaster.pid" ] || return 1
  local pid state
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  if [ -r "/proc/$pid/stat" ]; then
    state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
    [ "$state" != "Z" ] && [ "$state" != "X" ]
  else
    kill -0 "$pid" 2>/dev/null
  fi
}

# shellcheck source=lib-fds.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-fds.sh"

admin_psql() {
  psql -X -q -h 127.0.0.1 -p "$port" -U postgres "$@"
}

show_log_tail() {
  echo "--- the end of $data/server.log:" >&2
  tail -n 30 "$data/server.log" >&2 2>/dev/null || echo "(no log)" >&2
}

# Memory options for this machine, unless PG_EXTRA_OPTS already chooses them.
memory_options() {
  local total_kb opts=""
  total_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
  [ "${total_kb:-0}" -gt 0 ] || return 0
  local extra=${PG_EXTRA_OPTS:-}
  # A server given a whole configuration file (-c config_file=…, as docker-compose starts it)
  # takes its memory from that file.
  [[ $extra != *config_file=* ]] || return 0
  if [[ $extra != *shared_buffers* ]]; then
    local mb=$((total_kb / 4 / 1024))
    [ "$mb" -le 2048 ] || mb=2048
    [ "$mb" -ge 32 ] || mb=32
    opts+=" -c shared_buffers=${mb}MB"
  fi
  if [[ $extra != *effective_cache_size* ]]; then
    local mb=$((total_kb * 3 / 4 / 1024))
    [ "$mb" -le 6144 ] || mb=6144
    opts+=" -c effective_cache_size=${mb}MB"
  fi
  echo "$opts"
}

init_cluster() {
  mkdir -p "$data"
  if [ "$EUID" -eq 0 ]; then chown postgres:postgres "$data"; fi
  chmod 700 "$data"
  local output
  if ! output=$(as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 2>&1); then
    echo "initdb failed in $data:" >&2
    echo "$output" >&2
    exit 1
  fi
  {
    echo
    echo "# --- added by scripts/postgres.sh"
    if [ -f "$root/postgresql-tuning.conf" ]; then
      echo "include '$root/postgresql-tuning.conf'"
    fi
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$data'"
    echo "logging_collector = off"
  } >>"$data/postgresql.conf"
}

start() {
  [ -f "$data/PG_VERSION" ] || init_cluster
  if is_running; then
    echo "PostgreSQL already running ($data)"
  else
    # A crash leaves postmaster.pid and the socket's lock file behind; the server would refuse
    # to start while the PID in them is a zombie, so remove them (it is not running: checked
    # just above; the socket directory is DATA_DIR, used by this cluster alone).
    rm -f "$data/postmaster.pid" "$data"/.s.PGSQL.*.lock
    local options
    options="-p $port$(memory_options) ${PG_EXTRA_OPTS:-}"
    if ! without_inherited_fds as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "$options" start >/dev/null; then
      echo "PostgreSQL did not start on 127.0.0.1:$port" >&2
      show_log_tail
      exit 1
    fi
  fi
  local deadline=$((SECONDS + 30))
  until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "PostgreSQL does not accept connections on 127.0.0.1:$port" >&2
      show_log_tail
      exit 1
    fi
    sleep 0.1
  done
  local exists
  # Through stdin: psql interpolates :'name' (quoted) and :"name" there, not in -c.
  exists=$(admin_psql -d postgres -At -v ON_ERROR_STOP=1 -v name="$database" \
    <<<"SELECT count(*) FROM pg_database WHERE datname = :'name'")
  if [ "$exists" = "0" ]; then
    admin_psql -d postgres -v ON_ERROR_STOP=1 -v name="$database" <<<'CREATE DATABASE :"name"' >/dev/null
  fi
  echo "PostgreSQL ready on 127.0.0.1:$port, database $database ($data)"
}

case "$action" in
start) start ;;
stop)
  if is_running; then as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null; fi
  ;;
status) is_running ;;
psql) exec psql -X -h 127.0.0.1 -p "$port" -U postgres -d "$database" "$@" ;;
*)
  echo "$usage" >&2
  exit 2
  ;;
esac
