// Fast float32 convolution on AVX-512: an implicit GEMM with our own micro-kernel, the
// routes implicit_gemm (forward and weight gradient: ungrouped, horizontal stride 1 or 2),
// implicit_gemm_s1 and implicit_gemm_phases (input gradient) of routes.cpp. Other shapes
// and float64 take im2col + OpenBLAS (im2col.cpp).
//
// Why not im2col + OpenBLAS: OpenBLAS 0.3.21 runs its AVX2 (Haswell) kernels on this
// AVX-512 CPU, and im2col writes and re-reads a K x P matrix per sample. Here B panels are
// packed straight from the NCHW tensor (simd.h) into L1-sized blocks and a 12x32
// AVX-512 micro-kernel does the arithmetic.
//
//   forward:          out[co][q] = sum_k W[co][k] B_x[k][q]            (GEMM over k)
//   backward input:   the same forward run on grad_out with the kernel flipped and
//                     transposed (stride 1: grad_x = grad_out (*) rot180(W)^T; stride s:
//                     one such stride-1 convolution per phase of the input)
//   backward weight:  gW[co][k] = sum_q G[co][q] B_x[k][q]              (GEMM over q)
// Threads split the output columns (forward) or the reduction (weight gradient, with
// per-thread accumulators summed at the end).
//
// Under bf16 matmul precision the same GEMMs run on bfloat16 operands (the routes
// implicit_gemm_bf16*): both operands are packed as k pairs (bf16_panels.h), B always
// packed (a direct_ok geometry packs through TapRows, two masked loads a row), and the
// 12x32 micro-kernel uses vdpbf16ps. The pairing is the only difference: blocking,
// threading and the output writes are shared.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv/avx512/simd.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"
#include "core/precision.h"
#if defined(__AVX512BF16__)
#include "core/cpu/conv/avx512/bf16_panels.h"
#define AG_IMPLICIT_BF16 1
#else
#define AG_IMPLICIT_BF16 0
#endif
// GCC 12 warns falsely inside its own permute/unpack intrinsics (an "uninitialised"
// pass-through operand that the unmasked forms never read).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ag::cpu {

namespace {

using namespace simd;

constexpr int64_t kBlockK = 256;  // reduction block: a [256 x 32] B panel is 32 KiB (L1)
constexpr int64_t kBlockQ = 256;  // weight gradient: output positions per block
constexpr int64_t kGroup = 8;     // forward: column panels sharing each cached A block
// bf16: a [512 x 32] B panel is [256 pairs][32] 32-bit words, 32 KiB as well.
constexpr int64_t kBlockKBf16 = 512;

// The A operand (weights) as a strided view: A[m][k] = w[m * row_stride + col[k]]. Every
// weight matrix the GEMMs read (forward, the flipped input-gradient kernels, their phases,
// tap-major K order) is such a view, so packing needs no division per element (the
// flipped kernel's index arithmetic took a fifth of the bf16 input gradient's time).
struct WeightView {
  const float* w;
  int64_t row_stride;
  std::vector<int64_t> col;  // [K]
  float at(int64_t m, int64_t k) const { return w[m * row_stride + col[static_cast<size_t>(k)]]; }
  int64_t k() const { return static_cast<int64_t>(col.size()); }
};

// One row panel of A: dst [K][mr] = A[row0 + r][k], rows past `rows` zero.
void pack_a_panel(float* dst, const RowPanel& pn, int64_t rows, const WeightView& a) {
  for (int64_t k = 0; k < a.k(); ++k)
    for (int r = 0; r < pn.mr; ++r) dst[k * pn.mr + r] = pn.row0 + r < rows ? a.at(pn.row0 + r, k) : 0.f;
}

// A packed as row panels, each [K][mr].
void pack_a(float* ap, const std::vector<RowPanel>& panels, int64_t rows, const WeightView& a) {
  const int64_t k_total = a.k();
#pragma omp parallel for schedule(dynamic, 1) if (rows * k_total > 65536)
  for (size_t pi = 0; pi < panels.size(); ++pi)
    pack_a_panel(ap + panels[pi].row0 * k_total, panels[pi], rows, a);
}

#if AG_IMPLICIT_BF16
// bf16: A packed as row panels of k pairs, each [ceil(K / 2)][mr] words (bf16_panels.h):
// a float32 panel, then its rows paired 16 lanes at a time (with a scalar rounding per
// word this took 1.8% of the bf16 ResNet18 step, 1.3% so; perf, 2026-12-03).
void pack_a_pairs(uint32_t* ap, const std::vector<RowPanel>& panels, int64_t rows, const WeightView& a) {
  const int64_t k_total = a.k(), pairs = (k_total + 1) / 2;
#pragma omp parallel for schedule(dynamic, 1) if (rows * k_total > 65536)
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const RowPanel pn = panels[pi];
    float* panel = workspace<float>(3, static_cast<size_t>(k_total * pn.mr));  // this thread's
    pack_a_panel(panel, pn, rows, a);
    pair_rows(ap + pn.row0 * pairs, panel, k_total, pn.mr);
  }
}
#endif

