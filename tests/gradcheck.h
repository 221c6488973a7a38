// Float64 gradient checking by central differences.
//
// gradcheck(f, wrt) compares the analytic gradient of L = sum(f() * R), R a random upstream
// gradient, with respect to every element of every tensor in `wrt`, against
// (L(x + eps) - L(x - eps)) / (2 eps). The tensors in `wrt` are float64 leaves that f reads
// (inputs or a module's parameters): they are perturbed in place. It also checks that
//   - neither the forward output nor any gradient is NaN: while f and backward run,
//     Tensor::empty fills new float tensors with NaN, so a kernel that forgets to write part
//     of its output is caught (the finite differences alone miss an unwritten forward
//     element: they run unpoisoned, and a constant cancels out of L(x + eps) - L(x - eps));
//   - a second backward accumulates (the gradient doubles).
// Tolerances as in PyTorch's gradcheck: eps 1e-6, |a - n| <= atol + rtol |n|.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/random.h"

namespace ag::testing {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  bool check_accumulation = true;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;
};

namespace detail {
inline double loss_value(const Tensor& out, const Tensor& upstream) {
  std::vector<double> o = out.to_vector(), r = upstream.to_vector();
  double total = 0;
  for (size_t i = 0; i < o.size(); ++i) total += o[i] * r[i];
  return total;
}

// The index of out's first NaN element, "" when none.
inline std::string first_nan(const Tensor& out) {
  const std::vector<double> v = out.to_vector();
  for (size_t i = 0; i < v.size(); ++i)
    if (std::isnan(v[i])) return std::to_string(i);
  return "";
}

struct PoisonScope {
  PoisonScope() { set_poison_empty(true); }
  ~PoisonScope() { set_poison_empty(false); }
};
}  // namespace detail

inline GradcheckResult gradcheck(const std::function<Tensor()>& f, std::vector<Tensor> wrt,
                                 GradcheckOptions opt = {}) {
  GradcheckResult result;
  auto fail = [&](const std::string& why) {
    if (result.ok) result.message = why;
    result.ok = false;
  };
  for (Tensor& t : wrt) {
    if (t.dtype() != DType::f64 || !t.is_leaf() || !t.requires_grad()) {
      fail("gradcheck: every tensor in wrt must be a float64 leaf that requires grad, got " + t.describe());
      return result;
    }
    t.zero_grad();
  }

  Tensor out, upstream;
  std::vector<std::vector<double>> analytic;
  {
    detail::PoisonScope poison;
    out = f();
    if (const std::string bad = detail::first_nan(out); !bad.empty()) {
      fail("the forward output " + out.describe() + " has NaN at element " + bad + " (an unwritten output?)");
      return result;
    }
    Generator gen(1234);
    std::vector<double> r(static_cast<size_t>(out.numel()));
    for (double& v : r) v = gen.normal();
    upstream = Tensor::from_vector(r, out.shape(), DType::f64);
    out.backward(upstream, /*retain_graph=*/opt.check_accumulation);
  }
  for (size_t w = 0; w < wrt.size(); ++w) {
    if (!wrt[w].grad().defined()) {
      fail("input " + std::to_string(w) + " (" + wrt[w].describe() + ") received no gradient");
      return result;
    }
    analytic.push_back(wrt[w].grad().to_vector());
    for (size_t i = 0; i < analytic[w].size(); ++i)
      if (std::isnan(analytic[w][i])) {
        fail("input " + std::to_string(w) + " element " + std::to_string(i) +
             ": gradient is NaN (an unwritten output?)");
        return result;
      }
  }
  if (opt.check_accumulation) {
    out.backward(upstream);
    for (size_t w = 0; w < wrt.size(); ++w) {
      std::vector<double> twice = wrt[w].grad().to_vector();
      for (size_t i = 0; i < twice.size(); ++i)
        if (std::abs(twice[i] - 2 * analytic[w][i]) > 1e-9 * (1 + std::abs(analytic[w][i]))) {
          std::ostringstream os;
          os << "input " << w << " element " << i << ": a second backward gave " << twice[i] << ", expected "
             << 2 * analytic[w][i] << " (gradients must accumulate)";
          fail(os.str());
          return result;
        }
    }
  }

  NoGradGuard no_grad;
  for (size_t w = 0; w < wrt.size(); ++w) {
    double* x = wrt[w].data<double>();
    AG_CHECK(wrt[w].is_contiguous(), "gradcheck: inputs must be contiguous");
    for (int64_t i = 0; i < wrt[w].numel(); ++i) {
      const double saved = x[i];
      x[i] = saved + opt.eps;
      const double plus = detail::loss_value(f(), upstream);
      x[i] = saved - opt.eps;
      const double minus = detail::loss_value(f(), upstream);
      x[i] = saved;
      const double numeric = (plus - minus) / (2 * opt.eps);
      const double a = analytic[w][static_cast<size_t>(i)];
      if (!(std::abs(a - numeric) <= opt.atol + opt.rtol * std::abs(numeric))) {
        std::ostringstream os;
        os << "input " << w << " " << shape_str(wrt[w].shape()) << " element " << i << ": analytic " << a
           << ", numerical " << numeric;
        fail(os.str());
        return result;
      }
    }
  }
  return result;
}

// A float64 leaf with values from the program generator, uniform in [low, high].
inline Tensor random_leaf(const Shape& shape, double low = -1.0, double high = 1.0) {
  Tensor t = Tensor::uniform(shape, low, high, DType::f64);
  t.set_requires_grad(true);
  return t;
}

}  // namespace ag::testing

#define CHECK_GRADCHECK(...)                                    \
  do {                                                          \
    auto ag_gc_result_ = ::ag::testing::gradcheck(__VA_ARGS__); \
    CHECK_MESSAGE(ag_gc_result_.ok, ag_gc_result_.message);     \
  } while (0)
