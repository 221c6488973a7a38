// CPU batch normalisation over x viewed as [N, C, S], with an optional fused activation,
// and the fused residual add. OpenMP runs over channels (each thread owns whole channels,
// so the per-channel sums need no reduction across threads); inner loops are
// `omp simd` reductions so they vectorise. Row sums are combined in double so float32
// statistics over ~10^5 values stay accurate; the variance is taken around the mean.
#include <cmath>

#include "core/cpu/strided.h"
#include "core/kernels.h"

namespace ag::cpu {

namespace {

struct BnShape {
  int64_t n, c, s;
  explicit BnShape(const Tensor& x)
      : n(x.size(0)), c(x.size(1)), s(x.dim() > 2 ? x.numel() / (x.size(0) * x.size(1)) : 1) {}
  int64_t m() const { return n * s; }  // values per channel
};

template <typename T>
inline T apply_act(T v, Activation act) {
  switch (act) {
    case Activation::none:
      return v;
    case Activation::relu:
      return v > T(0) ? v : T(0);
    case Activation::relu6:
      return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
    default:  // not fusable: rejected by the dispatch (core/kernels_nn.cpp)
      return v;
  }
}

// act'(.) read from the output y = act(.).
template <typename T>
inline T act_mask(T y, Activation act) {
  switch (act) {
    case Activation::none:
      return T(1);
    case Activation::relu:
      return y > T(0) ? T(1) : T(0);
    case Activation::relu6:
      return (y > T(0) && y < T(6)) ? T(1) : T(0);
    default:  // not fusable: rejected by the dispatch (core/kernels_nn.cpp)
      return T(1);
  }
}

// y = act(x * scale + shift) over one contiguous row, the activation a compile-time
// constant so the loop vectorises.
template <typename T, Activation A>
void affine_row(T* y, const T* x, int64_t len, T scale, T shift) {
  for (int64_t q = 0; q < len; ++q) y[q] = apply_act<T>(x[q] * scale + shift, A);
}

// The per-activation switches here are written out on purpose: dispatching through a
// generic lambda changed which products g++ fuses into FMAs (-ffp-contract=fast is its
// default) and with them the bits of a trained ResNet.
template <typename T>
void affine_row_act(T* y, const T* x, int64_t len, T scale, T shift, Activation act) {
  switch (act) {
    case Activation::none:
      return affine_row<T, Activation::none>(y, x, len, scale, shift);
    case Activation::relu:
      return affine_row<T, Activation::relu>(y, x, len, scale, shift);
    case Activation::relu6:
      return affine_row<T, Activation::relu6>(y, x, len, scale, shift);
    default:  // not fusable: rejected by the dispatch (core/kernels_nn.cpp)
      return;
  }
}

template <typename T>
T param_or(const Tensor& t, int64_t c, T fallback) {
  return t.defined() ? t.data<T>()[c] : fallback;
}

}  // namespace

namespace {

// Mean and sum of squared deviations of one channel (rows of s values, row stride
// stride), combined row by row with Chan et al.'s formula in double: one pass over
// memory (each row's second pass hits L1) and no E[x^2] - E[x]^2 cancellation.
template <typename T>
void channel_moments(const T* first, int64_t rows, int64_t s, int64_t stride, double& mean, double& m2) {
  mean = 0;
  m2 = 0;
  double count = 0;
  for (int64_t b = 0; b < rows; ++b) {
    const T* row = first + b * stride;
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t q = 0; q < s; ++q) sum += row[q];
    const T row_mean = sum / static_cast<T>(s);
    T dev = 0;
#pragma omp simd reduction(+ : dev)
    for (int64_t q = 0; q < s; ++q) dev += (row[q] - row_mean) * (row[q] - row_mean);
    const double n = static_cast<double>(s), delta = row_mean - mean, total = count + n;
    mean += delta * n / total;
    m2 += dev + delta * delta * count * n / total;
    count = total;
  }
}

// Per-channel sums of the backward pass: sum(dy') and sum(dy' (x - mu)), dy' = dy act'(y).
template <typename T, Activation A>
void backward_sums(const T* g, const T* x, const T* y, int64_t rows, int64_t s, int64_t stride, T mu,
                   double& sum_dy, double& sum_dy_x) {
  sum_dy = sum_dy_x = 0;
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t o = b * stride;
    T s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t q = 0; q < s; ++q) {
      const T dy = A == Activation::none ? g[o + q] : g[o + q] * act_mask<T>(y[o + q], A);
      s1 += dy;
      s2 += dy * (x[o + q] - mu);
    }
    sum_dy += s1;
    sum_dy_x += s2;
  }
}

