// Winograd F(2x2, 3x3) on AVX2 + FMA (routes.cpp): all three passes of 3x3, stride-1
// convolutions of up to 256 x 256 channels (the input gradient as a forward pass with the
// flipped kernel, flip.h). Each 2x2 block of outputs (a tile) reads a 4x4 block d of the
// input; with the tile and kernel transformed, V = B^T d B and U = G w G^T, the tile's
// outputs are A^T M A with M[xi] = sum over input channels of U[xi][o][c] V[xi][c], xi one
// of the 16 points of the 4x4 transform: 16 multiplications per tile and channel pair
// where the direct convolution does 36, 2.25x fewer FMAs (Lavin & Gray 2016, "Fast
// Algorithms for Convolutional Neural Networks"). On 8-float vectors the direct route
// (panel_gemm) runs near the FMA peak on these shapes; fewer FMAs is what is left.
//
// The batch is cut into blocks of whole tile rows taken in order; for one block: the input
// transform writes V [16][C][lanes] (lane = a tile of the block, about 128 KB: in L2),
// the GEMMs M[xi] = U[xi] V[xi] run on avx2::micro_kernel four output channels at a time
// into M [16][4][lanes] (in L1), and the output transform of those four channels writes
// their NCHW rows. Both transforms are separable and run along 8 tiles of a row per
// vector: the input rows a block reads are copied with their zero border, each is split
// into even and odd columns and transformed along the row once (the two tile rows that
// read it share it), then down the columns. The weight gradient transforms grad_out's
// tiles too (A dY A^T) and sums, per xi, dU[xi][o][c] over the tiles as dot products.
//
// Accuracy: the transforms have coefficients 0, +-1/2 and +-1, and each output is a sum of
// 16 (not 9) products per channel, so float32 rounding stays within a small multiple of
// the direct sum's (tests/test_layers_conv.cpp compares against float64).
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

constexpr int kPoints = 16;                          // xi: the points of a 4x4 transformed tile
constexpr int kMR = 4;                               // output channels per micro-kernel call
constexpr int64_t kParallelMacs = int64_t{1} << 20;  // smaller convolutions stay on one thread

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// How the output planes are cut: tiles of 2x2 outputs, blocks of whole tile rows taken in
// order over the batch (tile row q = n * th + ty).
struct Tiling {
  int64_t th, tw;  // tile rows and columns of one output plane
  int64_t tw8;     // tw rounded up to whole 8-float vectors
  int64_t rows;    // tile rows per block
  int64_t lanes;   // tiles per block rounded up to whole panels
  int64_t stride;  // floats from one row of V (or M) to the next: lanes + 8, room for a last whole vector
  int64_t blocks;
};

// target_tiles: about how many tiles a block should hold.
Tiling make_tiling(const ConvGeom& g, int64_t target_tiles) {
  Tiling t;
  t.th = (g.ho + 1) / 2;
  t.tw = (g.wo + 1) / 2;
  t.tw8 = round_up(t.tw, 8);
  t.rows = std::max<int64_t>(1, target_tiles / t.tw);
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

// The even and odd floats of a, b: even = a0 a2 a4 a6 b0 b2 b4 b6, odd = a1 a3 ... b7.
inline void split(__m256 a, __m256 b, __m256& even, __m256& odd) {
  // a0 a2 b0 b2 | a4 a6 b4 b6, then the middle 64-bit pairs swapped
  const __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
  const __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8));
}
inline void split_16(const float* p, __m256& even, __m256& odd) {
  split(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), even, odd);
}

// The padded copy of an input row the row transform reads: padded[pw + iw] = row[iw],
// padded_len(t) floats, zero outside (the caller zeroes the buffer once; every row writes
// the same range). A copy made well before it is read: a split read straight after its
// stores would stall on store forwarding.
int64_t padded_len(const Tiling& t) { return 2 * t.tw8 + 8; }
void copy_row(float* padded, const float* row, const ConvGeom& g, const Tiling& t) {
  const int64_t count = std::clamp<int64_t>(padded_len(t) - g.pw, 0, g.w);
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(padded + g.pw + i, _mm256_loadu_ps(row + i));
  for (; i < count; ++i) padded[g.pw + i] = row[i];
}

