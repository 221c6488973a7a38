// Depthwise convolution on AVX2 + FMA in channels-last order: one input channel per group,
// multiplier 1, a channel count that is a multiple of 8, any plane, stride, padding and
// dilation. The only depthwise route of an AVX2 build besides the reference loops
// (routes.cpp); the AVX-512 build has its own form of it (avx512/dw_channels_last.cpp)
// among its in-place NCHW kernels.
//
// Depthwise layers do 9-25 multiply-adds per element, so they must run at memory speed;
// in NCHW their planes (32x32 down to 2x2 in MobileNetV2 and EfficientNet on CIFAR) make
// rows too short to fill 8-lane vectors, and the reference loops ran them at 1.5-9 GFLOP/s
// (55% of a MobileNetV2 training step on an AVX2 EPYC). So each work item (a block of
// channels of one sample) is transposed in cache to channels-last, [H + 2 ph][W + 2 pw]
// [channels] with a zero border, where every position is whole 8-channel vectors and every
// tap a per-channel weight vector (no masks, no gathers, any plane), then transposed back.
// The transposes use 8x8 register blocks.
//
// The stride-1 input gradient is a forward pass with the flipped kernel; other strides
// scatter. Work items run on OpenMP threads. The forward pass and the input gradient take one
// (sample, channel block) an item; the weight gradient one channel block an item, over
// every sample in order, so that its sums do not depend on the thread count.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv/channels_last.h"
#include "core/cpu/conv/flip.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "core/cpu/conv/avx2/ is compiled only for AVX2 + FMA targets (see CMakeLists.txt)"
#endif

