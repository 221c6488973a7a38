// CPU elementwise kernels: unary math and activations (forward and derivative), binary
// ops with broadcasting, axpby/scale, where, fill and strided copy.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/cpu/simd_math.h"
#include "core/cpu/strided.h"
#include "core/kernels.h"

namespace ag::cpu {

namespace {

template <typename T>
T unary_value(UnaryOp op, T x, T p, T q) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::abs:
      return std::abs(x);
    case UnaryOp::sin:
      return std::sin(x);
    case UnaryOp::cos:
      return std::cos(x);
    case UnaryOp::acos:
      return std::acos(x);
    case UnaryOp::pow:
      return std::pow(x, p);
    case UnaryOp::clamp:
      return x < p ? p : (x > q ? q : x);
  }
  return x;
}

// d op(x) / dx, from x and (where cheaper) y = op(x).
template <typename T>
T unary_derivative(UnaryOp op, T x, T y, T p, T q) {
  switch (op) {
    case UnaryOp::neg:
      return T(-1);
    case UnaryOp::exp:
      return y;
    case UnaryOp::log:
      return T(1) / x;
    case UnaryOp::sqrt:
      return T(0.5) / y;
    case UnaryOp::abs:
      return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::sin:
      return std::cos(x);
    case UnaryOp::cos:
      return -std::sin(x);
    case UnaryOp::acos:
      return T(-1) / std::sqrt(T(1) - x * x);
    case UnaryOp::pow:
      return p * std::pow(x, p - T(1));
    case UnaryOp::clamp:
      return (x >= p && x <= q) ? T(1) : T(0);
  }
  return T(0);
}

template <typename T>
T activation_value(Activation act, T x) {
  switch (act) {
    case Activation::none:
      return x;
    case Activation::relu:
      return x > T(0) ? x : T(0);
    case Activation::relu6:
      return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
    case Activation::silu:
      return x / (T(1) + std::exp(-x));
    case Activation::sigmoid:
      return T(1) / (T(1) + std::exp(-x));
    case Activation::tanh:
      return std::tanh(x);
    case Activation::hardswish:
      return x <= T(-3) ? T(0) : (x >= T(3) ? x : x * (x + T(3)) / T(6));
  }
  return x;
}

// d act(x) / dx, from x and (where cheaper) y = act(x).
template <typename T>
T activation_derivative(Activation act, T x, T y) {
  switch (act) {
    case Activation::none:
      return T(1);
    case Activation::relu:
      return x > T(0) ? T(1) : T(0);
    case Activation::relu6:
      return (x > T(0) && x < T(6)) ? T(1) : T(0);
    case Activation::silu: {
      T s = T(1) / (T(1) + std::exp(-x));
      return s * (T(1) + x * (T(1) - s));
    }
    case Activation::sigmoid:
      return y * (T(1) - y);
    case Activation::tanh:
      return T(1) - y * y;
    case Activation::hardswish:
      return x < T(-3) ? T(0) : (x > T(3) ? T(1) : (T(2) * x + T(3)) / T(6));
  }
  return T(0);
}

// g d act(x) / dx. ReLU and ReLU6 as a select of g or 0, not g times 1 or 0: GCC 12
// vectorises the select for AVX2 but not the product, and an infinite g they block gives
// 0, not NaN (as batch_norm.cpp's act_grad).
template <typename T, Activation ACT>
T activation_grad(T g, T x, T y) {
  if constexpr (ACT == Activation::relu)
    return x > T(0) ? g : T(0);
  else if constexpr (ACT == Activation::relu6)
    return (x > T(0)) & (x < T(6)) ? g : T(0);
  else
    return g * activation_derivative(ACT, x, y);
}

template <typename T>
T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
  }
  return a;
}

// The loop for one op, written out so the compiler can vectorise it (the switch is hoisted).
template <typename T, BinaryOp OP>
void binary_rows(T* out, const T* a, const T* b, const Shape& shape, const Shape& sa, const Shape& sb) {
  const size_t nd = shape.size();
  const int64_t inner = nd ? shape[nd - 1] : 1;
  const int64_t ia = nd ? sa[nd - 1] : 0, ib = nd ? sb[nd - 1] : 0;
  const int64_t rows = inner ? shape_numel(shape) / inner : 0;
#pragma omp parallel for if (rows * inner > kParallelThreshold) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t oa = 0, ob = 0, rest = r;
    for (size_t d = nd - 1; d-- > 0;) {
      int64_t c = rest % shape[d];
      rest /= shape[d];
      oa += c * sa[d];
      ob += c * sb[d];
    }
    T* o = out + r * inner;
    const T* pa = a + oa;
    const T* pb = b + ob;
    if (ia == 1 && ib == 1) {
      for (int64_t i = 0; i < inner; ++i) o[i] = binary_value(OP, pa[i], pb[i]);
    } else if (ia == 1 && ib == 0) {
      const T vb = *pb;
      for (int64_t i = 0; i < inner; ++i) o[i] = binary_value(OP, pa[i], vb);
    } else if (ia == 0 && ib == 1) {
      const T va = *pa;
      for (int64_t i = 0; i < inner; ++i) o[i] = binary_value(OP, va, pb[i]);
    } else {
      for (int64_t i = 0; i < inner; ++i) o[i] = binary_value(OP, pa[i * ia], pb[i * ib]);
    }
  }
}

