#!/usr/bin/env bash
# The CPU-scale reproduction of the paper recorded in docs/results.md: cross-entropy vs
# ArcFace (the paper's s = 1, m = 0.1, and s = 16) for a ResNet-20 and a MobileNetV2 at
# width 0.5 on CIFAR-10 and CIFAR-100, and a sweep of the margin m. Each run trains on a
# seeded random subset (4,000 images, 3 epochs) and is evaluated on 2,000 test images, so
# the whole script takes about 1.5 hours on 2 cores.
#
#   scripts/reproduce_cpu.sh BUILD_DIR CIFAR10_DIR CIFAR100_DIR [OUT]
set -euo pipefail
build="$1"; c10="$2"; c100="$3"; out="${4:-runs/reproduce}"
common=(--train-subset 4000 --test-subset 2000 --subset random --epochs 3 --batch-size 128
        --lr 0.1 --schedule onecycle --threads 2 --workers 1 --seed 1)

"$build/sweep" --datasets cifar10,cifar100 --data-dirs "$c10,$c100" --models resnet20 \
  --losses ce,arcface --s-values 1,16 --m-values 0.1 --out "$out/resnet20" "${common[@]}"
"$build/sweep" --datasets cifar10,cifar100 --data-dirs "$c10,$c100" --models mobilenetv2:width=0.5 \
  --losses ce,arcface --s-values 1,16 --m-values 0.1 --out "$out/mobilenetv2" "${common[@]}"
"$build/sweep" --datasets cifar10 --data-dirs "$c10" --models resnet20 \
  --losses arcface --s-values 16 --m-values 0,0.1,0.3,0.6,1.0 --out "$out/m_sweep" "${common[@]}"
