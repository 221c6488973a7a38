#!/usr/bin/env bash
# The GPU check: one call on a GPU machine that builds arcgrad with CUDA (Release), runs the
# GPU test suites, runs the GPU benchmark and prints a summary table. Written for the
# device tool's H200 machines (one GPU, 16 cores, no network) and sized to finish in about
# 9 minutes there (training throughput against PyTorch and a short CIFAR-10 run included); it works on any Linux machine with a GPU, nvcc and cuDNN.
#
#   scripts/gpu_check.sh
#
# From the device tool (gpu_carry/ is git-ignored, so it must be carried; fill it first with
# scripts/gpu_fetch_deps.sh on a machine with apt, then scripts/gpu_prepare_carry.sh):
#   run(command="scripts/gpu_check.sh", carry=["gpu_carry"], timeout_s=590)
#
# Environment:
#   OUT              if set, logs, bench_gpu.json and summary.txt are written there
#   AG_GPU_ALL_TESTS =1 also builds and runs every CPU suite with the CUDA build (+2-3 min)
#   JOBS             parallel build jobs (default: all cores)
#   AG_GPU_BUILD_DIR build folder (default build-gpu)
#   AG_GPU_MODELS    models of the training-throughput comparison (default: resnet18 mobilenetv2 efficientnet_b0)
#   AG_GPU_EPOCHS    epochs of the real-data CIFAR-10 run (default 10; each run is cut at its time budget)
#   AG_GPU_STAGES    comma-separated stages after the build (default tests,bench,train_bench,real)
#   AG_GPU_BUDGET    seconds from the start after which the real-data runs are cut (default 520)
# Exit status: 0 when the build, every GPU test and the benchmark succeeded.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="${OUT:-}"
[ -n "$out" ] && mkdir -p "$out"
jobs="${JOBS:-$(nproc)}"
build="${AG_GPU_BUILD_DIR:-build-gpu}"
status=0
summary=()
note() { echo "[gpu_check] $*"; }
row() { summary+=("$(printf '%-26s %-8s %s' "$1" "$2" "$3")"); }
save() { [ -n "$out" ] && cp "$1" "$out/" 2>/dev/null; return 0; }
t_start=$SECONDS
stages=",${AG_GPU_STAGES:-tests,bench,train_bench,real},"
stage() { [[ "$stages" == *",$1,"* ]]; }  # whether a stage was asked for
budget="${AG_GPU_BUDGET:-520}"
rm -f /tmp/bench_gpu.txt /tmp/ag_train_bench.txt  # left by an earlier call on the same machine

# ------------------------------------------------------------------ the machine
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
note "GPU: ${gpu:-none found by nvidia-smi}"
note "nvcc: $(/usr/local/cuda/bin/nvcc --version 2>/dev/null | tail -1 || echo missing)"
row "machine" "" "${gpu:-no nvidia-smi}; $(nproc) cores"

# ------------------------------------------------------------------ build dependencies
# The image may lack arcgrad's C++ libraries and cannot download them: unpack the carried
# Debian packages (never install them) for whatever is missing.
prefix=/tmp/ag_deps
cmake_args=()
unpack() {  # package...
  for p in "$@"; do
    if [ -f "gpu_carry/debs/$p.deb" ]; then dpkg -x "gpu_carry/debs/$p.deb" "$prefix"; else note "missing gpu_carry/debs/$p.deb"; fi
  done
}
carried=()
[ -f /usr/include/eigen3/Eigen/Core ] || { unpack libeigen3-dev; carried+=(eigen); }
[ -f /usr/include/doctest/doctest.h ] || { unpack doctest-dev; carried+=(doctest); }
[ -f /usr/include/stb/stb_image.h ] || { unpack libstb-dev; carried+=(stb); }
[ -f /usr/include/nlohmann/json.hpp ] || { unpack nlohmann-json3-dev; carried+=(nlohmann-json); }
[ -f /usr/include/CLI/CLI.hpp ] || { unpack libcli11-dev; carried+=(cli11); }
if [ ! -f /usr/include/zlib.h ]; then
  unpack zlib1g-dev
  carried+=(zlib)
  # The package's libz.so points at Debian's file name; link the machine's own runtime.
  libz=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
  [ -n "$libz" ] && ln -sf "$libz" "$prefix/usr/lib/x86_64-linux-gnu/libz.so"
fi
blas_dir=$prefix/usr/lib/x86_64-linux-gnu/openblas-pthread
have_cblas=0
for h in /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h /usr/include/openblas/cblas.h /usr/include/cblas.h; do
  [ -f "$h" ] && have_cblas=1
