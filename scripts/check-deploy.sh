#!/usr/bin/env bash
# Checks the deployment files without a Docker engine (part of `make test`):
#   - docker-compose.yml validates against the Compose Specification (check-jsonschema's copy of
#     its JSON schema), and every service names a healthcheck (a probe, or `disable: true` for a
#     one-shot job whose completion is what others wait for);
#   - every ${VARIABLE} the compose file reads, and every variable the service reads, is in
#     .env.example;
#   - the Dockerfile builds with scripts/build-release.sh and runs as a non-root user with a
#     HEALTHCHECK and both ports exposed;
#   - the files its build stage copies are a package SwiftPM loads (every target's directory is
#     there): `swift package describe` on exactly those paths;
#   - the hardening docs/security.md promises: no secret in any environment variable (compose's
#     `environment:` and .env.example hold none; passwords go through `secrets:` as *_FILE), every
#     container with no-new-privileges and memory and process limits, the handler's containers
#     read-only with every capability dropped and a nofile limit, Redis with a password and
#     `maxmemory-policy noeviction`, and every published port bound to ${PUBLISH_HOST:-127.0.0.1}.
#   `--self-test` breaks each of those in a copy and expects the check to fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# The checks of the files themselves, on COMPOSE and ENV_EXAMPLE (the repository's, or a broken
# copy in the self-test).
check_files() {
COMPOSE="$1" ENV_EXAMPLE="$2" python3 - <<'PY'
import os, re, sys, yaml

failures = []
compose_path, env_example = os.environ["COMPOSE"], os.environ["ENV_EXAMPLE"]
compose = yaml.safe_load(open(compose_path))
for name, service in compose["services"].items():
    if "healthcheck" not in service:
        failures.append(f"{compose_path}: service {name} names no healthcheck")

example = {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", open(env_example).read(), re.M)}
used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", open(compose_path).read()))
for variable in sorted(used - example):
    failures.append(f"docker-compose.yml reads ${{{variable}}}, which .env.example does not list")

import glob
settings = "".join(open(p).read() for p in sorted(glob.glob("Sources/EventHandler/Configuration/*.swift")))
read = set(re.findall(r'reader\.\w+\("([A-Z][A-Z0-9_]*)"', settings))
read |= set(re.findall(r'environment\["([A-Z][A-Z0-9_]*)"\]', settings))
for variable in sorted(read - example - {"ENV_FILE"}):
    failures.append(f"the service reads {variable}, which .env.example does not list")
if len(read) < 20:
    failures.append(f"found only {len(read)} variables in Configuration/*.swift: the pattern no longer matches")

# ---- Hardening.
secret = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY)$")
for name, service in compose["services"].items():
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    for key in environment:
        if secret.search(key):
            failures.append(f"{compose_path}: service {name} passes the secret {key} in its environment: "
                            f"mount it with `secrets:` and pass {key}_FILE")
    if "no-new-privileges:true" not in (service.get("security_opt") or []):
        failures.append(f"{compose_path}: service {name} lacks security_opt no-new-privileges:true")
    for limit in ("mem_limit", "pids_limit"):
        if limit not in service:
            failures.append(f"{compose_path}: service {name} has no {limit}")
    for port in service.get("ports") or []:
        if not str(port).startswith("${PUBLISH_HOST:-127.0.0.1}:"):
            failures.append(f"{compose_path}: service {name} publishes {port!r} on every interface: "
                            "bind it to ${PUBLISH_HOST:-127.0.0.1}")
    if service.get("image", "").startswith("event-handler"):
        if service.get("read_only") is not True:
            failures.append(f"{compose_path}: service {name} (the handler's image) is not read_only: true")
        if service.get("cap_drop") != ["ALL"]:
            failures.append(f"{compose_path}: service {name} (the handler's image) does not drop every capability (cap_drop: [ALL])")
        if "nofile" not in (service.get("ulimits") or {}):
            failures.append(f"{compose_path}: service {name} (the handler's image) has no nofile ulimit")
redis = compose["services"].get("redis", {})
redis_command = " ".join(redis.get("command") or [])
for needle in ("requirepass", "--maxmemory ", "--maxmemory-policy noeviction"):
    if needle not in redis_command:
        failures.append(f"{compose_path}: redis lacks {needle.strip()} (a password, and no eviction of deduplication keys)")
for line in open(env_example):
    m = re.match(r"([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
    if m and secret.search(m.group(1)) and m.group(2).strip().strip("'\""):
        failures.append(f"{env_example}: {m.group(1)} holds a value: secrets belong in files (*_FILE)")

dockerfile = open("Dockerfile").read()
for needle, why in [
    ("scripts/build-release.sh", "the build stage must use scripts/build-release.sh"),
    ("HEALTHCHECK", "a HEALTHCHECK on /healthz"),
    ("EXPOSE 6565 8080", "both ports exposed"),
    ("COPY config/challenges.json", "the default challenges.json inside the image"),
]:
    if needle not in dockerfile:
        failures.append(f"Dockerfile: {why} ({needle!r} not found)")
users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
if not users or users[-1] in ("root", "0"):
    failures.append("Dockerfile: the runtime stage must end as a non-root USER")

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"OK: {len(compose['services'])} services with healthchecks and hardened, no secret in an environment "
      f"variable, {len(read)} service variables and {len(used)} compose variables in .env.example, Dockerfile checks")
PY
}

