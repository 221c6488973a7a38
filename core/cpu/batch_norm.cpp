// CPU batch normalisation over x viewed as [N, C, S], with an optional fused activation,
// and the fused residual add. OpenMP runs over channels (each thread owns whole channels,
// so the per-channel sums need no reduction across threads); inner loops are
// `omp simd` reductions so they vectorise. Row sums are combined in double so float32
// statistics over ~10^5 values stay accurate; the variance is taken around the mean.
#include <omp.h>

#include <cmath>
#include <vector>

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

// The gradient g passed back through the activation, whose derivative is read from its
// output y = act(v): g where the activation passes values through, else 0. For ReLU and
// ReLU6 the same test on the input v gives the same answer (y > 0 iff v > 0; 0 < y < 6
// iff 0 < v < 6), so the batch-norm backward passes v, recomputed from x. A select, not
// g * (0 or 1): GCC 12 vectorises the select for AVX2 but left the product's loops scalar
// (batch norm's backward on ResNet-20 ran at a fifth of the copy bandwidth on an AVX2
// EPYC); and an infinite g where ReLU blocked it gives 0, not NaN, as in PyTorch.
template <typename T, Activation A>
inline T act_grad(T g, T y) {
  if constexpr (A == Activation::relu) return y > T(0) ? g : T(0);
  if constexpr (A == Activation::relu6) return ((y > T(0)) & (y < T(6))) ? g : T(0);
  return g;  // none, and the activations the dispatch never fuses (core/kernels_nn.cpp)
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

// Channel c's affine map y = act(x scale + shift), from its stored mean and 1 / std (the
// statistics rounded to T): the one formula of every forward pass and of the backward,
// which recomputes the activation's input v = x scale + shift (the same expression, so the
// same rounding and FMA contraction) rather than read the forward's output y: a tensor
// fewer to stream in both of its passes.
template <typename T>
struct Affine {
  T scale, shift;
};
template <typename T>
Affine<T> channel_affine(T mean, T invstd, const Tensor& gamma, const Tensor& beta, int64_t c) {
  const double scale = static_cast<double>(param_or<T>(gamma, c, 1)) * static_cast<double>(invstd);
  return {static_cast<T>(scale),
          static_cast<T>(static_cast<double>(param_or<T>(beta, c, 0)) - static_cast<double>(mean) * scale)};
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

// Per-channel sums of the backward pass: sum(dy') and sum(dy' (x - mu)), dy' = dy act'(v),
// v = x af.scale + af.shift the activation's input.
template <typename T, Activation A>
void backward_sums(const T* g, const T* x, int64_t rows, int64_t s, int64_t stride, T mu, Affine<T> af,
                   double& sum_dy, double& sum_dy_x) {
  sum_dy = sum_dy_x = 0;
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t o = b * stride;
    T s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t q = 0; q < s; ++q) {
      const T dy =
          A == Activation::none ? g[o + q] : act_grad<T, A>(g[o + q], x[o + q] * af.scale + af.shift);
      s1 += dy;
      s2 += dy * (x[o + q] - mu);
    }
    sum_dy += s1;
    sum_dy_x += s2;
  }
}

// gx = k (dy' - mdy - (x - mu) mdx) for one channel.
template <typename T, Activation A>
void backward_dx(T* gx, const T* g, const T* x, int64_t rows, int64_t s, int64_t stride, T mu, Affine<T> af,
                 T k, T mdy, T mdx) {
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t o = b * stride;
#pragma omp simd
    for (int64_t q = 0; q < s; ++q) {
      const T dy =
          A == Activation::none ? g[o + q] : act_grad<T, A>(g[o + q], x[o + q] * af.scale + af.shift);
      gx[o + q] = k * (dy - mdy - (x[o + q] - mu) * mdx);
    }
  }
}

