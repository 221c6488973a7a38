// Elementwise ops: forward values worked out by hand, broadcasting, awkward shapes, and
// float64 gradient checks of every op over every input.
#include <omp.h>

#include <cmath>
#include <iterator>
#include <limits>

#include "core/kernels.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::random_leaf;

namespace {
Tensor vec(std::vector<double> v, Shape shape) { return Tensor::from_vector(v, shape, DType::f64); }
void check_close(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  std::vector<double> got = t.to_vector();
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(tol));
}
}  // namespace

TEST_CASE("binary ops: values") {
  Tensor a = vec({1, 2, 3, 4}, {2, 2}), b = vec({5, 6, 7, 8}, {2, 2});
  check_close(add(a, b), {6, 8, 10, 12});
  check_close(sub(a, b), {-4, -4, -4, -4});
  check_close(mul(a, b), {5, 12, 21, 32});
  check_close(div(a, b), {0.2, 2.0 / 6, 3.0 / 7, 0.5});
  check_close(a + 1.0, {2, 3, 4, 5});
  check_close(2.0 * a - 1.0, {1, 3, 5, 7});
  check_close(a / 2.0, {0.5, 1, 1.5, 2});
  check_close(-a, {-1, -2, -3, -4});
}

TEST_CASE("broadcasting follows NumPy") {
  Tensor a = vec({1, 2, 3, 4, 5, 6}, {2, 3});
  check_close(add(a, vec({10, 20, 30}, {3})), {11, 22, 33, 14, 25, 36});
  check_close(add(a, vec({100, 200}, {2, 1})), {101, 102, 103, 204, 205, 206});
  check_close(mul(vec({1, 2}, {2, 1, 1}), vec({1, 10, 100}, {1, 3})),  // -> [2,1,3]
              {1, 10, 100, 2, 20, 200});
  CHECK(add(vec({1, 2}, {2, 1}), vec({1, 2, 3}, {1, 3})).shape() == Shape{2, 3});
  CHECK(add(vec({7}, {}), a).shape() == Shape{2, 3});
  CHECK_THROWS_WITH_AS(add(a, vec({1, 2}, {2})), doctest::Contains("[2,3] and [2] cannot be broadcast"),
                       Error);
  CHECK_THROWS_AS(add(a, a.to(DType::f32)), Error);
}

