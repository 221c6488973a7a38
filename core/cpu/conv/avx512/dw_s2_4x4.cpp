// Stride-2 depthwise "same" convolutions (3x3 / 5x5, padding K / 2) on 4x4 planes
// (2x2 outputs), on AVX-512, in place in NCHW: EfficientNet-B0's last stride-2 layer.
//
// As in dw_flat_s2.cpp, every tap is a shift of one polyphase component
// x_ab[r][c] = x[2r + a][2c + b] on the output grid; here a component is 4 floats, so one
// vector holds the components of 4 channels (lane 4 g + 2 r + c for channel c0 + g), the
// weights are per lane (gathered once per group of 4 channels, kept in registers while
// the group is swept over the batch), and the output vector is the 4 channels' 2x2
// planes, contiguous in NCHW.
#include <omp.h>

#include <algorithm>

#include "core/cpu/conv/avx512/dw_flat.h"
#include "core/cpu/conv/avx512/dw_rows.h"
#include "core/parallel.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its own intrinsics
#pragma GCC diagnostic ignored "-Wuninitialized"        // GCC 12, the gathers' undefined source

namespace ag::cpu {

namespace {

using dw::shifted;
using dw::static_for;

constexpr int fdiv2(int d) { return (d - (d & 1)) / 2; }  // floor(d / 2)

template <int K>
struct Tap {
  static constexpr int T = K * K;
  static constexpr int di(int t) { return t / K - K / 2; }
  static constexpr int dj(int t) { return t % K - K / 2; }
  static constexpr int comp(int t) { return (di(t) & 1) * 2 + (dj(t) & 1); }
  static constexpr int offset(int t) { return fdiv2(di(t)) * 2 + fdiv2(dj(t)); }
  // Lanes (g, r, c) whose source (r + s fdiv2(di), c + s fdiv2(dj)) is inside the 2x2
  // plane: s = 1 reads a component (forward, weight), s = -1 reads the gradient.
  static constexpr __mmask16 mask(int t, int s) {
    unsigned m = 0;
    for (int l = 0; l < 16; ++l) {
      const int r = (l % 4) / 2 + s * fdiv2(di(t)), c = l % 2 + s * fdiv2(dj(t));
      if (r >= 0 && r < 2 && c >= 0 && c < 2) m |= 1u << l;
    }
    return static_cast<__mmask16>(m);
  }
};

// xs[ab][2] = component (a, b) of the 4 planes at p [4][4][4], zero vectors around.
__attribute__((always_inline)) inline void split4(__m512 xs[4][5], const float* p) {
  const __m512 v0 = _mm512_loadu_ps(p), v1 = _mm512_loadu_ps(p + 16), v2 = _mm512_loadu_ps(p + 32),
               v3 = _mm512_loadu_ps(p + 48);
  static_for<4>([&]<int ab>() {
    constexpr int s = (ab / 2) * 4 + ab % 2;  // plane lane of (r, c) = (0, 0)
    const __m512i idx =
        _mm512_setr_epi32(s, s + 2, s + 8, s + 10, 16 + s, 18 + s, 24 + s, 26 + s, 0, 0, 0, 0, 0, 0, 0, 0);
    xs[ab][0] = xs[ab][1] = xs[ab][3] = xs[ab][4] = _mm512_setzero_ps();
    xs[ab][2] =
        _mm512_shuffle_f32x4(_mm512_permutex2var_ps(v0, idx, v1), _mm512_permutex2var_ps(v2, idx, v3), 0x44);
  });
}

// p [4][4][4] = the planes whose components are cs[ab] (the inverse of split4): lane q of
// plane g is lane 4 g + 2 (q / 8) + (q % 4) / 2 of component ((q / 4) % 2, q % 2).
__attribute__((always_inline)) inline void merge4(float* p, const __m512 cs[4]) {
  static_for<4>([&]<int g>() {
    constexpr int b = 4 * g;
    const __m512i idx = _mm512_setr_epi32(b, b, b + 1, b + 1, b, b, b + 1, b + 1, b + 2, b + 2, b + 3, b + 3,
                                          b + 2, b + 2, b + 3, b + 3);
    __m512 v = _mm512_maskz_permutexvar_ps(0x0505, idx, cs[0]);  // a = 0, b = 0
    v = _mm512_mask_permutexvar_ps(v, 0x0a0a, idx, cs[1]);
    v = _mm512_mask_permutexvar_ps(v, 0x5050, idx, cs[2]);
    v = _mm512_mask_permutexvar_ps(v, 0xa0a0, idx, cs[3]);
    _mm512_storeu_ps(p + g * 16, v);
  });
}

// wv[t] lane l = k[c0 + l / 4][t]: the group's per-lane weights.
template <int K>
__attribute__((always_inline)) inline void group_weights(__m512 wv[K * K], const float* w, int64_t c0) {
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, K * K, K * K, K * K, K * K, 2 * K * K, 2 * K * K,
                                        2 * K * K, 2 * K * K, 3 * K * K, 3 * K * K, 3 * K * K, 3 * K * K);
  static_for<K * K>([&]<int t>() { wv[t] = _mm512_i32gather_ps(idx, w + c0 * K * K + t, 4); });
}

// The three kernels over the groups [g0, g1) of 4 channels, all samples.
template <int K>
void forward_groups(float* out, const float* x, const float* w, const float* bias, int64_t n, int64_t c,
                    int64_t g0, int64_t g1) {
  using S = Tap<K>;
  for (int64_t gr = g0; gr < g1; ++gr) {
    __m512 wv[S::T];
    group_weights<K>(wv, w, gr * 4);
    const __m512i lane_ch = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512 b = bias ? _mm512_i32gather_ps(lane_ch, bias + gr * 4, 4) : _mm512_setzero_ps();
    for (int64_t nn = 0; nn < n; ++nn) {
      const int64_t pl = nn * c + gr * 4;  // first of the 4 planes
      __m512 xs[4][5];
      split4(xs, x + pl * 16);
      __m512 a0 = b, a1 = _mm512_setzero_ps();
      static_for<S::T>([&]<int t>() {
        const __m512 xv = shifted<S::offset(t), 0, S::mask(t, 1)>(xs[S::comp(t)]);
        if constexpr (t % 2 == 0)
          a0 = _mm512_fmadd_ps(wv[t], xv, a0);
        else
          a1 = _mm512_fmadd_ps(wv[t], xv, a1);
      });
      _mm512_storeu_ps(out + pl * 4, _mm512_add_ps(a0, a1));
    }
  }
}

template <int K>
void backward_input_groups(float* gx, const float* go, const float* w, int64_t n, int64_t c, int64_t g0,
                           int64_t g1) {
  using S = Tap<K>;
  for (int64_t gr = g0; gr < g1; ++gr) {
    __m512 wv[S::T];
    group_weights<K>(wv, w, gr * 4);
    for (int64_t nn = 0; nn < n; ++nn) {
      const int64_t pl = nn * c + gr * 4;
      const __m512 gs[5] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_loadu_ps(go + pl * 4),
                            _mm512_setzero_ps(), _mm512_setzero_ps()};
      __m512 cs[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      static_for<S::T>([&]<int t>() {
        cs[S::comp(t)] =
            _mm512_fmadd_ps(wv[t], shifted<-S::offset(t), 0, S::mask(t, -1)>(gs), cs[S::comp(t)]);
      });
      merge4(gx + pl * 16, cs);
    }
  }
}

template <int K>
void weight_groups(float* grad_w, const float* go, const float* x, int64_t n, int64_t c, int64_t g0,
                   int64_t g1) {
  using S = Tap<K>;
  for (int64_t gr = g0; gr < g1; ++gr) {
    __m512 s[S::T];
    static_for<S::T>([&]<int t>() { s[t] = _mm512_setzero_ps(); });
    for (int64_t nn = 0; nn < n; ++nn) {
      const int64_t pl = nn * c + gr * 4;
      __m512 xs[4][5];
      split4(xs, x + pl * 16);
      const __m512 gv = _mm512_loadu_ps(go + pl * 4);
      static_for<S::T>([&]<int t>() {
        s[t] = _mm512_fmadd_ps(gv, shifted<S::offset(t), 0, S::mask(t, 1)>(xs[S::comp(t)]), s[t]);
      });
    }
    static_for<S::T>([&]<int t>() {  // lanes 4 g .. 4 g + 3 belong to channel 4 gr + g
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, s[t]);
      for (int g = 0; g < 4; ++g)
        grad_w[(gr * 4 + g) * S::T + t] =
            (lanes[4 * g] + lanes[4 * g + 1]) + (lanes[4 * g + 2] + lanes[4 * g + 3]);
    });
  }
}


