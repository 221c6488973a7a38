// The weight gradient of a stride-1 3x3 convolution with few channels on AVX2 + FMA, as
// dot products along the output positions (the AVX-512 build has its own form of it,
// avx512/dot_weight.cpp):
//   gW[co][ci][i][j] = sum over samples and output positions (oh, ow) of
//                      G[co][oh][ow] * Xpad[ci][oh + i][ow + j].
// G rows and the rows of the zero-bordered input are both contiguous along ow, so nothing
// is packed: a tile of 3 output channels x the 3 taps of one kernel row keeps 9 vector
// accumulators over a chunk of samples (3 G loads and 3 X loads for 9 FMAs, the X loads
// of one row at offsets 0, 1, 2 mostly L1 hits), then sums them across lanes. The im2col
// route instead writes the [K, positions] matrix and OpenBLAS packs it again: on
// ResNet-20's 16- to 64-channel layers that ran the weight gradients at 1.2-1.5x the time
// of their forward pass. Threads take chunks of samples into private accumulators, added
// up in thread order at the end (dot_weight_sum.h).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/cpu/conv/dot_weight_sum.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "core/cpu/conv/avx2/ is compiled only for AVX2 + FMA targets (see CMakeLists.txt)"
#endif

namespace ag::cpu {

namespace {

constexpr int kRows = 3;       // output channels per tile
constexpr int64_t kLanes = 8;  // output positions per vector

inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}

// The padded plane's size.
struct Padded {
  int64_t hp, wp;
  explicit Padded(const ConvGeom& g) : hp(g.h + 2 * g.ph), wp(g.w + 2 * g.pw) {}
  int64_t size() const { return hp * wp; }
};

// xp [ns][hp][wp] = input channel ci of samples n0 .. n0 + ns, with a zero border.
void pad_planes(float* xp, const float* x, const ConvGeom& g, const Padded& pd, int64_t n0, int64_t ns,
                int64_t ci) {
  std::memset(xp, 0, sizeof(float) * static_cast<size_t>(ns * pd.size()));
  for (int64_t s = 0; s < ns; ++s) {
    const float* src = x + ((n0 + s) * g.c + ci) * g.h * g.w;
    float* dst = xp + s * pd.size() + g.ph * pd.wp + g.pw;
    for (int64_t ih = 0; ih < g.h; ++ih)
      std::memcpy(dst + ih * pd.wp, src + ih * g.w, sizeof(float) * static_cast<size_t>(g.w));
  }
}

// acc[r][j] += G_r[q .. q + 8) Xpad[x .. x + 8) shifted by j, for VPR consecutive vectors of
// one output row (VPR: wo / 8 as a constant where it is 1, 2 or 4; 0: vpr at run time).
template <int R, int VPR>
inline void row_dots(__m256 acc[][3], const float* const gp[kRows], int64_t q, const float* xr, int64_t vpr) {
  const int64_t count = VPR ? VPR : vpr;
#pragma GCC unroll 4
  for (int64_t v = 0; v < count; ++v) {
    __m256 gv[R];
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r) gv[r] = _mm256_loadu_ps(gp[r] + q + v * kLanes);
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j) {
      __m256 xv = _mm256_loadu_ps(xr + v * kLanes + j);
      // In a register: GCC would fold this load into each of the R FMAs (12 loads for 9
      // FMAs, more than the two 256-bit loads a cycle Zen 3 has room for).
      asm("" : "+x"(xv));
#pragma GCC unroll 3
      for (int r = 0; r < R; ++r) acc[r][j] = _mm256_fmadd_ps(gv[r], xv, acc[r][j]);
    }
  }
}

