// Depthwise weight gradient on AVX-512 for the planes the row kernels take (output rows
// 16-128 wide, stride 1 or 2, 3x3 or 5x5):
//   grad_w[c][i][j] = sum over n, oh, ow of grad_out[n][c][oh][ow] * x[n][c][ih][iw].
// The batch is streamed in memory order: each thread takes a contiguous range of the
// N * C planes (static, so the split depends on the thread count only) and keeps one
// 16-lane vector accumulator per channel and tap, [C][taps][16] floats in its workspace.
// A plane's taps live in registers while the plane is swept and are added to the
// thread's accumulators once per plane. Walking channel by channel instead strides by
// C*H*W between planes, which the prefetchers do not follow: measured, that runs at a
// third of the forward's speed. The partial sums are added in thread order and reduced
// over lanes at the end: bitwise the same for a given thread count.
#include <omp.h>

#include <vector>

#include "core/cpu/conv/avx512/dw_rows.h"
#include "core/cpu/gemm_util.h"
#include "core/parallel.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its own intrinsics

namespace ag::cpu {

namespace {

using namespace dw;

// acc[t] += sum over the plane of g[oh][ow] * src[tap t's input] (K x K a constant, so
// the accumulators live in registers; padding rows read through a zero mask). Stride 1
// with dilation: the general masked form.
template <int K>
__attribute__((always_inline)) inline void plane_weight_masked(__m512 acc[K * K], const float* g,
                                                               const float* src, const PlaneGeom& pg,
                                                               const RowMasks& rm) {
  for (int64_t oh = 0; oh < pg.ho; ++oh)
    for (int64_t ch = 0; ch < pg.chunks(); ++ch) {
      const __m512 gv = load_lanes<1>(g + oh * pg.wo + ch * 16, rm.store[ch]);
#pragma GCC unroll 5
      for (int i = 0; i < K; ++i) {
        const int64_t ih = oh * pg.sh - pg.ph + i * pg.dh;
        const bool ok = ih >= 0 && ih < pg.h;
        const float* row = src + (ok ? ih * pg.w : 0);
        const __mmask16 live = ok ? 0xffff : 0;
#pragma GCC unroll 5
        for (int j = 0; j < K; ++j)
          acc[i * K + j] =
              _mm512_fmadd_ps(gv, load_lanes<1>(row + rm.col0[j][ch], rm.load[j][ch] & live), acc[i * K + j]);
      }
    }
}

// Stride 1, dilation 1: each input row is loaded once (K shifted vectors) and meets the K
// gradient rows it contributes to (row ih feeds output row ih + ph - i through tap row i).
template <int K>
__attribute__((always_inline)) inline void plane_weight_rolling(__m512 acc[K * K], const float* g,
                                                                const float* src, const PlaneGeom& pg,
                                                                const RowMasks& rm) {
  for (int64_t ch = 0; ch < pg.chunks(); ++ch)
    for (int64_t ih = 0; ih < pg.h; ++ih) {
      const float* row = src + ih * pg.w;
      __m512 sv[K];
#pragma GCC unroll 5
      for (int j = 0; j < K; ++j) sv[j] = load_lanes<1>(row + rm.col0[j][ch], rm.load[j][ch]);
#pragma GCC unroll 5
      for (int i = 0; i < K; ++i) {
        const int64_t oh = ih + pg.ph - i;
        const bool ok = oh >= 0 && oh < pg.ho;
        const __m512 gv = load_lanes<1>(g + (ok ? oh : 0) * pg.wo + ch * 16, ok ? rm.store[ch] : 0);
#pragma GCC unroll 5
        for (int j = 0; j < K; ++j) acc[i * K + j] = _mm512_fmadd_ps(gv, sv[j], acc[i * K + j]);
      }
    }
}

// Stride 2, dilation 1, on the even / odd split of the plane (SplitRows): every tap is
// one unmasked load; the gradient's lanes past the row end are zero, so the lanes they
// meet do not count.
template <int K>
__attribute__((always_inline)) inline void plane_weight_split(__m512 acc[K * K], const float* g,
                                                              const SplitRows& s, const PlaneGeom& pg,
                                                              const RowMasks& rm) {
  int64_t off[K];
  for (int j = 0; j < K; ++j) off[j] = SplitRows::offset(j - pg.pw, s.half_w);
  for (int64_t oh = 0; oh < pg.ho; ++oh)
    for (int64_t ch = 0; ch < pg.chunks(); ++ch) {
      const __m512 gv = load_lanes<1>(g + oh * pg.wo + ch * 16, rm.store[ch]);
#pragma GCC unroll 5
      for (int i = 0; i < K; ++i) {
        const float* row = s.row(oh * 2 - pg.ph + i) + ch * 16;
#pragma GCC unroll 5
        for (int j = 0; j < K; ++j)
          acc[i * K + j] = _mm512_fmadd_ps(gv, _mm512_loadu_ps(row + off[j]), acc[i * K + j]);
      }
    }
}

enum class Sweep { rolling, masked, split };

// accs [C][K * K][16] += this thread's planes [p0, p1) of the batch.
template <int K, Sweep S>
void weight_planes(float* accs, const float* grad_out, const float* x, const ConvGeom& g, int64_t p0,
                   int64_t p1) {
  const PlaneGeom pg = geom_of(g);
  const RowMasks rm = row_masks(pg);
  SplitRows split{};
  if constexpr (S == Sweep::split) split = split_rows_buffer(g);
  for (int64_t pl = p0; pl < p1; ++pl) {
    float* a = accs + (pl % g.c) * K * K * 16;
    const float* gp = grad_out + pl * g.p;  // [ho][wo]
    const float* xp = x + pl * g.h * g.w;   // [h][w]
    __m512 acc[K * K];
#pragma GCC unroll 25
    for (int t = 0; t < K * K; ++t) acc[t] = _mm512_loadu_ps(a + t * 16);
    if constexpr (S == Sweep::rolling) plane_weight_rolling<K>(acc, gp, xp, pg, rm);
    if constexpr (S == Sweep::masked) plane_weight_masked<K>(acc, gp, xp, pg, rm);
    if constexpr (S == Sweep::split) {
      split_plane(split, xp);
      plane_weight_split<K>(acc, gp, split, pg, rm);
    }
#pragma GCC unroll 25
    for (int t = 0; t < K * K; ++t) _mm512_storeu_ps(a + t * 16, acc[t]);
  }
}

template <int K, Sweep S>
void weight_grad(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  const int64_t taps = K * K, planes = g.n * g.c, size = g.c * taps * 16;
  std::vector<float*> partial(static_cast<size_t>(omp_get_max_threads()), nullptr);
  int used = 1;
#pragma omp parallel if (planes * g.p > kParallelThreshold)
  {
    const int u = omp_get_thread_num(), nt = omp_get_num_threads();
    if (u == 0) used = nt;
    float* accs = workspace<float>(6, static_cast<size_t>(size));  // [C][taps][16]
    std::fill(accs, accs + size, 0.f);
    partial[static_cast<size_t>(u)] = accs;
    weight_planes<K, S>(accs, grad_out, x, g, planes * u / nt, planes * (u + 1) / nt);
  }
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t at = (c * taps + t) * 16;
      __m512 sum = _mm512_loadu_ps(partial[0] + at);
      for (int u = 1; u < used; ++u)
        sum = _mm512_add_ps(sum, _mm512_loadu_ps(partial[static_cast<size_t>(u)] + at));
      grad_w[c * taps + t] = _mm512_reduce_add_ps(sum);
    }
}

template <int K>
void weight_grad_for(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  if (g.sw == 2)
    weight_grad<K, Sweep::split>(grad_w, grad_out, x, g);
  else if (g.dh == 1 && g.dw == 1)
    weight_grad<K, Sweep::rolling>(grad_w, grad_out, x, g);
  else
    weight_grad<K, Sweep::masked>(grad_w, grad_out, x, g);
}

}  // namespace

bool dw_stream_weight_accepts(const ConvGeom& g) {
  return rows_ok(g, g.sw == 2 ? kS2MinWo : 16) && g.kh == g.kw && g.sh == g.sw && (g.kh == 3 || g.kh == 5) &&
         (g.sw == 1 || (g.dh == 1 && g.dw == 1));  // the split rows of stride 2 assume dilation 1
}

void dw_stream_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  if (g.kh == 3)
    weight_grad_for<3>(grad_w, grad_out, x, g);
  else
    weight_grad_for<5>(grad_w, grad_out, x, g);
}

}  // namespace ag::cpu
