#!/usr/bin/env bash
# Installs the Debian packages the build and `make run` need, if any is missing; with --test, also
# what only the test suite needs. Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  libpq-dev          # libpq headers: the Storage module's C library
  librdkafka-dev     # librdkafka and its mock cluster: the Kafka module's C library, dev-kafka
  libhiredis-dev     # hiredis: the Redis module's C library (deduplication)
  redis-server       # server for `make run` and the tests (scripts/redis.sh); redis-cli with it
  redis-tools
  postgresql-15      # server for `make run`, tests and benchmarks (with pg_stat_statements)
  postgresql-client-15
  pkg-config         # SwiftPM finds libpq through it
  procps             # pgrep/pkill used by the scripts
)
if [ "${1:-}" = "--test" ]; then
  packages+=(
    prometheus       # promtool: checks and unit-tests the alert rules (scripts/check-monitoring.sh);
                     # the Prometheus server it also ships is not started by the project
    python3-yaml     # the dashboard and metric-name checks of scripts/check-monitoring.sh
    kcat             # an independent Kafka producer and consumer for the Kafka tests
    openssl          # the TLS tests' throwaway CA and certificates (Tests/TestSupport/TestCertificates.swift)
    stunnel4         # runs deploy/stunnel/redis-tls.conf, the compose recipe for Redis over TLS (RedisTLSSidecarTests)
  )
fi

# check-jsonschema (PyPI; it carries the Compose Specification's JSON schema): scripts/check-deploy.sh.
python_tools=()
if [ "${1:-}" = "--test" ] && ! command -v check-jsonschema >/dev/null 2>&1; then
  python_tools+=("check-jsonschema==0.39.0")
fi
# The independent gRPC client of the wire tests (Tests/wire/): grpcio (gRPC's C core) with
# grpcio-tools to generate its stubs from protos/ at test time, the health service's stubs, and h2
# (a pure-Python HTTP/2 stack) for the hostile-transport test's hand-made frames.
if [ "${1:-}" = "--test" ] && ! python3 -c 'import grpc, grpc_tools, grpc_health, h2' >/dev/null 2>&1; then
  python_tools+=("grpcio==1.85.4" "grpcio-tools==1.85.4" "grpcio-health-checking==1.85.1" "h2==4.4.1")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#python_tools[@]} -gt 0 ]; then
  echo "installing (pip): ${python_tools[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${python_tools[@]}"
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian's packages start a PostgreSQL cluster on 5432 and a Redis on 6379; the project runs its own.
if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now redis-server 2>/dev/null || true; fi
if pgrep -x redis-server >/dev/null 2>&1 && [ -r /etc/redis/redis.conf ]; then
  redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true
fi
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
    $sudo pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
  done
fi
