// CPU batch normalisation over x viewed as [N, C, S], with an optional fused activation.
// OpenMP runs over channels for the statistics (each thread owns whole channels, so the
// per-channel sums need no reduction across threads) and over planes for elementwise
// passes. Sums are accumulated in double so float32 statistics over ~10^5 values stay
// accurate; the variance is taken around the mean (two passes, the second from cache).
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
inline T apply_act(T v, FusedAct act) {
  switch (act) {
    case FusedAct::none:
      return v;
    case FusedAct::relu:
      return v > T(0) ? v : T(0);
    case FusedAct::relu6:
      return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
  }
  return v;
}

// act'(.) read from the output y = act(.).
template <typename T>
inline T act_mask(T y, FusedAct act) {
  switch (act) {
    case FusedAct::none:
      return T(1);
    case FusedAct::relu:
      return y > T(0) ? T(1) : T(0);
    case FusedAct::relu6:
      return (y > T(0) && y < T(6)) ? T(1) : T(0);
  }
  return T(1);
}

// y = act(x * scale + shift) over one contiguous row, the activation a compile-time
// constant so the loop vectorises.
template <typename T, FusedAct A>
void affine_row(T* y, const T* x, int64_t len, T scale, T shift) {
  for (int64_t q = 0; q < len; ++q) y[q] = apply_act<T>(x[q] * scale + shift, A);
}

template <typename T>
void affine_row_act(T* y, const T* x, int64_t len, T scale, T shift, FusedAct act) {
  switch (act) {
    case FusedAct::none:
      return affine_row<T, FusedAct::none>(y, x, len, scale, shift);
    case FusedAct::relu:
      return affine_row<T, FusedAct::relu>(y, x, len, scale, shift);
    case FusedAct::relu6:
      return affine_row<T, FusedAct::relu6>(y, x, len, scale, shift);
  }
}

template <typename T>
T param_or(const Tensor& t, int64_t c, T fallback) {
  return t.defined() ? t.data<T>()[c] : fallback;
}

}  // namespace

void batch_norm_forward_train(Tensor& y, Tensor& mean, Tensor& invstd, Tensor& running_mean,
                              Tensor& running_var, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double momentum, double eps, FusedAct act) {
  const BnShape d(x);
  dispatch_float(x.dtype(), "batch_norm_forward_train", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold)
    for (int64_t c = 0; c < d.c; ++c) {
      double sum = 0;
      for (int64_t b = 0; b < d.n; ++b) {
        const scalar_t* row = px + (b * d.c + c) * d.s;
        scalar_t part = 0;
        for (int64_t q = 0; q < d.s; ++q) part += row[q];
        sum += part;
      }
      const double mu = sum / static_cast<double>(d.m());
      double sq = 0;
      for (int64_t b = 0; b < d.n; ++b) {
        const scalar_t* row = px + (b * d.c + c) * d.s;
        const scalar_t m = static_cast<scalar_t>(mu);
        scalar_t part = 0;
        for (int64_t q = 0; q < d.s; ++q) part += (row[q] - m) * (row[q] - m);
        sq += part;
      }
      const double var = sq / static_cast<double>(d.m());
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
                             const Tensor& gamma, const Tensor& beta, FusedAct act) {
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
                         const Tensor& gamma, bool training, FusedAct act) {
  const BnShape d(x);
  const bool need_sums = training || grad_gamma.defined() || grad_beta.defined();
  dispatch_float(x.dtype(), "batch_norm_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* pg = grad_y.data<scalar_t>();
    const scalar_t* py = act == FusedAct::none ? nullptr : y.data<scalar_t>();
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold)
    for (int64_t c = 0; c < d.c; ++c) {
      const scalar_t mu = mean.data<scalar_t>()[c], istd = invstd.data<scalar_t>()[c];
      double sum_dy = 0, sum_dy_xhat = 0;
      if (need_sums) {
        for (int64_t b = 0; b < d.n; ++b) {
          const int64_t base = (b * d.c + c) * d.s;
          scalar_t s1 = 0, s2 = 0;
          for (int64_t q = 0; q < d.s; ++q) {
            const scalar_t dy = py ? pg[base + q] * act_mask(py[base + q], act) : pg[base + q];
            s1 += dy;
            s2 += dy * (px[base + q] - mu);
          }
          sum_dy += s1;
          sum_dy_xhat += s2;
        }
        sum_dy_xhat *= istd;
      }
      if (grad_gamma.defined()) grad_gamma.data<scalar_t>()[c] = static_cast<scalar_t>(sum_dy_xhat);
      if (grad_beta.defined()) grad_beta.data<scalar_t>()[c] = static_cast<scalar_t>(sum_dy);
      if (!grad_x.defined()) continue;
      // training: dx = g istd (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = g istd dy.
      const scalar_t k = param_or<scalar_t>(gamma, c, 1) * istd;
      const scalar_t mdy = training ? static_cast<scalar_t>(sum_dy / d.m()) : 0;
      const scalar_t mdx = training ? static_cast<scalar_t>(sum_dy_xhat / d.m()) * istd : 0;
      scalar_t* pgx = grad_x.data<scalar_t>();
      for (int64_t b = 0; b < d.n; ++b) {
        const int64_t base = (b * d.c + c) * d.s;
        for (int64_t q = 0; q < d.s; ++q) {
          const scalar_t dy = py ? pg[base + q] * act_mask(py[base + q], act) : pg[base + q];
          pgx[base + q] = k * (dy - mdy - (px[base + q] - mu) * mdx);
        }
      }
    }
  });
}

void add_act_forward(Tensor& out, const Tensor& a, const Tensor& b, FusedAct act) {
  dispatch_float(out.dtype(), "add_act_forward", [&]<typename scalar_t>() {
    scalar_t* po = out.data<scalar_t>();
    const scalar_t* pa = a.data<scalar_t>();
    const scalar_t* pb = b.data<scalar_t>();
    const int64_t n = out.numel();
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) po[i] = apply_act<scalar_t>(pa[i] + pb[i], act);
  });
}

void act_backward_from_output(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, FusedAct act) {
  dispatch_float(grad_x.dtype(), "act_backward_from_output", [&]<typename scalar_t>() {
    scalar_t* pgx = grad_x.data<scalar_t>();
    const scalar_t* pg = grad_y.data<scalar_t>();
    const scalar_t* py = y.data<scalar_t>();
    const int64_t n = grad_x.numel();
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) pgx[i] = pg[i] * act_mask(py[i], act);
  });
}

}  // namespace ag::cpu
