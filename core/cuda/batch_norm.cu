// CUDA batch normalisation over x viewed as [N, C, S] with the fused activation, and the
// fused residual add: hand-written so the contract is exactly the CPU twin's
// (core/cpu/batch_norm.cpp): biased variance taken around the mean in double, running
// statistics updated with momentum and the unbiased variance, act' read from the output.
// Statistics: chunked per-channel sums in double (see channel_sums_kernel); everything
// elementwise (normalise, grad_x, eval, the residual add) runs over all elements at once.
#include <algorithm>

#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

struct BnShape {
  int64_t n, c, s;
  explicit BnShape(const Tensor& x)
      : n(x.size(0)), c(x.size(1)), s(x.dim() > 2 ? x.numel() / (x.size(0) * x.size(1)) : 1) {}
};

template <typename T>
__device__ T apply_act(T v, Activation act) {
  if (act == Activation::relu) return v > T(0) ? v : T(0);
  if (act == Activation::relu6) return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
  return v;
}

template <typename T>
__device__ T act_mask(T y, Activation act) {
  if (act == Activation::relu) return y > T(0) ? T(1) : T(0);
  if (act == Activation::relu6) return (y > T(0) && y < T(6)) ? T(1) : T(0);
  return T(1);
}

// Offset of the i-th value (0 <= i < n * s) of channel c.
__device__ inline int64_t bn_offset(int64_t i, int64_t c, int64_t channels, int64_t s) {
  return ((i / s) * channels + c) * s + i % s;
}

// The per-channel statistics run in three steps so that every SM has work even with few
// channels: channel_sums_kernel reduces a chunk of one channel per block (grid: chunks x
// channels) into double partial sums; a one-thread-per-channel kernel combines the chunks;
// an elementwise kernel applies the result. What each step sums:
enum class SumKind {
  x,            // s1 = x
  centered_sq,  // s1 = (x - mean)^2, mean from the previous step (taken around the mean, as on the CPU)
  backward,     // s1 = dy', s2 = dy' (x - mean), dy' = dy act'(y)
};

struct BnSumArgs {
  int64_t channels, s, m, chunks;
  Activation act;
};

template <typename T, SumKind K>
__global__ void channel_sums_kernel(double* part1, double* part2, const T* x, const T* g, const T* y,
                                    const double* mean_d, const T* mean_t, BnSumArgs a) {
  const int64_t chunk = blockIdx.x;
  // gridDim.y is at most 65535 (see channel_grid): with more channels a block takes every
  // gridDim.y-th one. c is uniform across the block, so its reductions never diverge.
  for (int64_t c = blockIdx.y; c < a.channels; c += gridDim.y) {
    const double mu = K == SumKind::centered_sq ? mean_d[c] : 0.0;
    const T mu_t = K == SumKind::backward ? mean_t[c] : T(0);
    double s1 = 0, s2 = 0;
    for (int64_t i = chunk * blockDim.x + threadIdx.x; i < a.m; i += a.chunks * blockDim.x) {
      const int64_t o = bn_offset(i, c, a.channels, a.s);
      if constexpr (K == SumKind::x) {
        s1 += static_cast<double>(x[o]);
      } else if constexpr (K == SumKind::centered_sq) {
        const double dev = static_cast<double>(x[o]) - mu;
        s1 += dev * dev;
      } else {
        const T dy = y ? g[o] * act_mask<T>(y[o], a.act) : g[o];
        s1 += static_cast<double>(dy);
        s2 += static_cast<double>(dy * (x[o] - mu_t));
      }
    }
    s1 = block_reduce(s1, SumOp{});
    if constexpr (K == SumKind::backward) s2 = block_reduce(s2, SumOp{});
    if (threadIdx.x == 0) {
      part1[c * a.chunks + chunk] = s1;
      if constexpr (K == SumKind::backward) part2[c * a.chunks + chunk] = s2;
    }
  }
}