namespace ag::cpu {

namespace {

constexpr int64_t kLanes = 8;  // channels per vector
constexpr int kRun = 4;        // output positions of one row computed together (4 accumulators)

// r[s][t] = r[t][s]: the 8x8 block of rows r transposed in registers.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 2; ++k) {
    const int a = 4 * k;
    s[a] = _mm256_shuffle_ps(t[a], t[a + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[a + 1] = _mm256_shuffle_ps(t[a], t[a + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[a + 2] = _mm256_shuffle_ps(t[a + 1], t[a + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[a + 3] = _mm256_shuffle_ps(t[a + 1], t[a + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
    r[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
  }
}

// dst[s * ldd + r] = src[r * lds + s] for r < rows, s < cols.
void transpose(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols) {
  int64_t r0 = 0;
  for (; r0 + kLanes <= rows; r0 += kLanes) {
    int64_t s0 = 0;
    for (; s0 + kLanes <= cols; s0 += kLanes) {
      __m256 blk[kLanes];
      for (int r = 0; r < kLanes; ++r) blk[r] = _mm256_loadu_ps(src + (r0 + r) * lds + s0);
      transpose8(blk);
      for (int s = 0; s < kLanes; ++s) _mm256_storeu_ps(dst + (s0 + s) * ldd + r0, blk[s]);
    }
    for (; s0 < cols; ++s0)
      for (int r = 0; r < kLanes; ++r) dst[s0 * ldd + r0 + r] = src[(r0 + r) * lds + s0];
  }
  for (; r0 < rows; ++r0)
    for (int64_t s = 0; s < cols; ++s) dst[s * ldd + r0] = src[r0 * lds + s];
}

// Channels [c0, c0 + cb) of sample n.
struct Item {
  int64_t n, c0, cb;
};

struct Plan {
  int64_t hp, wp;  // the padded plane
  int64_t cb;      // channels per block, a multiple of kLanes
};

// Blocks of ~64 KiB channels-last planes, so that an item's buffers stay in L2; capped
// so that there are at least `min_blocks` blocks where the channels allow.
Plan plan(const ConvGeom& g, int64_t min_blocks = 1) {
  Plan p{g.h + 2 * g.ph, g.w + 2 * g.pw, 0};
  const int64_t fit = 16384 / (p.hp * p.wp) / kLanes * kLanes;
  const int64_t spread = (g.c / kLanes + min_blocks - 1) / min_blocks * kLanes;
  p.cb = std::clamp<int64_t>(std::min(fit, spread), kLanes, g.c);
  return p;
}

// The per-thread buffers of one item: a padded plane [hp][wp][cb], an output-sized
// [ho * wo][cb] and an unpadded [h * w][cb] (for the transposes).
struct Buffers {
  float *padded, *positions, *plane;
};
Buffers buffers(const ConvGeom& g, const Plan& p) {
  return {workspace<float>(2, static_cast<size_t>(p.hp * p.wp * p.cb)),
          workspace<float>(3, static_cast<size_t>(g.p * p.cb)),
          workspace<float>(7, static_cast<size_t>(g.h * g.w * p.cb))};
}

// xt [hp][wp][cb] = the item's channels of an NCHW tensor [N, C, H, W], channels-last,
// zero border. Rows of whole 8-position blocks are transposed straight into their padded
// rows; other planes (4x4, 7x7) through plane: [h * w][cb] scratch.
void to_padded(float* xt, float* plane, const float* src, const ConvGeom& g, const Plan& p, const Item& it) {
  const int64_t hw = g.h * g.w, row = p.wp * it.cb;
  const size_t border = sizeof(float) * static_cast<size_t>(g.pw * it.cb);
  const float* first = src + (it.n * g.c + it.c0) * hw;
  const bool by_rows = g.w % kLanes == 0;
  if (!by_rows) transpose(plane, it.cb, first, hw, it.cb, hw);
  std::memset(xt, 0, sizeof(float) * static_cast<size_t>(g.ph * row));
  for (int64_t ih = 0; ih < g.h; ++ih) {
    float* dst = xt + (ih + g.ph) * row;
    std::memset(dst, 0, border);
    if (by_rows)
      transpose(dst + g.pw * it.cb, it.cb, first + ih * g.w, hw, it.cb, g.w);
    else
      std::memcpy(dst + g.pw * it.cb, plane + ih * g.w * it.cb,
                  sizeof(float) * static_cast<size_t>(g.w * it.cb));
    std::memset(dst + (g.pw + g.w) * it.cb, 0, border);
  }
  std::memset(xt + (g.ph + g.h) * row, 0, sizeof(float) * static_cast<size_t>((p.hp - g.ph - g.h) * row));
}

// The offset, in positions of the padded plane, of tap (i, j) from an output's first tap.
inline int64_t tap_offset(const ConvGeom& g, const Plan& p, int64_t i, int64_t j) {
  return i * g.dh * p.wp + j * g.dw;
}

// acc[r] (r < R) = b + sum over taps of wt[tap] xt[tap's input of output (oh, ow0 + r)] for
// one 8-channel vector; xrow: the padded plane at the first tap of output (oh, 0), positions
// `stride` floats apart (cb); wc: the vector's weights, taps C floats apart. Inlined into
// both callers with R constant, so that the accumulators stay in registers.
template <int R>
inline void taps_sum(__m256 acc[R], const float* xrow, const float* wc, __m256 b, const ConvGeom& g,
                     const Plan& p, int64_t ow0, int64_t stride) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = b;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const __m256 wv = _mm256_loadu_ps(wc + (i * g.kw + j) * g.c);
      const float* src = xrow + (tap_offset(g, p, i, j) + ow0 * g.sw) * stride;
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        acc[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src + r * g.sw * stride), acc[r]);
    }
}

// Output rows of whole 8-position blocks: 8 positions x 8 channels in registers,
// transposed there and stored straight into the NCHW output (no channels-last output
// buffer, no second transpose pass). out: channel c0 + c of sample n, [HO * WO] a channel.
void forward_blocks(float* out, const float* xt, const float* wc, __m256 b, const ConvGeom& g, const Plan& p,
                    int64_t cb) {
  for (int64_t oh = 0; oh < g.ho; ++oh) {
    const float* xrow = xt + oh * g.sh * p.wp * cb;
    for (int64_t ow = 0; ow < g.wo; ow += kLanes) {
      __m256 acc[kLanes];
      taps_sum<kLanes>(acc, xrow, wc, b, g, p, ow, cb);
      transpose8(acc);  // acc[k]: channel k's 8 outputs
      float* dst = out + oh * g.wo + ow;
#pragma GCC unroll 8
      for (int k = 0; k < kLanes; ++k) _mm256_storeu_ps(dst + k * g.p, acc[k]);
    }
  }
}

// ot[ow0 + r] (r < R) = the same sums, into the item's channels-last [HO * WO][cb] buffer.
template <int R>
inline void forward_run(float* ot, const float* xrow, const float* wc, __m256 b, const ConvGeom& g,
                        const Plan& p, int64_t ow0, int64_t stride) {
  __m256 acc[R];
  taps_sum<R>(acc, xrow, wc, b, g, p, ow0, stride);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) _mm256_storeu_ps(ot + (ow0 + r) * stride, acc[r]);
}

// Other output rows: kRun positions at a time into the item's [HO * WO][cb] buffer.
void forward_runs(float* ot, const float* xt, const float* wc, __m256 b, const ConvGeom& g, const Plan& p,
                  int64_t cb) {
  for (int64_t oh = 0; oh < g.ho; ++oh) {
    const float* xrow = xt + oh * g.sh * p.wp * cb;
    float* orow = ot + oh * g.wo * cb;
    int64_t ow = 0;
    for (; ow + kRun <= g.wo; ow += kRun) forward_run<kRun>(orow, xrow, wc, b, g, p, ow, cb);
    for (; ow < g.wo; ++ow) forward_run<1>(orow, xrow, wc, b, g, p, ow, cb);
  }
}

void forward_item(float* out, const float* x, const float* wt, const float* bias, const ConvGeom& g,
                  const Plan& p, const Item& it) {
  const Buffers buf = buffers(g, p);
  to_padded(buf.padded, buf.plane, x, g, p, it);
  const bool blocks = g.wo % kLanes == 0;
  float* first = out + (it.n * g.c + it.c0) * g.p;
  for (int64_t c = 0; c < it.cb; c += kLanes) {
    const __m256 b = bias ? _mm256_loadu_ps(bias + it.c0 + c) : _mm256_setzero_ps();
    if (blocks)
      forward_blocks(first + c * g.p, buf.padded + c, wt + it.c0 + c, b, g, p, it.cb);
    else
      forward_runs(buf.positions + c, buf.padded + c, wt + it.c0 + c, b, g, p, it.cb);
  }
  if (!blocks) transpose(first, g.p, buf.positions, it.cb, g.p, it.cb);
}

void backward_input_item(float* grad_x, const float* grad_out, const float* wt, const ConvGeom& g,
                         const Plan& p, const Item& it) {
  const Buffers buf = buffers(g, p);
  float* gxt = buf.padded;
  transpose(buf.positions, it.cb, grad_out + (it.n * g.c + it.c0) * g.p, g.p, it.cb, g.p);
  std::memset(gxt, 0, sizeof(float) * static_cast<size_t>(p.hp * p.wp * it.cb));
  // Each output's gradient scattered to the inputs its taps read. Taps outermost: with the
  // positions outermost, tap j + 1 of one position and tap j of the next would update the
  // same element back to back and wait on store forwarding.
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t c = 0; c < it.cb; c += kLanes) {
        const __m256 wv = _mm256_loadu_ps(wt + (i * g.kw + j) * g.c + it.c0 + c);
        for (int64_t oh = 0; oh < g.ho; ++oh) {
          float* d = gxt + (oh * g.sh * p.wp + tap_offset(g, p, i, j)) * it.cb + c;
          const float* gv = buf.positions + oh * g.wo * it.cb + c;
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            float* e = d + ow * g.sw * it.cb;
            _mm256_storeu_ps(e, _mm256_fmadd_ps(wv, _mm256_loadu_ps(gv + ow * it.cb), _mm256_loadu_ps(e)));
          }
        }
      }
  for (int64_t ih = 0; ih < g.h; ++ih)  // the interior, unpadded, then back to NCHW
    std::memcpy(buf.plane + ih * g.w * it.cb, gxt + ((ih + g.ph) * p.wp + g.pw) * it.cb,
                sizeof(float) * static_cast<size_t>(g.w * it.cb));
  transpose(grad_x + (it.n * g.c + it.c0) * g.h * g.w, g.h * g.w, buf.plane, it.cb, g.h * g.w, it.cb);
}

// acc [taps][cb] at channel c += the sums over all outputs of go * x at kernel rows
// [i0, i0 + ROWS) of a KW-wide kernel, for one 8-channel vector: ROWS x KW accumulators
// (at most 10) in registers while the outputs stream past once, so each output's gradient
// is loaded once for all those taps and the FMA chains are independent.
template <int ROWS, int KW>
void weight_rows(float* acc, const float* xt, const float* go, const ConvGeom& g, const Plan& p, int64_t cb,
                 int64_t i0) {
  __m256 sum[ROWS * KW];
#pragma GCC unroll 10
  for (int t = 0; t < ROWS * KW; ++t) sum[t] = _mm256_setzero_ps();
  for (int64_t oh = 0; oh < g.ho; ++oh) {
    const float* xrow = xt + (oh * g.sh + i0 * g.dh) * p.wp * cb;
    const float* grow = go + oh * g.wo * cb;
    for (int64_t ow = 0; ow < g.wo; ++ow) {
      const __m256 gv = _mm256_loadu_ps(grow + ow * cb);
      const float* src = xrow + ow * g.sw * cb;
#pragma GCC unroll 3
      for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 5
        for (int j = 0; j < KW; ++j)
          sum[r * KW + j] =
              _mm256_fmadd_ps(gv, _mm256_loadu_ps(src + (r * g.dh * p.wp + j * g.dw) * cb), sum[r * KW + j]);
    }
  }
#pragma GCC unroll 3
  for (int r = 0; r < ROWS; ++r)
#pragma GCC unroll 5
    for (int j = 0; j < KW; ++j) {
      float* a = acc + ((i0 + r) * KW + j) * cb;
      _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), sum[r * KW + j]));
    }
}