// h [4][tw8]: h[j][tx] = (B^T applied along the row)[j] of tile tx's four input columns
// 2 tx .. 2 tx + 3 of a padded input row, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
// For 8 tiles the row is split twice into even and odd columns, from the tiles' first
// column and from two further on: the tiles' four columns are e0, o0, e1, o1.
void row_transform(float* h, const float* padded, const Tiling& t) {
  for (int64_t tx = 0; tx < t.tw; tx += 8) {
    __m256 e0, o0, e1, o1;
    split_16(padded + 2 * tx, e0, o0);
    split_16(padded + 2 * tx + 2, e1, o1);
    _mm256_storeu_ps(h + tx, _mm256_sub_ps(e0, e1));
    _mm256_storeu_ps(h + t.tw8 + tx, _mm256_add_ps(o0, e1));
    _mm256_storeu_ps(h + 2 * t.tw8 + tx, _mm256_sub_ps(e1, o0));
    _mm256_storeu_ps(h + 3 * t.tw8 + tx, _mm256_sub_ps(o0, o1));
  }
}

// v[(4i + j) * point_stride + tx] = (B^T d B)[i][j] for the tiles of one tile row and
// channel, from the row transforms h[r] [4][tw8] of its four input rows (B^T down the
// columns). Whole vectors: up to 7 lanes past tw are written (the caller's rows have room).
void column_transform(float* v, int64_t point_stride, const float* const* h, const Tiling& t) {
  const int64_t tw8 = t.tw8;
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

// The lanes past a block's tile rows, in `count` rows stride apart, set to zero: the GEMMs
// read them.
void zero_unused_lanes(float* rows, int64_t count, const Tiling& t, int64_t tile_rows) {
  const int64_t used = tile_rows * t.tw;
  if (used < t.lanes)
    for (int64_t r = 0; r < count; ++r)
      std::memset(rows + r * t.stride + used, 0, static_cast<size_t>(t.lanes - used) * sizeof(float));
}

// Per-thread scratch of one block's input transform, in one buffer of scratch_floats(t):
// padded copies of the input rows one sample's tile rows of the block read, the row
// transforms of the four input rows of a tile row, and a zero one for rows in the padding.
struct RowScratch {
  float* padded;   // [2 rows + 2][padded_len]
  float* rows[4];  // [4][tw8] each
  float* zeros;    // [4][tw8]
};
int64_t scratch_floats(const Tiling& t) { return (2 * t.rows + 2) * padded_len(t) + 20 * t.tw8; }
RowScratch row_scratch(float* scratch, const Tiling& t) {
  RowScratch s;
  s.padded = scratch;
  float* rest = scratch + (2 * t.rows + 2) * padded_len(t);
  for (int r = 0; r < 4; ++r) s.rows[r] = rest + r * 4 * t.tw8;
  s.zeros = rest + 16 * t.tw8;
  std::memset(scratch, 0, static_cast<size_t>(scratch_floats(t)) * sizeof(float));
  return s;
}

// v [16][C][stride] (lanes from v0 on): the transformed input of one channel's tile rows
// [ty0, ty1) of one sample, plane [H, W]. Tile row ty reads input rows 2 ty - ph .. 2 ty -
// ph + 3: those in the plane are copied first, and the two rows consecutive tile rows
// share are transformed once.
void transform_tile_rows(float* v, int64_t point_stride, const float* plane, const ConvGeom& g,
                         const Tiling& t, int64_t ty0, int64_t ty1, RowScratch& s) {
  const int64_t first = 2 * ty0 - g.ph, len = padded_len(t);  // input row of s.padded's row 0
  for (int64_t ih = std::max<int64_t>(first, 0); ih < std::min(g.h, 2 * ty1 - g.ph + 2); ++ih)
    copy_row(s.padded + (ih - first) * len, plane + ih * g.w, g, t);
  const float* h[4];
  for (int64_t ty = ty0; ty < ty1; ++ty) {
    if (ty > ty0) {  // the previous tile row's rows 2 and 3 are this one's 0 and 1
      std::swap(s.rows[0], s.rows[2]);
      std::swap(s.rows[1], s.rows[3]);
      h[0] = h[2];
      h[1] = h[3];
    }
    for (int r = ty > ty0 ? 2 : 0; r < 4; ++r) {
      const int64_t ih = 2 * ty - g.ph + r;
      const bool inside = ih >= 0 && ih < g.h;
      if (inside) row_transform(s.rows[r], s.padded + (ih - first) * len, t);
      h[r] = inside ? s.rows[r] : s.zeros;
    }
    column_transform(v + (ty - ty0) * t.tw, point_stride, h, t);
  }
}

// v [16][C][stride]: the transformed input of tile rows [q0, q1), lanes past them zero (the
// GEMM's last panel reads them). x: [N, C, H, W].
void transform_block_input(float* v, const float* x, const ConvGeom& g, const Tiling& t, int64_t q0,
                           int64_t q1, float* scratch) {
  RowScratch s = row_scratch(scratch, t);
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t q = q0; q < q1;) {  // the block's tile rows of one sample at a time
      const int64_t n = q / t.th, ty0 = q % t.th, ty1 = std::min(t.th, ty0 + (q1 - q));
      transform_tile_rows(v + c * t.stride + (q - q0) * t.tw, g.c * t.stride, x + (n * g.c + c) * g.h * g.w,
                          g, t, ty0, ty1, s);
      q += ty1 - ty0;
    }
  zero_unused_lanes(v, kPoints * g.c, t, q1 - q0);
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

// ---- the weight gradient ----
// With Y = A^T (U . V) A per tile, dL/d(U . V) = A dY A^T, so dU[xi][o][c] = sum over
// tiles of (A dY A^T)[xi][o] V[xi][c] (a GEMM over the tiles, one per xi) and
// dw = G^T dU G.

// dy [16][CO][stride]: A gy A^T of the grad_out tiles of tile rows [q0, q1) (gy 2x2, zero
// past the plane's edge; A^T = [1 1 1 0; 0 1 -1 -1]). grad_out: [N, CO, HO, WO].
void transform_block_grad(float* dy, const float* grad_out, const ConvGeom& g, const Tiling& t, int64_t q0,
                          int64_t q1) {
  const int64_t point_stride = g.co * t.stride;
  for (int64_t o = 0; o < g.co; ++o)
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / t.th, ty = q % t.th;
      const float* top = grad_out + (n * g.co + o) * g.p + 2 * ty * g.wo;
      const bool has_bottom = 2 * ty + 1 < g.ho;
      float* d = dy + o * t.stride + (q - q0) * t.tw;
      for (int64_t tx = 0; tx < t.tw; tx += 8) {
        __m256 p0, q0v, p1 = _mm256_setzero_ps(), q1v = _mm256_setzero_ps();  // even (p), odd (q) columns
        split(load_inside(top, 2 * tx, g.wo), load_inside(top, 2 * tx + 8, g.wo), p0, q0v);
        if (has_bottom)
          split(load_inside(top + g.wo, 2 * tx, g.wo), load_inside(top + g.wo, 2 * tx + 8, g.wo), p1, q1v);
        // rows of A gy: (p0, q0), (p0 + p1, q0 + q1), (p0 - p1, q0 - q1), (-p1, -q1)
        const __m256 zero = _mm256_setzero_ps();
        const __m256 rp[4] = {p0, _mm256_add_ps(p0, p1), _mm256_sub_ps(p0, p1), _mm256_sub_ps(zero, p1)};
        const __m256 rq[4] = {q0v, _mm256_add_ps(q0v, q1v), _mm256_sub_ps(q0v, q1v),
                              _mm256_sub_ps(zero, q1v)};
        for (int i = 0; i < 4; ++i) {  // times A^T along the row: p, p + q, p - q, -q
          _mm256_storeu_ps(d + (4 * i) * point_stride + tx, rp[i]);
          _mm256_storeu_ps(d + (4 * i + 1) * point_stride + tx, _mm256_add_ps(rp[i], rq[i]));
          _mm256_storeu_ps(d + (4 * i + 2) * point_stride + tx, _mm256_sub_ps(rp[i], rq[i]));
          _mm256_storeu_ps(d + (4 * i + 3) * point_stride + tx, _mm256_sub_ps(zero, rq[i]));
        }
      }
    }
  zero_unused_lanes(dy, kPoints * g.co, t, q1 - q0);
}

