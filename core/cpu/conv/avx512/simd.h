// AVX-512 building blocks of the implicit-GEMM convolution (implicit_gemm.cpp, dot_weight.cpp):
//   - ConvSource: an NCHW tensor seen as the implicit im2col matrix B[k][q] of a
//     convolution (k = (c, i, j) kernel tap, q = (n, oh, ow) output position), read
//     straight from the tensor: no im2col buffer is ever written;
//   - column segments and row loads: 16 consecutive q of one output row are 16 consecutive
//     (stride 1) or every-other (stride 2) input elements, so one masked load (plus a
//     permute for stride 2) fetches them, with the mask doing the zero padding;
//   - a 16x16 transpose, and the GEMM micro-kernel C[MR x 32] += A[k][MR] * B[k][32].
// Only compiled where the compiler targets AVX-512 (CMakeLists.txt leaves avx512/ out otherwise).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#ifndef __AVX512F__
#error "core/cpu/conv/avx512/ is compiled only for AVX-512 targets (see CMakeLists.txt)"
#endif

namespace ag::cpu::simd {

constexpr int kNR = 32;  // micro-kernel columns: two 16-float vectors

// The tensor a convolution reads, and the convolution's geometry.
struct ConvSource {
  const float* data;  // [n, c, h, w]
  int64_t c, h, w;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t ho, wo;  // output plane
  int64_t p() const { return ho * wo; }
  int64_t k() const { return c * kh * kw; }
};

// A run of lanes [lane, lane + len) holding consecutive ow of one output row; runs never
// cross a 16-lane vector boundary.
struct Segment {
  int lane, len;
  int64_t n, oh, ow;
};

// Splits the columns [q0, min(q0 + lanes, q_end)) into segments; returns their count.
inline int make_segments(const ConvSource& s, int64_t q0, int64_t q_end, int lanes, Segment* segs) {
  int count = 0, lane = 0;
  const int64_t p = s.p();
  for (int64_t q = q0; lane < lanes && q < q_end;) {
    const int64_t n = q / p, r = q % p, oh = r / s.wo, ow = r % s.wo;
    const int64_t room = std::min<int64_t>({s.wo - ow, 16 - lane % 16, lanes - lane, q_end - q});
    const int len = static_cast<int>(room);
    segs[count++] = {lane, len, n, oh, ow};
    lane += len;
    q += len;
  }
  return count;
}

// v[0], v[1] (lanes 0-15, 16-31) = B[k][q] for the segments' columns and the tap
// (ci, i, j); zero for padding and for lanes no segment covers. SW is the horizontal
// stride (1 or 2), a constant so that no division is left in this hot loop.
template <int SW>
inline void load_row(const ConvSource& s, const Segment* segs, int count, int64_t ci, int64_t i, int64_t j,
                     __m512 v[2]) {
  v[0] = v[1] = _mm512_setzero_ps();
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const float* plane = s.data + ci * s.h * s.w;
  const int64_t sample = s.c * s.h * s.w, row_off = i * s.dh - s.ph, col_off = j * s.dw - s.pw;
  for (int sgi = 0; sgi < count; ++sgi) {
    const Segment& sg = segs[sgi];
    const int64_t ih = sg.oh * s.sh + row_off;
    if (ih < 0 || ih >= s.h) continue;
    const int64_t iw0 = sg.ow * SW + col_off;  // input column of the segment's first lane
    // lanes t in [t0, t1) of the segment read inside the row
    const int64_t t0 = iw0 >= 0 ? 0 : (SW == 1 ? -iw0 : (1 - iw0) >> 1);
    const int64_t t1 =
        std::min<int64_t>(sg.len, iw0 >= s.w ? 0 : (SW == 1 ? s.w - iw0 : (s.w - iw0 + 1) >> 1));
    if (t0 >= t1) continue;
    const int l0 = sg.lane & 15, half = sg.lane >> 4;
    const float* row = plane + sg.n * sample + ih * s.w;
    const uint32_t lanes = ((1u << (t1 - t0)) - 1) << (l0 + t0);
    if constexpr (SW == 1) {  // lane l reads row[iw0 + l - l0]
      v[half] = _mm512_mask_loadu_ps(v[half], static_cast<__mmask16>(lanes), row + iw0 - l0);
    } else {  // lane l reads base[2 l]: load 32 floats under a mask, keep the even ones
      const float* base = row + iw0 - 2 * l0;
      const uint32_t src = _pdep_u32(lanes, 0x55555555u);
      const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(src & 0xffff), base);
      const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(src >> 16), base + 16);
      v[half] =
          _mm512_mask_mov_ps(v[half], static_cast<__mmask16>(lanes), _mm512_permutex2var_ps(lo, even, hi));
    }
  }
}

