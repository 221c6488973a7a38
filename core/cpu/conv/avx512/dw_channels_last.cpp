// Depthwise convolution on AVX-512 in channels-last order (one input channel per group,
// multiplier 1, channel count a multiple of 16, horizontal stride 1 or 2). In the route
// tables (routes.cpp) it comes after the in-place NCHW kernels (dw_s2_4x4, dw_flat_s2,
// dw_s2, dw_rows, dw_stream, dw_flat), so it is left with odd or non-square small planes,
// other paddings and dilation on small planes.
//
// Depthwise layers do ~9-25 multiply-adds per element, so they must run at memory speed,
// and their planes are often tiny (8x8 down to 2x2) where per-plane loops are all
// overhead. So each work item (a sample and a block of channels) is transposed in cache
// to channels-last, [H + 2 ph][W + 2 pw][channels] with a zero border, computed there
// with one 16-channel vector per position and a per-channel weight vector per tap (no
// masks, no gathers, any plane size), and transposed back. The transposes use 16x16
// register blocks. Work items run on OpenMP threads; the weight gradient keeps per-thread
// [taps][C] accumulators summed at the end.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv/avx512/dw_rows.h"
#include "core/cpu/conv/avx512/simd.h"
#include "core/cpu/conv/channels_last.h"
#include "core/cpu/conv/dot_weight_sum.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its own intrinsics

namespace ag::cpu {

namespace {

using simd::transpose16;

// dst[s * ldd + r] = src[r * lds + s] for r < rows, s < cols.
void transpose(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols) {
  int64_t r0 = 0;
  for (; r0 + 16 <= rows; r0 += 16) {
    int64_t s0 = 0;
    for (; s0 + 16 <= cols; s0 += 16) {
      __m512 blk[16];
      for (int r = 0; r < 16; ++r) blk[r] = _mm512_loadu_ps(src + (r0 + r) * lds + s0);
      transpose16(blk);
      for (int s = 0; s < 16; ++s) _mm512_storeu_ps(dst + (s0 + s) * ldd + r0, blk[s]);
    }
    for (; s0 < cols; ++s0)
      for (int r = 0; r < 16; ++r) dst[s0 * ldd + r0 + r] = src[(r0 + r) * lds + s0];
  }
  for (; r0 < rows; ++r0)
    for (int64_t s = 0; s < cols; ++s) dst[s * ldd + r0] = src[r0 * lds + s];
}

// One work item's geometry: channels [c0, c0 + cb) of sample n.
struct Item {
  int64_t n, c0, cb;
};

struct DwPlan {
  int64_t hp, wp, cb;  // padded plane, channels per block
  std::vector<Item> items;
};

DwPlan plan(const ConvGeom& g) {
  DwPlan p;
  p.hp = g.h + 2 * g.ph;
  p.wp = g.w + 2 * g.pw;
  // ~64 KiB per channels-last buffer, so the three buffers of an item stay in L2
  p.cb = std::clamp<int64_t>(16384 / (p.hp * p.wp) / 16 * 16, 16, g.c);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c0 = 0; c0 < g.c; c0 += p.cb) p.items.push_back({n, c0, std::min(p.cb, g.c - c0)});
  return p;
}

// xt [hp][wp][cb] = the item's channels of an NCHW tensor, channels-last, zero border.
// tmp: [h * w][cb] scratch.
void to_channels_last(float* xt, float* tmp, const float* src, const ConvGeom& g, const DwPlan& p,
                      const Item& it) {
  transpose(tmp, it.cb, src + (it.n * g.c + it.c0) * g.h * g.w, g.h * g.w, it.cb, g.h * g.w);
  std::memset(xt, 0, sizeof(float) * static_cast<size_t>(p.hp * p.wp * it.cb));
  for (int64_t ih = 0; ih < g.h; ++ih)
    std::memcpy(xt + ((ih + g.ph) * p.wp + g.pw) * it.cb, tmp + ih * g.w * it.cb,
                sizeof(float) * static_cast<size_t>(g.w * it.cb));
}

// The input position (in the padded plane) that tap (i, j) of output (oh, ow) reads.
inline int64_t tap_pos(const ConvGeom& g, const DwPlan& p, int64_t oh, int64_t ow, int64_t i, int64_t j) {
  return (oh * g.sh + i * g.dh) * p.wp + ow * g.sw + j * g.dw;
}

void forward_item(float* out, const float* x, const float* wt, const float* bias, const ConvGeom& g,
                  const DwPlan& p, const Item& it) {
  const size_t plane = static_cast<size_t>(p.hp * p.wp * p.cb);
  float* xt = workspace<float>(2, plane);
  float* ot = workspace<float>(3, static_cast<size_t>(g.p * p.cb));
  float* tmp = workspace<float>(7, static_cast<size_t>(std::max(g.h * g.w, g.p) * p.cb));
  to_channels_last(xt, tmp, x, g, p, it);
  for (int64_t c = 0; c < it.cb; c += 16) {
    const __m512 b = bias ? _mm512_loadu_ps(bias + it.c0 + c) : _mm512_setzero_ps();
    for (int64_t oh = 0; oh < g.ho; ++oh)
      for (int64_t ow = 0; ow < g.wo; ++ow) {
        __m512 acc = b;
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            const __m512 wv = _mm512_loadu_ps(wt + (i * g.kw + j) * g.c + it.c0 + c);
            acc = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xt + tap_pos(g, p, oh, ow, i, j) * it.cb + c), acc);
          }
        _mm512_storeu_ps(ot + (oh * g.wo + ow) * it.cb + c, acc);
      }
  }
  transpose(out + (it.n * g.c + it.c0) * g.p, g.p, ot, it.cb, g.p, it.cb);
}

