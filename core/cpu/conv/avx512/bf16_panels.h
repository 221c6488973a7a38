// bfloat16 operands of the implicit-GEMM convolution (implicit_gemm.cpp) under bf16 matmul
// precision (core/precision.h): the same GEMMs as the float32 path, with both operands
// rounded to bfloat16 while they are packed and the products summed in float32 by
// AVX512-BF16's vdpbf16ps.
//
// vdpbf16ps adds two products per float32 lane, acc[j] += a[2j] b[2j] + a[2j+1] b[2j+1],
// so the reduction index k is taken in pairs: a panel of W lines (rows of A, columns of B)
// is [ceil(K / 2)][W] 32-bit words, word (p, l) = (bf16 of line l at k = 2p, bf16 at
// 2p + 1) with a zero partner past K. The micro-kernel is the float32 one's 12 x 32 tile
// with half as many reduction steps, each doing twice the arithmetic.
//
// Only compiled where the target has AVX512-BF16 (the includer checks __AVX512BF16__).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/cpu/bf16/gemm.h"
#include "core/cpu/conv/avx512/simd.h"

#ifndef __AVX512BF16__
#error "bf16_panels.h needs a target with AVX512-BF16"
#endif

namespace ag::cpu::simd {

// The word of one line for k = 2p (even) and 2p + 1 (odd), rounded as vcvtne2ps2bf16 does.
inline uint32_t pair_word(float even, float odd) {
  uint32_t e, o;
  const float re = round_to_bf16(even), ro = round_to_bf16(odd);
  std::memcpy(&e, &re, sizeof e);
  std::memcpy(&o, &ro, sizeof o);
  return (e >> 16) | (o & 0xffff0000u);
}

// 16 words, word l = (bf16(even[l]), bf16(odd[l])): two reduction rows of 16 lines paired.
inline __m512i pair_words(__m512 even, __m512 odd) {
  const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i second = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  // cvtne2ps(hi, lo): lo's 16 values become the low 16 bfloat16, i.e. words 0-7.
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(even, second, odd),
                                      _mm512_permutex2var_ps(even, first, odd));
}

// dst [ceil(k_rows / 2)][width] words from src [k_rows][width] float32 (rows 2p, 2p + 1
// paired; a zero partner for an odd last row). width <= 32.
inline void pair_rows(uint32_t* dst, const float* src, int64_t k_rows, int width) {
  for (int64_t p = 0; 2 * p < k_rows; ++p) {
    const float* even = src + 2 * p * width;
    const bool has_odd = 2 * p + 1 < k_rows;
    for (int g = 0; g < width; g += 16) {
      const int live = width - g < 16 ? width - g : 16;
      const __mmask16 m = static_cast<__mmask16>((1u << live) - 1);
      const __m512 e = _mm512_maskz_loadu_ps(m, even + g);
      const __m512 o = has_odd ? _mm512_maskz_loadu_ps(m, even + width + g) : _mm512_setzero_ps();
      if (live == 16)
        _mm512_storeu_si512(dst + p * width + g, pair_words(e, o));
      else
        _mm512_mask_storeu_epi32(dst + p * width + g, m, pair_words(e, o));
    }
  }
}

