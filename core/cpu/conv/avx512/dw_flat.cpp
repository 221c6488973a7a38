// Depthwise "same" convolutions (stride 1, dilation 1, odd square kernel up to 5x5,
// output plane = input plane) on square planes 1, 2, 4 or 8 wide, on AVX-512, in place
// in NCHW.
//
// A plane of P = W * W floats is seen as flat: out[pos] = b + sum_t k[t] x[pos + off_t]
// with off_t = (i - ph) W + (j - pw), and lanes whose tap falls outside the plane masked
// off. A unit (one plane of P / 16 vectors, or one vector of 16 / P planes, i.e.
// channels, with per-lane weights) is loaded once with plain loads; each tap is then one
// valignd of two neighbouring vectors with a zero mask (W and the kernel are template
// constants, so the shifts and masks are immediates). Nothing is copied or transposed.
// The channels-last route (dw_channels_last) transposes every item twice and zeroes a
// padded block per item, which costs as much as the arithmetic on such planes; masked loads
// per tap were no better (they are slow when they miss the caches). Taps that never land
// inside the plane (5x5 on 2x2) are cropped off: KC = min(K, 2 W - 1).
#include "core/cpu/conv/avx512/dw_flat.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/cpu/conv/avx512/dw_rows.h"
#include "core/cpu/gemm_util.h"
#include "core/parallel.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its own intrinsics
#pragma GCC diagnostic ignored "-Wuninitialized"        // GCC 12, the gathers' undefined source

namespace ag::cpu {

namespace {

using dw::shifted;
using dw::static_for;

// Geometry of a W x W plane with a KC x KC (cropped) kernel.
template <int W, int KC>
struct Flat {
  static constexpr int P = W * W, V = P >= 16 ? P / 16 : 1, G = P >= 16 ? 1 : 16 / P, T = KC * KC;
  // Lanes of vector vv of a unit whose tap t lands inside the plane.
  static constexpr __mmask16 mask(int vv, int t) {
    const int di = t / KC - KC / 2, dj = t % KC - KC / 2;
    unsigned m = 0;
    for (int l = 0; l < 16; ++l) {
      const int pos = (vv * 16 + l) % P, r = pos / W + di, c = pos % W + dj;
      if (r >= 0 && r < W && c >= 0 && c < W) m |= 1u << l;
    }
    return static_cast<__mmask16>(m);
  }
  static constexpr int offset(int t) { return (t / KC - KC / 2) * W + t % KC - KC / 2; }
  // Lanes of a one-vector plane whose column c + dj (row r + di) stays in the plane.
  static constexpr __mmask16 col_mask(int dj) { return mask(0, KC / 2 * KC + KC / 2 + dj); }
  static constexpr __mmask16 row_mask(int di) { return mask(0, (KC / 2 + di) * KC + KC / 2); }
};

// The kernel of one geometry; the live taps start at row / column t0 of each K x K kernel.
struct Weights {
  const float* w;     // [C][K][K]
  const float* bias;  // [C] or null
  int64_t k, t0;      // kernel size, first live tap row / column
};

template <int W, int KC>
// One channel per unit (planes of 16 floats or more): the weights are broadcasts.
void forward_units(float* out, const float* x, const Weights& wt, int64_t per_sample, int64_t u0,
                   int64_t u1) {
  using F = Flat<W, KC>;
  for (int64_t u = u0; u < u1; ++u) {  // u: unit (n, cu) of the tensor, vectors [u V, u V + V)
    const int64_t cu = u % per_sample;
    __m512 xs[F::V + 4];
    xs[0] = xs[1] = xs[F::V + 2] = xs[F::V + 3] = _mm512_setzero_ps();
    static_for<F::V>([&]<int VV>() { xs[2 + VV] = _mm512_loadu_ps(x + (u * F::V + VV) * 16); });
    const float* kc = wt.w + cu * wt.k * wt.k + wt.t0 * (wt.k + 1);  // tap (t0, t0) of channel cu
    static_for<F::V>([&]<int VV>() {
      __m512 a0 = _mm512_set1_ps(wt.bias ? wt.bias[cu] : 0.f);
      __m512 a1 = _mm512_setzero_ps();
      static_for<F::T>([&]<int t>() {
        constexpr __mmask16 m = F::mask(VV, t);
        if constexpr (m != 0) {
          const __m512 xv = shifted<F::offset(t), VV, m>(xs);
          const __m512 wv = _mm512_set1_ps(kc[(t / KC) * wt.k + t % KC]);
          if constexpr (t % 2 == 0)
            a0 = _mm512_fmadd_ps(wv, xv, a0);
          else
            a1 = _mm512_fmadd_ps(wv, xv, a1);
        }
      });
      _mm512_storeu_ps(out + (u * F::V + VV) * 16, _mm512_add_ps(a0, a1));
    });
  }
}

// One-vector planes (4x4) with a 5x5 kernel, where 25 shifts per vector made the
// shuffle port the limit: separably, x is shifted once per tap column (z_j), each tap
// row's sum y_i = sum_j k[i][j] z_j is formed with FMAs only, and y_i is shifted once by
// its row: 8 shifts instead of 24 for the same 25 FMAs.
template <int W, int KC>
void forward_separable(float* out, const float* x, const Weights& wt, int64_t per_sample, int64_t u0,
                       int64_t u1) {
  using F = Flat<W, KC>;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t cu = u % per_sample;
    const __m512 xs[5] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_loadu_ps(x + u * 16),
                          _mm512_setzero_ps(), _mm512_setzero_ps()};
    __m512 z[KC];
    static_for<KC>([&]<int j>() { z[j] = shifted<j - KC / 2, 0, F::col_mask(j - KC / 2)>(xs); });
    const float* kc = wt.w + cu * wt.k * wt.k + wt.t0 * (wt.k + 1);
    __m512 acc = _mm512_set1_ps(wt.bias ? wt.bias[cu] : 0.f);
    static_for<KC>([&]<int i>() {
      __m512 y[5] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
      y[2] = _mm512_mul_ps(_mm512_set1_ps(kc[i * wt.k]), z[0]);
      static_for<KC - 1>(
          [&]<int j>() { y[2] = _mm512_fmadd_ps(_mm512_set1_ps(kc[i * wt.k + j + 1]), z[j + 1], y[2]); });
      acc = _mm512_add_ps(acc, shifted<(i - KC / 2) * W, 0, F::row_mask(i - KC / 2)>(y));
    });
    _mm512_storeu_ps(out + u * 16, acc);
  }
}

