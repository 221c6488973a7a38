// Stride-2 depthwise "same" convolutions (3x3 / 5x5, padding K / 2, dilation 1) on 8x8 and
// 16x16 planes, on AVX-512, in place in NCHW: the small stride-2 layers of MobileNetV2 /
// EfficientNet-B0 (8x8 -> 4x4, 16x16 -> 8x8).
//
// The input plane is split in registers into its four polyphase components
// x_ab[r][c] = x[2r + a][2c + b] (one permute per vector). Output (oh, ow) reads input
// (2 oh + di, 2 ow + dj) for di, dj in -K/2 .. K/2, which is component (di & 1, dj & 1) at
// (oh + floor(di / 2), ow + floor(dj / 2)): every tap is a shift of one component on the
// output's grid, i.e. a stride-1 "same" tap on a W/2 x W/2 plane, done like
// dw_flat.cpp with a masked valignd. No masked loads, no transposes, no buffers.
// The input gradient runs the other way: each component sums the gradient shifted back
// by its taps, and the four components are interleaved into the plane.
#include <omp.h>

#include <algorithm>

#include "core/cpu/conv/avx512/dw_flat.h"
#include "core/cpu/conv/avx512/dw_rows.h"
#include "core/cpu/gemm_util.h"
#include "core/parallel.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its own intrinsics

namespace ag::cpu {

namespace {

using dw::shifted;
using dw::static_for;

constexpr int fdiv2(int d) { return (d - (d & 1)) / 2; }  // floor(d / 2)

// W x W input, K x K kernel, Wo x Wo output of V vectors; four components of V vectors.
template <int W, int K>
struct S2 {
  static constexpr int Wo = W / 2, V = Wo * Wo / 16, VI = W * W / 16, T = K * K;
  static constexpr int di(int t) { return t / K - K / 2; }
  static constexpr int dj(int t) { return t % K - K / 2; }
  static constexpr int comp(int t) { return (di(t) & 1) * 2 + (dj(t) & 1); }
  static constexpr int offset(int t) { return fdiv2(di(t)) * Wo + fdiv2(dj(t)); }
  // Lanes of output vector vv whose tap t reads inside its component.
  static constexpr __mmask16 mask(int vv, int t) {
    unsigned m = 0;
    for (int l = 0; l < 16; ++l) {
      const int pos = vv * 16 + l, r = pos / Wo + fdiv2(di(t)), c = pos % Wo + fdiv2(dj(t));
      if (r >= 0 && r < Wo && c >= 0 && c < Wo) m |= 1u << l;
    }
    return static_cast<__mmask16>(m);
  }
};

// xs[a * 2 + b][2 + k] = vector k of component (a, b) of the plane at p [W][W].
template <int W>
__attribute__((always_inline)) inline void split(__m512 xs[4][W * W / 64 + 4], const float* p) {
  constexpr int V = W * W / 64;
  for (int a = 0; a < 4; ++a) xs[a][0] = xs[a][1] = xs[a][V + 2] = xs[a][V + 3] = _mm512_setzero_ps();
  if constexpr (W == 16) {  // vector k of (a, b): rows 2k and 2k + 1 = input rows 4k + a, 4k + 2 + a
    const __m512i idx[2] = {_mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                            _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)};
    static_for<4>([&]<int k>() {
      static_for<4>([&]<int ab>() {
        constexpr int a = ab / 2, b = ab % 2;
        xs[ab][2 + k] = _mm512_permutex2var_ps(_mm512_loadu_ps(p + (4 * k + a) * 16), idx[b],
                                               _mm512_loadu_ps(p + (4 * k + 2 + a) * 16));
      });
    });
  } else {  // W == 8: input vector v holds rows 2v, 2v + 1; component rows r = input rows 2r + a
    const __m512 r0 = _mm512_loadu_ps(p), r1 = _mm512_loadu_ps(p + 16), r2 = _mm512_loadu_ps(p + 32),
                 r3 = _mm512_loadu_ps(p + 48);
    static_for<4>([&]<int ab>() {
      constexpr int a = ab / 2, b = ab % 2, s = a * 8 + b;
      const __m512i idx =
          _mm512_setr_epi32(s, s + 2, s + 4, s + 6, 16 + s, 18 + s, 20 + s, 22 + s, 0, 0, 0, 0, 0, 0, 0, 0);
      const __m512 lo = _mm512_permutex2var_ps(r0, idx, r1), hi = _mm512_permutex2var_ps(r2, idx, r3);
      xs[ab][2] = _mm512_shuffle_f32x4(lo, hi, 0x44);  // lanes 0-7 of lo, then 0-7 of hi
    });
  }
}

template <int W, int K>
void forward_planes(float* out, const float* x, const float* w, const float* bias, int64_t c, int64_t p0,
                    int64_t p1) {
  using S = S2<W, K>;
  for (int64_t pl = p0; pl < p1; ++pl) {
    const int64_t ch = pl % c;
    __m512 xs[4][S::V + 4];
    split<W>(xs, x + pl * W * W);
    static_for<S::V>([&]<int VV>() {
      __m512 a0 = _mm512_set1_ps(bias ? bias[ch] : 0.f), a1 = _mm512_setzero_ps();
      static_for<S::T>([&]<int t>() {
        constexpr __mmask16 m = S::mask(VV, t);
        if constexpr (m != 0) {
          const __m512 xv = shifted<S::offset(t), VV, m>(xs[S::comp(t)]);
          if constexpr (t % 2 == 0)
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[ch * S::T + t]), xv, a0);
          else
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(w[ch * S::T + t]), xv, a1);
        }
      });
      _mm512_storeu_ps(out + (pl * S::V + VV) * 16, _mm512_add_ps(a0, a1));
    });
  }
}

