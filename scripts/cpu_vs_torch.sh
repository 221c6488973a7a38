#!/usr/bin/env bash
# arcgrad against PyTorch on the CPU, side by side in one run: whole training steps
# (batch 128, SGD Nesterov, cross-entropy, random data) of ResNet-20, ResNet18,
# MobileNetV2 and EfficientNet-B0, the two engines interleaved model by model over several
# rounds so that both see the same machine state; prints every round, then the medians
# and the ratio arcgrad / PyTorch per model. A benchmark, not a test: it needs PyTorch
# (Debian python3-torch, run by /usr/bin/python3) and the peer script
# ../shared/tools/peers/torch_cpu_bench.py (or --torch-bench PATH).
#
#   scripts/cpu_vs_torch.sh [--build DIR] [--rounds N] [--threads N] [--steps N]
#                           [--models a,b,c] [--torch-bench PATH] [--json FILE]
#                           [--precision fp32|bf16]
# Defaults: build, 3 rounds, 2 threads, 5 steps per timed run (each engine reports the
# median of 3 timed runs after warm-up), all four models, fp32. --precision bf16: arcgrad
# with bfloat16 convolutions and linear layers (bench_gpu --precision bf16, AVX512-BF16)
# against PyTorch under torch.autocast("cpu", dtype=torch.bfloat16) around the whole
# peer script (forward, loss, backward and step alike).
# Each row also gives both engines' arithmetic rate as a share of the register-only AVX-512
# FMA peak that bench_gpu measures right after its timed steps (the FLOPs are arcgrad's
# count of the same model's step: convolutions and linear layers, forward and backward).
# Keep the machine otherwise idle while it runs (stop other jobs: the figures are ratios of
# the same run, but a loaded machine makes them noisy).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
build=build rounds=3 threads=2 steps=5 json="" precision=fp32
models="resnet20,resnet18,mobilenetv2,efficientnet_b0"
torch_bench="$repo/../shared/tools/peers/torch_cpu_bench.py"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --torch-bench) torch_bench="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cpu_vs_torch: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
case "$precision" in
  fp32|bf16) ;;
  *) echo "cpu_vs_torch: --precision must be fp32 or bf16, got '$precision'" >&2; exit 2 ;;
esac
[ -x "$build/bench_gpu" ] || { echo "cpu_vs_torch: $build/bench_gpu not found; build first" >&2; exit 1; }
[ -f "$torch_bench" ] || { echo "cpu_vs_torch: $torch_bench not found (--torch-bench)" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null ||
  { echo "cpu_vs_torch: PyTorch is missing (Debian: apt install python3-torch)" >&2; exit 1; }

# The PyTorch peer, in fp32 as it is, or with bf16 autocast entered before the script runs.
torch_peer() {
  if [ "$precision" = bf16 ]; then
    /usr/bin/python3 -c 'import runpy, sys, torch
torch.autocast("cpu", dtype=torch.bfloat16).__enter__()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$torch_bench" "$@"
  else
    /usr/bin/python3 "$torch_bench" "$@"
  fi
}
# field NAME: the number after "NAME": in the last JSON line read.
field() { sed -n "s/.*\"$1\": *\([0-9.eE+-]*\).*/\1/p" | tail -n 1; }
# percent GFLOP_PER_STEP BATCH IMAGES_PER_S PEAK: that rate's share of the peak, in %.
percent() { awk -v f="$1" -v b="$2" -v r="$3" -v p="$4" 'BEGIN {printf "%.1f", (p > 0 ? 100 * f * r / b / p : -1)}'; }
results="$(mktemp)" peer_err="$(mktemp)"
trap 'rm -f "$results" "$peer_err"' EXIT
echo "cpu_vs_torch: $(date -u +%FT%TZ), $precision, $threads threads, $rounds rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  for model in ${models//,/ }; do
    line=$(AG_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" "$build/bench_gpu" --train-model "$model" \
          --device cpu --steps "$steps" --precision "$precision" | tail -n 1)
    a=$(field images_per_s <<< "$line") flop=$(field gflop_per_step <<< "$line") peak=$(field fma_peak_gflops <<< "$line")
    batch=$(field batch <<< "$line")
    # A peer that fails (PyTorch 1.13's autocast lacks some bf16 CPU kernels, e.g. for
    # MobileNetV2's ReLU6) is reported with its error and left out of the medians.
    t=$(OMP_NUM_THREADS="$threads" torch_peer "$model" "$threads" "$steps" 3 2> "$peer_err" | field images_per_s) || true
    pa=$(percent "$flop" "$batch" "$a" "$peak")
    if [ -z "$t" ]; then
      printf 'round %d  %-16s arcgrad %8.1f img/s (%4.1f%% of peak)   pytorch failed: %s\n' \
        "$round" "$model" "$a" "$pa" "$(grep -v '^ ' "$peer_err" | tail -n 1)"
      echo "$model $a nan $pa nan" >> "$results"
      continue
    fi
    pt=$(percent "$flop" "$batch" "$t" "$peak")
    printf 'round %d  %-16s arcgrad %8.1f img/s (%4.1f%% of peak)   pytorch %8.1f img/s (%4.1f%%)   ratio %.2f   FMA peak %.0f GFLOP/s\n' \
      "$round" "$model" "$a" "$pa" "$t" "$pt" "$(awk -v a="$a" -v t="$t" 'BEGIN {print a / t}')" "$peak"
    echo "$model $a $t $pa $pt" >> "$results"
  done
done
echo
printf '%-16s %16s %16s %8s %9s %9s   %s\n' model "arcgrad img/s" "pytorch img/s" ratio "arcgrad %" "pytorch %" \
  "(medians over rounds; % of the same run's FMA peak; ratio range)"
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
json_rows=()
for model in ${models//,/ }; do
  a=$(awk -v m="$model" '$1 == m {print $2}' "$results" | median)
  if ! awk -v m="$model" '$1 == m && $3 != "nan" {found = 1} END {exit !found}' "$results"; then
    printf '%-16s %16.1f %16s %8s %9.1f %9s   %s\n' "$model" "$a" "failed" "-" \
      "$(awk -v m="$model" '$1 == m {print $4}' "$results" | median)" "-" "(the PyTorch peer failed)"
    json_rows+=("{\"model\": \"$model\", \"arcgrad\": $a, \"pytorch\": null}")
    continue
  fi
  t=$(awk -v m="$model" '$1 == m && $3 != "nan" {print $3}' "$results" | median)
  range=$(awk -v m="$model" '$1 == m && $3 != "nan" {r = $2 / $3; if (lo == "" || r < lo) lo = r; if (r > hi) hi = r}
          END {printf "%.2f-%.2f", lo, hi}' "$results")
  pa=$(awk -v m="$model" '$1 == m {print $4}' "$results" | median)
  pt=$(awk -v m="$model" '$1 == m && $5 != "nan" {print $5}' "$results" | median)
  printf '%-16s %16.1f %16.1f %8.2f %9.1f %9.1f   %s\n' "$model" "$a" "$t" \
    "$(awk -v a="$a" -v t="$t" 'BEGIN {print a / t}')" "$pa" "$pt" "$range"
  json_rows+=("{\"model\": \"$model\", \"arcgrad\": $a, \"pytorch\": $t, \"ratio_range\": \"$range\", \"arcgrad_percent_of_fma_peak\": $pa, \"pytorch_percent_of_fma_peak\": $pt}")
done
if [ -n "$json" ]; then
  (IFS=,; echo "[${json_rows[*]}]") > "$json"
fi
