// Winograd's F(m x m, 3 x 3) on AVX2 + FMA (routes.cpp), m = 4 or 2 by shape (where each
// measured faster: four_by_four_forward / _weight): all three passes of 3x3, stride-1
// convolutions of up to 256 x 256 channels (the input gradient as a forward pass with the
// flipped kernel, flip.h). A tile of m x m outputs reads an a x a input block d (a = m + 2); with the
// block and kernel transformed, V = B^T d B and U = G w G^T, the tile's outputs are
// A^T M A with M[xi] = sum over input channels of U[xi][o][c] V[xi][c], xi one of the a^2
// points (winograd_transforms.h). Per output and channel pair that is a^2 / m^2
// multiplications where the direct convolution does 9: 4x fewer FMAs with m = 4, 2.25x
// with m = 2 (Lavin & Gray 2016). On 8-float vectors the direct route (panel_gemm) runs
// near the FMA peak on these shapes; fewer FMAs is what is left.
//
// The batch is cut into blocks of whole tile rows taken in order; for one block: the input
// transform writes V [a^2][C][lanes] (lane = a tile of the block, about 128 KB: in L2),
// the GEMMs M[xi] = U[xi] V[xi] run on avx2::micro_kernel four output channels at a time
// into M [a^2][4][lanes] (in L1), and the output transform of those four channels writes
// their NCHW rows. Both transforms are separable and run along 8 tiles of a row per
// vector (rows of 4 tiles: two tile rows a vector, Pass::paired): the input rows a block
// reads are copied with their zero border, each is split into its m phases (columns mod
// m) and transformed along the row once (consecutive tile rows share two input rows), then
// down the columns. The weight gradient transforms grad_out's tiles too (A dY A^T) and
// sums, per xi, dU[xi][o][c] over the tiles as dot products; dw = G^T dU G.
//
// Accuracy: F(2, 3)'s transforms have coefficients 0, +-1/2 and +-1; F(4, 3)'s reach 8
// and 1/24, so its float32 sums carry errors 10-50 times the direct convolution's (the
// worst seen by tests/test_layers_conv.cpp's float64 comparison, |got - want| /
// (1 + |want|): 1.7e-4 on a 2,700-term sum, about 1e-5 of that output's scale), which
// training does not notice: oneDNN and cuDNN use F(4, 3).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv/avx2/micro_kernel.h"
#include "core/cpu/conv/avx2/winograd_transforms.h"
#include "core/cpu/conv/dot_weight_sum.h"
#include "core/cpu/conv/flip.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "core/cpu/conv/avx2/ is compiled only for AVX2 + FMA targets (see CMakeLists.txt)"
#endif

namespace ag::cpu {

namespace {

using avx2::combine;
using avx2::Winograd;

constexpr int kMR = 4;                               // output channels per micro-kernel call
constexpr int64_t kParallelMacs = int64_t{1} << 20;  // smaller convolutions stay on one thread

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// How the output planes are cut: tiles of M x M outputs, blocks of whole tile rows taken in
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
Tiling make_tiling(const ConvGeom& g, int m, int64_t target_tiles) {
  Tiling t;
  t.th = (g.ho + m - 1) / m;
  t.tw = (g.wo + m - 1) / m;
  t.tw8 = round_up(t.tw, 8);
  t.rows = std::max<int64_t>(1, target_tiles / t.tw);
  t.lanes = round_up(t.rows * t.tw, avx2::kPanelLanes);
  t.stride = t.lanes + 8;
  t.blocks = (g.n * t.th + t.rows - 1) / t.rows;
  return t;
}

// The lanes past a block's tile rows, in `count` rows stride apart, set to zero: the GEMMs
// read them.
void zero_unused_lanes(float* rows, int64_t count, const Tiling& t, int64_t tile_rows) {
  const int64_t used = tile_rows * t.tw;
  if (used < t.lanes)
    for (int64_t r = 0; r < count; ++r)
      std::memset(rows + r * t.stride + used, 0, static_cast<size_t>(t.lanes - used) * sizeof(float));
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

// The same for 4 floats from start >= 0, zero for a null row (one past the plane).
inline __m128 load4_inside(const float* row, int64_t start, int64_t w) {
  if (!row) return _mm_setzero_ps();
  if (start + 4 <= w) return _mm_loadu_ps(row + start);
  const __m128i lane = _mm_add_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(static_cast<int>(start)));
  return _mm_maskload_ps(row + start, _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(w)), lane));
}