// bp [kc][32] = B[k0 .. k0 + kc][the segments' columns].
template <int SW>
void pack_b_stride(float* bp, const ConvSource& s, const Segment* segs, int count, int64_t k0, int64_t kc) {
  Tap tap = Tap::of(s, k0);
  __m512 v[2];
  for (int64_t k = 0; k < kc; ++k, tap.next(s)) {
    load_row<SW>(s, segs, count, tap.ci, tap.i, tap.j, v);
    _mm512_storeu_ps(bp + k * kNR, v[0]);
    _mm512_storeu_ps(bp + k * kNR + 16, v[1]);
  }
}

void pack_b(float* bp, const ConvSource& s, const Segment* segs, int count, int64_t k0, int64_t kc) {
  if (s.sw == 1)
    pack_b_stride<1>(bp, s, segs, count, k0, kc);
  else
    pack_b_stride<2>(bp, s, segs, count, k0, kc);
}

// Where output element (n, m, oh, ow) of the GEMM lives:
//   (n * rows + m) * plane + offset + oh * row_stride + ow * col_stride.
// Dense NCHW output has offset 0, row_stride wo, col_stride 1; the phases of a strided
// input gradient write every s-th element.
struct OutMap {
  int64_t plane, offset, row_stride, col_stride;
  bool dense(int64_t wo) const { return offset == 0 && col_stride == 1 && row_stride == wo; }
};

// A run of lanes whose outputs are col_stride apart, starting at pos within sample n.
struct OutRun {
  int lane, len;
  int64_t n, pos;
};

// The columns [q0, q_end) of the GEMM over s's output plane; live_wo: how many columns of
// each row exist (less than s.wo on a widened plane, direct_view: the rest are dropped).
int make_out_runs(const ConvSource& s, const OutMap& om, int64_t q0, int64_t q_end, int64_t live_wo,
                  OutRun* runs) {
  int count = 0;
  if (live_wo == s.wo && om.dense(s.wo)) {  // whole samples are contiguous: runs break only between samples
    const int64_t p = s.p();
    int lane = 0;
    for (int64_t q = q0; lane < kNR && q < q_end;) {
      const int64_t n = q / p, r = q % p;
      const int len = static_cast<int>(std::min<int64_t>({p - r, 16 - lane % 16, q_end - q}));
      runs[count++] = {lane, len, n, r};
      lane += len;
      q += len;
    }
    return count;
  }
  Segment segs[kNR];
  const int nseg = make_segments(s, q0, q_end, kNR, segs);
  for (int i = 0; i < nseg; ++i) {
    const Segment& sg = segs[i];
    if (sg.ow >= live_wo) continue;
    const int len = static_cast<int>(std::min<int64_t>(sg.len, live_wo - sg.ow));
    runs[count++] = {sg.lane, len, sg.n, om.offset + sg.oh * om.row_stride + sg.ow * om.col_stride};
  }
  return count;
}

// Stores lanes [l0, l0 + len) of v to dst[(l - l0) * stride]. A whole vector goes out
// unmasked: masked stores are several times slower on AMD's Zen 4/5 (here they took
// nearly half the time of the few-channel convolutions' output writes).
void store_lanes(float* dst, __m512 v, int l0, int len, int64_t stride) {
  if (stride == 1 && len == 16) {
    _mm512_storeu_ps(dst, v);
  } else if (stride == 1) {
    _mm512_mask_storeu_ps(dst - l0, static_cast<__mmask16>(((1u << len) - 1) << l0), v);
  } else if (stride == 2) {  // spread lanes 0-7 / 8-15 to the even slots of two vectors
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    uint32_t even = 0;
    for (int l = l0; l < l0 + len; ++l) even |= 1u << (2 * l);
    float* base = dst - 2 * l0;
    _mm512_mask_storeu_ps(base, static_cast<__mmask16>(even & 0xffff), _mm512_permutexvar_ps(lo, v));
    _mm512_mask_storeu_ps(base + 16, static_cast<__mmask16>(even >> 16), _mm512_permutexvar_ps(hi, v));
  } else {
    alignas(64) float tmp[16];
    _mm512_store_ps(tmp, v);
    for (int l = l0; l < l0 + len; ++l) dst[(l - l0) * stride] = tmp[l];
  }
}

