#!/usr/bin/env bash
# Downloads (here, on a machine with apt and network) the Debian packages that
# scripts/gpu_check.sh needs on the GPU machine, whose image has CUDA, cuDNN and a compiler
# but maybe not arcgrad's C++ libraries, and which cannot download anything itself.
#
#   scripts/gpu_fetch_deps.sh            # -> gpu_carry/debs/<package>.deb
#
# gpu_carry/ is git-ignored; pass it to the device tool's `carry` so it travels with the
# checkout. gpu_check.sh unpacks (dpkg -x, never installs) only the packages whose files the
# GPU machine lacks, into /tmp/ag_deps. About 15 MB. Rerunning replaces the files.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  libeigen3-dev                                                   # Eigen headers + CMake config
  libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread    # BLAS (cblas.h, libopenblas.so)
  libgfortran5 libquadmath0                                       # OpenBLAS's runtime needs
  doctest-dev libstb-dev nlohmann-json3-dev zlib1g-dev libcli11-dev  # headers
)

mkdir -p gpu_carry/debs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 777 "$tmp"  # apt's _apt user writes there
(cd "$tmp" && apt-get download "${packages[@]}")
for p in "${packages[@]}"; do
  # Plain names (no epochs, tildes or plus signs) travel and unpack without surprises.
  mv "$tmp/${p}_"*.deb "gpu_carry/debs/$p.deb"
done
ls -la gpu_carry/debs
