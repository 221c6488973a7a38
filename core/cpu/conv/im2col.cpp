// The generic route of the CPU convolution (routes.cpp): im2col + OpenBLAS GEMM, for
// every geometry and both float types. The same loops with the bfloat16 GEMM
// (core/cpu/bf16/gemm.h) are the route im2col_bf16, which every float32 non-depthwise
// convolution takes under bf16 matmul precision (core/precision.h).
//
// Samples are processed in chunks of B so that every GEMM has about kTargetColumns
// columns: deep layers with small planes (4x4) then still get a wide, efficient GEMM and
// the weight matrix is packed once per chunk instead of once per sample. With B == 1 the
// GEMM writes straight into the NCHW output; with B > 1 it writes [C_out, B * P] into a
// workspace that is then scattered to NCHW. The chunks run on the OpenMP threads, each
// on one (plan_chunks says why). All scratch memory is per-thread workspace reused across calls.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/bf16/gemm.h"
#include "core/cpu/conv/flip.h"
#include "core/cpu/conv/kernels.h"
#include "core/cpu/gemm_util.h"
#include "core/cpu/strided.h"
#include "core/precision.h"

namespace ag::cpu {

namespace {

constexpr int64_t kTargetColumns = 1024;
// The bf16 GEMM starts one OpenMP region per call: wider chunks mean fewer of them (each a
// barrier, costly when the cores are shared) and amortise the packing of the weights.
constexpr int64_t kTargetColumnsBf16 = 8192;
constexpr int64_t kMaxColumnBytes = int64_t{32} << 20;

// Samples per chunk: enough for `target` GEMM columns, within the memory cap.
int64_t chunk_size(const ConvGeom& g, size_t elem, int64_t target) {
  int64_t b = std::max<int64_t>(1, (target + g.p - 1) / g.p);
  const int64_t per_sample = std::max<int64_t>(1, g.k * g.p * static_cast<int64_t>(elem));
  b = std::min(b, std::max<int64_t>(1, kMaxColumnBytes / per_sample));
  return std::min(b, g.n);
}

// The output columns ow in [lo, hi) whose input column ow * stride + off lies in [0, size).
inline void valid_range(int64_t off, int64_t stride, int64_t size, int64_t out, int64_t& lo, int64_t& hi) {
  lo = off < 0 ? (-off + stride - 1) / stride : 0;
  hi = size - 1 - off < 0 ? 0 : std::min(out, (size - 1 - off) / stride + 1);
  lo = std::min(lo, hi);
}

// col [K, bc * P] (row r = (ci, i, j), column b * P + oh * WO + ow) from the channels
// c0 .. c0 + cg of samples n0 .. n0 + bc of x [N, C, H, W]; zero where the window
// reaches into the padding.
template <typename T>
void im2col(T* col, const T* x, const ConvGeom& g, int64_t n0, int64_t bc, int64_t c0) {
  const int64_t ld = bc * g.p, taps = g.kh * g.kw;
#pragma omp parallel for collapse(2) schedule(static) if (g.k * ld > kParallelThreshold)
  for (int64_t r = 0; r < g.k; ++r) {
    for (int64_t b = 0; b < bc; ++b) {
      const int64_t ci = r / taps, i = (r / g.kw) % g.kh, j = r % g.kw;
      const T* plane = x + ((n0 + b) * g.c + c0 + ci) * g.h * g.w;
      T* dst = col + r * ld + b * g.p;
      const int64_t off = j * g.dw - g.pw;
      int64_t lo, hi;
      valid_range(off, g.sw, g.w, g.wo, lo, hi);
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        T* drow = dst + oh * g.wo;
        const int64_t ih = oh * g.sh - g.ph + i * g.dh;
        if (ih < 0 || ih >= g.h) {
          std::fill(drow, drow + g.wo, T(0));
          continue;
        }
        const T* srow = plane + ih * g.w + off;
        std::fill(drow, drow + lo, T(0));
        if (g.sw == 1) {
          std::memcpy(drow + lo, srow + lo, static_cast<size_t>(hi - lo) * sizeof(T));
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[ow * g.sw];
        }
        std::fill(drow + hi, drow + g.wo, T(0));
      }
    }
  }
}

// The adjoint of im2col: grad_x [N, C, H, W] (channels c0 .. c0 + cg of samples n0 ..
// n0 + bc, zeroed by the caller) += col scattered back to the positions it was read from.
template <typename T>
void col2im(T* grad_x, const T* col, const ConvGeom& g, int64_t n0, int64_t bc, int64_t c0) {
  const int64_t ld = bc * g.p;
#pragma omp parallel for collapse(2) schedule(static) if (g.k * ld > kParallelThreshold)
  for (int64_t ci = 0; ci < g.cg; ++ci) {
    for (int64_t b = 0; b < bc; ++b) {  // one thread owns each input plane: no races
      T* plane = grad_x + ((n0 + b) * g.c + c0 + ci) * g.h * g.w;
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const T* src = col + ((ci * g.kh + i) * g.kw + j) * ld + b * g.p;
          const int64_t off = j * g.dw - g.pw;
          int64_t lo, hi;
          valid_range(off, g.sw, g.w, g.wo, lo, hi);
          for (int64_t oh = 0; oh < g.ho; ++oh) {
            const int64_t ih = oh * g.sh - g.ph + i * g.dh;
            if (ih < 0 || ih >= g.h) continue;
            T* drow = plane + ih * g.w + off;
            const T* srow = src + oh * g.wo;
            for (int64_t ow = lo; ow < hi; ++ow) drow[ow * g.sw] += srow[ow];
          }
        }
      }
    }
  }
}

