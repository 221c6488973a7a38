#!/usr/bin/env bash
# Fills gpu_carry/ (git-ignored; the device tool's `carry` takes it to the GPU machine) with
# what scripts/gpu_check.sh's PyTorch comparison and real-data run need besides the Debian
# packages of scripts/gpu_fetch_deps.sh: the PyTorch peer script and the CIFAR-10 JPEG
# tarball (about 19 MB; the whole folder must stay under the tool's 64 MiB).
#
#   scripts/gpu_prepare_carry.sh     # -> gpu_carry/torch_peer.py, gpu_carry/cifar-10-jpeg.tar.gz
#
# Sources (override with the environment): TORCH_PEER=/work/shared/tools/torch_peer.py,
# CIFAR_TARBALL=/work/shared/data/cifar-10-jpeg.tar.gz. Rerunning replaces the files.
set -euo pipefail
cd "$(dirname "$0")/.."
peer="${TORCH_PEER:-/work/shared/tools/torch_peer.py}"
tarball="${CIFAR_TARBALL:-/work/shared/data/cifar-10-jpeg.tar.gz}"
for f in "$peer" "$tarball"; do
  [ -f "$f" ] || { echo "gpu_prepare_carry: $f not found" >&2; exit 1; }
done
mkdir -p gpu_carry
cp "$peer" gpu_carry/torch_peer.py
cp "$tarball" gpu_carry/cifar-10-jpeg.tar.gz
chmod u+w gpu_carry/torch_peer.py gpu_carry/cifar-10-jpeg.tar.gz
du -sh gpu_carry
size_kb=$(du -sk gpu_carry | cut -f1)
[ "$size_kb" -lt $((60 * 1024)) ] || { echo "gpu_prepare_carry: gpu_carry is ${size_kb} KiB, over the carry limit" >&2; exit 1; }
ls -la gpu_carry