template <typename T, Activation A>
void backward_channel(T* gx, T* gg, T* gb, const T* g, const T* x, int64_t rows, int64_t s, int64_t stride,
                      T mu, T istd, T gamma, Affine<T> af, bool training, int64_t m) {
  double sum_dy = 0, sum_dy_x = 0;
  if (training || gg || gb) backward_sums<T, A>(g, x, rows, s, stride, mu, af, sum_dy, sum_dy_x);
  const double sum_dy_xhat = sum_dy_x * istd;
  if (gg) *gg = static_cast<T>(sum_dy_xhat);
  if (gb) *gb = static_cast<T>(sum_dy);
  if (!gx) return;
  // training: dx = g istd (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = g istd dy.
  const T mdy = training ? static_cast<T>(sum_dy / m) : 0;
  const T mdx = training ? static_cast<T>(sum_dy_xhat / m) * istd : 0;
  backward_dx<T, A>(gx, g, x, rows, s, stride, mu, af, gamma * istd, mdy, mdx);
}

}  // namespace

namespace {

// Channel c's statistics from its mean and sum of squared deviations: stores the batch
// mean and 1 / std, updates the running averages (unbiased variance), and returns the
// affine map y = x scale + shift that normalises it (channel_affine of the stored values).
template <typename T>
Affine<T> finish_channel(int64_t c, double mu, double m2, const BnShape& d, Tensor& mean, Tensor& invstd,
                         Tensor& running_mean, Tensor& running_var, const Tensor& gamma, const Tensor& beta,
                         double momentum, double eps) {
  const double var = m2 / static_cast<double>(d.m());
  const double istd = 1.0 / std::sqrt(var + eps);
  mean.data<T>()[c] = static_cast<T>(mu);
  invstd.data<T>()[c] = static_cast<T>(istd);
  if (running_mean.defined()) {
    T& rm = running_mean.data<T>()[c];
    rm = static_cast<T>((1 - momentum) * rm + momentum * mu);
  }
  if (running_var.defined()) {
    T& rv = running_var.data<T>()[c];
    const double unbiased = d.m() > 1 ? var * d.m() / (d.m() - 1) : var;
    rv = static_cast<T>((1 - momentum) * rv + momentum * unbiased);
  }
  return channel_affine<T>(mean.data<T>()[c], invstd.data<T>()[c], gamma, beta, c);
}

// ---- small planes ----
// Planes of at most kSmallPlane values (EfficientNet's and MobileNetV2's 4x4, 2x2 and 1x1
// stages): a (sample, channel) row of 1-64 values is too short to loop over on its own
// (a 2x2 batch norm ran at 4-9% of the copy bandwidth that way). Each thread takes a
// block of channels [c0, c1) and walks the samples: a sample's block is one contiguous
// run of (c1 - c0) S values, summed into per-position double accumulators that are
// folded into per-channel sums at the end. Position j of a run is channel c0 + j / S.
constexpr int64_t kSmallPlane = 64;

// f(c0, c1) on every thread for its block of channels.
template <typename F>
void for_channel_blocks(const BnShape& d, bool parallel, F&& f) {
#pragma omp parallel if (parallel)
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t c0 = d.c * t / nt, c1 = d.c * (t + 1) / nt;
    if (c0 < c1) f(c0, c1);
  }
}

// out[c - c0] = sum over samples n and positions j of the run of value(i, j), i the
// element's index in the tensor; acc is scratch.
template <typename V>
void block_sums(const BnShape& d, int64_t c0, int64_t c1, V&& value, std::vector<double>& acc, double* out) {
  const int64_t len = (c1 - c0) * d.s;
  acc.assign(static_cast<size_t>(len), 0.0);
  for (int64_t n = 0; n < d.n; ++n) {
    const int64_t base = (n * d.c + c0) * d.s;
    for (int64_t j = 0; j < len; ++j) acc[static_cast<size_t>(j)] += value(base + j, j);
  }
  for (int64_t c = 0; c < c1 - c0; ++c) {
    double sum = 0;
    for (int64_t q = 0; q < d.s; ++q) sum += acc[static_cast<size_t>(c * d.s + q)];
    out[c] = sum;
  }
}

// v[j] = per_channel[j / s] for the positions of a run.
template <typename T, typename U>
std::vector<T> expand(const std::vector<U>& per_channel, int64_t s) {
  std::vector<T> v(per_channel.size() * static_cast<size_t>(s));
  for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<T>(per_channel[j / static_cast<size_t>(s)]);
  return v;
}

