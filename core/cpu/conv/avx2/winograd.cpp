// Winograd F(2x2, 3x3) on AVX2 + FMA (routes.cpp): the forward pass of 3x3, stride-1,
// few-channel convolutions, and their input gradient as a forward pass with the flipped
// kernel (flip.h). Each 2x2 block of outputs (a tile) reads a 4x4 block d of the input;
// with the tile and kernel transformed, V = B^T d B and U = G w G^T, the tile's outputs are
// A^T M A with M[xi] = sum over input channels of U[xi][o][c] V[xi][c], xi one of the 16
// points of the 4x4 transform: 16 multiplications per tile and channel pair where the
// direct convolution does 36, so 2.25x fewer FMAs (Lavin & Gray 2016, "Fast Algorithms
// for Convolutional Neural Networks"). On 8-float vectors the direct route (panel_gemm)
// runs near the FMA peak; fewer FMAs is what is left.
//
// The batch is cut into blocks of whole tile rows (about 128 KB of transformed input per
// block, in L2); for one block: the input transform writes V [16][C][lanes] (lane = a tile
// of the block), the GEMMs M[xi] = U[xi] V[xi] run on avx2::micro_kernel four output
// channels at a time into M [16][4][lanes] (in L1), and the output transform of those four
// channels writes their NCHW rows. Both transforms are separable and run along 8 tiles per
// vector: each input row is split into its even and odd columns (tile tx's four columns
// are then even[tx], odd[tx], even[tx + 1], odd[tx + 1]) and transformed along the row
// once, which the two tile rows that read it share; the columns' transform follows.
//
// Accuracy: the transforms have coefficients 0, +-1/2 and +-1, and each output is a sum of
// 16 (not 9) products per channel, so float32 rounding stays within a small multiple of
// the direct sum's (tests/test_layers_conv.cpp compares against float64).
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

constexpr int kPoints = 16;                          // xi: the points of a 4x4 transformed tile
constexpr int kMR = 4;                               // output channels per micro-kernel call
constexpr int64_t kParallelMacs = int64_t{1} << 20;  // smaller convolutions stay on one thread

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// How the output planes are cut: tiles of 2x2 outputs, blocks of whole tile rows taken in
// order over the batch (tile row q = n * th + ty).
struct Tiling {
  int64_t th, tw;  // tile rows and columns of one output plane
  int64_t half;    // floats of one split input row's even (or odd) half: tw in whole vectors + 8
  int64_t rows;    // tile rows per block
  int64_t lanes;   // tiles per block rounded up to whole panels
  int64_t stride;  // floats from one row of V (or M) to the next: lanes + 8, room for a last whole vector
  int64_t blocks;
};

Tiling make_tiling(const ConvGeom& g) {
  Tiling t;
  t.th = (g.ho + 1) / 2;
  t.tw = (g.wo + 1) / 2;
  t.half = round_up(t.tw, 8) + 8;
  // V [16][C][lanes] about 128 KB: in L2 while every block of output channels reads it
  const int64_t target = std::clamp<int64_t>(2048 / g.c, avx2::kPanelLanes, 128);
  t.rows = std::max<int64_t>(1, target / t.tw);
  t.lanes = round_up(t.rows * t.tw, avx2::kPanelLanes);
  t.stride = t.lanes + 8;
  t.blocks = (g.n * t.th + t.rows - 1) / t.rows;
  return t;
}

// u [16][CO][C]: u[4i + j][o][c] = (G w[o][c] G^T)[i][j], with
// G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. w: [CO, C, 3, 3].
std::vector<float> transform_weights(const float* w, const ConvGeom& g) {
  std::vector<float> u(static_cast<size_t>(kPoints * g.co * g.c));
  auto g_times = [](double a, double b, double c, double* out) {  // G [a b c]^T
    out[0] = a;
    out[1] = 0.5 * (a + b + c);
    out[2] = 0.5 * (a - b + c);
    out[3] = c;
  };
  for (int64_t o = 0; o < g.co; ++o)
    for (int64_t c = 0; c < g.c; ++c) {
      const float* k = w + (o * g.c + c) * 9;
      double cols[3][4], tile[4][4];  // cols[j] = G k[:, j]; tile[i] = G (G k)[i, :]
      for (int j = 0; j < 3; ++j) g_times(k[j], k[3 + j], k[6 + j], cols[j]);
      for (int i = 0; i < 4; ++i) g_times(cols[0][i], cols[1][i], cols[2][i], tile[i]);
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          u[static_cast<size_t>(((4 * i + j) * g.co + o) * g.c + c)] = float(tile[i][j]);
    }
  return u;
}

