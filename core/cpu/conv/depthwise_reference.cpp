// Direct CPU kernels for depthwise convolution (groups == C_in, one input channel per
// group, C_out = multiplier * C_in). These layers do ~9-25 FLOPs per element, so they are
// memory-bound: each plane is copied once into a zero-padded per-thread buffer (in L1/L2),
// then every output row is accumulated in registers, 16 outputs at a time, over all taps.
// OpenMP runs over planes (forward, input gradient) or output channels (weight gradient),
// so no two threads ever write the same element.
#include <algorithm>
#include <cstring>

#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"
#include "core/cpu/strided.h"

namespace ag::cpu {

namespace {

constexpr int64_t kBlock = 16;  // outputs per register block

// xp [H + 2 ph, W + 2 pw] = plane [H, W] with a zero border.
template <typename T>
void pad_plane(T* xp, const T* plane, const ConvGeom& g) {
  const int64_t wp = g.w + 2 * g.pw, hp = g.h + 2 * g.ph;
  std::fill(xp, xp + g.ph * wp, T(0));
  for (int64_t ih = 0; ih < g.h; ++ih) {
    T* row = xp + (ih + g.ph) * wp;
    std::fill(row, row + g.pw, T(0));
    std::memcpy(row + g.pw, plane + ih * g.w, static_cast<size_t>(g.w) * sizeof(T));
    std::fill(row + g.pw + g.w, row + wp, T(0));
  }
  std::fill(xp + (g.ph + g.h) * wp, xp + hp * wp, T(0));
}

// One output row: orow[ow] = b + sum_ij k[i, j] * src[i * dh * wp + j * dw + ow * S].
// S is the column stride (1 or 2 as a constant so the loads vectorise; 0 = runtime sw).
template <typename T, int S>
void forward_row(T* orow, const T* src, const T* k, T b, const ConvGeom& g, int64_t wp) {
  const int64_t sw = S ? S : g.sw;
  int64_t ow = 0;
  for (; ow + kBlock <= g.wo; ow += kBlock) {
    T acc[kBlock];
    for (int v = 0; v < kBlock; ++v) acc[v] = b;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T kv = k[i * g.kw + j];
        const T* s = src + i * g.dh * wp + j * g.dw + ow * sw;
        for (int v = 0; v < kBlock; ++v) acc[v] += kv * s[v * sw];
      }
    for (int v = 0; v < kBlock; ++v) orow[ow + v] = acc[v];
  }
  for (; ow < g.wo; ++ow) {
    T acc = b;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) acc += k[i * g.kw + j] * src[i * g.dh * wp + j * g.dw + ow * sw];
    orow[ow] = acc;
  }
}

template <typename T, int S>
void forward_plane(T* o, const T* xp, const T* k, T b, const ConvGeom& g, int64_t wp) {
  for (int64_t oh = 0; oh < g.ho; ++oh) forward_row<T, S>(o + oh * g.wo, xp + oh * g.sh * wp, k, b, g, wp);
}

// gxp [hp, wp] += the scatter of one gradient plane go [HO, WO] through kernel k.
template <typename T, int S>
void scatter_plane(T* gxp, const T* go, const T* k, const ConvGeom& g, int64_t wp) {
  const int64_t sw = S ? S : g.sw;
  for (int64_t oh = 0; oh < g.ho; ++oh) {
    const T* grow = go + oh * g.wo;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T kv = k[i * g.kw + j];
        T* d = gxp + (oh * g.sh + i * g.dh) * wp + j * g.dw;
        for (int64_t ow = 0; ow < g.wo; ++ow) d[ow * sw] += kv * grow[ow];
      }
  }
}

// acc[i, j] += sum over the plane of go[oh, ow] * xp[oh * sh + i * dh, ow * sw + j * dw].
template <typename T, int S>
void weight_plane(double* acc, const T* go, const T* xp, const ConvGeom& g, int64_t wp) {
  const int64_t sw = S ? S : g.sw;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      T sum = 0;
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        const T* grow = go + oh * g.wo;
        const T* xrow = xp + (oh * g.sh + i * g.dh) * wp + j * g.dw;
        for (int64_t ow = 0; ow < g.wo; ++ow) sum += grow[ow] * xrow[ow * sw];
      }
      acc[i * g.kw + j] += sum;
    }
}

