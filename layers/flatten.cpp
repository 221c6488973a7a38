#include "layers/flatten.h"

namespace ag {

Tensor Flatten::forward(const Tensor& x) {
  const int64_t start = normalize_dim(start_dim_, x.dim(), "Flatten");
  return x.flatten(start);
}

}  // namespace ag