// [sum of a[0], ..., sum of a[7]]: the lane sums of eight vectors.
inline __m256 lane_sums(const __m256* a) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// du[r][c] (rows du_stride apart) += sum over lanes of dy[r][..] v[c][..] for 2 rows x 4
// columns: 8 accumulators, 6 loads per 8 FMAs.
void dot_tile_2x4(float* du, int64_t du_stride, const float* dy, const float* v, int64_t stride,
                  int64_t lanes) {
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int64_t t = 0; t < lanes; t += 8) {
    __m256 d0 = _mm256_loadu_ps(dy + t), d1 = _mm256_loadu_ps(dy + stride + t);
    asm("" : "+x"(d0), "+x"(d1));
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      // every operand in a register: GCC would fold the loads into the FMAs, loading each
      // twice (10 loads for 8 FMAs, past Zen 3's two 256-bit loads a cycle)
      __m256 x = _mm256_loadu_ps(v + c * stride + t);
      asm("" : "+x"(x));
      acc[c] = _mm256_fmadd_ps(d0, x, acc[c]);
      acc[4 + c] = _mm256_fmadd_ps(d1, x, acc[4 + c]);
    }
  }
  const __m256 sums = lane_sums(acc);
  _mm_storeu_ps(du, _mm_add_ps(_mm_loadu_ps(du), _mm256_castps256_ps128(sums)));
  _mm_storeu_ps(du + du_stride, _mm_add_ps(_mm_loadu_ps(du + du_stride), _mm256_extractf128_ps(sums, 1)));
}

