#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/distributed.md, "Scaling"): the same training
# run as 1 process x T threads and as N ranks x 1 thread (mpirun), side by side; prints the
# training images/s of each, and for the ranks the gradient bytes allreduced per step
# against the parameter bytes and the time the ranks waited for communication, as the
# train app logs them. A benchmark, not a test: run it on an otherwise idle machine (the
# load average is printed with the figures).
#
#   scripts/dist_scaling.sh [--build DIR] [--ranks N] [--threads T] [--model SPEC]
#                           [--batch-size B] [--images N] [--epochs E] [--data-dir DIR]
# Defaults: build, 2 ranks, 2 threads for the single process, resnet20, global batch 128,
# 5120 training images, 1 epoch (the first epoch includes warm-up: use 2 for steadier
# figures). Data: CIFAR-10 from --data-dir, $ARCGRAD_DATA or datasets/ when present, else
# a random CIFAR-10-format set written to a temporary folder (same cost per image).
# Needs train built with -DAG_USE_MPI=ON and mpirun (Debian: libopenmpi-dev openmpi-bin).
set -euo pipefail

build=build ranks=2 threads=2 model=resnet20 batch=128 images=5120 epochs=1 data_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --images) images="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "dist_scaling: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
[ -x "$build/train" ] || { echo "dist_scaling: $build/train not found; build first" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "dist_scaling: mpirun not found (Debian: openmpi-bin)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "$data_dir" ]; then
  for d in "${ARCGRAD_DATA:-/nonexistent}/cifar-10-batches-bin" datasets/cifar-10-batches-bin; do
    [ -f "$d/test_batch.bin" ] && { data_dir="$d"; break; }
  done
fi
if [ -z "$data_dir" ]; then
  data_dir="$work/cifar10"
  mkdir -p "$data_dir"
  # CIFAR-10 binary records: a label byte (0..9) and 3072 pixel bytes; 1000 per file here.
  python3 - "$data_dir" <<'PY'
import os, random, sys
d = sys.argv[1]
rnd = random.Random(0)
def write(name, n):
    with open(os.path.join(d, name), "wb") as f:
        for i in range(n):
            f.write(bytes([i % 10]) + os.urandom(3072))
for b in range(1, 6):
    write("data_batch_%d.bin" % b, 2000)
write("test_batch.bin", 1000)
PY
  echo "dist_scaling: random CIFAR-10-format data in $data_dir"
fi

common=(--dataset cifar10 --data-dir "$data_dir" --model "$model" --loss ce --batch-size "$batch"
        --epochs "$epochs" --train-subset "$images" --test-subset 512 --no-plots --progress off --seed 1)
mpi_env=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1)

echo "dist_scaling: $(date -u +%FT%TZ), $model, global batch $batch, $images images x $epochs epoch(s)," \
     "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
"$build/train" "${common[@]}" --threads "$threads" --workers 1 --out "$work/single" > "$work/single.log" 2>&1 ||
  { cat "$work/single.log"; exit 1; }
"${mpi_env[@]}" mpirun -np "$ranks" --oversubscribe "$build/train" "${common[@]}" --threads 1 \
  --workers 1 --out "$work/ranks" > "$work/ranks.log" 2>&1 || { cat "$work/ranks.log"; exit 1; }

last_rate() { sed -n 's/.* \([0-9.e+]*\) img\/s$/\1/p' "$1" | tail -n 1; }
single=$(last_rate "$work/single.log")
parallel=$(last_rate "$work/ranks.log")
printf '1 process x %d threads: %10.1f img/s (last epoch)\n' "$threads" "$single"
printf '%d ranks x 1 thread:     %10.1f img/s (last epoch)   speed-up %.2f\n' "$ranks" "$parallel" \
  "$(awk -v a="$parallel" -v b="$single" 'BEGIN {print a / b}')"
# The ranks' communication, as train logs it at each epoch's end (rank 0's view).
grep -E '^(data parallel|communication)' "$work/ranks.log" || true
