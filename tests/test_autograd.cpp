// The autograd engine: accumulation, zero_grad, detach, NoGradGuard, freed graphs,
// explicit upstream gradients, shared subexpressions, and the gradient-accumulation checks.
#include "core/ops.h"
#include "gradcheck.h"

using namespace ag;

namespace {
Tensor leaf(std::vector<double> v, Shape shape) {
  return Tensor::from_vector(v, shape, DType::f64).set_requires_grad(true);
}
}  // namespace

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor x = leaf({1, 2}, {2});
  sum(mul(x, 3.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 3});
  sum(mul(x, 3.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{6, 6});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, 1});
}

TEST_CASE("a value used twice gets both contributions") {
  Tensor x = leaf({2}, {1});
  Tensor y = mul(x, x) + mul(x, 4.0);  // dy/dx = 2x + 4 = 8
  y.backward(Tensor::ones({1}, DType::f64));
  CHECK(x.grad().item() == 8.0);
}

TEST_CASE("gradient sums at forks never overwrite a gradient that is still shared") {
  // add hands one gradient buffer to both inputs, so the forks below meet shared buffers
  // (which must be copied) and fresh ones (which the engine may add into in place).
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor w = Tensor::from_vector({1, 10, 100}, {3}, DType::f64);
  Tensor b = mul(x, 2.0);
  Tensor c = b + b;                // the same gradient reaches b twice
  Tensor d = c + b + mul(b, 4.0);  // and twice more: once shared, once fresh
  Tensor e = d + relu(x);          // x: from b's chain and from relu's
  sum(mul(e, w)).backward();
  // de/db = 1 + 1 + 1 + 4 = 7, db/dx = 2; relu adds 1: 15 w
  CHECK(x.grad().to_vector() == std::vector<double>{15, 150, 1500});
  CHECK(w.to_vector() == std::vector<double>{1, 10, 100});
}

TEST_CASE("explicit upstream gradient for a non-scalar output") {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = mul(x, x);
  y.backward(Tensor::from_vector({1, 10, 100}, {3}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 40, 600});
  Tensor z = mul(x, x);
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("must be a scalar"), Error);
  CHECK_THROWS_WITH_AS(z.backward(Tensor::ones({2}, DType::f64)), doctest::Contains("upstream gradient"),
                       Error);
}

TEST_CASE("a second backward through a freed graph is a clear error; retain_graph allows it") {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = sum(exp(x));
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("retain_graph"), Error);
  Tensor z = sum(exp(x));
  x.zero_grad();
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  CHECK(x.grad().to_vector()[0] == doctest::Approx(2 * std::exp(1.0)));
}

TEST_CASE("saved tensors are freed after backward") {
  Tensor x = leaf({1, 2}, {2});
  Tensor e = exp(x);  // the node saves x and exp(x)
  std::weak_ptr<Storage> saved = e.storage();
  Tensor y = sum(e);
  e = Tensor();
  CHECK_FALSE(saved.expired());  // the graph holds the saved output
  y.backward();
  CHECK(saved.expired());
}

TEST_CASE("detach and NoGradGuard stop the graph") {
  Tensor x = leaf({3}, {1});
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage() == x.storage());
  {
    NoGradGuard guard;
    Tensor y = mul(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(grad_mode_enabled() == false);
  }
  CHECK(grad_mode_enabled());
  Tensor y = mul(x, d);  // only the x path carries a gradient
  y.backward(Tensor::ones({1}, DType::f64));
  CHECK(x.grad().item() == 3.0);
}

TEST_CASE("requires_grad rules") {
  Tensor a = Tensor::ones({2}, DType::f64);
  CHECK_FALSE(a.requires_grad());
  CHECK_FALSE(add(a, a).requires_grad());
  Tensor b = leaf({1, 1}, {2});
  Tensor c = add(a, b);
  CHECK(c.requires_grad());
  CHECK_FALSE(c.is_leaf());
  CHECK_THROWS_AS(c.set_requires_grad(false), Error);
  CHECK_THROWS_AS(Tensor::zeros({2}, DType::i64).set_requires_grad(true), Error);
  CHECK_THROWS_AS(sum(a).backward(), Error);
}

TEST_CASE("gradient accumulation checks shape and dtype in a full sentence") {
  Tensor x = leaf({1, 2}, {2});
  TensorImpl& impl = *x.impl();
  CHECK_THROWS_WITH_AS(accumulate_grad(impl, Tensor::ones({3}, DType::f64)),
                       doctest::Contains("a gradient of shape [3] arrived for a tensor of shape [2]"), Error);
  CHECK_THROWS_WITH_AS(accumulate_grad(impl, Tensor::ones({2}, DType::f32)),
                       doctest::Contains("float32 gradient arrived for a float64 tensor"), Error);
}

TEST_CASE("a long chain does not overflow the stack") {
  Tensor x = leaf({1}, {1});
  Tensor h = x;
  for (int i = 0; i < 3000; ++i) h = add(h, 1.0);  // (deep enough for a recursive walk to hurt)
  h.backward(Tensor::ones({1}, DType::f64));
  CHECK(x.grad().item() == 1.0);
}
