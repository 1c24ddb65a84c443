#!/usr/bin/env bash
# `make demo`: sends a handful of login and stat events to the service `make run` started, over
# gRPC and over Kafka (dev-kafka, or KAFKA_BROKERS), and prints the rows they changed.
# Exits 1 if no row changed within 15 seconds.
#   scripts/demo.sh EVENT_DEMO_BINARY PG_PORT
set -euo pipefail
demo=${1:?usage: demo.sh EVENT_DEMO_BINARY PG_PORT}
pg_port=${2:?usage: demo.sh EVENT_DEMO_BINARY PG_PORT}
cd "$(dirname "$0")/.."
[ -f .env ] || { echo "no .env: start the service with 'make run' first" >&2; exit 1; }

setting() {  # the environment first, then .env, then the default
  local name=$1 default=$2 value
  value=${!name:-$(sed -n "s/^$name=//p" .env | tail -n 1)}
  echo "${value:-$default}"
}
namespace=$(setting AB_NAMESPACE "")
grpc_port=$(setting GRPC_PORT 6565)
config=$(setting CONFIG_PATH config/challenges.json)
brokers=$(setting KAFKA_BROKERS "")
[ -n "$brokers" ] || brokers=$(cat .local/dev-kafka.bootstrap 2>/dev/null || true)
# A statistic code the catalog uses, so the stat events move goals.
stat_code=$(python3 -c 'import json,sys
for c in json.load(open(sys.argv[1]))["challenges"]:
    for g in c["goals"]:
        code = g.get("requirement", {}).get("statCode")
        if g.get("eventSource") == "statistic" and code: print(code); sys.exit()' "$config")

rows() {
  scripts/postgres.sh psql .local/postgres "$pg_port" -At -F ' | ' -c \
    "SELECT user_id, goal_id, progress, status FROM user_goal_progress
     WHERE user_id LIKE 'demo-%' ORDER BY user_id, goal_id" 2>/dev/null
}
before=$(rows)
"$demo" --namespace "$namespace" --stat-code "$stat_code" --grpc "127.0.0.1:$grpc_port" --kafka "$brokers"
for _ in $(seq 1 30); do
  after=$(rows)
  if [ "$after" != "$before" ] && { [ -z "$brokers" ] || grep -q '^demo-kafka' <<<"$after"; }; then
    echo "rows of the demo users (user | goal | progress | status), after the next flush:"
    echo "$after"
    echo "rows changed: $(diff <(echo "$before") <(echo "$after") | grep -c '^>')"
    exit 0
  fi
  sleep 0.5
done
echo "no row changed within 15 s: is 'make run' running, with AB_NAMESPACE=$namespace?" >&2
exit 1
