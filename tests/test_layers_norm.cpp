// Batch normalisation (train and eval, 1d and 2d, affine or not, fused activations),
// dropout and the fused residual add: hand-worked values and float64 gradient checks.
#include <cmath>

#include "core/ops.h"
#include "core/random.h"
#include "gradcheck.h"
#include "layers/batch_norm.h"

using namespace ag;
using ag::testing::random_leaf;

TEST_CASE("batch_norm training: batch statistics and running averages by hand") {
  // one channel holding 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 1, 1, 2}, DType::f64);
  Tensor rm = Tensor::zeros({1}, DType::f64), rv = Tensor::ones({1}, DType::f64);
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  const double s = 1 / std::sqrt(1.25 + 1e-5);
  std::vector<double> got = y.to_vector();
  std::vector<double> want{-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s};
  for (int i = 0; i < 4; ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  CHECK(rm.item() == doctest::Approx(0.25));                   // 0.9 * 0 + 0.1 * 2.5
  CHECK(rv.item() == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0));  // unbiased variance
  // gamma and beta scale and shift per channel; the fused ReLU clips the negatives
  Tensor g = Tensor::from_vector({2}, {1}, DType::f64), b = Tensor::from_vector({1}, {1}, DType::f64);
  got = batch_norm(x, g, b, Tensor(), Tensor(), true, 0.1, 1e-5, Activation::relu).to_vector();
  CHECK(got[0] == 0);  // 2 * -1.5 s + 1 < 0
  CHECK(got[1] == doctest::Approx(std::max(0.0, -1.0 * s + 1)));
  CHECK(got[3] == doctest::Approx(3 * s + 1));
}

TEST_CASE("batch_norm eval uses the running statistics, per channel") {
  // two channels; channel 0 with mean 1, var 4; channel 1 with mean -2, var 0.25
  Tensor x = Tensor::from_vector({3, 5, 0, -1}, {1, 2, 2, 1}, DType::f64);
  Tensor rm = Tensor::from_vector({1, -2}, {2}, DType::f64),
         rv = Tensor::from_vector({4, 0.25}, {2}, DType::f64);
  Tensor g = Tensor::from_vector({1, 10}, {2}, DType::f64), b = Tensor::from_vector({0, 7}, {2}, DType::f64);
  std::vector<double> got = batch_norm(x, g, b, rm, rv, false, 0.1, 1e-12).to_vector();
  CHECK(got[0] == doctest::Approx(1.0));                // (3 - 1) / 2
  CHECK(got[1] == doctest::Approx(2.0));                // (5 - 1) / 2
  CHECK(got[2] == doctest::Approx(10 * 4.0 + 7));       // (0 + 2) / 0.5 * 10 + 7
  CHECK(got[3] == doctest::Approx(10 * 2.0 + 7));       // (-1 + 2) / 0.5 * 10 + 7
  CHECK(rm.to_vector() == std::vector<double>{1, -2});  // eval leaves the buffers alone
  // relu6 clips at 6 from above
  got = batch_norm(x, g, b, rm, rv, false, 0.1, 1e-12, Activation::relu6).to_vector();
  CHECK(got[0] == doctest::Approx(1.0));
  CHECK(got[1] == doctest::Approx(2.0));
  CHECK(got[2] == 6);
  CHECK(got[3] == 6);
}

