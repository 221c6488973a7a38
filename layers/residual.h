// Residual connection as a module: y = act(body(x) + shortcut(x)), where a missing
// shortcut is the identity. The add (+ ReLU) is ag::residual_add (core/ops.h),
// fused into one pass.
#pragma once

#include "core/ops.h"
#include "layers/module.h"

namespace ag {

class Residual : public Module {
 public:
  // Children: "body" and, when given, "shortcut" (e.g. a strided 1x1 Conv2d + BatchNorm2d).
  explicit Residual(ModulePtr body, ModulePtr shortcut = nullptr, Activation act = Activation::none);

  // x: any shape body accepts; body(x) and shortcut(x) must have one shape.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Residual"; }
  Activation activation() const { return act_; }  // after the add

 private:
  ModulePtr body_, shortcut_;
  Activation act_;
};

}  // namespace ag
