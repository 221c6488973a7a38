// Optimizers and learning-rate schedules: single steps against hand-worked formulas,
// convergence on problems with a known minimum, state round trips, schedule values.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "core/ops.h"
#include "core/optim/optimizer.h"
#include "core/optim/schedule.h"
#include "core/random.h"

using namespace ag;
using namespace ag::optim;

namespace {
Tensor leaf(std::vector<double> v, Shape shape, DType dtype = DType::f64) {
  return Tensor::from_vector(v, shape, dtype).set_requires_grad(true);
}
void set_grad(Tensor& p, std::vector<double> g) { p.set_grad(Tensor::from_vector(g, p.shape(), p.dtype())); }

// Runs the optimizer on one parameter [1] = p0 with the given gradient sequence and
// returns the parameter after each step.
std::vector<double> run_sgd(const SgdOptions& o, double p0, const std::vector<double>& grads) {
  Tensor p = leaf({p0}, {1});
  SGD opt({{"w", p}}, o);
  std::vector<double> out;
  for (double g : grads) {
    set_grad(p, {g});
    opt.step();
    out.push_back(p.item());
  }
  return out;
}
}  // namespace

TEST_CASE("SGD: plain step is p - lr * g") {
  Tensor p = leaf({1.0, -2.0}, {2});
  SGD opt({{"w", p}}, {.lr = 0.1});
  set_grad(p, {0.5, 0.25});
  opt.step();
  auto v = p.to_vector();
  CHECK(v[0] == doctest::Approx(0.95).epsilon(1e-15));
  CHECK(v[1] == doctest::Approx(-2.025).epsilon(1e-15));
  CHECK(opt.step_count() == 1);
}

TEST_CASE("SGD: momentum, dampening and Nesterov over two steps") {
  // g1 = 0.5, g2 = -1, lr 0.1, p0 = 1, momentum 0.9.
  // momentum: buf1 = 0.5, p1 = 0.95; buf2 = 0.45 - 1 = -0.55, p2 = 0.95 + 0.055 = 1.005.
  auto m = run_sgd({.lr = 0.1, .momentum = 0.9}, 1.0, {0.5, -1.0});
  CHECK(m[0] == doctest::Approx(0.95).epsilon(1e-14));
  CHECK(m[1] == doctest::Approx(1.005).epsilon(1e-14));
  // dampening 0.5: the first buffer is undampened (0.5); buf2 = 0.45 - 0.5 = -0.05, p2 = 0.955.
  auto d = run_sgd({.lr = 0.1, .momentum = 0.9, .dampening = 0.5}, 1.0, {0.5, -1.0});
  CHECK(d[0] == doctest::Approx(0.95).epsilon(1e-14));
  CHECK(d[1] == doctest::Approx(0.955).epsilon(1e-14));
  // Nesterov: buf1 = 0.5, step 0.5 + 0.45 = 0.95, p1 = 0.905;
  // buf2 = -0.55, step -1 - 0.495 = -1.495, p2 = 0.905 + 0.1495 = 1.0545.
  auto n = run_sgd({.lr = 0.1, .momentum = 0.9, .nesterov = true}, 1.0, {0.5, -1.0});
  CHECK(n[0] == doctest::Approx(0.905).epsilon(1e-14));
  CHECK(n[1] == doctest::Approx(1.0545).epsilon(1e-14));
}

TEST_CASE("SGD: weight decay and the 1-d exclusion rule") {
  // p = 2, g = 0.5, wd 0.1: step = 0.5 + 0.2 = 0.7, p = 2 - 0.07 = 1.93.
  auto w = run_sgd({.lr = 0.1, .weight_decay = 0.1}, 2.0, {0.5});
  CHECK(w[0] == doctest::Approx(1.93).epsilon(1e-14));

  Tensor weight = leaf({2.0, 2.0}, {1, 2});
  Tensor bias = leaf({2.0}, {1});
  SGD opt({{"fc.weight", weight}, {"fc.bias", bias}},
          {.lr = 0.1, .weight_decay = 0.1, .exclude_1d_from_decay = true});
  CHECK(opt.weight_decay_of(0) == 0.1);
  CHECK(opt.weight_decay_of(1) == 0.0);
  set_grad(weight, {0.5, 0.5});
  set_grad(bias, {0.5});
  opt.step();
  CHECK(weight.to_vector()[0] == doctest::Approx(1.93).epsilon(1e-14));
  CHECK(weight.to_vector()[1] == doctest::Approx(1.93).epsilon(1e-14));
  CHECK(bias.item() == doctest::Approx(1.95).epsilon(1e-14));  // 2 - 0.1 * 0.5: no decay
}

