#include "layers/activations.h"

namespace ag {

std::string ActivationLayer::type_name() const {
  switch (act_) {
    case Activation::none:
      return "Identity";
    case Activation::relu:
      return "ReLU";
    case Activation::relu6:
      return "ReLU6";
    case Activation::silu:
      return "SiLU";
    case Activation::sigmoid:
      return "Sigmoid";
    case Activation::hardswish:
      return "Hardswish";
    case Activation::tanh:
      return "Tanh";
  }
  return "Activation";
}

ModulePtr make_activation(Activation act) { return std::make_shared<ActivationLayer>(act); }

}  // namespace ag
