// Weight gradient of a stride-1 convolution in the direct_ok geometry of simd.h (rows
// a multiple of 16 wide, or whole 8/4/2-wide rows; or rows cut into 16-wide windows where
// simd.h's widen_ok allows), as dot products: for each kernel tap (i, j),
//   gW[co][ci][i][j] = sum over samples and output positions q of G[co][q] * X_ij[ci][q],
// where X_ij is the input shifted by the tap. Both G rows and X_ij rows are contiguous
// along q (16 positions of one output row per vector; a lane mask does the padding), so
// nothing is packed or transposed: a 4 x 4 register tile of vector accumulators runs
// over a chunk of samples, then is summed across lanes. Threads take sample chunks and
// keep private accumulators, added up at the end.
// 3x3 kernels take a second tile shape: 3 output channels x the 9 taps of one input
// channel. The nine shifted X rows lie in the same few cache lines, so each chunk loads
// 3 G vectors and 9 X vectors (mostly L1 hits) for 27 FMAs, and the samples' data is
// streamed from L2 9 times less often than tap by tap.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv/avx512/simd.h"
#include "core/cpu/conv/dot_weight_sum.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"
#include "core/precision.h"
// GCC 12 warns falsely inside its own lane-reduction intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace ag::cpu {

namespace {

constexpr int kTM = 4, kTN = 4;  // output channels x input channels per register tile

simd::ConvSource source_of(const ConvGeom& g) {
  return {nullptr, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.ho, g.wo};
}

// f(oh, ow, lanes) for each chunk of one sample's output plane: 16 consecutive positions in
// the direct_ok geometry (part of one output row, or whole rows adjacent in memory, so lane
// l's input is always l elements after lane 0's); on a widened plane (simd.h widen_ok) each
// row cut into 16-wide windows, the last one partial.
template <typename F>
void for_each_chunk(const ConvGeom& g, F&& f) {
  if (simd::direct_ok(source_of(g))) {
    for (int64_t q = 0; q < g.p; q += 16)
      f(q / g.wo, q % g.wo, static_cast<int>(std::min<int64_t>(16, g.p - q)));
    return;
  }
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < g.wo; ow += 16) f(oh, ow, static_cast<int>(std::min<int64_t>(16, g.wo - ow)));
}

__mmask16 first_lanes(int lanes) { return static_cast<__mmask16>((1u << lanes) - 1); }

// One tap's view of a sample: for each chunk, the output position of lane 0, the lanes that
// exist (G is read under this mask: a partial window must not read the next row's or past
// the tensor's end), the offset of lane 0's input in the plane and the lanes that read
// inside it. Chunks whose lanes all read padding are dropped.
struct TapView {
  std::vector<int64_t> g_off, x_off;   // per chunk: output position, input offset of lane 0
  std::vector<__mmask16> live, masks;  // lanes that exist, lanes that read inside the input
};

TapView tap_view(const ConvGeom& g, int64_t i, int64_t j) {
  const simd::ConvSource s = source_of(g);
  TapView v;
  for_each_chunk(g, [&](int64_t oh, int64_t ow, int lanes) {
    const __mmask16 m = simd::tap_lane_mask(s, oh, ow, i, j, lanes);
    if (!m) return;
    v.g_off.push_back(oh * g.wo + ow);
    v.x_off.push_back((oh * g.sh - g.ph + i * g.dh) * g.w + ow - g.pw + j * g.dw);
    v.live.push_back(first_lanes(lanes));
    v.masks.push_back(m);
  });
  return v;
}

// acc[r][c] += sum over one sample's positions of g[r][q] * x[c][shifted q].
// (Plain local pointers and a 4 x 4 tile: 16 accumulators + 5 operands stay in registers.)
inline void dot_sample(const float* const g[kTM], const float* const x[kTN], const TapView& tv,
                       __m512 acc[kTM][kTN]) {
  const size_t chunks = tv.masks.size();
  for (size_t ch = 0; ch < chunks; ++ch) {
    const __mmask16 m = tv.masks[ch], live = tv.live[ch];
    const int64_t go = tv.g_off[ch], xo = tv.x_off[ch];
    const __m512 g0 = _mm512_maskz_loadu_ps(live, g[0] + go), g1 = _mm512_maskz_loadu_ps(live, g[1] + go);
    const __m512 g2 = _mm512_maskz_loadu_ps(live, g[2] + go), g3 = _mm512_maskz_loadu_ps(live, g[3] + go);
#pragma GCC unroll 4
    for (int c = 0; c < kTN; ++c) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x[c] + xo);
      acc[0][c] = _mm512_fmadd_ps(g0, xv, acc[0][c]);
      acc[1][c] = _mm512_fmadd_ps(g1, xv, acc[1][c]);
      acc[2][c] = _mm512_fmadd_ps(g2, xv, acc[2][c]);
      acc[3][c] = _mm512_fmadd_ps(g3, xv, acc[3][c]);
    }
  }
}