done
if [ $have_cblas -eq 0 ]; then
  unpack libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread
  carried+=(openblas)
  cmake_args+=(-DCBLAS_INCLUDE_DIR="$prefix/usr/include/x86_64-linux-gnu/openblas-pthread")
  export LD_LIBRARY_PATH="$blas_dir:${LD_LIBRARY_PATH:-}"
  if ! ldconfig -p | grep -q 'libgfortran.so.5 '; then
    unpack libgfortran5 libquadmath0
    export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH"
  fi
fi
if [ ${#carried[@]} -gt 0 ]; then
  cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix/usr"
               -DCMAKE_LIBRARY_PATH="$blas_dir;$prefix/usr/lib/x86_64-linux-gnu"
               -DCMAKE_CXX_FLAGS="-isystem $prefix/usr/include"
               -DCMAKE_CUDA_FLAGS="-isystem $prefix/usr/include")
fi
note "carried libraries used: ${carried[*]:-none}"
row "libraries from gpu_carry" "" "${carried[*]:-none needed}"

# ------------------------------------------------------------------ cuDNN
cudnn=""
for h in /usr/local/cuda/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h; do
  [ -f "$h" ] && { cudnn="system ($h)"; break; }
done
if [ -z "$cudnn" ]; then
  # PyTorch's wheel ships cuDNN as the Python package nvidia-cudnn (include/ and lib/).
  py_cudnn=$(python3 -c 'import nvidia.cudnn as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])' 2>/dev/null)
  if [ ! -f "$py_cudnn/include/cudnn.h" ]; then
    # Not at nvidia/cudnn/include (should a wheel lay it out otherwise): look below nvidia/
    # for include/cudnn.h and take the folder above it (its lib/ beside include/).
    nv=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null)
    h=""
    [ -n "$nv" ] && h=$(find "$nv" -path '*/include/cudnn.h' 2>/dev/null | head -1)
    py_cudnn=""
    [ -n "$h" ] && py_cudnn=$(dirname "$(dirname "$h")")
  fi
  if [ -n "$py_cudnn" ] && [ -f "$py_cudnn/include/cudnn.h" ]; then
    cudnn="python nvidia-cudnn ($py_cudnn)"
    cmake_args+=(-DCUDNN_ROOT="$py_cudnn")
    export LD_LIBRARY_PATH="$py_cudnn/lib:${LD_LIBRARY_PATH:-}"
  fi
fi
note "cuDNN: ${cudnn:-NOT FOUND}"
row "cuDNN" "$([ -n "$cudnn" ] && echo found || echo MISSING)" "${cudnn:-none: the CUDA configure will fail}"

# ------------------------------------------------------------------ build
targets=()
for f in tests/test_cuda_*.cpp tests/test_device_api.cpp; do targets+=("$(basename "$f" .cpp)"); done
targets+=(bench_gpu train)
[ "${AG_GPU_ALL_TESTS:-0}" = 1 ] && targets=(all)
t0=$SECONDS
{
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DAG_USE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${cmake_args[@]}" &&
    cmake --build "$build" -j "$jobs" --target "${targets[@]}"
} >/tmp/ag_build.log 2>&1
build_rc=$?
save /tmp/ag_build.log
if [ $build_rc -ne 0 ]; then
  tail -60 /tmp/ag_build.log
  row "build (Release, CUDA)" "FAILED" "$((SECONDS - t0)) s; see ag_build.log"
  status=1
else
  grep -E "arcgrad: CUDA backend" /tmp/ag_build.log
  row "build (Release, CUDA)" "ok" "$((SECONDS - t0)) s, ${#targets[@]} targets"
fi

# ------------------------------------------------------------------ GPU tests
if [ $build_rc -eq 0 ] && stage tests; then
  t0=$SECONDS
  filter='^(test_cuda_|test_device_api)'
  [ "${AG_GPU_ALL_TESTS:-0}" = 1 ] && filter='.'
  ctest --test-dir "$build" -R "$filter" --output-on-failure -j 4 --timeout 300 2>&1 | tee /tmp/ag_ctest.txt
  tests_rc=${PIPESTATUS[0]}
  result=$(grep -E "tests passed|tests failed" /tmp/ag_ctest.txt | tail -1)
  # ctest keeps every test's full output (passing ones too) in LastTest.log.
  cp "$build/Testing/Temporary/LastTest.log" /tmp/ag_tests.log 2>/dev/null || cp /tmp/ag_ctest.txt /tmp/ag_tests.log
  save /tmp/ag_tests.log
  # A suite that skipped everything would pass silently: count the skip messages.
  skipped=$(grep -c "skipped: no CUDA device" /tmp/ag_tests.log || true)
  if [ "$tests_rc" -ne 0 ] || [ "$skipped" -gt 0 ]; then status=1; fi
  row "GPU tests" "$([ "$tests_rc" -eq 0 ] && [ "$skipped" -eq 0 ] && echo ok || echo FAILED)" \
    "${result:-no result}; $skipped skipped for want of a device; $((SECONDS - t0)) s"
