#!/usr/bin/env bash
# scripts/reproduce_full.sh without training anything (--dry-run, with a stand-in train that
# fails if it is ever called): the runs each part lists, their folders and flags; a finished
# run skipped, a stopped one resumed from its checkpoint; bad arguments refused.
#   tests/test_reproduce_full.sh scripts/reproduce_full.sh
set -euo pipefail
script="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

mkdir -p "$tmp/build" "$tmp/runs"
printf '#!/bin/sh\necho "train must not run in a dry run" >&2\nexit 1\n' > "$tmp/build/train"
chmod +x "$tmp/build/train"
runs="$(cd "$tmp/runs" && pwd)"  # the script prints the root resolved
dry() { "$script" --dry-run --build "$tmp/build" --root "$tmp/runs" --cifar10 "$tmp/c10" --cifar100 "$tmp/c100" "$@"; }
# expect_run OUTPUT FOLDER [FLAG]: FOLDER is listed to run, its train command carrying FLAG.
expect_run() {
  grep -q -x "run      $runs/$2" <<< "$1" || fail "no run of $2 in:"$'\n'"$1"
  if [ $# -ge 3 ]; then
    grep -A1 -x "run      $runs/$2" <<< "$1" | tail -n 1 | grep -q -e "$3" || fail "$2 without '$3'"
  fi
}
count_runs() { grep -c '^run ' <<< "$1" || true; }

out="$(dry paper)"
[ "$(count_runs "$out")" = 9 ] || fail "paper: 9 runs expected, got $(count_runs "$out")"
expect_run "$out" e15/cifar100/resnet20/ce/seed1 "--loss ce --precision fp32 --optimizer sgd"
expect_run "$out" e15/cifar100/resnet20/arcface_s1_m0.1/seed2 "--loss arcface --precision fp32 --s 1 --m 0.1"
expect_run "$out" e15/cifar100/resnet20/arcface_s16_m0.1/seed3 "--data-dir $tmp/c100"
grep -q "dry run, nothing trained or written" <<< "$out" || fail "no dry-run line"

# A finished run is skipped, a stopped one (a checkpoint, no campaign.done) resumed.
mkdir -p "$runs/e15/cifar100/resnet20/ce/seed1" "$runs/e15/cifar100/resnet20/ce/seed2"
touch "$runs/e15/cifar100/resnet20/ce/seed1/campaign.done" "$runs/e15/cifar100/resnet20/ce/seed2/checkpoint.safetensors"
out="$(dry paper)"
grep -q -x "done     $runs/e15/cifar100/resnet20/ce/seed1" <<< "$out" || fail "finished run not skipped"
[ "$(count_runs "$out")" = 8 ] || fail "paper after one finished run: 8 runs expected"
expect_run "$out" e15/cifar100/resnet20/ce/seed2 " --resume$"
expect_run "$out" e15/cifar100/resnet20/ce/seed3
if grep -A1 -x "run      $runs/e15/cifar100/resnet20/ce/seed3" <<< "$out" | grep -q -e "--resume"; then
  fail "a run without a checkpoint resumed"
fi

# The other parts: folders name every way a run departs from the plain recipe.
out="$(dry msweep)"
[ "$(count_runs "$out")" = 4 ] || fail "msweep: 4 runs expected"
expect_run "$out" e15/cifar100/resnet20/arcface_s16_m0/seed1 "--s 16 --m 0 "
expect_run "$out" e15/cifar100/resnet20/arcface_s16_m0.5/seed1
expect_run "$(dry cutout10)" e100/cifar10/resnet20/ce_cutout16/seed1 "--cutout 16"
expect_run "$(dry cutout10)" e100/cifar10/resnet20/arcface_s16_m0.1_cutout16/seed1 "--cutout 16"
expect_run "$(dry cutout200)" e200/cifar10/resnet20/ce_cutout16/seed1 "--epochs 200"
expect_run "$(dry bf16)" e15/cifar100/resnet20/ce_bf16/seed1 "--precision bf16"
expect_run "$(dry --cifar100-jpeg "$tmp/j" jpeg)" e15/cifar100/resnet20/ce_jpeg75/seed1 "--data-dir $tmp/j"
if dry long10 | grep -q -e "--cutout 16"; then fail "long10 trains with Cutout"; fi
# Backbones: 5 epochs on the CPU, 30 on CUDA, the device passed to train unchanged.
expect_run "$(dry --backbones mobilenetv2 backbones)" e5/cifar100/mobilenetv2/ce/seed1 "--device cpu"
out="$(dry --device cuda:1 --backbones resnet18:width=0.5 backbones)"
[ "$(count_runs "$out")" = 2 ] || fail "backbones with one model: 2 runs expected"
expect_run "$out" e30/cifar100/resnet18_width_0.5/arcface_s16_m0.1/seed1 "--device cuda:1"

# Bad arguments: one line naming what is wrong, exit status 2.
status=0
err="$("$script" --dry-run --build "$tmp/build" --root "$tmp/runs" nonsense 2>&1)" || status=$?
[ "$status" = 2 ] || fail "unknown part: exit status $status, not 2"
grep -q "unknown argument 'nonsense'" <<< "$err" || fail "unknown part not named: $err"
status=0
err="$("$script" --dry-run --build "$tmp/nobuild" --root "$tmp/runs" paper 2>&1)" || status=$?
[ "$status" = 1 ] || fail "missing train: exit status $status, not 1"
grep -q "not found; build first" <<< "$err" || fail "missing train not reported: $err"
echo "reproduce_full.sh: all checks passed"
