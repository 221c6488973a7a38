// CUDA elementwise kernels: unary math and activations (forward and derivative), binary
// ops with NumPy broadcasting, axpby/scale and where. Twins of core/cpu/elementwise.cpp:
// the same formulas, one compile-time op per kernel instantiation.
#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

template <UnaryOp OP, typename T>
__device__ T unary_value(T x, T p, T q) {
  if constexpr (OP == UnaryOp::neg) return -x;
  if constexpr (OP == UnaryOp::exp) return exp(x);
  if constexpr (OP == UnaryOp::log) return log(x);
  if constexpr (OP == UnaryOp::sqrt) return sqrt(x);
  if constexpr (OP == UnaryOp::abs) return fabs(x);
  if constexpr (OP == UnaryOp::sin) return sin(x);
  if constexpr (OP == UnaryOp::cos) return cos(x);
  if constexpr (OP == UnaryOp::acos) return acos(x);
  if constexpr (OP == UnaryOp::pow) return pow(x, p);
  if constexpr (OP == UnaryOp::clamp) return x < p ? p : (x > q ? q : x);
  return x;
}

// d op(x) / dx, from x and (where cheaper) y = op(x).
template <UnaryOp OP, typename T>
__device__ T unary_derivative(T x, T y, T p, T q) {
  if constexpr (OP == UnaryOp::neg) return T(-1);
  if constexpr (OP == UnaryOp::exp) return y;
  if constexpr (OP == UnaryOp::log) return T(1) / x;
  if constexpr (OP == UnaryOp::sqrt) return T(0.5) / y;
  if constexpr (OP == UnaryOp::abs) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  if constexpr (OP == UnaryOp::sin) return cos(x);
  if constexpr (OP == UnaryOp::cos) return -sin(x);
  if constexpr (OP == UnaryOp::acos) return T(-1) / sqrt(T(1) - x * x);
  if constexpr (OP == UnaryOp::pow) return p * pow(x, p - T(1));
  if constexpr (OP == UnaryOp::clamp) return (x >= p && x <= q) ? T(1) : T(0);
  return T(0);
}

template <Activation ACT, typename T>
__device__ T activation_value(T x) {
  if constexpr (ACT == Activation::relu) return x > T(0) ? x : T(0);
  if constexpr (ACT == Activation::relu6) return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
  if constexpr (ACT == Activation::silu) return x / (T(1) + exp(-x));
  if constexpr (ACT == Activation::sigmoid) return T(1) / (T(1) + exp(-x));
  if constexpr (ACT == Activation::tanh) return tanh(x);
  if constexpr (ACT == Activation::hardswish) return x <= T(-3) ? T(0) : (x >= T(3) ? x : x * (x + T(3)) / T(6));
  return x;
}

// d act(x) / dx, from x and (where cheaper) y = act(x).
template <Activation ACT, typename T>
__device__ T activation_derivative(T x, T y) {
  if constexpr (ACT == Activation::relu) return x > T(0) ? T(1) : T(0);
  if constexpr (ACT == Activation::relu6) return (x > T(0) && x < T(6)) ? T(1) : T(0);
  if constexpr (ACT == Activation::silu) {
    const T s = T(1) / (T(1) + exp(-x));
    return s * (T(1) + x * (T(1) - s));
  }
  if constexpr (ACT == Activation::sigmoid) return y * (T(1) - y);
  if constexpr (ACT == Activation::tanh) return T(1) - y * y;
  if constexpr (ACT == Activation::hardswish)
    return x < T(-3) ? T(0) : (x > T(3) ? T(1) : (T(2) * x + T(3)) / T(6));
  return T(1);
}

template <typename T, Activation ACT>
__global__ void activation_forward_kernel(T* out, const T* x, int64_t n) {
  AG_GRID_STRIDE(i, n) out[i] = activation_value<ACT>(x[i]);
}

template <typename T, Activation ACT>
__global__ void activation_backward_kernel(T* grad_x, const T* grad_y, const T* x, const T* y, int64_t n) {
  AG_GRID_STRIDE(i, n) grad_x[i] = grad_y[i] * activation_derivative<ACT>(x[i], y[i]);
}

template <typename T, UnaryOp OP>
__global__ void unary_forward_kernel(T* out, const T* x, int64_t n, T p, T q) {
  AG_GRID_STRIDE(i, n) out[i] = unary_value<OP>(x[i], p, q);
}

template <typename T, UnaryOp OP>
__global__ void unary_backward_kernel(T* grad_x, const T* grad_y, const T* x, const T* y, int64_t n, T p,
                                      T q) {
  AG_GRID_STRIDE(i, n) grad_x[i] = grad_y[i] * unary_derivative<OP>(x[i], y[i], p, q);
}