// out[r][c] += sum over samples 0 .. ns and positions of gp[r][q] * xp[c][shifted q].
// gp, xp: the tile's rows in the first sample; gs, xs: their sample strides (0 for the
// zero rows that pad a partial tile).
void dot_tile(const float* const* gp, const int64_t* gs, const float* const* xp, const int64_t* xs,
              int64_t ns, const TapView& tv, float out[kTM][kTN]) {
  __m512 acc[kTM][kTN];
  for (int r = 0; r < kTM; ++r)
    for (int c = 0; c < kTN; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t s = 0; s < ns; ++s) {
    const float* gr[kTM];
    const float* xr[kTN];
    for (int r = 0; r < kTM; ++r) gr[r] = gp[r] + s * gs[r];
    for (int c = 0; c < kTN; ++c) xr[c] = xp[c] + s * xs[c];
    dot_sample(gr, xr, tv, acc);
  }
  for (int r = 0; r < kTM; ++r)
    for (int c = 0; c < kTN; ++c) out[r][c] += _mm512_reduce_add_ps(acc[r][c]);
}

// acc [CO][C][taps] += the contribution of samples n0 .. n0 + ns.
void chunk_weight_grad(float* acc, const float* grad_out, const float* x, const ConvGeom& g, int64_t n0,
                       int64_t ns, const std::vector<TapView>& views, const float* zeros) {
  const int64_t taps = g.kh * g.kw;
  const float* gp[kTM];
  const float* xp[kTN];
  int64_t gs[kTM], xs[kTN];
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t co0 = 0; co0 < g.co; co0 += kTM)
      for (int64_t ci0 = 0; ci0 < g.c; ci0 += kTN) {
        for (int r = 0; r < kTM; ++r) {
          const bool live = co0 + r < g.co;
          gp[r] = live ? grad_out + (n0 * g.co + co0 + r) * g.p : zeros;
          gs[r] = live ? g.co * g.p : 0;
        }
        for (int c = 0; c < kTN; ++c) {
          const bool live = ci0 + c < g.c;
          xp[c] =
              live ? x + (n0 * g.c + ci0 + c) * g.h * g.w : zeros + 16;  // +16: masked lanes may look left
          xs[c] = live ? g.c * g.h * g.w : 0;
        }
        float out[kTM][kTN] = {};
        dot_tile(gp, gs, xp, xs, ns, views[static_cast<size_t>(t)], out);
        for (int r = 0; r < kTM && co0 + r < g.co; ++r)
          for (int c = 0; c < kTN && ci0 + c < g.c; ++c)
            acc[((co0 + r) * g.c + ci0 + c) * taps + t] += out[r][c];
      }
}

// ---- 3x3 kernels: 3 output channels x all nine taps of one input channel per tile ----

using dot::kRows3;

// The chunks of one sample's output shared by the nine taps: tap t of chunk ch reads
// x_base[ch] + delta[t] under masks[9 ch + t] (no chunk is dropped: a mask may be 0).
struct TapsView {
  std::vector<int64_t> g_off, x_base;
  std::vector<__mmask16> live, masks;  // live: per chunk (as TapView); masks: 9 per chunk
  int64_t delta[9];
};

TapsView taps_view(const ConvGeom& g) {
  const simd::ConvSource s = source_of(g);
  TapsView v;
  for (int64_t t = 0; t < 9; ++t) v.delta[t] = (t / 3) * g.dh * g.w + (t % 3) * g.dw;
  for_each_chunk(g, [&](int64_t oh, int64_t ow, int lanes) {
    v.g_off.push_back(oh * g.wo + ow);
    v.x_base.push_back((oh * g.sh - g.ph) * g.w + ow - g.pw);
    v.live.push_back(first_lanes(lanes));
    for (int64_t t = 0; t < 9; ++t) v.masks.push_back(simd::tap_lane_mask(s, oh, ow, t / 3, t % 3, lanes));
  });
  return v;
}