constexpr int64_t kVRows = 16;  // V rows (input channels) per pass over the dY rows

// du [16][CO][C] += the block's sum over tiles of dy[xi][o] v[xi][c].
void accumulate_block(float* du, const float* dy, const float* v, const ConvGeom& g, const Tiling& t) {
  for (int xi = 0; xi < kPoints; ++xi) {
    const float* dyx = dy + xi * g.co * t.stride;
    const float* vx = v + xi * g.c * t.stride;
    float* dux = du + xi * g.co * g.c;
    const int64_t o2 = g.co / 2 * 2, c4 = g.c / 4 * 4;
    // 16 V rows at a time (8.5 KB at 128 lanes) stay in L1 while every pair of dY rows
    // passes: V and dY of one xi exceed L1 from 64 channels on
    for (int64_t c0 = 0; c0 < c4; c0 += kVRows)
      for (int64_t o = 0; o < o2; o += 2)
        for (int64_t c = c0; c < std::min(c0 + kVRows, c4); c += 4)
          dot_tile_2x4(dux + o * g.c + c, g.c, dyx + o * t.stride, vx + c * t.stride, t.stride, t.lanes);
    // the row and columns the 2 x 4 tiles leave
    for (int64_t o = 0; o < g.co; ++o)
      for (int64_t c = o < o2 ? c4 : 0; c < g.c; ++c) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t l = 0; l < t.lanes; l += 8)
          acc = _mm256_fmadd_ps(_mm256_loadu_ps(dyx + o * t.stride + l),
                                _mm256_loadu_ps(vx + c * t.stride + l), acc);
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, acc);
        float sum = 0;
        for (float x : lanes) sum += x;
        dux[o * g.c + c] += sum;
      }
  }
}

