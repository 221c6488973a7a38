// Stride-2 depthwise convolution on AVX-512, in place in NCHW, for output rows 16-128
// wide (3x3 and 5x5, dilation 1).
//   forward:         out[oh][ow] = b + sum_ij k[i][j] x[2 oh - p + i][2 ow - p + j]
//   input gradient:  grad_x[ih][iw] = sum of k[i][j] g[oh][ow] over 2 oh - p + i = ih,
//                    2 ow - p + j = iw
// A 16-lane vector of a stride-2 row reads every other input column. Gathering those with
// masked loads + a permute for every tap (the generic path) cost ~20 cycles per tap, so
// the forward splits each input row once into its even and odd columns (SplitRows, one
// permute pair per 32 inputs), after which every tap is one unmasked load from L1.
// The input gradient is computed per phase instead: even columns of grad_x get the taps
// j with p - j even, odd columns those with p + 1 - j even, each an unmasked load from a
// zero-margined copy of the grad_out row; the two phases are interleaved on the store.
#include <algorithm>
#include <vector>

#include "core/cpu/conv/avx512/dw_rows.h"
#include "core/cpu/gemm_util.h"
#include "core/parallel.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its own intrinsics

namespace ag::cpu {

namespace dw {

// Length of one half of a split row between the margins: whole vectors covering both
// the input's half row and the output row.
static int64_t split_data(int64_t w, int64_t wo) { return 16 * ((std::max((w + 1) / 2, wo) + 15) / 16); }

SplitRows split_rows_buffer(const ConvGeom& g) {
  SplitRows s{g.h, g.w, 2 * kMargin + split_data(g.w, g.wo), nullptr};
  const size_t size = static_cast<size_t>((g.h + 1) * 2 * s.half_w);
  s.buf = workspace<float>(2, size);
  std::fill(s.buf, s.buf + size, 0.f);  // margins and the zero row; data is overwritten
  return s;
}

void split_plane(const SplitRows& s, const float* plane) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t ih = 0; ih < s.h; ++ih) {
    const float* row = plane + ih * s.w;
    float* dst = s.buf + ih * 2 * s.half_w + kMargin;
    for (int64_t c0 = 0; c0 < s.w; c0 += 32) {  // 32 inputs -> 16 even + 16 odd
      const int64_t left = s.w - c0;
      const auto m_lo = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
      const auto m_hi = static_cast<__mmask16>(left >= 32   ? 0xffff
                                               : left <= 16 ? 0
                                                            : (1u << (left - 16)) - 1);
      const __m512 lo = load_lanes<1>(row + c0, m_lo);
      const __m512 hi = load_lanes<1>(row + c0 + 16, m_hi);
      _mm512_storeu_ps(dst + c0 / 2, _mm512_permutex2var_ps(lo, even, hi));
      _mm512_storeu_ps(dst + s.half_w + c0 / 2, _mm512_permutex2var_ps(lo, odd, hi));
    }
  }
}

}  // namespace dw

namespace {

using namespace dw;

// o [ho][wo] = b + the stride-2 correlation of the split plane with k [K][K]. Two output
// rows at a time (two independent FMA chains); an odd last row is computed twice and
// stored once.
template <int K>
void plane_forward_split(float* o, const SplitRows& s, const float* k, float b, const ConvGeom& g) {
  int64_t off[K];
  for (int j = 0; j < K; ++j) off[j] = SplitRows::offset(j - g.pw, s.half_w);
  for (int64_t oh0 = 0; oh0 < g.ho; oh0 += 2) {
    const int64_t oh1 = std::min(oh0 + 1, g.ho - 1);
    for (int64_t ow0 = 0; ow0 < g.wo; ow0 += 16) {
      __m512 a0 = _mm512_set1_ps(b), a1 = a0;
#pragma GCC unroll 5
      for (int i = 0; i < K; ++i) {
        const float* r0 = s.row(2 * oh0 - g.ph + i) + ow0;
        const float* r1 = s.row(2 * oh1 - g.ph + i) + ow0;
#pragma GCC unroll 5
        for (int j = 0; j < K; ++j) {
          const __m512 kv = _mm512_set1_ps(k[i * K + j]);
          a0 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(r0 + off[j]), a0);
          a1 = _mm512_fmadd_ps(kv, _mm512_loadu_ps(r1 + off[j]), a1);
        }
      }
      const auto m = static_cast<__mmask16>(g.wo - ow0 >= 16 ? 0xffff : (1u << (g.wo - ow0)) - 1);
      store_lanes(o + oh0 * g.wo + ow0, m, a0);
      if (oh1 != oh0) store_lanes(o + oh1 * g.wo + ow0, m, a1);
    }
  }
}

