// Depthwise convolution on AVX-512 for planes whose output rows are at least 16 wide
// (the 32x32 and 16x16 layers, which carry most of the bytes): computed in place in NCHW,
// 16 outputs of a row per vector, with lane masks doing the zero padding. Nothing is
// copied or transposed, so each plane is read once and written once. Stride 2 with 3x3 /
// 5x5 kernels is routed to dw_s2.cpp first (the masked-load + permute form below takes
// other kernels); small planes go to dw_flat.cpp or dw_channels_last.cpp (routes.cpp).
//   forward:          out[oh][ow] = b + sum_ij k[i][j] x[oh s - p + i d][ow s - p + j d]
//   input gradient:   stride 1 only, as the forward of grad_out with the kernel rotated
//                     by 180 degrees and padding d (k - 1) - p
//   weight gradient:  dw_stream_weight.cpp
#include "core/cpu/conv/avx512/dw_rows.h"

#include <algorithm>
#include <vector>

#include "core/cpu/conv/kernels.h"
#include "core/parallel.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its own intrinsics

namespace ag::cpu {

namespace {

using namespace dw;

// o [ho][wo] = b + the correlation of src [h][w] with k [kh][kw]. Four output rows at a
// time, so four independent accumulator chains hide the FMA latency. Rows outside the
// input read through an all-zero mask rather than a branch: with a branch in the row
// loop GCC keeps the accumulators in memory.
template <int SW>
void plane_forward(float* o, const float* src, const float* k, float b, const PlaneGeom& pg,
                   const RowMasks& rm) {
  constexpr int kRows = 4;
  for (int64_t oh0 = 0; oh0 < pg.ho; oh0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, pg.ho - oh0));
    for (int64_t ch = 0; ch < pg.chunks(); ++ch) {
      __m512 acc[kRows];
#pragma GCC unroll 4
      for (int r = 0; r < kRows; ++r) acc[r] = _mm512_set1_ps(b);
      for (int64_t i = 0; i < pg.kh; ++i) {
        const float* rp[kRows];
        __mmask16 live[kRows];
#pragma GCC unroll 4
        for (int r = 0; r < kRows; ++r) {
          const int64_t ih = (oh0 + r) * pg.sh - pg.ph + i * pg.dh;
          const bool ok = r < rows && ih >= 0 && ih < pg.h;
          rp[r] = src + (ok ? ih * pg.w : 0);
          live[r] = ok ? 0xffff : 0;
        }
        for (int64_t j = 0; j < pg.kw; ++j) {
          const __m512 kv = _mm512_set1_ps(k[i * pg.kw + j]);
          const __mmask16 m = rm.load[j][ch];
          const int64_t col = rm.col0[j][ch];
#pragma GCC unroll 4
          for (int r = 0; r < kRows; ++r)
            acc[r] = _mm512_fmadd_ps(kv, load_lanes<SW>(rp[r] + col, m & live[r]), acc[r]);
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < kRows; ++r)  // constant trip count: keeps acc[] in registers
        if (r < rows) store_lanes(o + (oh0 + r) * pg.wo + ch * 16, rm.store[ch], acc[r]);
    }
  }
}

// The common case (K x K kernel, stride 1, dilation 1) with each input row loaded once:
// input row ih feeds output rows ih + ph - i for the K taps i, so the K shifted loads of
// the row are multiplied into K accumulators in flight (slot s holds output row
// ih + ph - (K - 1) + s, which takes tap row K - 1 - s). Slot 0 is finished after row ih
// and stored; the slots then shift by one. 3K^2 FMAs per K loads instead of one load per
// FMA: this keeps the kernel at memory speed.
template <int K>
void plane_forward_rolling(float* o, const float* src, const float* k, float b, const PlaneGeom& pg,
                           const RowMasks& rm) {
  for (int64_t ch = 0; ch < pg.chunks(); ++ch) {
    __m512 kv[K][K];
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) kv[i][j] = _mm512_set1_ps(k[i * K + j]);
    __m512 acc[K];
#pragma GCC unroll 5
    for (int sl = 0; sl < K; ++sl) acc[sl] = _mm512_set1_ps(b);
    for (int64_t ih = -pg.ph; ih < pg.ho - pg.ph + K - 1; ++ih) {
      if (ih >= 0 && ih < pg.h) {
        const float* row = src + ih * pg.w;
        __m512 sv[K];
#pragma GCC unroll 5
        for (int j = 0; j < K; ++j) sv[j] = load_lanes<1>(row + rm.col0[j][ch], rm.load[j][ch]);
#pragma GCC unroll 5
        for (int sl = 0; sl < K; ++sl)
#pragma GCC unroll 5
          for (int j = 0; j < K; ++j) acc[sl] = _mm512_fmadd_ps(kv[K - 1 - sl][j], sv[j], acc[sl]);
      }
      const int64_t oh = ih + pg.ph - (K - 1);
      if (oh >= 0) store_lanes(o + oh * pg.wo + ch * 16, rm.store[ch], acc[0]);
#pragma GCC unroll 5
      for (int sl = 0; sl + 1 < K; ++sl) acc[sl] = acc[sl + 1];
      acc[K - 1] = _mm512_set1_ps(b);
    }
  }
}