fi

# ------------------------------------------------------------------ benchmarks
if [ $build_rc -eq 0 ] && stage bench; then
  t0=$SECONDS
  json_arg=()
  [ -n "$out" ] && json_arg=(--json "$out/bench_gpu.json")
  timeout 240 "$build/bench_gpu" "${json_arg[@]}" 2>&1 | tee /tmp/bench_gpu.txt
  bench_rc=${PIPESTATUS[0]}
  save /tmp/bench_gpu.txt
  [ "$bench_rc" -ne 0 ] && status=1
  row "bench_gpu" "$([ "$bench_rc" -eq 0 ] && echo ok || echo "FAILED($bench_rc)")" "$((SECONDS - t0)) s"
fi

# ------------------------------------------------------------------ training vs PyTorch
# Training images/s at batch 128 on random 32x32 data (forward, cross-entropy, backward,
# SGD step; float32 without TF32 on both sides), arcgrad's bench_gpu --train-model against
# gpu_carry/torch_peer.py bench, then a short real-data CIFAR-10 run of each with the same
# recipe. Every run has a timeout so that the whole script stays near 9 minutes.
peer=gpu_carry/torch_peer.py
have_torch=0
if [ -f "$peer" ] && python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  have_torch=1
fi
note "PyTorch peer: $([ $have_torch = 1 ] && python3 -c 'import torch; print(torch.__version__)' || echo "unavailable (no $peer or no CUDA torch)")"
json_field() {  # field < text: the field of the last JSON line of the text
  python3 -c 'import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("{")]
v = json.loads(lines[-1]).get(sys.argv[1]) if lines else None
print("" if v is None else (round(v, 1) if isinstance(v, float) else v))' "$1" 2>/dev/null
}
ratio() { python3 -c 'import sys; a, b = sys.argv[1:]; print(f"{float(a) / float(b):.2f}" if a and b else "-")' "$1" "$2" 2>/dev/null || echo "-"; }
train_rows=()
if [ $build_rc -eq 0 ] && stage train_bench; then
  for model in ${AG_GPU_MODELS:-resnet18 mobilenetv2 efficientnet_b0}; do
    t0=$SECONDS
    ours=$(timeout 150 "$build/bench_gpu" --train-model "$model" --batch 128 --steps 20 2>&1 | tee -a /tmp/ag_train_bench.txt)
    ours_ips=$(echo "$ours" | json_field images_per_s)
    theirs_ips=""
    if [ $have_torch = 1 ]; then
      theirs=$(timeout 150 python3 "$peer" bench --model "$model" --batch 128 --precision fp32 --steps 20 --repeats 3 \
        --warmup 5 2>&1 | tee -a /tmp/ag_train_bench.txt)
      theirs_ips=$(echo "$theirs" | json_field images_per_s)
    fi
    [ -z "$ours_ips" ] && status=1
    train_rows+=("$(printf '%-16s %12s %12s %8s' "$model" "${ours_ips:-FAILED}" "${theirs_ips:--}" "$(ratio "$ours_ips" "$theirs_ips")")")
    note "$model: arcgrad ${ours_ips:-FAILED} img/s, PyTorch ${theirs_ips:--} img/s ($((SECONDS - t0)) s)"
  done
  save /tmp/ag_train_bench.txt
  row "training img/s vs PyTorch" "$([ ${#train_rows[@]} -gt 0 ] && echo done || echo FAILED)" "batch 128, fp32; table below"
fi

