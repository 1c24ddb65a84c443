#!/usr/bin/env bash
# CI: the two commands of the quick start work on this clean clone. `make run` (release build,
# local PostgreSQL, dev-kafka, the service) must come up ready (/readyz 200), `make demo` (twice)
# must see its events committed through gRPC and Kafka, and Ctrl-C (SIGINT) must stop it all cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
started=$(date +%s)
setsid make run > "$log" 2>&1 < /dev/null &
run_pid=$!
stop_all() {
  kill -INT -- "-$run_pid" 2>/dev/null || true
  for _ in $(seq 1 120); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$run_pid" 2>/dev/null || true
  make pg-stop > /dev/null 2>&1 || true
  make redis-stop > /dev/null 2>&1 || true
}
trap 'stop_all; rm -f "$log"' EXIT

port=8080
for _ in $(seq 1 1800); do  # the release build takes minutes
  if ! kill -0 "$run_pid" 2>/dev/null; then
    echo "make run exited before it was ready:" >&2; tail -n 40 "$log" >&2; exit 1
  fi
  [ -f .env ] && port=$(sed -n 's/^METRICS_PORT=//p' .env | tail -n 1)
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port:-8080}/readyz" || true)" = 200 ]; then break; fi
  sleep 1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port:-8080}/readyz")" = 200 ] \
  || { echo "make run never became ready:" >&2; tail -n 40 "$log" >&2; exit 1; }
echo "make run: ready (/readyz 200 on port ${port:-8080}) after $(( $(date +%s) - started )) s"

make demo
# Again: the rows now exist from the first run, and the demo must still wait for this run's.
make demo

kill -INT -- "-$run_pid"
status=0
for _ in $(seq 1 120); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.5; done
wait "$run_pid" || status=$?
grep -q "stopped: everything buffered was written" "$log" \
  || { echo "Ctrl-C did not drain cleanly (make run exit $status):" >&2; tail -n 40 "$log" >&2; exit 1; }
! scripts/postgres.sh status .local/postgres "${PG_PORT:-55432}" > /dev/null 2>&1 \
  || { echo "Ctrl-C left the local PostgreSQL running" >&2; exit 1; }
! scripts/redis.sh status .local/redis "${REDIS_PORT:-56379}" \
  || { echo "Ctrl-C left the local Redis running" >&2; exit 1; }
echo "make run: Ctrl-C drained and stopped the service, dev-kafka, Redis and PostgreSQL (exit $status)"
