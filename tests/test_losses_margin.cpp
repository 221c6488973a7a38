// The cosine head and the margin family: values worked out by hand, the identities between
// the losses, the normalised-softmax floor, zero features and large s, errors.
// Gradient checks are in test_losses_margin_grad.cpp.
#include <cmath>
#include <numbers>
#include <string>

#include "core/ops.h"
#include "gradcheck.h"
#include "losses/cosine_head.h"
#include "losses/cross_entropy.h"
#include "losses/margin.h"
#include "test_losses_util.h"

using namespace ag;
using ag_test::max_abs_diff;
constexpr double kPi = std::numbers::pi;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Cosines of one feature at angle a (2-d) against class rows at angles 0 and pi/2: row 0
// has cos a, row 1 has sin a. Label 0: theta_y = a (for a in [0, pi]).
Tensor two_class_cos(double a) { return Tensor::from_vector({std::cos(a), std::sin(a)}, {1, 2}, DType::f64); }

// -log softmax([t, o])[0] for target logit t and other logit o.
double two_class_loss(double t, double o) { return std::log(1 + std::exp(o - t)); }

// A head in float64 with weight rows set to the given values.
std::shared_ptr<CosineHead> head_with(const std::vector<double>& w, int64_t classes, int64_t dim) {
  auto head = std::make_shared<CosineHead>(dim, classes);
  head->to(DType::f64);
  head->weight().copy_(Tensor::from_vector(w, {classes, dim}, DType::f64));
  return head;
}
}  // namespace

TEST_CASE("CosineHead: cosines of known vectors, parameter name and shape") {
  auto head = head_with({2, 0, 0, 0, -3, 0, 1, 1, 0}, 3, 3);
  auto named = head->named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.shape() == Shape{3, 3});
  Tensor x = Tensor::from_vector({5, 0, 0, 0, 0, 7, 1, 1, 1}, {3, 3}, DType::f64);
  const double r = 1 / std::sqrt(2.0), t = 1 / std::sqrt(3.0);
  std::vector<double> expected = {1, 0, r, 0, 0, 0, t, -t, 2 * t * r};
  CHECK(max_abs_diff(head->forward(x).to_vector(), expected) < 1e-14);
  CHECK_THROWS_AS(head->forward(Tensor::zeros({2, 4}, DType::f64)), Error);
  CHECK_THROWS_AS(CosineHead(0, 3), Error);
}

TEST_CASE("CosineHead: Xavier-uniform initialisation within its bound") {
  manual_seed(1);
  CosineHead head(64, 10);
  const double bound = std::sqrt(6.0 / 74.0);
  double lo = 1, hi = -1;
  for (double v : head.weight().to_vector()) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > 1.5 * bound);  // spread over the interval, not a constant
}