// c[MR x 32] (row stride ldc) = (accumulate ? c : 0) + sum over the pairs p of
// a[p][r] . b[p][0..32) (each a two-term bfloat16 dot product summed in float32).
template <int MR>
inline void micro_kernel_bf16(int64_t pairs, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                              bool accumulate) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    acc[r][0] = accumulate ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps();
    acc[r][1] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * kNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * kNR + 16);
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[p * MR + r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

inline void run_micro_kernel_bf16(int mr, int64_t pairs, const uint32_t* a, const uint32_t* b, float* c,
                                  int64_t ldc, bool accumulate) {
  switch (mr) {
    case 12:
      return micro_kernel_bf16<12>(pairs, a, b, c, ldc, accumulate);
    case 8:
      return micro_kernel_bf16<8>(pairs, a, b, c, ldc, accumulate);
    default:
      return micro_kernel_bf16<4>(pairs, a, b, c, ldc, accumulate);
  }
}

// bp [ceil(kc / 2)][32] words: B rows k0 .. k0 + kc of the segments' columns, paired.
template <int SW>
inline void pack_b_pairs(uint32_t* bp, const ConvSource& s, const Segment* segs, int count, int64_t k0,
                         int64_t kc) {
  Tap tap = Tap::of(s, k0);
  __m512 even[2], odd[2];
  for (int64_t kk = 0; kk < kc; kk += 2) {
    load_row<SW>(s, segs, count, tap.ci, tap.i, tap.j, even);
    tap.next(s);
    if (kk + 1 < kc) {
      load_row<SW>(s, segs, count, tap.ci, tap.i, tap.j, odd);
      tap.next(s);
    } else {
      odd[0] = odd[1] = _mm512_setzero_ps();
    }
    _mm512_storeu_si512(bp + (kk / 2) * kNR, pair_words(even[0], odd[0]));
    _mm512_storeu_si512(bp + (kk / 2) * kNR + 16, pair_words(even[1], odd[1]));
  }
}

// The weight gradient's B block, paired along the positions: bp [ceil(qn / 2)][32] words,
// word (u, l) = (bf16 of B[k0 + l][q0 + 2u], bf16 of B[k0 + l][q0 + 2u + 1]) (zero past K
// and past qn). A row's 32 positions, rounded to bfloat16, already are 16 such words, so
// each 16 x 32 block takes one load_row and one rounding a row and one 16 x 16 transpose
// of words: half the loads and transposes of a float32 transpose, and no pairing pass.
//
// tr: one TapRows per 32 positions of the block, for a direct_ok geometry (two masked loads
// a row: on ResNet18's 8x8 layers load_row's segment walk cost half the arithmetic it
// fed); null: any geometry, rows read by segments.
template <int SW>
inline void pack_b_pairs_transposed(uint32_t* bp, const ConvSource& s, const TapRows* tr, int64_t k0,
                                    int64_t q0, int64_t qn) {
  const int64_t k_total = s.k(), plane = s.h * s.w;
  Segment segs[kNR];
  int count = 0;
  __m512 blk[16], v[2];
  for (int64_t qq = 0; qq < qn; qq += kNR) {
    const TapRows* rows = tr ? tr + qq / kNR : nullptr;
    if (!rows) count = make_segments(s, q0 + qq, q0 + qn, kNR, segs);
    const int64_t pairs_here = std::min<int64_t>(16, (qn - qq + 1) / 2);
    for (int64_t kg = 0; kg < 2; ++kg) {
      const int64_t kb = k0 + kg * 16;
      Tap tap = Tap::of(s, std::min(kb, k_total - 1));
      for (int t = 0; t < 16; ++t, tap.next(s)) {
        if (kb + t >= k_total) {
          blk[t] = _mm512_setzero_ps();
          continue;
        }
        if (rows) {
          const int64_t ti = tap.i * s.kw + tap.j;
          v[0] = _mm512_maskz_loadu_ps(rows->m[0][ti], rows->b[0][ti] + tap.ci * plane);
          v[1] = _mm512_maskz_loadu_ps(rows->m[1][ti], rows->b[1][ti] + tap.ci * plane);
        } else {
          load_row<SW>(s, segs, count, tap.ci, tap.i, tap.j, v);
        }
        blk[t] = (__m512)_mm512_cvtne2ps_pbh(v[1], v[0]);  // word u: positions 2u (low half), 2u + 1
      }
      transpose16(blk);  // blk[u] lane t: row kb + t at position pair u
      for (int64_t u = 0; u < pairs_here; ++u) _mm512_storeu_ps(bp + (qq / 2 + u) * kNR + kg * 16, blk[u]);
    }
  }
}

// The same from a direct_ok geometry (simd.h), B read through tr with K in tap-major order
// k = t * c + ci: two masked loads per row instead of load_row's per-segment walk (the
// packing would otherwise cost a quarter of the arithmetic it feeds). plane: h * w.
inline void pack_b_pairs_taps(uint32_t* bp, const TapRows& tr, int64_t plane, int64_t c, int64_t k0,
                              int64_t kc) {
  const auto row = [&](int64_t k, __m512 v[2]) {
    const int64_t t = k / c, ci = k % c;
    v[0] = _mm512_maskz_loadu_ps(tr.m[0][t], tr.b[0][t] + ci * plane);
    v[1] = _mm512_maskz_loadu_ps(tr.m[1][t], tr.b[1][t] + ci * plane);
  };
  __m512 even[2], odd[2];
  for (int64_t kk = 0; kk < kc; kk += 2) {
    row(k0 + kk, even);
    if (kk + 1 < kc)
      row(k0 + kk + 1, odd);
    else
      odd[0] = odd[1] = _mm512_setzero_ps();
    _mm512_storeu_si512(bp + (kk / 2) * kNR, pair_words(even[0], odd[0]));
    _mm512_storeu_si512(bp + (kk / 2) * kNR + 16, pair_words(even[1], odd[1]));
  }
}

}  // namespace ag::cpu::simd