// out[r][t] = sum over samples 0 .. ns and positions of g[r][q] * x[q shifted by tap t],
// g row r at gp[r] + s * gs[r] in sample s, x at xp + s * xs. One function from the
// zeroed accumulators to their lane sums, so that all 27 stay in registers.
void dot3x3_tile(const float* const gp[kRows3], const int64_t gs[kRows3], const float* xp, int64_t xs,
                 int64_t ns, const TapsView& tv, float out[kRows3][9]) {
  __m512 acc[kRows3][9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) acc[0][t] = acc[1][t] = acc[2][t] = _mm512_setzero_ps();
  const size_t chunks = tv.g_off.size();
  for (int64_t s = 0; s < ns; ++s) {
    const float* g0p = gp[0] + s * gs[0];
    const float* g1p = gp[1] + s * gs[1];
    const float* g2p = gp[2] + s * gs[2];
    const float* x = xp + s * xs;
    for (size_t ch = 0; ch < chunks; ++ch) {
      const int64_t go = tv.g_off[ch];
      const float* xb = x + tv.x_base[ch];
      const __mmask16* m = &tv.masks[9 * ch];
      const __mmask16 live = tv.live[ch];
      const __m512 g0 = _mm512_maskz_loadu_ps(live, g0p + go), g1 = _mm512_maskz_loadu_ps(live, g1p + go),
                   g2 = _mm512_maskz_loadu_ps(live, g2p + go);
#pragma GCC unroll 9
      for (int t = 0; t < 9; ++t) {
        const __m512 xv = _mm512_maskz_loadu_ps(m[t], xb + tv.delta[t]);
        acc[0][t] = _mm512_fmadd_ps(g0, xv, acc[0][t]);
        acc[1][t] = _mm512_fmadd_ps(g1, xv, acc[1][t]);
        acc[2][t] = _mm512_fmadd_ps(g2, xv, acc[2][t]);
      }
    }
  }
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) {
    out[0][t] = _mm512_reduce_add_ps(acc[0][t]);
    out[1][t] = _mm512_reduce_add_ps(acc[1][t]);
    out[2][t] = _mm512_reduce_add_ps(acc[2][t]);
  }
}

}  // namespace

// Dot products win where channels are few (packing would dominate the GEMM); with many
// channels the packed GEMM of implicit_gemm.cpp reuses each packed element enough and is
// faster. Where the geometry is direct_ok the packed GEMM reads its rows in place
// (TapRows), and from 64 x 64 channels it wins in both precisions (2026-12-03, bench, batch
// 128, weight gradient ms, two rounds each, dot vs packed: float32 ResNet18 64->64 at 32x32
// 73-103 vs 59-68, 128->128 at 16x16 69-88 vs 54-57, ResNet-20 64->64 at 8x8 4.1-5.1 vs
// 3.7-4.8, but 32->32 at 16x16 4.0-4.8 vs 5.4-6.5; bf16 ResNet18 64->64 43-48 vs 37-38,
// 128->128 41-47 vs 32, ResNet-20 64->64 at 8x8 3.3 vs 2.3-2.5). Float32 keeps 64 x 64 on
// planes under 256 positions: ResNet-20's whole step ran 1-4% faster so (3 rounds).
// Widened planes (28 or 14 wide) pack by segments, and there the earlier measurements
// hold: up to 128 x 128 channels on planes of 256 positions or more, up to 64 x 64 on any.
bool dot_weight_accepts(const ConvGeom& g) {
  const simd::ConvSource src = source_of(g);
  if (g.groups != 1) return false;
  if (simd::direct_ok(src)) {
    const bool fp32 = matmul_precision() == MatmulPrecision::fp32;
    return g.co * g.c < 64 * 64 || (fp32 && g.co * g.c == 64 * 64 && g.p < 256);
  }
  return simd::widen_ok(src) && (g.co * g.c <= 64 * 64 || (g.co * g.c <= 128 * 128 && g.p >= 256));
}

void dot_weight_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  const int64_t taps = g.kh * g.kw, size = g.co * g.c * taps;
  const bool three = g.kh == 3 && g.kw == 3;
  std::vector<TapView> views;
  for (int64_t i = 0; i < g.kh && !three; ++i)
    for (int64_t j = 0; j < g.kw; ++j) views.push_back(tap_view(g, i, j));
  const TapsView taps3 = three ? taps_view(g) : TapsView();
  // Samples per chunk: at least ~64 vectors per tile between lane reductions.
  const int64_t per_chunk = std::max<int64_t>(1, 2048 / g.p);
  const size_t zero_len = static_cast<size_t>(std::max(g.p, g.h * g.w) + 64);
  float* zeros = workspace<float>(7, zero_len);  // read by every thread: the caller's buffer
  std::memset(zeros, 0, sizeof(float) * zero_len);
  dot::sum_over_sample_chunks(grad_w, size, g.n, per_chunk, [&](float* acc, int64_t n0, int64_t ns) {
    if (three)
      dot::chunk_weight_grad_3x3(
          acc, grad_out, x, g, n0, ns, zeros,
          [&](const float* const* gp, const int64_t* gs, const float* xp, int64_t xs, int64_t count,
              float out[kRows3][9]) { dot3x3_tile(gp, gs, xp, xs, count, taps3, out); });
    else
      chunk_weight_grad(acc, grad_out, x, g, n0, ns, views, zeros);
  });
}

}  // namespace ag::cpu