// grad_w [CO, C, 3, 3] = G^T du[o][c] G, du [16][CO][C] (G as in transform_weights).
void weights_from_du(float* grad_w, const float* du, const ConvGeom& g) {
  auto gt_times = [](double a, double b, double c, double d, double* out) {  // G^T [a b c d]^T
    out[0] = a + 0.5 * (b + c);
    out[1] = 0.5 * (b - c);
    out[2] = 0.5 * (b + c) + d;
  };
  const int64_t plane = g.co * g.c;
  for (int64_t e = 0; e < plane; ++e) {
    double rows[4][3], k[3][3];  // rows[i] = (du[i, :] G); k = G^T rows
    for (int i = 0; i < 4; ++i)
      gt_times(du[(4 * i) * plane + e], du[(4 * i + 1) * plane + e], du[(4 * i + 2) * plane + e],
               du[(4 * i + 3) * plane + e], rows[i]);
    for (int j = 0; j < 3; ++j) {
      double col[3];
      gt_times(rows[0][j], rows[1][j], rows[2][j], rows[3][j], col);
      for (int i = 0; i < 3; ++i) k[i][j] = col[i];
    }
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) grad_w[e * 9 + i * 3 + j] = float(k[i][j]);
  }
}

}  // namespace

bool winograd_accepts(const ConvGeom& g) {
  // 8+ input channels: with fewer (a stem's 3) the transforms outweigh the FMAs saved.
  // Output rows 7+ wide (4+ tiles): the transforms run along 8 tiles of a row, and on 4x4
  // planes (2 tiles) ResNet18's 512-channel layers ran slower than panel_gemm.
  // C_out * C_in <= 256 * 256: U [16][CO][C] (4 MB there) is read once per block of tiles
  // (no blocking over channels).
  return g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.c >= 8 && g.wo >= 7 && g.co * g.c <= 256 * 256;
}

void winograd_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  // V [16][C][lanes] about 128 KB: in L2 while every block of output channels reads it
  const Tiling t = make_tiling(g, std::clamp<int64_t>(2048 / g.c, avx2::kPanelLanes, 128));
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

void winograd_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  // Blocks of about 256 tiles whatever the channels: each 2 x 4 dot tile ends in lane
  // sums (about 20 instructions), once per block; at 128 tiles ResNet18's weight gradients
  // ran 5-10% slower, at 512 no faster.
  const Tiling t = make_tiling(g, 256);
  const size_t v_floats = static_cast<size_t>(kPoints * g.c * t.stride);
  const size_t dy_floats = static_cast<size_t>(kPoints * g.co * t.stride);
  std::vector<float> du(static_cast<size_t>(kPoints * g.co * g.c));
  // blocks as the "samples" of dot_weight_sum.h's chunks: private sums added in thread order
  dot::sum_over_sample_chunks(
      du.data(), kPoints * g.co * g.c, t.blocks, 1, [&](float* acc, int64_t b, int64_t) {
        const int64_t q0 = b * t.rows, q1 = std::min(q0 + t.rows, g.n * t.th);
        float* v = workspace<float>(4, v_floats);
        float* dy = workspace<float>(5, dy_floats);
        float* scratch = workspace<float>(7, static_cast<size_t>(scratch_floats(t)));  // 6: the sums
        transform_block_input(v, x, g, t, q0, q1, scratch);
        transform_block_grad(dy, grad_out, g, t, q0, q1);
        accumulate_block(acc, dy, v, g, t);
      });
  weights_from_du(grad_w, du.data(), g);
}

}  // namespace ag::cpu
