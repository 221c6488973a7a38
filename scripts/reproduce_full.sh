#!/usr/bin/env bash
# The full-data campaign of docs/results.md: the paper's question answered on full CIFAR
# with error bars, the headline runs, the margin sweep and the paper's backbones. Every run
# gets its own folder under a run root outside the repository; rerunning the script skips
# finished runs and resumes stopped ones from their checkpoints (exactly, on the CPU), so a
# campaign of many hours can be carried out in parts, killed at any moment and continued.
#
#   scripts/reproduce_full.sh [options] [PART ...]
#
# PARTs, run in the order given (default: paper msweep headline backbones):
#   paper      ResNet-20, CIFAR-100, 15 epochs: cross-entropy, ArcFace s=1 m=0.1 (the
#              paper's setting), ArcFace s=16 m=0.1; seeds 1 2 3 (seed 1 of all three first)
#   msweep     ResNet-20, CIFAR-100, 15 epochs, ArcFace s=16, m = 0 0.1 0.3 0.5, seed 1
#              (the paper's Figure 2; m=0.1 is the paper part's run, not trained twice)
#   headline   ResNet-20, 60 epochs on CIFAR-100 and 30 on CIFAR-10: cross-entropy on both,
#              then ArcFace s=16 m=0.1 on both, seed 1
#   long10     ResNet-20, CIFAR-10, 100 epochs, seed 1: cross-entropy (whether a longer
#              schedule reaches 90% on the JPEG copy of CIFAR-10, docs/results.md), then
#              ArcFace s=16 m=0.1 with the same recipe. Not in the default list (about
#              3 h per run on 2 cores).
#   backbones  MobileNetV2, EfficientNet-B0 and ResNet18 at full width, CIFAR-100:
#              cross-entropy and ArcFace s=16 m=0.1, seed 1 (--backbone-epochs, default 5 on
#              the CPU, 30 on CUDA; --backbones picks the models)
#   bf16       the paper part's cross-entropy run (seed 1) again with bfloat16 convolutions
#              and linear layers (train --precision bf16, AVX512-BF16): the same seed and
#              recipe, so its top-1 against the fp32 run's is bf16's accuracy cost. Not in
#              the default list (2 h or more on 2 cores); name it to run it.
#   cutout10   long10 again with Cutout 16 (train --cutout 16: one 16x16 square of each
#              training image set to the mean, DeVries & Taylor 2017): the one regulariser tried
#              against long10's overfitting (test loss lowest at epoch 88 of 100) for the 90%
#              target on the JPEG CIFAR-10. Not in the default list (about 2.3 h per run).
#   cutout200  cutout10 with 200 epochs (He et al. 2016 train 164): the schedule's length,
#              the last standard lever for the 90% target once Cutout stopped the
#              overfitting; cross-entropy, then ArcFace s=16 m=0.1 with the same recipe. Not
#              in the default list (about 5 h per run on 2 cores).
#   jpeg       the paper part's cross-entropy run (seed 1) on CIFAR-100 passed once through
#              JPEG quality 75, 4:2:0 (--cifar100-jpeg; scripts/jpeg_roundtrip_cifar100.py
#              makes it), as the CIFAR-10 of ../shared/data was: its top-1 against the
#              lossless run's is what that re-encoding costs. Not in the default list.
#
# Options:
#   --build DIR           build folder with the train app (default: build)
#   --root DIR            run root (default: $ARCGRAD_RUNS or ~/arcgrad-runs)
#   --cifar100 DIR        CIFAR-100 binary folder (default: ../shared/data/cifar-100-binary)
#   --cifar10 DIR         CIFAR-10 binary folder (default: $ARCGRAD_DATA/cifar-10-batches-bin)
#   --cifar100-jpeg DIR   the jpeg part's CIFAR-100 (default: $ARCGRAD_DATA/cifar-100-jpeg75)
#   --device DEV          cpu (default), cuda or cuda:N: passed to train unchanged
#   --threads N           compute threads per run (default 2)
#   --backbone-epochs N   epochs of the backbone runs
#   --backbones LIST      comma-separated model specs (default mobilenetv2,efficientnet_b0,resnet18)
#   --dry-run             print what would run (and what is done), train nothing
#   --report              only write the results tables from the run folders
# After every run (and with --report) the tables are regenerated: ROOT/results.md holds one
# row per configuration with mean +- std over the seeds that finished (build/campaign_report).
#
# Each run folder holds train's own files (config.json, metrics.csv, checkpoint, plots)
# plus campaign.log: one line per start/stop of a part of the run with the date, wall time,
# exit status and the machine's load average (a busy machine makes wall times longer, not
# accuracies different). A finished run has campaign.done; a diverged one campaign.diverged.
# Exit status: 0 all requested runs finished; 1 a run failed; 130 stopped by a signal.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
build="build"
root="${ARCGRAD_RUNS:-$HOME/arcgrad-runs}"
cifar100="$repo/../shared/data/cifar-100-binary"
cifar10="${ARCGRAD_DATA:-$repo/datasets}/cifar-10-batches-bin"
cifar100_jpeg="${ARCGRAD_DATA:-$repo/datasets}/cifar-100-jpeg75"
device="cpu"
threads=2
backbone_epochs=""
backbones="mobilenetv2,efficientnet_b0,resnet18"
dry_run=0
report_only=0
parts=()
all_parts=(paper msweep headline long10 cutout10 cutout200 backbones bf16 jpeg)  # each a part_NAME below