if [ "${1:-}" = "--self-test" ]; then
  # Each mutation breaks one promise in a copy; the check must fail naming it.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  status=0
  mutate() {  # NAME EXPECTED-TEXT PYTHON-EDIT-OF-compose-AND-env
    cp docker-compose.yml "$tmp/compose.yml"
    cp .env.example "$tmp/env.example"
    python3 - "$tmp/compose.yml" "$tmp/env.example" <<PY
import sys
compose, env = open(sys.argv[1]).read(), open(sys.argv[2]).read()
$3
open(sys.argv[1], "w").write(compose); open(sys.argv[2], "w").write(env)
PY
    if out=$(check_files "$tmp/compose.yml" "$tmp/env.example" 2>&1); then
      echo "self-test: ($1) passed, but should have failed" >&2; status=1
    elif ! grep -q -- "$2" <<< "$out"; then
      echo "self-test: ($1) failed without naming '$2':" >&2; echo "$out" >&2; status=1
    else
      echo "self-test: ($1) fails as it should: $(grep -m1 -- "$2" <<< "$out")"
    fi
  }
  mutate "a password in the handler's environment" "passes the secret DB_PASSWORD" \
    'compose = compose.replace("      DB_PASSWORD_FILE: /run/secrets/db_password\n      REDIS_URL", "      DB_PASSWORD: hunter2\n      REDIS_URL", 1)'
  mutate "a port on every interface" "on every interface" \
    'compose = compose.replace("${PUBLISH_HOST:-127.0.0.1}:${GRPC_PORT", "${GRPC_PORT", 1)'
  mutate "the handler writable" "is not read_only" 'compose = compose.replace("  read_only: true\n", "", 1)'
  mutate "capabilities kept" "does not drop every capability" 'compose = compose.replace("  cap_drop: [ALL]\n", "", 1)'
  mutate "privilege escalation allowed" "lacks security_opt" \
    'compose = compose.replace("x-hardened: &hardened\n  security_opt: [\"no-new-privileges:true\"]\n", "x-hardened: &hardened\n", 1)'
  mutate "Redis evicting" "noeviction" 'compose = compose.replace("--maxmemory-policy noeviction", "--maxmemory-policy allkeys-lru", 1)'
  mutate "a secret in .env.example" "holds a value" 'env = env.replace("\nDB_PASSWORD=\n", "\nDB_PASSWORD=postgres\n", 1)'
  exit $status
fi

check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
check_files docker-compose.yml .env.example

# The build stage's context: only what its COPY lines bring in, as SwiftPM will see it.
context=$(mktemp -d)
errors=$(mktemp)
trap 'rm -rf "$context" "$errors"' EXIT
sed -n '1,/^FROM .* AS build/d; /^FROM /q; s/^COPY \([^ ]*\) .*/\1/p' Dockerfile | while read -r path; do
  mkdir -p "$context/$(dirname "$path")"
  cp -r "$path" "$context/$path"
done
if ! (cd "$context" && swift package describe --type json > /dev/null 2> "$errors"); then
  echo "Dockerfile: the build stage's files are not a package SwiftPM can load:" >&2
  cat "$errors" >&2
  exit 1
fi
echo "OK: the Dockerfile's build stage copies a package SwiftPM loads ($(ls "$context" | tr '\n' ' '))"