// row[start + l] for lanes l with 0 <= start + l < w, else 0. Masked-off lanes are never
// read, so the pointer may lie before or past the row there.
inline __m256 load_inside(const float* row, int64_t start, int64_t w) {
  if (start >= 0 && start + 8 <= w) return _mm256_loadu_ps(row + start);
  const __m256i lane =
      _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(start)));
  const __m256i mask = _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(-1)),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(w)), lane));
  return _mm256_maskload_ps(row + start, mask);
}

// h [4][tw8]: h[j][tx] = (B^T applied along the row)[j] of tile tx's four input columns
// 2 tx - pw .. 2 tx + 3 - pw of one input row (0 outside it). The row is first split into
// its even and odd columns (even, odd: t.half floats each), so that tile tx's columns are
// even[tx], odd[tx], even[tx + 1], odd[tx + 1]; B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0;
// 0 1 0 -1].
void row_transform(float* h, const float* row, const ConvGeom& g, const Tiling& t, float* even, float* odd) {
  for (int64_t j = 0; j < t.half; j += 8) {
    const int64_t start = 2 * j - g.pw;
    const __m256 a = load_inside(row, start, g.w), b = load_inside(row, start + 8, g.w);
    // a0 a2 b0 b2 | a4 a6 b4 b6, then the middle 64-bit pairs swapped: a0 a2 a4 a6 b0 b2 b4 b6
    const __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8)));
    _mm256_storeu_ps(odd + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8)));
  }
  const int64_t tw8 = t.half - 8;
  for (int64_t tx = 0; tx < t.tw; tx += 8) {
    const __m256 e0 = _mm256_loadu_ps(even + tx), e1 = _mm256_loadu_ps(even + tx + 1);
    const __m256 o0 = _mm256_loadu_ps(odd + tx), o1 = _mm256_loadu_ps(odd + tx + 1);
    _mm256_storeu_ps(h + tx, _mm256_sub_ps(e0, e1));
    _mm256_storeu_ps(h + tw8 + tx, _mm256_add_ps(o0, e1));
    _mm256_storeu_ps(h + 2 * tw8 + tx, _mm256_sub_ps(e1, o0));
    _mm256_storeu_ps(h + 3 * tw8 + tx, _mm256_sub_ps(o0, o1));
  }
}

// v[(4i + j) * point_stride + tx] = (B^T d B)[i][j] for the tiles of one tile row and
// channel, from the row transforms h[r] [4][tw8] of its four input rows (B^T down the
// columns). Whole vectors: up to 7 lanes past tw are written (the caller's rows have room).
void column_transform(float* v, int64_t point_stride, const float* const* h, const Tiling& t) {
  const int64_t tw8 = t.half - 8;
  for (int64_t tx = 0; tx < t.tw; tx += 8)
    for (int j = 0; j < 4; ++j) {
      const __m256 h0 = _mm256_loadu_ps(h[0] + j * tw8 + tx), h1 = _mm256_loadu_ps(h[1] + j * tw8 + tx);
      const __m256 h2 = _mm256_loadu_ps(h[2] + j * tw8 + tx), h3 = _mm256_loadu_ps(h[3] + j * tw8 + tx);
      _mm256_storeu_ps(v + j * point_stride + tx, _mm256_sub_ps(h0, h2));
      _mm256_storeu_ps(v + (4 + j) * point_stride + tx, _mm256_add_ps(h1, h2));
      _mm256_storeu_ps(v + (8 + j) * point_stride + tx, _mm256_sub_ps(h2, h1));
      _mm256_storeu_ps(v + (12 + j) * point_stride + tx, _mm256_sub_ps(h1, h3));
    }
}

