// The angular-margin family: each function turns the cosines of a CosineHead into logits
// for cross-entropy, changing only the target class's entry (labels[i] in row i) and
// scaling every entry by s. With theta_y = acos(cos_y):
//   normface   s cos(theta_j)                                    (no margin)
//   cosface    target s (cos(theta_y) - m)
//   arcface    target s cos(theta_y + m); s (cos(theta_y) - m sin m) where theta_y + m > pi;
//              easy_margin: no margin where cos(theta_y) <= 0
//   combined   target s (cos(m1 theta_y + m2) - m3)  (InsightFace; contains the three above)
//   sphereface target scale (lambda cos(theta_y) + psi(theta_y)) / (1 + lambda),
//              psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m]
// Every function is composed of differentiable ops, so the gradients are exact (not the
// straight-through variant) and run on any device. cos_y is clamped to
// [-1 + cos_eps, 1 - cos_eps] wherever acos or sqrt(1 - cos^2) needs it; the clamp has zero
// gradient, so the margin term is flat (rather than infinitely steep) there.
// docs/losses.md derives each one with its decision boundary.
#pragma once

#include "core/tensor.h"

namespace ag {

constexpr double kDefaultCosEps = 1e-7;

// The arguments every function shares: cosine: float [N, C] (a CosineHead's output); labels:
// int64 [N] on cosine's device, each in [0, C); s > 0. Each returns logits [N, C].
Tensor normface_logits(const Tensor& cosine, double s);
// m >= 0.
Tensor cosface_logits(const Tensor& cosine, const Tensor& labels, double s, double m);
// 0 <= m < pi/2 (from pi/2 on, even a perfectly aligned feature gets a target cos m <= 0).
Tensor arcface_logits(const Tensor& cosine, const Tensor& labels, double s, double m,
                      bool easy_margin = false, double cos_eps = kDefaultCosEps);
// m1 > 0, 0 <= m2 < pi/2, m3 >= 0. Where m1 theta + m2 > pi (cos would turn back up) the
// target becomes cos(theta) - m3 - d with d = max(m2 sin m2, 1 + cos((pi - m2) / m1)): for
// m1 = 1 this is exactly ArcFace's fallback; the max keeps the target monotone for m1 > 1.
// easy_margin: no margin at all where cos(theta_y) <= 0.
Tensor combined_margin_logits(const Tensor& cosine, const Tensor& labels, double s, double m1, double m2,
                              double m3, bool easy_margin = false, double cos_eps = kDefaultCosEps);
// SphereFace (A-Softmax), integer m >= 1, lambda >= 0 (the annealing weight; see
// sphereface_lambda). The normalised form scales every logit by s; the original form by
// scale = the feature norms [N, 1] (feature_norm in losses/cosine_head.h), which makes
// the logits W_j^T x / |W_j| exactly as in the paper.
Tensor sphereface_logits(const Tensor& cosine, const Tensor& labels, int64_t m, double lambda, double s,
                         double cos_eps = kDefaultCosEps);
Tensor sphereface_logits(const Tensor& cosine, const Tensor& labels, int64_t m, double lambda,
                         const Tensor& scale, double cos_eps = kDefaultCosEps);

// psi(theta) for one angle in [0, pi] (host scalar; for tests, docs and plots).
double sphereface_psi(double theta, int64_t m);

// SphereFace's annealing: lambda = max(lambda_min, base (1 + gamma step)^(-power)).
struct SphereFaceAnneal {
  double base = 1000.0, gamma = 0.12, power = 1.0, lambda_min = 5.0;  // the authors' values
  double lambda(int64_t step) const;
};

// Validation shared with MarginLossConfig: each throws an ag::Error explaining the range.
void check_margin_scale(double s, const char* who);
void check_arcface_margin(double m, const char* who);
void check_cosface_margin(double m, const char* who);
void check_combined_margin(double m1, double m2, double m3, const char* who);
void check_sphereface_margin(double m, const char* who);  // m must be a positive integer

}  // namespace ag
