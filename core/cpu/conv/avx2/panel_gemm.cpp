// The AVX2 + FMA route of the CPU convolution (routes.cpp), for targets without AVX-512:
// the forward pass, and the stride-1 input gradient as a forward pass with the flipped
// kernel (flip.h), as a GEMM over panels of 16 output positions; a strided input gradient
// as such forward passes, one per phase of grad_x (panel_gemm_phases); a strided weight
// gradient as dot products of grad_out's rows with the same panels.
//
// out[co][q] = sum_k w[co][k] B[k][q], k = (ci, i, j) a kernel tap, q an output position of
// one sample. For each panel of 16 consecutive positions of one sample (the NCHW output
// plane is contiguous, so the panel is 16 consecutive floats of every output channel),
// B[k][q0 .. q0 + 16) is packed once into [K][16] (pack_panel: masked loads of the input
// rows, zeros in the padding), then every block of 4 output channels runs the
// micro-kernel over it: 8 accumulators (4 channels x two 8-float vectors), per tap two
// loads and four broadcasts for eight FMAs. The im2col route instead writes the whole
// [K, positions] matrix to memory and OpenBLAS packs it again; here a panel (9 KB for
// ResNet-20's 16-channel layers) stays in L1 while every output channel reads it.
// Only compiled where the build targets AVX2 + FMA but not AVX-512 (CMakeLists.txt).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv/avx2/micro_kernel.h"
#include "core/cpu/conv/dot_weight_sum.h"
#include "core/cpu/conv/flip.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "core/cpu/conv/avx2/ is compiled only for AVX2 + FMA targets (see CMakeLists.txt)"
#endif

namespace ag::cpu {

namespace {

constexpr int kNR = avx2::kPanelLanes;               // positions per panel: two 8-float vectors
constexpr int kMR = 4;                               // output channels per micro-kernel call
constexpr int64_t kParallelMacs = int64_t{1} << 20;  // smaller convolutions stay on one thread

// Lanes [lane, lane + len) of a panel: consecutive output columns ow.. of output row oh.
struct Run {
  int lane, len;
  int64_t oh, ow;
};

// Splits the panel's positions [p0, p0 + lanes) of a plane into runs, one per output row.
int make_runs(const ConvGeom& g, int64_t p0, int lanes, Run* runs) {
  int count = 0;
  for (int lane = 0; lane < lanes;) {
    const int64_t p = p0 + lane, oh = p / g.wo, ow = p % g.wo;
    const int len = static_cast<int>(std::min<int64_t>(g.wo - ow, lanes - lane));
    runs[count++] = {lane, len, oh, ow};
    lane += len;
  }
  return count;
}

// dst[t] = src[t * sw] for t in [t0, t1), 0 for the other t in [0, len). A run that fills
// whole 8-lane vectors of the panel (dst 8-aligned within it) with stride 1 takes masked
// loads: the mask skips the padding, and masked-off lanes are never read, so src may
// point before or past the input row there.
inline void copy_run(float* dst, const float* src, int len, int t0, int t1, int64_t sw, bool vector_aligned) {
  if (sw == 1 && vector_aligned && len % 8 == 0) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int v = 0; v < len; v += 8) {
      const __m256i lane = _mm256_add_epi32(idx, _mm256_set1_epi32(v));
      const __m256i mask = _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(t0 - 1)),
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32(t1), lane));
      _mm256_storeu_ps(dst + v, _mm256_maskload_ps(src + v, mask));
    }
    return;
  }
  for (int t = 0; t < len; ++t) dst[t] = t >= t0 && t < t1 ? src[t * sw] : 0.f;
}