// Per-thread scratch of one block's input transform, in one buffer of scratch_floats(t):
// the row transforms of the four input rows of a tile row, a zero one for rows in the
// padding, and one split row.
struct RowScratch {
  float* rows[4];  // [4][tw8] each
  float* zeros;    // [4][tw8]
  float* even;     // [half]
  float* odd;      // [half]
};
int64_t scratch_floats(const Tiling& t) { return 20 * t.half + 2 * t.half; }
RowScratch row_scratch(float* scratch, const Tiling& t) {
  RowScratch s;
  for (int r = 0; r < 4; ++r) s.rows[r] = scratch + r * 4 * t.half;
  s.zeros = scratch + 16 * t.half;
  s.even = scratch + 20 * t.half;
  s.odd = scratch + 21 * t.half;
  std::memset(s.zeros, 0, static_cast<size_t>(4 * t.half) * sizeof(float));
  return s;
}

// v [16][C][stride]: the transformed input of tile rows [q0, q1), lanes past them zero (the
// GEMM's last panel reads them). x: [N, C, H, W]. Tile row ty reads input rows 2 ty - ph
// .. 2 ty - ph + 3, so consecutive tile rows of a sample share two: their row transforms
// are kept, and each input row is transformed once per channel and block.
void transform_block_input(float* v, const float* x, const ConvGeom& g, const Tiling& t, int64_t q0,
                           int64_t q1, float* scratch) {
  RowScratch s = row_scratch(scratch, t);
  const float* h[4];
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / t.th, ty = q % t.th;
      const bool continues =
          q > q0 && ty > 0;  // the previous tile row: same sample, rows 2 and 3 are our 0 and 1
      if (continues) {
        std::swap(s.rows[0], s.rows[2]);
        std::swap(s.rows[1], s.rows[3]);
        h[0] = h[2];
        h[1] = h[3];
      }
      const float* plane = x + (n * g.c + c) * g.h * g.w;
      for (int r = continues ? 2 : 0; r < 4; ++r) {
        const int64_t ih = 2 * ty - g.ph + r;
        const bool inside = ih >= 0 && ih < g.h;
        if (inside) row_transform(s.rows[r], plane + ih * g.w, g, t, s.even, s.odd);
        h[r] = inside ? s.rows[r] : s.zeros;
      }
      column_transform(v + c * t.stride + (q - q0) * t.tw, g.c * t.stride, h, t);
    }
  const int64_t used = (q1 - q0) * t.tw;
  if (used < t.lanes)
    for (int64_t row = 0; row < kPoints * g.c; ++row)
      std::memset(v + row * t.stride + used, 0, static_cast<size_t>(t.lanes - used) * sizeof(float));
}

// dst[0 .. valid) = a0 b0 a1 b1 ... a7 b7 (valid <= 16).
inline void store_interleaved(float* dst, __m256 a, __m256 b, int64_t valid) {
  const __m256 lo = _mm256_unpacklo_ps(a, b),
               hi = _mm256_unpackhi_ps(a, b);  // a0 b0 a1 b1 | a4 b4 a5 b5, ...
  const __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
  if (valid == 16) {
    _mm256_storeu_ps(dst, first);
    _mm256_storeu_ps(dst + 8, second);
    return;
  }
  alignas(32) float tmp[16];
  _mm256_store_ps(tmp, first);
  _mm256_store_ps(tmp + 8, second);
  std::memcpy(dst, tmp, static_cast<size_t>(valid) * sizeof(float));
}

// Output rows 2 ty and 2 ty + 1 of one channel's plane [HO, WO] from the tiles of one tile
// row, m[xi * point_stride + tx]: A^T m A + bias, A^T = [1 1 1 0; 0 1 -1 -1].
void output_tile_row(float* plane, const float* m, int64_t point_stride, float bias, const ConvGeom& g,
                     int64_t ty, int64_t tw) {
  const __m256 b = _mm256_set1_ps(bias);
  for (int64_t tx = 0; tx < tw; tx += 8) {
    __m256 s0[4], s1[4];  // rows of A^T m
    for (int j = 0; j < 4; ++j) {
      const __m256 m0 = _mm256_loadu_ps(m + j * point_stride + tx),
                   m1 = _mm256_loadu_ps(m + (4 + j) * point_stride + tx);
      const __m256 m2 = _mm256_loadu_ps(m + (8 + j) * point_stride + tx),
                   m3 = _mm256_loadu_ps(m + (12 + j) * point_stride + tx);
      s0[j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
      s1[j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    auto left = [&](const __m256* s) {
      return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), s[2]), b);
    };
    auto right = [&](const __m256* s) {
      return _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[1], s[2]), s[3]), b);
    };
    const int64_t valid = std::min<int64_t>(16, g.wo - 2 * tx);  // lanes past tw map to columns >= WO
    store_interleaved(plane + 2 * ty * g.wo + 2 * tx, left(s0), right(s0), valid);
    if (2 * ty + 1 < g.ho)
      store_interleaved(plane + (2 * ty + 1) * g.wo + 2 * tx, left(s1), right(s1), valid);
  }
}

