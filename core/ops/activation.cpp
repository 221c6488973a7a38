// The activations: their names (one table), activate() and its Node, and the residual add
// with a fused activation. Forward and backward side by side.
#include <string>

#include "core/ops.h"

namespace ag {

namespace {

struct ActivationInfo {
  Activation act;
  const char* name;   // as in flags and model configs
  const char* title;  // as a layer's type name
};
constexpr ActivationInfo kActivations[] = {
    {Activation::none, "none", "Identity"},      {Activation::relu, "relu", "ReLU"},
    {Activation::relu6, "relu6", "ReLU6"},       {Activation::silu, "silu", "SiLU"},
    {Activation::sigmoid, "sigmoid", "Sigmoid"}, {Activation::hardswish, "hardswish", "Hardswish"},
    {Activation::tanh, "tanh", "Tanh"},
};

const ActivationInfo& info(Activation act) {
  for (const ActivationInfo& i : kActivations)
    if (i.act == act) return i;
  AG_FAIL("unknown activation value " << static_cast<int>(act));
}

struct ActivationBackward : Node {
  Activation act = Activation::none;
  Tensor x, y;  // input and output, [*]
  const char* name() const override { return "ActivationBackward"; }
  void release_saved() override {
    x = Tensor();
    y = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
    activation_backward(gx, g.contiguous(), x, y, act);
    return {gx};
  }
};

// The derivative of a fused activation is read from the output y.
struct ResidualAddBackward : Node {
  Tensor y;  // the output, for the activation's derivative (undefined without one)
  Activation act = Activation::none;
  const char* name() const override { return "ResidualAddBackward"; }
  void release_saved() override { y = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = g;
    if (act != Activation::none) {
      gx = Tensor::empty(y.shape(), y.dtype(), y.device());
      act_backward_from_output(gx, g.contiguous(), y, act);
    }
    return {needs_grad(0) ? gx : Tensor(), needs_grad(1) ? gx : Tensor()};
  }
};

}  // namespace

const char* activation_name(Activation act) { return info(act).name; }
const char* activation_title(Activation act) { return info(act).title; }

Activation parse_activation(const std::string& name) {
  for (const ActivationInfo& i : kActivations)
    if (name == i.name) return i.act;
  AG_FAIL("unknown activation '" << name
                                 << "': expected none, relu, relu6, silu, sigmoid, hardswish or tanh");
}

bool is_fusable(Activation act) {
  return act == Activation::none || act == Activation::relu || act == Activation::relu6;
}

Tensor activate(const Tensor& x, Activation act) {
  if (act == Activation::none) return x;
  profiler::Scope profile(activation_name(act));
  AG_CHECK(is_floating(x.dtype()), activation_name(act) << ": needs a float tensor, got " << x.describe());
  Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  activation_forward(out, xc, act);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ActivationBackward>();
    node->act = act;
    node->x = xc.detach();
    node->y = out.detach();
    return attach_node(out, node, {&x});
  }
  return out;
}

Tensor relu(const Tensor& x) { return activate(x, Activation::relu); }
Tensor relu6(const Tensor& x) { return activate(x, Activation::relu6); }
Tensor silu(const Tensor& x) { return activate(x, Activation::silu); }
Tensor sigmoid(const Tensor& x) { return activate(x, Activation::sigmoid); }
Tensor tanh(const Tensor& x) { return activate(x, Activation::tanh); }
Tensor hardswish(const Tensor& x) { return activate(x, Activation::hardswish); }

Tensor residual_add(const Tensor& body, const Tensor& shortcut, Activation act) {
  profiler::Scope profile("residual_add");
  AG_CHECK(body.shape() == shortcut.shape(), "residual_add: the block output "
                                                 << shape_str(body.shape()) << " and the shortcut "
                                                 << shape_str(shortcut.shape()) << " differ in shape");
  AG_CHECK(
      body.dtype() == shortcut.dtype() && body.device() == shortcut.device() && is_floating(body.dtype()),
      "residual_add: needs float tensors of one dtype and device, got " << body.describe() << " and "
                                                                        << shortcut.describe());
  AG_CHECK(is_fusable(act), "residual_add: the activation " << activation_name(act)
                                                            << " cannot be fused (none, relu or relu6)");
  Tensor out = Tensor::empty(body.shape(), body.dtype(), body.device());
  add_act_forward(out, body.detach().contiguous(), shortcut.detach().contiguous(), act);
  if (any_requires_grad({&body, &shortcut})) {
    auto node = std::make_shared<ResidualAddBackward>();
    node->act = act;
    if (act != Activation::none) node->y = out.detach();
    return attach_node(out, node, {&body, &shortcut});
  }
  return out;
}

}  // namespace ag
