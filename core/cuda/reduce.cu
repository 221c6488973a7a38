// CUDA reductions over one dim of x viewed as [outer, n, inner] (sum/mean/max, argmax),
// the sum over all elements, and the gradient helpers (broadcast back along a dim, sum a
// broadcast result down to a shape). Twins of core/cpu/reduce.cpp. Sums accumulate in
// double, as on the CPU, so long float32 sums keep their accuracy; results are
// deterministic (fixed reduction trees, no atomics).
#include <limits>

#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

// One output of reduce_dim per row.
template <typename T>
struct ReduceRow {
  T* out;      // [outer, inner]
  const T* x;  // [outer, n, inner]
  int64_t n, inner;
  bool is_max;
  double divisor;

  template <typename G>
  __device__ void operator()(int64_t r) const {
    const T* row = x + row_base(r, n, inner);
    if (is_max) {
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t j = G::lane(); j < n; j += G::size()) m = MaxOp{}(m, row[j * inner]);
      m = G::reduce(m, MaxOp{});
      if (G::lane() == 0) out[r] = m;
    } else {
      double acc = 0;
      for (int64_t j = G::lane(); j < n; j += G::size()) acc += static_cast<double>(row[j * inner]);
      acc = G::reduce(acc, SumOp{});
      if (G::lane() == 0) out[r] = static_cast<T>(acc / divisor);
    }
  }
};

template <typename T>
struct ArgmaxRow {
  int64_t* out;  // [outer, inner]
  const T* x;    // [outer, n, inner]
  int64_t n, inner;

  template <typename G>
  __device__ void operator()(int64_t r) const {
    const T* row = x + row_base(r, n, inner);
    ArgMax<T> best{-std::numeric_limits<T>::infinity(), n};  // any real entry beats it
    for (int64_t j = G::lane(); j < n; j += G::size()) best = ArgMaxOp{}(best, ArgMax<T>{row[j * inner], j});
    best = G::reduce(best, ArgMaxOp{});
    // All entries -inf or NaN: the CPU answers 0 (it starts from the first element).
    if (G::lane() == 0) out[r] = best.index == n ? 0 : best.index;
  }
};

template <typename T>
__global__ void broadcast_dim_kernel(T* out, const T* g, int64_t n, int64_t inner, T alpha, int64_t total) {
  AG_GRID_STRIDE(k, total) {
    const int64_t i = k % inner, o = k / (n * inner);
    out[k] = alpha * g[o * inner + i];
  }
}

// First pass of sum_all: one double partial sum per block.
template <typename T>
__global__ void sum_partials_kernel(double* partial, const T* x, int64_t n) {
  double acc = 0;
  AG_GRID_STRIDE(i, n) acc += static_cast<double>(x[i]);
  acc = block_reduce(acc, SumOp{});
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <typename T>
__global__ void sum_finish_kernel(T* out, const double* partial, int64_t count) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_reduce(acc, SumOp{});
  if (threadIdx.x == 0) out[0] = static_cast<T>(acc);
}

// sum_to: row r is one output element; its elements are the grad elements that were
// broadcast from it. kept walks the output's dims in grad (the row's base offset),
// reduced walks the broadcast dims (the offsets within the row).
template <typename T>
struct SumToRow {
  T* out;
  const T* grad;
  StridedIndex kept, reduced;
  int64_t count;  // elements per row

  template <typename G>
  __device__ void operator()(int64_t r) const {
    const T* base = grad + kept.offset(r);
    double acc = 0;
    for (int64_t j = G::lane(); j < count; j += G::size())
      acc += static_cast<double>(base[reduced.offset(j)]);
    acc = G::reduce(acc, SumOp{});
    if (G::lane() == 0) out[r] = static_cast<T>(acc);
  }
};

}  // namespace

