// Linear and Conv2d under bf16 matmul precision (core/precision.h): the forward output and
// the gradients of input, weight and bias of the float32 call against the same call in
// float64, within bfloat16 tolerances (inputs rounded to 8 significant bits: ~1e-2
// relative); each must also differ from the plain float32 result, so the bf16 path
// certainly ran. float64 never takes the bf16 path: its results and gradient checks are
// unchanged under the setting. Depthwise convolutions keep their float32 routes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "conv_params.h"
#include "core/cpu/conv/routes.h"
#include "core/ops.h"
#include "core/precision.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::geometry;
using ag::testing::random_leaf;

namespace {

using Op = std::function<Tensor(const Tensor& x, const Tensor& w, const Tensor& b)>;

// The forward output and the gradients of x, w, b (in that order), as float64 values.
std::vector<std::vector<double>> run(const Op& op, const Tensor& x64, const Tensor& w64, const Tensor& b64,
                                     DType dtype) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : {x64, w64, b64}) {
    Tensor leaf = t.detach().to(dtype);
    leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  Tensor out = op(leaves[0], leaves[1], leaves[2]);
  // A fixed upstream gradient with both signs.
  std::vector<double> up(static_cast<size_t>(out.numel()));
  for (size_t i = 0; i < up.size(); ++i) up[i] = std::sin(0.7 * static_cast<double>(i) + 0.3);
  out.backward(Tensor::from_vector(up, out.shape(), dtype));
  return {out.to_vector(), leaves[0].grad().to_vector(), leaves[1].grad().to_vector(),
          leaves[2].grad().to_vector()};
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Runs op in float64 (the reference), in float32 and in float32 under bf16 precision.
// expect_bf16: bf16 differs from float32 (the bf16 path ran) and lies within bfloat16
// tolerance of float64; otherwise bf16 equals float32 exactly (the op stays float32).
void check_op(const std::string& name, const Op& op, const Shape& xs, const Shape& ws, bool expect_bf16) {
  CAPTURE(name);
  Tensor x = Tensor::uniform(xs, -1, 1, DType::f64), w = Tensor::uniform(ws, -1, 1, DType::f64),
         b = Tensor::uniform({ws[0]}, -1, 1, DType::f64);
  const auto ref = run(op, x, w, b, DType::f64);
  const auto fp32 = run(op, x, w, b, DType::f32);
  std::vector<std::vector<double>> bf16, ref_under_bf16;
  {
    MatmulPrecisionGuard precision(MatmulPrecision::bf16);
    bf16 = run(op, x, w, b, DType::f32);
    ref_under_bf16 = run(op, x, w, b, DType::f64);
  }
  const std::string what[] = {"forward", "grad x", "grad weight", "grad bias"};
  for (size_t i = 0; i < ref.size(); ++i) {
    CAPTURE(what[i]);
    CHECK(ref_under_bf16[i] == ref[i]);  // float64 never rounds to bfloat16
    const double scale = max_abs(ref[i]);
    // Relative error, with a floor of a quarter of the largest value for elements near zero
    // (sums that cancel).
    double worst_bf16 = 0, worst_fp32 = 0, bf16_vs_fp32 = 0;
    for (size_t j = 0; j < ref[i].size(); ++j) {
      const double denom = std::abs(ref[i][j]) + 0.25 * scale;
      worst_bf16 = std::max(worst_bf16, std::abs(bf16[i][j] - ref[i][j]) / denom);
      worst_fp32 = std::max(worst_fp32, std::abs(fp32[i][j] - ref[i][j]) / denom);
      bf16_vs_fp32 = std::max(bf16_vs_fp32, std::abs(bf16[i][j] - fp32[i][j]) / scale);
    }
    INFO("worst relative error: bf16 " << worst_bf16 << ", fp32 " << worst_fp32 << "; bf16 vs fp32 "
                                       << bf16_vs_fp32);
    CHECK(worst_fp32 < 1e-3);  // float32 itself is far closer
    if (i == 3) {
      CHECK(bf16[i] == fp32[i]);  // the bias gradient is a float32 sum, never a GEMM
    } else if (expect_bf16) {
      CHECK(worst_bf16 < 1e-2);
      CHECK(bf16_vs_fp32 > 1e-5);  // rounding to bfloat16 happened
    } else {
      CHECK(bf16[i] == fp32[i]);
    }
  }
}

uint64_t bf16_route_calls() {
  uint64_t total = 0;
  for (const auto& c : cpu::conv_route_counts())
    if (std::string(c.route).find("bf16") != std::string::npos)
      total += c.calls;  // implicit_gemm_bf16*, im2col_bf16
  return total;
}

}  // namespace