template <typename T>
void binary_dispatch(BinaryOp op, T* out, const T* a, const T* b, const Shape& shape, const Shape& sa,
                     const Shape& sb) {
  switch (op) {
    case BinaryOp::add:
      return binary_rows<T, BinaryOp::add>(out, a, b, shape, sa, sb);
    case BinaryOp::sub:
      return binary_rows<T, BinaryOp::sub>(out, a, b, shape, sa, sb);
    case BinaryOp::mul:
      return binary_rows<T, BinaryOp::mul>(out, a, b, shape, sa, sb);
    case BinaryOp::div:
      return binary_rows<T, BinaryOp::div>(out, a, b, shape, sa, sb);
  }
}

// Runs body.template operator()<OP>() with OP a compile-time constant, so each op gets its
// own vectorisable loop instead of a switch per element.
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

// out[i] = f(x[i]) (and, with g, out[i] = g[i] f(x[i])) a vector at a time (simd_math.h),
// the tail under a mask.
#if AG_SIMD_MATH
template <typename F>
void map_lanes(float* out, const float* x, const float* g, int64_t n, F&& f) {
  const int64_t blocks = (n + vec::kLanes - 1) / vec::kLanes;
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i = vec::kLanes * b;
    vec::Vf v = f(vec::load_first(x + i, n - i));
    if (g) v = vec::mul(vec::load_first(g + i, n - i), v);
    vec::store_first(out + i, v, n - i);
  }
}
#endif

// Float32 SiLU and sigmoid forward, and SiLU's gradient, through the vectorised exp of
// simd_math.h (the scalar loops below call expf per element). False where the scalar
// loop must run: float64, other activations, a build without AVX-512 or AVX2 + FMA.
template <typename T, Activation ACT>
bool activation_forward_fast(T* out, const T* x, int64_t n) {
#if AG_SIMD_MATH
  if constexpr (std::is_same_v<T, float> && ACT == Activation::silu) {
    map_lanes(out, x, nullptr, n, [](vec::Vf v) { return vec::silu_ps(v); });
    return true;
  } else if constexpr (std::is_same_v<T, float> && ACT == Activation::sigmoid) {
    map_lanes(out, x, nullptr, n, [](vec::Vf v) { return vec::sigmoid_ps(v); });
    return true;
  }
#endif
  (void)out, (void)x, (void)n;
  return false;
}

template <typename T, Activation ACT>
bool activation_backward_fast(T* grad_x, const T* grad_y, const T* x, int64_t n) {
#if AG_SIMD_MATH
  if constexpr (std::is_same_v<T, float> && ACT == Activation::silu) {
    map_lanes(grad_x, x, grad_y, n, [](vec::Vf v) { return vec::silu_derivative_ps(v); });
    return true;
  }
#endif
  (void)grad_x, (void)grad_y, (void)x, (void)n;
  return false;
}

}  // namespace

void unary_forward(Tensor& out, const Tensor& x, UnaryOp op, UnaryParams params) {
  dispatch_float(x.dtype(), "unary_forward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const scalar_t p = static_cast<scalar_t>(params.p), q = static_cast<scalar_t>(params.q);
    const int64_t n = x.numel();
    with_unary_op(op, [&]<UnaryOp OP>() {
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
      for (int64_t i = 0; i < n; ++i) po[i] = unary_value(OP, px[i], p, q);
    });
  });
}

void unary_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y, UnaryOp op,
                    UnaryParams params) {
  dispatch_float(x.dtype(), "unary_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* py = y.defined() ? y.data<scalar_t>() : px;
    const scalar_t* pg = grad_y.data<scalar_t>();
    scalar_t* po = grad_x.data<scalar_t>();
    const scalar_t p = static_cast<scalar_t>(params.p), q = static_cast<scalar_t>(params.q);
    const int64_t n = x.numel();
    with_unary_op(op, [&]<UnaryOp OP>() {
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
      for (int64_t i = 0; i < n; ++i) po[i] = pg[i] * unary_derivative(OP, px[i], py[i], p, q);
    });
  });
}

void activation_forward(Tensor& out, const Tensor& x, Activation act) {
  dispatch_float(x.dtype(), "activation_forward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const int64_t n = x.numel();
    with_activation(act, [&]<Activation ACT>() {
      if (activation_forward_fast<scalar_t, ACT>(po, px, n)) return;
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
      for (int64_t i = 0; i < n; ++i) po[i] = activation_value(ACT, px[i]);
    });
  });
}

void activation_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& y,
                         Activation act) {
  dispatch_float(x.dtype(), "activation_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* py = y.defined() ? y.data<scalar_t>() : px;
    const scalar_t* pg = grad_y.data<scalar_t>();
    scalar_t* po = grad_x.data<scalar_t>();
    const int64_t n = x.numel();
    with_activation(act, [&]<Activation ACT>() {
      if (activation_backward_fast<scalar_t, ACT>(po, pg, px, n)) return;
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
      for (int64_t i = 0; i < n; ++i) po[i] = activation_grad<scalar_t, ACT>(pg[i], px[i], py[i]);
    });
  });
}

