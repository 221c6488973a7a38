// CUDA softmax / log-softmax and L2 normalisation over the middle dim of [outer, n, inner],
// forward and backward. Twins of core/cpu/softmax.cpp: one row (n elements, `inner` apart)
// per thread, warp or block (see launch_rows), with row sums accumulated in double.
#include <limits>

#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

template <typename T>
struct SoftmaxForwardRow {
  T* y;        // [outer, n, inner]
  const T* x;  // [outer, n, inner]
  int64_t n, inner;
  bool log;

  template <typename G>
  __device__ void operator()(int64_t r) const {
    const int64_t base = row_base(r, n, inner);
    const T* src = x + base;
    T* dst = y + base;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = G::lane(); j < n; j += G::size()) m = MaxOp{}(m, src[j * inner]);
    m = G::reduce(m, MaxOp{});
    double total = 0;  // subtracting the max keeps every exp() <= 1: no overflow
    for (int64_t j = G::lane(); j < n; j += G::size()) total += static_cast<double>(exp(src[j * inner] - m));
    total = G::reduce(total, SumOp{});
    if (log) {
      const T log_total = static_cast<T>(::log(total));
      for (int64_t j = G::lane(); j < n; j += G::size()) dst[j * inner] = src[j * inner] - m - log_total;
    } else {
      const T inv = static_cast<T>(1.0 / total);
      for (int64_t j = G::lane(); j < n; j += G::size()) dst[j * inner] = exp(src[j * inner] - m) * inv;
    }
  }
};

template <typename T>
struct SoftmaxBackwardRow {
  T* grad_x;        // [outer, n, inner]
  const T* grad_y;  // [outer, n, inner]
  const T* y;       // [outer, n, inner] the forward output
  int64_t n, inner;
  bool log;

  template <typename G>
  __device__ void operator()(int64_t r) const {
    const int64_t base = row_base(r, n, inner);
    const T* g = grad_y + base;
    const T* py = y + base;
    T* gx = grad_x + base;
    double dot = 0;
    if (log) {  // dx = g - softmax * sum(g)
      for (int64_t j = G::lane(); j < n; j += G::size()) dot += static_cast<double>(g[j * inner]);
      dot = G::reduce(dot, SumOp{});
      const T s = static_cast<T>(dot);
      for (int64_t j = G::lane(); j < n; j += G::size())
        gx[j * inner] = g[j * inner] - exp(py[j * inner]) * s;
    } else {  // dx = y * (g - sum(g * y))
      for (int64_t j = G::lane(); j < n; j += G::size())
        dot += static_cast<double>(g[j * inner]) * static_cast<double>(py[j * inner]);
      dot = G::reduce(dot, SumOp{});
      const T s = static_cast<T>(dot);
      for (int64_t j = G::lane(); j < n; j += G::size()) gx[j * inner] = py[j * inner] * (g[j * inner] - s);
    }
  }
};

template <typename T>
struct L2NormalizeForwardRow {
  T* y;        // [outer, n, inner]
  T* norm;     // [outer, inner] max(||x||, eps)
  const T* x;  // [outer, n, inner]
  int64_t n, inner;
  double eps;

  template <typename G>
  __device__ void operator()(int64_t r) const {
    const int64_t base = row_base(r, n, inner);
    double ss = 0;
    for (int64_t j = G::lane(); j < n; j += G::size()) {
      const double v = x[base + j * inner];
      ss += v * v;
    }
    ss = G::reduce(ss, SumOp{});
    const double d = fmax(sqrt(ss), eps);
    if (G::lane() == 0) norm[r] = static_cast<T>(d);
    for (int64_t j = G::lane(); j < n; j += G::size())
      y[base + j * inner] = static_cast<T>(x[base + j * inner] / d);
  }
};

template <typename T>
struct L2NormalizeBackwardRow {
  T* grad_x;        // [outer, n, inner]
  const T* grad_y;  // [outer, n, inner]
  const T* x;       // [outer, n, inner]
  const T* norm;    // [outer, inner]
  int64_t n, inner;
  double eps;

  template <typename G>
  __device__ void operator()(int64_t r) const {
    const int64_t base = row_base(r, n, inner);
    const double d = norm[r];
    // The forward stored max(|x|, eps) rounded to T: a clamped float32 norm reads float(eps),
    // which is above the double eps.
    if (d <= static_cast<double>(static_cast<T>(eps))) {  // clamped: y = x / eps is linear in x
      for (int64_t j = G::lane(); j < n; j += G::size())
        grad_x[base + j * inner] = static_cast<T>(grad_y[base + j * inner] / eps);
      return;  // d is the same for every lane of the group: no lane is left in a reduction
    }
    // y = x/|x|: dx = (g - y (y.g)) / |x|
    double dot = 0;
    for (int64_t j = G::lane(); j < n; j += G::size())
      dot += static_cast<double>(grad_y[base + j * inner]) * x[base + j * inner];
    dot = G::reduce(dot, SumOp{}) / d;
    for (int64_t j = G::lane(); j < n; j += G::size()) {
      const int64_t k = base + j * inner;
      grad_x[k] = static_cast<T>((grad_y[k] - (x[k] / d) * dot) / d);
    }
  }
};

}  // namespace

void softmax_forward(Tensor& y, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) {
  Launch launch(y);
  dispatch_float(x.dtype(), "softmax_forward", [&]<typename scalar_t>() {
    const SoftmaxForwardRow<scalar_t> row{y.data<scalar_t>(), x.data<scalar_t>(), n, inner, log};
    launch_rows(launch, outer * inner, n, inner, row);
  });
}

void softmax_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, int64_t outer, int64_t n,
                      int64_t inner, bool log) {
  Launch launch(grad_x);
  dispatch_float(y.dtype(), "softmax_backward", [&]<typename scalar_t>() {
    const SoftmaxBackwardRow<scalar_t> row{
        grad_x.data<scalar_t>(), grad_y.data<scalar_t>(), y.data<scalar_t>(), n, inner, log};
    launch_rows(launch, outer * inner, n, inner, row);
  });
}

void l2_normalize_forward(Tensor& y, Tensor& norm, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                          double eps) {
  Launch launch(y);
  dispatch_float(x.dtype(), "l2_normalize_forward", [&]<typename scalar_t>() {
    const L2NormalizeForwardRow<scalar_t> row{
        y.data<scalar_t>(), norm.data<scalar_t>(), x.data<scalar_t>(), n, inner, eps};
    launch_rows(launch, outer * inner, n, inner, row);
  });
}

void l2_normalize_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& norm,
                           int64_t outer, int64_t n, int64_t inner, double eps) {
  Launch launch(grad_x);
  dispatch_float(x.dtype(), "l2_normalize_backward", [&]<typename scalar_t>() {
    const L2NormalizeBackwardRow<scalar_t> row{grad_x.data<scalar_t>(),
                                               grad_y.data<scalar_t>(),
                                               x.data<scalar_t>(),
                                               norm.data<scalar_t>(),
                                               n,
                                               inner,
                                               eps};
    launch_rows(launch, outer * inner, n, inner, row);
  });
}

}  // namespace ag::cuda