// out[(n, m, run)] = cp[m][lane] + bias[m] for every row m < rows.
void write_out(float* out, const float* cp, int64_t rows, const OutMap& om, const OutRun* runs, int count,
               const float* bias) {
  for (int64_t m = 0; m < rows; ++m) {
    const __m512 b = _mm512_set1_ps(bias ? bias[m] : 0.f);
    for (int ri = 0; ri < count; ++ri) {
      const OutRun& run = runs[ri];
      const __m512 v = _mm512_add_ps(_mm512_loadu_ps(cp + m * kNR + (run.lane & 16)), b);
      store_lanes(out + (run.n * rows + m) * om.plane + run.pos, v, run.lane & 15, run.len, om.col_stride);
    }
  }
}

// B's 32 columns from q0 in place, when the convolution is 1x1, stride 1, unpadded and the
// panel lies inside one sample: then B[k][q] = x[n][k][p] with row stride ldb = P.
const float* direct_b(const ConvSource& s, int64_t q0, int64_t q_total, int64_t& ldb) {
  if (s.kh != 1 || s.kw != 1 || s.sh != 1 || s.sw != 1 || s.ph != 0 || s.pw != 0 || s.ho != s.h ||
      s.wo != s.w)
    return nullptr;
  const int64_t p = s.p(), r = q0 % p;
  if (r + kNR > p || q0 + kNR > q_total) return nullptr;
  ldb = p;
  return s.data + (q0 / p) * s.c * p + r;
}

// The plane the direct path runs on: s itself, or s widened (simd.h widen_ok) to rows a
// multiple of 16 wide; make_out_runs drops the extra columns.
ConvSource direct_view(const ConvSource& s) {
  if (!widen_ok(s)) return s;
  ConvSource v = s;
  v.wo = widened_width(s.wo);
  return v;
}

// The K blocks of the direct path (K ordered tap-major): whole taps while a block holds
// at most kBlockK channels' worth, else one tap split into channel chunks.
struct TapBlock {
  int64_t t0, ntaps, ci0, kc;
};

std::vector<TapBlock> tap_blocks(int64_t taps, int64_t c) {
  std::vector<TapBlock> blocks;
  if (c <= kBlockK) {
    const int64_t per = std::max<int64_t>(1, kBlockK / c);
    for (int64_t t = 0; t < taps; t += per) blocks.push_back({t, std::min(per, taps - t), 0, c});
    return blocks;
  }
  const int64_t chunks = (c + kBlockK - 1) / kBlockK, kc = (c + chunks - 1) / chunks;
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t c0 = 0; c0 < c; c0 += kc) blocks.push_back({t, 1, c0, std::min(kc, c - c0)});
  return blocks;
}

// One group of column panels j0 .. j0 + jn: C panels cp [jn][rows_pad][32].
struct PanelGroup {
  int64_t j0, jn;
  float* cp;
  int64_t rows_pad;
};

// Direct path: B read in place through TapRows, no packing.
void group_direct(const ConvSource& s, const PanelGroup& pg, const std::vector<RowPanel>& panels,
                  const float* ap, int64_t q_total, const std::vector<TapBlock>& blocks, TapRows* tr) {
  const int64_t k_total = s.k();
  Segment segs[kNR];
  for (int64_t jj = 0; jj < pg.jn; ++jj)
    make_tap_rows(s, segs, make_segments(s, (pg.j0 + jj) * kNR, q_total, kNR, segs), tr[jj]);
  for (size_t bi = 0; bi < blocks.size(); ++bi) {
    const TapBlock& b = blocks[bi];
    const int64_t k0 = b.t0 * s.c + b.ci0;
    for (const RowPanel& pn : panels)
      for (int64_t jj = 0; jj < pg.jn; ++jj)
        run_micro_kernel_taps(pn.mr, b.t0, b.ntaps, b.ci0, b.kc, s.h * s.w, tr[jj],
                              ap + pn.row0 * k_total + k0 * pn.mr, pg.cp + (jj * pg.rows_pad + pn.row0) * kNR,
                              kNR, bi > 0);
  }
}