// gx = k (dy' - mdy - (x - mu) mdx) for one channel.
template <typename T, Activation A>
void backward_dx(T* gx, const T* g, const T* x, const T* y, int64_t rows, int64_t s, int64_t stride, T mu,
                 T k, T mdy, T mdx) {
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t o = b * stride;
#pragma omp simd
    for (int64_t q = 0; q < s; ++q) {
      const T dy = A == Activation::none ? g[o + q] : g[o + q] * act_mask<T>(y[o + q], A);
      gx[o + q] = k * (dy - mdy - (x[o + q] - mu) * mdx);
    }
  }
}

template <typename T, Activation A>
void backward_channel(T* gx, T* gg, T* gb, const T* g, const T* x, const T* y, int64_t rows, int64_t s,
                      int64_t stride, T mu, T istd, T gamma, bool training, int64_t m) {
  double sum_dy = 0, sum_dy_x = 0;
  if (training || gg || gb) backward_sums<T, A>(g, x, y, rows, s, stride, mu, sum_dy, sum_dy_x);
  const double sum_dy_xhat = sum_dy_x * istd;
  if (gg) *gg = static_cast<T>(sum_dy_xhat);
  if (gb) *gb = static_cast<T>(sum_dy);
  if (!gx) return;
  // training: dx = g istd (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = g istd dy.
  const T mdy = training ? static_cast<T>(sum_dy / m) : 0;
  const T mdx = training ? static_cast<T>(sum_dy_xhat / m) * istd : 0;
  backward_dx<T, A>(gx, g, x, y, rows, s, stride, mu, gamma * istd, mdy, mdx);
}

}  // namespace

void batch_norm_forward_train(Tensor& y, Tensor& mean, Tensor& invstd, Tensor& running_mean,
                              Tensor& running_var, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double momentum, double eps, Activation act) {
  const BnShape d(x);
  dispatch_float(x.dtype(), "batch_norm_forward_train", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
#pragma omp parallel for schedule(dynamic, 1) if (x.numel() > kParallelThreshold)
    for (int64_t c = 0; c < d.c; ++c) {
      double mu, m2;
      channel_moments(px + c * d.s, d.n, d.s, d.c * d.s, mu, m2);
      const double var = m2 / static_cast<double>(d.m());
      const double istd = 1.0 / std::sqrt(var + eps);
      mean.data<scalar_t>()[c] = static_cast<scalar_t>(mu);
      invstd.data<scalar_t>()[c] = static_cast<scalar_t>(istd);
      if (running_mean.defined()) {
        scalar_t& rm = running_mean.data<scalar_t>()[c];
        rm = static_cast<scalar_t>((1 - momentum) * rm + momentum * mu);
      }
      if (running_var.defined()) {
        scalar_t& rv = running_var.data<scalar_t>()[c];
        const double unbiased = d.m() > 1 ? var * d.m() / (d.m() - 1) : var;
        rv = static_cast<scalar_t>((1 - momentum) * rv + momentum * unbiased);
      }
      const double scale = param_or<scalar_t>(gamma, c, 1) * istd;
      const double shift = param_or<scalar_t>(beta, c, 0) - mu * scale;
      for (int64_t b = 0; b < d.n; ++b)
        affine_row_act(py + (b * d.c + c) * d.s, px + (b * d.c + c) * d.s, d.s, static_cast<scalar_t>(scale),
                       static_cast<scalar_t>(shift), act);
    }
  });
}

void batch_norm_forward_eval(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                             const Tensor& gamma, const Tensor& beta, Activation act) {
  const BnShape d(x);
  dispatch_float(x.dtype(), "batch_norm_forward_eval", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    const scalar_t* pm = mean.data<scalar_t>();
    const scalar_t* pi = invstd.data<scalar_t>();
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold)
    for (int64_t idx = 0; idx < d.n * d.c; ++idx) {
      const int64_t c = idx % d.c;
      const scalar_t scale = param_or<scalar_t>(gamma, c, 1) * pi[c];
      const scalar_t shift = param_or<scalar_t>(beta, c, 0) - pm[c] * scale;
      affine_row_act(py + idx * d.s, px + idx * d.s, d.s, scale, shift, act);
    }
  });
}