// dst[t] = src[2 t] where the offset 2 t lies in [lo, hi) (inside the input row), else 0,
// for t in [0, len): whole vectors take two masked loads (masked-off lanes are never read,
// so src may point before or past the row) and keep their even floats. A stride-2 run
// copied float by float cost as much as the GEMM over its panel (ResNet-20's stride-2
// layers ran at half the stride-1 layers' rate).
inline void copy_run_s2(float* dst, const float* src, int len, int64_t lo, int64_t hi) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i below = _mm256_set1_epi32(static_cast<int>(lo - 1)),
                end = _mm256_set1_epi32(static_cast<int>(hi));
  auto inside = [&](int first) {  // lanes whose offset first + l lies in [lo, hi)
    const __m256i u = _mm256_add_epi32(idx, _mm256_set1_epi32(first));
    return _mm256_and_si256(_mm256_cmpgt_epi32(u, below), _mm256_cmpgt_epi32(end, u));
  };
  int t = 0;
  for (; t + 8 <= len; t += 8) {
    const __m256 a = _mm256_maskload_ps(src + 2 * t, inside(2 * t));
    const __m256 b = _mm256_maskload_ps(src + 2 * t + 8, inside(2 * t + 8));
    const __m256 even = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
    _mm256_storeu_ps(
        dst + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  for (; t < len; ++t) dst[t] = 2 * t >= lo && 2 * t < hi ? src[2 * t] : 0.f;
}

// panel [K][kNR]: panel[k][lane] = the input value tap k = (ci, i, j) reads for the lane's
// output position; 0 in the padding and for lanes past the runs. xs: one sample [C, H, W].
void pack_panel(float* panel, const float* xs, const ConvGeom& g, const Run* runs, int count, int lanes) {
  if (lanes < kNR) std::memset(panel, 0, static_cast<size_t>(g.k * kNR) * sizeof(float));
  const int64_t taps = g.kh * g.kw, plane = g.h * g.w;
  for (int r = 0; r < count; ++r) {
    const Run& run = runs[r];
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = run.oh * g.sh - g.ph + i * g.dh;
      const bool row_inside = ih >= 0 && ih < g.h;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw0 = run.ow * g.sw - g.pw + j * g.dw;  // input column of the run's first lane
        // lanes t in [t0, t1) of the run read inside the row
        int64_t t0 = iw0 >= 0 ? 0 : (-iw0 + g.sw - 1) / g.sw;
        int64_t t1 = iw0 >= g.w ? 0 : (g.w - 1 - iw0) / g.sw + 1;
        t1 = row_inside ? std::min<int64_t>(t1, run.len) : 0;
        t0 = std::min(t0, t1);
        float* dst = panel + (i * g.kw + j) * kNR + run.lane;
        const float* src = xs + ih * g.w + iw0;
        // stride 2: the offsets from src inside the row (none in a padding row)
        const int64_t lo = row_inside ? -iw0 : 0, hi = row_inside ? g.w - iw0 : 0;
        for (int64_t ci = 0; ci < g.c; ++ci, dst += taps * kNR, src += plane)
          if (g.sw == 2)
            copy_run_s2(dst, src, run.len, lo, hi);
          else
            copy_run(dst, src, run.len, static_cast<int>(t0), static_cast<int>(t1), g.sw, run.lane % 8 == 0);
      }
    }
  }
}

// Output channels [0, CO) over one packed panel: blocks of kMR, then the 1-3 left.
void all_channels(float* out, const float* w, const float* bias, const float* panel, const ConvGeom& g,
                  int lanes) {
  int64_t co = 0;
  for (; co + kMR <= g.co; co += kMR)
    avx2::micro_kernel<kMR>(out + co * g.p, g.p, w + co * g.k, g.k, panel, kNR, bias ? bias + co : nullptr,
                            lanes);
  for (; co < g.co; ++co)
    avx2::micro_kernel<1>(out + co * g.p, g.p, w + co * g.k, g.k, panel, kNR, bias ? bias + co : nullptr,
                          lanes);
}

// ---- the input gradient of strided convolutions, by phases ----
// Input row ih = a + sh r (phase a < sh) receives from the kernel rows i = a + ph (mod sh)
// only, each reading grad_out row oh = r + (a + ph - i) / sh: per phase (a, b) a stride-1
// forward pass over grad_out with those taps, ordered by that offset (a sub-kernel of
// about (KH / sh) x (KW / sw) taps), whose [C, Hr, Wr] output is the phase's plane.

