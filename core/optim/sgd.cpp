// SGD with momentum, dampening, Nesterov and (optionally 1-d-excluded) weight decay,
// matching torch.optim.SGD step for step.
#include <cmath>

#include "core/kernels.h"
#include "core/optim/optimizer.h"

namespace ag::optim {

SGD::SGD(NamedTensors params, const SgdOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  AG_CHECK(std::isfinite(options.momentum) && options.momentum >= 0.0,
           "SGD: momentum must be finite and >= 0, got " << options.momentum);
  AG_CHECK(options.dampening >= 0.0 && options.dampening <= 1.0,
           "SGD: dampening must lie in [0, 1], got " << options.dampening);
  AG_CHECK(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
           "SGD: Nesterov momentum needs momentum > 0 and dampening 0, got momentum "
               << options.momentum << " and dampening " << options.dampening);
  set_decay(options.weight_decay, options.exclude_1d_from_decay);
}

std::vector<std::string> SGD::required_slots() const {
  if (options_.momentum == 0.0) return {};
  return {"momentum_buffer"};
}

void SGD::update(size_t i, Tensor& param, const Tensor& grad, int64_t count) {
  const double momentum = options_.momentum;
  Tensor none;
  Tensor& buf = momentum != 0.0 ? slot(i, "momentum_buffer") : none;
  // First update: the buffer is zero and dampening 0 makes it equal the gradient, as
  // PyTorch's buffer initialisation (buf = g, undampened) does.
  const double dampening = count == 0 ? 0.0 : options_.dampening;
  sgd_update(param, grad, buf, lr(), momentum, dampening, weight_decay_of(i), options_.nesterov);
}

}  // namespace ag::optim