void batch_norm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_y,
                         const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                         const Tensor& gamma, bool training, Activation act) {
  const BnShape d(x);
  dispatch_float(x.dtype(), "batch_norm_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* pg = grad_y.data<scalar_t>();
    const scalar_t* py = act == Activation::none ? nullptr : y.data<scalar_t>();
    scalar_t* pgx = grad_x.defined() ? grad_x.data<scalar_t>() : nullptr;
    scalar_t* pgg = grad_gamma.defined() ? grad_gamma.data<scalar_t>() : nullptr;
    scalar_t* pgb = grad_beta.defined() ? grad_beta.data<scalar_t>() : nullptr;
#pragma omp parallel for schedule(dynamic, 1) if (x.numel() > kParallelThreshold)
    for (int64_t c = 0; c < d.c; ++c) {
      const int64_t o = c * d.s, stride = d.c * d.s;
      const scalar_t mu = mean.data<scalar_t>()[c], istd = invstd.data<scalar_t>()[c];
      const scalar_t gm = param_or<scalar_t>(gamma, c, 1);
      scalar_t* gx = pgx ? pgx + o : nullptr;
      scalar_t* gg = pgg ? pgg + c : nullptr;
      scalar_t* gb = pgb ? pgb + c : nullptr;
      const scalar_t* yc = py ? py + o : nullptr;
      switch (act) {
        case Activation::none:
          backward_channel<scalar_t, Activation::none>(gx, gg, gb, pg + o, px + o, yc, d.n, d.s, stride, mu,
                                                       istd, gm, training, d.m());
          break;
        case Activation::relu:
          backward_channel<scalar_t, Activation::relu>(gx, gg, gb, pg + o, px + o, yc, d.n, d.s, stride, mu,
                                                       istd, gm, training, d.m());
          break;
        case Activation::relu6:
          backward_channel<scalar_t, Activation::relu6>(gx, gg, gb, pg + o, px + o, yc, d.n, d.s, stride, mu,
                                                        istd, gm, training, d.m());
          break;
        default:  // not fusable: rejected by the dispatch (core/kernels_nn.cpp)
          break;
      }
    }
  });
}

namespace {
template <typename T, Activation A>
void add_act_loop(T* out, const T* a, const T* b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = apply_act<T>(a[i] + b[i], A);
}
template <typename T, Activation A>
void act_backward_loop(T* gx, const T* g, const T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) gx[i] = g[i] * act_mask<T>(y[i], A);
}
}  // namespace

void add_act_forward(Tensor& out, const Tensor& a, const Tensor& b, Activation act) {
  dispatch_float(out.dtype(), "add_act_forward", [&]<typename scalar_t>() {
    scalar_t* po = out.data<scalar_t>();
    const scalar_t* pa = a.data<scalar_t>();
    const scalar_t* pb = b.data<scalar_t>();
    switch (act) {
      case Activation::none:
        return add_act_loop<scalar_t, Activation::none>(po, pa, pb, out.numel());
      case Activation::relu:
        return add_act_loop<scalar_t, Activation::relu>(po, pa, pb, out.numel());
      case Activation::relu6:
        return add_act_loop<scalar_t, Activation::relu6>(po, pa, pb, out.numel());
      default:  // not fusable: rejected by the dispatch (core/kernels_nn.cpp)
        return;
    }
  });
}

void act_backward_from_output(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, Activation act) {
  dispatch_float(grad_x.dtype(), "act_backward_from_output", [&]<typename scalar_t>() {
    scalar_t* pgx = grad_x.data<scalar_t>();
    const scalar_t* pg = grad_y.data<scalar_t>();
    const scalar_t* py = y.data<scalar_t>();
    switch (act) {
      case Activation::none:
        return act_backward_loop<scalar_t, Activation::none>(pgx, pg, py, grad_x.numel());
      case Activation::relu:
        return act_backward_loop<scalar_t, Activation::relu>(pgx, pg, py, grad_x.numel());
      case Activation::relu6:
        return act_backward_loop<scalar_t, Activation::relu6>(pgx, pg, py, grad_x.numel());
      default:  // not fusable: rejected by the dispatch (core/kernels_nn.cpp)
        return;
    }
  });
}

}  // namespace ag::cpu
