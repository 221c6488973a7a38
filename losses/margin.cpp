// The margin family, composed of differentiable ops (gather, clamp, acos, cos, sqrt, where)
// so that each gradient is exact and every op already runs on CPU and CUDA. Only the
// target column changes: the logits are s * (cos * (1 - onehot) + onehot * target(cos_y)).
#include "losses/margin.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/ops.h"
#include "losses/cross_entropy.h"

namespace ag {

namespace {

constexpr double kPi = std::numbers::pi;

void check_inputs(const Tensor& cosine, const Tensor& labels, const char* who) {
  AG_CHECK(cosine.defined() && cosine.dim() == 2 && is_floating(cosine.dtype()),
           who << ": expected cosines as a float [N, C] tensor, got "
               << (cosine.defined() ? cosine.describe() : "undefined"));
  AG_CHECK(labels.defined() && labels.device() == cosine.device(),
           who << ": labels must be on the cosines' device " << cosine.device() << ", got "
               << (labels.defined() ? labels.describe() : "undefined"));
  AG_CHECK(
      labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == cosine.size(0),
      who << ": labels must be int64 [" << cosine.size(0) << "] (one per row), got " << labels.describe());
  // On the host the range check is free; on a device the gather kernel's own check applies.
  if (labels.device().is_cpu()) check_labels(labels, cosine.size(0), cosine.size(1), who);
}

// cos_y: the target column, [N, 1].
Tensor target_cos(const Tensor& cosine, const Tensor& labels) {
  return gather(cosine, 1, labels.reshape({labels.size(0), 1}));
}

// 1 where x > threshold, else 0 (x's dtype and shape, no gradient). relu(x - t) is
// nonzero exactly when x > t, which lets where() branch without a comparison op.
Tensor greater(const Tensor& x, double threshold) {
  NoGradGuard no_grad;
  Tensor above = relu(x.detach() - threshold);
  return where(above, Tensor::ones(x.shape(), x.dtype(), x.device()),
               Tensor::zeros(x.shape(), x.dtype(), x.device()));
}

Tensor clamp_cos(const Tensor& cos_y, double cos_eps) { return clamp(cos_y, -1.0 + cos_eps, 1.0 - cos_eps); }

// cosine [N, C] with column labels[i] of row i replaced by target [N, 1], unscaled.
Tensor with_target(const Tensor& cosine, const Tensor& labels, const Tensor& target) {
  Tensor onehot = one_hot(labels, cosine.size(1), cosine.dtype());  // [N, C], no gradient
  Tensor others = Tensor::ones(onehot.shape(), cosine.dtype(), cosine.device()) - onehot;
  return cosine * others + onehot * target;
}

void check_cos_eps(double cos_eps, const char* who) {
  AG_CHECK(cos_eps > 0 && cos_eps < 0.1, who << ": cos_eps must lie in (0, 0.1), got " << cos_eps);
}

}  // namespace

void check_margin_scale(double s, const char* who) {
  AG_CHECK(std::isfinite(s) && s > 0, who << ": the scale s must be positive and finite, got " << s);
}

void check_arcface_margin(double m, const char* who) {
  AG_CHECK(m >= 0 && m < kPi / 2, who << ": ArcFace margin m = " << m
                                      << " is outside [0, pi/2): the additive angle theta + m must "
                                         "stay a penalty, and from m = pi/2 cos(theta + m) <= 0 even for a "
                                         "perfectly aligned feature");
}

void check_cosface_margin(double m, const char* who) {
  AG_CHECK(std::isfinite(m) && m >= 0,
           who << ": CosFace margin m = " << m << " must be >= 0 (a negative m rewards the target class)");
}

void check_combined_margin(double m1, double m2, double m3, const char* who) {
  AG_CHECK(std::isfinite(m1) && m1 > 0,
           who << ": combined margin m1 = " << m1 << " must be positive (it multiplies the angle)");
  AG_CHECK(m2 >= 0 && m2 < kPi / 2, who << ": combined margin m2 = " << m2
                                        << " is outside [0, pi/2) (it is ArcFace's additive angle)");
  AG_CHECK(std::isfinite(m3) && m3 >= 0,
           who << ": combined margin m3 = " << m3 << " must be >= 0 (it is CosFace's cosine margin)");
}

void check_sphereface_margin(double m, const char* who) {
  AG_CHECK(m >= 1 && m == std::floor(m) && m <= 64,
           who << ": SphereFace margin m = " << m
               << " must be a positive integer (at most 64): psi is built from cos(m theta) on the "
                  "intervals [k pi/m, (k+1) pi/m]");
}

Tensor normface_logits(const Tensor& cosine, double s) {
  check_margin_scale(s, "normface");
  AG_CHECK(cosine.defined() && cosine.dim() == 2 && is_floating(cosine.dtype()),
           "normface: expected cosines as a float [N, C] tensor, got " << cosine.describe());
  return cosine * s;
}

Tensor cosface_logits(const Tensor& cosine, const Tensor& labels, double s, double m) {
  check_margin_scale(s, "cosface");
  check_cosface_margin(m, "cosface");
  check_inputs(cosine, labels, "cosface");
  return with_target(cosine, labels, target_cos(cosine, labels) - m) * s;
}

Tensor arcface_logits(const Tensor& cosine, const Tensor& labels, double s, double m, bool easy_margin,
                      double cos_eps) {
  check_margin_scale(s, "arcface");
  check_arcface_margin(m, "arcface");
  check_cos_eps(cos_eps, "arcface");
  check_inputs(cosine, labels, "arcface");
  Tensor cos_y = target_cos(cosine, labels);
  // cos(theta + m) = cos theta cos m - sin theta sin m, with sin theta = sqrt(1 - cos^2).
  Tensor c = clamp_cos(cos_y, cos_eps);
  Tensor sin_y = sqrt(neg(c * c) + 1.0);
  Tensor phi = c * std::cos(m) - sin_y * std::sin(m);
  Tensor target = easy_margin ? where(greater(cos_y, 0.0), phi, cos_y)
                              // theta + m > pi exactly when cos theta < cos(pi - m) = -cos m.
                              : where(greater(cos_y, -std::cos(m)), phi, cos_y - m * std::sin(m));
  return with_target(cosine, labels, target) * s;
}

Tensor combined_margin_logits(const Tensor& cosine, const Tensor& labels, double s, double m1, double m2,
                              double m3, bool easy_margin, double cos_eps) {
  check_margin_scale(s, "combined margin");
  check_combined_margin(m1, m2, m3, "combined margin");
  check_cos_eps(cos_eps, "combined margin");
  check_inputs(cosine, labels, "combined margin");
  Tensor cos_y = target_cos(cosine, labels);
  Tensor theta = acos(clamp_cos(cos_y, cos_eps));
  Tensor target = cos(theta * m1 + m2) - m3;
  // Past theta_t = (pi - m2) / m1 the angle m1 theta + m2 passes pi and cos would rise again.
  const double theta_t = (kPi - m2) / m1;
  if (theta_t < kPi) {
    const double drop = std::max(m2 * std::sin(m2), 1.0 + std::cos(theta_t));
    target = where(greater(cos_y, std::cos(theta_t)), target, cos_y - (m3 + drop));
  }
  if (easy_margin) target = where(greater(cos_y, 0.0), target, cos_y);
  return with_target(cosine, labels, target) * s;
}

namespace {
Tensor sphereface_unscaled(const Tensor& cosine, const Tensor& labels, int64_t m, double lambda,
                           double cos_eps) {
  check_sphereface_margin(static_cast<double>(m), "sphereface");
  AG_CHECK(std::isfinite(lambda) && lambda >= 0, "sphereface: lambda must be >= 0, got " << lambda);
  check_cos_eps(cos_eps, "sphereface");
  check_inputs(cosine, labels, "sphereface");
  Tensor cos_y = target_cos(cosine, labels);
  Tensor theta = acos(clamp_cos(cos_y, cos_eps));
  // k = floor(m theta / pi) counts the interval boundaries j pi / m below theta; k and
  // (-1)^k are piecewise constant, so they carry no gradient.
  Tensor k = Tensor::zeros(cos_y.shape(), cosine.dtype(), cosine.device());
  Tensor sign = Tensor::ones(cos_y.shape(), cosine.dtype(), cosine.device());
  {
    NoGradGuard no_grad;
    for (int64_t j = 1; j < m; ++j) {
      Tensor step = greater(theta, static_cast<double>(j) * kPi / static_cast<double>(m));
      k = k + step;
      sign = sign * (neg(step) * 2.0 + 1.0);
    }
  }
  Tensor psi = sign * cos(theta * static_cast<double>(m)) - k * 2.0;
  Tensor target = (cos_y * lambda + psi) * (1.0 / (1.0 + lambda));
  return with_target(cosine, labels, target);
}
}  // namespace

Tensor sphereface_logits(const Tensor& cosine, const Tensor& labels, int64_t m, double lambda, double s,
                         double cos_eps) {
  check_margin_scale(s, "sphereface");
  return sphereface_unscaled(cosine, labels, m, lambda, cos_eps) * s;
}

Tensor sphereface_logits(const Tensor& cosine, const Tensor& labels, int64_t m, double lambda,
                         const Tensor& scale, double cos_eps) {
  AG_CHECK(cosine.defined() && scale.defined() && scale.dim() == 2 && scale.size(0) == cosine.size(0) &&
               scale.size(1) == 1,
           "sphereface: the scale must be the feature norms [" << (cosine.defined() ? cosine.size(0) : 0)
                                                               << ", 1], got " << scale.describe());
  return sphereface_unscaled(cosine, labels, m, lambda, cos_eps) * scale;
}

double sphereface_psi(double theta, int64_t m) {
  check_sphereface_margin(static_cast<double>(m), "sphereface_psi");
  AG_CHECK(theta >= 0 && theta <= kPi, "sphereface_psi: theta = " << theta << " is outside [0, pi]");
  const int64_t k =
      std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<double>(m) * theta / kPi)), m - 1);
  const double sign = k % 2 == 0 ? 1.0 : -1.0;
  return sign * std::cos(static_cast<double>(m) * theta) - 2.0 * static_cast<double>(k);
}

double SphereFaceAnneal::lambda(int64_t step) const {
  AG_CHECK(step >= 0, "SphereFaceAnneal: the step must be >= 0, got " << step);
  return std::max(lambda_min, base * std::pow(1.0 + gamma * static_cast<double>(step), -power));
}

}  // namespace ag