TEST_CASE("margin logits: values worked out by hand") {
  Tensor label0 = Tensor::from_labels({0});
  const double s = 4;
  SUBCASE("normface and cosface") {
    std::vector<double> v = normface_logits(two_class_cos(0.3), s).to_vector();
    CHECK(v[0] == doctest::Approx(s * std::cos(0.3)));
    v = cosface_logits(two_class_cos(0.3), label0, s, 0.35).to_vector();
    CHECK(v[0] == doctest::Approx(s * (std::cos(0.3) - 0.35)));
    CHECK(v[1] == doctest::Approx(s * std::sin(0.3)));
  }
  SUBCASE("arcface: main branch, fallback past pi, easy margin") {
    std::vector<double> v = arcface_logits(two_class_cos(0.3), label0, s, 0.5).to_vector();
    CHECK(v[0] == doctest::Approx(s * std::cos(0.8)).epsilon(1e-12));
    CHECK(v[1] == doctest::Approx(s * std::sin(0.3)).epsilon(1e-12));
    // theta = 3.0, m = 0.5: 3.5 > pi, so the target is cos 3 - 0.5 sin 0.5.
    v = arcface_logits(two_class_cos(3.0), label0, s, 0.5).to_vector();
    CHECK(v[0] == doctest::Approx(s * (std::cos(3.0) - 0.5 * std::sin(0.5))).epsilon(1e-12));
    // theta = 2.5, m = 0.5: 3.0 < pi, still the main branch.
    v = arcface_logits(two_class_cos(2.5), label0, s, 0.5).to_vector();
    CHECK(v[0] == doctest::Approx(s * std::cos(3.0)).epsilon(1e-12));
    // easy margin: cos 2 < 0, so no margin; cos 1 > 0, margin.
    v = arcface_logits(two_class_cos(2.0), label0, s, 0.5, true).to_vector();
    CHECK(v[0] == doctest::Approx(s * std::cos(2.0)).epsilon(1e-12));
    v = arcface_logits(two_class_cos(1.0), label0, s, 0.5, true).to_vector();
    CHECK(v[0] == doctest::Approx(s * std::cos(1.5)).epsilon(1e-12));
  }
  SUBCASE("combined margin (m1 = 2, m2 = 0.2, m3 = 0.1) with its monotone fallback") {
    std::vector<double> v = combined_margin_logits(two_class_cos(0.3), label0, s, 2, 0.2, 0.1).to_vector();
    CHECK(v[0] == doctest::Approx(s * (std::cos(0.8) - 0.1)).epsilon(1e-12));
    // theta_t = (pi - 0.2) / 2 < 2: fallback cos 2 - 0.1 - max(0.2 sin 0.2, 1 + cos theta_t).
    const double theta_t = (kPi - 0.2) / 2;
    v = combined_margin_logits(two_class_cos(2.0), label0, s, 2, 0.2, 0.1).to_vector();
    const double drop = std::max(0.2 * std::sin(0.2), 1 + std::cos(theta_t));
    CHECK(v[0] == doctest::Approx(s * (std::cos(2.0) - 0.1 - drop)).epsilon(1e-12));
    CHECK(v[0] < s * (-1 - 0.1));  // below the value at theta_t: the target never rises
  }
  SUBCASE("sphereface psi and annealing") {
    // m = 4, theta = 1: k = floor(4 / pi) = 1, psi = -cos 4 - 2.
    CHECK(sphereface_psi(1.0, 4) == doctest::Approx(-std::cos(4.0) - 2));
    // m = 3, theta = 2.5: k = floor(7.5 / pi) = 2, psi = cos 7.5 - 4.
    CHECK(sphereface_psi(2.5, 3) == doctest::Approx(std::cos(7.5) - 4));
    std::vector<double> v = sphereface_logits(two_class_cos(1.0), label0, 4, 0.0, s).to_vector();
    CHECK(v[0] == doctest::Approx(s * (-std::cos(4.0) - 2)).epsilon(1e-12));
    v = sphereface_logits(two_class_cos(1.0), label0, 4, 5.0, s).to_vector();
    CHECK(v[0] == doctest::Approx(s * (5 * std::cos(1.0) - std::cos(4.0) - 2) / 6).epsilon(1e-12));
    CHECK(v[1] == doctest::Approx(s * std::sin(1.0)).epsilon(1e-12));
    v = sphereface_logits(two_class_cos(2.5), label0, 3, 0.0, s).to_vector();
    CHECK(v[0] == doctest::Approx(s * (std::cos(7.5) - 4)).epsilon(1e-12));
    SphereFaceAnneal anneal;  // max(5, 1000 / (1 + 0.12 t))
    CHECK(anneal.lambda(0) == doctest::Approx(1000));
    CHECK(anneal.lambda(10) == doctest::Approx(1000 / 2.2));
    CHECK(anneal.lambda(100000) == doctest::Approx(5));
  }
  SUBCASE("the loss through cross-entropy") {
    Tensor logits = arcface_logits(two_class_cos(0.3), label0, s, 0.5);
    CHECK(cross_entropy(logits, label0).item() ==
          doctest::Approx(two_class_loss(s * std::cos(0.8), s * std::sin(0.3))).epsilon(1e-12));
  }
}

TEST_CASE("sphereface psi: continuous, decreasing, from 1 at 0 to 1 - 2m at pi") {
  for (int64_t m : {1, 2, 3, 4, 5}) {
    CHECK(sphereface_psi(0, m) == doctest::Approx(1));
    CHECK(sphereface_psi(kPi, m) == doctest::Approx(1 - 2 * m));
    double previous = sphereface_psi(0, m), worst_rise = 0, worst_step = 0;
    for (int i = 1; i <= 2000; ++i) {
      const double value = sphereface_psi(kPi * i / 2000, m);
      worst_rise = std::max(worst_rise, value - previous);
      worst_step = std::max(worst_step, previous - value);
      previous = value;
    }
    CHECK(worst_rise <= 1e-12);
    CHECK(worst_step <= m * kPi / 2000 + 1e-12);  // no jumps: |psi'| <= m
  }
}

