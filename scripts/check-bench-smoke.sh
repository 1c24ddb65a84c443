#!/usr/bin/env bash
# CI: `make bench PROFILE=smoke` on this clean clone: k6 installed, the release service, the
# naive peer and bench-load built, the smoke profile run against both with the ceiling around
# them, a results file written and PERFORMANCE.md regenerated citing it. Prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
before=$(ls bench/results/smoke-*.json 2> /dev/null | wc -l)
make bench PROFILE=smoke
after=$(ls bench/results/smoke-*.json | wc -l)
[ "$after" -gt "$before" ] || { echo "make bench PROFILE=smoke wrote no results file" >&2; exit 1; }
newest=$(ls -t bench/results/smoke-*.json | head -n 1)
grep -q "$(basename "$newest")" PERFORMANCE.md \
  || { echo "PERFORMANCE.md does not cite $newest" >&2; exit 1; }
! grep -q "FILL IN" PERFORMANCE.md || { echo "PERFORMANCE.md has a [FILL IN] left" >&2; exit 1; }
echo "make bench PROFILE=smoke: $(( $(date +%s) - start )) s on this clone, results in $newest, PERFORMANCE.md regenerated"
