// Weight gradient of 3x3 stride-1 convolutions under bf16 matmul precision, as dot products
// on bfloat16 rows: the bf16 form of dot_weight.cpp's 3x3 tile (3 output channels x the 9
// taps of one input channel, 27 accumulators).
//
// vdpbf16ps adds the products of two neighbouring bfloat16 per float32 lane, and along the
// positions q neighbours are what a bfloat16 row in memory already holds: once grad_out and
// x are rounded to bfloat16 arrays (one pass each), a 32-position chunk of G and of the
// tap-shifted X rows are plain masked loads, and lane j sums G[2j] X[2j] + G[2j+1] X[2j+1].
// No packing, no transposes: half the loads and instructions of the float32 tile per
// position. Chunks are 32 consecutive positions of a sample's plane where that reads 32
// consecutive input elements per tap (rows a multiple of 32 wide, or whole rows as wide as
// the input's that tile 32, e.g. 16x16 and 8x8 planes); otherwise each row is cut into
// 32-wide windows (accepted for rows of 24 or more, e.g. 28x28, so a window is mostly live).
#include "core/cpu/conv/kernels.h"
#include "core/error.h"
#include "core/precision.h"

#if defined(__AVX512BF16__)
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/bf16/gemm.h"
#include "core/cpu/conv/avx512/simd.h"
#include "core/cpu/conv/dot_weight_sum.h"
#include "core/cpu/gemm_util.h"
// GCC 12 warns falsely inside its own lane-reduction intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace ag::cpu {

