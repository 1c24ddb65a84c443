#!/usr/bin/env bash
# What one call waiting for its commit costs in memory (README, "Memory"): the service in
# ACK_MODE=durable against a private PostgreSQL, the database stopped, COUNT calls started at once
# by Python grpcio (Tests/wire/grpcio_client.py `waiting`, logins without an id, so no id is
# held), the resident set read from /metrics before and once every call waits; then the database
# is started again and every call must be answered OK.
#
#   scripts/measure-memory.sh [COUNT]      (default 8000; writes bench/results/memory-waiting-<time>.txt)
#
# Uses .build/debug/event-handler (`make build`); BUILD=release for .build/release.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
count=${1:-8000}
binary=.build/${BUILD:-debug}/event-handler
[ -x "$binary" ] || { echo "build the service first (make build)" >&2; exit 1; }

work=$(mktemp -d /tmp/measure-memory.XXXXXX)
pg_port=$((20000 + RANDOM % 20000))
grpc_port=$((pg_port + 1))
http_port=$((pg_port + 2))
service=""
cleanup() {
  [ -n "$service" ] && kill "$service" 2>/dev/null || true
  scripts/postgres.sh stop "$work/pg" "$pg_port" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
: > "$work/empty.env"

scripts/postgres.sh start "$work/pg" "$pg_port" >/dev/null
metric() { curl -fsS "http://127.0.0.1:$http_port/metrics" | awk -v name="$1" '$1 == name { printf "%d\n", $2 }'; }

AB_NAMESPACE=test-ns CONFIG_PATH=config/challenges.json DB_HOST=127.0.0.1 DB_PORT=$pg_port DB_NAME=challenge_db \
  DB_USER=postgres DB_CONNECT_TIMEOUT=1s ACK_MODE=durable ACK_WAITING_LIMIT=$((count * 2)) \
  GRPC_PORT=$grpc_port GRPC_MAX_CONCURRENT_STREAMS=$((count * 2)) METRICS_PORT=$http_port ENV_FILE=$work/empty.env \
  "$binary" serve > "$work/service.log" 2>&1 &
service=$!
for _ in $(seq 1 100); do grep -q "ready" "$work/service.log" && break; sleep 0.2; done
grep -q "ready" "$work/service.log" || { cat "$work/service.log" >&2; exit 1; }

scripts/postgres.sh stop "$work/pg" "$pg_port" >/dev/null
sleep 2
before=$(metric process_resident_memory_bytes)
python3 Tests/wire/grpcio_client.py "$grpc_port" waiting "$count" > "$work/client.json" &
client=$!
for _ in $(seq 1 600); do
  [ "$(metric commit_waiters)" = "$count" ] && break
  sleep 0.5
done
waiting=$(metric commit_waiters)
sleep 2
during=$(metric process_resident_memory_bytes)
scripts/postgres.sh start "$work/pg" "$pg_port" >/dev/null
wait "$client"
answers=$(cat "$work/client.json")

mkdir -p bench/results
out=bench/results/memory-waiting-$(date -u +%Y-%m-%dT%H%M%SZ).txt
{
  echo "scripts/measure-memory.sh $count ($binary, $(nproc) cores)"
  echo "calls waiting: $waiting of $count"
  echo "rss before: $before bytes; while they wait: $during bytes"
  echo "per waiting call: $(( (during - before) / count )) bytes"
  echo "answers after the database came back: $answers"
} | tee "$out"
[ "$waiting" = "$count" ] || { echo "not every call waited" >&2; exit 1; }
echo "$answers" | grep -q "\"OK\": $count" || { echo "not every call was answered OK" >&2; exit 1; }