// p [W][W] = the plane whose polyphase components are xs[a * 2 + b][2 + k] (the inverse
// of split: interleave the b = 0 and b = 1 components, then the rows).
template <int W>
__attribute__((always_inline)) inline void merge(float* p, const __m512 xs[4][W * W / 64 + 4]) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  if constexpr (W == 16) {  // input rows 4k + a and 4k + 2 + a from vector k of (a, 0), (a, 1)
    static_for<4>([&]<int k>() {
      static_for<2>([&]<int a>() {
        _mm512_storeu_ps(p + (4 * k + a) * 16,
                         _mm512_permutex2var_ps(xs[a * 2][2 + k], lo, xs[a * 2 + 1][2 + k]));
        _mm512_storeu_ps(p + (4 * k + 2 + a) * 16,
                         _mm512_permutex2var_ps(xs[a * 2][2 + k], hi, xs[a * 2 + 1][2 + k]));
      });
    });
  } else {  // W == 8: rows a of component pairs, then two rows per vector
    const __m512 t0l = _mm512_permutex2var_ps(xs[0][2], lo, xs[1][2]),
                 t0h = _mm512_permutex2var_ps(xs[0][2], hi, xs[1][2]);
    const __m512 t1l = _mm512_permutex2var_ps(xs[2][2], lo, xs[3][2]),
                 t1h = _mm512_permutex2var_ps(xs[2][2], hi, xs[3][2]);
    _mm512_storeu_ps(p, _mm512_shuffle_f32x4(t0l, t1l, 0x44));
    _mm512_storeu_ps(p + 16, _mm512_shuffle_f32x4(t0l, t1l, 0xEE));
    _mm512_storeu_ps(p + 32, _mm512_shuffle_f32x4(t0h, t1h, 0x44));
    _mm512_storeu_ps(p + 48, _mm512_shuffle_f32x4(t0h, t1h, 0xEE));
  }
}

// Lanes of component vector vv whose tap t has its gradient source inside the output.
template <int W, int K>
constexpr __mmask16 source_mask(int vv, int t) {
  using S = S2<W, K>;
  unsigned m = 0;
  for (int l = 0; l < 16; ++l) {
    const int pos = vv * 16 + l, r = pos / S::Wo - fdiv2(S::di(t)), c = pos % S::Wo - fdiv2(S::dj(t));
    if (r >= 0 && r < S::Wo && c >= 0 && c < S::Wo) m |= 1u << l;
  }
  return static_cast<__mmask16>(m);
}