// G > 1 planes per vector (2x2, 1x1): the per-lane weights are whole vectors (a gather
// of G channels per tap), too many to rebuild or reload for every vector of x, so each
// thread takes a range of channel groups and keeps the group's weights in registers
// over the batch.
template <int W, int KC>
void forward_groups(float* out, const float* x, const Weights& wt, int64_t n, int64_t per_sample, int64_t c0,
                    int64_t c1) {
  using F = Flat<W, KC>;
  for (int64_t cu = c0; cu < c1; ++cu) {
    alignas(64) int ch[16];  // lane l: channel l / P of the group
    for (int l = 0; l < 16; ++l) ch[l] = l / F::P;
    const __m512i lane_ch = _mm512_load_si512(ch);
    const __m512i lane_w = _mm512_mullo_epi32(lane_ch, _mm512_set1_epi32(static_cast<int>(wt.k * wt.k)));
    const float* kc = wt.w + cu * F::G * wt.k * wt.k + wt.t0 * (wt.k + 1);  // tap (t0, t0) of channel cu G
    __m512 wv[F::T];
    static_for<F::T>([&]<int t>() { wv[t] = _mm512_i32gather_ps(lane_w, kc + (t / KC) * wt.k + t % KC, 4); });
    const __m512 b = wt.bias ? _mm512_i32gather_ps(lane_ch, wt.bias + cu * F::G, 4) : _mm512_setzero_ps();
    for (int64_t nn = 0; nn < n; ++nn) {
      const int64_t at = (nn * per_sample + cu) * 16;
      const __m512 xs[5] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_loadu_ps(x + at),
                            _mm512_setzero_ps(), _mm512_setzero_ps()};
      __m512 a0 = b, a1 = _mm512_setzero_ps();
      static_for<F::T>([&]<int t>() {
        constexpr __mmask16 m = F::mask(0, t);
        if constexpr (m != 0) {
          if constexpr (t % 2 == 0)
            a0 = _mm512_fmadd_ps(wv[t], shifted<F::offset(t), 0, m>(xs), a0);
          else
            a1 = _mm512_fmadd_ps(wv[t], shifted<F::offset(t), 0, m>(xs), a1);
        }
      });
      _mm512_storeu_ps(out + at, _mm512_add_ps(a0, a1));
    }
  }
}

