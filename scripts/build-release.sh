#!/usr/bin/env bash
# The release build, one way for everyone: the Dockerfile's build stage, `make run` and CI run
# this same script, so the binary a container ships is the one the tests and benchmarks ran.
#   scripts/build-release.sh [PRODUCT ...]    (default: event-handler)
# Prints the path of each binary it built.
set -euo pipefail
cd "$(dirname "$0")/.."
products=("$@")
[ ${#products[@]} -gt 0 ] || products=(event-handler)
for product in "${products[@]}"; do
  swift build -c release --product "$product"
done
bin=$(swift build -c release --show-bin-path)
for product in "${products[@]}"; do
  echo "$bin/$product"
done