// lo | hi as one vector (hi zero when null).
inline __m256 join_halves(__m128 lo, const float* hi) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi ? _mm_loadu_ps(hi) : _mm_setzero_ps(), 1);
}

// The first `valid` floats of n vectors to dst.
template <int N>
inline void store_first(float* dst, const __m256* v, int64_t valid) {
  if (valid == 8 * N) {
    for (int k = 0; k < N; ++k) _mm256_storeu_ps(dst + 8 * k, v[k]);
    return;
  }
  alignas(32) float tmp[8 * N];
  for (int k = 0; k < N; ++k) _mm256_store_ps(tmp + 8 * k, v[k]);
  std::memcpy(dst, tmp, static_cast<size_t>(valid) * sizeof(float));
}

template <int M>
struct Pass {
  static constexpr int kA = M + 2, kPoints = kA * kA;
  using W = Winograd<M>;

  // Rows of 4 tiles (outputs 4M - 3 .. 4M wide: ResNet-20's 8x8 planes with F(2, 3), 16x16
  // ones with F(4, 3)) would fill half of every vector. There two consecutive tile rows
  // share each vector instead, lanes 0-3 the first's tiles and 4-7 the second's (where V
  // and M hold them anyway: tile row after tile row), and every transform does both at once.
  static bool paired(const Tiling& t) { return t.tw == 4; }

  // ---- the weights ----

  // u [a^2][CO][C]: u[a i + j][o][c] = (G w[o][c] G^T)[i][j]. w: [CO, C, 3, 3]. In the
  // calling thread's workspace slot 10; on both threads (while one thread transformed
  // ResNet-20's weights the other waited: a few % of its step).
  static const float* transform_weights(const float* w, const ConvGeom& g) {
    float* u = workspace<float>(10, static_cast<size_t>(kPoints * g.co * g.c));
#pragma omp parallel for schedule(static) if (g.co * g.c >= 1024)
    for (int64_t o = 0; o < g.co; ++o)
      for (int64_t c = 0; c < g.c; ++c) {
        const float* k = w + (o * g.c + c) * 9;
        double gk[kA][3];  // G k
        for (int i = 0; i < kA; ++i)
          for (int j = 0; j < 3; ++j)
            gk[i][j] = W::kG[i][0] * k[j] + W::kG[i][1] * k[3 + j] + W::kG[i][2] * k[6 + j];
        for (int i = 0; i < kA; ++i)
          for (int j = 0; j < kA; ++j)
            u[((kA * i + j) * g.co + o) * g.c + c] =
                float(gk[i][0] * W::kG[j][0] + gk[i][1] * W::kG[j][1] + gk[i][2] * W::kG[j][2]);
      }
    return u;
  }