// One axis of a phase: its taps i = first - stride t' for t' < count (grad_out offset
// lowest + t'), and the phase's length.
struct PhaseAxis {
  int64_t count = 0, first = 0, lowest = 0, length = 0;
};
PhaseAxis phase_axis(int64_t a, int64_t k, int64_t stride, int64_t pad, int64_t in_len) {
  PhaseAxis ax;
  ax.length = in_len > a ? (in_len - a + stride - 1) / stride : 0;
  for (int64_t i = k - 1; i >= 0; --i)  // the largest i first: the lowest offset
    if (((a + pad - i) % stride + stride) % stride == 0) {
      if (ax.count++ == 0) {
        ax.first = i;
        ax.lowest = (a + pad - i) / stride;
      }
    }
  return ax;
}

// The stride-1 forward geometry of phase (rows, cols): grad_out [N, CO, HO, WO] in, the
// phase planes [N, C, Hr, Wr] out; padding -lowest (negative where every tap reads below
// the output row), the output size set to the phase's.
ConvGeom phase_geometry(const ConvGeom& g, const PhaseAxis& rows, const PhaseAxis& cols) {
  Conv2dParams p;
  p.pad_h = -rows.lowest;
  p.pad_w = -cols.lowest;
  ConvGeom q({g.n, g.co, g.ho, g.wo}, {g.c, g.co, rows.count, cols.count}, p);
  q.ho = rows.length;
  q.wo = cols.length;
  q.p = q.ho * q.wo;
  return q;
}

// sub [C][CO][rows.count][cols.count]: sub[c][o][t][u] = w[o][c][rows.first - sh t][cols.first - sw u].
std::vector<float> phase_weights(const float* w, const ConvGeom& g, const PhaseAxis& rows,
                                 const PhaseAxis& cols) {
  std::vector<float> sub(static_cast<size_t>(g.c * g.co * rows.count * cols.count));
  float* dst = sub.data();
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t o = 0; o < g.co; ++o)
      for (int64_t t = 0; t < rows.count; ++t)
        for (int64_t u = 0; u < cols.count; ++u)
          *dst++ = w[((o * g.c + c) * g.kh + rows.first - g.sh * t) * g.kw + cols.first - g.sw * u];
  return sub;
}

// ---- the weight gradient ----
// grad_w[o][k] = sum over samples and positions q of grad_out[o][q] B[k][q], B the panels
// pack_panel writes: dot products over the positions of kWeightPanels packed panels at a
// time, in register tiles of 2 output channels x 4 taps.

constexpr int kWeightPanels = 8;  // 128 positions: 2 x 4 taps and CO rows of grad_out in L1

// acc[r k_len + c] += sum over the panels' lanes of gy[r gy_stride + lane] panel[c][lane]
// for r < 2, c < 4: gy [2][npanels kNR], panel the 4 taps' rows of the first of npanels
// panels panel_floats apart.
void dot_tile_2x4(float* acc, int64_t k_len, const float* gy, int64_t gy_stride, const float* panel,
                  int64_t panel_floats, int npanels) {
  __m256 sum[8];
  for (auto& v : sum) v = _mm256_setzero_ps();
  for (int p = 0; p < npanels; ++p, panel += panel_floats, gy += kNR)
    for (int h = 0; h < kNR; h += 8) avx2::dot_step_2x4(sum, gy + h, gy + gy_stride + h, panel + h, kNR);
  avx2::add_lane_sums_2x4(acc, k_len, sum);
}

// sum over the panels' lanes of gy[lane] panel[lane], for the row and taps the tiles leave.
float dot_1x1(const float* gy, const float* panel, int64_t panel_floats, int npanels) {
  __m256 sum = _mm256_setzero_ps();
  for (int p = 0; p < npanels; ++p, panel += panel_floats, gy += kNR)
    for (int h = 0; h < kNR; h += 8)
      sum = _mm256_fmadd_ps(_mm256_loadu_ps(gy + h), _mm256_loadu_ps(panel + h), sum);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}

