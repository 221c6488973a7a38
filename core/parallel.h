// Threading: OpenMP for elementwise/reduction loops and per-sample convolution work,
// OpenBLAS's own threads inside GEMM. Thread count comes from set_num_threads() (the
// apps' --threads flag) or the AG_NUM_THREADS environment variable.
#pragma once

#include <cstdint>

namespace ag {

// Loops smaller than this run on one thread: spawning threads costs more than they save.
constexpr int64_t kParallelThreshold = 32768;

void set_num_threads(int n);
int num_threads();

}  // namespace ag