// dst [CO, bc * P] = src (samples n0 .. n0 + bc of [N, CO, P]) or the reverse (to_nchw),
// adding bias [CO] (may be null) on the way to NCHW.
template <typename T>
void chunk_copy(T* nchw, T* chunk, const ConvGeom& g, int64_t n0, int64_t bc, bool to_nchw,
                const T* bias = nullptr) {
  const int64_t ld = bc * g.p;
#pragma omp parallel for collapse(2) schedule(static) if (g.co * ld > kParallelThreshold)
  for (int64_t co = 0; co < g.co; ++co) {
    for (int64_t b = 0; b < bc; ++b) {
      T* plane = nchw + ((n0 + b) * g.co + co) * g.p;
      T* row = chunk + co * ld + b * g.p;
      if (!to_nchw) {
        std::memcpy(row, plane, static_cast<size_t>(g.p) * sizeof(T));
      } else {
        const T add = bias ? bias[co] : T(0);
        for (int64_t q = 0; q < g.p; ++q) plane[q] = row[q] + add;
      }
    }
  }
}

// c = op(a) op(b) + beta * c: the BLAS in float32/float64, or the bfloat16 GEMM (Bf16).
template <typename T, bool Bf16>
void conv_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if constexpr (Bf16)
    gemm_bf16(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
  else
    gemm_rm<T>(trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void add_channel_bias(T* out, const T* bias, const ConvGeom& g, int64_t n0, int64_t bc) {
#pragma omp parallel for collapse(2) schedule(static) if (bc * g.co * g.p > kParallelThreshold)
  for (int64_t b = 0; b < bc; ++b)
    for (int64_t co = 0; co < g.co; ++co) {
      T* plane = out + ((n0 + b) * g.co + co) * g.p;
      for (int64_t q = 0; q < g.p; ++q) plane[q] += bias[co];
    }
}

// The GEMM's B operand for group grp of samples [n0, n0 + bc): x's planes themselves for a
// pointwise chunk of one sample, else the chunk's im2col matrix (workspace slot 0).
template <typename T>
const T* columns(const T* x, const ConvGeom& g, int64_t n0, int64_t bc, int64_t grp) {
  if (g.pointwise() && bc == 1) return x + (n0 * g.c + grp * g.cg) * g.h * g.w;
  T* col = workspace<T>(0, static_cast<size_t>(g.k * bc * g.p));
  im2col(col, x, g, n0, bc, grp * g.cg);
  return col;
}

// grad_out's samples [n0, n0 + bc) as one [CO, bc P] matrix: in place for one sample, else
// gathered into workspace slot 1.
template <typename T>
const T* grad_out_rows(const T* grad_out, const ConvGeom& g, int64_t n0, int64_t bc) {
  if (bc == 1) return grad_out + n0 * g.co * g.p;
  T* tmp = workspace<T>(1, static_cast<size_t>(g.co * bc * g.p));
  chunk_copy(const_cast<T*>(grad_out), tmp, g, n0, bc, false);
  return tmp;
}

// Samples [n0, n0 + bc) of the forward pass.
template <typename T, bool Bf16>
void forward_chunk(T* out, const T* x, const T* w, const T* bias, const ConvGeom& g, int64_t n0, int64_t bc) {
  const int64_t ld = bc * g.p;
  T* tmp = bc > 1 ? workspace<T>(1, static_cast<size_t>(g.co * ld)) : nullptr;
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    const T* colp = columns(x, g, n0, bc, grp);
    T* dst = bc > 1 ? tmp + grp * g.cog * ld : out + (n0 * g.co + grp * g.cog) * g.p;
    conv_gemm<T, Bf16>(false, false, g.cog, ld, g.k, w + grp * g.cog * g.k, g.k, colp, ld, T(0), dst, ld);
  }
  if (bc > 1)
    chunk_copy(out, tmp, g, n0, bc, true, bias);
  else if (bias)
    add_channel_bias(out, bias, g, n0, bc);
}

// Samples [n0, n0 + bc) of the input gradient (each chunk writes only its own samples).
template <typename T, bool Bf16>
void backward_input_chunk(T* grad_x, const T* grad_out, const T* w, const ConvGeom& g, int64_t n0,
                          int64_t bc) {
  const int64_t ld = bc * g.p;
  const T* go = grad_out_rows(grad_out, g, n0, bc);
  T* gx = grad_x + n0 * g.c * g.h * g.w;
  if (g.pointwise() && bc == 1) {  // the GEMM writes the input gradient directly
    for (int64_t grp = 0; grp < g.groups; ++grp)
      conv_gemm<T, Bf16>(true, false, g.cg, ld, g.cog, w + grp * g.cog * g.k, g.k, go + grp * g.cog * ld, ld,
                         T(0), gx + grp * g.cg * g.p, ld);
    return;
  }
  std::memset(gx, 0, static_cast<size_t>(bc * g.c * g.h * g.w) * sizeof(T));
  T* col = workspace<T>(0, static_cast<size_t>(g.k * ld));
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    // col [K, ld] = W_g^T [K, cog] x grad_out_g [cog, ld]
    conv_gemm<T, Bf16>(true, false, g.k, ld, g.cog, w + grp * g.cog * g.k, g.k, go + grp * g.cog * ld, ld,
                       T(0), col, ld);
    col2im(grad_x, col, g, n0, bc, grp * g.cg);
  }
}