TEST_CASE("binary ops on non-contiguous inputs") {
  Tensor a = vec({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor at = a.t();  // [3,2]: 1 4 / 2 5 / 3 6
  check_close(add(at, vec({10, 20}, {2})), {11, 24, 12, 25, 13, 26});
}

TEST_CASE("unary ops: values") {
  Tensor x = vec({0.5, -0.25}, {2});
  check_close(exp(x), {std::exp(0.5), std::exp(-0.25)});
  check_close(log(vec({1, std::exp(2.0)}, {2})), {0, 2});
  check_close(sqrt(vec({4, 9}, {2})), {2, 3});
  check_close(pow(vec({2, 3}, {2}), 3.0), {8, 27});
  check_close(abs(x), {0.5, 0.25});
  check_close(clamp(vec({-2, 0.5, 3}, {3}), -1, 1), {-1, 0.5, 1});
  check_close(sin(x), {std::sin(0.5), std::sin(-0.25)});
  check_close(cos(x), {std::cos(0.5), std::cos(-0.25)});
  check_close(acos(x), {std::acos(0.5), std::acos(-0.25)});
  CHECK_THROWS_AS(clamp(x, 1, -1), Error);
}

TEST_CASE("activations: values") {
  Tensor x = vec({-4, -1, 0.5, 3, 7}, {5});
  check_close(relu(x), {0, 0, 0.5, 3, 7});
  check_close(relu6(x), {0, 0, 0.5, 3, 6});
  check_close(sigmoid(vec({0}, {1})), {0.5});
  check_close(tanh(vec({0.5}, {1})), {std::tanh(0.5)});
  check_close(silu(vec({1}, {1})), {1.0 / (1 + std::exp(-1.0))});
  check_close(hardswish(x), {0, -1.0 * 2 / 6, 0.5 * 3.5 / 6, 3, 7});
  // Large magnitudes stay finite.
  for (double v : sigmoid(vec({-800, 800}, {2})).to_vector()) CHECK(std::isfinite(v));
}

TEST_CASE("ReLU and ReLU6 pass the gradient where they pass the value, else exactly 0") {
  // An infinite or NaN gradient where the activation blocked gives 0, not NaN (a select,
  // not a product with 0), in float32 and float64 alike.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = vec({-4, -1, 0.5, 3, 7}, {5}).to(dt);
    Tensor g = vec({inf, nan, 2, -3, 5}, {5}).to(dt);
    Tensor gx = Tensor::empty({5}, dt);
    cpu::activation_backward(gx, g, x, relu(x), Activation::relu);
    check_close(gx, {0, 0, 2, -3, 5});
    cpu::activation_backward(gx, g, x, relu6(x), Activation::relu6);
    check_close(gx, {0, 0, 2, -3, 0});
  }
}

TEST_CASE("activations: one vocabulary, by name and by enum") {
  const Activation all[] = {Activation::none,    Activation::relu,      Activation::relu6, Activation::silu,
                            Activation::sigmoid, Activation::hardswish, Activation::tanh};
  for (Activation a : all) CHECK(parse_activation(activation_name(a)) == a);
  CHECK(std::string(activation_title(Activation::relu6)) == "ReLU6");
  CHECK(std::string(activation_title(Activation::none)) == "Identity");
  CHECK_THROWS_WITH_AS(parse_activation("ReLU"), doctest::Contains("unknown activation 'ReLU'"), Error);
  // The fused kernels take exactly the activations whose derivative is a mask of the output.
  for (Activation a : all)
    CHECK(is_fusable(a) == (a == Activation::none || a == Activation::relu || a == Activation::relu6));
  Tensor x = vec({-4, -1, 0.5, 3, 7}, {5});
  CHECK(activate(x, Activation::none).same(x));
  check_close(activate(x, Activation::relu6), {0, 0, 0.5, 3, 6});
  CHECK_THROWS_WITH_AS(activate(Tensor::from_labels({1, 2}), Activation::relu),
                       doctest::Contains("relu: needs a float tensor"), Error);
}

// float32 SiLU and sigmoid (forward) and SiLU's gradient run through a vectorised exp on
// AVX-512 or AVX2 (core/cpu/simd_math.h): they must agree with float64 to a few float32 ulps,
// across the whole range (tails where exp under- or overflows included), on a length that
// is no multiple of 16 or 8 (the masked tail) and above the parallel threshold, and keep the
// scalar loop's answers at +-inf, NaN and +-0.
TEST_CASE("float32 SiLU and sigmoid agree with float64 over the whole range") {
  const int64_t n = kParallelThreshold + 37;
  std::vector<double> xs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    xs[static_cast<size_t>(i)] = -120.0 + 240.0 * static_cast<double>(i) / (n - 1);
  const double specials[] = {0.0, -0.0, 1e-30, -1e-30, -87.5, 88.5, -100.0, 100.0};
  for (size_t i = 0; i < std::size(specials); ++i) xs[i * 997] = specials[i];
  Tensor x64 = Tensor::from_vector(xs, {n}, DType::f64), x32 = x64.to(DType::f32);
  x64 = x32.to(DType::f64);  // the same inputs, exactly
  Tensor g64 = Tensor::uniform({n}, -1, 1).to(DType::f32).to(DType::f64), g32 = g64.to(DType::f32);
  // floor: where the error is measured absolutely (see below)
  auto check = [&](const Tensor& got32, const Tensor& want64, const char* what,
                   const std::vector<double>& floor, double tol) {
    const std::vector<double> a = got32.to_vector(), b = want64.to_vector();
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(std::abs(b[i]), floor[i]));
    INFO(std::string(what) << ": worst relative error " << worst);
    CHECK(worst < tol);
  };
  Tensor y32 = Tensor::empty({n}, DType::f32), y64 = Tensor::empty({n}, DType::f64);
  for (Activation act : {Activation::sigmoid, Activation::silu}) {
    activation_forward(y32, x32, act);
    activation_forward(y64, x64, act);
    // relative; absolute below 1e-30, where float32 (either loop) flushes exp(+-89 and
    // beyond) to inf or 0 and the results fall into or below the denormals
    check(y32, y64, activation_name(act), std::vector<double>(static_cast<size_t>(n), 1e-30),
          1e-6);  // 8 ulps
  }
  Tensor gx32 = Tensor::empty({n}, DType::f32), gx64 = Tensor::empty({n}, DType::f64);
  activation_backward(gx32, g32, x32, y32, Activation::silu);
  activation_backward(gx64, g64, x64, y64, Activation::silu);
  // the gradient g silu'(x) relative to |g| / 100 at least: silu' crosses zero at
  // x = -1.28, where 1 + x (1 - s) cancels in float32 whichever the loop (the scalar one
  // measured 1.4e-6 here, as the vectorised one)
  std::vector<double> floor = g64.to_vector();
  for (double& f : floor) f = std::max(std::abs(f) / 100, 1e-30);
  check(gx32, gx64, "silu gradient", floor, 4e-6);

  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  Tensor edge = Tensor::from_vector({-inf, inf, nan, -0.0, 0.0}, {5}, DType::f64).to(DType::f32);
  Tensor s = Tensor::empty({5}, DType::f32), sg = Tensor::empty({5}, DType::f32);
  activation_forward(s, edge, Activation::silu);
  activation_forward(sg, edge, Activation::sigmoid);
  const std::vector<double> sv = s.to_vector(), sgv = sg.to_vector();
  CHECK(std::isnan(sv[0]));  // -inf / inf, as the scalar x / (1 + exp(-x))
  CHECK(sv[1] == inf);
  CHECK(std::isnan(sv[2]));
  CHECK((sv[3] == 0 && std::signbit(sv[3])));
  CHECK((sv[4] == 0 && !std::signbit(sv[4])));
  CHECK(sgv[0] == 0);
  CHECK(sgv[1] == 1);
  CHECK(std::isnan(sgv[2]));
  CHECK(sgv[3] == 0.5);
}

