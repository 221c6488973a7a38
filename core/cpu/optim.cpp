// CPU optimizer updates: one fused pass over each parameter (read grad and state once,
// write param and state once), OpenMP across elements for large parameters.
#include <cmath>

#include "core/kernels.h"
#include "core/parallel.h"

namespace ag::cpu {

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov) {
  dispatch_float(param.dtype(), "sgd_update", [&]<typename scalar_t>() {
    scalar_t* p = param.data<scalar_t>();
    const scalar_t* g = grad.data<scalar_t>();
    scalar_t* buf = momentum != 0.0 ? momentum_buf.data<scalar_t>() : nullptr;
    const scalar_t lr_ = static_cast<scalar_t>(lr), mom = static_cast<scalar_t>(momentum);
    const scalar_t keep = static_cast<scalar_t>(1.0 - dampening), wd = static_cast<scalar_t>(weight_decay);
    const int64_t n = param.numel();
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      scalar_t d = g[i] + wd * p[i];
      if (buf) {
        buf[i] = mom * buf[i] + keep * d;
        d = nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= lr_ * d;
    }
  });
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                  double beta2, double eps, double weight_decay, int64_t step) {
  dispatch_float(param.dtype(), "adamw_update", [&]<typename scalar_t>() {
    scalar_t* p = param.data<scalar_t>();
    const scalar_t* g = grad.data<scalar_t>();
    scalar_t* pm = m.data<scalar_t>();
    scalar_t* pv = v.data<scalar_t>();
    // The bias corrections are per-step scalars: computed once, in double.
    const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
    const double correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
    const scalar_t decay = static_cast<scalar_t>(1.0 - lr * weight_decay);
    const scalar_t b1 = static_cast<scalar_t>(beta1), b2 = static_cast<scalar_t>(beta2);
    const scalar_t step_size = static_cast<scalar_t>(lr / correction1);
    const scalar_t c2 = static_cast<scalar_t>(correction2_sqrt), eps_ = static_cast<scalar_t>(eps);
    const int64_t n = param.numel();
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      p[i] *= decay;
      pm[i] = b1 * pm[i] + (scalar_t(1) - b1) * g[i];
      pv[i] = b2 * pv[i] + (scalar_t(1) - b2) * g[i] * g[i];
      p[i] -= step_size * pm[i] / (std::sqrt(pv[i]) / c2 + eps_);
    }
  });
}

}  // namespace ag::cpu