// acc [c1 - c0][T][16] += the products of grad_out and x over samples [n0, n1) for the
// units [c0, c1) of a sample: a unit's taps stay in registers over the block of samples.
template <int W, int KC>
void weight_units(float* acc, const float* go, const float* x, int64_t per_sample, int64_t c0, int64_t c1,
                  int64_t n0, int64_t n1) {
  using F = Flat<W, KC>;
  for (int64_t cu = c0; cu < c1; ++cu) {
    float* a = acc + (cu - c0) * F::T * 16;
    __m512 s[F::T];
    static_for<F::T>([&]<int t>() { s[t] = _mm512_loadu_ps(a + t * 16); });
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t u = n * per_sample + cu;
      __m512 xs[F::V + 4];
      xs[0] = xs[1] = xs[F::V + 2] = xs[F::V + 3] = _mm512_setzero_ps();
      static_for<F::V>([&]<int VV>() { xs[2 + VV] = _mm512_loadu_ps(x + (u * F::V + VV) * 16); });
      if constexpr (F::V == 1 && F::G == 1 && KC == 5) {  // separable, see forward_separable:
        // sum_p g[p] x[p + di W + dj] = sum_q g[q - di W] (x shifted by dj)[q] over the
        // plane's lanes, so 5 row shifts of g and 4 column shifts of x serve the 25 taps
        __m512 gs[5] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_loadu_ps(go + u * 16),
                        _mm512_setzero_ps(), _mm512_setzero_ps()};
        __m512 z[KC];
        static_for<KC>([&]<int j>() { z[j] = shifted<j - KC / 2, 0, F::col_mask(j - KC / 2)>(xs); });
        static_for<KC>([&]<int i>() {
          const __m512 gi = shifted<-(i - KC / 2) * W, 0, F::row_mask(KC / 2 - i)>(gs);
          static_for<KC>([&]<int j>() { s[i * KC + j] = _mm512_fmadd_ps(gi, z[j], s[i * KC + j]); });
        });
        continue;
      }
      static_for<F::V>([&]<int VV>() {
        const __m512 gv = _mm512_loadu_ps(go + (u * F::V + VV) * 16);
        static_for<F::T>([&]<int t>() {
          constexpr __mmask16 m = F::mask(VV, t);
          if constexpr (m != 0) s[t] = _mm512_fmadd_ps(gv, shifted<F::offset(t), VV, m>(xs), s[t]);
        });
      });
    }
    static_for<F::T>([&]<int t>() { _mm512_storeu_ps(a + t * 16, s[t]); });
  }
}

// Calls f.template operator()<W, KC>() for the geometry's plane width and cropped kernel.
template <typename Fn>
void with_shape(const ConvGeom& g, Fn&& f) {
  const int64_t kc = std::min(g.kh, 2 * g.w - 1);
  if (kc == 1) {
    if (g.w == 1) f.template operator()<1, 1>();
    if (g.w == 2) f.template operator()<2, 1>();
    if (g.w == 4) f.template operator()<4, 1>();
    if (g.w == 8) f.template operator()<8, 1>();
  } else if (kc == 3) {
    if (g.w == 2) f.template operator()<2, 3>();
    if (g.w == 4) f.template operator()<4, 3>();
    if (g.w == 8) f.template operator()<8, 3>();
  } else {
    if (g.w == 4) f.template operator()<4, 5>();
    if (g.w == 8) f.template operator()<8, 5>();
  }
}

