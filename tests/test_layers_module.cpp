// The layer modules: parameter names, buffers and counts as PyTorch's, train/eval,
// initialisation, Sequential / Residual / SqueezeExcite composition, and float64 gradient
// checks through whole modules (inputs and every parameter).
#include <cmath>

#include "core/random.h"
#include "gradcheck.h"
#include "layers/layers.h"

using namespace ag;
using ag::testing::random_leaf;

namespace {
std::vector<std::string> names(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (auto& [n, _] : named) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("parameter sets and counts match PyTorch's") {
  Conv2d conv(3, 64, 3, 1, 1, 1, 1, false);
  CHECK(names(conv.named_parameters()) == std::vector<std::string>{"weight"});
  CHECK(conv.parameter_count() == 64 * 3 * 9);
  CHECK(conv.weight().shape() == Shape{64, 3, 3, 3});
  Conv2d dw(32, 32, 3, 2, 1, 1, 32, true);
  CHECK(dw.weight().shape() == Shape{32, 1, 3, 3});
  CHECK(dw.parameter_count() == 32 * 9 + 32);
  BatchNorm2d bn(64);
  CHECK(names(bn.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(names(bn.named_buffers()) == std::vector<std::string>{"running_mean", "running_var"});
  CHECK(bn.parameter_count() == 128);  // buffers are not parameters
  CHECK(bn.weight().to_vector() == std::vector<double>(64, 1.0));
  CHECK(bn.bias().to_vector() == std::vector<double>(64, 0.0));
  CHECK(bn.running_var().to_vector() == std::vector<double>(64, 1.0));
  Linear fc(512, 10);
  CHECK(names(fc.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(fc.parameter_count() == 5130);
  CHECK(Linear(4, 2, false).parameter_count() == 8);
  // torchvision's SqueezeExcitation(96, 4) in EfficientNet-B0: 96*4+4 + 4*96+96
  SqueezeExcite se(96, 4);
  CHECK(names(se.named_parameters()) ==
        std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(se.parameter_count() == 868);
}

TEST_CASE("Sequential names children 0, 1, ... and dotted parameter names") {
  Sequential net({std::make_shared<Conv2d>(3, 8, 3, 1, 1, 1, 1, false), std::make_shared<BatchNorm2d>(8),
                  std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(2),
                  std::make_shared<GlobalAvgPool2d>(), std::make_shared<Dropout>(0.2),
                  std::make_shared<Linear>(8, 10)});
  CHECK(names(net.named_parameters()) ==
        std::vector<std::string>{"0.weight", "1.weight", "1.bias", "6.weight", "6.bias"});
  CHECK(names(net.named_buffers()) == std::vector<std::string>{"1.running_mean", "1.running_var"});
  CHECK(net.parameter_count() == 8 * 27 + 16 + 90);
  CHECK(net[2].type_name() == "ReLU");
  Tensor y = net(Tensor::uniform({2, 3, 8, 8}, -1, 1));
  CHECK(y.shape() == Shape{2, 10});
  // train/eval reaches every child
  net.eval();
  for (auto& [_, m] : net.named_modules()) CHECK_FALSE(m->is_training());
  net.train();
  CHECK(net[1].is_training());
}

TEST_CASE("BatchNorm2d module: running statistics in training, used in eval") {
  manual_seed(1);
  BatchNorm2d bn(2, 1e-5, 0.5);
  Tensor x = Tensor::normal({4, 2, 3, 3}, 2.0, 3.0);
  bn(x);
  std::vector<double> rm = bn.running_mean().to_vector();
  // momentum 0.5 from 0: half the batch mean
  Tensor batch_mean = mean(x.permute({1, 0, 2, 3}).reshape({2, 36}), 1);
  CHECK(rm[0] == doctest::Approx(0.5 * batch_mean.to_vector()[0]).epsilon(1e-5));
  bn.eval();
  Tensor y1 = bn(x), y2 = bn(x);
  CHECK(y1.to_vector() == y2.to_vector());  // eval does not move the statistics
  CHECK(bn.running_mean().to_vector() == rm);
  CHECK_THROWS_WITH_AS(bn(Tensor::zeros({1, 3, 2, 2})), doctest::Contains("input has 3 channels"), Error);
  CHECK_THROWS_WITH_AS(bn(Tensor::zeros({1, 2})), doctest::Contains("BatchNorm2d"), Error);
  BatchNorm1d bn1(3);
  CHECK(bn1(Tensor::uniform({4, 3}, -1, 1)).shape() == Shape{4, 3});
}

TEST_CASE("Conv2d initialisation is Kaiming normal (fan_out), seeded") {
  manual_seed(5);
  Conv2d a(64, 128, 3, 1, 1, 1, 1, false);
  manual_seed(5);
  Conv2d b(64, 128, 3, 1, 1, 1, 1, false);
  std::vector<double> w = a.weight().to_vector();
  CHECK(w == b.weight().to_vector());
  double sq = 0;
  for (double v : w) sq += v * v;
  const double std_expected = std::sqrt(2.0 / (128 * 9));
  CHECK(std::sqrt(sq / w.size()) == doctest::Approx(std_expected).epsilon(0.02));
  Conv2d with_bias(4, 4, 1);
  CHECK(with_bias.bias().to_vector() == std::vector<double>(4, 0.0));
}

TEST_CASE("activation layers and Flatten") {
  Tensor x = Tensor::from_vector({-4, -1, 0.5, 7}, {1, 4}, DType::f64);
  CHECK(ReLU()(x).to_vector() == std::vector<double>{0, 0, 0.5, 7});
  CHECK(ReLU6()(x).to_vector() == std::vector<double>{0, 0, 0.5, 6});
  CHECK(Hardswish()(x).to_vector()[0] == 0);
  CHECK(SiLU()(x).to_vector()[3] == doctest::Approx(7 / (1 + std::exp(-7.0))));
  CHECK(Sigmoid()(x).to_vector()[2] == doctest::Approx(1 / (1 + std::exp(-0.5))));
  CHECK(Identity()(x).same(x));
  CHECK(make_activation(Activation::silu)->type_name() == "SiLU");
  CHECK(parse_activation("relu6") == Activation::relu6);
  CHECK_THROWS_WITH_AS(parse_activation("gelu"), doctest::Contains("unknown activation 'gelu'"), Error);
  CHECK(Flatten()(Tensor::zeros({2, 3, 4, 5})).shape() == Shape{2, 60});
}

TEST_CASE("Dropout module follows train/eval") {
  Dropout d(0.5);
  Tensor x = Tensor::ones({200});
  d.eval();
  CHECK(d(x).to_vector() == x.to_vector());
  d.train();
  std::vector<double> y = d(x).to_vector();
  CHECK(std::count(y.begin(), y.end(), 0.0) > 50);
  CHECK_THROWS_AS(Dropout(1.5), Error);
}

TEST_CASE("module gradient checks over the input and every parameter (float64)") {
  manual_seed(8);
  auto check_module = [](Module& m, const Shape& in_shape) {
    m.to(DType::f64);
    Tensor x = random_leaf(in_shape);
    std::vector<Tensor> wrt{x};
    for (Tensor& p : m.parameters()) {
      p.copy_(Tensor::uniform(p.shape(), -1, 1, DType::f64));  // away from zero-init biases
      wrt.push_back(p);
    }
    CHECK_GRADCHECK([&] { return m(x); }, wrt);
  };
  SUBCASE("Conv2d") {
    Conv2d conv(3, 4, 3, 2, 1);
    check_module(conv, {2, 3, 5, 5});
  }
  SUBCASE("Linear") {
    Linear fc(5, 3);
    check_module(fc, {4, 5});
  }
  SUBCASE("BatchNorm2d train and eval") {
    BatchNorm2d bn(3);
    check_module(bn, {2, 3, 3, 3});
    bn.eval();
    check_module(bn, {2, 3, 3, 3});
  }
  SUBCASE("SqueezeExcite") {
    SqueezeExcite se(6, 2);
    check_module(se, {2, 6, 3, 3});
  }
  SUBCASE("Residual basic block with a projection shortcut") {
    auto body = std::make_shared<Sequential>(std::vector<ModulePtr>{
        std::make_shared<Conv2d>(2, 3, 3, 2, 1, 1, 1, false), std::make_shared<BatchNorm2d>(3),
        std::make_shared<ReLU>(), std::make_shared<Conv2d>(3, 3, 3, 1, 1, 1, 1, false),
        std::make_shared<BatchNorm2d>(3)});
    auto shortcut = std::make_shared<Sequential>(std::vector<ModulePtr>{
        std::make_shared<Conv2d>(2, 3, 1, 2, 0, 1, 1, false), std::make_shared<BatchNorm2d>(3)});
    Residual block(body, shortcut, Activation::relu);
    CHECK(names(block.named_parameters()) ==
          std::vector<std::string>{"body.0.weight", "body.1.weight", "body.1.bias", "body.3.weight",
                                   "body.4.weight", "body.4.bias", "shortcut.0.weight", "shortcut.1.weight",
                                   "shortcut.1.bias"});
    check_module(block, {2, 2, 5, 5});
  }
  SUBCASE("MBConv-style depthwise block: expand, depthwise, SE, project") {
    Sequential mb({std::make_shared<Conv2d>(2, 6, 1, 1, 0, 1, 1, false), std::make_shared<BatchNorm2d>(6),
                   std::make_shared<SiLU>(), std::make_shared<Conv2d>(6, 6, 3, 1, 1, 1, 6, false),
                   std::make_shared<BatchNorm2d>(6), std::make_shared<SiLU>(),
                   std::make_shared<SqueezeExcite>(6, 1),
                   std::make_shared<Conv2d>(6, 2, 1, 1, 0, 1, 1, false), std::make_shared<BatchNorm2d>(2)});
    check_module(mb, {2, 2, 4, 4});
  }
  SUBCASE("pooling and dropout modules") {
    Sequential s(
        {std::make_shared<AvgPool2d>(2), std::make_shared<Flatten>(), std::make_shared<Dropout>(0.3)});
    s.eval();
    check_module(s, {2, 2, 4, 4});
  }
}