void backward_input_item(float* grad_x, const float* grad_out, const float* wt, const ConvGeom& g,
                         const DwPlan& p, const Item& it) {
  float* gxt = workspace<float>(2, static_cast<size_t>(p.hp * p.wp * p.cb));
  float* got = workspace<float>(3, static_cast<size_t>(g.p * p.cb));
  float* tmp = workspace<float>(7, static_cast<size_t>(std::max(g.h * g.w, g.p) * p.cb));
  transpose(got, it.cb, grad_out + (it.n * g.c + it.c0) * g.p, g.p, it.cb, g.p);
  std::memset(gxt, 0, sizeof(float) * static_cast<size_t>(p.hp * p.wp * it.cb));
  // Taps outermost: consecutive positions then update different addresses (with the
  // positions outermost, tap j + 1 of one position and tap j of the next hit the same
  // element back to back and stall on store forwarding).
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t c = 0; c < it.cb; c += 16) {
        const __m512 wv = _mm512_loadu_ps(wt + (i * g.kw + j) * g.c + it.c0 + c);
        for (int64_t oh = 0; oh < g.ho; ++oh)
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            float* d = gxt + tap_pos(g, p, oh, ow, i, j) * it.cb + c;
            const __m512 gv = _mm512_loadu_ps(got + (oh * g.wo + ow) * it.cb + c);
            _mm512_storeu_ps(d, _mm512_fmadd_ps(wv, gv, _mm512_loadu_ps(d)));
          }
      }
  for (int64_t ih = 0; ih < g.h; ++ih)  // the interior, unpadded, then back to NCHW
    std::memcpy(tmp + ih * g.w * it.cb, gxt + ((ih + g.ph) * p.wp + g.pw) * it.cb,
                sizeof(float) * static_cast<size_t>(g.w * it.cb));
  transpose(grad_x + (it.n * g.c + it.c0) * g.h * g.w, g.h * g.w, tmp, it.cb, g.h * g.w, it.cb);
}

// acc [taps][C] += this item's contribution to the weight gradient.
void backward_weight_item(float* acc, const float* grad_out, const float* x, const ConvGeom& g,
                          const DwPlan& p, const Item& it) {
  float* xt = workspace<float>(2, static_cast<size_t>(p.hp * p.wp * p.cb));
  float* got = workspace<float>(3, static_cast<size_t>(g.p * p.cb));
  float* tmp = workspace<float>(7, static_cast<size_t>(std::max(g.h * g.w, g.p) * p.cb));
  to_channels_last(xt, tmp, x, g, p, it);
  transpose(got, it.cb, grad_out + (it.n * g.c + it.c0) * g.p, g.p, it.cb, g.p);
  for (int64_t c = 0; c < it.cb; c += 16)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        __m512 sum = _mm512_setzero_ps();
        for (int64_t oh = 0; oh < g.ho; ++oh)
          for (int64_t ow = 0; ow < g.wo; ++ow)
            sum = _mm512_fmadd_ps(_mm512_loadu_ps(got + (oh * g.wo + ow) * it.cb + c),
                                  _mm512_loadu_ps(xt + tap_pos(g, p, oh, ow, i, j) * it.cb + c), sum);
        float* a = acc + (i * g.kw + j) * g.c + it.c0 + c;
        _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), sum));
      }
}

}  // namespace

bool dw_channels_last_accepts(const ConvGeom& g) {
  return g.depthwise() && g.co == g.c && g.c % 16 == 0 && (g.sw == 1 || g.sw == 2);
}

void dw_channels_last_forward(float* out, const float* x, const float* w, const float* bias,
                              const ConvGeom& g) {
  const DwPlan p = plan(g);
  const std::vector<float> wt = weights_channels_last(w, g);
  const int64_t items = static_cast<int64_t>(p.items.size());
#pragma omp parallel for schedule(dynamic, 1) if (items > 1)
  for (int64_t k = 0; k < items; ++k)
    forward_item(out, x, wt.data(), bias, g, p, p.items[static_cast<size_t>(k)]);
}

void dw_channels_last_backward_input(float* grad_x, const float* grad_out, const float* w,
                                     const ConvGeom& g) {
  const DwPlan p = plan(g);
  const std::vector<float> wt = weights_channels_last(w, g);
  const int64_t items = static_cast<int64_t>(p.items.size());
#pragma omp parallel for schedule(dynamic, 1) if (items > 1)
  for (int64_t k = 0; k < items; ++k)
    backward_input_item(grad_x, grad_out, wt.data(), g, p, p.items[static_cast<size_t>(k)]);
}

void dw_channels_last_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                      const ConvGeom& g) {
  const DwPlan p = plan(g);
  const int64_t taps = g.kh * g.kw, size = taps * g.c, items = static_cast<int64_t>(p.items.size());
  std::vector<float> summed(static_cast<size_t>(size));  // [taps][C]
  dot::sum_over_sample_chunks(summed.data(), size, items, 1, [&](float* acc, int64_t k, int64_t) {
    backward_weight_item(acc, grad_out, x, g, p, p.items[static_cast<size_t>(k)]);
  });
  for (int64_t c = 0; c < g.c; ++c)  // [taps][C] -> [C][1][KH][KW]
    for (int64_t t = 0; t < taps; ++t) grad_w[c * taps + t] = summed[static_cast<size_t>(t * g.c + c)];
}

}  // namespace ag::cpu