TEST_CASE("where selects elementwise") {
  Tensor cond = Tensor::from_vector({1, 0, 1}, {3}, DType::i64);
  check_close(where(cond, vec({1, 2, 3}, {3}), vec({-1, -2, -3}, {3})), {1, -2, 3});
  CHECK_THROWS_AS(where(cond, vec({1, 2}, {2}), vec({1, 2}, {2})), Error);
}

TEST_CASE("gradcheck: binary ops with broadcasting and awkward shapes") {
  Tensor a = random_leaf({2, 3, 4});
  Tensor b = random_leaf({3, 1});
  Tensor c = random_leaf({1, 1, 4}, 0.5, 2.0);  // kept away from 0 for div
  Tensor s = random_leaf({}, 0.5, 2.0);
  CHECK_GRADCHECK([&] { return add(a, b); }, {a, b});
  CHECK_GRADCHECK([&] { return sub(b, a); }, {a, b});
  CHECK_GRADCHECK([&] { return mul(a, c); }, {a, c});
  CHECK_GRADCHECK([&] { return div(a, c); }, {a, c});
  CHECK_GRADCHECK([&] { return div(s, c); }, {s, c});
  CHECK_GRADCHECK([&] { return mul(a.transpose(1, 2), b.t()); }, {a, b});  // non-contiguous
  Tensor one = random_leaf({1});
  CHECK_GRADCHECK([&] { return mul(one, one); }, {one});
}

TEST_CASE("gradcheck: unary math") {
  Tensor x = random_leaf({3, 4}, -0.9, 0.9);
  Tensor pos = random_leaf({2, 3}, 0.2, 2.0);
  CHECK_GRADCHECK([&] { return neg(x); }, {x});
  CHECK_GRADCHECK([&] { return exp(x); }, {x});
  CHECK_GRADCHECK([&] { return log(pos); }, {pos});
  CHECK_GRADCHECK([&] { return sqrt(pos); }, {pos});
  CHECK_GRADCHECK([&] { return pow(pos, 2.5); }, {pos});
  CHECK_GRADCHECK([&] { return pow(x, 2.0); }, {x});
  CHECK_GRADCHECK([&] { return sin(x); }, {x});
  CHECK_GRADCHECK([&] { return cos(x); }, {x});
  CHECK_GRADCHECK([&] { return acos(x); }, {x});
  CHECK_GRADCHECK([&] { return sin(x.t()); }, {x});  // non-contiguous input
}