TEST_CASE("SGD: float32 parameters, skipped gradients and zero_grad") {
  Tensor a = leaf({1.0}, {1}, DType::f32);
  Tensor b = leaf({1.0}, {1}, DType::f32);
  SGD opt({{"a", a}, {"b", b}}, {.lr = 0.5, .momentum = 0.9});
  set_grad(a, {1.0});
  opt.step();  // b has no gradient: untouched and without state
  CHECK(a.item() == 0.5);
  CHECK(b.item() == 1.0);
  auto st = opt.state();
  int b_entries = 0;
  for (auto& [n, _] : st) b_entries += n.rfind("b.", 0) == 0;
  CHECK(b_entries == 0);
  opt.zero_grad();
  CHECK(!a.grad().defined());
}

TEST_CASE("AdamW: two steps against the formula") {
  Tensor p = leaf({1.0}, {1});
  AdamW opt({{"w", p}}, {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1});
  // Step 1, g = 0.5: p = 1 * (1 - 0.01) = 0.99; m = 0.05, v = 0.00025; corrections 0.1 and
  // 0.001: p = 0.99 - (0.1 / 0.1) * 0.05 / (sqrt(0.00025) / sqrt(0.001) + 1e-8)
  //          = 0.99 - 0.05 / (0.5 + 1e-8).
  set_grad(p, {0.5});
  opt.step();
  const double p1 = 0.99 - 0.05 / (0.5 + 1e-8);
  CHECK(p.item() == doctest::Approx(p1).epsilon(1e-14));
  // Step 2, g = -1: p = p1 * 0.99; m = 0.045 - 0.1 = -0.055; v = 0.00024975 + 0.001 =
  // 0.00124975; corrections 1 - 0.81 = 0.19 and 1 - 0.998001 = 0.001999.
  set_grad(p, {-1.0});
  opt.step();
  const double p2 = p1 * 0.99 - (0.1 / 0.19) * -0.055 / (std::sqrt(0.00124975) / std::sqrt(0.001999) + 1e-8);
  CHECK(p.item() == doctest::Approx(p2).epsilon(1e-12));
  CHECK(p2 == doctest::Approx(0.91771035422).epsilon(1e-10));
}

TEST_CASE("AdamW: the 1-d exclusion leaves biases undecayed") {
  Tensor w = leaf({1.0, 1.0}, {2, 1});
  Tensor b = leaf({1.0}, {1});
  AdamW opt({{"w", w}, {"b", b}}, {.lr = 0.1, .weight_decay = 0.5, .exclude_1d_from_decay = true});
  w.set_grad(Tensor::zeros({2, 1}, DType::f64));
  b.set_grad(Tensor::zeros({1}, DType::f64));
  opt.step();  // zero gradient: only the decay moves anything
  CHECK(w.to_vector()[0] == doctest::Approx(0.95).epsilon(1e-15));
  CHECK(b.item() == 1.0);
}

TEST_CASE("SGD with weight decay converges to c / (1 + wd) on 0.5 * |p - c|^2") {
  const std::vector<double> c = {3.0, -1.0, 0.5};
  Tensor p = leaf({0, 0, 0}, {3});
  Tensor target = Tensor::from_vector(c, {3}, DType::f64);
  SGD opt({{"p", p}}, {.lr = 0.2, .momentum = 0.9, .weight_decay = 0.25, .nesterov = true});
  for (int i = 0; i < 200; ++i) {
    opt.zero_grad();
    Tensor d = sub(p, target);
    sum(mul(mul(d, d), 0.5)).backward();
    opt.step();
  }
  auto v = p.to_vector();
  for (int i = 0; i < 3; ++i) CHECK(v[i] == doctest::Approx(c[i] / 1.25).epsilon(1e-9));
}

namespace {
// Least squares y = X w* + b* with X random [64, 3]: the minimum is exactly (w*, b*).
double fit_linear_regression(Optimizer& opt, Tensor& w, Tensor& b, int steps) {
  manual_seed(7);
  Tensor x = Tensor::uniform({64, 3}, -1, 1, DType::f64);
  Tensor w_true = Tensor::from_vector({1.0, -2.0, 0.5}, {3, 1}, DType::f64);
  Tensor y = add(matmul(x, w_true), 0.3);
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    Tensor r = sub(add(matmul(x, w), b), y);
    mean(mul(r, r)).backward();
    opt.step();
  }
  double err = std::abs(b.item() - 0.3);
  auto wv = w.to_vector();
  const double wt[3] = {1.0, -2.0, 0.5};
  for (int i = 0; i < 3; ++i) err = std::max(err, std::abs(wv[i] - wt[i]));
  return err;
}
}  // namespace

