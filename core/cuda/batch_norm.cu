// CUDA batch normalisation over x viewed as [N, C, S] with the fused activation, and the
// fused residual add: hand-written so the contract is exactly the CPU twin's
// (core/cpu/batch_norm.cpp): biased variance taken around the mean in double, running
// statistics updated with momentum and the unbiased variance, act' read from the output.
// One block per channel for the statistics (block_reduce in double); elementwise kernels
// for eval and the residual add.
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
__device__ T apply_act(T v, FusedAct act) {
  if (act == FusedAct::relu) return v > T(0) ? v : T(0);
  if (act == FusedAct::relu6) return v < T(0) ? T(0) : (v > T(6) ? T(6) : v);
  return v;
}

template <typename T>
__device__ T act_mask(T y, FusedAct act) {
  if (act == FusedAct::relu) return y > T(0) ? T(1) : T(0);
  if (act == FusedAct::relu6) return (y > T(0) && y < T(6)) ? T(1) : T(0);
  return T(1);
}

// Offset of the i-th value (0 <= i < n * s) of channel c.
__device__ inline int64_t bn_offset(int64_t i, int64_t c, int64_t channels, int64_t s) {
  return ((i / s) * channels + c) * s + i % s;
}

template <typename T>
__global__ void bn_train_kernel(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x,
                                const T* gamma, const T* beta, int64_t n, int64_t channels, int64_t s,
                                double momentum, double eps, FusedAct act) {
  const int64_t m = n * s;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    double sum = 0;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x)
      sum += static_cast<double>(x[bn_offset(i, c, channels, s)]);
    const double mu = block_reduce(sum, SumOp{}) / static_cast<double>(m);
    double dev = 0;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
      const double d = static_cast<double>(x[bn_offset(i, c, channels, s)]) - mu;
      dev += d * d;
    }
    const double var = block_reduce(dev, SumOp{}) / static_cast<double>(m);
    const double istd = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      mean[c] = static_cast<T>(mu);
      invstd[c] = static_cast<T>(istd);
      if (running_mean) running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mu);
      if (running_var) {
        const double unbiased = m > 1 ? var * m / (m - 1) : var;
        running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
      }
    }
    const double scale = (gamma ? static_cast<double>(gamma[c]) : 1.0) * istd;
    const T tscale = static_cast<T>(scale);
    const T tshift = static_cast<T>((beta ? static_cast<double>(beta[c]) : 0.0) - mu * scale);
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
      const int64_t o = bn_offset(i, c, channels, s);
      y[o] = apply_act<T>(x[o] * tscale + tshift, act);
    }
  }
}

template <typename T>
__global__ void bn_eval_kernel(T* y, const T* x, const T* mean, const T* invstd, const T* gamma,
                               const T* beta, int64_t channels, int64_t s, int64_t total, FusedAct act) {
  AG_GRID_STRIDE(i, total) {
    const int64_t c = (i / s) % channels;
    const T scale = (gamma ? gamma[c] : T(1)) * invstd[c];
    const T shift = (beta ? beta[c] : T(0)) - mean[c] * scale;
    y[i] = apply_act<T>(x[i] * scale + shift, act);
  }
}

struct BnBackwardArgs {
  int64_t n, channels, s;
  bool training;
  FusedAct act;
};