// out's tile rows [q0, q1) for every output channel, from the block's transformed input v
// [16][C][stride] and weights u [16][CO][C]; m: [16][kMR][lanes] (+ 8 floats of slack: the
// output transform's last vector may read past the lanes).
void block_output(float* out, const float* u, const float* v, const float* bias, const ConvGeom& g,
                  const Tiling& t, int64_t q0, int64_t q1, float* m) {
  const int64_t point_stride = kMR * t.lanes;
  for (int64_t o0 = 0; o0 < g.co; o0 += kMR) {
    const int mr = static_cast<int>(std::min<int64_t>(kMR, g.co - o0));
    for (int xi = 0; xi < kPoints; ++xi)
      for (int64_t t0 = 0; t0 < t.lanes; t0 += avx2::kPanelLanes) {
        float* mo = m + xi * point_stride + t0;
        const float* w = u + (xi * g.co + o0) * g.c;
        const float* panel = v + xi * g.c * t.stride + t0;
        if (mr == kMR)
          avx2::micro_kernel<kMR>(mo, t.lanes, w, g.c, panel, t.stride, nullptr, avx2::kPanelLanes);
        else
          for (int r = 0; r < mr; ++r)
            avx2::micro_kernel<1>(mo + r * t.lanes, t.lanes, w + r * g.c, g.c, panel, t.stride, nullptr,
                                  avx2::kPanelLanes);
      }
    for (int r = 0; r < mr; ++r)
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t n = q / t.th, ty = q % t.th;
        output_tile_row(out + (n * g.co + o0 + r) * g.p, m + r * t.lanes + (q - q0) * t.tw, point_stride,
                        bias ? bias[o0 + r] : 0.f, g, ty, t.tw);
      }
  }
}

}  // namespace

bool winograd_accepts(const ConvGeom& g) {
  // 8+ input channels: with fewer (a stem's 3) the transforms outweigh the FMAs saved;
  // C_out * C_in <= 64 * 64: U [16][CO][C] (256 KB at 64 x 64) stays in L2 beside V
  return g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.c >= 8 && g.co * g.c <= 64 * 64;
}

void winograd_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  const Tiling t = make_tiling(g);
  const std::vector<float> u = transform_weights(w, g);
  const size_t v_floats = static_cast<size_t>(kPoints * g.c * t.stride);
  const size_t m_floats = static_cast<size_t>(kPoints * kMR * t.lanes + 8);
#pragma omp parallel for schedule(static) if (g.n * g.p * g.co * g.k > kParallelMacs)
  for (int64_t b = 0; b < t.blocks; ++b) {
    const int64_t q0 = b * t.rows, q1 = std::min(q0 + t.rows, g.n * t.th);
    float* v = workspace<float>(4, v_floats);
    float* m = workspace<float>(5, m_floats);
    float* scratch = workspace<float>(6, static_cast<size_t>(scratch_floats(t)));
    transform_block_input(v, x, g, t, q0, q1, scratch);
    block_output(out, u.data(), v, bias, g, t, q0, q1, m);
  }
}

bool winograd_input_accepts(const ConvGeom& g) {
  return input_grad_as_forward(g) && winograd_accepts(flipped_geometry(g));
}

void winograd_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  const std::vector<float> flipped = flipped_weights(w, g);
  winograd_forward(grad_x, grad_out, flipped.data(), nullptr, flipped_geometry(g));
}

}  // namespace ag::cpu