// y = act(x scale[j] + shift[j]) over one run.
template <typename T, Activation A>
void affine_run(T* y, const T* x, int64_t len, const T* scale, const T* shift) {
  for (int64_t j = 0; j < len; ++j) y[j] = apply_act<T>(x[j] * scale[j] + shift[j], A);
}

template <typename T>
void forward_train_small(T* py, const T* px, const BnShape& d, Tensor& mean, Tensor& invstd,
                         Tensor& running_mean, Tensor& running_var, const Tensor& gamma, const Tensor& beta,
                         double momentum, double eps, Activation act, bool parallel) {
  for_channel_blocks(d, parallel, [&](int64_t c0, int64_t c1) {
    const size_t nc = static_cast<size_t>(c1 - c0);
    const int64_t len = (c1 - c0) * d.s;
    std::vector<double> acc, mu(nc), m2(nc);
    block_sums(
        d, c0, c1, [&](int64_t i, int64_t) { return static_cast<double>(px[i]); }, acc, mu.data());
    for (double& v : mu) v /= static_cast<double>(d.m());
    const std::vector<double> mu_run = expand<double>(mu, d.s);
    block_sums(
        d, c0, c1,
        [&](int64_t i, int64_t j) {
          const double e = px[i] - mu_run[static_cast<size_t>(j)];
          return e * e;
        },
        acc, m2.data());
    std::vector<double> scale(nc), shift(nc);
    for (size_t c = 0; c < nc; ++c) {
      const Affine<T> map = finish_channel<T>(c0 + static_cast<int64_t>(c), mu[c], m2[c], d, mean, invstd,
                                              running_mean, running_var, gamma, beta, momentum, eps);
      scale[c] = map.scale;
      shift[c] = map.shift;
    }
    const std::vector<T> scale_run = expand<T>(scale, d.s), shift_run = expand<T>(shift, d.s);
    with_activation(act, [&]<Activation A>() {
      if constexpr (A == Activation::none || A == Activation::relu || A == Activation::relu6)
        for (int64_t n = 0; n < d.n; ++n) {
          const int64_t base = (n * d.c + c0) * d.s;
          affine_run<T, A>(py + base, px + base, len, scale_run.data(), shift_run.data());
        }
    });
  });
}

