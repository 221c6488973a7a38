// Helpers for the loss tests: features placed at a chosen angle to their target class's
// weight row, so gradient checks can visit theta near 0, near pi/2 and near pi on purpose.
#pragma once

#include <cmath>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace ag_test {

// Rows of W [C, D] (any values, D >= 2) and a target angle per row: returns features
// [N, D] (float64 leaf values, not yet requiring grad) with angle thetas[i] to
// W[labels[i]] and norm between 0.5 and 2.
inline std::vector<double> features_at_angles(const ag::Tensor& weight, const std::vector<int64_t>& labels,
                                              const std::vector<double>& thetas, ag::Generator& gen) {
  const int64_t d = weight.size(1);
  const std::vector<double> w = weight.to_vector();
  std::vector<double> out;
  for (size_t i = 0; i < labels.size(); ++i) {
    std::vector<double> u(d), v(d);
    double nu = 0;
    for (int64_t k = 0; k < d; ++k) nu += w[labels[i] * d + k] * w[labels[i] * d + k];
    for (int64_t k = 0; k < d; ++k) u[k] = w[labels[i] * d + k] / std::sqrt(nu);
    // v: a random direction orthogonal to u (Gram-Schmidt).
    double dot = 0, nv = 0;
    for (int64_t k = 0; k < d; ++k) v[k] = gen.normal();
    for (int64_t k = 0; k < d; ++k) dot += v[k] * u[k];
    for (int64_t k = 0; k < d; ++k) v[k] -= dot * u[k];
    for (int64_t k = 0; k < d; ++k) nv += v[k] * v[k];
    const double r = gen.uniform(0.5, 2.0);
    for (int64_t k = 0; k < d; ++k)
      out.push_back(r * (std::cos(thetas[i]) * u[k] + std::sin(thetas[i]) * v[k] / std::sqrt(nv)));
  }
  return out;
}

// Largest |a_i - b_i|.
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = a.size() == b.size() ? 0.0 : INFINITY;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace ag_test