// Runs body.template operator()<OP>() with OP a compile-time constant.
template <typename Body>
void with_unary_op(UnaryOp op, Body&& body) {
  switch (op) {
    // clang-format off
#define AG_UNARY_CASE(name) \
  case UnaryOp::name: return body.template operator()<UnaryOp::name>();
    AG_UNARY_CASE(neg) AG_UNARY_CASE(exp) AG_UNARY_CASE(log) AG_UNARY_CASE(sqrt) AG_UNARY_CASE(abs)
    AG_UNARY_CASE(sin) AG_UNARY_CASE(cos) AG_UNARY_CASE(acos) AG_UNARY_CASE(pow) AG_UNARY_CASE(clamp)
    // clang-format on
#undef AG_UNARY_CASE
  }
}

template <BinaryOp OP, typename T>
__device__ T binary_value(T a, T b) {
  if constexpr (OP == BinaryOp::add) return a + b;
  if constexpr (OP == BinaryOp::sub) return a - b;
  if constexpr (OP == BinaryOp::mul) return a * b;
  if constexpr (OP == BinaryOp::div) return a / b;
  return a;
}

// The output's dims (merged where possible) and each input's strides along them (0 where
// it is broadcast).
struct BroadcastIndex {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride_a[kMaxDims] = {};
  int64_t stride_b[kMaxDims] = {};
};

Shape broadcast_strides(const Shape& shape, const Shape& out_shape) {
  const Shape own = contiguous_strides(shape);
  Shape result(out_shape.size(), 0);
  const size_t lead = out_shape.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) result[lead + i] = shape[i] == 1 ? 0 : own[i];
  return result;
}

// Drops size-1 dims and merges a dim into the next inner one when both inputs step through
// them as one (e.g. a bias add [N,C,H,W] + [1,C,1,1] becomes [N, C, H*W]).
BroadcastIndex make_broadcast_index(const Shape& out, const Shape& a, const Shape& b) {
  const Shape sa = broadcast_strides(a, out), sb = broadcast_strides(b, out);
  BroadcastIndex ix;
  int64_t shape[64], ra[64], rb[64];
  int nd = 0;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    if (nd > 0 && ra[nd - 1] == sa[d] * out[d] && rb[nd - 1] == sb[d] * out[d]) {
      shape[nd - 1] *= out[d];
      ra[nd - 1] = sa[d];
      rb[nd - 1] = sb[d];
      continue;
    }
    shape[nd] = out[d];
    ra[nd] = sa[d];
    rb[nd] = sb[d];
    ++nd;
  }
  AG_CHECK(nd <= kMaxDims, "binary_forward: " << nd << " dims after merging, at most " << kMaxDims
                                              << " are supported; output shape " << shape_str(out));
  ix.nd = nd;
  for (int d = 0; d < nd; ++d) {
    ix.shape[d] = shape[d];
    ix.stride_a[d] = ra[d];
    ix.stride_b[d] = rb[d];
  }
  return ix;
}

template <typename T, BinaryOp OP>
__global__ void binary_same_shape_kernel(T* out, const T* a, const T* b, int64_t n) {
  AG_GRID_STRIDE(i, n) out[i] = binary_value<OP>(a[i], b[i]);
}

template <typename T, BinaryOp OP>
__global__ void binary_broadcast_kernel(T* out, const T* a, const T* b, int64_t n, BroadcastIndex ix) {
  AG_GRID_STRIDE(i, n) {
    int64_t rest = i, oa = 0, ob = 0;
    for (int d = ix.nd - 1; d >= 0; --d) {
      const int64_t c = rest % ix.shape[d];
      rest /= ix.shape[d];
      oa += c * ix.stride_a[d];
      ob += c * ix.stride_b[d];
    }
    out[i] = binary_value<OP>(a[oa], b[ob]);
  }
}

template <typename T>
__global__ void axpby_kernel(T* out, T alpha, const T* a, T beta, const T* b, int64_t n) {
  AG_GRID_STRIDE(i, n) out[i] = alpha * a[i] + beta * b[i];
}

template <typename T>
__global__ void scale_kernel(T* out, const T* x, T alpha, int64_t n) {
  AG_GRID_STRIDE(i, n) out[i] = alpha * x[i];
}

template <typename T, typename C>
__global__ void where_kernel(T* out, const C* cond, const T* a, const T* b, int64_t n) {
  AG_GRID_STRIDE(i, n) out[i] = cond[i] != C(0) ? a[i] : b[i];
}

}  // namespace