TEST_CASE("batch_norm gradient checks: train and eval, 1d and 2d, fused activations") {
  manual_seed(3);
  struct Case {
    const char* name;
    Shape xs;
    bool training, affine;
    Activation act;
  };
  const Case cases[] = {
      {"2d train", {3, 2, 3, 3}, true, true, Activation::none},
      {"2d eval", {2, 3, 2, 3}, false, true, Activation::none},
      {"2d train + relu", {2, 2, 3, 3}, true, true, Activation::relu},
      {"2d eval + relu6", {2, 2, 2, 2}, false, true, Activation::relu6},
      {"1d [N, C] train", {5, 3}, true, true, Activation::none},
      {"1d [N, C, L] train", {2, 3, 4}, true, true, Activation::none},
      {"no affine train", {2, 2, 2, 3}, true, false, Activation::none},
      {"batch 1 train", {1, 2, 3, 3}, true, true, Activation::none},
      // planes of more than 64 values take the per-row loops, smaller ones the channel
      // blocks (core/cpu/batch_norm.cpp, kSmallPlane): both, each activation
      {"2d train, 9x9 planes + relu", {2, 2, 9, 9}, true, true, Activation::relu},
      {"2d eval, 9x9 planes + relu6", {2, 2, 9, 9}, false, true, Activation::relu6},
      {"2d train, 1x1 planes + relu6", {6, 5, 1, 1}, true, true, Activation::relu6},
      {"2d train, 8x8 planes, no affine", {2, 3, 8, 8}, true, false, Activation::none},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const int64_t ch = c.xs[1];
    Tensor x = random_leaf(c.xs, -2, 2);
    Tensor gamma = c.affine ? random_leaf({ch}, 0.5, 1.5) : Tensor();
    Tensor beta = c.affine ? random_leaf({ch}, -0.5, 0.5) : Tensor();
    Tensor rm = Tensor::uniform({ch}, -0.5, 0.5, DType::f64), rv = Tensor::uniform({ch}, 0.5, 2, DType::f64);
    std::vector<Tensor> wrt{x};
    if (c.affine) wrt.insert(wrt.end(), {gamma, beta});
    CHECK_GRADCHECK([&] { return batch_norm(x, gamma, beta, rm, rv, c.training, 0.1, 1e-5, c.act); }, wrt);
  }
}

TEST_CASE("batch_norm in float32 over a large batch matches float64, forward and backward") {
  manual_seed(5);
  // 16x16 planes (per-row loops) and 2x2 ones with many channels (channel blocks), both
  // with a mean far from zero and a fused ReLU
  for (const Shape& shape : {Shape{64, 3, 16, 16}, Shape{512, 40, 2, 2}}) {
    CAPTURE(shape_str(shape));
    const int64_t c = shape[1];
    Tensor x64 = Tensor::normal(shape, 3.0, 2.0, DType::f64),
           g64 = Tensor::normal(shape, 0.0, 1.0, DType::f64);
    Tensor gamma64 = Tensor::uniform({c}, 0.5, 1.5, DType::f64),
           beta64 = Tensor::uniform({c}, -0.5, 0.5, DType::f64);
    double worst_y = 0, worst_gx = 0, worst_gp = 0;
    std::vector<double> y[2], gx[2], gg[2], gb[2];
    for (int k = 0; k < 2; ++k) {
      const DType t = k == 0 ? DType::f64 : DType::f32;
      Tensor x = x64.to(t).detach(), gamma = gamma64.to(t).detach(), beta = beta64.to(t).detach();
      for (Tensor* leaf : {&x, &gamma, &beta}) leaf->set_requires_grad(true);
      Tensor out = batch_norm(x, gamma, beta, Tensor(), Tensor(), true, 0.1, 1e-5, Activation::relu);
      out.backward(g64.to(t));
      y[k] = out.to_vector(), gx[k] = x.grad().to_vector(), gg[k] = gamma.grad().to_vector(),
      gb[k] = beta.grad().to_vector();
    }
    for (size_t i = 0; i < y[0].size(); ++i) {
      worst_y = std::max(worst_y, std::abs(y[0][i] - y[1][i]));
      worst_gx = std::max(worst_gx, std::abs(gx[0][i] - gx[1][i]));
    }
    for (size_t i = 0; i < gg[0].size(); ++i)
      worst_gp = std::max({worst_gp, std::abs(gg[0][i] - gg[1][i]) / (1 + std::abs(gg[0][i])),
                           std::abs(gb[0][i] - gb[1][i]) / (1 + std::abs(gb[0][i]))});
    CHECK(worst_y < 1e-4);
    CHECK(worst_gx < 1e-4);
    CHECK(worst_gp < 1e-4);
  }
}

// x [N, C, *] float32 whose values sit within a few ulps either side of at[c] in channel
// c, the rest (every fourth) spread wide either side in pairs +-d (so that the mean of a
// channel stays within the crowd).
Tensor crowd_around(const Shape& shape, const std::vector<double>& at) {
  const int64_t c = shape[1], per = shape_numel(shape) / (shape[0] * c);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (int64_t n = 0; n < shape[0]; ++n)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t q = 0; q < per; ++q) {
        const int64_t k = n * per + q;  // position within the channel
        float x = static_cast<float>(at[static_cast<size_t>(ch)]);
        if (k % 4 == 3) {
          x += (k % 8 == 3 ? 1.f : -1.f) * (1.f + static_cast<float>(k / 8 % 5));
        } else {
          for (int64_t step = 0; step < k % 13; ++step)  // up to 12 ulps
            x = std::nextafter(x, k % 2 ? 1e9f : -1e9f);
        }
        v[static_cast<size_t>((n * c + ch) * per + q)] = x;
      }
  return Tensor::from_vector(v, shape, DType::f32);
}

