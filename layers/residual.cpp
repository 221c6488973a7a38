#include "layers/residual.h"

namespace ag {

Residual::Residual(ModulePtr body, ModulePtr shortcut, Activation act)
    : body_(std::move(body)), shortcut_(std::move(shortcut)), act_(act) {
  AG_CHECK(body_ != nullptr, "Residual: the body module is null");
  AG_CHECK(is_fusable(act), "Residual: cannot fuse the activation " << activation_name(act)
                                                                   << " (fusable: none, relu, relu6)");
  register_module("body", body_);
  if (shortcut_) register_module("shortcut", shortcut_);
}

Tensor Residual::forward(const Tensor& x) {
  Tensor b = body_->forward(x);
  return residual_add(b, shortcut_ ? shortcut_->forward(x) : x, act_);
}

}  // namespace ag