// Combines the chunks of each channel: total[c] = sum_k part[c * chunks + k] (fixed order).
__device__ inline double chunk_total(const double* part, int64_t c, int64_t chunks) {
  double t = 0;
  for (int64_t k = 0; k < chunks; ++k) t += part[c * chunks + k];
  return t;
}

__global__ void bn_mean_kernel(double* mean_d, const double* part, int64_t channels, int64_t chunks,
                               int64_t m) {
  AG_GRID_STRIDE(c, channels) { mean_d[c] = chunk_total(part, c, chunks) / static_cast<double>(m); }
}

// Batch statistics, running-stat update and the per-channel affine (scale, shift) of the
// training forward.
template <typename T>
__global__ void bn_finish_train_kernel(T* scale, T* shift, T* mean, T* invstd, T* running_mean,
                                       T* running_var, const double* mean_d, const double* part,
                                       const T* gamma, const T* beta, int64_t channels, int64_t chunks,
                                       int64_t m, double momentum, double eps) {
  AG_GRID_STRIDE(c, channels) {
    const double mu = mean_d[c];
    const double var = chunk_total(part, c, chunks) / static_cast<double>(m);
    const double istd = 1.0 / sqrt(var + eps);
    mean[c] = static_cast<T>(mu);
    invstd[c] = static_cast<T>(istd);
    if (running_mean) running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mu);
    if (running_var) {
      const double unbiased = m > 1 ? var * m / (m - 1) : var;
      running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
    }
    const double sc = (gamma ? static_cast<double>(gamma[c]) : 1.0) * istd;
    scale[c] = static_cast<T>(sc);
    shift[c] = static_cast<T>((beta ? static_cast<double>(beta[c]) : 0.0) - mu * sc);
  }
}

// y = act(x * scale[c] + shift[c]).
template <typename T>
__global__ void bn_apply_kernel(T* y, const T* x, const T* scale, const T* shift, int64_t channels, int64_t s,
                                int64_t total, Activation act) {
  AG_GRID_STRIDE(i, total) {
    const int64_t c = (i / s) % channels;
    y[i] = apply_act<T>(x[i] * scale[c] + shift[c], act);
  }
}

template <typename T>
__global__ void bn_eval_kernel(T* y, const T* x, const T* mean, const T* invstd, const T* gamma,
                               const T* beta, int64_t channels, int64_t s, int64_t total, Activation act) {
  AG_GRID_STRIDE(i, total) {
    const int64_t c = (i / s) % channels;
    const T scale = (gamma ? gamma[c] : T(1)) * invstd[c];
    const T shift = (beta ? beta[c] : T(0)) - mean[c] * scale;
    y[i] = apply_act<T>(x[i] * scale + shift, act);
  }
}

// Parameter gradients and the per-channel coefficients of grad_x:
// gx = k (dy' - mdy - (x - mu) mdx), k = gamma istd (training: mdy = mean(dy'),
// mdx = mean(dy' xhat) istd; eval: both 0).
template <typename T>
__global__ void bn_finish_backward_kernel(T* k, T* mdy, T* mdx, T* gg, T* gb, const double* part1,
                                          const double* part2, const T* invstd, const T* gamma,
                                          int64_t channels, int64_t chunks, int64_t m, bool training) {
  AG_GRID_STRIDE(c, channels) {
    const T istd = invstd[c];
    const double sum_dy = chunk_total(part1, c, chunks);
    const double sum_dy_xhat = chunk_total(part2, c, chunks) * static_cast<double>(istd);
    if (gg) gg[c] = static_cast<T>(sum_dy_xhat);
    if (gb) gb[c] = static_cast<T>(sum_dy);
    k[c] = (gamma ? gamma[c] : T(1)) * istd;
    mdy[c] = training ? static_cast<T>(sum_dy / m) : T(0);
    mdx[c] = training ? static_cast<T>(sum_dy_xhat / m) * istd : T(0);
  }
}

