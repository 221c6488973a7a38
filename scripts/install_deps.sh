#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages arcgrad needs, only those that are missing.
# Idempotent; uses sudo when not root. CUDA (nvcc, cuBLAS, cuDNN) is optional and never
# installed here: the build finds it under /usr/local/cuda when present.
#   scripts/install_deps.sh          # build, test and run
#   scripts/install_deps.sh --fuzz   # also clang and libFuzzer, for -DAG_FUZZ=ON (tests/fuzz/)
set -euo pipefail

packages=(
  build-essential cmake pkg-config     # compiler and build
  libeigen3-dev libopenblas-dev        # CPU math
  doctest-dev                          # tests
  libstb-dev zlib1g-dev                # image decoding, gzip'd IDX files
  nlohmann-json3-dev                   # JSON (configs, safetensors headers)
  libcli11-dev                         # command-line flags (apps/lib/flags.cpp)
  gnuplot-nox                          # PNG plots
  libonnx-dev libprotobuf-dev          # ONNX export (export_onnx, CMake option AG_ONNX)
  libopencv-dnn-dev                    # the ONNX round-trip test's independent runtime
  libopenmpi-dev openmpi-bin           # data-parallel training (AG_USE_MPI) and its mpirun tests
  dataset-fashion-mnist                # the main job's fallback data set
)
if [ "${1:-}" = "--fuzz" ]; then
  packages+=(clang libclang-rt-dev libomp-dev)  # libFuzzer and the sanitizers of Debian's clang
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
echo "install_deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
