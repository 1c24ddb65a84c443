#!/usr/bin/env bash
# The release build, one way for everyone: the Dockerfile's build stage, `make run`, `make bench`
# and CI run this same script, so the binary a container ships is the one the tests and
# benchmarks ran.
#   scripts/build-release.sh [PRODUCT ...]    (default: event-handler)
# Prints the path of each binary it built.
#
# The service's products (event-handler, dev-kafka, event-demo) come from ./Package.swift; the
# benchmarks' (bench-load, bench-drain, bench-core, bench-floor, naive-peer) from
# Benchmarks/Package.swift, built by scripts/swift-benchmarks.sh into the same .build/, so every
# binary lands in .build/release/ and the dependencies both packages use compile once.
set -euo pipefail
cd "$(dirname "$0")/.."
products=("$@")
[ ${#products[@]} -gt 0 ] || products=(event-handler)
for product in "${products[@]}"; do
  if scripts/swift-benchmarks.sh --has-product "$product"; then
    scripts/swift-benchmarks.sh build -c release --product "$product"
  else
    swift build -c release --product "$product"
  fi
done
bin=$(swift build -c release --show-bin-path)
for product in "${products[@]}"; do
  echo "$bin/$product"
done