# ------------------------------------------------------------------ real-data run
# CIFAR-10 from the carried JPEG tarball, ResNet-18 with ArcFace (s 16, m 0.1), one-cycle
# schedule; the same recipe through torch_peer.py train. Each run gets what is left of a
# budget (AG_GPU_BUDGET, 520 s; at most 240 s per run); a cut-short arcgrad run reports
# its last finished epoch, a cut-short PyTorch run nothing. Both 10-epoch runs rarely fit
# after the other stages: a second call with AG_GPU_STAGES=real (the build folder is
# reused on a still-warm machine) gives them the whole budget.
epochs="${AG_GPU_EPOCHS:-10}"
real_rows=()
left() { local l=$((budget - (SECONDS - t_start))); [ $l -gt 240 ] && l=240; [ $l -lt 30 ] && l=30; echo $l; }
if [ $build_rc -eq 0 ] && stage real && [ -f gpu_carry/cifar-10-jpeg.tar.gz ]; then
  data_dir=/tmp/ag_cifar10
  rm -rf "$data_dir" /tmp/ag_run_cuda && mkdir -p "$data_dir"
  tar xzf gpu_carry/cifar-10-jpeg.tar.gz -C "$data_dir"
  limit=$(left)
  t0=$SECONDS
  timeout "$limit" "$build/train" --device cuda --dataset cifar10 --data-dir "$data_dir" --model resnet18 \
    --loss arcface --s 16 --m 0.1 --epochs "$epochs" --schedule onecycle --lr 0.1 --batch-size 128 \
    --workers "$(($(nproc) > 4 ? $(nproc) - 2 : 2))" --out /tmp/ag_run_cuda --progress lines --no-plots \
    >/tmp/ag_train_cuda.log 2>&1
  train_rc=$?
  wall=$((SECONDS - t0))
  save /tmp/ag_train_cuda.log
  [ -f /tmp/ag_run_cuda/metrics.jsonl ] && save /tmp/ag_run_cuda/metrics.jsonl
  last=$(tail -1 /tmp/ag_run_cuda/metrics.jsonl 2>/dev/null)
  acc=$(echo "$last" | python3 -c 'import json, sys
r = json.loads(sys.stdin.read()); t, e = r["test_top1"], r["epoch"]
print(f"{100 * t if t <= 1 else t:.2f}% after epoch {e}")' 2>/dev/null)
  case $train_rc in
    0) verdict=ok ;;
    124) verdict="cut at ${limit}s" ;;
    *) verdict="FAILED($train_rc)"; status=1; tail -20 /tmp/ag_train_cuda.log ;;
  esac
  real_rows+=("$(printf '%-10s %-16s %-26s %s' arcgrad "$verdict" "${acc:-none}" "${wall} s wall")")
  if [ $have_torch = 1 ]; then
    limit=$(left)
    t0=$SECONDS
    timeout "$limit" python3 "$peer" train --model resnet18 --loss arcface --s 16 --m 0.1 --epochs "$epochs" \
      --batch 128 --lr 0.1 --precision fp32 --data gpu_carry/cifar-10-jpeg.tar.gz >/tmp/ag_torch_train.log 2>&1
    torch_rc=$?
    wall=$((SECONDS - t0))
    save /tmp/ag_torch_train.log
    tacc=$(json_field test_top1 </tmp/ag_torch_train.log)
    tsec=$(json_field train_seconds </tmp/ag_torch_train.log)
    real_rows+=("$(printf '%-10s %-16s %-26s %s' pytorch "$([ $torch_rc = 0 ] && echo ok || echo "rc $torch_rc")" \
      "${tacc:+$tacc% after $epochs epochs}" "${wall} s wall (${tsec:-?} s training)")")
  fi
  row "real-data run (CIFAR-10)" "$verdict" "resnet18 arcface s16 m0.1, $epochs epochs; table below"
elif stage real; then
  row "real-data run (CIFAR-10)" "skipped" "no build or no gpu_carry/cifar-10-jpeg.tar.gz (scripts/gpu_prepare_carry.sh)"
fi

# ------------------------------------------------------------------ summary
{
  echo
  echo "==================== arcgrad GPU check: summary ===================="
  printf '%-26s %-8s %s\n' "stage" "result" "details"
  for line in "${summary[@]}"; do echo "$line"; done
  if [ -f /tmp/bench_gpu.txt ]; then
    echo
    echo "bench_gpu (time per call, rate, % of the measured ceiling: sgemm for GEMMs, device copy otherwise)"
    grep -E "^  |^ceilings|^elementwise|^reductions|^optimizer|^host|^allocator" /tmp/bench_gpu.txt
  fi
  if [ ${#train_rows[@]} -gt 0 ]; then
    echo
    echo "training images/s, batch 128, float32 (arcgrad bench_gpu --train-model vs torch_peer.py bench)"
    printf '%-16s %12s %12s %8s\n' model arcgrad pytorch ratio
    for line in "${train_rows[@]}"; do echo "$line"; done
  fi
  if [ ${#real_rows[@]} -gt 0 ]; then
    echo
    echo "CIFAR-10, resnet18 + ArcFace (s 16, m 0.1), onecycle, batch 128, $epochs epochs"
    printf '%-10s %-16s %-26s %s\n' peer result "test top-1" time
    for line in "${real_rows[@]}"; do echo "$line"; done
  fi
  echo
  echo "total $((SECONDS - t_start)) s; exit status $status"
} | tee /tmp/ag_summary.txt
[ -n "$out" ] && cp /tmp/ag_summary.txt "$out/summary.txt"
cd "$root"
exit $status
