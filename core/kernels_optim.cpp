// Dispatch of the optimizer kernels (core/kernel_decls.h, "optim") to their CPU or CUDA
// twins by the parameter's device, after checking the shapes, dtypes and layout the fused
// loops rely on.
#include "core/dispatch.h"

namespace ag {

namespace {
// Every state tensor must match the parameter exactly: the kernels walk them in lockstep.
void check_like_param(const char* name, const char* what, const Tensor& param, const Tensor& t) {
  AG_CHECK(t.defined(), name << ": the " << what << " is undefined");
  AG_CHECK(t.shape() == param.shape() && t.dtype() == param.dtype() && t.is_contiguous(),
           name << ": the " << what << " is " << t.describe() << (t.is_contiguous() ? "" : " (strided)")
                << " but the parameter is " << param.describe() << "; both must match and be contiguous");
}
}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov) {
  AG_CHECK(param.is_contiguous(), "sgd_update: the parameter " << param.describe() << " is not contiguous");
  check_like_param("sgd_update", "gradient", param, grad);
  AG_CHECK(!nesterov || momentum != 0.0, "sgd_update: Nesterov momentum needs momentum != 0");
  if (momentum == 0.0) {
    AG_ON_DEVICE("sgd_update", param,
                 sgd_update(param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov),
                 &grad);
  }
  check_like_param("sgd_update", "momentum buffer", param, momentum_buf);
  AG_ON_DEVICE("sgd_update", param,
               sgd_update(param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov), &grad,
               &momentum_buf);
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                  double beta2, double eps, double weight_decay, int64_t step) {
  AG_CHECK(param.is_contiguous(), "adamw_update: the parameter " << param.describe() << " is not contiguous");
  check_like_param("adamw_update", "gradient", param, grad);
  check_like_param("adamw_update", "first moment", param, m);
  check_like_param("adamw_update", "second moment", param, v);
  AG_CHECK(step >= 1, "adamw_update: step must count from 1, got " << step);
  AG_ON_DEVICE("adamw_update", param,
               adamw_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step), &grad, &m, &v);
}

}  // namespace ag