// out = conv(x, w) + bias; units split in contiguous ranges over the threads.
void forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  with_shape(g, [&]<int W, int KC>() {
    using F = Flat<W, KC>;
    const int64_t per_sample = g.c / F::G, units = g.n * per_sample, t0 = (g.kh - KC) / 2;
    const Weights wt{w, bias, g.kh, t0};
#pragma omp parallel if (units * F::V * 16 > kParallelThreshold)
    {
      const int u = omp_get_thread_num(), nt = omp_get_num_threads();
      if constexpr (F::G > 1)
        forward_groups<W, KC>(out, x, wt, g.n, per_sample, per_sample * u / nt, per_sample * (u + 1) / nt);
      else if constexpr (F::V == 1 && KC == 5)
        forward_separable<W, KC>(out, x, wt, per_sample, units * u / nt, units * (u + 1) / nt);
      else
        forward_units<W, KC>(out, x, wt, per_sample, units * u / nt, units * (u + 1) / nt);
    }
  });
}

// Each thread owns a contiguous range of units (channels) and sweeps the batch 8 samples
// at a time; the lanes of each plane are summed at the end. No two threads share a
// channel: bitwise the same for any thread count.
void backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  std::fill(grad_w, grad_w + g.c * g.kh * g.kw, 0.f);  // cropped taps stay zero
  with_shape(g, [&]<int W, int KC>() {
    using F = Flat<W, KC>;
    const int64_t per_sample = g.c / F::G, t0 = (g.kh - KC) / 2, lanes = std::min(F::P, 16);
#pragma omp parallel if (g.n * g.c * F::P > kParallelThreshold)
    {
      const int u = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t c0 = per_sample * u / nt, c1 = per_sample * (u + 1) / nt, size = (c1 - c0) * F::T * 16;
      float* acc = workspace<float>(6, static_cast<size_t>(std::max<int64_t>(1, size)));
      std::fill(acc, acc + size, 0.f);
      for (int64_t n0 = 0; n0 < g.n; n0 += 8)
        weight_units<W, KC>(acc, grad_out, x, per_sample, c0, c1, n0, std::min(g.n, n0 + 8));
      for (int64_t cu = c0; cu < c1; ++cu)
        for (int t = 0; t < F::T; ++t) {
          const float* a = acc + ((cu - c0) * F::T + t) * 16;
          for (int64_t l0 = 0; l0 < 16; l0 += lanes) {  // one plane's lanes
            float sum = 0;
            for (int64_t l = l0; l < l0 + lanes; ++l) sum += a[l];
            grad_w[((cu * F::G + l0 / lanes) * g.kh + t0 + t / KC) * g.kw + t0 + t % KC] = sum;
          }
        }
    }
  });
}

}  // namespace

bool dw_flat_accepts(const ConvGeom& g) {
  const int64_t p = g.h * g.w;
  return g.depthwise() && g.co == g.c && g.h == g.w && (g.w == 1 || g.w == 2 || g.w == 4 || g.w == 8) &&
         g.c % std::max<int64_t>(1, 16 / p) == 0 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.kh == g.kw && g.kh % 2 == 1 && g.kh <= 5 && g.ph == g.kh / 2 && g.pw == g.kw / 2;
}

void dw_flat_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  forward(out, x, w, bias, g);
}

// The input gradient of a "same" stride-1 convolution is the forward of grad_out with the
// kernel rotated by 180 degrees (the padding stays (K - 1) / 2).
void dw_flat_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  const int64_t taps = g.kh * g.kw;
  std::vector<float> flipped(static_cast<size_t>(g.c * taps));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t t = 0; t < taps; ++t)
      flipped[static_cast<size_t>(c * taps + t)] = w[c * taps + taps - 1 - t];
  forward(grad_x, grad_out, flipped.data(), nullptr, g);
}

void dw_flat_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  backward_weight(grad_w, grad_out, x, g);
}

}  // namespace ag::cpu