usage() { awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"; exit 2; }  # the header
need() { [ $# -ge 2 ] || { echo "reproduce_full: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) need "$@"; build="$2"; shift 2 ;;
    --root) need "$@"; root="$2"; shift 2 ;;
    --cifar100) need "$@"; cifar100="$2"; shift 2 ;;
    --cifar10) need "$@"; cifar10="$2"; shift 2 ;;
    --cifar100-jpeg) need "$@"; cifar100_jpeg="$2"; shift 2 ;;
    --device) need "$@"; device="$2"; shift 2 ;;
    --threads) need "$@"; threads="$2"; shift 2 ;;
    --backbone-epochs) need "$@"; backbone_epochs="$2"; shift 2 ;;
    --backbones) need "$@"; backbones="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --report) report_only=1; shift ;;
    -h|--help) usage ;;
    *)
      if [[ " ${all_parts[*]} " != *" $1 "* ]]; then
        echo "reproduce_full: unknown argument '$1' (parts: ${all_parts[*]}; --help)" >&2
        exit 2
      fi
      parts+=("$1"); shift ;;
  esac
done
[ ${#parts[@]} -gt 0 ] || parts=(paper msweep headline backbones)
if [ -z "$backbone_epochs" ]; then
  case "$device" in cuda*) backbone_epochs=30 ;; *) backbone_epochs=5 ;; esac
fi
train="$build/train"
report="$build/campaign_report"
[ -x "$train" ] || { echo "reproduce_full: $train not found; build first" >&2; exit 1; }
mkdir -p "$root"
root="$(cd "$root" && pwd)"

# The recipe shared by every run: SGD with Nesterov momentum 0.9, one-cycle learning rate
# peaking at 0.1, weight decay 5e-4 (not on biases and batch-norm parameters), batch 128,
# random crop (padding 4) + horizontal flip, the full training and test sets.
recipe=(--optimizer sgd --nesterov --momentum 0.9 --lr 0.1 --schedule onecycle --wd 5e-4
        --batch-size 128 --augment --train-subset 0 --test-subset 0
        --threads "$threads" --workers 1 --device "$device" --progress lines)

write_report() {
  if [ -x "$report" ]; then
    "$report" --root "$root" --out "$root/results.md" >/dev/null || echo "reproduce_full: report failed" >&2
  fi
}

