// The one activation vocabulary: the activation ops (core/ops.h), the fused kernels (batch
// norm + act, residual add + act), the activation layers and the model configs all name an
// activation with this enum, and its names come from one table (core/ops/activation.cpp).
#pragma once

#include <string>

namespace ag {

enum class Activation { none, relu, relu6, silu, sigmoid, hardswish, tanh };

const char* activation_name(Activation act);           // "relu", "silu", ...; "none"
Activation parse_activation(const std::string& name);  // the inverse; an error names the text
const char* activation_title(Activation act);          // "ReLU", "SiLU", ...; "Identity" for none

// Whether a fused kernel (batch norm, residual add) can apply act in its own pass: the
// activations whose derivative is a 0/1 mask read from the output (none, relu, relu6).
bool is_fusable(Activation act);

// Runs body.template operator()<ACT>() with ACT a compile-time constant, so that a kernel
// gets one loop per activation with no switch inside it (the CPU and CUDA twins both use it).
template <typename Body>
void with_activation(Activation act, Body&& body) {
  switch (act) {
    case Activation::none:
      return body.template operator()<Activation::none>();
    case Activation::relu:
      return body.template operator()<Activation::relu>();
    case Activation::relu6:
      return body.template operator()<Activation::relu6>();
    case Activation::silu:
      return body.template operator()<Activation::silu>();
    case Activation::sigmoid:
      return body.template operator()<Activation::sigmoid>();
    case Activation::hardswish:
      return body.template operator()<Activation::hardswish>();
    case Activation::tanh:
      return body.template operator()<Activation::tanh>();
  }
}

}  // namespace ag