TEST_CASE("identities between the margin losses (values and gradients)") {
  manual_seed(11);
  const int64_t n = 6, c = 5, d = 4;
  Tensor labels = Tensor::from_labels({0, 4, 2, 2, 1, 3});
  Tensor w = Tensor::uniform({c, d}, -1, 1, DType::f64);
  Generator gen(7);
  // Angles across [0, pi], including the ArcFace fallback region (theta + m > pi).
  std::vector<double> x_values =
      ag_test::features_at_angles(w, labels.to_labels(), {0.2, 1.0, 1.6, 2.4, 2.9, 3.05}, gen);
  // Runs f on fresh leaves; returns {logits, grad wrt x} for a fixed upstream.
  auto run = [&](const std::function<Tensor(const Tensor&)>& f) {
    Tensor x = Tensor::from_vector(x_values, {n, d}, DType::f64).set_requires_grad(true);
    Tensor cosine = linear(l2_normalize(x, 1), l2_normalize(w, 1));
    Tensor out = f(cosine);
    sum(out * Tensor::arange(n * c, DType::f64).reshape({n, c})).backward();
    return std::pair{out.to_vector(), x.grad().to_vector()};
  };
  auto same = [](const auto& a, const auto& b) {
    CHECK(max_abs_diff(a.first, b.first) < 1e-12);
    CHECK(max_abs_diff(a.second, b.second) < 1e-9);
  };
  for (double s : {1.0, 16.0, 64.0}) {
    CAPTURE(s);
    auto norm = run([&](const Tensor& cs) { return normface_logits(cs, s); });
    same(run([&](const Tensor& cs) { return arcface_logits(cs, labels, s, 0.0); }), norm);
    same(run([&](const Tensor& cs) { return cosface_logits(cs, labels, s, 0.0); }), norm);
    for (double lambda : {0.0, 5.0})
      same(run([&](const Tensor& cs) { return sphereface_logits(cs, labels, 1, lambda, s); }), norm);
    for (double m : {0.1, 0.5, 1.2}) {
      CAPTURE(m);
      for (bool easy : {false, true})
        same(run([&](const Tensor& cs) { return combined_margin_logits(cs, labels, s, 1, m, 0, easy); }),
             run([&](const Tensor& cs) { return arcface_logits(cs, labels, s, m, easy); }));
      same(run([&](const Tensor& cs) { return combined_margin_logits(cs, labels, s, 1, 0, m); }),
           run([&](const Tensor& cs) { return cosface_logits(cs, labels, s, m); }));
    }
  }
  // The original SphereFace form with m = 1 is the unnormalised softmax W_j^T x / |W_j|.
  Tensor x = Tensor::from_vector(x_values, {n, d}, DType::f64);
  Tensor original =
      sphereface_logits(linear(l2_normalize(x, 1), l2_normalize(w, 1)), labels, 1, 0.0, feature_norm(x));
  CHECK(max_abs_diff(original.to_vector(), linear(x, l2_normalize(w, 1)).to_vector()) < 1e-12);
}

TEST_CASE("normalised softmax: the floor log(1 + (K-1) exp(-sK/(K-1))) is reached and respected") {
  for (int64_t k : {2, 3, 10}) {
    for (double s : {1.0, 4.0, 16.0}) {
      CAPTURE(k);
      CAPTURE(s);
      const double floor = std::log(1 + (k - 1) * std::exp(-s * k / (k - 1)));
      // Class weights at the vertices of a regular simplex (pairwise cos -1/(K-1)) and each
      // feature on its own class's vertex: the best any configuration can do.
      std::vector<double> w(k * k), labels_v;
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) w[i * k + j] = (i == j ? 1.0 : 0.0) - 1.0 / k;
      std::vector<int64_t> labels;
      for (int64_t i = 0; i < k; ++i) labels.push_back(i);
      Tensor wt = Tensor::from_vector(w, {k, k}, DType::f64);
      Tensor cosine = linear(l2_normalize(wt, 1), l2_normalize(wt, 1));
      CHECK(cross_entropy(normface_logits(cosine, s), Tensor::from_labels(labels)).item() ==
            doctest::Approx(floor).epsilon(1e-10));
      // There the target's softmax probability is at its largest, exp(-floor): with s = 1 and
      // 10 classes that is only 0.25, however well the features are learned.
      const double best_p = softmax(normface_logits(cosine, s), 1).to_vector()[0];
      CHECK(best_p == doctest::Approx(std::exp(-floor)).epsilon(1e-10));
      if (k == 10 && s == 1.0) CHECK(best_p < 0.26);
      // Random configurations never go below it.
      manual_seed(static_cast<uint64_t>(k * 100 + s));
      for (int trial = 0; trial < 20; ++trial) {
        Tensor x = Tensor::normal({k, k}, 0, 1, DType::f64), v = Tensor::normal({k, k}, 0, 1, DType::f64);
        Tensor random_cos = linear(l2_normalize(x, 1), l2_normalize(v, 1));
        CHECK(cross_entropy(normface_logits(random_cos, s), Tensor::from_labels(labels)).item() >=
              floor - 1e-12);
      }
    }
  }
}