void unary_forward(Tensor& out, const Tensor& x, UnaryOp op, UnaryParams params) {
  const int64_t n = x.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_float(x.dtype(), "unary_forward", [&]<typename scalar_t>() {
    const auto p = static_cast<scalar_t>(params.p), q = static_cast<scalar_t>(params.q);
    with_unary_op(op, [&]<UnaryOp OP>() {
      unary_forward_kernel<scalar_t, OP><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
          out.data<scalar_t>(), x.data<scalar_t>(), n, p, q);
    });
  });
  AG_CUDA_CHECK_LAUNCH();
}

void unary_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y, UnaryOp op,
                    UnaryParams params) {
  const int64_t n = x.numel();
  if (n == 0) return;
  Launch launch(grad_x);
  dispatch_float(x.dtype(), "unary_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* py = y.defined() ? y.data<scalar_t>() : px;
    const auto p = static_cast<scalar_t>(params.p), q = static_cast<scalar_t>(params.q);
    with_unary_op(op, [&]<UnaryOp OP>() {
      unary_backward_kernel<scalar_t, OP><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
          grad_x.data<scalar_t>(), grad_y.data<scalar_t>(), px, py, n, p, q);
    });
  });
  AG_CUDA_CHECK_LAUNCH();
}

void activation_forward(Tensor& out, const Tensor& x, Activation act) {
  const int64_t n = x.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_float(x.dtype(), "activation_forward", [&]<typename scalar_t>() {
    with_activation(act, [&]<Activation ACT>() {
      activation_forward_kernel<scalar_t, ACT><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
          out.data<scalar_t>(), x.data<scalar_t>(), n);
    });
  });
  AG_CUDA_CHECK_LAUNCH();
}

void activation_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y,
                         Activation act) {
  const int64_t n = x.numel();
  if (n == 0) return;
  Launch launch(grad_x);
  dispatch_float(x.dtype(), "activation_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* py = y.defined() ? y.data<scalar_t>() : px;
    with_activation(act, [&]<Activation ACT>() {
      activation_backward_kernel<scalar_t, ACT><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
          grad_x.data<scalar_t>(), grad_y.data<scalar_t>(), px, py, n);
    });
  });
  AG_CUDA_CHECK_LAUNCH();
}

void binary_forward(Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  const bool same = a.shape() == out.shape() && b.shape() == out.shape();
  const BroadcastIndex ix = same ? BroadcastIndex{} : make_broadcast_index(out.shape(), a.shape(), b.shape());
  dispatch_float(out.dtype(), "binary_forward", [&]<typename scalar_t>() {
    auto run = [&]<BinaryOp OP>() {
      scalar_t* po = out.data<scalar_t>();
      const scalar_t* pa = a.data<scalar_t>();
      const scalar_t* pb = b.data<scalar_t>();
      if (same)
        binary_same_shape_kernel<scalar_t, OP>
            <<<grid_for(n, launch), kThreads, 0, launch.stream>>>(po, pa, pb, n);
      else
        binary_broadcast_kernel<scalar_t, OP>
            <<<grid_for(n, launch), kThreads, 0, launch.stream>>>(po, pa, pb, n, ix);
    };
    switch (op) {
      case BinaryOp::add:
        return run.template operator()<BinaryOp::add>();
      case BinaryOp::sub:
        return run.template operator()<BinaryOp::sub>();
      case BinaryOp::mul:
        return run.template operator()<BinaryOp::mul>();
      case BinaryOp::div:
        return run.template operator()<BinaryOp::div>();
    }
  });
  AG_CUDA_CHECK_LAUNCH();
}

void axpby(Tensor& out, double alpha, const Tensor& a, double beta, const Tensor& b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_float(out.dtype(), "axpby", [&]<typename scalar_t>() {
    axpby_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), static_cast<scalar_t>(alpha), a.data<scalar_t>(), static_cast<scalar_t>(beta),
        b.data<scalar_t>(), n);
  });
  AG_CUDA_CHECK_LAUNCH();
}

void scale(Tensor& out, const Tensor& x, double alpha) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_float(out.dtype(), "scale", [&]<typename scalar_t>() {
    scale_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), x.data<scalar_t>(), static_cast<scalar_t>(alpha), n);
  });
  AG_CUDA_CHECK_LAUNCH();
}

void where_forward(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_all(cond.dtype(), "where", [&]<typename cond_t>() {
    dispatch_float(out.dtype(), "where", [&]<typename scalar_t>() {
      where_kernel<scalar_t, cond_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
          out.data<scalar_t>(), cond.data<cond_t>(), a.data<scalar_t>(), b.data<scalar_t>(), n);
    });
  });
  AG_CUDA_CHECK_LAUNCH();
}

}  // namespace ag::cuda