TEST_CASE("bf16 matmul precision: linear forward and gradients against float64") {
  manual_seed(3);
  const Op op = [](const Tensor& x, const Tensor& w, const Tensor& b) { return linear(x, w, b); };
  check_op("linear 5x37 -> 11", op, {5, 37}, {11, 37}, true);
  check_op("linear 33x64 -> 10", op, {33, 64}, {10, 64}, true);
}

TEST_CASE("bf16 matmul precision: conv2d forward and gradients against float64") {
  manual_seed(4);
  struct Case {
    const char* name;
    Shape xs, ws;
    Conv2dParams p;
    bool bf16;
  };
  const Case cases[] = {
      {"1x1", {2, 8, 5, 5}, {6, 8, 1, 1}, geometry(1, 0, 1, 1), true},
      {"3x3 pad 1", {2, 5, 7, 6}, {7, 5, 3, 3}, geometry(1, 1, 1, 1), true},
      {"3x3 stride 2", {2, 4, 9, 9}, {6, 4, 3, 3}, geometry(2, 1, 1, 1), true},
      {"1x1 stride 2", {2, 8, 6, 6}, {4, 8, 1, 1}, geometry(2, 0, 1, 1), true},
      {"grouped", {2, 6, 6, 6}, {8, 3, 3, 3}, geometry(1, 1, 1, 2), true},
      {"depthwise (stays float32)", {2, 16, 8, 8}, {16, 1, 3, 3}, geometry(1, 1, 1, 16), false},
  };
  for (const Case& c : cases) {
    const uint64_t before = bf16_route_calls();
    const Op op = [&](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, c.p); };
    check_op(c.name, op, c.xs, c.ws, c.bf16);
    CHECK(bf16_route_calls() - before == (c.bf16 ? 3u : 0u));  // forward and both gradients
  }
}

TEST_CASE("bf16 matmul precision leaves float64 gradient checks unchanged") {
  manual_seed(5);
  MatmulPrecisionGuard precision(MatmulPrecision::bf16);
  Tensor x = random_leaf({3, 7}), w = random_leaf({4, 7}), b = random_leaf({4});
  CHECK_GRADCHECK([&] { return linear(x, w, b); }, {x, w, b});
  Tensor xc = random_leaf({2, 3, 5, 5}), wc = random_leaf({4, 3, 3, 3}), bc = random_leaf({4});
  CHECK_GRADCHECK([&] { return conv2d(xc, wc, bc, geometry(1, 1, 1, 1)); }, {xc, wc, bc});
  CHECK_GRADCHECK([&] { return conv2d(xc, wc, bc, geometry(2, 1, 1, 1)); }, {xc, wc, bc});
}

TEST_CASE("matmul precision: names, the guard, and plain matmul stays float32") {
  CHECK(parse_matmul_precision("bf16") == MatmulPrecision::bf16);
  CHECK(parse_matmul_precision("fp32") == MatmulPrecision::fp32);
  CHECK_THROWS_AS(parse_matmul_precision("fp16"), Error);
  CHECK(std::string(precision_name(MatmulPrecision::bf16)) == "bf16");
  CHECK(matmul_precision() == MatmulPrecision::fp32);
  {
    MatmulPrecisionGuard outer(MatmulPrecision::bf16);
    CHECK(matmul_precision() == MatmulPrecision::bf16);
    {
      MatmulPrecisionGuard inner(MatmulPrecision::fp32);
      CHECK(matmul_precision() == MatmulPrecision::fp32);
    }
    CHECK(matmul_precision() == MatmulPrecision::bf16);
    Tensor a = Tensor::uniform({4, 9}, -1, 1), b = Tensor::uniform({9, 5}, -1, 1);
    Tensor under_bf16 = matmul(a, b);
    MatmulPrecisionGuard off(MatmulPrecision::fp32);
    CHECK(under_bf16.to_vector() == matmul(a, b).to_vector());
  }
  CHECK(matmul_precision() == MatmulPrecision::fp32);
}