// The backward of one channel block: the sums of backward_sums, then gx as backward_dx,
// with per-position copies of the channels' constants. The loops over a run are written
// out with `omp simd`, the activation's select apart from the double sums: GCC 12 left a
// select feeding a conversion to double scalar ("control flow in loop"), and this backward
// ran at a tenth of the copy bandwidth on an AVX2 EPYC (MobileNetV2's 8x8 and 4x4 stages).
template <typename T, Activation A>
void backward_small(T* pgx, T* pgg, T* pgb, const T* pg, const T* px, const BnShape& d, const T* mean,
                    const T* invstd, const Tensor& gamma, const Tensor& beta, bool training, int64_t c0,
                    int64_t c1) {
  const size_t nc = static_cast<size_t>(c1 - c0);
  const int64_t len = (c1 - c0) * d.s;
  std::vector<double> mu(nc), scale(nc), shift(nc);
  for (size_t c = 0; c < nc; ++c) {
    const int64_t ch = c0 + static_cast<int64_t>(c);
    mu[c] = mean[ch];
    const Affine<T> af = channel_affine<T>(mean[ch], invstd[ch], gamma, beta, ch);
    scale[c] = af.scale;
    shift[c] = af.shift;
  }
  const std::vector<T> mu_run = expand<T>(mu, d.s), scale_run = expand<T>(scale, d.s),
                       shift_run = expand<T>(shift, d.s);
  const T *mr = mu_run.data(), *sr = scale_run.data(), *hr = shift_run.data();
  std::vector<double> sum_dy(nc, 0.0), sum_dy_x(nc, 0.0);
  if (training || pgg || pgb) {
    // per position of the run, summed over the samples: dy' and dy' (x - mu)
    std::vector<double> acc_dy(static_cast<size_t>(len), 0.0), acc_dy_x(static_cast<size_t>(len), 0.0);
    std::vector<T> dy_run(static_cast<size_t>(len)), dy_x_run(static_cast<size_t>(len));
    double* a1 = acc_dy.data();
    double* a2 = acc_dy_x.data();
    T* t1 = dy_run.data();
    T* t2 = dy_x_run.data();
    for (int64_t n = 0; n < d.n; ++n) {
      const int64_t base = (n * d.c + c0) * d.s;
      const T *g = pg + base, *x = px + base;
      // in T first: a select feeding a conversion to double is "control flow" to GCC 12
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const T dy = A == Activation::none ? g[j] : act_grad<T, A>(g[j], x[j] * sr[j] + hr[j]);
        t1[j] = dy;
        t2[j] = dy * (x[j] - mr[j]);
      }
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        a1[j] += static_cast<double>(t1[j]);
        a2[j] += static_cast<double>(t2[j]);
      }
    }
    for (size_t c = 0; c < nc; ++c)
      for (int64_t q = 0; q < d.s; ++q) {
        sum_dy[c] += a1[c * static_cast<size_t>(d.s) + static_cast<size_t>(q)];
        sum_dy_x[c] += a2[c * static_cast<size_t>(d.s) + static_cast<size_t>(q)];
      }
  }
  std::vector<double> k(nc), mdy(nc), mdx(nc);
  for (size_t c = 0; c < nc; ++c) {
    const int64_t ch = c0 + static_cast<int64_t>(c);
    const T istd = invstd[ch];
    const double sum_dy_xhat = sum_dy_x[c] * istd;
    if (pgg) pgg[ch] = static_cast<T>(sum_dy_xhat);
    if (pgb) pgb[ch] = static_cast<T>(sum_dy[c]);
    k[c] = param_or<T>(gamma, ch, 1) * istd;
    mdy[c] = training ? static_cast<T>(sum_dy[c] / d.m()) : 0;
    mdx[c] = training ? static_cast<T>(sum_dy_xhat / d.m()) * istd : 0;
  }
  if (!pgx) return;
  const std::vector<T> k_run = expand<T>(k, d.s), mdy_run = expand<T>(mdy, d.s),
                       mdx_run = expand<T>(mdx, d.s);
  const T *kr = k_run.data(), *mdyr = mdy_run.data(), *mdxr = mdx_run.data();
  for (int64_t n = 0; n < d.n; ++n) {
    const int64_t base = (n * d.c + c0) * d.s;
    const T *g = pg + base, *x = px + base;
    T* gx = pgx + base;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const T dy = A == Activation::none ? g[j] : act_grad<T, A>(g[j], x[j] * sr[j] + hr[j]);
      gx[j] = kr[j] * (dy - mdyr[j] - (x[j] - mr[j]) * mdxr[j]);
    }
  }
}

}  // namespace

