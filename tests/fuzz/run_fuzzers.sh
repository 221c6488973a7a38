#!/usr/bin/env bash
# Runs every fuzz target of an AG_FUZZ=ON build for a bounded time, as many at once as
# there are cores, each on a scratch copy of its seed corpus (tests/fuzz/corpus/<name>/ is
# never modified). Fails when any target reports a crash, a leak, a timeout, an
# out-of-memory or a sanitizer error; the input that did it is left in the printed folder:
# fix the reader and keep the input under tests/fuzz/regressions/<name>/.
#   tests/fuzz/run_fuzzers.sh build-fuzz 30       # 30 s per target
set -uo pipefail
build=${1:?usage: run_fuzzers.sh <build dir> [seconds per target]}
seconds=${2:-30}
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/arcgrad_fuzz_run.XXXXXX")"
targets=(cifar idx image_folder safetensors checkpoint)
jobs=$(nproc)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_one() {
  local name=$1 dir="$work/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  local dict=()
  [ -f "$here/$name.dict" ] && dict=(-dict="$here/$name.dict")
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a reader asking for more than
  # 2 GB for a small input is a finding (libFuzzer's malloc limit follows it). -seed: the
  # same mutation sequence on every run, so CI explores a reproducible set of inputs
  # (AG_FUZZ_SEED=N explores another; 0 lets libFuzzer pick one).
  "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -seed="${AG_FUZZ_SEED:-1}" \
    -artifact_prefix="$dir/artifacts/" -print_final_stats=1 "${dict[@]}" "$dir/corpus" "$here/corpus/$name" \
    >"$dir/log.txt" 2>&1
}

failed=0
running=0
pids=()
for name in "${targets[@]}"; do
  run_one "$name" &
  pids+=("$!")
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
for name in "${targets[@]}"; do
  dir="$work/$name"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log.txt" | grep -o '[0-9]*$' | head -1)
  if ls "$dir/artifacts/"* >/dev/null 2>&1 || ! grep -q 'Done [0-9]* runs' "$dir/log.txt"; then
    echo "fuzz_$name: FAILED after ${runs:-?} inputs; the input(s): $(ls "$dir/artifacts/" 2>/dev/null)"
    echo "  in $dir/artifacts/ (keep them under tests/fuzz/regressions/$name/ once fixed); log:"
    tail -40 "$dir/log.txt" | sed 's/^/    /'
    failed=1
  else
    echo "fuzz_$name: ${runs:-?} inputs in ${seconds} s, no crash, leak or sanitizer report"
  fi
done
[ "$failed" -eq 0 ] && rm -rf "$work"
exit "$failed"
