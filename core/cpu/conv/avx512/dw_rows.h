// Shared pieces of the AVX-512 depthwise kernels that work in place in NCHW (dw_rows.cpp,
// dw_s2.cpp, dw_stream_weight.cpp, dw_flat.cpp, dw_flat_s2.cpp, dw_s2_4x4.cpp): the plane
// geometry and the per-chunk lane masks of a 16-wide output row. Their routes' predicates
// and kernels are declared in core/cpu/conv/kernels.h.
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "core/cpu/conv/geom.h"

#ifndef __AVX512F__
#error "core/cpu/conv/avx512/ is compiled only for AVX-512 targets (see CMakeLists.txt)"
#endif

namespace ag::cpu {

namespace dw {

constexpr int kMaxKw = 7, kMaxChunks = 8;  // kernel width, 16-wide chunks per row (wo <= 128)
constexpr int64_t kS2MinWo = 8;            // narrowest output row of the stride-2 kernels

// One plane-to-plane correlation: geometry of source and output, padding, dilation.
struct PlaneGeom {
  int64_t h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t chunks() const { return (wo + 15) / 16; }
};

inline PlaneGeom geom_of(const ConvGeom& g) {
  return {g.h, g.w, g.ho, g.wo, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

// Per (tap column j, chunk): the input column of lane 0 and the lanes that read inside
// the row; plus the lanes of each chunk that exist in the output.
struct RowMasks {
  int64_t col0[kMaxKw][kMaxChunks];
  __mmask16 load[kMaxKw][kMaxChunks];
  __mmask16 store[kMaxChunks];
};

inline RowMasks row_masks(const PlaneGeom& pg) {
  RowMasks rm{};
  for (int64_t ch = 0; ch < pg.chunks(); ++ch) {
    const int64_t ow0 = ch * 16, lanes = std::min<int64_t>(16, pg.wo - ow0);
    rm.store[ch] = static_cast<__mmask16>((1u << lanes) - 1);
    for (int64_t j = 0; j < pg.kw; ++j) {
      const int64_t iw0 = ow0 * pg.sw - pg.pw + j * pg.dw;
      uint32_t m = 0;
      for (int64_t l = 0; l < lanes; ++l)
        if (iw0 + l * pg.sw >= 0 && iw0 + l * pg.sw < pg.w) m |= 1u << l;
      rm.col0[j][ch] = iw0;
      rm.load[j][ch] = static_cast<__mmask16>(m);
    }
  }
  return rm;
}

// Lanes l of mask m get row[l * SW] (the pointer is at lane 0's input), others zero.
// A full mask takes a plain load: on the development EPYC, masked loads that miss the caches
// run far slower (3x on a streamed plane), the prefetchers do not seem to cover them.
template <int SW>
inline __m512 load_lanes(const float* row, __mmask16 m) {
  if constexpr (SW == 1) {
    return m == 0xffff ? _mm512_loadu_ps(row) : _mm512_maskz_loadu_ps(m, row);
  } else {
    const uint32_t src = _pdep_u32(m, 0x55555555u);
    const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(src & 0xffff), row);
    const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(src >> 16), row + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(lo, even, hi);
  }
}

// row[l] = v[l] for the lanes of m; a full mask takes a plain store (masked stores that
// miss the caches are slow too).
inline void store_lanes(float* row, __mmask16 m, __m512 v) {
  if (m == 0xffff)
    _mm512_storeu_ps(row, v);
  else
    _mm512_mask_storeu_ps(row, m, v);
}

// The geometries the row kernels take: one channel per group, multiplier 1, output rows
// min_wo-128 wide, stride 1 or 2. Stride 2 on 8-wide output rows (16x16 inputs) also
// runs here: half the lanes idle still beats the channels-last transposes.
inline bool rows_ok(const ConvGeom& g, int64_t min_wo = 16) {
  return g.depthwise() && g.co == g.c && g.wo >= min_wo && g.wo <= 16 * kMaxChunks && g.kw <= kMaxKw &&
         (g.sw == 1 || g.sw == 2);
}

// Even / odd column split of stride-2 rows (dw_s2.cpp, shared with the weight
// gradient): for a row r, ev(r)[m] = x[r][2m] and od(r)[m] = x[r][2m + 1], stored
// [even | odd] with a zero margin of kMargin floats on both sides, so the tap at column
// offset 2e + q reads the vector at m0 + e of half q with one unmasked load. One extra
// row of zeros stands for the padding rows.
constexpr int64_t kMargin = 16;
struct SplitRows {
  int64_t h, w, half_w;  // input rows, columns; row length of one half, margins included
  float* buf;            // [h + 1][2][half_w]
  const float* row(int64_t ih) const { return buf + (ih >= 0 && ih < h ? ih : h) * 2 * half_w; }
  // The vector whose lane l is input column 2 (m0 + l) + d of a row (d may be negative).
  static int64_t offset(int64_t d, int64_t half_w) {
    const int64_t q = d & 1, e = (d - q) / 2;
    return q * half_w + kMargin + e;
  }
};
// Sized for a plane of g, in the calling thread's workspace; margins zeroed.
SplitRows split_rows_buffer(const ConvGeom& g);
// Fills buf's rows from plane [h][w].
void split_plane(const SplitRows& s, const float* plane);

}  // namespace dw

}  // namespace ag::cpu