template <typename T>
__global__ void bn_backward_kernel(T* gx, T* gg, T* gb, const T* g, const T* x, const T* y, const T* mean,
                                   const T* invstd, const T* gamma, BnBackwardArgs a) {
  const int64_t m = a.n * a.s;
  for (int64_t c = blockIdx.x; c < a.channels; c += gridDim.x) {
    const T mu = mean[c], istd = invstd[c];
    double sum_dy = 0, sum_dy_x = 0;
    if (a.training || gg || gb) {
      for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
        const int64_t o = bn_offset(i, c, a.channels, a.s);
        const T dy = y ? g[o] * act_mask<T>(y[o], a.act) : g[o];
        sum_dy += static_cast<double>(dy);
        sum_dy_x += static_cast<double>(dy * (x[o] - mu));
      }
      sum_dy = block_reduce(sum_dy, SumOp{});
      sum_dy_x = block_reduce(sum_dy_x, SumOp{});
    }
    const double sum_dy_xhat = sum_dy_x * static_cast<double>(istd);
    if (threadIdx.x == 0) {
      if (gg) gg[c] = static_cast<T>(sum_dy_xhat);
      if (gb) gb[c] = static_cast<T>(sum_dy);
    }
    if (!gx) continue;
    // training: dx = g istd (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = g istd dy.
    const T mdy = a.training ? static_cast<T>(sum_dy / m) : T(0);
    const T mdx = a.training ? static_cast<T>(sum_dy_xhat / m) * istd : T(0);
    const T k = (gamma ? gamma[c] : T(1)) * istd;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
      const int64_t o = bn_offset(i, c, a.channels, a.s);
      const T dy = y ? g[o] * act_mask<T>(y[o], a.act) : g[o];
      gx[o] = k * (dy - mdy - (x[o] - mu) * mdx);
    }
  }
}

template <typename T>
__global__ void add_act_kernel(T* out, const T* a, const T* b, int64_t n, FusedAct act) {
  AG_GRID_STRIDE(i, n) { out[i] = apply_act<T>(a[i] + b[i], act); }
}

template <typename T>
__global__ void act_backward_kernel(T* gx, const T* g, const T* y, int64_t n, FusedAct act) {
  AG_GRID_STRIDE(i, n) { gx[i] = g[i] * act_mask<T>(y[i], act); }
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

unsigned channel_grid(int64_t channels) {
  return static_cast<unsigned>(channels < 65535 ? (channels < 1 ? 1 : channels) : 65535);
}

}  // namespace

void batch_norm_forward_train(Tensor& y, Tensor& mean, Tensor& invstd, Tensor& running_mean,
                              Tensor& running_var, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double momentum, double eps, FusedAct act) {
  const BnShape d(x);
  if (d.c == 0) return;
  Launch launch(y);
  dispatch_float(x.dtype(), "batch_norm_forward_train", [&]<typename scalar_t>() {
    bn_train_kernel<scalar_t><<<channel_grid(d.c), kThreads, 0, launch.stream>>>(
        y.data<scalar_t>(), mean.data<scalar_t>(), invstd.data<scalar_t>(),
        ptr_or_null<scalar_t>(running_mean), ptr_or_null<scalar_t>(running_var), x.data<scalar_t>(),
        ptr_or_null<scalar_t>(gamma), ptr_or_null<scalar_t>(beta), d.n, d.c, d.s, momentum, eps, act);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void batch_norm_forward_eval(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                             const Tensor& gamma, const Tensor& beta, FusedAct act) {
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

void batch_norm_backward(Tensor& grad_x, Tensor& grad_gamma, Tensor& grad_beta, const Tensor& grad_y,
                         const Tensor& x, const Tensor& y, const Tensor& mean, const Tensor& invstd,
                         const Tensor& gamma, bool training, FusedAct act) {
  const BnShape d(x);
  if (d.c == 0) return;
  Launch launch(x);  // grad_x may be undefined when only the parameters need gradients
  const BnBackwardArgs args{d.n, d.c, d.s, training, act};
  dispatch_float(x.dtype(), "batch_norm_backward", [&]<typename scalar_t>() {
    bn_backward_kernel<scalar_t><<<channel_grid(d.c), kThreads, 0, launch.stream>>>(
        ptr_or_null<scalar_t>(grad_x), ptr_or_null<scalar_t>(grad_gamma), ptr_or_null<scalar_t>(grad_beta),
        grad_y.data<scalar_t>(), x.data<scalar_t>(), act == FusedAct::none ? nullptr : y.data<scalar_t>(),
        mean.data<scalar_t>(), invstd.data<scalar_t>(), ptr_or_null<scalar_t>(gamma), args);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void add_act_forward(Tensor& out, const Tensor& a, const Tensor& b, FusedAct act) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_float(out.dtype(), "add_act_forward", [&]<typename scalar_t>() {
    add_act_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), a.data<scalar_t>(), b.data<scalar_t>(), n, act);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void act_backward_from_output(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, FusedAct act) {
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
