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
# target test 30 minutes, endurance 2 hours, soak 4 hours); the sweeps run at BENCH_SWEEP_SCALE
# (default BENCH_SCALE / 5), without the ceiling. BENCH_TOOL=generator swaps k6 for the Swift
# generator in one-profile runs. Results: bench/results/*.json; report: PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${BENCH_SCALE:-0.05}
tool=${BENCH_TOOL:-k6}
sweep_scale=${BENCH_SWEEP_SCALE:-$(python3 -c "print($scale / 5)")}
# PostgreSQL 15's own defaults for what postgresql-tuning.conf changes, for the comparison.
pg_defaults="-c shared_buffers=128MB -c effective_cache_size=4GB -c maintenance_work_mem=64MB -c work_mem=4MB -c wal_buffers=-1 -c min_wal_size=80MB -c max_wal_size=1GB -c random_page_cost=4 -c effective_io_concurrency=1"

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
  "${load[@]}" --profile target --tool generator
  "${load[@]}" --profile stress --tool generator
  BENCH_PG_OPTS="$pg_defaults" "${load[@]}" --profile target --tool generator --systems service
  sweep=("$bin/bench-load" --scale "$sweep_scale" --bin "$bin" --tool generator --ceiling-seconds 0)
  for setting in flush-interval pool batch; do
    "${sweep[@]}" --profile target --sweep "$setting"
    "${sweep[@]}" --profile stress --sweep "$setting"
  done
  "${sweep[@]}" --profile target --systems service --perf
fi
python3 scripts/bench-report.py
