// The gradient checker itself: it must catch a wrong backward, an unwritten gradient, an
// unwritten forward output and a backward that overwrites instead of accumulating.
#include "core/ops.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::gradcheck;
using ag::testing::random_leaf;

namespace {
// y = x^2 with a deliberately wrong derivative (3x instead of 2x).
struct WrongSquareBackward : Node {
  Tensor x;
  const char* name() const override { return "WrongSquareBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {mul(g, mul(x, 3.0))}; }
};
Tensor wrong_square(const Tensor& x) {
  Tensor out = mul(x.detach(), x.detach());
  auto node = std::make_shared<WrongSquareBackward>();
  node->x = x.detach();
  return attach_node(out, node, {&x});
}

// A backward that leaves its output unwritten (Tensor::empty is NaN-poisoned in gradcheck).
struct UnwrittenBackward : Node {
  const char* name() const override { return "UnwrittenBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {Tensor::empty(g.shape(), g.dtype())}; }
};
Tensor unwritten_identity(const Tensor& x) {
  return attach_node(x.detach().clone(), std::make_shared<UnwrittenBackward>(), {&x});
}

// Identity that forgets the last element in the forward and, consistently, in the backward:
// the finite differences agree with the backward, only the poisoned forward output shows it.
struct ForgetsLastBackward : Node {
  const char* name() const override { return "ForgetsLastBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    std::vector<double> v = g.to_vector();
    v.back() = 0;
    return {Tensor::from_vector(v, g.shape(), g.dtype())};
  }
};
Tensor forgets_last(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const double* src = x.data<double>();
  double* dst = out.data<double>();
  for (int64_t i = 0; i + 1 < x.numel(); ++i) dst[i] = src[i];
  return attach_node(out, std::make_shared<ForgetsLastBackward>(), {&x});
}
}  // namespace

TEST_CASE("gradcheck passes a correct op") {
  Tensor x = random_leaf({3, 4});
  CHECK_GRADCHECK([&] { return mul(x, x); }, {x});
}

TEST_CASE("gradcheck catches a wrong backward") {
  Tensor x = random_leaf({5});
  auto result = gradcheck([&] { return wrong_square(x); }, {x});
  CHECK_FALSE(result.ok);
  CHECK(result.message.find("analytic") != std::string::npos);
}

TEST_CASE("gradcheck catches an unwritten gradient") {
  Tensor x = random_leaf({4});
  auto result = gradcheck([&] { return unwritten_identity(x); }, {x});
  CHECK_FALSE(result.ok);
  CHECK(result.message.find("NaN") != std::string::npos);
}

TEST_CASE("gradcheck catches a forward output element that is never written") {
  Tensor x = random_leaf({5});
  auto result = gradcheck([&] { return forgets_last(x); }, {x});
  CHECK_FALSE(result.ok);
  CHECK(result.message.find("forward output") != std::string::npos);
  CHECK(result.message.find("element 4") != std::string::npos);
}

TEST_CASE("gradcheck catches a backward that does not accumulate") {
  Tensor x = random_leaf({3});
  // Overwrite x's gradient from inside the graph: the second backward then fails to double.
  struct Overwrite : Node {
    Tensor target;
    const char* name() const override { return "Overwrite"; }
    std::vector<Tensor> apply(const Tensor& g) override {
      target.set_grad(g.clone());
      return {Tensor()};
    }
  };
  auto f = [&] {
    auto node = std::make_shared<Overwrite>();
    node->target = x;
    return attach_node(x.detach().clone(), node, {&x});
  };
  auto result = gradcheck(f, {x});
  CHECK_FALSE(result.ok);
}

TEST_CASE("gradcheck rejects float32 inputs") {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  CHECK_FALSE(gradcheck([&] { return mul(x, x); }, {x}).ok);
}
