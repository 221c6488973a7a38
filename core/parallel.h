// Threading: OpenMP for everything, elementwise/reduction loops, per-sample convolution
// work and the GEMMs (core/cpu/gemm_util.h splits a product into single-threaded OpenBLAS
// calls; OpenBLAS's own pool is pinned to one thread). Thread count comes from set_num_threads() (the
// apps' --threads flag) or the AG_NUM_THREADS environment variable.
#pragma once

#include <cstdint>

namespace ag {

// Loops smaller than this run on one thread: spawning threads costs more than they save.
constexpr int64_t kParallelThreshold = 32768;

void set_num_threads(int n);
int num_threads();

}  // namespace ag