template <typename T>
__global__ void bn_backward_apply_kernel(T* gx, const T* g, const T* x, const T* y, const T* mean, const T* k,
                                         const T* mdy, const T* mdx, int64_t channels, int64_t s,
                                         int64_t total, Activation act) {
  AG_GRID_STRIDE(i, total) {
    const int64_t c = (i / s) % channels;
    const T dy = y ? g[i] * act_mask<T>(y[i], act) : g[i];
    gx[i] = k[c] * (dy - mdy[c] - (x[i] - mean[c]) * mdx[c]);
  }
}

template <typename T>
__global__ void add_act_kernel(T* out, const T* a, const T* b, int64_t n, Activation act) {
  AG_GRID_STRIDE(i, n) { out[i] = apply_act<T>(a[i] + b[i], act); }
}

template <typename T>
__global__ void act_backward_kernel(T* gx, const T* g, const T* y, int64_t n, Activation act) {
  AG_GRID_STRIDE(i, n) { gx[i] = g[i] * act_mask<T>(y[i], act); }
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Blocks per channel for the statistics: about 4 blocks per SM over all channels, and
// no block with fewer than ~4 elements per thread.
int64_t chunks_for(const BnShape& d, const Launch& launch) {
  const int64_t want = (4 * static_cast<int64_t>(launch.sms) + d.c - 1) / d.c;
  const int64_t most = (d.n * d.s + 4 * kThreads - 1) / (4 * kThreads);
  return std::max<int64_t>(1, std::min<int64_t>({want, most, 65535}));
}

// The statistics grid: chunks x channels, the channels capped at gridDim.y's limit of
// 65535 (channel_sums_kernel loops over the rest; BatchNorm1d can have more features).
dim3 channel_grid(const BnSumArgs& a) {
  return dim3(static_cast<unsigned>(a.chunks), static_cast<unsigned>(std::min<int64_t>(a.channels, 65535)));
}

}  // namespace

void batch_norm_forward_train(Tensor& y, Tensor& mean, Tensor& invstd, Tensor& running_mean,
                              Tensor& running_var, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double momentum, double eps, Activation act) {
  const BnShape d(x);
  if (d.c == 0) return;
  Launch launch(y);
  const BnSumArgs args{d.c, d.s, d.n * d.s, chunks_for(d, launch), act};
  const dim3 grid = channel_grid(args);
  // Workspace: partial sums [C * chunks], the double means [C].
  Tensor ws = Tensor::empty({d.c * args.chunks + d.c}, DType::f64, x.device());
  double* part = ws.data<double>();
  double* mean_d = part + d.c * args.chunks;
  const unsigned per_channel = grid_for(d.c, launch);
  dispatch_float(x.dtype(), "batch_norm_forward_train", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    channel_sums_kernel<scalar_t, SumKind::x>
        <<<grid, kThreads, 0, launch.stream>>>(part, nullptr, px, nullptr, nullptr, nullptr, nullptr, args);
    AG_CUDA_CHECK_LAUNCH();
    bn_mean_kernel<<<per_channel, kThreads, 0, launch.stream>>>(mean_d, part, d.c, args.chunks, args.m);
    AG_CUDA_CHECK_LAUNCH();
    channel_sums_kernel<scalar_t, SumKind::centered_sq>
        <<<grid, kThreads, 0, launch.stream>>>(part, nullptr, px, nullptr, nullptr, mean_d, nullptr, args);
    AG_CUDA_CHECK_LAUNCH();
    Tensor affine = Tensor::empty({2, d.c}, x.dtype(), x.device());  // scale, shift
    scalar_t* scale = affine.data<scalar_t>();
    bn_finish_train_kernel<scalar_t><<<per_channel, kThreads, 0, launch.stream>>>(
        scale, scale + d.c, mean.data<scalar_t>(), invstd.data<scalar_t>(),
        ptr_or_null<scalar_t>(running_mean), ptr_or_null<scalar_t>(running_var), mean_d, part,
        ptr_or_null<scalar_t>(gamma), ptr_or_null<scalar_t>(beta), d.c, args.chunks, args.m, momentum, eps);
    AG_CUDA_CHECK_LAUNCH();
    const int64_t total = x.numel();
    if (total == 0) return;
    bn_apply_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        y.data<scalar_t>(), px, scale, scale + d.c, d.c, d.s, total, act);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void batch_norm_forward_eval(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                             const Tensor& gamma, const Tensor& beta, Activation act) {
  const BnShape d(x);
  const int64_t total = x.numel();
  if (total == 0) return;
  Launch launch(y);
  dispatch_float(x.dtype(), "batch_norm_forward_eval", [&]<typename scalar_t>() {
    bn_eval_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        y.data<scalar_t>(), x.data<scalar_t>(), mean.data<scalar_t>(), invstd.data<scalar_t>(),
        ptr_or_null<scalar_t>(gamma), ptr_or_null<scalar_t>(beta), d.c, d.s, total, act);
    AG_CUDA_CHECK_LAUNCH();
  });
}