// Runs f.template operator()<K>(g0, g1) on each thread's contiguous range of channel
// groups (a channel is never split: bitwise the same for any thread count).
template <typename Fn>
void over_groups(const ConvGeom& g, Fn&& f) {
  const int64_t groups = g.c / 4;
#pragma omp parallel if (g.n * g.c * 16 > kParallelThreshold)
  {
    const int u = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t g0 = groups * u / nt, g1 = groups * (u + 1) / nt;
    if (g.kh == 3)
      f.template operator()<3>(g0, g1);
    else
      f.template operator()<5>(g0, g1);
  }
}

}  // namespace

bool dw_s2_4x4_accepts(const ConvGeom& g) {
  return g.depthwise() && g.co == g.c && g.c % 4 == 0 && g.h == 4 && g.w == 4 && g.sh == 2 && g.sw == 2 &&
         g.dh == 1 && g.dw == 1 && g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.ph == g.kh / 2 &&
         g.pw == g.kw / 2;
}

void dw_s2_4x4_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  over_groups(g,
              [&]<int K>(int64_t g0, int64_t g1) { forward_groups<K>(out, x, w, bias, g.n, g.c, g0, g1); });
}

void dw_s2_4x4_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  over_groups(g, [&]<int K>(int64_t g0, int64_t g1) {
    backward_input_groups<K>(grad_x, grad_out, w, g.n, g.c, g0, g1);
  });
}

void dw_s2_4x4_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  over_groups(
      g, [&]<int K>(int64_t g0, int64_t g1) { weight_groups<K>(grad_w, grad_out, x, g.n, g.c, g0, g1); });
}

}  // namespace ag::cpu