// acc [CO][K] += the dot products of gy [CO][npanels kNR] (rows gy_stride apart) with
// panels [npanels][K][kNR]. Taps outer: their 4 rows of the panels stay in L1 while every
// pair of grad_out rows passes.
void panel_dots(float* acc, const float* gy, int64_t gy_stride, const float* panels, const ConvGeom& g,
                int npanels) {
  const int64_t o2 = g.co / 2 * 2, k4 = g.k / 4 * 4, panel_floats = g.k * kNR;
  for (int64_t k = 0; k < k4; k += 4)
    for (int64_t o = 0; o < o2; o += 2)
      dot_tile_2x4(acc + o * g.k + k, g.k, gy + o * gy_stride, gy_stride, panels + k * kNR, panel_floats,
                   npanels);
  for (int64_t o = 0; o < g.co; ++o)
    for (int64_t k = o < o2 ? k4 : 0; k < g.k; ++k)
      acc[o * g.k + k] += dot_1x1(gy + o * gy_stride, panels + k * kNR, panel_floats, npanels);
}

// acc [CO][K] += sample n's contribution. grad_out [N, CO, P], x [N, C, H, W].
void sample_weight_grad(float* acc, const float* grad_out, const float* x, const ConvGeom& g, int64_t n) {
  const int64_t panels_per_sample = (g.p + kNR - 1) / kNR, row = panels_per_sample * kNR;
  const float* gy = grad_out + n * g.co * g.p;
  int64_t gy_stride = g.p;
  if (g.p % kNR != 0) {  // rows of whole panels, zero past the plane (not the next row's values)
    float* padded = workspace<float>(5, static_cast<size_t>(g.co * row));
    for (int64_t o = 0; o < g.co; ++o) {
      std::memcpy(padded + o * row, gy + o * g.p, static_cast<size_t>(g.p) * sizeof(float));
      std::memset(padded + o * row + g.p, 0, static_cast<size_t>(row - g.p) * sizeof(float));
    }
    gy = padded;
    gy_stride = row;
  }
  float* panels = workspace<float>(4, static_cast<size_t>(kWeightPanels * g.k * kNR));
  const float* xs = x + n * g.c * g.h * g.w;
  for (int64_t first = 0; first < panels_per_sample; first += kWeightPanels) {
    const int count = static_cast<int>(std::min<int64_t>(kWeightPanels, panels_per_sample - first));
    for (int i = 0; i < count; ++i) {
      const int64_t p0 = (first + i) * kNR;
      const int lanes = static_cast<int>(std::min<int64_t>(kNR, g.p - p0));
      Run runs[kNR];
      pack_panel(panels + i * g.k * kNR, xs, g, runs, make_runs(g, p0, lanes, runs), lanes);
    }
    panel_dots(acc, gy + first * kNR, gy_stride, panels, g, count);
  }
}

}  // namespace

bool panel_gemm_accepts(const ConvGeom& g) { return g.groups == 1; }

void panel_gemm_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  const int64_t panels_per_sample = (g.p + kNR - 1) / kNR, total = g.n * panels_per_sample;
#pragma omp parallel for schedule(static) if (g.n * g.p * g.co * g.k > kParallelMacs)
  for (int64_t b = 0; b < total; ++b) {
    const int64_t n = b / panels_per_sample, p0 = (b % panels_per_sample) * kNR;
    const int lanes = static_cast<int>(std::min<int64_t>(kNR, g.p - p0));
    Run runs[kNR];
    const int count = make_runs(g, p0, lanes, runs);
    float* panel = workspace<float>(4, static_cast<size_t>(g.k * kNR));
    pack_panel(panel, x + n * g.c * g.h * g.w, g, runs, count, lanes);
    all_channels(out + n * g.co * g.p + p0, w, bias, panel, g, lanes);
  }
}

bool panel_gemm_input_accepts(const ConvGeom& g) { return g.groups == 1 && input_grad_as_forward(g); }