// out planes (n * c of them) = forward of the src planes; kernels k [c][kh][kw].
void planes_forward(float* out, const float* src, const float* k, const float* bias, int64_t planes,
                    int64_t c, const PlaneGeom& pg) {
  const RowMasks rm = row_masks(pg);
  const int64_t taps = pg.kh * pg.kw;
#pragma omp parallel for schedule(static) if (planes * pg.ho * pg.wo > kParallelThreshold)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const int64_t ch = pl % c;
    const float b = bias ? bias[ch] : 0.f;
    const bool rolling = pg.sh == 1 && pg.sw == 1 && pg.dh == 1 && pg.dw == 1 && pg.kh == pg.kw &&
                         pg.ho == pg.h + 2 * pg.ph - pg.kh + 1;
    if (rolling && pg.kh == 3)
      plane_forward_rolling<3>(out + pl * pg.ho * pg.wo, src + pl * pg.h * pg.w, k + ch * taps, b, pg, rm);
    else if (rolling && pg.kh == 5)
      plane_forward_rolling<5>(out + pl * pg.ho * pg.wo, src + pl * pg.h * pg.w, k + ch * taps, b, pg, rm);
    else if (pg.sw == 1)
      plane_forward<1>(out + pl * pg.ho * pg.wo, src + pl * pg.h * pg.w, k + ch * taps, b, pg, rm);
    else
      plane_forward<2>(out + pl * pg.ho * pg.wo, src + pl * pg.h * pg.w, k + ch * taps, b, pg, rm);
  }
}

}  // namespace

bool dw_rows_accepts(const ConvGeom& g) { return rows_ok(g); }

void dw_rows_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  planes_forward(out, x, w, bias, g.n * g.c, g.c, geom_of(g));
}

bool dw_rows_input_accepts(const ConvGeom& g) {
  return rows_ok(g) && g.sh == 1 && g.sw == 1 && g.w >= 16 && g.w <= 16 * kMaxChunks;
}

void dw_rows_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  const int64_t taps = g.kh * g.kw;
  std::vector<float> flipped(static_cast<size_t>(g.c * taps));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t t = 0; t < taps; ++t)
      flipped[static_cast<size_t>(c * taps + t)] = w[c * taps + taps - 1 - t];
  const PlaneGeom pg{
      g.ho, g.wo, g.h, g.w, g.kh, g.kw, 1, 1, g.dh * (g.kh - 1) - g.ph, g.dw * (g.kw - 1) - g.pw, g.dh, g.dw};
  planes_forward(grad_x, grad_out, flipped.data(), nullptr, g.n * g.c, g.c, pg);
}

}  // namespace ag::cpu