TEST_CASE("zero features and large s: finite losses and gradients in float32 and float64") {
  for (DType dtype : {DType::f32, DType::f64}) {
    manual_seed(12);
    auto head = std::make_shared<CosineHead>(4, 3);
    head->to(dtype);
    Tensor labels = Tensor::from_labels({0, 2, 1});
    for (int kind = 0; kind < 6; ++kind) {
      CAPTURE(kind);
      Tensor x = Tensor::from_vector({0, 0, 0, 0, 1, -2, 0.5, 3, 1e-30, 0, 0, 0}, {3, 4}, dtype);
      x.set_requires_grad(true);
      head->zero_grad();
      Tensor cosine = head->forward(x);
      Tensor logits = kind == 0   ? normface_logits(cosine, 64)
                      : kind == 1 ? cosface_logits(cosine, labels, 64, 0.35)
                      : kind == 2 ? arcface_logits(cosine, labels, 64, 0.5)
                      : kind == 3 ? combined_margin_logits(cosine, labels, 64, 1.2, 0.3, 0.2)
                      : kind == 4 ? sphereface_logits(cosine, labels, 4, 5.0, 64)
                                  : sphereface_logits(cosine, labels, 4, 5.0, feature_norm(x));
      Tensor loss = cross_entropy(logits, labels);
      CHECK(std::isfinite(loss.item()));
      loss.backward();
      for (double g : x.grad().to_vector()) CHECK(std::isfinite(g));
      for (double g : head->weight().grad().to_vector()) CHECK(std::isfinite(g));
      CHECK(cosine.to_vector()[0] == 0.0);  // a zero feature has cos 0 to every class
    }
  }
}

TEST_CASE("margin functions: bad input gives a clear error") {
  Tensor cosine = Tensor::zeros({2, 3}, DType::f64);
  Tensor labels = Tensor::from_labels({0, 2});
  std::string m = error_of([&] { arcface_logits(cosine, Tensor::from_labels({0, 3}), 1, 0.1); });
  CHECK(m.find("label 3") != std::string::npos);
  CHECK(m.find("3 classes") != std::string::npos);
  m = error_of([&] { cosface_logits(cosine, Tensor::from_labels({0}), 1, 0.1); });
  CHECK(m.find("int64 [2]") != std::string::npos);
  m = error_of([&] { arcface_logits(cosine, labels, 1, kPi / 2); });
  CHECK(m.find("outside [0, pi/2)") != std::string::npos);
  CHECK_THROWS_AS(arcface_logits(cosine, labels, 1, -0.1), Error);
  m = error_of([&] { check_sphereface_margin(1.5, "test"); });
  CHECK(m.find("positive integer") != std::string::npos);
  CHECK_THROWS_AS(check_sphereface_margin(0, "test"), Error);
  CHECK_THROWS_AS(sphereface_logits(cosine, labels, 0, 1.0, 1.0), Error);
  CHECK_THROWS_AS(sphereface_logits(cosine, labels, 2, -1.0, 1.0), Error);
  CHECK_THROWS_AS(sphereface_logits(cosine, labels, 2, 1.0, Tensor::ones({3, 1}, DType::f64)), Error);
  CHECK_THROWS_AS(cosface_logits(cosine, labels, 1, -0.2), Error);
  CHECK_THROWS_AS(combined_margin_logits(cosine, labels, 1, 0, 0.2, 0), Error);
  CHECK_THROWS_AS(combined_margin_logits(cosine, labels, 1, 1, 2.0, 0), Error);
  CHECK_THROWS_AS(combined_margin_logits(cosine, labels, 1, 1, 0.2, -0.1), Error);
  m = error_of([&] { normface_logits(cosine, 0); });
  CHECK(m.find("scale s") != std::string::npos);
  CHECK_THROWS_AS(arcface_logits(cosine, labels, 1, 0.1, false, 0.5), Error);
  CHECK_THROWS_AS(sphereface_psi(4.0, 2), Error);
}