// Packed path: B panels packed from the tensor (any stride 1 or 2, any width).
void group_packed(const ConvSource& s, const PanelGroup& pg, const std::vector<RowPanel>& panels,
                  const float* ap, int64_t q_total, int64_t kc, float* bp) {
  const int64_t k_total = s.k(), k_blocks = (k_total + kc - 1) / kc;
  Segment segs[kGroup][kNR];
  int counts[kGroup];
  const float* b_of[kGroup];
  int64_t ldb_of[kGroup];
  for (int64_t jj = 0; jj < pg.jn; ++jj)
    counts[jj] = make_segments(s, (pg.j0 + jj) * kNR, q_total, kNR, segs[jj]);
  for (int64_t kb = 0; kb < k_blocks; ++kb) {
    const int64_t k0 = kb * kc, kn = std::min(kc, k_total - k0);
    for (int64_t jj = 0; jj < pg.jn; ++jj) {
      b_of[jj] = direct_b(s, (pg.j0 + jj) * kNR, q_total, ldb_of[jj]);
      if (b_of[jj]) {
        b_of[jj] += k0 * ldb_of[jj];
      } else {
        float* dst = bp + jj * kc * kNR;
        pack_b(dst, s, segs[jj], counts[jj], k0, kn);
        b_of[jj] = dst;
        ldb_of[jj] = kNR;
      }
    }
    for (const RowPanel& pn : panels)
      for (int64_t jj = 0; jj < pg.jn; ++jj)
        run_micro_kernel(pn.mr, kn, ap + pn.row0 * k_total + k0 * pn.mr, b_of[jj], ldb_of[jj],
                         pg.cp + (jj * pg.rows_pad + pn.row0) * kNR, kNR, kb > 0);
  }
}

#if AG_IMPLICIT_BF16
// bf16: B panels packed as k pairs (every shape: the pairing is a packing step anyway), A
// from pack_a_pairs; K blocks of an even kc. tr: a direct_ok geometry (K tap-major), read
// through TapRows; null: any geometry, read by segments.
void group_packed_bf16(const ConvSource& s, const PanelGroup& pg, const std::vector<RowPanel>& panels,
                       const uint32_t* ap, int64_t q_total, int64_t kc, uint32_t* bp, TapRows* tr) {
  const int64_t k_total = s.k(), k_pairs = (k_total + 1) / 2, panel_words = kc / 2 * kNR;
  Segment segs[kGroup][kNR];
  int counts[kGroup];
  for (int64_t jj = 0; jj < pg.jn; ++jj) {
    counts[jj] = make_segments(s, (pg.j0 + jj) * kNR, q_total, kNR, segs[jj]);
    if (tr) make_tap_rows(s, segs[jj], counts[jj], tr[jj]);
  }
  for (int64_t k0 = 0; k0 < k_total; k0 += kc) {
    const int64_t kn = std::min(kc, k_total - k0), pairs = (kn + 1) / 2;
    for (int64_t jj = 0; jj < pg.jn; ++jj) {
      uint32_t* dst = bp + jj * panel_words;
      if (tr)
        pack_b_pairs_taps(dst, tr[jj], s.h * s.w, s.c, k0, kn);
      else if (s.sw == 1)
        pack_b_pairs<1>(dst, s, segs[jj], counts[jj], k0, kn);
      else
        pack_b_pairs<2>(dst, s, segs[jj], counts[jj], k0, kn);
    }
    for (const RowPanel& pn : panels)
      for (int64_t jj = 0; jj < pg.jn; ++jj)
        run_micro_kernel_bf16(pn.mr, pairs, ap + pn.row0 * k_pairs + k0 / 2 * pn.mr, bp + jj * panel_words,
                              pg.cp + (jj * pg.rows_pad + pn.row0) * kNR, kNR, k0 > 0);
  }
}
#endif

// The A operand as the chosen path packs it: float32 row panels, or (bf16) row panels of
// bfloat16 k pairs.
struct PackedA {
  const float* f32 = nullptr;
  const uint32_t* pairs = nullptr;
};

// K in tap-major order (t, ci), as the direct path reads B: column k' = (t, ci) of the
// result is column (ci, t) of a.
WeightView tap_major(const WeightView& a, int64_t c, int64_t taps) {
  WeightView t{a.w, a.row_stride, std::vector<int64_t>(a.col.size())};
  for (int64_t k = 0; k < a.k(); ++k)
    t.col[static_cast<size_t>(k)] = a.col[static_cast<size_t>((k % c) * taps + k / c)];
  return t;
}

PackedA pack_a_for(const ConvSource& s, const std::vector<RowPanel>& panels, int64_t rows, bool direct,
                   bool bf16, const WeightView& a_natural) {
  const int64_t k_total = s.k(), rows_pad = padded_rows(panels);
  const WeightView a = direct ? tap_major(a_natural, s.c, s.kh * s.kw) : a_natural;
  PackedA packed;
  if (bf16) {
#if AG_IMPLICIT_BF16
    uint32_t* ap = workspace<uint32_t>(4, static_cast<size_t>(rows_pad * ((k_total + 1) / 2)));
    pack_a_pairs(ap, panels, rows, a);
    packed.pairs = ap;
#endif
    return packed;
  }
  float* ap = workspace<float>(4, static_cast<size_t>(rows_pad * k_total));
  pack_a(ap, panels, rows, a);
  packed.f32 = ap;
  return packed;
}