TEST_CASE("gradcheck: kinked functions, inputs kept off the kinks") {
  // Values at least 0.05 away from the kinks at 0, +-1, 6, +-3.
  Tensor x =
      Tensor::from_vector({-7, -3.5, -2, -0.6, -0.3, 0.2, 0.7, 1.5, 2.5, 4, 5.5, 6.5}, {3, 4}, DType::f64)
          .set_requires_grad(true);
  CHECK_GRADCHECK([&] { return abs(x); }, {x});
  CHECK_GRADCHECK([&] { return clamp(x, -1, 1); }, {x});
  CHECK_GRADCHECK([&] { return relu(x); }, {x});
  CHECK_GRADCHECK([&] { return relu6(x); }, {x});
  CHECK_GRADCHECK([&] { return hardswish(x); }, {x});
}

TEST_CASE("gradcheck: smooth activations") {
  Tensor x = random_leaf({2, 5}, -3, 3);
  CHECK_GRADCHECK([&] { return silu(x); }, {x});
  CHECK_GRADCHECK([&] { return sigmoid(x); }, {x});
  CHECK_GRADCHECK([&] { return tanh(x); }, {x});
}

TEST_CASE("gradcheck: where") {
  Tensor a = random_leaf({2, 3}), b = random_leaf({2, 3});
  Tensor cond = Tensor::from_vector({1, 0, 0, 1, 1, 0}, {2, 3}, DType::f64);
  CHECK_GRADCHECK([&] { return where(cond, a, b); }, {a, b});
}

TEST_CASE("0-d tensors: scalar with scalar, and reductions times a number") {
  CHECK((Tensor::scalar(2.0) * 3.0).item() == 6.0);
  CHECK(add(Tensor::scalar(1.0), Tensor::scalar(2.5)).dim() == 0);
  Tensor x = random_leaf({3});
  CHECK_GRADCHECK([&] { return mul(mean(x), 0.5); }, {x});
  Tensor s = random_leaf({}), t = random_leaf({}, 0.5, 2.0);
  CHECK_GRADCHECK([&] { return div(s, t); }, {s, t});
}

TEST_CASE("float32 ops compute in float32") {
  Tensor a = Tensor::from_vector({1, 2}, {2}), b = Tensor::from_vector({3, 4}, {2});
  Tensor c = mul(a, b);
  CHECK(c.dtype() == DType::f32);
  CHECK(c.to_vector() == std::vector<double>{3, 8});
}

TEST_CASE("large tensors take the parallel path and agree with the serial one") {
  Tensor a = Tensor::uniform({300, 500}, -1, 1, DType::f64);
  Tensor b = Tensor::uniform({500}, -1, 1, DType::f64);
  REQUIRE(a.numel() > kParallelThreshold);
  const int saved_threads = num_threads();
  const int saved_dynamic = omp_get_dynamic();
  // Serial: one thread. Parallel: four, and OpenMP may not quietly hand out fewer (dynamic
  // adjustment off), so the loops really split even on a one- or two-core machine.
  set_num_threads(1);
  const std::vector<double> serial_add = add(a, b).to_vector(), serial_relu = relu(a).to_vector();
  omp_set_dynamic(0);
  set_num_threads(4);
  int team = 0;
#pragma omp parallel if (a.numel() > kParallelThreshold)
  {
#pragma omp single
    team = omp_get_num_threads();
  }
  const std::vector<double> parallel_add = add(a, b).to_vector(), parallel_relu = relu(a).to_vector();
  set_num_threads(saved_threads);
  omp_set_dynamic(saved_dynamic);
  CHECK(team == 4);  // the kernels' parallel regions, under the same if(), got four threads
  CHECK(parallel_add == serial_add);
  CHECK(parallel_relu == serial_relu);
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  size_t wrong = 0;  // elements of the serial results that differ from the formula
  for (size_t i = 0; i < va.size(); ++i)
    wrong += serial_add[i] != va[i] + vb[i % 500] || serial_relu[i] != std::max(0.0, va[i]);
  CHECK(wrong == 0);
}
