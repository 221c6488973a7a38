// The loops around the dot-product weight gradients' register tiles (avx512/dot_weight.cpp
// in float32, avx512/dot_weight_bf16.cpp in bfloat16, avx512/dw_channels_last.cpp's work
// items; avx2/dot_weight.cpp): threads take chunks of samples into private accumulators,
// which are added up at the end; the 3x3 kernels go tile by tile, 3 output channels x the
// 9 taps of one input channel. Plain C++ (no intrinsics): shared by both vector targets.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu/conv/geom.h"
#include "core/cpu/gemm_util.h"

namespace ag::cpu::dot {

constexpr int kRows3 = 3;  // 3 x 9 accumulators + 3 G vectors + 1 X vector = 31 registers

// grad_w [size] = the sum over sample chunks [n0, n0 + ns) (per_chunk samples each, of n)
// of what chunk(acc, n0, ns) adds to a zeroed accumulator acc [size].
template <typename Chunk>
void sum_over_sample_chunks(float* grad_w, int64_t size, int64_t n, int64_t per_chunk, Chunk&& chunk) {
  const int64_t chunks = (n + per_chunk - 1) / per_chunk;
  std::vector<float*> partial(static_cast<size_t>(omp_get_max_threads()), nullptr);
  int used = 1;
#pragma omp parallel if (chunks > 1)
  {
#pragma omp single
    used = omp_get_num_threads();
    float* acc = workspace<float>(6, static_cast<size_t>(size));
    std::memset(acc, 0, sizeof(float) * static_cast<size_t>(size));
    partial[static_cast<size_t>(omp_get_thread_num())] = acc;
    // Static: which items land in which thread's accumulator must not depend on timing,
    // or the sums (and an exactly resumed training run) would differ from run to run.
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t n0 = ch * per_chunk;
      chunk(acc, n0, std::min(per_chunk, n - n0));
    }
  }
#pragma omp parallel for schedule(static) if (size > 65536)
  for (int64_t e = 0; e < size; ++e) {
    float sum = 0;
    for (int t = 0; t < used; ++t) sum += partial[static_cast<size_t>(t)][e];
    grad_w[e] = sum;
  }
}

// acc [CO][C][9] += the contribution of samples n0 .. n0 + ns of grad_out [N, CO, P] and
// x [N, C, H, W] (elements T), tile by tile: tile(gp, gs, xp, xs, ns, out) fills
// out [3][9] from G rows gp[r] (sample stride gs[r]) and the input channel at xp (stride
// xs). Rows past CO read `zeros` (at least P + 32 elements) with stride 0.
template <typename T, typename Tile>
void chunk_weight_grad_3x3(float* acc, const T* grad_out, const T* x, const ConvGeom& g, int64_t n0,
                           int64_t ns, const T* zeros, Tile&& tile) {
  for (int64_t co0 = 0; co0 < g.co; co0 += kRows3)
    for (int64_t ci = 0; ci < g.c; ++ci) {
      const T* gp[kRows3];
      int64_t gs[kRows3];
      for (int r = 0; r < kRows3; ++r) {
        const bool live = co0 + r < g.co;
        gp[r] = live ? grad_out + (n0 * g.co + co0 + r) * g.p : zeros;
        gs[r] = live ? g.co * g.p : 0;
      }
      float out[kRows3][9];
      tile(gp, gs, x + (n0 * g.c + ci) * g.h * g.w, g.c * g.h * g.w, ns, out);
      for (int r = 0; r < kRows3 && co0 + r < g.co; ++r)
        for (int t = 0; t < 9; ++t) acc[((co0 + r) * g.c + ci) * 9 + t] += out[r][t];
    }
}

}  // namespace ag::cpu::dot