// The reduction block: at most kBlockK (bf16: kBlockKBf16, and even), blocks of equal size.
int64_t k_block(int64_t k_total, bool bf16) {
  const int64_t limit = bf16 ? kBlockKBf16 : kBlockK;
  const int64_t blocks = (k_total + limit - 1) / limit, kc = (k_total + blocks - 1) / blocks;
  return bf16 ? (kc + 1) / 2 * 2 : kc;
}

// out (n, rows, ho, wo placed by om) = A [rows, K] x B_s [K, n * ho * wo] + bias, with A
// given by the view a (k = (ci, i, j)). Column panels are taken kGroup at a time, so each
// A block (rows x kc) is streamed from cache once per group rather than once per panel.
void implicit_gemm(float* out, const ConvSource& s, int64_t n, int64_t rows, const WeightView& a,
                   const float* bias, const OutMap& om, bool bf16) {
  const int64_t taps = s.kh * s.kw;
  const ConvSource v = taps <= kMaxTaps ? direct_view(s) : s;
  const bool direct = direct_ok(v) && taps <= kMaxTaps;
  const ConvSource& cols = direct ? v : s;  // the output plane the GEMM's columns cover
  const int64_t q_total = n * cols.p();
  const std::vector<RowPanel> panels = make_row_panels(rows);
  const int64_t rows_pad = padded_rows(panels);
  const PackedA ap = pack_a_for(s, panels, rows, direct, bf16, a);
  const std::vector<TapBlock> blocks = direct ? tap_blocks(taps, s.c) : std::vector<TapBlock>();
  const int64_t kc = k_block(s.k(), bf16);
  const int64_t col_panels = (q_total + kNR - 1) / kNR;
  const int64_t group = std::clamp<int64_t>(col_panels / (4 * omp_get_max_threads()), 1, kGroup);
  const int64_t groups = (col_panels + group - 1) / group;
#pragma omp parallel if (col_panels > 1)
  {
    float* bp = direct || bf16 ? nullptr : workspace<float>(5, static_cast<size_t>(group * kc * kNR));
    uint32_t* bp_pairs = bf16 ? workspace<uint32_t>(5, static_cast<size_t>(group * kc / 2 * kNR)) : nullptr;
    float* cp = workspace<float>(6, static_cast<size_t>(group * rows_pad * kNR));
    TapRows* tr = direct ? reinterpret_cast<TapRows*>(workspace<float>(
                               7, (kGroup * sizeof(TapRows) + sizeof(float) - 1) / sizeof(float)))
                         : nullptr;
    OutRun runs[kNR];
#pragma omp for schedule(dynamic, 1)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const PanelGroup pg{gi * group, std::min(group, col_panels - gi * group), cp, rows_pad};
      if (bf16) {
#if AG_IMPLICIT_BF16
        group_packed_bf16(cols, pg, panels, ap.pairs, q_total, kc, bp_pairs, tr);
#endif
      } else if (direct) {
        group_direct(cols, pg, panels, ap.f32, q_total, blocks, tr);
      } else {
        group_packed(s, pg, panels, ap.f32, q_total, kc, bp);
      }
      for (int64_t jj = 0; jj < pg.jn; ++jj) {
        const int64_t q0 = (pg.j0 + jj) * kNR;
        const int count = make_out_runs(cols, om, q0, q_total, s.wo, runs);
        write_out(out, cp + jj * rows_pad * kNR, rows, om, runs, count, bias);
      }
    }
  }
}

ConvSource source_of(const float* x, const ConvGeom& g) {
  return {x, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.ho, g.wo};
}

// ap [rows_pad][qn] as row panels [qn][mr]: A[m][q] = grad_out[n][m][p] for q0 <= q < q0 + qn
// (zero for m >= rows). Sixteen positions at a time go through a register transpose.
void pack_grad_block(float* ap, const std::vector<RowPanel>& panels, const float* g_out, int64_t rows,
                     int64_t p, int64_t q0, int64_t qn) {
  for (const RowPanel& pn : panels) {
    float* dst = ap + pn.row0 * qn;
    const int live = static_cast<int>(std::min<int64_t>(pn.mr, rows - pn.row0));  // rows that exist
    for (int64_t q = q0; q < q0 + qn;) {
      const int64_t n = q / p, pp = q % p, len = std::min(p - pp, q0 + qn - q);
      const float* src = g_out + (n * rows + pn.row0) * p + pp;  // row r at src + r * p
      float* d = dst + (q - q0) * pn.mr;
      int64_t t = 0;
      for (; t + 16 <= len; t += 16) {
        __m512 blk[16];
        for (int r = 0; r < 16; ++r)
          blk[r] = r < live ? _mm512_loadu_ps(src + r * p + t) : _mm512_setzero_ps();
        transpose16(blk);  // blk[u][r] = row r at position t + u
        // Whole vectors, in order: lanes past mr spill onto the next position's slots,
        // which the next store (or a later panel) overwrites; the workspace has 16 floats
        // to spare for the last. Masked stores are slow on AMD's Zen 4/5.
        for (int u = 0; u < 16; ++u) _mm512_storeu_ps(d + (t + u) * pn.mr, blk[u]);
      }
      for (; t < len; ++t)
        for (int r = 0; r < pn.mr; ++r) d[t * pn.mr + r] = r < live ? src[r * p + t] : 0.f;
      q += len;
    }
  }
}