void reduce_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, ReduceOp op) {
  if (outer * inner == 0) return;
  Launch launch(out);
  dispatch_float(x.dtype(), "reduce_dim", [&]<typename scalar_t>() {
    const ReduceRow<scalar_t> row{out.data<scalar_t>(),
                                  x.data<scalar_t>(),
                                  n,
                                  inner,
                                  op == ReduceOp::max,
                                  op == ReduceOp::mean ? static_cast<double>(n) : 1.0};
    launch_rows(launch, outer * inner, n, inner, row);
  });
}

void argmax_dim(Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner) {
  if (outer * inner == 0) return;
  Launch launch(out);
  dispatch_float(x.dtype(), "argmax_dim", [&]<typename scalar_t>() {
    const ArgmaxRow<scalar_t> row{out.data<int64_t>(), x.data<scalar_t>(), n, inner};
    launch_rows(launch, outer * inner, n, inner, row);
  });
}

void broadcast_dim(Tensor& out, const Tensor& g, int64_t outer, int64_t n, int64_t inner, double alpha) {
  const int64_t total = outer * n * inner;
  if (total == 0) return;
  Launch launch(out);
  dispatch_float(out.dtype(), "broadcast_dim", [&]<typename scalar_t>() {
    broadcast_dim_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), g.data<scalar_t>(), n, inner, static_cast<scalar_t>(alpha), total);
  });
  AG_CUDA_CHECK_LAUNCH();
}

void sum_all(Tensor& out, const Tensor& x) {
  Launch launch(out);
  const int64_t n = x.numel();
  const unsigned blocks = grid_for(n, launch);
  Tensor partial = Tensor::empty({static_cast<int64_t>(blocks)}, DType::f64, out.device());
  dispatch_float(x.dtype(), "sum_all", [&]<typename scalar_t>() {
    sum_partials_kernel<scalar_t>
        <<<blocks, kThreads, 0, launch.stream>>>(partial.data<double>(), x.data<scalar_t>(), n);
    AG_CUDA_CHECK_LAUNCH();
    sum_finish_kernel<scalar_t>
        <<<1, kThreads, 0, launch.stream>>>(out.data<scalar_t>(), partial.data<double>(), blocks);
  });
  AG_CUDA_CHECK_LAUNCH();
}

void sum_to(Tensor& out, const Tensor& grad) {
  const Shape& g = grad.shape();
  const Shape& o = out.shape();
  AG_CHECK(o.size() <= g.size(), "sum_to: cannot sum " << shape_str(g) << " down to " << shape_str(o));
  // Split grad's dims into kept (out has them) and reduced (out has 1 or lacks them).
  const size_t lead = g.size() - o.size();
  const Shape gs = contiguous_strides(g);
  Shape kept_shape, kept_strides, red_shape, red_strides;
  for (size_t d = 0; d < g.size(); ++d) {
    const bool kept = d >= lead && o[d - lead] == g[d];
    AG_CHECK(kept || d < lead || o[d - lead] == 1,
             "sum_to: cannot sum " << shape_str(g) << " down to " << shape_str(o));
    (kept ? kept_shape : red_shape).push_back(g[d]);
    (kept ? kept_strides : red_strides).push_back(gs[d]);
  }
  const int64_t rows = out.numel(), count = shape_numel(red_shape);
  if (rows == 0) return;
  Launch launch(out);
  const StridedIndex kept = make_strided_index(kept_shape, kept_strides, "sum_to");
  const StridedIndex reduced = make_strided_index(red_shape, red_strides, "sum_to");
  dispatch_float(out.dtype(), "sum_to", [&]<typename scalar_t>() {
    const SumToRow<scalar_t> row{out.data<scalar_t>(), grad.data<scalar_t>(), kept, reduced, count};
    // Neighbouring outputs are adjacent in grad when the innermost dim is kept.
    const int64_t inner = !o.empty() && o.back() == g.back() && g.back() > 1 ? 2 : 1;
    launch_rows(launch, rows, count, inner, row);
  });
}

}  // namespace ag::cuda
