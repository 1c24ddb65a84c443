#!/usr/bin/env bash
# The fuzz targets (Fuzz/, docs/development.md "Fuzzing"): builds them with libFuzzer and
# AddressSanitizer into .build-fuzz/ (a scratch directory of their own: the sanitizers apply to
# every module, so nothing is shared with the product's .build/), then runs each for SECONDS.
# Each target's corpus grows in .build-fuzz/corpus/<target>/ (not in git), starting from its
# seeds, Fuzz/corpus/<target>/ (which it never writes). A crash is saved as
# .build-fuzz/crashes/<target>/crash-<sha1>; the run goes on with the next target and exits 1.
#   scripts/fuzz.sh SECONDS [TARGET...]     (default: every target)
# Prints, and writes to bench/results/fuzz-<time>.txt, one line per target: executions,
# executions per second, corpus size (inputs and bytes) and libFuzzer's coverage counters.
# Reproduce a crash: .build-fuzz/debug/fuzz-<target> .build-fuzz/crashes/<target>/crash-…
# FUZZ_SEED=N fixes libFuzzer's random seed (make fuzz-smoke: 1), so a short run takes the same
# mutations each time from a clean clone: CI checks a fixed path, and exploration is make fuzz's.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(catalog kafka-value dotenv redis-url redis-reply grpc)
scratch=$PWD/.build-fuzz

started=$SECONDS
# `--sanitize=fuzzer --sanitize=address` would pass swiftc two -sanitize= options, and swiftc keeps
# only the last: no coverage, so libFuzzer would fuzz blind. One list keeps both. (The C modules
# get libFuzzer's coverage from --sanitize=fuzzer; AddressSanitizer checks the Swift code.)
swift build --package-path Fuzz --scratch-path "$scratch" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
echo "fuzz: built in $((SECONDS - started)) s"

mkdir -p bench/results
report=bench/results/fuzz-$(date -u +%Y-%m-%dT%H%M%SZ).txt
{
  echo "# scripts/fuzz.sh $seconds${FUZZ_SEED:+ (FUZZ_SEED=$FUZZ_SEED)}: libFuzzer + AddressSanitizer, debug build, $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes')"
  printf '%-12s %8s %10s %8s %7s %7s %10s %7s %7s %s\n' target seconds executions exec/s seeds corpus corpus_kB cov ft result
} > "$report"
failed=0
for target in "${targets[@]}"; do
  binary=$scratch/debug/fuzz-$target
  corpus=$scratch/corpus/$target
  crashes=$scratch/crashes/$target
  log=$scratch/logs/$target.log
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  echo "fuzz: $target for $seconds s"
  status=0
  # -timeout: one input taking 10 s is a hang; leaks are checked too (LeakSanitizer). Swift's
  # own backtracer is off: libFuzzer reports the crash and saves its input.
  SWIFT_BACKTRACE=enable=no "$binary" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$corpus" "Fuzz/corpus/$target" > "$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
  seeds=$(find "Fuzz/corpus/$target" -type f | wc -l)
  # The corpus the target ends with: its seeds and what it added (the same file names once).
  inputs=$(find "Fuzz/corpus/$target" "$corpus" -type f -printf '%f\n' | sort -u | wc -l)
  kilobytes=$(find "Fuzz/corpus/$target" "$corpus" -type f -printf '%f %s\n' | sort -u -k1,1 | awk '{ s += $2 } END { print int((s + 1023) / 1024) }')
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $status): $(grep -m1 -E 'ERROR: |Fatal error|property violated' "$log" || echo 'see the log') — $log"
    failed=1
  fi
  printf '%-12s %8s %10s %8s %7s %7s %10s %7s %7s %s\n' "$target" "$seconds" "${executions:-?}" "${rate:-?}" \
    "$seeds" "$inputs" "$kilobytes" "${cov:-?}" "${ft:-?}" "$result" >> "$report"
  tail -1 "$report"
done
echo
cat "$report"
echo "fuzz: results in $report"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: a target failed; its input is in .build-fuzz/crashes/<target>/ (reproduce: .build-fuzz/debug/fuzz-<target> <file>)" >&2
  exit 1
fi
