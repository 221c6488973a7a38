// The AVX2 + FMA GEMM micro-kernel of the convolution routes in avx2/: MR rows of a
// [rows, K] matrix times a packed [K][16] panel, 16 columns as two 8-float vectors.
// panel_gemm.cpp runs it over packed input panels (K = the kernel taps), winograd.cpp over
// the transformed tiles (K = the input channels). Their weight gradients share the dot
// tile's step below.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace ag::cpu::avx2 {

constexpr int kPanelLanes = 16;  // columns per micro-kernel call: two 8-float vectors

// out[r][0 .. lanes) = bias[r] + sum_k w[r][k] panel[k][0 .. 16) for r < MR; w rows k_len
// apart, panel rows panel_stride apart, out rows out_stride apart; bias may be null.
template <int MR>
void micro_kernel(float* out, int64_t out_stride, const float* w, int64_t k_len, const float* panel,
                  int64_t panel_stride, const float* bias, int lanes) {
  // The r loops unrolled, so that the accumulators stay in registers (GCC 12 otherwise
  // keeps the array on the stack: a load and a store around every FMA).
  __m256 acc[MR][2];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_set1_ps(bias ? bias[r] : 0.f);
  for (int64_t k = 0; k < k_len; ++k) {
    __m256 b0 = _mm256_loadu_ps(panel + k * panel_stride), b1 = _mm256_loadu_ps(panel + k * panel_stride + 8);
    // In registers: GCC would fold the loads into each FMA, 12 loads for 8 FMAs, more than
    // the two 256-bit loads a cycle Zen 3 has room for.
    asm("" : "+x"(b0), "+x"(b1));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(w + r * k_len + k);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  if (lanes == kPanelLanes) {
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(out + r * out_stride, acc[r][0]);
      _mm256_storeu_ps(out + r * out_stride + 8, acc[r][1]);
    }
    return;
  }
  alignas(32) float tmp[kPanelLanes];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
    _mm256_store_ps(tmp, acc[r][0]);
    _mm256_store_ps(tmp + 8, acc[r][1]);
    std::memcpy(out + r * out_stride, tmp, static_cast<size_t>(lanes) * sizeof(float));
  }
}

// ---- the weight gradients' dot-product tiles: 2 rows x 4 columns, 8 accumulators ----

// sum[4 r + c] += a_r * b_c for the 8 floats at a0, a1 (rows) and b + c b_stride
// (columns): 6 loads for 8 FMAs, every operand in a register (GCC would otherwise fold the
// b loads into both of their FMAs: 10 loads for 8 FMAs, past Zen 3's two 256-bit loads a
// cycle; winograd.cpp's weight gradients ran 1.4x slower that way).
inline void dot_step_2x4(__m256* sum, const float* a0, const float* a1, const float* b, int64_t b_stride) {
  __m256 r0 = _mm256_loadu_ps(a0), r1 = _mm256_loadu_ps(a1);
  asm("" : "+x"(r0), "+x"(r1));
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    __m256 x = _mm256_loadu_ps(b + c * b_stride);
    asm("" : "+x"(x));
    sum[c] = _mm256_fmadd_ps(r0, x, sum[c]);
    sum[4 + c] = _mm256_fmadd_ps(r1, x, sum[4 + c]);
  }
}

// out[r out_stride + c] += the lane sum of sum[4 r + c], r < 2, c < 4.
inline void add_lane_sums_2x4(float* out, int64_t out_stride, const __m256* sum) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(sum[0], sum[1]), _mm256_hadd_ps(sum[2], sum[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(sum[4], sum[5]), _mm256_hadd_ps(sum[6], sum[7]));
  const __m256 sums =
      _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
  _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), _mm256_castps256_ps128(sums)));
  _mm_storeu_ps(out + out_stride, _mm_add_ps(_mm_loadu_ps(out + out_stride), _mm256_extractf128_ps(sums, 1)));
}

}  // namespace ag::cpu::avx2
