// The transforms of Winograd's F(m x m, 3 x 3) on 8-float vectors (avx2/winograd.cpp), for
// m = 2 and m = 4 (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
// Networks"): a tile of m x m outputs reads an a x a input block d (a = m + 2) and is
// A^T [(G w G^T) . (B^T d B)] A. Each vector holds one value of 8 tiles along a row of
// tiles; the matrices are compile-time constants, so combine() unrolls into adds,
// subtracts and FMAs with the zero terms gone.
#pragma once

#include <immintrin.h>

namespace ag::cpu::avx2 {

template <int M>
struct Winograd;

template <>
struct Winograd<2> {
  static constexpr float kBT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr float kAT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr float kA_[4][2] = {{1, 0}, {1, 1}, {1, -1}, {0, -1}};  // A = (A^T)^T
};

template <>
struct Winograd<4> {
  static constexpr float kBT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                      {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                      {0, 0, 1}};
  static constexpr float kAT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  static constexpr float kA_[6][4] = {{1, 0, 0, 0}, {1, 1, 1, 1},   {1, -1, 1, -1},
                                      {1, 2, 4, 8}, {1, -2, 4, -8}, {0, 0, 0, 1}};  // A = (A^T)^T
};

// sum over k of coef[k] in[k * in_stride] for a constant row coef (after unrolling, every
// coef[k] is a constant: zeros drop out, +-1 become adds and subtracts).
template <int K>
inline __m256 combine(const float (&coef)[K], const __m256* in, int in_stride = 1) {
  __m256 acc = _mm256_setzero_ps();
  bool started = false;
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    const float c = coef[k];
    const __m256 x = in[k * in_stride];
    if (c == 0.f) continue;
    if (!started)
      acc = c == 1.f ? x : _mm256_mul_ps(_mm256_set1_ps(c), x);
    else if (c == 1.f)
      acc = _mm256_add_ps(acc, x);
    else if (c == -1.f)
      acc = _mm256_sub_ps(acc, x);
    else
      acc = _mm256_fmadd_ps(_mm256_set1_ps(c), x, acc);
    started = true;
  }
  return acc;
}

// The phases of 8M consecutive floats r (in M vectors): phase[k] = r[k], r[M + k], ...,
// r[7M + k] for k < M.
template <int M>
inline void split_phases(const __m256* r, __m256* phase);

template <>
inline void split_phases<2>(const __m256* r, __m256* phase) {
  // r0 r2 r8 r10 | r4 r6 r12 r14, then the middle 64-bit pairs swapped
  const __m256 ev = _mm256_shuffle_ps(r[0], r[1], _MM_SHUFFLE(2, 0, 2, 0));
  const __m256 od = _mm256_shuffle_ps(r[0], r[1], _MM_SHUFFLE(3, 1, 3, 1));
  phase[0] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
  phase[1] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8));
}

template <>
inline void split_phases<4>(const __m256* r, __m256* phase) {
  // 128-bit lanes regrouped so that lane 0 holds r0-15 and lane 1 r16-31 as 4x4 blocks,
  // then each block transposed
  const __m256 x0 = _mm256_permute2f128_ps(r[0], r[2], 0x20), x1 = _mm256_permute2f128_ps(r[0], r[2], 0x31);
  const __m256 x2 = _mm256_permute2f128_ps(r[1], r[3], 0x20), x3 = _mm256_permute2f128_ps(r[1], r[3], 0x31);
  const __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpacklo_ps(x2, x3);
  const __m256 t2 = _mm256_unpackhi_ps(x0, x1), t3 = _mm256_unpackhi_ps(x2, x3);
  phase[0] = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0));
  phase[1] = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2));
  phase[2] = _mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(1, 0, 1, 0));
  phase[3] = _mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

// The same for two rows side by side, as the paired tile rows of winograd.cpp hold them:
// r[k] = A[4k .. 4k + 3] | B[4k .. 4k + 3] (128-bit halves) for k < M, phase[k] = A[k],
// A[M + k], A[2M + k], A[3M + k] | the same of B: a transpose within each half.
template <int M>
inline void split_pair_phases(const __m256* r, __m256* phase);

template <>
inline void split_pair_phases<2>(const __m256* r, __m256* phase) {
  phase[0] = _mm256_shuffle_ps(r[0], r[1], _MM_SHUFFLE(2, 0, 2, 0));
  phase[1] = _mm256_shuffle_ps(r[0], r[1], _MM_SHUFFLE(3, 1, 3, 1));
}

template <>
inline void split_pair_phases<4>(const __m256* r, __m256* phase) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpacklo_ps(r[2], r[3]);
  const __m256 t2 = _mm256_unpackhi_ps(r[0], r[1]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  phase[0] = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0));
  phase[1] = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2));
  phase[2] = _mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(1, 0, 1, 0));
  phase[3] = _mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

// The inverse: out (M vectors, 8M floats) = y[0][0], ..., y[M-1][0], y[0][1], ...: the
// M outputs of each of 8 tiles side by side. For paired rows (tiles 0-3 of row A in the
// low halves, of row B in the high ones) that is out[0 .. M/2) = row A's 4M outputs and
// out[M/2 .. M) = row B's.
template <int M>
inline void interleave(const __m256* y, __m256* out);

template <>
inline void interleave<2>(const __m256* y, __m256* out) {
  const __m256 lo = _mm256_unpacklo_ps(y[0], y[1]), hi = _mm256_unpackhi_ps(y[0], y[1]);
  out[0] = _mm256_permute2f128_ps(lo, hi, 0x20);
  out[1] = _mm256_permute2f128_ps(lo, hi, 0x31);
}

template <>
inline void interleave<4>(const __m256* y, __m256* out) {
  const __m256 t0 = _mm256_unpacklo_ps(y[0], y[1]), t1 = _mm256_unpacklo_ps(y[2], y[3]);
  const __m256 t2 = _mm256_unpackhi_ps(y[0], y[1]), t3 = _mm256_unpackhi_ps(y[2], y[3]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0));  // tiles 0 | 4
  const __m256 u1 = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2));  // tiles 1 | 5
  const __m256 u2 = _mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(1, 0, 1, 0));  // tiles 2 | 6
  const __m256 u3 = _mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(3, 2, 3, 2));  // tiles 3 | 7
  out[0] = _mm256_permute2f128_ps(u0, u1, 0x20);
  out[1] = _mm256_permute2f128_ps(u2, u3, 0x20);
  out[2] = _mm256_permute2f128_ps(u0, u1, 0x31);
  out[3] = _mm256_permute2f128_ps(u2, u3, 0x31);
}

}  // namespace ag::cpu::avx2
