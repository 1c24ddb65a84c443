#!/usr/bin/env bash
# Runs the service against the local PostgreSQL and Redis that `make pg-start` and
# `make redis-start` started, with dev-kafka
# (the development Kafka broker: librdkafka's mock cluster, in memory) unless KAFKA_BROKERS
# names a real one. Settings come from .env (copied from .env.example on first run) and the
# environment, which wins; the database settings point at the local cluster unless the
# environment says otherwise. Ctrl-C stops the service (after its final flush), then what
# `make run` started for it: dev-kafka, Redis and PostgreSQL (data kept in .local/).
set -euo pipefail
usage="usage: run-local.sh BINARY PG_PORT [REDIS_PORT [LOCAL_DIR]]"
bin=${1:?$usage}
port=${2:?$usage}
redis_port=${3:-}
local_dir=${4:-}
cd "$(dirname "$0")/.."

if [ ! -f .env ]; then
  cp .env.example .env
  echo "created .env from .env.example (edit it to change settings)"
fi

export DB_HOST=${DB_HOST:-127.0.0.1}
export DB_PORT=${DB_PORT:-$port}
export DB_NAME=${DB_NAME:-challenge_db}
export DB_USER=${DB_USER:-postgres}
# Deduplication across replicas: the local Redis, unless REDIS_URL is set (environment or .env).
if [ -n "$redis_port" ] && [ -z "${REDIS_URL:-}" ] && ! grep -q '^REDIS_URL=.' .env; then
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
fi

# The namespace decides the topic names; read it the way the service does (environment first).
namespace=${AB_NAMESPACE:-$(sed -n 's/^AB_NAMESPACE=//p' .env | tail -n 1)}
devkafka_pid=""
bootstrap_file=""
# On the way out, after the service's final flush: what make run started goes too.
stop_started() {
  if [ -n "$devkafka_pid" ]; then kill "$devkafka_pid" 2>/dev/null || true; rm -f "$bootstrap_file"; fi
  if [ -n "$local_dir" ]; then
    [ -z "$redis_port" ] || scripts/redis.sh stop "$local_dir/redis" "$redis_port" || true
    scripts/postgres.sh stop "$local_dir/postgres" "$port" > /dev/null || true
    echo "stopped dev-kafka, Redis and PostgreSQL ('make run' starts them again, data kept in $local_dir)"
  fi
}
trap stop_started EXIT
if [ -z "${KAFKA_BROKERS:-}" ] && ! grep -q '^KAFKA_BROKERS=.' .env; then
  dev_kafka="$(dirname "$bin")/dev-kafka"
  # Where `make demo` finds the broker while this runs.
  bootstrap_file=.local/dev-kafka.bootstrap
  mkdir -p .local
  rm -f "$bootstrap_file"
  # Its own session: the terminal's Ctrl-C reaches the service only; dev-kafka outlives its final
  # flush and is stopped by the EXIT trap.
  AB_NAMESPACE=$namespace setsid "$dev_kafka" --bootstrap-file "$bootstrap_file" < /dev/null > /dev/null &
  devkafka_pid=$!
  for _ in $(seq 1 100); do [ -s "$bootstrap_file" ] && break; sleep 0.1; done
  [ -s "$bootstrap_file" ] || { echo "dev-kafka did not start" >&2; exit 1; }
  export KAFKA_BROKERS=$(cat "$bootstrap_file")
  echo "Kafka: dev-kafka (development broker, in memory) at $KAFKA_BROKERS, topics" \
    "$namespace.iam.account.v1.userLoggedIn and $namespace.social.statistic.v1.statItemUpdated (8 partitions)"
  echo "       produce to it with: kcat -P -b $KAFKA_BROKERS -t $namespace.social.statistic.v1.statItemUpdated -K '|'"
fi

echo "PostgreSQL: ${DB_HOST}:${DB_PORT}/${DB_NAME}"
if [ -n "${REDIS_URL:-}" ]; then echo "Redis: ${REDIS_URL} (deduplication across replicas)"; fi
echo "starting the event handler; Ctrl-C flushes what is buffered and stops it, then everything above"
# Not exec: what it uses must outlive the service's final flush, then stop after it. The
# terminal's Ctrl-C reaches the service; this script waits for it.
trap '' INT
"$bin" serve || status=$?
exit "${status:-0}"