// grad_w [CO, K] = (beta 0) or += (beta 1) the weight gradient of samples [n0, n0 + bc).
template <typename T, bool Bf16>
void backward_weight_chunk(T* grad_w, const T* grad_out, const T* x, const ConvGeom& g, int64_t n0,
                           int64_t bc, T beta) {
  const int64_t ld = bc * g.p;
  const T* go = grad_out_rows(grad_out, g, n0, bc);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    const T* colp = columns(x, g, n0, bc, grp);
    // grad_w_g [cog, K] (+)= grad_out_g [cog, ld] x col^T [ld, K]
    conv_gemm<T, Bf16>(false, true, g.cog, g.k, ld, go + grp * g.cog * ld, ld, colp, ld, beta,
                       grad_w + grp * g.cog * g.k, g.k);
  }
}

// How the chunks are shared out. The bf16 GEMM is parallel inside (one OpenMP region per
// call), so its chunks run one after another. The BLAS route runs whole chunks on the
// OpenMP threads, each chunk's im2col and GEMM on one thread: a chunk's GEMM is small (16
// output channels x 1024 columns in ResNet-20), too small to split across threads without
// their waiting on each other, and the chunks are independent. At least one chunk per
// thread, so that deep layers with small planes (few, wide chunks) keep every thread busy.
struct Chunks {
  int64_t size, count;
  int threads;
};

template <bool Bf16>
Chunks plan_chunks(const ConvGeom& g, size_t elem) {
  int64_t size = chunk_size(g, elem, Bf16 ? kTargetColumnsBf16 : kTargetColumns);
  const int threads = Bf16 || omp_in_parallel() ? 1 : omp_get_max_threads();
  size = std::min(size, std::max<int64_t>(1, (g.n + threads - 1) / threads));
  const int64_t count = (g.n + size - 1) / size;
  return {size, count, static_cast<int>(std::min<int64_t>(threads, count))};
}

template <typename T, bool Bf16>
void forward_impl(T* out, const T* x, const T* w, const T* bias, const ConvGeom& g) {
  const Chunks ch = plan_chunks<Bf16>(g, sizeof(T));
#pragma omp parallel for schedule(static) num_threads(ch.threads) if (ch.threads > 1)
  for (int64_t i = 0; i < ch.count; ++i)
    forward_chunk<T, Bf16>(out, x, w, bias, g, i * ch.size, std::min(ch.size, g.n - i * ch.size));
}

template <typename T, bool Bf16>
void backward_input_impl(T* grad_x, const T* grad_out, const T* w, const ConvGeom& g) {
  if (input_grad_as_forward(g)) {  // a forward pass with the flipped kernel (flip.h)
    const std::vector<T> flipped = flipped_weights(w, g);
    return forward_impl<T, Bf16>(grad_x, grad_out, flipped.data(), nullptr, flipped_geometry(g));
  }
  const Chunks ch = plan_chunks<Bf16>(g, sizeof(T));
#pragma omp parallel for schedule(static) num_threads(ch.threads) if (ch.threads > 1)
  for (int64_t i = 0; i < ch.count; ++i)
    backward_input_chunk<T, Bf16>(grad_x, grad_out, w, g, i * ch.size, std::min(ch.size, g.n - i * ch.size));
}

