#!/usr/bin/env bash
# `make test`: no hand-written Swift file of the product, the benchmarks or the fuzz targets over
# 400 lines (a file per type or closely related group; past that, a file holds more than one
# concern). Generated code (Sources/*/Generated/) is exempt.
#   scripts/check-source-sizes.sh [LIMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-400}
over=$(find Sources Benchmarks/Sources Fuzz/Sources -name '*.swift' -not -path '*/Generated/*' -print0 \
  | xargs -0 wc -l | awk -v limit="$limit" '$2 != "total" && $1 > limit { print "  " $2 ": " $1 " lines" }')
if [ -n "$over" ]; then
  echo "check-source-sizes: hand-written Swift files over $limit lines (split them by concern):" >&2
  echo "$over" >&2
  exit 1
fi
echo "check-source-sizes: every hand-written Swift file is at most $limit lines"