  // grad_w [CO, C, 3, 3] = G^T du[o][c] G, du [a^2][CO][C].
  static void weights_from_du(float* grad_w, const float* du, const ConvGeom& g) {
    const int64_t plane = g.co * g.c;
#pragma omp parallel for schedule(static) if (plane >= 1024)
    for (int64_t e = 0; e < plane; ++e) {
      double dg[kA][3];  // du G
      for (int i = 0; i < kA; ++i)
        for (int b = 0; b < 3; ++b) {
          dg[i][b] = 0;
          for (int j = 0; j < kA; ++j) dg[i][b] += du[(kA * i + j) * plane + e] * W::kG[j][b];
        }
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          double sum = 0;
          for (int i = 0; i < kA; ++i) sum += W::kG[i][a] * dg[i][b];
          grad_w[e * 9 + a * 3 + b] = float(sum);
        }
    }
  }

  // ---- the input transform ----

  // The padded copy of an input row the row transform reads: padded[pw + iw] = row[iw],
  // padded_len(t) floats, zero outside (zeroed once; every row writes the same range).
  // Copied well before it is read: a split read straight after its stores would stall on
  // store forwarding.
  static int64_t padded_len(const Tiling& t) { return M * t.tw8 + 2 * M + 16; }
  static void copy_row(float* padded, const float* row, const ConvGeom& g, const Tiling& t) {
    const int64_t count = std::clamp<int64_t>(padded_len(t) - g.pw, 0, g.w);
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(padded + g.pw + i, _mm256_loadu_ps(row + i));
    for (; i < count; ++i) padded[g.pw + i] = row[i];
  }

  // The phases of the 8M floats at p (split_phases).
  static void split(const float* p, __m256* phase) {
    __m256 r[M];
    for (int k = 0; k < M; ++k) r[k] = _mm256_loadu_ps(p + 8 * k);
    avx2::split_phases<M>(r, phase);
  }

  // h [a][tw8]: h[j][tx] = (B^T along the row)[j] of tile tx's a input columns M tx ..
  // M tx + a - 1 of a padded row: the row's M phases from the tiles' first column give
  // the first M columns, those from M further on the last two.
  static void row_transform(float* h, const float* padded, const Tiling& t) {
    for (int64_t tx = 0; tx < t.tw; tx += 8) {
      __m256 d[2 * M];
      split(padded + M * tx, d);
      split(padded + M * tx + M, d + M);
#pragma GCC unroll 6
      for (int j = 0; j < kA; ++j) _mm256_storeu_ps(h + j * t.tw8 + tx, combine(W::kBT[j], d));
    }
  }

  // v[(a i + j) * point_stride + tx] = (B^T d B)[i][j] for the tiles of one tile row and
  // channel, from the row transforms h[r] [a][tw8] of its a input rows (B^T down the
  // columns). Whole vectors: up to 7 lanes past tw are written (the caller's rows have room).
  static void column_transform(float* v, int64_t point_stride, const float* const* h, const Tiling& t) {
    for (int64_t tx = 0; tx < t.tw; tx += 8)
      for (int j = 0; j < kA; ++j) {
        __m256 col[kA];
        for (int r = 0; r < kA; ++r) col[r] = _mm256_loadu_ps(h[r] + j * t.tw8 + tx);
#pragma GCC unroll 6
        for (int i = 0; i < kA; ++i)
          _mm256_storeu_ps(v + (kA * i + j) * point_stride + tx, combine(W::kBT[i], col));
      }
  }

  // Per-thread scratch of one block's input transform, in one buffer of scratch_floats(t):
  // padded copies of the input rows one sample's tile rows of the block read, the row
  // transforms of the a input rows of a tile row, a zero one for rows in the padding, and
  // for paired tile rows the row transforms of every input row as 4-tile halves.
  static constexpr int64_t kHalfRow = kA * 4;  // floats of one input row's halves: [a][4]
  struct RowScratch {
    float* padded;    // [M rows + 2][padded_len]
    float* rows[kA];  // [a][tw8] each
    float* zeros;     // [a][tw8]
    float* halves;    // [M rows + 2][a][4], paired tile rows only
  };
  static int64_t scratch_floats(const Tiling& t) {
    return (M * t.rows + 2) * (padded_len(t) + (paired(t) ? kHalfRow : 0)) + (kA + 1) * kA * t.tw8;
  }
  static RowScratch row_scratch(float* scratch, const Tiling& t) {
    RowScratch s;
    s.padded = scratch;
    float* rest = scratch + (M * t.rows + 2) * padded_len(t);
    for (int r = 0; r < kA; ++r) s.rows[r] = rest + r * kA * t.tw8;
    s.zeros = rest + kA * kA * t.tw8;
    s.halves = paired(t) ? s.zeros + kA * t.tw8 : nullptr;
    // the padded rows' borders and the zero rows; the halves are written before they are read
    std::memset(scratch, 0, static_cast<size_t>(s.zeros + kA * t.tw8 - scratch) * sizeof(float));
    return s;
  }

  // ---- paired tile rows ----

  // halves[j][0 .. 4) and halves[a + j][0 .. 4): (B^T along the row)[j] of the 4 tiles of
  // padded rows pa and pb, row_transform's values for two rows in one vector.
  static void row_transform_pair(float* halves, const float* pa, const float* pb) {
    __m256 r[M], d[2 * M];
    for (int k = 0; k < M; ++k) r[k] = _mm256_loadu2_m128(pb + 4 * k, pa + 4 * k);
    avx2::split_pair_phases<M>(r, d);
    for (int k = 0; k < M; ++k) r[k] = _mm256_loadu2_m128(pb + M + 4 * k, pa + M + 4 * k);
    avx2::split_pair_phases<M>(r, d + M);
#pragma GCC unroll 6
    for (int j = 0; j < kA; ++j)
      _mm256_storeu2_m128(halves + kHalfRow + 4 * j, halves + 4 * j, combine(W::kBT[j], d));
  }

  // column_transform for a tile row (lanes 0-3) and the next (4-7; zero where bottom is
  // null), from the halves of their a input rows each (consecutive rows kHalfRow apart).
  static void column_transform_pair(float* v, int64_t point_stride, const float* top, const float* bottom) {
    for (int j = 0; j < kA; ++j) {
      __m256 col[kA];
      for (int r = 0; r < kA; ++r)
        col[r] = join_halves(_mm_loadu_ps(top + r * kHalfRow + 4 * j),
                             bottom ? bottom + r * kHalfRow + 4 * j : nullptr);
#pragma GCC unroll 6
      for (int i = 0; i < kA; ++i) _mm256_storeu_ps(v + (kA * i + j) * point_stride, combine(W::kBT[i], col));
    }
  }

  // transform_tile_rows for rows of 4 tiles: every input row's row transform once (two
  // rows a vector: their count, M per tile row + 2, is even), then the column transforms
  // of two tile rows a vector. An odd last tile row fills lanes 4-7 with zeros, which the
  // next tile row overwrites or zero_unused_lanes clears.
  static void transform_tile_row_pairs(float* v, int64_t point_stride, const float* plane, const ConvGeom& g,
                                       const Tiling& t, int64_t ty0, int64_t ty1, RowScratch& s) {
    const int64_t first = M * ty0 - g.ph, len = padded_len(t), count = M * (ty1 - ty0) + 2;
    copy_rows(s, plane, g, t, first, first + count);
    for (int64_t r = 0; r < count; r += 2)
      row_transform_pair(s.halves + r * kHalfRow, s.padded + r * len, s.padded + (r + 1) * len);
    for (int64_t r = 0; r < count; ++r)  // rows in the padding; their padded copies are stale
      if (first + r < 0 || first + r >= g.h)
        std::memset(s.halves + r * kHalfRow, 0, static_cast<size_t>(kHalfRow) * sizeof(float));
    for (int64_t ty = ty0; ty < ty1; ty += 2) {
      const float* top = s.halves + M * (ty - ty0) * kHalfRow;
      column_transform_pair(v + (ty - ty0) * 4, point_stride, top,
                            ty + 1 < ty1 ? top + M * kHalfRow : nullptr);
    }
  }

  // Input rows [first, last) of plane [H, W] that lie in it to s.padded's rows from 0.
  static void copy_rows(RowScratch& s, const float* plane, const ConvGeom& g, const Tiling& t, int64_t first,
                        int64_t last) {
    for (int64_t ih = std::max<int64_t>(first, 0); ih < std::min(g.h, last); ++ih)
      copy_row(s.padded + (ih - first) * padded_len(t), plane + ih * g.w, g, t);
  }

  // v [a^2][C][stride]: the transformed input of one channel's tile rows [ty0, ty1) of
  // one sample, plane [H, W]. Tile row ty reads input rows M ty - ph .. M ty - ph + a - 1:
  // those in the plane are copied first, and the two rows consecutive tile rows share are
  // transformed once.
  static void transform_tile_rows(float* v, int64_t point_stride, const float* plane, const ConvGeom& g,
                                  const Tiling& t, int64_t ty0, int64_t ty1, RowScratch& s) {
    if (paired(t)) return transform_tile_row_pairs(v, point_stride, plane, g, t, ty0, ty1, s);
    const int64_t first = M * ty0 - g.ph, len = padded_len(t);  // input row of s.padded's row 0
    copy_rows(s, plane, g, t, first, M * ty1 - g.ph + 2);
    const float* h[kA];
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      if (ty > ty0) {  // the previous tile row's last two rows are this one's first two
        std::swap(s.rows[0], s.rows[M]);
        std::swap(s.rows[1], s.rows[M + 1]);
        h[0] = h[M];
        h[1] = h[M + 1];
      }
      for (int r = ty > ty0 ? 2 : 0; r < kA; ++r) {
        const int64_t ih = M * ty - g.ph + r;
        const bool inside = ih >= 0 && ih < g.h;
        if (inside) row_transform(s.rows[r], s.padded + (ih - first) * len, t);
        h[r] = inside ? s.rows[r] : s.zeros;
      }
      column_transform(v + (ty - ty0) * t.tw, point_stride, h, t);
    }
  }

  // v [a^2][C][stride]: the transformed input of tile rows [q0, q1), lanes past them zero
  // (the GEMM's last panel reads them). x: [N, C, H, W].
  static void transform_block_input(float* v, const float* x, const ConvGeom& g, const Tiling& t, int64_t q0,
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

  // ---- the output transform ----

  // s = A^T m of 8 tiles, m[xi * point_stride].
  static void transform_down(__m256 (&s)[M][kA], const float* m, int64_t point_stride) {
    for (int j = 0; j < kA; ++j) {
      __m256 col[kA];
      for (int k = 0; k < kA; ++k) col[k] = _mm256_loadu_ps(m + (kA * k + j) * point_stride);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) s[i][j] = combine(W::kAT[i], col);
    }
  }

  // out (M vectors): output row i of the 8 tiles, (s A)[i] + bias, their M outputs side by
  // side (interleave).
  static void output_row(__m256* out, const __m256 (&s_row)[kA], __m256 bias) {
    __m256 y[M];
#pragma GCC unroll 4
    for (int l = 0; l < M; ++l) y[l] = _mm256_add_ps(combine(W::kAT[l], s_row), bias);
    avx2::interleave<M>(y, out);
  }

  // Output rows M ty .. M ty + M - 1 of one channel's plane [HO, WO] from the tiles of one
  // tile row, m[xi * point_stride + tx]: A^T m A + bias.
  static void output_tile_row(float* plane, const float* m, int64_t point_stride, float bias,
                              const ConvGeom& g, int64_t ty, int64_t tw) {
    const __m256 b = _mm256_set1_ps(bias);
    for (int64_t tx = 0; tx < tw; tx += 8) {
      __m256 s[M][kA];
      transform_down(s, m + tx, point_stride);
      const int64_t valid = std::min<int64_t>(8 * M, g.wo - M * tx);  // lanes past tw map to columns >= WO
      for (int i = 0; i < M && M * ty + i < g.ho; ++i) {
        __m256 out[M];
        output_row(out, s[i], b);
        store_first<M>(plane + (M * ty + i) * g.wo + M * tx, out, valid);
      }
    }
  }

  // output_tile_row for paired tile rows: tile row q (lanes 0-3 of m) and, where both,
  // q + 1 (lanes 4-7) of output channel o of out [N, CO, HO, WO].
  static void output_tile_row_pair(float* out, int64_t o, const float* m, int64_t point_stride, float bias,
                                   const ConvGeom& g, const Tiling& t, int64_t q, bool both) {
    __m256 s[M][kA];
    transform_down(s, m, point_stride);
    const int64_t valid = std::min<int64_t>(4 * M, g.wo);
    float* plane[2];
    int64_t ty[2];
    for (int h = 0; h < 2; ++h) {
      plane[h] = out + ((q + h) / t.th * g.co + o) * g.p;
      ty[h] = (q + h) % t.th;
    }
    for (int i = 0; i < M; ++i) {
      __m256 rows[M];  // rows[0 .. M/2): tile row q's outputs, the rest q + 1's
      output_row(rows, s[i], _mm256_set1_ps(bias));
      if (M * ty[0] + i < g.ho) store_first<M / 2>(plane[0] + (M * ty[0] + i) * g.wo, rows, valid);
      if (both && M * ty[1] + i < g.ho)
        store_first<M / 2>(plane[1] + (M * ty[1] + i) * g.wo, rows + M / 2, valid);
    }
  }

  // out's tile rows [q0, q1) for every output channel, from the block's transformed input
  // v [a^2][C][stride] and weights u [a^2][CO][C]; m: [a^2][kMR][lanes] (+ 8 floats of
  // slack: the output transform's last vector may read past the lanes).
  static void block_output(float* out, const float* u, const float* v, const float* bias, const ConvGeom& g,
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
      for (int r = 0; r < mr; ++r) {
        const float b = bias ? bias[o0 + r] : 0.f;
        if (paired(t))
          for (int64_t q = q0; q < q1; q += 2)
            output_tile_row_pair(out, o0 + r, m + r * t.lanes + (q - q0) * t.tw, point_stride, b, g, t, q,
                                 q + 1 < q1);
        else
          for (int64_t q = q0; q < q1; ++q)
            output_tile_row(out + (q / t.th * g.co + o0 + r) * g.p, m + r * t.lanes + (q - q0) * t.tw,
                            point_stride, b, g, q % t.th, t.tw);
      }
    }
  }

  static void forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
    // V [a^2][C][lanes] about 128 KB: in L2 while every block of output channels reads it
    const Tiling t = make_tiling(g, M, std::clamp<int64_t>(32768 / (kPoints * g.c), avx2::kPanelLanes, 128));
    const float* u = transform_weights(w, g);
    const size_t v_floats = static_cast<size_t>(kPoints * g.c * t.stride);
    const size_t m_floats = static_cast<size_t>(kPoints * kMR * t.lanes + 8);