// The same, tap by tap, for kernels other than 3 or 5 wide.
void weight_taps(float* acc, const float* xt, const float* go, const ConvGeom& g, const Plan& p, int64_t cb) {
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      __m256 sum = _mm256_setzero_ps();
      for (int64_t oh = 0; oh < g.ho; ++oh)
        for (int64_t ow = 0; ow < g.wo; ++ow)
          sum = _mm256_fmadd_ps(
              _mm256_loadu_ps(go + (oh * g.wo + ow) * cb),
              _mm256_loadu_ps(xt + (oh * g.sh * p.wp + ow * g.sw + tap_offset(g, p, i, j)) * cb), sum);
      float* a = acc + (i * g.kw + j) * cb;
      _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), sum));
    }
}

// Kernel rows in groups of up to kRows (3 rows of a 3-wide kernel, 2 of a 5-wide).
template <int KW, int kRows>
void weight_kernel(float* acc, const float* xt, const float* go, const ConvGeom& g, const Plan& p,
                   int64_t cb) {
  for (int64_t i0 = 0; i0 < g.kh; i0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, g.kh - i0);
    if (rows == 3)
      weight_rows<3, KW>(acc, xt, go, g, p, cb, i0);
    else if (rows == 2)
      weight_rows<2, KW>(acc, xt, go, g, p, cb, i0);
    else
      weight_rows<1, KW>(acc, xt, go, g, p, cb, i0);
  }
}