// Whether the activation passes v (its gradient flows).
bool passes(double v, Activation act) { return v > 0 && (act != Activation::relu6 || v < 6); }

// With grad_out all ones, grad_beta [C] counts the values y [N, C, *] the activation passed.
void check_passed_counts(const Tensor& grad_beta, const std::vector<double>& y, const Shape& shape,
                         Activation act) {
  const int64_t c = shape[1], per = shape_numel(shape) / (shape[0] * c);
  const std::vector<double> gb = grad_beta.to_vector();
  for (int64_t ch = 0; ch < c; ++ch) {
    int64_t passed = 0;
    for (int64_t n = 0; n < shape[0]; ++n)
      for (int64_t q = 0; q < per; ++q) passed += passes(y[static_cast<size_t>((n * c + ch) * per + q)], act);
    CHECK(gb[static_cast<size_t>(ch)] == static_cast<double>(passed));
  }
}

TEST_CASE("batch_norm's backward passes the gradient exactly where the fused activation did") {
  // The CPU backward recomputes the activation's input from x instead of reading y: for
  // inputs within rounding of ReLU's 0 and ReLU6's 0 and 6 the two must agree value by
  // value (a product and sum rounded twice in one pass and fused in the other disagree on
  // a few of these). 16 channels of varied statistics; row loops (32x32 planes) and
  // channel blocks (2x2), float32, eval and train.
  constexpr int64_t kC = 16;
  std::vector<double> gamma_v, beta_v, rm_v, rv_v;
  for (int64_t ch = 0; ch < kC; ++ch) {
    gamma_v.push_back(0.45 + 0.17 * static_cast<double>(ch));
    beta_v.push_back(0.3 - 0.07 * static_cast<double>(ch));
    rm_v.push_back(0.23 * static_cast<double>(ch) - 1.1);
    rv_v.push_back(0.5 + 0.31 * static_cast<double>(ch));
  }
  for (const Shape& shape : {Shape{2, kC, 32, 32}, Shape{64, kC, 2, 2}})
    for (Activation act : {Activation::relu, Activation::relu6}) {
      CAPTURE(shape_str(shape));
      CAPTURE(activation_name(act));
      std::vector<double> betas = beta_v;
      if (act == Activation::relu6)  // odd channels: the edge at 6
        for (int64_t ch = 1; ch < kC; ch += 2) betas[static_cast<size_t>(ch)] += 6;
      Tensor gamma = Tensor::from_vector(gamma_v, {kC}, DType::f32),
             beta = Tensor::from_vector(betas, {kC}, DType::f32),
             rm = Tensor::from_vector(rm_v, {kC}, DType::f32),
             rv = Tensor::from_vector(rv_v, {kC}, DType::f32);
      // eval: the edge sits at x = mean + (edge - beta) / (gamma invstd)
      const std::vector<double> g32 = gamma.to_vector(), b32 = beta.to_vector(), m32 = rm.to_vector(),
                                v32 = rv.to_vector();
      std::vector<double> at(kC);
      for (size_t ch = 0; ch < at.size(); ++ch) {
        const double edge = act == Activation::relu6 && ch % 2 == 1 ? 6.0 : 0.0;
        at[ch] = m32[ch] + (edge - b32[ch]) * std::sqrt(v32[ch] + 1e-5) / g32[ch];
      }
      Tensor x = crowd_around(shape, at).detach();
      x.set_requires_grad(true);
      beta.set_requires_grad(true);
      Tensor y = batch_norm(x, gamma, beta, rm, rv, false, 0.1, 1e-5, act);
      y.backward(Tensor::ones(shape, DType::f32));
      const std::vector<double> yv = y.to_vector(), gx = x.grad().to_vector();
      int64_t mismatches = 0, clipped = 0;
      for (size_t i = 0; i < yv.size(); ++i) {
        clipped += passes(yv[i], act) ? 0 : 1;
        mismatches += passes(yv[i], act) != (gx[i] != 0) ? 1 : 0;
      }
      CHECK(clipped > static_cast<int64_t>(yv.size()) / 4);
      CHECK(clipped < static_cast<int64_t>(yv.size()) * 3 / 4);
      CHECK(mismatches == 0);
      check_passed_counts(beta.grad(), yv, shape, act);
      // train: beta 0 and gamma 1 put the edge at the batch mean, where the crowd sits;
      // with grad_out all ones grad_beta counts the values the activation passed
      std::vector<double> centres(kC);
      for (size_t ch = 0; ch < centres.size(); ++ch) centres[ch] = 0.37 * static_cast<double>(ch) - 2.5;
      Tensor xt = crowd_around(shape, centres);
      Tensor b = Tensor::zeros({kC}, DType::f32).detach();
      b.set_requires_grad(true);
      Tensor yt = batch_norm(xt, Tensor::ones({kC}, DType::f32), b, Tensor(), Tensor(), true, 0.1, 1e-5, act);
      yt.backward(Tensor::ones(shape, DType::f32));
      check_passed_counts(b.grad(), yt.to_vector(), shape, act);
    }
}

