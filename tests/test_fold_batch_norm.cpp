// Batch-norm folding (models/fold_batch_norm.h): a folded copy gives the unfolded model's
// eval-mode logits (float64 and float32) on ResNet-20, MobileNetV2 and EfficientNet-B0 at
// tiny widths, with non-trivial running statistics and affine parameters; no batch norm is
// left after a convolution; the trained model is not changed; a folded model refuses to train.
#include <doctest/doctest.h>

#include <cmath>

#include "core/random.h"
#include "layers/layers.h"
#include "models/blocks.h"
#include "models/factory.h"
#include "models/fold_batch_norm.h"

using namespace ag;

namespace {

// Gives every batch norm statistics and affine parameters far from the identity, so a wrong
// fold cannot hide behind mean 0, var 1, gamma 1, beta 0.
void randomize_batch_norms(Module& root) {
  NoGradGuard no_grad;
  for (auto& [_, m] : root.named_modules()) {
    auto* bn = dynamic_cast<BatchNorm*>(m);
    if (!bn) continue;
    const Shape c{bn->channels()};
    const DType dtype = bn->running_mean().dtype();
    bn->running_mean().copy_(Tensor::uniform(c, -0.5, 0.5, dtype));
    bn->running_var().copy_(Tensor::uniform(c, 0.3, 2.0, dtype));
    if (bn->weight().defined()) bn->weight().copy_(Tensor::uniform(c, 0.5, 1.5, dtype));
    if (bn->bias().defined()) bn->bias().copy_(Tensor::uniform(c, -0.5, 0.5, dtype));
  }
}

int64_t count_batch_norms(Module& root) {
  int64_t n = 0;
  for (auto& [_, m] : root.named_modules()) n += dynamic_cast<BatchNorm*>(m) != nullptr;
  return n;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double d = 0;
  for (size_t i = 0; i < va.size(); ++i) d = std::max(d, std::abs(va[i] - vb[i]));
  return d;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : a.to_vector()) m = std::max(m, std::abs(v));
  return m;
}

void check_fold(const std::string& spec, DType dtype, double tolerance) {
  CAPTURE(spec);
  CAPTURE(dtype);
  manual_seed(7);
  ModelPtr trained = make_model(spec, 5);
  trained->to(dtype);
  randomize_batch_norms(*trained);
  trained->eval();
  const Tensor x = Tensor::normal({2, 3, 16, 16}, 0, 1, dtype);
  Tensor reference;
  {
    NoGradGuard no_grad;
    reference = (*trained)(x);
  }
  const std::vector<double> trained_state_before = trained->named_parameters()[0].second.to_vector();
  const int64_t batch_norms = count_batch_norms(*trained);
  REQUIRE(batch_norms > 0);

  ModelPtr fast = make_model(spec, 5);  // other random weights: the copy must bring them over
  fast->to(dtype);
  CHECK(fold_batch_norm_copy(*trained, *fast) == batch_norms);
  CHECK(count_batch_norms(*fast) == 0);
  CHECK_FALSE(fast->is_training());
  Tensor folded;
  {
    NoGradGuard no_grad;
    folded = (*fast)(x);
  }
  CHECK(folded.dtype() == dtype);
  CHECK(max_abs(reference) > 0.1);  // a real signal, not a vanishing one
  CHECK(max_abs_diff(folded, reference) <= tolerance * max_abs(reference));

  // The trained model keeps its batch norms, weights and outputs.
  CHECK(count_batch_norms(*trained) == batch_norms);
  CHECK(trained->named_parameters()[0].second.to_vector() == trained_state_before);
  {
    NoGradGuard no_grad;
    CHECK(max_abs_diff((*trained)(x), reference) == 0.0);
  }
  // Folding again finds nothing; training the folded model is refused.
  CHECK(fold_batch_norm(*fast) == 0);
  fast->train();
  CHECK_THROWS_AS((*fast)(x), Error);
}

}  // namespace

TEST_CASE("fold_batch_norm: folded and unfolded logits agree on ResNet-20, MobileNetV2, EfficientNet-B0") {
  for (const char* spec :
       {"resnet20:width=0.5", "mobilenetv2:width=0.25,depth=0.34", "efficientnet_b0:width=0.25,depth=0.25"}) {
    check_fold(spec, DType::f64, 1e-12);
    check_fold(spec, DType::f32, 1e-5);
  }
}

TEST_CASE("fold_batch_norm: one ConvBn by hand, depthwise, with and without a fused activation") {
  manual_seed(3);
  for (Activation act : {Activation::none, Activation::relu6, Activation::silu}) {
    CAPTURE(activation_name(act));
    ConvBn block(6, 6, 3, 2, /*groups=*/6, act);
    block.to(DType::f64);
    randomize_batch_norms(block);
    block.eval();
    const Tensor x = Tensor::normal({2, 6, 7, 7}, 0, 1, DType::f64);
    // By hand: the batch norm's eval formula after the convolution, then the activation.
    BatchNorm2d& bn = block.bn();
    Tensor conv = conv2d(x, block.conv().weight().detach(), Tensor(), 2, 1, 1, 6);
    auto per_channel = [&](const Tensor& t) { return t.detach().reshape({1, 6, 1, 1}); };
    Tensor expected =
        activate((conv - per_channel(bn.running_mean())) / sqrt(per_channel(bn.running_var()) + bn.eps()) *
                         per_channel(bn.weight()) +
                     per_channel(bn.bias()),
                 act);
    block.fold_batch_norm();
    CHECK(block.folded());
    CHECK(block.conv().bias().defined());
    CHECK(count_batch_norms(block) == 0);
    CHECK_THROWS_AS(block.bn(), Error);
    CHECK_THROWS_AS(block.fold_batch_norm(), Error);
    CHECK_THROWS_AS(block.conv().add_bias(), Error);
    NoGradGuard no_grad;
    CHECK(max_abs_diff(block(x), expected) <= 1e-12 * max_abs(expected));
  }
}