// out[r][3 i + j] = sum over the ns samples and every output position of
// G_r[oh][ow] Xpad[oh + i][ow + j] for R output channels: G_r at gp[r] in the first sample,
// samples gs apart; xp: the padded planes, samples pd.size() apart.
template <int R, int VPR>
void tile(const float* const gp[kRows], int64_t gs, const float* xp, int64_t ns, const ConvGeom& g,
          const Padded& pd, float out[kRows][9]) {
  const int64_t vpr = g.wo / kLanes;
  for (int64_t i = 0; i < 3; ++i) {
    __m256 acc[R][3];  // the r and j loops unrolled: the 9 accumulators stay in registers
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = acc[r][2] = _mm256_setzero_ps();
    for (int64_t s = 0; s < ns; ++s) {
      const float* xs = xp + s * pd.size() + i * pd.wp;
      for (int64_t oh = 0; oh < g.ho; ++oh)
        row_dots<R, VPR>(acc, gp, s * gs + oh * g.wo, xs + oh * pd.wp, vpr);
    }
#pragma GCC unroll 3
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < 3; ++j) out[r][3 * i + j] = lane_sum(acc[r][j]);
  }
}

// The tile for R output channels with the row length as a constant where it can be.
template <int R>
void tile_rows(const float* const gp[kRows], int64_t gs, const float* xp, int64_t ns, const ConvGeom& g,
               const Padded& pd, float out[kRows][9]) {
  switch (g.wo / kLanes) {
    case 1:
      return tile<R, 1>(gp, gs, xp, ns, g, pd, out);
    case 2:
      return tile<R, 2>(gp, gs, xp, ns, g, pd, out);
    case 4:
      return tile<R, 4>(gp, gs, xp, ns, g, pd, out);
    default:
      return tile<R, 0>(gp, gs, xp, ns, g, pd, out);
  }
}

// acc [CO][C][9] += the contribution of samples n0 .. n0 + ns.
void chunk_weight_grad(float* acc, const float* grad_out, const float* x, const ConvGeom& g, int64_t n0,
                       int64_t ns) {
  const Padded pd(g);
  float* xp = workspace<float>(5, static_cast<size_t>(ns * pd.size()));
  for (int64_t ci = 0; ci < g.c; ++ci) {
    pad_planes(xp, x, g, pd, n0, ns, ci);
    for (int64_t co0 = 0; co0 < g.co;) {
      // tiles of 3 channels; 4 left go as 2 + 2 (a 1-channel tile has only 3 FMA chains)
      const int64_t left = g.co - co0;
      const int rows = left == 4 ? 2 : static_cast<int>(std::min<int64_t>(kRows, left));
      const float* gp[kRows];
      for (int r = 0; r < kRows; ++r) gp[r] = grad_out + (n0 * g.co + co0 + std::min(r, rows - 1)) * g.p;
      float out[kRows][9];
      if (rows == 3)
        tile_rows<3>(gp, g.co * g.p, xp, ns, g, pd, out);
      else if (rows == 2)
        tile_rows<2>(gp, g.co * g.p, xp, ns, g, pd, out);
      else
        tile_rows<1>(gp, g.co * g.p, xp, ns, g, pd, out);
      for (int r = 0; r < rows; ++r)
        for (int t = 0; t < 9; ++t) acc[((co0 + r) * g.c + ci) * 9 + t] += out[r][t];
      co0 += rows;
    }
  }
}

}  // namespace

// Few channels: with more, im2col + OpenBLAS reuses each packed element enough. On the AVX2
// EPYC (docs/benchmarks.md, "The AVX2 machine, evening"; bench --filter conv3x3 --models
// resnet20) ResNet-20's 3 -> 16, 16 -> 16 and 32 -> 32 weight gradients ran 20-50% faster
// this way, but 64 -> 64 on 8x8 planes slower than im2col; ResNet18's wider layers run
// im2col at most of the sgemm ceiling.
bool dot_weight_accepts(const ConvGeom& g) {
  return g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.wo % kLanes == 0 && g.co * g.c <= 32 * 32;
}

void dot_weight_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  // Samples per chunk: a tile's 3 G planes of the chunk (read once per kernel row) in
  // 16 KB, so that they stay in L1 with the padded input planes.
  // (At least 1, also for an empty batch.)
  const int64_t per_chunk = std::max<int64_t>(1, std::min<int64_t>(4096 / (kRows * g.p), g.n));
  dot::sum_over_sample_chunks(
      grad_w, g.co * g.c * 9, g.n, per_chunk,
      [&](float* acc, int64_t n0, int64_t ns) { chunk_weight_grad(acc, grad_out, x, g, n0, ns); });
}

}  // namespace ag::cpu