#pragma omp parallel for schedule(static) if (g.n * g.p * g.co * g.k > kParallelMacs)
    for (int64_t b = 0; b < t.blocks; ++b) {
      const int64_t q0 = b * t.rows, q1 = std::min(q0 + t.rows, g.n * t.th);
      float* v = workspace<float>(4, v_floats);
      float* m = workspace<float>(5, m_floats);
      float* scratch = workspace<float>(6, static_cast<size_t>(scratch_floats(t)));
      transform_block_input(v, x, g, t, q0, q1, scratch);
      block_output(out, u, v, bias, g, t, q0, q1, m);
    }
  }

  // ---- the weight gradient ----
  // With Y = A^T (U . V) A per tile, dL/d(U . V) = A dY A^T, so dU[xi][o][c] = sum over
  // tiles of (A dY A^T)[xi][o] V[xi][c] (a GEMM over the tiles, one per xi) and
  // dw = G^T dU G.

  // dy [a^2][CO][stride]: A gy A^T of the grad_out tiles of tile rows [q0, q1) (gy M x M,
  // zero past the plane's edge). grad_out: [N, CO, HO, WO].
  static void transform_block_grad(float* dy, const float* grad_out, const ConvGeom& g, const Tiling& t,
                                   int64_t q0, int64_t q1) {
    if (paired(t)) return transform_block_grad_pairs(dy, grad_out, g, t, q0, q1);
    const int64_t point_stride = g.co * t.stride;
    for (int64_t o = 0; o < g.co; ++o)
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t n = q / t.th, ty = q % t.th;
        const float* top = grad_out + (n * g.co + o) * g.p + M * ty * g.wo;
        float* d = dy + o * t.stride + (q - q0) * t.tw;
        for (int64_t tx = 0; tx < t.tw; tx += 8) {
          __m256 phase[M][M];  // phase[r][k]: column M tx' + k of the tile row's output row r
          for (int r = 0; r < M; ++r) {
            __m256 loaded[M];
            for (int k = 0; k < M; ++k)
              loaded[k] =
                  M * ty + r < g.ho ? load_inside(top + r * g.wo, M * tx + 8 * k, g.wo) : _mm256_setzero_ps();
            avx2::split_phases<M>(loaded, phase[r]);
          }
          store_grad_tiles(d + tx, point_stride, phase);
        }
      }
    zero_unused_lanes(dy, kPoints * g.co, t, q1 - q0);
  }

  // dy[xi * point_stride] = (A gy A^T)[xi] of 8 tiles from the phases of their M rows.
  static void store_grad_tiles(float* dy, int64_t point_stride, const __m256 (&phase)[M][M]) {
    for (int i = 0; i < kA; ++i) {
      __m256 row[M];  // row i of A gy
      for (int k = 0; k < M; ++k) row[k] = combine(W::kA_[i], &phase[0][k], M);
      for (int j = 0; j < kA; ++j)
        _mm256_storeu_ps(dy + (kA * i + j) * point_stride, combine(W::kA_[j], row));
    }
  }

  // transform_block_grad for paired tile rows: q and q + 1 (a zero one past q1) a vector.
  static void transform_block_grad_pairs(float* dy, const float* grad_out, const ConvGeom& g, const Tiling& t,
                                         int64_t q0, int64_t q1) {
    const int64_t point_stride = g.co * t.stride;
    for (int64_t o = 0; o < g.co; ++o)
      for (int64_t q = q0; q < q1; q += 2) {
        const float* top[2];  // row M ty of tile rows q and q + 1 in grad_out, or null
        for (int h = 0; h < 2; ++h)
          top[h] = q + h < q1 ? grad_out + ((q + h) / t.th * g.co + o) * g.p + M * ((q + h) % t.th) * g.wo
                              : nullptr;
        __m256 phase[M][M];
        for (int r = 0; r < M; ++r) {
          const float* row[2];
          for (int h = 0; h < 2; ++h)
            row[h] = top[h] && M * ((q + h) % t.th) + r < g.ho ? top[h] + r * g.wo : nullptr;
          __m256 loaded[M];
          for (int k = 0; k < M; ++k)
            loaded[k] = _mm256_set_m128(load4_inside(row[1], 4 * k, g.wo), load4_inside(row[0], 4 * k, g.wo));
          avx2::split_pair_phases<M>(loaded, phase[r]);
        }
        store_grad_tiles(dy + o * t.stride + (q - q0) * t.tw, point_stride, phase);
      }
    zero_unused_lanes(dy, kPoints * g.co, t, q1 - q0);
  }

  static void backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g);
};

