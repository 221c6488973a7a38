// CPU gather / scatter-add along a dim and one-hot encoding, with bounds checks that name
// the offending index.
#include "core/cpu/strided.h"
#include "core/kernels.h"

namespace ag::cpu {

namespace {
void check_indices(const int64_t* idx, int64_t count, int64_t n, const char* op) {
  for (int64_t i = 0; i < count; ++i)
    AG_CHECK(idx[i] >= 0 && idx[i] < n,
             op << ": index " << idx[i] << " at position " << i << " is outside [0, " << n << ")");
}
}  // namespace

void gather_dim(Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n, int64_t k,
                int64_t inner) {
  const int64_t* pi = index.data<int64_t>();
  check_indices(pi, index.numel(), n, "gather");
  dispatch_float(x.dtype(), "gather", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t at = (o * k + j) * inner + i;
          po[at] = px[(o * n + pi[at]) * inner + i];
        }
  });
}

void scatter_add_dim(Tensor& grad_x, const Tensor& grad, const Tensor& index, int64_t outer, int64_t n,
                     int64_t k, int64_t inner) {
  const int64_t* pi = index.data<int64_t>();
  check_indices(pi, index.numel(), n, "scatter_add");
  dispatch_float(grad.dtype(), "scatter_add", [&]<typename scalar_t>() {
    const scalar_t* pg = grad.data<scalar_t>();
    scalar_t* px = grad_x.data<scalar_t>();
    for (int64_t i = 0; i < grad_x.numel(); ++i) px[i] = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t at = (o * k + j) * inner + i;
          px[(o * n + pi[at]) * inner + i] += pg[at];
        }
  });
}

void one_hot(Tensor& out, const Tensor& labels, int64_t classes) {
  const int64_t* pl = labels.data<int64_t>();
  const int64_t rows = labels.numel();
  for (int64_t r = 0; r < rows; ++r)
    AG_CHECK(pl[r] >= 0 && pl[r] < classes,
             "one_hot: label " << pl[r] << " at position " << r << " is outside [0, " << classes << ")");
  dispatch_float(out.dtype(), "one_hot", [&]<typename scalar_t>() {
    scalar_t* po = out.data<scalar_t>();
    for (int64_t i = 0; i < rows * classes; ++i) po[i] = 0;
    for (int64_t r = 0; r < rows; ++r) po[r * classes + pl[r]] = 1;
  });
}

}  // namespace ag::cpu