void panel_gemm_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  const std::vector<float> flipped = flipped_weights(w, g);
  panel_gemm_forward(grad_x, grad_out, flipped.data(), nullptr, flipped_geometry(g));
}

// Sums [CO][K] of up to 32768 floats (in L2; ResNet-20's stride-2 layers, the stems): on
// ResNet18's 128 x 576 to 512 x 2304 each tile's sums over 128 positions ended in lane
// sums too often, and these ran 1.1-2.3x slower than im2col + OpenBLAS (same run).
bool panel_gemm_weight_accepts(const ConvGeom& g) {
  return g.groups == 1 && (g.sh > 1 || g.sw > 1) && g.co * g.k <= 32768;
}

void panel_gemm_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  // one sample a chunk: its panels are packed once whatever the channels
  dot::sum_over_sample_chunks(grad_w, g.co * g.k, g.n, 1, [&](float* acc, int64_t n, int64_t) {
    sample_weight_grad(acc, grad_out, x, g, n);
  });
}

// Up to 64 x 128 channels: ResNet18's 64 -> 128 stride-2 input gradient took 34 ms this
// way against im2col + OpenBLAS's 44, its 128 -> 256 and 256 -> 512 ones 33 against 31
// and 33 against 30 (bench --models resnet18 --filter s2, 2026-12-05).
bool panel_gemm_input_phases_accepts(const ConvGeom& g) {
  return g.groups == 1 && (g.sh > 1 || g.sw > 1) && g.dh == 1 && g.dw == 1 && g.co * g.c <= 64 * 128;
}

void panel_gemm_backward_input_phases(float* grad_x, const float* grad_out, const float* w,
                                      const ConvGeom& g) {
  struct Phase {
    int64_t a, b;
    ConvGeom q;
    std::vector<float> w;
  };
  std::vector<Phase> phases;
  for (int64_t a = 0; a < g.sh; ++a)
    for (int64_t b = 0; b < g.sw; ++b) {
      const PhaseAxis rows = phase_axis(a, g.kh, g.sh, g.ph, g.h),
                      cols = phase_axis(b, g.kw, g.sw, g.pw, g.w);
      if (rows.length == 0 || cols.length == 0) continue;
      if (rows.count == 0 || cols.count == 0) {  // no tap reaches these rows or columns
        for (int64_t nc = 0; nc < g.n * g.c; ++nc)
          for (int64_t ih = a; ih < g.h; ih += g.sh)
            for (int64_t iw = b; iw < g.w; iw += g.sw) grad_x[(nc * g.h + ih) * g.w + iw] = 0.f;
        continue;
      }
      phases.push_back({a, b, phase_geometry(g, rows, cols), phase_weights(w, g, rows, cols)});
    }
    // Sample by sample and phase by phase: a phase's plane of one sample ([C, Hr, Wr], in L2)
    // is written, then spread over that sample's grad_x.
#pragma omp parallel for schedule(static) if (g.n * g.p * g.co * g.k > kParallelMacs)
  for (int64_t n = 0; n < g.n; ++n) {
    for (const Phase& ph : phases) {
      const ConvGeom& q = ph.q;
      float* plane = workspace<float>(5, static_cast<size_t>(q.co * q.p));
      float* panel = workspace<float>(4, static_cast<size_t>(q.k * kNR));
      for (int64_t p0 = 0; p0 < q.p; p0 += kNR) {
        const int lanes = static_cast<int>(std::min<int64_t>(kNR, q.p - p0));
        Run runs[kNR];
        pack_panel(panel, grad_out + n * g.co * g.p, q, runs, make_runs(q, p0, lanes, runs), lanes);
        all_channels(plane + p0, ph.w.data(), nullptr, panel, q, lanes);
      }
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t r = 0; r < q.ho; ++r) {
          float* dst = grad_x + ((n * g.c + c) * g.h + ph.a + g.sh * r) * g.w + ph.b;
          const float* src = plane + c * q.p + r * q.wo;
          for (int64_t s = 0; s < q.wo; ++s) dst[s * g.sw] = src[s];
        }
    }
  }
}

}  // namespace ag::cpu
