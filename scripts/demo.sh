#!/usr/bin/env bash
# `make demo`: sends a handful of login and stat events to the service `make run` started, over
# gRPC and over Kafka (dev-kafka, or KAFKA_BROKERS), waits until every demo user's rows reflect
# this run's events (a login goal and a stat goal of each written since the run began, or left
# with nothing to move: completed), and prints them. Exits 1 if that takes more than 30 seconds.
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
# A statistic code the catalog uses, so the stat events move goals; and the default-assigned goals
# each kind of event moves (as SQL arrays), to tell when a user's rows reflect this run.
read -r stat_code login_goals stat_goals < <(python3 -c 'import json,sys
goals = [g for c in json.load(open(sys.argv[1]))["challenges"] for g in c["goals"]]
code = next(g["requirement"]["statCode"] for g in goals
            if g.get("eventSource") == "statistic" and g.get("requirement", {}).get("statCode"))
def array(ids): return "{" + ",".join(ids) + "}"
logins = [g["goalId"] for g in goals if g.get("eventSource") == "login" and g.get("defaultAssigned")]
stats = [g["goalId"] for g in goals if g.get("requirement", {}).get("statCode") == code and g.get("defaultAssigned")]
print(code, array(logins), array(stats))' "$config")
users=3

psql() { scripts/postgres.sh psql .local/postgres "$pg_port" -At -F ' | ' -c "$1" 2>/dev/null; }
rows() {
  psql "SELECT user_id, goal_id, progress, status FROM user_goal_progress
        WHERE user_id LIKE 'demo-%' ORDER BY user_id, goal_id"
}
demo_users=$(seq 1 "$users" | sed "s/.*/'demo-grpc-&'/" | paste -sd,)
if [ -n "$brokers" ]; then demo_users+=",$(seq 1 "$users" | sed "s/.*/'demo-kafka-&'/" | paste -sd,)"; fi
# How many (user, event kind) pairs do not show this run yet: the kind moves none of the user's
# goals, or a goal of that kind was written since $1, or all of them are done (nothing to move).
behind() {
  psql "SELECT count(*) FROM unnest(ARRAY[$demo_users]) AS users(u),
          unnest(ARRAY['$login_goals', '$stat_goals']::text[]) AS kind
        WHERE kind <> '{}' AND NOT EXISTS (
          SELECT 1 FROM user_goal_progress p
          WHERE p.user_id = users.u AND p.goal_id = ANY(kind::text[]) AND p.updated_at >= '$1')
        AND NOT (EXISTS (SELECT 1 FROM user_goal_progress p WHERE p.user_id = users.u AND p.goal_id = ANY(kind::text[]))
             AND NOT EXISTS (SELECT 1 FROM user_goal_progress p WHERE p.user_id = users.u AND p.goal_id = ANY(kind::text[])
                             AND p.status NOT IN ('completed', 'claimed')))"
}
before=$(rows)
started=$(psql "SELECT now() AT TIME ZONE 'UTC'")
"$demo" --namespace "$namespace" --stat-code "$stat_code" --grpc "127.0.0.1:$grpc_port" --kafka "$brokers" --users "$users"
left=""
for _ in $(seq 1 60); do
  left=$(behind "$started")
  if [ "$left" = "0" ]; then
    after=$(rows)
    echo "rows of the demo users (user | goal | progress | status), with this run's events committed:"
    echo "$after"
    echo "rows changed: $(diff <(echo "$before") <(echo "$after") | grep -c '^>' || true)"
    exit 0
  fi
  sleep 0.5
done
echo "after 30 s, ${left:-?} (user, event kind) pairs still do not show this run's events: is 'make run' running, with AB_NAMESPACE=$namespace?" >&2
exit 1