# run DATASET DATA_DIR MODEL EPOCHS SEED LOSS [S M]: one run, skipped when finished.
# $precision (fp32 unless a part sets it) goes to train and, when not fp32, into the folder;
# $data_tag (set by a part that trains on a variant of the data) goes into the folder;
# $cutout (0 unless a part sets it) goes to train and, when not 0, into the folder.
precision=fp32
data_tag=""
cutout=0
run() {
  local dataset="$1" data_dir="$2" model="$3" epochs="$4" seed="$5" loss="$6" s="${7:-}" m="${8:-}"
  local slug="$loss" run_args=(--loss "$loss" --precision "$precision")
  if [ "$loss" != ce ]; then slug="${loss}_s${s}_m${m}"; run_args+=(--s "$s" --m "$m"); fi
  if [ "$precision" != fp32 ]; then slug="${slug}_$precision"; fi
  if [ -n "$data_tag" ]; then slug="${slug}_$data_tag"; fi
  if [ "$cutout" != 0 ]; then slug="${slug}_cutout$cutout"; run_args+=(--cutout "$cutout"); fi
  local dir="$root/e$epochs/$dataset/${model//[:=,]/_}/$slug/seed$seed"
  if [ -f "$dir/campaign.done" ] || [ -f "$dir/campaign.diverged" ]; then
    echo "done     $dir"
    return 0
  fi
  local args=(--dataset "$dataset" --data-dir "$data_dir" --model "$model" --epochs "$epochs"
              --seed "$seed" "${run_args[@]}" "${recipe[@]}" --out "$dir")
  if [ -f "$dir/checkpoint.safetensors" ]; then args+=(--resume); fi
  echo "run      $dir"
  if [ "$dry_run" = 1 ]; then echo "         $train ${args[*]}"; return 0; fi
  if [ ! -d "$data_dir" ]; then
    echo "reproduce_full: no data for $dataset in $data_dir (see --cifar10/--cifar100)" >&2
    return 1
  fi
  mkdir -p "$dir"
  local start status=0
  start=$(date +%s)
  "$train" "${args[@]}" > >(tee -a "$dir/train.log") 2>&1 || status=$?
  printf '%s wall_s=%d status=%d load=%s resumed=%s\n' "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" \
    "$status" "$(cut -d' ' -f1-3 /proc/loadavg)" "$([ "${args[-1]}" = --resume ] && echo yes || echo no)" \
    >> "$dir/campaign.log"
  case "$status" in
    0) touch "$dir/campaign.done" ;;
    3) touch "$dir/campaign.diverged" ;;
    130|137|143) echo "reproduce_full: stopped; rerun to continue" >&2; exit 130 ;;
    *) echo "reproduce_full: run failed (status $status): $dir" >&2; exit 1 ;;
  esac
  write_report
}

part_paper() {
  for seed in 1 2 3; do
    run cifar100 "$cifar100" resnet20 15 "$seed" ce
    run cifar100 "$cifar100" resnet20 15 "$seed" arcface 1 0.1
    run cifar100 "$cifar100" resnet20 15 "$seed" arcface 16 0.1
  done
}
part_msweep() {
  for m in 0 0.1 0.3 0.5; do run cifar100 "$cifar100" resnet20 15 1 arcface 16 "$m"; done
}
part_headline() {
  # Cross-entropy on both sets first: the targets are its, and ArcFace must share the recipe,
  # so a recipe that misses a target is found before ArcFace's hours are spent on it.
  run cifar100 "$cifar100" resnet20 60 1 ce
  run cifar10 "$cifar10" resnet20 30 1 ce
  run cifar100 "$cifar100" resnet20 60 1 arcface 16 0.1
  run cifar10 "$cifar10" resnet20 30 1 arcface 16 0.1
}
part_long10() {
  run cifar10 "$cifar10" resnet20 100 1 ce
  run cifar10 "$cifar10" resnet20 100 1 arcface 16 0.1
}
part_cutout10() {
  cutout=16
  run cifar10 "$cifar10" resnet20 100 1 ce
  run cifar10 "$cifar10" resnet20 100 1 arcface 16 0.1
  cutout=0
}
part_cutout200() {
  cutout=16
  run cifar10 "$cifar10" resnet20 200 1 ce
  run cifar10 "$cifar10" resnet20 200 1 arcface 16 0.1
  cutout=0
}
part_backbones() {
  local model
  for model in ${backbones//,/ }; do
    run cifar100 "$cifar100" "$model" "$backbone_epochs" 1 ce
    run cifar100 "$cifar100" "$model" "$backbone_epochs" 1 arcface 16 0.1
  done
}

part_bf16() {
  precision=bf16
  run cifar100 "$cifar100" resnet20 15 1 ce
  precision=fp32
}

part_jpeg() {
  data_tag=jpeg75
  run cifar100 "$cifar100_jpeg" resnet20 15 1 ce
  data_tag=""
}

for part in "${all_parts[@]}"; do
  declare -F "part_$part" >/dev/null || { echo "reproduce_full: no function part_$part" >&2; exit 1; }
done

trap 'echo "reproduce_full: interrupted; rerun to continue" >&2; exit 130' INT TERM
if [ "$report_only" = 1 ]; then
  [ -x "$report" ] || { echo "reproduce_full: $report not found; build first" >&2; exit 1; }
  "$report" --root "$root" --out "$root/results.md"
  exit 0
fi
for part in "${parts[@]}"; do "part_$part"; done
if [ "$dry_run" = 1 ]; then
  echo "reproduce_full: dry run, nothing trained or written"
  exit 0
fi
write_report
echo "reproduce_full: all requested runs finished; tables in $root/results.md"