namespace {

// Drops size-1 dims and merges neighbours that both operands walk alike (stride of the
// outer = stride of the inner x its size, for a and for b), so that a [N, C, H, W] x
// [N, C, 1, 1] product runs N C rows of H W elements rather than N C H rows of W.
void coalesce(Shape& shape, Shape& sa, Shape& sb) {
  Shape s2, a2, b2;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!s2.empty() && a2.back() == sa[d] * shape[d] && b2.back() == sb[d] * shape[d]) {
      s2.back() *= shape[d];
      a2.back() = sa[d];
      b2.back() = sb[d];
    } else {
      s2.push_back(shape[d]);
      a2.push_back(sa[d]);
      b2.push_back(sb[d]);
    }
  }
  if (s2.empty()) s2 = a2 = b2 = Shape{1};  // all dims of size 1: one element
  shape = s2, sa = a2, sb = b2;
}

}  // namespace

void binary_forward(Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op) {
  // A 0-d result is walked as one row of one element.
  Shape shape = out.dim() == 0 ? Shape{1} : out.shape();
  Shape sa = broadcast_strides(a.shape(), shape);
  Shape sb = broadcast_strides(b.shape(), shape);
  coalesce(shape, sa, sb);
  dispatch_float(out.dtype(), "binary_forward", [&]<typename scalar_t>() {
    binary_dispatch<scalar_t>(op, out.data<scalar_t>(), a.data<scalar_t>(), b.data<scalar_t>(), shape, sa,
                              sb);
  });
}

void axpby(Tensor& out, double alpha, const Tensor& a, double beta, const Tensor& b) {
  dispatch_float(out.dtype(), "axpby", [&]<typename scalar_t>() {
    const scalar_t* pa = a.data<scalar_t>();
    const scalar_t* pb = b.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const scalar_t al = static_cast<scalar_t>(alpha), be = static_cast<scalar_t>(beta);
    const int64_t n = out.numel();
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) po[i] = al * pa[i] + be * pb[i];
  });
}

void scale(Tensor& out, const Tensor& x, double alpha) {
  dispatch_float(out.dtype(), "scale", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    const scalar_t al = static_cast<scalar_t>(alpha);
    const int64_t n = out.numel();
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) po[i] = al * px[i];
  });
}

void where_forward(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_all(cond.dtype(), "where", [&]<typename cond_t>() {
    const cond_t* pc = cond.data<cond_t>();
    dispatch_float(out.dtype(), "where", [&]<typename scalar_t>() {
      const scalar_t* pa = a.data<scalar_t>();
      const scalar_t* pb = b.data<scalar_t>();
      scalar_t* po = out.data<scalar_t>();
      const int64_t n = out.numel();
      for (int64_t i = 0; i < n; ++i) po[i] = pc[i] != cond_t(0) ? pa[i] : pb[i];
    });
  });
}

void fill(Tensor& out, double value) {
  dispatch_all(out.dtype(), "fill", [&]<typename scalar_t>() {
    scalar_t* po = out.data<scalar_t>();
    const scalar_t v = static_cast<scalar_t>(value);
    if (out.is_contiguous()) {
      const int64_t n = out.numel();
      for (int64_t i = 0; i < n; ++i) po[i] = v;
    } else {
      for_each_offset(out.shape(), out.strides(), [&](int64_t, int64_t off) { po[off] = v; });
    }
  });
}

void copy(Tensor& out, const Tensor& src) {
  if (out.dtype() == src.dtype() && out.is_contiguous() && src.is_contiguous()) {
    std::memcpy(out.raw_data(), src.raw_data(), out.nbytes());
    return;
  }
  dispatch_all(out.dtype(), "copy", [&]<typename out_t>() {
    out_t* po = out.data<out_t>();
    dispatch_all(src.dtype(), "copy", [&]<typename scalar_t>() {
      const scalar_t* ps = src.data<scalar_t>();
      if (out.is_contiguous()) {
        for_each_offset(src.shape(), src.strides(),
                        [&](int64_t i, int64_t off) { po[i] = static_cast<out_t>(ps[off]); });
      } else {
        Shape src_strides = src.strides();
        // Walk the destination; find the source offset from the linear index.
        Shape shape = out.shape();
        for_each_offset(shape, out.strides(), [&](int64_t i, int64_t off) {
          int64_t rest = i, so = 0;
          for (size_t d = shape.size(); d-- > 0;) {
            so += (rest % shape[d]) * src_strides[d];
            rest /= shape[d];
          }
          po[off] = static_cast<out_t>(ps[so]);
        });
      }
    });
  });
}

void copy_between_devices(Tensor& out, const Tensor& src) {
  std::memcpy(out.raw_data(), src.raw_data(), out.nbytes());
}

}  // namespace ag::cpu