// Tap (ci, i, j) of row k, advanced in place.
struct Tap {
  int64_t ci, i, j;
  void next(const ConvSource& s) {
    if (++j == s.kw) {
      j = 0;
      if (++i == s.kh) i = 0, ++ci;
    }
  }
  static Tap of(const ConvSource& s, int64_t k) { return {k / (s.kh * s.kw), (k / s.kw) % s.kh, k % s.kw}; }
};

// In-register transpose of a 16x16 float block (r[i] = row i in, column i out).
// (GCC 12 warns falsely inside its own unpack intrinsics here, hence the pragma.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 4; ++i) {
      t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
      t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
  }
}
#pragma GCC diagnostic pop

// c[MR x 32] (row stride ldc) = (accumulate ? c : 0) + sum_k a[k][r] * b[k][0..32), b with
// row stride ldb. MR * 2 accumulators stay in registers (24 of the 32 for MR = 12).
template <int MR>
inline void micro_kernel(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                         bool accumulate) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    acc[r][0] = accumulate ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps();
    acc[r][1] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * ldb), b1 = _mm512_loadu_ps(b + k * ldb + 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[k * MR + r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

// The B operand read in place, for stride-1 convolutions whose output rows are a multiple
// of 16 wide (each 16-lane half of a column panel is then one run of one output row):
// for tap t, the row of input channel ci in half h is b[h][t] + ci * ldb, masked by
// m[h][t] (the mask does the zero padding). The K dim is ordered tap-major, (t, ci).
constexpr int kMaxTaps = 49;
struct TapRows {
  const float* b[2][kMaxTaps];
  __mmask16 m[2][kMaxTaps];
};

// c[MR x 32] (+)= sum over taps t0 .. t0 + ntaps and channels ci0 .. ci0 + kc of
// a[(t - t0) kc + ci - ci0][r] * B_t[ci][0..32). Taps whose rows are all padding are skipped.
template <int MR>
inline void micro_kernel_taps(int64_t t0, int64_t ntaps, int64_t ci0, int64_t kc, int64_t ldb,
                              const TapRows& tr, const float* a, float* c, int64_t ldc, bool accumulate) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    acc[r][0] = accumulate ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps();
    acc[r][1] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t t = t0; t < t0 + ntaps; ++t, a += kc * MR) {
    const __mmask16 m0 = tr.m[0][t], m1 = tr.m[1][t];
    if ((m0 | m1) == 0) continue;
    const float* p0 = tr.b[0][t] + ci0 * ldb;
    const float* p1 = tr.b[1][t] + ci0 * ldb;
    for (int64_t k = 0; k < kc; ++k) {
      const __m512 b0 = _mm512_maskz_loadu_ps(m0, p0 + k * ldb), b1 = _mm512_maskz_loadu_ps(m1, p1 + k * ldb);
      for (int r = 0; r < MR; ++r) {
        const __m512 av = _mm512_set1_ps(a[k * MR + r]);
        acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

inline void run_micro_kernel_taps(int mr, int64_t t0, int64_t ntaps, int64_t ci0, int64_t kc, int64_t ldb,
                                  const TapRows& tr, const float* a, float* c, int64_t ldc, bool accumulate) {
  switch (mr) {
    case 12:
      return micro_kernel_taps<12>(t0, ntaps, ci0, kc, ldb, tr, a, c, ldc, accumulate);
    case 8:
      return micro_kernel_taps<8>(t0, ntaps, ci0, kc, ldb, tr, a, c, ldc, accumulate);
    default:
      return micro_kernel_taps<4>(t0, ntaps, ci0, kc, ldb, tr, a, c, ldc, accumulate);
  }
}

// Whether every 16-lane half of a 16-aligned column run can be read with one masked load
// per tap: stride 1 and either output rows a multiple of 16 wide (a half is part of one
// row), or rows as wide as the input's, 16 a multiple of that width and samples a
// multiple of 16 positions (a half is then 16 / wo whole rows, adjacent in memory, and
// lane l sits l elements after lane 0).
inline bool direct_ok(const ConvSource& s) {
  if (s.sw != 1) return false;
  if (s.wo % 16 == 0) return true;
  return 16 % s.wo == 0 && s.w == s.wo && s.sh == 1 && s.p() % 16 == 0;
}

// Rows that are not a multiple of 16 wide (28, 14, 56: Fashion-MNIST, ImageNet's later
// stages) can still be read like direct_ok ones on a plane widened to the next multiple of
// 16, the extra columns' lanes masked off or dropped (implicit_gemm.cpp's direct_view,
// dot_weight.cpp). Worth it while the padding is at most a quarter of the row: 28 -> 32
// adds 12.5% arithmetic against a packed path that ran 28-wide layers at a third of the
// speed; 7 -> 16 would compute 2.3 times the outputs, so 7-wide rows stay packed.
inline int64_t widened_width(int64_t wo) { return (wo + 15) / 16 * 16; }
inline bool widen_ok(const ConvSource& s) {
  return s.sw == 1 && !direct_ok(s) && 4 * s.wo >= 3 * widened_width(s.wo);
}

// Lane mask of the 16 positions starting at output (oh0, ow0) for tap (i, j), for `lanes`
// live lanes (direct_ok geometry). Row by row, with no division: this runs for every tap
// of every column panel, and a per-lane (q / wo, q % wo) cost more than the panel's
// arithmetic on the few-channel layers.
inline __mmask16 tap_lane_mask(const ConvSource& s, int64_t oh0, int64_t ow0, int64_t i, int64_t j,
                               int lanes) {
  uint32_t m = 0;
  const int64_t col = j * s.dw - s.pw;  // input column read by output column 0 (stride 1)
  int64_t oh = oh0, ow = ow0;
  for (int l = 0; l < lanes; ++oh, ow = 0) {
    const int len = static_cast<int>(std::min<int64_t>(lanes - l, s.wo - ow));  // lanes in this output row
    const int64_t ih = oh * s.sh - s.ph + i * s.dh;
    if (ih >= 0 && ih < s.h) {  // output columns [lo, hi) of this row read inside the input row
      const int64_t lo = std::max<int64_t>(ow, -col), hi = std::min<int64_t>(ow + len, s.w - col);
      if (lo < hi) m |= ((1u << (hi - lo)) - 1) << (l + lo - ow);
    }
    l += len;
  }
  return static_cast<__mmask16>(m);
}

// Fills tr for a column panel with the given segments (direct_ok geometry).
inline void make_tap_rows(const ConvSource& s, const Segment* segs, int count, TapRows& tr) {
  for (int h = 0; h < 2; ++h) {
    const Segment* sg = nullptr;
    int lanes = 0;
    for (int i = 0; i < count; ++i) {
      if (segs[i].lane == 16 * h) sg = &segs[i];
      if (segs[i].lane >> 4 == h) lanes += segs[i].len;
    }
    for (int64_t i = 0; i < s.kh; ++i)
      for (int64_t j = 0; j < s.kw; ++j) {
        const int64_t t = i * s.kw + j;
        tr.b[h][t] = s.data;
        tr.m[h][t] = sg ? tap_lane_mask(s, sg->oh, sg->ow, i, j, lanes) : 0;
        if (!tr.m[h][t]) continue;
        const int64_t ih0 = sg->oh * s.sh - s.ph + i * s.dh, iw0 = sg->ow - s.pw + j * s.dw;
        tr.b[h][t] = s.data + sg->n * s.c * s.h * s.w + ih0 * s.w + iw0;
      }
  }
}

// Row panels of the A operand: rows split into panels of 12, then 8 + 8 or 8 or 4 (rows
// padded to a multiple of 4 with zero weights).
struct RowPanel {
  int64_t row0;
  int mr;
};

inline std::vector<RowPanel> make_row_panels(int64_t rows) {
  const int64_t padded = (rows + 3) / 4 * 4;
  std::vector<RowPanel> panels;
  int64_t r = 0;
  for (; r + 12 <= padded; r += 12) panels.push_back({r, 12});
  if (padded - r == 4 && !panels.empty()) {  // 12 + 4 -> 8 + 8: a 4-row kernel is slow
    panels.back().mr = 8;
    panels.push_back({panels.back().row0 + 8, 8});
    return panels;
  }
  if (padded - r >= 8) panels.push_back({r, 8}), r += 8;
  if (padded - r >= 4) panels.push_back({r, 4});
  return panels;
}
inline int64_t padded_rows(const std::vector<RowPanel>& panels) {
  return panels.empty() ? 0 : panels.back().row0 + panels.back().mr;
}

inline void run_micro_kernel(int mr, int64_t kc, const float* a, const float* b, int64_t ldb, float* c,
                             int64_t ldc, bool accumulate) {
  switch (mr) {
    case 12:
      return micro_kernel<12>(kc, a, b, ldb, c, ldc, accumulate);
    case 8:
      return micro_kernel<8>(kc, a, b, ldb, c, ldc, accumulate);
    default:
      return micro_kernel<4>(kc, a, b, ldb, c, ldc, accumulate);
  }
}

}  // namespace ag::cpu::simd
