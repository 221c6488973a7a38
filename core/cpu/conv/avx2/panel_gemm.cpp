// The AVX2 + FMA route of the CPU convolution (routes.cpp), for targets without AVX-512:
// the forward pass, and the stride-1 input gradient as a forward pass with the flipped
// kernel (flip.h), as a GEMM over panels of 16 output positions.
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
        for (int64_t ci = 0; ci < g.c; ++ci, dst += taps * kNR, src += plane)
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

}  // namespace ag::cpu
