// CosineHead: normalise features and class weights, then one matrix product.
#include "losses/cosine_head.h"

#include <cmath>
#include <sstream>

namespace ag {

CosineHead::CosineHead(int64_t feature_dim, int64_t classes, double eps)
    : feature_dim_(feature_dim), classes_(classes), eps_(eps) {
  AG_CHECK(feature_dim > 0 && classes > 0,
           "CosineHead: feature_dim and classes must be positive, got " << feature_dim << " and " << classes);
  AG_CHECK(eps > 0, "CosineHead: eps must be positive, got " << eps);
  // Xavier uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out)).
  const double bound = std::sqrt(6.0 / static_cast<double>(feature_dim + classes));
  weight_ = register_parameter("weight", Tensor::uniform({classes, feature_dim}, -bound, bound));
}

Tensor CosineHead::forward(const Tensor& features) {
  AG_CHECK(features.dim() == 2 && features.size(1) == feature_dim_,
           "CosineHead: expected features [N, " << feature_dim_ << "], got " << features.describe());
  AG_CHECK(features.dtype() == weight_.dtype(),
           "CosineHead: features are " << features.dtype() << " but the weight is " << weight_.dtype());
  // cos theta_ij = <x_i / |x_i|, w_j / |w_j|>: one GEMM of the normalised matrices.
  return linear(l2_normalize(features, 1, eps_), l2_normalize(weight_, 1, eps_));
}

std::string CosineHead::describe() const {
  std::ostringstream os;
  os << feature_dim_ << "->" << classes_ << ", no bias";
  return os.str();
}

Tensor feature_norm(const Tensor& features) {
  AG_CHECK(features.dim() == 2, "feature_norm: expected features [N, D], got " << features.describe());
  return sqrt(sum(mul(features, features), 1, /*keepdim=*/true) + 1e-24);
}

}  // namespace ag
