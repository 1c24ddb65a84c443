#!/usr/bin/env bash
# One way to run a local Redis: for `make run` and the tests.
#
#   scripts/redis.sh start|stop|status DIR PORT
#
# start   Starts redis-server on 127.0.0.1:PORT only, daemonized, with its pid file, log and
#         append-only file in DIR (fsynced every second: deduplication's ids and committing marks
#         survive a restart; without them a repeat after the restart would be applied again).
#         Waits until it answers PING. Running it twice is fine.
# stop    SIGTERM to the pid in DIR/redis.pid (Redis shuts down on it, whatever its password),
#         then waits for the process to go.
# status  Exit status 0 when the server answers PING.
set -euo pipefail

usage="usage: redis.sh start|stop|status DIR PORT"
action=${1:?$usage}
dir=${2:?$usage}
port=${3:?$usage}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is not installed (run scripts/install-deps.sh)" >&2
  exit 1
fi

# shellcheck source=lib-fds.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-fds.sh"

answers() {
  [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]
}

pid_alive() {
  local pid
  pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

case "$action" in
  start)
    if answers; then exit 0; fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    rm -f "$dir/redis.pid"
    without_inherited_fds redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --pidfile "$dir/redis.pid" \
      --dir "$dir" --logfile "$dir/redis.log" --save "" --appendonly yes --appendfsync everysec </dev/null >/dev/null 2>&1
    for _ in $(seq 1 100); do
      if answers; then exit 0; fi
      sleep 0.05
    done
    echo "redis-server did not answer on 127.0.0.1:$port; its log:" >&2
    tail -n 20 "$dir/redis.log" >&2 || true
    exit 1
    ;;
  stop)
    if pid_alive; then kill -TERM "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
    for _ in $(seq 1 100); do
      if ! pid_alive; then exit 0; fi
      sleep 0.05
    done
    kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
    ;;
  status)
    answers
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