// gb [ho + 1][kMargin + data + kMargin]: the gradient plane with zero margins, row ho
// all zero (the rows no tap reaches).
struct PaddedGrad {
  int64_t ho, row_len;
  float* buf;
  const float* row(int64_t oh) const { return buf + (oh >= 0 && oh < ho ? oh : ho) * row_len + kMargin; }
};

PaddedGrad padded_grad_buffer(const ConvGeom& g) {
  PaddedGrad pg{g.ho, 2 * kMargin + split_data(g.w, g.wo), nullptr};
  const size_t size = static_cast<size_t>((g.ho + 1) * pg.row_len);
  pg.buf = workspace<float>(3, size);
  std::fill(pg.buf, pg.buf + size, 0.f);
  return pg;
}

void pad_grad(const PaddedGrad& pg, const float* go, int64_t wo) {
  for (int64_t oh = 0; oh < pg.ho; ++oh)
    for (int64_t ow0 = 0; ow0 < wo; ow0 += 16) {
      const auto m = static_cast<__mmask16>(wo - ow0 >= 16 ? 0xffff : (1u << (wo - ow0)) - 1);
      _mm512_storeu_ps(pg.buf + oh * pg.row_len + kMargin + ow0, load_lanes<1>(go + oh * wo + ow0, m));
    }
}

// sum over the tap rows i of one phase (2 oh = ih + p - i) and the tap columns j of
// column phase q (p + q - j even) of k[i][j] * g[oh][m0 + (p + q - j) / 2 + lane].
template <int K>
inline __m512 phase_sum(const PaddedGrad& pg, const float* k, int64_t ih, int64_t m0, int q,
                        const ConvGeom& g) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = (ih + g.ph) & 1; i < K; i += 2) {
    const float* row = pg.row((ih + g.ph - i) / 2) + m0;
    for (int64_t j = (g.pw + q) & 1; j < K; j += 2)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(k[i * K + j]), _mm512_loadu_ps(row + (g.pw + q - j) / 2), acc);
  }
  return acc;
}

// gx [h][w] = the input gradient of one plane from its padded gradient.
template <int K>
void plane_backward_input(float* gx, const PaddedGrad& pg, const float* k, const ConvGeom& g) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t ih = 0; ih < g.h; ++ih)
    for (int64_t c0 = 0; c0 < g.w; c0 += 32) {  // 16 even + 16 odd columns from c0
      const __m512 ev = phase_sum<K>(pg, k, ih, c0 / 2, 0, g), od = phase_sum<K>(pg, k, ih, c0 / 2, 1, g);
      const int64_t left = g.w - c0;
      const auto m_lo = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
      const auto m_hi = static_cast<__mmask16>(left >= 32   ? 0xffff
                                               : left <= 16 ? 0
                                                            : (1u << (left - 16)) - 1);
      store_lanes(gx + ih * g.w + c0, m_lo, _mm512_permutex2var_ps(ev, lo, od));
      store_lanes(gx + ih * g.w + c0 + 16, m_hi, _mm512_permutex2var_ps(ev, hi, od));
    }
}

template <int K>
void forward_s2(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  const int64_t planes = g.n * g.c;
#pragma omp parallel if (planes * g.p > kParallelThreshold)
  {
    const SplitRows s = split_rows_buffer(g);
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const int64_t c = pl % g.c;
      split_plane(s, x + pl * g.h * g.w);
      plane_forward_split<K>(out + pl * g.p, s, w + c * K * K, bias ? bias[c] : 0.f, g);
    }
  }
}

template <int K>
void backward_input_s2(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  const int64_t planes = g.n * g.c;
#pragma omp parallel if (planes * g.p > kParallelThreshold)
  {
    const PaddedGrad pg = padded_grad_buffer(g);
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      pad_grad(pg, grad_out + pl * g.p, g.wo);
      plane_backward_input<K>(grad_x + pl * g.h * g.w, pg, w + (pl % g.c) * K * K, g);
    }
  }
}

}  // namespace

bool dw_s2_accepts(const ConvGeom& g) {
  return rows_ok(g, kS2MinWo) && g.sh == 2 && g.sw == 2 && g.dh == 1 && g.dw == 1 && g.kh == g.kw &&
         (g.kh == 3 || g.kh == 5) && g.ph >= 0 && g.ph < g.kh && g.pw >= 0 && g.pw < g.kw;
}

void dw_s2_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  g.kh == 3 ? forward_s2<3>(out, x, w, bias, g) : forward_s2<5>(out, x, w, bias, g);
}

void dw_s2_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  g.kh == 3 ? backward_input_s2<3>(grad_x, grad_out, w, g) : backward_input_s2<5>(grad_x, grad_out, w, g);
}

}  // namespace ag::cpu
