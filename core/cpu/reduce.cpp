// CPU reductions over one dim of x viewed as [outer, n, inner], plus the gradient
// helpers (broadcast back along the dim, sum a broadcast result down to a shape).
#include <algorithm>
#include <limits>
#include <vector>

#include "core/cpu/strided.h"
#include "core/kernels.h"

namespace ag::cpu {

void reduce_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, ReduceOp op) {
  dispatch_float(x.dtype(), "reduce_dim", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const bool is_max = op == ReduceOp::max;
    const double divisor = op == ReduceOp::mean ? static_cast<double>(n) : 1.0;
    if (inner == 1) {
      // Contiguous rows: accumulate in double so long float32 sums stay accurate.
#pragma omp parallel for if (outer * n > kParallelThreshold) schedule(static)
      for (int64_t o = 0; o < outer; ++o) {
        const scalar_t* row = px + o * n;
        if (is_max) {
          scalar_t m = -std::numeric_limits<scalar_t>::infinity();
          for (int64_t j = 0; j < n; ++j) m = row[j] > m ? row[j] : m;
          po[o] = m;
        } else {
          double acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += row[j];
          po[o] = static_cast<scalar_t>(acc / divisor);
        }
      }
      return;
    }
    // Strided columns: sums go through a double row per slice, as the CUDA twin does, so
    // float32 results are accurate and the two devices agree closely.
#pragma omp parallel for if (outer * n * inner > kParallelThreshold) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      scalar_t* dst = po + o * inner;
      const scalar_t* src = px + o * n * inner;
      if (is_max) {
        for (int64_t i = 0; i < inner; ++i) dst[i] = -std::numeric_limits<scalar_t>::infinity();
        for (int64_t j = 0; j < n; ++j) {
          const scalar_t* row = src + j * inner;
          for (int64_t i = 0; i < inner; ++i) dst[i] = row[i] > dst[i] ? row[i] : dst[i];
        }
        continue;
      }
      std::vector<double> acc(inner, 0.0);
      for (int64_t j = 0; j < n; ++j) {
        const scalar_t* row = src + j * inner;
        for (int64_t i = 0; i < inner; ++i) acc[i] += row[i];
      }
      for (int64_t i = 0; i < inner; ++i) dst[i] = static_cast<scalar_t>(acc[i] / divisor);
    }
  });
}

void argmax_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner) {
  dispatch_float(x.dtype(), "argmax_dim", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    int64_t* po = out.data<int64_t>();
#pragma omp parallel for if (outer * n * inner > kParallelThreshold) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const scalar_t* col = px + o * n * inner + i;
        int64_t best = 0;
        for (int64_t j = 1; j < n; ++j)
          if (col[j * inner] > col[best * inner]) best = j;
        po[o * inner + i] = best;
      }
    }
  });
}

void broadcast_dim(Tensor& out, const Tensor& g, int64_t outer, int64_t n, int64_t inner, double alpha) {
  dispatch_float(out.dtype(), "broadcast_dim", [&]<typename scalar_t>() {
    const scalar_t* pg = g.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
#pragma omp parallel for if (outer * n * inner > kParallelThreshold) schedule(static)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < inner; ++i) po[(o * n + j) * inner + i] = a * pg[o * inner + i];
  });
}

void sum_all(Tensor& out, const Tensor& x) {
  // Partial sums over fixed blocks, added in block order: the result is the same bits for
  // any thread count (an OpenMP reduction would combine per-thread sums in whatever order
  // the threads finish).
  constexpr int64_t kBlock = 1 << 14;
  dispatch_float(x.dtype(), "sum_all", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const int64_t n = x.numel();
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      double acc = 0;
      for (int64_t i = b * kBlock, end = std::min(n, i + kBlock); i < end; ++i) acc += px[i];
      partial[b] = acc;
    }
    double total = 0;
    for (double p : partial) total += p;
    out.data<scalar_t>()[0] = static_cast<scalar_t>(total);
  });
}

void sum_to(Tensor& out, const Tensor& grad) {
  // Every grad element adds into the out element it was broadcast from (stride 0 along
  // broadcast dims). Sequential: used for small bias-like shapes; big reductions go
  // through reduce_dim.
  Shape strides = broadcast_strides(out.shape(), grad.shape());
  dispatch_float(out.dtype(), "sum_to", [&]<typename scalar_t>() {
    scalar_t* po = out.data<scalar_t>();
    const scalar_t* pg = grad.data<scalar_t>();
    std::vector<double> acc(static_cast<size_t>(out.numel()), 0.0);  // double, like the CUDA twin
    for_each_offset(grad.shape(), strides, [&](int64_t i, int64_t off) { acc[off] += pg[i]; });
    for (int64_t i = 0; i < out.numel(); ++i) po[i] = static_cast<scalar_t>(acc[i]);
  });
}

}  // namespace ag::cpu