// bp [qn][32] = B[k0 .. k0 + 32][q0 .. q0 + qn] transposed, through 16x16 register blocks.
// tr: one TapRows per 32 positions of the block (direct_ok geometry: one masked load a
// row); null: rows read by segments.
void pack_b_transposed(float* bp, const ConvSource& s, const TapRows* tr, int64_t k0, int64_t q0,
                       int64_t qn) {
  const int64_t k_total = s.k(), plane = s.h * s.w;
  Segment segs[16];
  int count = 0;
  __m512 blk[16], v[2];
  for (int64_t qq = 0; qq < qn; qq += 16) {
    const TapRows* rows = tr ? tr + qq / kNR : nullptr;
    const int half = static_cast<int>((qq / 16) & 1);  // which 16 lanes of rows' 32
    if (!rows) count = make_segments(s, q0 + qq, q0 + qn, 16, segs);
    for (int64_t kg = 0; kg < 2; ++kg) {
      const int64_t kb = k0 + kg * 16;
      Tap tap = Tap::of(s, std::min(kb, k_total - 1));
      for (int t = 0; t < 16; ++t, tap.next(s)) {
        if (kb + t >= k_total) {
          blk[t] = _mm512_setzero_ps();
        } else if (rows) {
          const int64_t ti = tap.i * s.kw + tap.j;
          blk[t] = _mm512_maskz_loadu_ps(rows->m[half][ti], rows->b[half][ti] + tap.ci * plane);
        } else {
          if (s.sw == 1)
            load_row<1>(s, segs, count, tap.ci, tap.i, tap.j, v);
          else
            load_row<2>(s, segs, count, tap.ci, tap.i, tap.j, v);
          blk[t] = v[0];
        }
      }
      transpose16(blk);
      const int64_t rows_here = std::min<int64_t>(16, qn - qq);
      for (int64_t t = 0; t < rows_here; ++t) _mm512_storeu_ps(bp + (qq + t) * kNR + kg * 16, blk[t]);
    }
  }
}

}  // namespace

bool implicit_gemm_accepts(const ConvGeom& g) { return g.groups == 1 && (g.sw == 1 || g.sw == 2); }

namespace {

void forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g, bool bf16) {
  WeightView a{w, g.k, std::vector<int64_t>(static_cast<size_t>(g.k))};  // W [co][K] as it is
  for (int64_t k = 0; k < g.k; ++k) a.col[static_cast<size_t>(k)] = k;
  implicit_gemm(out, source_of(x, g), g.n, g.co, a, bias, OutMap{g.p, 0, g.wo, 1}, bf16);
}

}  // namespace

void implicit_gemm_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  forward(out, x, w, bias, g, false);
}

bool implicit_gemm_input_s1_accepts(const ConvGeom& g) { return g.groups == 1 && g.sh == 1 && g.sw == 1; }

namespace {

// Stride 1: grad_x = grad_out correlated with the kernel rotated by 180 degrees, in and
// out channels swapped: a stride-1 convolution (padding d (k - 1) - p) whose output is H x W.
void backward_input_s1(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g, bool bf16) {
  const ConvSource s{
      grad_out, g.co, g.ho, g.wo, g.kh, g.kw, 1, 1, g.dh * (g.kh - 1) - g.ph, g.dw * (g.kw - 1) - g.pw,
      g.dh,     g.dw, g.h,  g.w};
  // A[ci][(co, t)] = w[co][ci][taps - 1 - t]: rows ci taps apart, tap t rotated by 180 degrees.
  const int64_t taps = g.kh * g.kw;
  WeightView a{w, taps, std::vector<int64_t>(static_cast<size_t>(g.co * taps))};
  for (int64_t co = 0; co < g.co; ++co)
    for (int64_t t = 0; t < taps; ++t)
      a.col[static_cast<size_t>(co * taps + t)] = co * g.c * taps + taps - 1 - t;
  implicit_gemm(grad_x, s, g.n, g.c, a, nullptr, OutMap{g.h * g.w, 0, g.w, 1}, bf16);
}

}  // namespace

void implicit_gemm_backward_input_s1(float* grad_x, const float* grad_out, const float* w,
                                     const ConvGeom& g) {
  backward_input_s1(grad_x, grad_out, w, g, false);
}

