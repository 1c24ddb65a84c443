#!/usr/bin/env bash
# `make bench`: the tuning guide's load profiles on this machine, then PERFORMANCE.md.
#
#   PROFILE=smoke scripts/bench.sh   one profile (bench/profiles.json), the service and the naive
#                                    peer under the same k6 load, the raw ceiling around them
#   scripts/bench.sh                 the whole ladder: every profile with k6, the stress profile
#                                    again with the Swift generator (k6 saturates first on small
#                                    machines), and the sweeps of flush interval, flush workers
#                                    and batch size that fill the guide's tables
# BENCH_SCALE (default 0.05) multiplies every duration: 1 runs the guide's real lengths (the
# target test 30 minutes, endurance 2 hours, soak 4 hours). BENCH_TOOL=generator swaps k6 for
# the Swift generator in one-profile runs. Results: bench/results/*.json; report: PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${BENCH_SCALE:-0.05}
tool=${BENCH_TOOL:-k6}

scripts/build-release.sh event-handler naive-peer bench-load > /dev/null
k6=$(scripts/install-k6.sh | tail -n 1)
bin=$(swift build -c release --show-bin-path)
load=("$bin/bench-load" --scale "$scale" --k6 "$k6" --bin "$bin")

if [ -n "${PROFILE:-}" ]; then
  "${load[@]}" --profile "$PROFILE" --tool "$tool" ${BENCH_ARGS:-}
else
  for profile in smoke baseline scale target endurance spike soak stress; do
    "${load[@]}" --profile "$profile" --tool k6
  done
  "${load[@]}" --profile stress --tool generator
  "${load[@]}" --profile target --tool generator --perf --systems service
  for sweep in flush-interval pool batch; do
    "${load[@]}" --profile target --tool generator --sweep "$sweep"
    "${load[@]}" --profile stress --tool generator --sweep "$sweep"
  done
fi
python3 scripts/bench-report.py