// acc [taps][cb] += sample it.n's contribution to the weight gradient of the item's channels.
void backward_weight_item(float* acc, const float* grad_out, const float* x, const ConvGeom& g, const Plan& p,
                          const Item& it) {
  const Buffers buf = buffers(g, p);
  to_padded(buf.padded, buf.plane, x, g, p, it);
  transpose(buf.positions, it.cb, grad_out + (it.n * g.c + it.c0) * g.p, g.p, it.cb, g.p);
  for (int64_t c = 0; c < it.cb; c += kLanes) {
    const float *xt = buf.padded + c, *go = buf.positions + c;
    if (g.kw == 3)
      weight_kernel<3, 3>(acc + c, xt, go, g, p, it.cb);
    else if (g.kw == 5)
      weight_kernel<5, 2>(acc + c, xt, go, g, p, it.cb);
    else
      weight_taps(acc + c, xt, go, g, p, it.cb);
  }
}

// The items of every (sample, channel block).
std::vector<Item> sample_items(const ConvGeom& g, const Plan& p) {
  std::vector<Item> items;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c0 = 0; c0 < g.c; c0 += p.cb) items.push_back({n, c0, std::min(p.cb, g.c - c0)});
  return items;
}

// f(wt, p, item) for every (sample, channel block) item, on OpenMP's threads; wt: the
// kernel channels-last.
template <typename F>
void for_each_item(const float* w, const ConvGeom& g, F&& f) {
  const Plan p = plan(g);
  const std::vector<float> wt = weights_channels_last(w, g);
  const std::vector<Item> items = sample_items(g, p);
  const int64_t count = static_cast<int64_t>(items.size());
#pragma omp parallel for schedule(static) if (count > 1)
  for (int64_t k = 0; k < count; ++k) f(wt.data(), p, items[static_cast<size_t>(k)]);
}

}  // namespace

