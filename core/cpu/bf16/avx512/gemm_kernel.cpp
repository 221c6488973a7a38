// The bfloat16 GEMM kernel (gemm.h): c[m,n] = op(a) op(b) + beta * c on AVX512-BF16.
//
// vdpbf16ps multiplies pairs of bfloat16 and adds both products to one float32 lane:
// acc[j] += x[2j] * y[2j] + x[2j+1] * y[2j+1]. So both operands are packed with the
// reduction index k in pairs: a panel of W lines (rows of op(a) or columns of op(b)) is
// [ceil(kc / 2)][W][2] bfloat16, one 32-bit word per (pair, line), zero past the matrix
// (an odd k gets a zero partner). The float32 -> bfloat16 rounding (to nearest even,
// vcvtne2ps2bf16) happens here, while packing, so the inputs in memory stay float32.
//
// Blocking: all of op(a) is packed once into kMR-row panels (the A operand of a
// convolution or linear layer is its weights or a small batch, a few MiB at most). The
// columns are split into tasks of kNC; each thread packs kKC x kNC blocks of op(b) into its
// own buffer (a kKC x kNR panel is 16 KiB, half of L1) and runs the kMR x kNR micro-kernel
// (12 rows x 32 columns: 24 zmm accumulators) over it. Few column tasks (a small n) split
// the rows as well, so both threads have work.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "core/cpu/bf16/gemm.h"
#include "core/cpu/gemm_util.h"

namespace ag::cpu {

namespace {

constexpr int kMR = 12;       // rows per micro-tile (broadcast from packed a)
constexpr int kNR = 32;       // columns per micro-tile (two zmm of 16 float32)
constexpr int64_t kKC = 256;  // reduction block (even): a kKC x kNR bf16 panel is 16 KiB
constexpr int64_t kNC = 256;  // columns per task

// Rounds 32 float32 (lo: the first 16, hi: the next 16) to bfloat16, in order.
inline __m512i to_bf16(__m512 lo, __m512 hi) { return (__m512i)_mm512_cvtne2ps_pbh(hi, lo); }

inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// dst [ceil(kc / 2)][W] 32-bit pairs from the float32 matrix element (line, k) at
// src[line * line_stride + k * k_stride], lines l0 .. l0 + W (valid: the first `lines`),
// k in k0 .. k0 + kc. One of the two strides is 1 (BLAS operands are row-major views).
template <int W>
void pack_panel(uint32_t* dst, const float* src, int64_t line_stride, int64_t k_stride, int64_t l0,
                int64_t lines, int64_t k0, int64_t kc) {
  const int64_t pairs = (kc + 1) / 2;
  if (k_stride == 1) {
    // Each line's k run is contiguous: it converts straight into consecutive pairs, which
    // are then spread to their lines' slots.
    alignas(64) uint32_t words[16];
    for (int l = 0; l < W; ++l) {
      if (l >= lines) {
        for (int64_t p = 0; p < pairs; ++p) dst[p * W + l] = 0;
        continue;
      }
      const float* run = src + (l0 + l) * line_stride + k0;
      for (int64_t kk = 0; kk < kc; kk += 32) {
        const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(kc - kk), run + kk);
        const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(kc - kk - 16), run + kk + 16);
        _mm512_store_si512(words, to_bf16(lo, hi));
        const int64_t p0 = kk / 2, n = std::min<int64_t>(16, pairs - p0);
        for (int64_t q = 0; q < n; ++q) dst[(p0 + q) * W + l] = words[q];
      }
    }
    return;
  }
  // The lines are contiguous for each k: two rows k, k + 1 interleave into the pairs.
  const __m512i first_half = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i second_half = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  for (int64_t p = 0; p < pairs; ++p) {
    const float* row0 = src + (k0 + 2 * p) * k_stride + l0;
    const bool has_row1 = 2 * p + 1 < kc;
    for (int g = 0; g < W; g += 16) {
      const __mmask16 m = first_lanes(std::min<int64_t>(lines, W) - g);
      const __m512 r0 = _mm512_maskz_loadu_ps(m, row0 + g);
      const __m512 r1 = has_row1 ? _mm512_maskz_loadu_ps(m, row0 + k_stride + g) : _mm512_setzero_ps();
      const __m512i words =
          to_bf16(_mm512_permutex2var_ps(r0, first_half, r1), _mm512_permutex2var_ps(r0, second_half, r1));
      if (W - g >= 16)
        _mm512_storeu_si512(dst + p * W + g, words);
      else
        _mm512_mask_storeu_epi32(dst + p * W + g, first_lanes(W - g), words);
    }
  }
}

