#!/usr/bin/env bash
# `swift <command>` on the benchmarks package (Benchmarks/Package.swift) with the product's own
# scratch directory, so the dependencies both packages use compile once and the benchmarks'
# binaries land beside event-handler in .build/<config>/ (where bench-load, bench-drain and
# the tests look for them).
#   scripts/swift-benchmarks.sh build -c release --product bench-load
#   scripts/swift-benchmarks.sh test --skip-build --no-parallel
#   scripts/swift-benchmarks.sh --has-product NAME    (exit 0 if the benchmarks package builds NAME)
#
# SwiftPM caches one build plan per scratch directory and configuration
# (.build/<triple>/<config>/description.json) and does not notice that another root package
# wrote it: coming from the product's package it reuses the product's plan for the benchmarks
# (it builds nothing and says "Build complete"), and the other way round too. So this script
# plans afresh (--disable-build-manifest-caching, a few seconds) and, when done, deletes the
# plan it cached, so that a plain `swift build` of the product plans afresh as well.
# (`swift build --package-path Benchmarks` without this script is correct too, in a scratch
# directory of its own, Benchmarks/.build, compiling every dependency again.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--has-product" ]; then
  grep -q "\.executable(name: \"${2:?product name}\"" Benchmarks/Package.swift
  exit
fi
command=${1:?usage: scripts/swift-benchmarks.sh build|test [swift options]}
shift
status=0
swift "$command" --package-path Benchmarks --scratch-path "$PWD/.build" --disable-build-manifest-caching "$@" || status=$?
rm -f "$PWD"/.build/*/debug/description.json "$PWD"/.build/*/release/description.json
exit "$status"