// Each thread sums its chunks into its own [CO, K] buffer (thread 0: grad_w itself), then
// the buffers are added into grad_w in thread order: the same sums for the same thread count.
template <typename T, bool Bf16>
void backward_weight_impl(T* grad_w, const T* grad_out, const T* x, const ConvGeom& g) {
  const Chunks ch = plan_chunks<Bf16>(g, sizeof(T));
  const int64_t numel = g.co * g.k;
  std::vector<T*> partial(static_cast<size_t>(ch.threads));
#pragma omp parallel num_threads(ch.threads) if (ch.threads > 1)
  {
    const int t = omp_get_thread_num();
    T* mine = t == 0 ? grad_w : workspace<T>(9, static_cast<size_t>(numel));
    partial[static_cast<size_t>(t)] = mine;
    T beta = T(0);  // a thread's first chunk assigns, its later ones accumulate
#pragma omp for schedule(static)
    for (int64_t i = 0; i < ch.count; ++i) {
      backward_weight_chunk<T, Bf16>(mine, grad_out, x, g, i * ch.size, std::min(ch.size, g.n - i * ch.size),
                                     beta);
      beta = T(1);
    }
    if (beta == T(0)) std::fill(mine, mine + numel, T(0));  // no chunk came to this thread
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t e = 0; e < numel; ++e)
      for (size_t p = 1; p < partial.size(); ++p) grad_w[e] += partial[p][e];
  }
}

}  // namespace

template <typename T>
void im2col_forward(T* out, const T* x, const T* w, const T* bias, const ConvGeom& g) {
  forward_impl<T, false>(out, x, w, bias, g);
}
template <typename T>
void im2col_backward_input(T* grad_x, const T* grad_out, const T* w, const ConvGeom& g) {
  backward_input_impl<T, false>(grad_x, grad_out, w, g);
}
template <typename T>
void im2col_backward_weight(T* grad_w, const T* grad_out, const T* x, const ConvGeom& g) {
  backward_weight_impl<T, false>(grad_w, grad_out, x, g);
}

bool im2col_bf16_accepts(const ConvGeom& g) {
  return !g.depthwise() && matmul_precision() == MatmulPrecision::bf16;
}
void im2col_bf16_forward(float* out, const float* x, const float* w, const float* bias, const ConvGeom& g) {
  forward_impl<float, true>(out, x, w, bias, g);
}
void im2col_bf16_backward_input(float* grad_x, const float* grad_out, const float* w, const ConvGeom& g) {
  backward_input_impl<float, true>(grad_x, grad_out, w, g);
}
void im2col_bf16_backward_weight(float* grad_w, const float* grad_out, const float* x, const ConvGeom& g) {
  backward_weight_impl<float, true>(grad_w, grad_out, x, g);
}

// The bias gradient has a single route: a per-channel sum.
void conv2d_backward_bias(Tensor& grad_bias, const Tensor& grad_out) {
  const int64_t n = grad_out.size(0), c = grad_out.size(1), plane = grad_out.numel() / (n * c);
  dispatch_float(grad_bias.dtype(), "conv2d_backward_bias", [&]<typename scalar_t>() {
    const scalar_t* g = grad_out.data<scalar_t>();
    scalar_t* gb = grad_bias.data<scalar_t>();
#pragma omp parallel for schedule(static) if (grad_out.numel() > kParallelThreshold)
    for (int64_t ch = 0; ch < c; ++ch) {
      double acc = 0;  // double: long float32 sums stay accurate
      for (int64_t b = 0; b < n; ++b) {
        const scalar_t* row = g + (b * c + ch) * plane;
        scalar_t part = 0;
        for (int64_t q = 0; q < plane; ++q) part += row[q];
        acc += part;
      }
      gb[ch] = static_cast<scalar_t>(acc);
    }
  });
}

template void im2col_forward<float>(float*, const float*, const float*, const float*, const ConvGeom&);
template void im2col_forward<double>(double*, const double*, const double*, const double*, const ConvGeom&);
template void im2col_backward_input<float>(float*, const float*, const float*, const ConvGeom&);
template void im2col_backward_input<double>(double*, const double*, const double*, const ConvGeom&);
template void im2col_backward_weight<float>(float*, const float*, const float*, const ConvGeom&);
template void im2col_backward_weight<double>(double*, const double*, const double*, const ConvGeom&);

}  // namespace ag::cpu