TEST_CASE("batch_norm rejects bad arguments") {
  Tensor x = Tensor::zeros({2, 3, 4, 4});
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("weight (gamma) must be a contiguous [3]"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                       doctest::Contains("eval mode needs running_mean"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(Tensor::zeros({3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("[N, C]"), Error);
  // Only a fusable activation can ride along in the normalisation pass.
  CHECK_THROWS_WITH_AS(
      batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, Activation::silu),
      doctest::Contains("cannot fuse the activation silu"), Error);
  CHECK_THROWS_WITH_AS(BatchNorm2d(3, 1e-5, 0.1, true, Activation::tanh),
                       doctest::Contains("BatchNorm: cannot fuse the activation tanh"), Error);
}

TEST_CASE("residual_add with a fused ReLU: values and gradients") {
  Tensor a = Tensor::from_vector({1, -2, 3}, {3}), b = Tensor::from_vector({0.5, 1, -4}, {3});
  CHECK(residual_add(a, b).to_vector() == std::vector<double>{1.5, -1, -1});
  CHECK(residual_add(a, b, Activation::relu).to_vector() == std::vector<double>{1.5, 0, 0});
  CHECK_THROWS_WITH_AS(residual_add(a, Tensor::zeros({4})), doctest::Contains("differ in shape"), Error);
  CHECK_THROWS_WITH_AS(residual_add(a, b, Activation::sigmoid), doctest::Contains("cannot be fused"), Error);
  manual_seed(9);
  Tensor x = random_leaf({2, 3, 2, 2}), y = random_leaf({2, 3, 2, 2});
  CHECK_GRADCHECK([&] { return residual_add(x, y, Activation::relu); }, {x, y});
  CHECK_GRADCHECK([&] { return residual_add(x, y); }, {x, y});
  // the same tensor on both sides gets both contributions
  CHECK_GRADCHECK([&] { return residual_add(x, x, Activation::relu6); }, {x});
}

TEST_CASE("dropout: identity in eval, inverted scaling in training, seeded") {
  Tensor x = Tensor::ones({1000}, DType::f64);
  CHECK(dropout(x, 0.3, false).same(x));
  CHECK(dropout(x, 0.0, true).same(x));
  manual_seed(123);
  std::vector<double> a = dropout(x, 0.25, true).to_vector();
  manual_seed(123);
  std::vector<double> b = dropout(x, 0.25, true).to_vector();
  CHECK(a == b);
  int zeros = 0;
  for (double v : a) {
    CHECK((v == 0 || v == doctest::Approx(1 / 0.75)));
    zeros += v == 0;
  }
  CHECK(zeros > 200);  // about 250 of 1000
  CHECK(zeros < 300);
  CHECK_THROWS_WITH_AS(dropout(x, 1.0, true), doctest::Contains("[0, 1)"), Error);
  // the gradient is the mask: check it with the mask fixed by reseeding before each call
  Tensor leaf = random_leaf({4, 5});
  CHECK_GRADCHECK(
      [&] {
        manual_seed(77);
        return dropout(leaf, 0.5, true);
      },
      {leaf});
}
