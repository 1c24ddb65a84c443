#!/usr/bin/env bash
# `swift <command>` on the benchmarks package (Benchmarks/Package.swift) with the product's own
# scratch directory, so the dependencies both packages use compile once and the benchmarks'
# binaries land beside event-handler in .build/<config>/ (where bench-load, bench-drain and
# the tests look for them).
#   scripts/swift-benchmarks.sh build -c release --product bench-load
#   scripts/swift-benchmarks.sh test --skip-build --no-parallel
#   scripts/swift-benchmarks.sh --has-product NAME    (exit 0 if the benchmarks package builds NAME)
#
# --disable-build-manifest-caching is not optional here: SwiftPM caches one build plan per
# scratch directory and, coming from the product's package, reuses the product's plan for the
# benchmarks' root (it builds nothing and says "Build complete"). Planning afresh costs a few
# seconds. (`swift build --package-path Benchmarks` without this script is correct too, in a
# scratch directory of its own, Benchmarks/.build, compiling every dependency again.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--has-product" ]; then
  grep -q "\.executable(name: \"${2:?product name}\"" Benchmarks/Package.swift
  exit
fi
command=${1:?usage: scripts/swift-benchmarks.sh build|test [swift options]}
shift
exec swift "$command" --package-path Benchmarks --scratch-path "$PWD/.build" --disable-build-manifest-caching "$@"
