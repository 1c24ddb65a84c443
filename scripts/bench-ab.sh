#!/usr/bin/env bash
# A/B of two builds of the service under the same load, alternated so the machine's noise falls on
# both alike (this machine is shared: one run of each says little, the spread of several says more).
#
#   scripts/bench-ab.sh DIR_A DIR_B [ROUNDS=3] [SCALE=0.02] [bench-load args...]
#   AB_BENCH=drain scripts/bench-ab.sh DIR_A DIR_B [ROUNDS=3] [-] [bench-drain args...]
#
# DIR_A and DIR_B each hold an `event-handler` (and `naive-peer`) release binary: copy
# `.build/release/` aside before a change, rebuild after it. Each round runs the target profile
# (1,000 events/s) with the Swift generator against A, then B, service only, no ceiling; with
# AB_BENCH=drain, bench-drain's merging scenario (1,000,000 Kafka events, service CPU per event).
# Results: bench/results/ab-<time>/{A,B}/*.json and bench/results/ab-<time>/summary.txt.
# AB_ABOUT=file.json (optional) is copied there as about.json: what A and B are ("title", "date",
# "a", "b", "issue", "hypothesis", "implementation", "conclusion"); scripts/bench-report.py then
# adds the comparison to PERFORMANCE.md's optimization log.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
dir_a=$1 dir_b=$2 rounds=${3:-3} scale=${4:-0.02}
shift $(( $# < 4 ? $# : 4 ))
for dir in "$dir_a" "$dir_b"; do
  [ -x "$dir/event-handler" ] || { echo "bench-ab: no event-handler in $dir" >&2; exit 2; }
done
bench=${AB_BENCH:-target}
case "$bench" in
  target) scripts/build-release.sh bench-load > /dev/null ;;
  drain) scripts/build-release.sh bench-drain > /dev/null ;;
  *) echo "bench-ab: AB_BENCH is target or drain, not $bench" >&2; exit 2 ;;
esac
bin=$(swift build -c release --show-bin-path)
out=bench/results/ab-$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$out/A" "$out/B"
[ -z "${AB_ABOUT:-}" ] || cp "$AB_ABOUT" "$out/about.json"
for round in $(seq 1 "$rounds"); do
  for variant in A B; do
    dir=$dir_a; [ "$variant" = B ] && dir=$dir_b
    echo "bench-ab: round $round, $variant ($dir)"
    log=$out/$variant/round-$round.log
    if [ "$bench" = drain ]; then
      run=("$bin/bench-drain" --binary "$dir/event-handler" --only merging --out "$out/$variant")
    else
      run=("$bin/bench-load" --scale "$scale" --bin "$dir" --profile target --tool generator --systems service
        --ceiling-seconds 0 --out "$out/$variant")
    fi
    if ! "${run[@]}" "$@" > "$log" 2>&1; then
      echo "bench-ab: ${run[0]##*/} failed on $variant (round $round); its output: $log" >&2
      tail -n 5 "$log" >&2
      exit 1
    fi
    grep -E '^service: [0-9]|^merging ' "$log" || true
  done
done
python3 scripts/bench-report.py --ab "$out" | tee "$out/summary.txt"