bool dw_channels_last_accepts(const ConvGeom& g) { return g.depthwise() && g.co == g.c && g.c % kLanes == 0; }

void dw_channels_last_forward(float* out, const float* x, const float* w, const float* bias,
                              const ConvGeom& g) {
  for_each_item(w, g, [&](const float* wt, const Plan& p, const Item& it) {
    forward_item(out, x, wt, bias, g, p, it);
  });
}

void dw_channels_last_backward_input(float* grad_x, const float* grad_out, const float* w,
                                     const ConvGeom& g) {
  // Stride 1: a forward pass over grad_out with the flipped kernel (flip.h), which gathers
  // each input's gradient in registers; the scatter below reads and writes the gradient
  // buffer once a tap.
  if (g.sh == 1 && g.sw == 1 && g.ph <= g.dh * (g.kh - 1) && g.pw <= g.dw * (g.kw - 1)) {
    const std::vector<float> flipped = flipped_weights(w, g);
    return dw_channels_last_forward(grad_x, grad_out, flipped.data(), nullptr, flipped_geometry(g));
  }
  for_each_item(w, g, [&](const float* wt, const Plan& p, const Item& it) {
    backward_input_item(grad_x, grad_out, wt, g, p, it);
  });
}

void dw_channels_last_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                      const ConvGeom& g) {
  // Blocks of channels, at least two a thread where the channels allow, each summed over the
  // samples in order by one thread.
  const Plan p = plan(g, 2 * static_cast<int64_t>(omp_get_max_threads()));
  const int64_t taps = g.kh * g.kw, blocks = (g.c + p.cb - 1) / p.cb;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * p.cb, cb = std::min(p.cb, g.c - c0);
    float* acc = workspace<float>(6, static_cast<size_t>(taps * cb));  // [taps][cb]
    std::memset(acc, 0, sizeof(float) * static_cast<size_t>(taps * cb));
    for (int64_t n = 0; n < g.n; ++n) backward_weight_item(acc, grad_out, x, g, p, {n, c0, cb});
    for (int64_t c = 0; c < cb; ++c)  // [taps][cb] -> [C][1][KH][KW]
      for (int64_t t = 0; t < taps; ++t) grad_w[(c0 + c) * taps + t] = acc[t * cb + c];
  }
}

}  // namespace ag::cpu