TEST_CASE("SGD with momentum and AdamW solve a linear regression") {
  {
    Tensor w = leaf({0, 0, 0}, {3, 1}), b = leaf({0}, {1});
    SGD opt({{"w", w}, {"b", b}}, {.lr = 0.1, .momentum = 0.9});
    CHECK(fit_linear_regression(opt, w, b, 600) < 1e-10);
  }
  {
    Tensor w = leaf({0, 0, 0}, {3, 1}), b = leaf({0}, {1});
    AdamW opt({{"w", w}, {"b", b}}, {.lr = 0.02, .weight_decay = 0.0});
    auto sched = CosineLR(0.02, 1500, 0.0);
    // Adam's steps stay lr-sized near the minimum; the cosine decay lets it settle.
    for (int i = 0; i < 1500; i += 100) {
      opt.set_lr(sched.lr(i));
      fit_linear_regression(opt, w, b, 100);
    }
    CHECK(fit_linear_regression(opt, w, b, 1) < 1e-3);
  }
}

TEST_CASE("optimizer state round trip continues bit-exactly") {
  for (int kind = 0; kind < 2; ++kind) {
    auto make = [&](NamedTensors ps) -> std::unique_ptr<Optimizer> {
      if (kind == 0)
        return std::make_unique<SGD>(ps, SgdOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3});
      return std::make_unique<AdamW>(ps, AdamWOptions{.lr = 0.01});
    };
    manual_seed(1);
    Tensor a = Tensor::normal({4, 3}, 0, 1, DType::f32).set_requires_grad(true);
    Tensor a2 = a.detach().clone().set_requires_grad(true);
    auto opt = make({{"a", a}});
    auto grad_at = [](int i) { return Tensor::full({4, 3}, 0.1 * (i + 1) - 0.25, DType::f32); };
    for (int i = 0; i < 3; ++i) {
      a.set_grad(grad_at(i));
      opt->step();
    }
    // Restore into a fresh optimizer over a copy of the parameter, continue both.
    a2.copy_(a);
    auto opt2 = make({{"a", a2}});
    NamedTensors saved;
    for (auto& [n, t] : opt->state()) saved.emplace_back(n, t.clone());
    opt2->load_state(saved);
    CHECK(opt2->step_count() == 3);
    for (int i = 3; i < 6; ++i) {
      a.set_grad(grad_at(i));
      a2.set_grad(grad_at(i));
      opt->step();
      opt2->step();
    }
    CHECK(a.to_vector() == a2.to_vector());
  }
}