#if defined(__AVX512BF16__)
namespace {

using dot::kRows3;

simd::ConvSource source_of(const ConvGeom& g) {
  return {nullptr, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.ho, g.wo};
}

// Chunks of 32 consecutive positions read 32 consecutive input elements per tap.
bool flat32(const ConvGeom& g) {
  if (g.wo % 32 == 0) return true;
  return 32 % g.wo == 0 && g.w == g.wo && g.p % 32 == 0;
}

// The chunks of one sample's output plane shared by the nine taps: G at g_off[ch] under
// live[ch]; tap t reads X at x_base[ch] + delta[t] under masks[9 ch + t].
struct Chunks {
  std::vector<int64_t> g_off, x_base;
  std::vector<__mmask32> live, masks;
  int64_t delta[9];
};

Chunks make_chunks(const ConvGeom& g) {
  const simd::ConvSource s = source_of(g);
  Chunks v;
  for (int64_t t = 0; t < 9; ++t) v.delta[t] = (t / 3) * g.dh * g.w + (t % 3) * g.dw;
  // A chunk from output (oh, ow), `lanes` long, its second 16 lanes starting at (oh2, ow2).
  const auto add = [&](int64_t oh, int64_t ow, int lanes, int64_t oh2, int64_t ow2) {
    const int low = std::min(lanes, 16), high = lanes - low;
    v.g_off.push_back(oh * g.wo + ow);
    v.x_base.push_back((oh - g.ph) * g.w + ow - g.pw);
    v.live.push_back(static_cast<__mmask32>(lanes == 32 ? 0xffffffffu : (1u << lanes) - 1));
    for (int64_t t = 0; t < 9; ++t) {
      uint32_t m = simd::tap_lane_mask(s, oh, ow, t / 3, t % 3, low);
      if (high > 0) m |= static_cast<uint32_t>(simd::tap_lane_mask(s, oh2, ow2, t / 3, t % 3, high)) << 16;
      v.masks.push_back(static_cast<__mmask32>(m));
    }
  };
  if (flat32(g)) {
    for (int64_t q = 0; q < g.p; q += 32)
      add(q / g.wo, q % g.wo, static_cast<int>(std::min<int64_t>(32, g.p - q)), (q + 16) / g.wo,
          (q + 16) % g.wo);
    return v;
  }
  for (int64_t oh = 0; oh < g.ho; ++oh)
    for (int64_t ow = 0; ow < g.wo; ow += 32)
      add(oh, ow, static_cast<int>(std::min<int64_t>(32, g.wo - ow)), oh, ow + 16);
  return v;
}

// dst[i] = src[i] rounded to bfloat16 (to nearest even, as vcvtneps2bf16), i < n.
void round_rows(uint16_t* dst, const float* src, int64_t n) {
  constexpr int64_t kBlock = 4096;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < (n + kBlock - 1) / kBlock; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    int64_t i = b * kBlock;
    for (; i + 16 <= end; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                          (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    for (; i < end; ++i) {
      const float r = round_to_bf16(src[i]);
      uint32_t u;
      std::memcpy(&u, &r, sizeof u);
      dst[i] = static_cast<uint16_t>(u >> 16);
    }
  }
}

// out[r][t] = sum over samples 0 .. ns and positions of g[r][q] * x[q shifted by tap t],
// g row r at gp[r] + s * gs[r] in sample s, x at xp + s * xs (bfloat16 elements).
void dot3x3_tile(const uint16_t* const gp[kRows3], const int64_t gs[kRows3], const uint16_t* xp, int64_t xs,
                 int64_t ns, const Chunks& cv, float out[kRows3][9]) {
  __m512 acc[kRows3][9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) acc[0][t] = acc[1][t] = acc[2][t] = _mm512_setzero_ps();
  const size_t chunks = cv.g_off.size();
  for (int64_t s = 0; s < ns; ++s) {
    const uint16_t* g0p = gp[0] + s * gs[0];
    const uint16_t* g1p = gp[1] + s * gs[1];
    const uint16_t* g2p = gp[2] + s * gs[2];
    const uint16_t* x = xp + s * xs;
    for (size_t ch = 0; ch < chunks; ++ch) {
      const int64_t go = cv.g_off[ch];
      const uint16_t* xb = x + cv.x_base[ch];
      const __mmask32* m = &cv.masks[9 * ch];
      const __mmask32 live = cv.live[ch];
      const __m512bh g0 = (__m512bh)_mm512_maskz_loadu_epi16(live, g0p + go);
      const __m512bh g1 = (__m512bh)_mm512_maskz_loadu_epi16(live, g1p + go);
      const __m512bh g2 = (__m512bh)_mm512_maskz_loadu_epi16(live, g2p + go);
#pragma GCC unroll 9
      for (int t = 0; t < 9; ++t) {
        const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m[t], xb + cv.delta[t]);
        acc[0][t] = _mm512_dpbf16_ps(acc[0][t], g0, xv);
        acc[1][t] = _mm512_dpbf16_ps(acc[1][t], g1, xv);
        acc[2][t] = _mm512_dpbf16_ps(acc[2][t], g2, xv);
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

bool dot_weight_bf16_accepts(const ConvGeom& g) {
  return matmul_precision() == MatmulPrecision::bf16 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 &&
         dot_weight_accepts(g) && (flat32(g) || g.wo >= 24);
}

void dot_weight_bf16_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                     const ConvGeom& g) {
  const int64_t size = g.co * g.c * 9, g_len = g.n * g.co * g.p, x_len = g.n * g.c * g.h * g.w;
  uint16_t* g16 = workspace<uint16_t>(0, static_cast<size_t>(g_len));
  uint16_t* x16 = workspace<uint16_t>(1, static_cast<size_t>(x_len));
  round_rows(g16, grad_out, g_len);
  round_rows(x16, x, x_len);
  const Chunks cv = make_chunks(g);
  // Samples per chunk: at least ~64 vectors per tile between lane reductions.
  const int64_t per_chunk = std::max<int64_t>(1, 4096 / g.p);
  const size_t zero_len = static_cast<size_t>(std::max(g.p, g.h * g.w) + 64);
  uint16_t* zeros = workspace<uint16_t>(7, zero_len);  // read by every thread: the caller's buffer
  std::memset(zeros, 0, sizeof(uint16_t) * zero_len);
  dot::sum_over_sample_chunks(grad_w, size, g.n, per_chunk, [&](float* acc, int64_t n0, int64_t ns) {
    dot::chunk_weight_grad_3x3(
        acc, g16, x16, g, n0, ns, zeros,
        [&](const uint16_t* const* gp, const int64_t* gs, const uint16_t* xp, int64_t xs, int64_t count,
            float out[kRows3][9]) { dot3x3_tile(gp, gs, xp, xs, count, cv, out); });
  });
}

#else  // no AVX512-BF16 in this build: the route takes nothing

bool dot_weight_bf16_accepts(const ConvGeom&) { return false; }
void dot_weight_bf16_backward_weight(float*, const float*, const float*, const ConvGeom&) {
  AG_CHECK(false, "dot_weight_bf16: built without AVX512-BF16");
}

#endif

}  // namespace ag::cpu