namespace {

// Kernel rows i (descending) that reach input rows y = r (mod stride): (r + pad - i) % stride == 0.
std::vector<int64_t> phase_taps(int64_t r, int64_t pad, int64_t stride, int64_t kernel) {
  std::vector<int64_t> taps;
  for (int64_t i = kernel - 1; i >= 0; --i)
    if (((r + pad - i) % stride + stride) % stride == 0) taps.push_back(i);
  return taps;
}

// Stride s > 1 (dilation 1), one phase (ry, rx) of the input positions y = s yy + ry,
// x = s xx + rx: grad_x there = sum over the phase's taps t (kernel row ti[t] = ti[0] - s t)
// of w * grad_out(yy + t - pad_y, ...), a stride-1 convolution of grad_out written to
// every s-th element of grad_x.
void backward_input_phase(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g, int64_t ry,
                          int64_t rx, bool bf16) {
  const int64_t hy = (g.h - ry + g.sh - 1) / g.sh, wx = (g.w - rx + g.sw - 1) / g.sw;
  if (hy <= 0 || wx <= 0) return;
  const std::vector<int64_t> ti = phase_taps(ry, g.ph, g.sh, g.kh), tj = phase_taps(rx, g.pw, g.sw, g.kw);
  const OutMap om{g.h * g.w, ry * g.w + rx, g.sh * g.w, g.sw};
  if (ti.empty() || tj.empty()) {  // no tap reaches these positions: their gradient is zero
    for (int64_t plane = 0; plane < g.n * g.c; ++plane)
      for (int64_t yy = 0; yy < hy; ++yy)
        for (int64_t xx = 0; xx < wx; ++xx)
          grad_x[plane * om.plane + om.offset + yy * om.row_stride + xx * g.sw] = 0;
    return;
  }
  const int64_t ni = static_cast<int64_t>(ti.size()), nj = static_cast<int64_t>(tj.size());
  const ConvSource s{
      grad_out, g.co, g.ho, g.wo, ni, nj, 1, 1, (ti[0] - ry - g.ph) / g.sh, (tj[0] - rx - g.pw) / g.sw,
      1,        1,    hy,   wx};
  // A[ci][(co, t, u)] = w[co][ci][ti[t]][tj[u]]: rows ci kh * kw apart.
  const int64_t kernel_taps = g.kh * g.kw;
  WeightView a{w, kernel_taps, {}};
  a.col.reserve(static_cast<size_t>(g.co * ni * nj));
  for (int64_t co = 0; co < g.co; ++co)
    for (const int64_t i : ti)
      for (const int64_t j : tj) a.col.push_back(co * g.c * kernel_taps + i * g.kw + j);
  implicit_gemm(grad_x, s, g.n, g.c, a, nullptr, om, bf16);
}

void backward_input_phases(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g,
                           bool bf16) {
  for (int64_t ry = 0; ry < g.sh; ++ry)
    for (int64_t rx = 0; rx < g.sw; ++rx) backward_input_phase(grad_x, grad_out, w, g, ry, rx, bf16);
}

}  // namespace

bool implicit_gemm_input_phases_accepts(const ConvGeom& g) {
  return g.groups == 1 && (g.sh > 1 || g.sw > 1) && g.dh == 1 && g.dw == 1;
}

void implicit_gemm_backward_input_phases(float* grad_x, const float* grad_out, const float* w,
                                         const ConvGeom& g) {
  backward_input_phases(grad_x, grad_out, w, g, false);
}