// ---- the weight gradient's GEMM (the same for both tile sizes) ----

// du[r][c] (rows du_stride apart) += sum over lanes of dy[r][..] v[c][..] for 2 rows x 4
// columns: 8 accumulators, 6 loads per 8 FMAs.
void dot_tile_2x4(float* du, int64_t du_stride, const float* dy, const float* v, int64_t stride,
                  int64_t lanes) {
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int64_t t = 0; t < lanes; t += 8) avx2::dot_step_2x4(acc, dy + t, dy + stride + t, v + t, stride);
  avx2::add_lane_sums_2x4(du, du_stride, acc);
}

constexpr int64_t kVRows = 16;  // V rows (input channels) per pass over the dY rows

// du [points][CO][C] += the block's sum over tiles of dy[xi][o] v[xi][c].
void accumulate_block(float* du, const float* dy, const float* v, const ConvGeom& g, const Tiling& t,
                      int points) {
  for (int xi = 0; xi < points; ++xi) {
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

template <int M>
void Pass<M>::backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  // Blocks of about 256 tiles whatever the channels: each 2 x 4 dot tile ends in lane
  // sums (about 20 instructions), once per block; at 128 tiles ResNet18's weight gradients
  // ran 5-10% slower, at 512 no faster.
  const Tiling t = make_tiling(g, M, 256);
  const size_t v_floats = static_cast<size_t>(kPoints * g.c * t.stride);
  const size_t dy_floats = static_cast<size_t>(kPoints * g.co * t.stride);
  float* du = workspace<float>(10, static_cast<size_t>(kPoints * g.co * g.c));  // the calling thread's
  // blocks as the "samples" of dot_weight_sum.h's chunks: private sums added in thread order
  dot::sum_over_sample_chunks(du, kPoints * g.co * g.c, t.blocks, 1, [&](float* acc, int64_t b, int64_t) {
    const int64_t q0 = b * t.rows, q1 = std::min(q0 + t.rows, g.n * t.th);
    float* v = workspace<float>(4, v_floats);
    float* dy = workspace<float>(5, dy_floats);
    float* scratch = workspace<float>(7, static_cast<size_t>(scratch_floats(t)));  // 6: the sums
    transform_block_input(v, x, g, t, q0, q1, scratch);
    transform_block_grad(dy, grad_out, g, t, q0, q1);
    accumulate_block(acc, dy, v, g, t, kPoints);
  });
  weights_from_du(grad_w, du, g);
}

// Where F(4, 3) beat F(2, 3) (bench --filter s1 --models resnet18,resnet20): forward
// passes on rows of 8+ tiles (outputs 29+ wide: whole vectors in the transforms), on rows
// of 4 tiles (13-16 wide: paired tile rows fill the vectors) with 32+ input channels, and
// on rows of 5-7 tiles with 128+; weight gradients with 32+ and 64+ input channels there.
// With fewer channels F(4, 3)'s transforms (36 points to F(2, 3)'s 16, part-empty vectors
// on rows of 5-7 tiles) cost more than the FMAs it saves. ResNet-20's 32 -> 32 layers on
// 16x16 planes: forward 2.9 -> 2.3 ms, weight gradient 2.9-3.4 -> 2.7-2.8 ms with F(4, 3).
bool rows_of_four_tiles(const ConvGeom& g) { return (g.wo + 3) / 4 == 4; }
bool four_by_four_forward(const ConvGeom& g) {
  return g.wo >= 29 || (g.wo >= 13 && g.c >= 128) || (rows_of_four_tiles(g) && g.c >= 32);
}
bool four_by_four_weight(const ConvGeom& g) { return g.wo >= 13 && g.c >= (rows_of_four_tiles(g) ? 32 : 64); }

}  // namespace

