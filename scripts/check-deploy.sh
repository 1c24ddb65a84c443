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
#     there): `swift package describe` on exactly those paths.
set -euo pipefail
cd "$(dirname "$0")/.."

check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

python3 - <<'PY'
import re, sys, yaml

failures = []
compose = yaml.safe_load(open("docker-compose.yml"))
for name, service in compose["services"].items():
    if "healthcheck" not in service:
        failures.append(f"docker-compose.yml: service {name} names no healthcheck")

example = {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", open(".env.example").read(), re.M)}
used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", open("docker-compose.yml").read()))
for variable in sorted(used - example):
    failures.append(f"docker-compose.yml reads ${{{variable}}}, which .env.example does not list")

settings = open("Sources/EventHandler/Configuration/Settings.swift").read()
read = set(re.findall(r'reader\.\w+\("([A-Z][A-Z0-9_]*)"', settings))
read |= set(re.findall(r'environment\["([A-Z][A-Z0-9_]*)"\]', settings))
for variable in sorted(read - example - {"ENV_FILE"}):
    failures.append(f"the service reads {variable}, which .env.example does not list")
if len(read) < 20:
    failures.append(f"found only {len(read)} variables in Settings.swift: the pattern no longer matches")

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
print(f"OK: compose valid, {len(compose['services'])} services with healthchecks, "
      f"{len(read)} service variables and {len(used)} compose variables in .env.example, Dockerfile checks")
PY

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