namespace {

// The packed GEMM over output positions; threads split the reduction. bf16: both packed
// blocks paired along the positions (bf16_panels.h) before the micro-kernel.
void backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g, bool bf16) {
  const ConvSource s = source_of(x, g);
  const int64_t rows = g.co, k_total = g.k, k_pad = (k_total + kNR - 1) / kNR * kNR;
  const int64_t p = g.p, q_total = g.n * p, q_blocks = (q_total + kBlockQ - 1) / kBlockQ;
  const std::vector<RowPanel> panels = make_row_panels(rows);
  const int64_t rows_pad = padded_rows(panels);
  const bool direct = s.kh * s.kw <= kMaxTaps && direct_ok(s);
  std::vector<float*> partial(static_cast<size_t>(omp_get_max_threads()), nullptr);
  int used_threads = 1;
#pragma omp parallel if (q_blocks > 1)
  {
    const int tid = omp_get_thread_num();
#pragma omp single
    used_threads = omp_get_num_threads();
    float* acc = workspace<float>(6, static_cast<size_t>(rows_pad * k_pad));
    std::memset(acc, 0, sizeof(float) * static_cast<size_t>(rows_pad * k_pad));
    partial[static_cast<size_t>(tid)] = acc;
    float* ap = workspace<float>(7, static_cast<size_t>(rows_pad * kBlockQ + 16));  // + 16: pack_grad_block
    float* bp = workspace<float>(5, static_cast<size_t>(kBlockQ * kNR));
    uint32_t* ap_pairs = bf16 ? workspace<uint32_t>(7, static_cast<size_t>(rows_pad * kBlockQ / 2)) : nullptr;
    uint32_t* bp_pairs = bf16 ? workspace<uint32_t>(5, static_cast<size_t>(kBlockQ / 2 * kNR)) : nullptr;
    // direct_ok geometry: the block's rows read in place through TapRows, one per 32 positions
    TapRows* tr = direct ? workspace<TapRows>(0, static_cast<size_t>(kBlockQ / kNR)) : nullptr;
    // Static: which blocks go into which thread's accumulator must not depend on timing,
    // or the float sums (and a resumed training run) would differ from run to run.
#pragma omp for schedule(static)
    for (int64_t qb = 0; qb < q_blocks; ++qb) {
      const int64_t q0 = qb * kBlockQ, qn = std::min(kBlockQ, q_total - q0), qp = (qn + 1) / 2;
      pack_grad_block(ap, panels, grad_out, rows, p, q0, qn);
#if AG_IMPLICIT_BF16
      if (bf16)
        for (const RowPanel& pn : panels) pair_rows(ap_pairs + pn.row0 * qp, ap + pn.row0 * qn, qn, pn.mr);
#endif
      if (tr)
        for (int64_t qq = 0; qq < qn; qq += kNR) {
          Segment segs[kNR];
          make_tap_rows(s, segs, make_segments(s, q0 + qq, q0 + qn, kNR, segs), tr[qq / kNR]);
        }
      for (int64_t k0 = 0; k0 < k_pad; k0 += kNR) {
        if (bf16) {
#if AG_IMPLICIT_BF16
          if (s.sw == 1)
            pack_b_pairs_transposed<1>(bp_pairs, s, tr, k0, q0, qn);
          else
            pack_b_pairs_transposed<2>(bp_pairs, s, tr, k0, q0, qn);
          for (const RowPanel& pn : panels)
            run_micro_kernel_bf16(pn.mr, qp, ap_pairs + pn.row0 * qp, bp_pairs, acc + pn.row0 * k_pad + k0,
                                  k_pad, true);
#endif
          continue;
        }
        pack_b_transposed(bp, s, tr, k0, q0, qn);
        for (const RowPanel& pn : panels)
          run_micro_kernel(pn.mr, qn, ap + pn.row0 * qn, bp, kNR, acc + pn.row0 * k_pad + k0, k_pad, true);
      }
    }
  }
  // grad_w = the sum of the per-thread accumulators (rows < co, columns < K).
#pragma omp parallel for schedule(static) if (rows * k_total > 65536)
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t k = 0; k < k_total; ++k) {
      float sum = 0;
      for (int t = 0; t < used_threads; ++t) sum += partial[static_cast<size_t>(t)][m * k_pad + k];
      grad_w[m * k_total + k] = sum;
    }
}

}  // namespace

void implicit_gemm_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  backward_weight(grad_w, grad_out, x, g, false);
}

// ---- the bf16 routes: the same GEMMs on bfloat16 operands ----

namespace {
bool bf16_now() { return AG_IMPLICIT_BF16 && matmul_precision() == MatmulPrecision::bf16; }
}  // namespace

bool implicit_gemm_bf16_accepts(const ConvGeom& g) { return bf16_now() && implicit_gemm_accepts(g); }
bool implicit_gemm_bf16_input_s1_accepts(const ConvGeom& g) {
  return bf16_now() && implicit_gemm_input_s1_accepts(g);
}
bool implicit_gemm_bf16_input_phases_accepts(const ConvGeom& g) {
  return bf16_now() && implicit_gemm_input_phases_accepts(g);
}

void implicit_gemm_bf16_forward(float* out, const float* x, const float* w, const float* bias,
                                const ConvGeom& g) {
  forward(out, x, w, bias, g, true);
}
void implicit_gemm_bf16_backward_input_s1(float* grad_x, const float* grad_out, const float* w,
                                          const ConvGeom& g) {
  backward_input_s1(grad_x, grad_out, w, g, true);
}
void implicit_gemm_bf16_backward_input_phases(float* grad_x, const float* grad_out, const float* w,
                                              const ConvGeom& g) {
  backward_input_phases(grad_x, grad_out, w, g, true);
}
void implicit_gemm_bf16_backward_weight(float* grad_w, const float* grad_out, const float* x,
                                        const ConvGeom& g) {
  backward_weight(grad_w, grad_out, x, g, true);
}

}  // namespace ag::cpu