// grad_x: component (a, b) at (r, c) gets k[t] g[r - floor(di / 2)][c - floor(dj / 2)]
// from the taps t of that phase, then the components are merged into the plane.
template <int W, int K>
void backward_input_planes(float* gx, const float* go, const float* w, int64_t c, int64_t p0, int64_t p1) {
  using S = S2<W, K>;
  for (int64_t pl = p0; pl < p1; ++pl) {
    const int64_t ch = pl % c;
    __m512 gs[S::V + 4], xs[4][S::V + 4];
    gs[0] = gs[1] = gs[S::V + 2] = gs[S::V + 3] = _mm512_setzero_ps();
    static_for<S::V>([&]<int VV>() { gs[2 + VV] = _mm512_loadu_ps(go + (pl * S::V + VV) * 16); });
    static_for<4>([&]<int ab>() {
      static_for<S::V>([&]<int VV>() {
        __m512 acc = _mm512_setzero_ps();
        static_for<S::T>([&]<int t>() {
          constexpr __mmask16 m = source_mask<W, K>(VV, t);
          if constexpr (S::comp(t) == ab && m != 0)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(w[ch * S::T + t]), shifted<-S::offset(t), VV, m>(gs), acc);
        });
        xs[ab][2 + VV] = acc;
      });
    });
    merge<W>(gx + pl * W * W, xs);
  }
}

// grad_w[ch] for the channels [c0, c1), over all samples (one thread owns each channel:
// bitwise the same for any thread count); a channel's taps stay in registers.
template <int W, int K>
void weight_channels(float* grad_w, const float* go, const float* x, int64_t n, int64_t c, int64_t c0,
                     int64_t c1) {
  using S = S2<W, K>;
  for (int64_t ch = c0; ch < c1; ++ch) {
    __m512 s[S::T];
    static_for<S::T>([&]<int t>() { s[t] = _mm512_setzero_ps(); });
    for (int64_t nn = 0; nn < n; ++nn) {
      const int64_t pl = nn * c + ch;
      __m512 xs[4][S::V + 4];
      split<W>(xs, x + pl * W * W);
      static_for<S::V>([&]<int VV>() {
        const __m512 gv = _mm512_loadu_ps(go + (pl * S::V + VV) * 16);
        static_for<S::T>([&]<int t>() {
          constexpr __mmask16 m = S::mask(VV, t);
          if constexpr (m != 0)
            s[t] = _mm512_fmadd_ps(gv, shifted<S::offset(t), VV, m>(xs[S::comp(t)]), s[t]);
        });
      });
    }
    static_for<S::T>([&]<int t>() { grad_w[ch * S::T + t] = _mm512_reduce_add_ps(s[t]); });
  }
}


// Calls f.template operator()<W, K>() for the geometry.
template <typename Fn>
void with_shape(const ConvGeom& g, Fn&& f) {
  if (g.w == 8) g.kh == 3 ? f.template operator()<8, 3>() : f.template operator()<8, 5>();
  if (g.w == 16) g.kh == 3 ? f.template operator()<16, 3>() : f.template operator()<16, 5>();
}

}  // namespace

bool dw_flat_s2_accepts(const ConvGeom& g) {
  return g.depthwise() && g.co == g.c && g.h == g.w && (g.w == 8 || g.w == 16) && g.sh == 2 && g.sw == 2 &&
         g.dh == 1 && g.dw == 1 && g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.ph == g.kh / 2 &&
         g.pw == g.kw / 2;
}

void dw_flat_s2_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  const int64_t planes = g.n * g.c;
  with_shape(g, [&]<int W, int K>() {
#pragma omp parallel if (planes * g.p > kParallelThreshold)
    {
      const int u = omp_get_thread_num(), nt = omp_get_num_threads();
      forward_planes<W, K>(out, x, w, bias, g.c, planes * u / nt, planes * (u + 1) / nt);
    }
  });
}

void dw_flat_s2_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  const int64_t planes = g.n * g.c;
  with_shape(g, [&]<int W, int K>() {
#pragma omp parallel if (planes * g.p > kParallelThreshold)
    {
      const int u = omp_get_thread_num(), nt = omp_get_num_threads();
      backward_input_planes<W, K>(grad_x, grad_out, w, g.c, planes * u / nt, planes * (u + 1) / nt);
    }
  });
}

void dw_flat_s2_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  with_shape(g, [&]<int W, int K>() {
#pragma omp parallel if (g.n * g.c * g.p > kParallelThreshold)
    {
      const int u = omp_get_thread_num(), nt = omp_get_num_threads();
      weight_channels<W, K>(grad_w, grad_out, x, g.n, g.c, g.c * u / nt, g.c * (u + 1) / nt);
    }
  });
}

}  // namespace ag::cpu