bool winograd_accepts(const ConvGeom& g) {
  // 8+ input channels: with fewer (a stem's 3) the transforms outweigh the FMAs saved.
  // Output rows 7+ wide (4+ tiles of 2): the transforms run along 8 tiles of a row, and on
  // 4x4 planes (2 tiles) ResNet18's 512-channel layers ran slower than panel_gemm.
  // C_out * C_in <= 256 * 256: U (4 MB there with F(2, 3)) is read once per block of tiles
  // (no blocking over channels).
  return g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.c >= 8 && g.wo >= 7 && g.co * g.c <= 256 * 256;
}

void winograd_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  four_by_four_forward(g) ? Pass<4>::forward(out, x, w, bias, g) : Pass<2>::forward(out, x, w, bias, g);
}

bool winograd_input_accepts(const ConvGeom& g) {
  return input_grad_as_forward(g) && winograd_accepts(flipped_geometry(g));
}

void winograd_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  const std::vector<float> flipped = flipped_weights(w, g);
  winograd_forward(grad_x, grad_out, flipped.data(), nullptr, flipped_geometry(g));
}

void winograd_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  four_by_four_weight(g) ? Pass<4>::backward_weight(grad_w, grad_out, x, g)
                         : Pass<2>::backward_weight(grad_w, grad_out, x, g);
}

}  // namespace ag::cpu