void batch_norm_forward_train(Tensor& y, Tensor& mean, Tensor& invstd, Tensor& running_mean,
                              Tensor& running_var, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double momentum, double eps, Activation act) {
  const BnShape d(x);
  dispatch_float(x.dtype(), "batch_norm_forward_train", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    const bool parallel = x.numel() > kParallelThreshold;
    if (d.s <= kSmallPlane)
      return forward_train_small<scalar_t>(py, px, d, mean, invstd, running_mean, running_var, gamma, beta,
                                           momentum, eps, act, parallel);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int64_t c = 0; c < d.c; ++c) {
      double mu, m2;
      channel_moments(px + c * d.s, d.n, d.s, d.c * d.s, mu, m2);
      const Affine<scalar_t> map = finish_channel<scalar_t>(c, mu, m2, d, mean, invstd, running_mean,
                                                            running_var, gamma, beta, momentum, eps);
      for (int64_t b = 0; b < d.n; ++b)
        affine_row_act(py + (b * d.c + c) * d.s, px + (b * d.c + c) * d.s, d.s, map.scale, map.shift, act);
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
    if (d.s <= kSmallPlane) {  // a sample at a time (see "small planes" above)
      std::vector<scalar_t> scale(static_cast<size_t>(d.c)), shift(static_cast<size_t>(d.c));
      for (int64_t c = 0; c < d.c; ++c) {
        const Affine<scalar_t> af = channel_affine<scalar_t>(pm[c], pi[c], gamma, beta, c);
        scale[static_cast<size_t>(c)] = af.scale;
        shift[static_cast<size_t>(c)] = af.shift;
      }
      const std::vector<scalar_t> scale_run = expand<scalar_t>(scale, d.s),
                                  shift_run = expand<scalar_t>(shift, d.s);
      with_activation(act, [&]<Activation A>() {
        if constexpr (A == Activation::none || A == Activation::relu || A == Activation::relu6) {
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold)
          for (int64_t n = 0; n < d.n; ++n)
            affine_run<scalar_t, A>(py + n * d.c * d.s, px + n * d.c * d.s, d.c * d.s, scale_run.data(),
                                    shift_run.data());
        }
      });
      return;
    }
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold)
    for (int64_t idx = 0; idx < d.n * d.c; ++idx) {
      const int64_t c = idx % d.c;
      const Affine<scalar_t> af = channel_affine<scalar_t>(pm[c], pi[c], gamma, beta, c);
      affine_row_act(py + idx * d.s, px + idx * d.s, d.s, af.scale, af.shift, act);
    }
  });
}

// y is not read: the activation's derivative comes from its input, recomputed from x
// (channel_affine).
void batch_norm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_y,
                         const Tensor& x, const Tensor& /*y*/, const Tensor& mean, const Tensor& invstd,
                         const Tensor& gamma, const Tensor& beta, bool training, Activation act) {
  const BnShape d(x);
  dispatch_float(x.dtype(), "batch_norm_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* pg = grad_y.data<scalar_t>();
    scalar_t* pgx = grad_x.defined() ? grad_x.data<scalar_t>() : nullptr;
    scalar_t* pgg = grad_gamma.defined() ? grad_gamma.data<scalar_t>() : nullptr;
    scalar_t* pgb = grad_beta.defined() ? grad_beta.data<scalar_t>() : nullptr;
    const bool parallel = x.numel() > kParallelThreshold;
    if (d.s <= kSmallPlane) {
      const scalar_t* pm = mean.data<scalar_t>();
      const scalar_t* pi = invstd.data<scalar_t>();
      for_channel_blocks(d, parallel, [&](int64_t c0, int64_t c1) {
        with_activation(act, [&]<Activation A>() {
          if constexpr (A == Activation::none || A == Activation::relu || A == Activation::relu6)
            backward_small<scalar_t, A>(pgx, pgg, pgb, pg, px, d, pm, pi, gamma, beta, training, c0, c1);
        });
      });
      return;
    }
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int64_t c = 0; c < d.c; ++c) {
      const int64_t o = c * d.s, stride = d.c * d.s;
      const scalar_t mu = mean.data<scalar_t>()[c], istd = invstd.data<scalar_t>()[c];
      const scalar_t gm = param_or<scalar_t>(gamma, c, 1);
      const Affine<scalar_t> af = channel_affine<scalar_t>(mu, istd, gamma, beta, c);
      scalar_t* gx = pgx ? pgx + o : nullptr;
      scalar_t* gg = pgg ? pgg + c : nullptr;
      scalar_t* gb = pgb ? pgb + c : nullptr;
      switch (act) {
        case Activation::none:
          backward_channel<scalar_t, Activation::none>(gx, gg, gb, pg + o, px + o, d.n, d.s, stride, mu, istd,
                                                       gm, af, training, d.m());
          break;
        case Activation::relu:
          backward_channel<scalar_t, Activation::relu>(gx, gg, gb, pg + o, px + o, d.n, d.s, stride, mu, istd,
                                                       gm, af, training, d.m());
          break;
        case Activation::relu6:
          backward_channel<scalar_t, Activation::relu6>(gx, gg, gb, pg + o, px + o, d.n, d.s, stride, mu,
                                                        istd, gm, af, training, d.m());
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
  for (int64_t i = 0; i < n; ++i) gx[i] = act_grad<T, A>(g[i], y[i]);
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
