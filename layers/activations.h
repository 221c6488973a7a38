// Activation layers (no parameters) and Identity. Each wraps the differentiable op of the
// same name in core/ops.h; make_activation builds one from the Activation enum
// (core/activation.h) for blocks that take the activation as an argument.
#pragma once

#include "core/ops.h"
#include "layers/module.h"

namespace ag {

// y = act(x) elementwise, any shape.
class ActivationLayer : public Module {
 public:
  explicit ActivationLayer(Activation act) : act_(act) {}
  Tensor forward(const Tensor& x) override { return activate(x, act_); }
  std::string type_name() const override;  // "ReLU", "SiLU", ...
  Activation activation() const { return act_; }

 private:
  Activation act_;
};

class ReLU : public ActivationLayer {
 public:
  ReLU() : ActivationLayer(Activation::relu) {}
};
class ReLU6 : public ActivationLayer {  // min(max(x, 0), 6): MobileNetV2
 public:
  ReLU6() : ActivationLayer(Activation::relu6) {}
};
class SiLU : public ActivationLayer {  // x * sigmoid(x) (Swish): EfficientNet
 public:
  SiLU() : ActivationLayer(Activation::silu) {}
};
class Sigmoid : public ActivationLayer {
 public:
  Sigmoid() : ActivationLayer(Activation::sigmoid) {}
};
class Hardswish : public ActivationLayer {  // x * relu6(x + 3) / 6: MobileNetV3
 public:
  Hardswish() : ActivationLayer(Activation::hardswish) {}
};
class Tanh : public ActivationLayer {
 public:
  Tanh() : ActivationLayer(Activation::tanh) {}
};
// y = x.
class Identity : public ActivationLayer {
 public:
  Identity() : ActivationLayer(Activation::none) {}
};

// A layer for act (Identity for Activation::none).
ModulePtr make_activation(Activation act);

}  // namespace ag