TEST_CASE("optimizer: bad options and bad state give clear errors") {
  Tensor p = leaf({1.0, 2.0}, {2});
  CHECK_THROWS_WITH_AS(SGD({{"p", p}}, {.lr = 0.1, .nesterov = true}), doctest::Contains("Nesterov"), Error);
  CHECK_THROWS_WITH_AS(SGD({{"p", p}}, {.lr = -1.0}), doctest::Contains("learning rate"), Error);
  CHECK_THROWS_WITH_AS(SGD({{"p", p}, {"q", p}}, {}), doctest::Contains("listed twice"), Error);
  CHECK_THROWS_WITH_AS(AdamW({{"p", p}}, {.beta2 = 1.0}), doctest::Contains("beta2"), Error);

  SGD opt({{"p", p}}, {.lr = 0.1, .momentum = 0.9});
  auto step = Tensor::full({}, 1, DType::i64);
  CHECK_THROWS_WITH_AS(
      opt.load_state({{"step", step}, {"q.momentum_buffer", Tensor::zeros({2}, DType::f64)}}),
      doctest::Contains("'q.momentum_buffer' names no parameter"), Error);
  CHECK_THROWS_WITH_AS(
      opt.load_state(
          {{"step", step}, {"p.step", step}, {"p.momentum_buffer", Tensor::zeros({3}, DType::f64)}}),
      doctest::Contains("has shape [3]"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state({{"step", step}, {"p.step", step}}),
                       doctest::Contains("'p.momentum_buffer' is missing"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state({{"step", step}, {"p.exp_avg", Tensor::zeros({2}, DType::f64)}}),
                       doctest::Contains("not a state slot"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state({}), doctest::Contains("'step' entry is missing"), Error);
}

TEST_CASE("schedules: values at chosen steps") {
  ConstantLR c(0.3);
  CHECK(c.lr(0) == 0.3);
  CHECK(c.lr(1000) == 0.3);

  StepLR s(0.1, {3, 6}, 0.1);
  CHECK(s.lr(0) == doctest::Approx(0.1));
  CHECK(s.lr(2) == doctest::Approx(0.1));
  CHECK(s.lr(3) == doctest::Approx(0.01));
  CHECK(s.lr(5) == doctest::Approx(0.01));
  CHECK(s.lr(6) == doctest::Approx(0.001));
  CHECK(s.lr(100) == doctest::Approx(0.001));

  // floor + (base - floor) (1 + cos(pi t / T)) / 2 with base 1, floor 0.1, T 10:
  // t = 2: 0.1 + 0.9 * (1 + cos(0.2 pi)) / 2 = 0.1 + 0.9 * 0.904508497 = 0.914057647.
  CosineLR cos(1.0, 10, 0.1);
  CHECK(cos.lr(0) == doctest::Approx(1.0));
  CHECK(cos.lr(2) == doctest::Approx(0.9140576475).epsilon(1e-9));
  CHECK(cos.lr(5) == doctest::Approx(0.55));
  CHECK(cos.lr(10) == doctest::Approx(0.1));
  CHECK(cos.lr(25) == doctest::Approx(0.1));

  WarmupLR warm(std::make_shared<ConstantLR>(0.4), 4, 0.0);
  CHECK(warm.lr(0) == 0.0);
  CHECK(warm.lr(1) == doctest::Approx(0.1));
  CHECK(warm.lr(3) == doctest::Approx(0.3));
  CHECK(warm.lr(4) == doctest::Approx(0.4));
  WarmupLR warm_cos(std::make_shared<CosineLR>(1.0, 10, 0.0), 5, 0.5);
  CHECK(warm_cos.lr(0) == doctest::Approx(0.5));
  CHECK(warm_cos.lr(1) == doctest::Approx(0.6));
  CHECK(warm_cos.lr(5) == doctest::Approx(1.0));
  CHECK(warm_cos.lr(10) == doctest::Approx(0.5));  // the cosine's midpoint
  CHECK(warm_cos.lr(15) == doctest::Approx(0.0));
}

TEST_CASE("schedules: one-cycle follows PyTorch's OneCycleLR (cos)") {
  // max 1, 100 steps, pct 0.3, div 25, final div 1e4: initial 0.04, minimum 4e-6,
  // peak at step 0.3 * 100 - 1 = 29.
  OneCycleLR oc(1.0, 100, 0.3, 25.0, 1e4);
  CHECK(oc.lr(0) == doctest::Approx(0.04));
  // step 10: 1 + (0.04 - 1) / 2 * (cos(10 pi / 29) + 1) = 0.295163948.
  CHECK(oc.lr(10) == doctest::Approx(0.2951639485).epsilon(1e-9));
  CHECK(oc.lr(29) == doctest::Approx(1.0));
  // step 64 is halfway down: 4e-6 + (1 - 4e-6) / 2 = 0.500002.
  CHECK(oc.lr(64) == doctest::Approx(0.500002).epsilon(1e-12));
  CHECK(oc.lr(99) == doctest::Approx(4e-6).epsilon(1e-12));
  CHECK(oc.lr(150) == doctest::Approx(4e-6).epsilon(1e-12));
}

TEST_CASE("schedules: make_schedule and bad arguments") {
  auto s = make_schedule("step", 0.1, 100);
  CHECK(s->lr(49) == doctest::Approx(0.1));
  CHECK(s->lr(50) == doctest::Approx(0.01));
  CHECK(s->lr(75) == doctest::Approx(0.001));
  auto w = make_schedule("cosine", 0.1, 110, 10);
  CHECK(w->lr(5) == doctest::Approx(0.05));
  CHECK(w->lr(60) == doctest::Approx(0.05));
  CHECK(w->lr(110) == doctest::Approx(0.0));
  CHECK(make_schedule("onecycle", 1.0, 100)->lr(29) == doctest::Approx(1.0));
  CHECK_THROWS_WITH_AS(make_schedule("linear", 0.1, 10), doctest::Contains("unknown schedule 'linear'"),
                       Error);
  CHECK_THROWS_WITH_AS(StepLR(0.1, {5, 3}, 0.1), doctest::Contains("strictly increasing"), Error);
  CHECK_THROWS_WITH_AS(CosineLR(0.1, 0), doctest::Contains("total_steps"), Error);
}