// beta is not needed here: the activation's derivative is read from y.
void batch_norm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_y,
                         const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                         const Tensor& gamma, const Tensor& /*beta*/, bool training, Activation act) {
  const BnShape d(x);
  if (d.c == 0) return;
  Launch launch(x);  // grad_x may be undefined when only the parameters need gradients
  const BnSumArgs args{d.c, d.s, d.n * d.s, chunks_for(d, launch), act};
  const dim3 grid = channel_grid(args);
  Tensor ws = Tensor::empty({2 * d.c * args.chunks}, DType::f64, x.device());
  double* part1 = ws.data<double>();
  double* part2 = part1 + d.c * args.chunks;
  dispatch_float(x.dtype(), "batch_norm_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* pg = grad_y.data<scalar_t>();
    const scalar_t* py = act == Activation::none ? nullptr : y.data<scalar_t>();
    const scalar_t* pm = mean.data<scalar_t>();
    channel_sums_kernel<scalar_t, SumKind::backward>
        <<<grid, kThreads, 0, launch.stream>>>(part1, part2, px, pg, py, nullptr, pm, args);
    AG_CUDA_CHECK_LAUNCH();
    Tensor coef = Tensor::empty({3, d.c}, x.dtype(), x.device());  // k, mdy, mdx
    scalar_t* k = coef.data<scalar_t>();
    bn_finish_backward_kernel<scalar_t><<<grid_for(d.c, launch), kThreads, 0, launch.stream>>>(
        k, k + d.c, k + 2 * d.c, ptr_or_null<scalar_t>(grad_gamma), ptr_or_null<scalar_t>(grad_beta), part1,
        part2, invstd.data<scalar_t>(), ptr_or_null<scalar_t>(gamma), d.c, args.chunks, args.m, training);
    AG_CUDA_CHECK_LAUNCH();
    const int64_t total = x.numel();
    if (!grad_x.defined() || total == 0) return;
    bn_backward_apply_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        grad_x.data<scalar_t>(), pg, px, py, pm, k, k + d.c, k + 2 * d.c, d.c, d.s, total, act);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void add_act_forward(Tensor& out, const Tensor& a, const Tensor& b, Activation act) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_float(out.dtype(), "add_act_forward", [&]<typename scalar_t>() {
    add_act_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), a.data<scalar_t>(), b.data<scalar_t>(), n, act);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void act_backward_from_output(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, Activation act) {
  const int64_t n = grad_x.numel();
  if (n == 0) return;
  Launch launch(grad_x);
  dispatch_float(grad_x.dtype(), "act_backward_from_output", [&]<typename scalar_t>() {
    act_backward_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
        grad_x.data<scalar_t>(), grad_y.data<scalar_t>(), y.data<scalar_t>(), n, act);
    AG_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ag::cuda