// c [R rows, `cols` <= kNR columns] = acc + c_scale * c (c_scale 0: c not read), acc the
// sum over `pairs` k-pairs of ap [pairs][kMR] (first R rows) times bp [pairs][kNR].
template <int R>
void micro_kernel(const uint32_t* ap, const uint32_t* bp, int64_t pairs, float* c, int64_t ldc, int64_t cols,
                  float c_scale) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + p * kNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + p * kNR + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[p * kMR + r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], b0, a);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], b1, a);
    }
  }
  const __mmask16 m0 = first_lanes(cols), m1 = first_lanes(cols - 16);
  const __m512 scale = _mm512_set1_ps(c_scale);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    float* row = c + r * ldc;
    __m512 v0 = acc[r][0], v1 = acc[r][1];
    if (c_scale != 0.f) {
      v0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, row), scale, v0);
      v1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, row + 16), scale, v1);
    }
    if (cols == 32) {  // masked stores are slow on AMD's Zen 4/5: full tiles store plainly
      _mm512_storeu_ps(row, v0);
      _mm512_storeu_ps(row + 16, v1);
    } else {
      _mm512_mask_storeu_ps(row, m0, v0);
      _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
  }
}

using MicroKernel = void (*)(const uint32_t*, const uint32_t*, int64_t, float*, int64_t, int64_t, float);

template <size_t... I>
constexpr std::array<MicroKernel, kMR + 1> micro_table(std::index_sequence<I...>) {
  return {nullptr, &micro_kernel<static_cast<int>(I) + 1>...};
}
constexpr auto kMicro = micro_table(std::make_index_sequence<kMR>{});

}  // namespace

void gemm_bf16_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (k == 0) {  // no products: c = beta * c
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  // op(a)(i, kk) = a[i * a_line + kk * a_k]; op(b)(kk, j) = b[j * b_line + kk * b_k].
  const int64_t a_line = trans_a ? 1 : lda, a_k = trans_a ? lda : 1;
  const int64_t b_line = trans_b ? ldb : 1, b_k = trans_b ? 1 : ldb;
  const int64_t pairs = (k + 1) / 2, row_panels = (m + kMR - 1) / kMR;

  uint32_t* ap = workspace<uint32_t>(0, static_cast<size_t>(row_panels * pairs * kMR));
#pragma omp parallel for schedule(static) if (m * k > 262144)
  for (int64_t ip = 0; ip < row_panels; ++ip)
    pack_panel<kMR>(ap + ip * pairs * kMR, a, a_line, a_k, ip * kMR, std::min<int64_t>(kMR, m - ip * kMR), 0,
                    k);

  // Tasks: column blocks, and row blocks as well when there are too few column blocks.
  const int threads = omp_get_max_threads();
  const int64_t col_blocks = (n + kNC - 1) / kNC;
  const int64_t row_splits = std::clamp<int64_t>((2 * threads + col_blocks - 1) / col_blocks, 1, row_panels);
  const int64_t panels_per_block = (row_panels + row_splits - 1) / row_splits;
  const int64_t row_blocks = (row_panels + panels_per_block - 1) / panels_per_block;
  const bool parallel = static_cast<double>(m) * n * k > 1e6;

#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (parallel)
  for (int64_t cb = 0; cb < col_blocks; ++cb) {
    for (int64_t rb = 0; rb < row_blocks; ++rb) {
      const int64_t j0 = cb * kNC, nc = std::min(kNC, n - j0), col_panels = (nc + kNR - 1) / kNR;
      const int64_t ip0 = rb * panels_per_block, ip1 = std::min(row_panels, ip0 + panels_per_block);
      uint32_t* bp = workspace<uint32_t>(1, static_cast<size_t>((kNC / kNR) * (kKC / 2) * kNR));
      for (int64_t k0 = 0; k0 < k; k0 += kKC) {
        const int64_t kc = std::min(kKC, k - k0), kcp = (kc + 1) / 2;
        const float c_scale = k0 == 0 ? beta : 1.f;
        for (int64_t jp = 0; jp < col_panels; ++jp)
          pack_panel<kNR>(bp + jp * kcp * kNR, b, b_line, b_k, j0 + jp * kNR,
                          std::min<int64_t>(kNR, nc - jp * kNR), k0, kc);
        for (int64_t jp = 0; jp < col_panels; ++jp) {
          const int64_t cols = std::min<int64_t>(kNR, nc - jp * kNR);
          for (int64_t ip = ip0; ip < ip1; ++ip) {
            const int rows = static_cast<int>(std::min<int64_t>(kMR, m - ip * kMR));
            kMicro[rows](ap + (ip * pairs + k0 / 2) * kMR, bp + jp * kcp * kNR, kcp,
                         c + ip * kMR * ldc + j0 + jp * kNR, ldc, cols, c_scale);
          }
        }
      }
    }
  }
}

}  // namespace ag::cpu