// Calls f.template operator()<S>() with the column stride as a constant where one exists.
template <typename F>
void with_stride(int64_t sw, F&& f) {
  if (sw == 1)
    f.template operator()<1>();
  else if (sw == 2)
    f.template operator()<2>();
  else
    f.template operator()<0>();
}

}  // namespace

template <typename T>
void depthwise_forward(T* out, const T* x, const T* w, const T* bias, const ConvGeom& g) {
  const int64_t mult = g.co / g.c, wp = g.w + 2 * g.pw, hp = g.h + 2 * g.ph;
  const int64_t taps = g.kh * g.kw;
  with_stride(g.sw, [&]<int S>() {
#pragma omp parallel for schedule(static) if (g.n * g.co * g.p * taps > kParallelThreshold)
    for (int64_t idx = 0; idx < g.n * g.co; ++idx) {
      const int64_t nn = idx / g.co, co = idx % g.co;
      T* xp = workspace<T>(2, static_cast<size_t>(hp * wp));
      pad_plane(xp, x + (nn * g.c + co / mult) * g.h * g.w, g);
      forward_plane<T, S>(out + idx * g.p, xp, w + co * taps, bias ? bias[co] : T(0), g, wp);
    }
  });
}

template <typename T>
void depthwise_backward_input(T* grad_x, const T* grad_out, const T* w, const ConvGeom& g) {
  const int64_t mult = g.co / g.c, wp = g.w + 2 * g.pw, hp = g.h + 2 * g.ph;
  const int64_t taps = g.kh * g.kw;
  with_stride(g.sw, [&]<int S>() {
#pragma omp parallel for schedule(static) if (g.n * g.co * g.p * taps > kParallelThreshold)
    for (int64_t idx = 0; idx < g.n * g.c; ++idx) {  // one input plane per iteration
      const int64_t nn = idx / g.c, ci = idx % g.c;
      T* gxp = workspace<T>(2, static_cast<size_t>(hp * wp));
      std::fill(gxp, gxp + hp * wp, T(0));
      for (int64_t co = ci * mult; co < (ci + 1) * mult; ++co)
        scatter_plane<T, S>(gxp, grad_out + (nn * g.co + co) * g.p, w + co * taps, g, wp);
      T* plane = grad_x + idx * g.h * g.w;
      for (int64_t ih = 0; ih < g.h; ++ih)
        std::memcpy(plane + ih * g.w, gxp + (ih + g.ph) * wp + g.pw, static_cast<size_t>(g.w) * sizeof(T));
    }
  });
}

template <typename T>
void depthwise_backward_weight(T* grad_w, const T* grad_out, const T* x, const ConvGeom& g) {
  const int64_t mult = g.co / g.c, wp = g.w + 2 * g.pw, hp = g.h + 2 * g.ph;
  const int64_t taps = g.kh * g.kw;
  with_stride(g.sw, [&]<int S>() {
#pragma omp parallel for schedule(static) if (g.n * g.co * g.p * taps > kParallelThreshold)
    for (int64_t co = 0; co < g.co; ++co) {  // one thread owns each output channel's kernel
      T* xp = workspace<T>(2, static_cast<size_t>(hp * wp));
      double* acc = workspace<double>(3, static_cast<size_t>(taps));
      std::fill(acc, acc + taps, 0.0);
      for (int64_t nn = 0; nn < g.n; ++nn) {
        pad_plane(xp, x + (nn * g.c + co / mult) * g.h * g.w, g);
        weight_plane<T, S>(acc, grad_out + (nn * g.co + co) * g.p, xp, g, wp);
      }
      for (int64_t t = 0; t < taps; ++t) grad_w[co * taps + t] = static_cast<T>(acc[t]);
    }
  });
}

template void depthwise_forward<float>(float*, const float*, const float*, const float*, const ConvGeom&);
template void depthwise_forward<double>(double*, const double*, const double*, const double*,
                                        const ConvGeom&);
template void depthwise_backward_input<float>(float*, const float*, const float*, const ConvGeom&);
template void depthwise_backward_input<double>(double*, const double*, const double*, const ConvGeom&);
template void depthwise_backward_weight<float>(float*, const float*, const float*, const ConvGeom&);
template void depthwise_backward_weight<double>(double*, const double*, const double*, const ConvGeom&);

}  // namespace ag::cpu
