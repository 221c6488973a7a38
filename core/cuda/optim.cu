// CUDA optimizer updates: one fused, in-place pass per parameter (read grad and state once,
// write param and state once), the same arithmetic in the same precision as the CPU twin
// (core/cpu/optim.cpp).
#include <cmath>

#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

template <typename T>
__global__ void sgd_kernel(T* param, const T* grad, T* buf, T lr, T momentum, T keep, T weight_decay,
                           bool nesterov, int64_t n) {
  AG_GRID_STRIDE(i, n) {
    T d = grad[i] + weight_decay * param[i];
    if (buf != nullptr) {
      buf[i] = momentum * buf[i] + keep * d;
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    param[i] -= lr * d;
  }
}

template <typename T>
__global__ void adamw_kernel(T* param, const T* grad, T* m, T* v, T decay, T beta1, T beta2, T step_size,
                             T correction2_sqrt, T eps, int64_t n) {
  AG_GRID_STRIDE(i, n) {
    const T g = grad[i];
    const T p = param[i] * decay;
    const T mi = beta1 * m[i] + (T(1) - beta1) * g;
    const T vi = beta2 * v[i] + (T(1) - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - step_size * mi / (sqrt(vi) / correction2_sqrt + eps);
  }
}

}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov) {
  const int64_t n = param.numel();
  if (n == 0) return;
  Launch launch(param);
  dispatch_float(param.dtype(), "sgd_update", [&]<typename scalar_t>() {
    scalar_t* buf = momentum != 0.0 ? momentum_buf.data<scalar_t>() : nullptr;
    sgd_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
        param.data<scalar_t>(), grad.data<scalar_t>(), buf, static_cast<scalar_t>(lr),
        static_cast<scalar_t>(momentum), static_cast<scalar_t>(1.0 - dampening),
        static_cast<scalar_t>(weight_decay), nesterov, n);
  });
  AG_CUDA_CHECK_LAUNCH();
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                  double beta2, double eps, double weight_decay, int64_t step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  Launch launch(param);
  // The bias corrections are per-step scalars: computed once on the host, in double.
  const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
  dispatch_float(param.dtype(), "adamw_update", [&]<typename scalar_t>() {
    adamw_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
        param.data<scalar_t>(), grad.data<scalar_t>(), m.data<scalar_t>(), v.data<scalar_t>(),
        static_cast<scalar_t>(1.0 - lr * weight_decay), static_cast<scalar_t>(beta1),
        static_cast<scalar_t>(beta2), static_cast<scalar_t>(lr / correction1),
        static_cast<scalar_t>(correction2_sqrt), static_cast<scalar_t>(eps), n);
  });
  AG_CUDA_CHECK_LAUNCH();
}

}  // namespace ag::cuda
