// AdamW: Adam with decoupled weight decay, matching torch.optim.AdamW (amsgrad off).
#include <cmath>

#include "core/kernels.h"
#include "core/optim/optimizer.h"

namespace ag::optim {

AdamW::AdamW(NamedTensors params, const AdamWOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  AG_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0,
           "AdamW: beta1 must lie in [0, 1), got " << options.beta1);
  AG_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0,
           "AdamW: beta2 must lie in [0, 1), got " << options.beta2);
  AG_CHECK(std::isfinite(options.eps) && options.eps >= 0.0,
           "AdamW: eps must be finite and >= 0, got " << options.eps);
  set_decay(options.weight_decay, options.exclude_1d_from_decay);
}

std::vector<std::string> AdamW::required_slots() const { return {"exp_avg", "exp_avg_sq"}; }

void AdamW::update(size_t i, Tensor& param, const Tensor& grad, int64_t count) {
  Tensor& m = slot(i, "exp_avg");
  Tensor& v = slot(i, "exp_avg_sq");
  adamw_update(param, grad, m, v, lr(), options_.beta1, options_.beta2, options_.eps, weight_decay_of(i),
               count + 1);
}

}  // namespace ag::optim
