// Indexing: gather along a dim (with its scatter-add backward) and one-hot encoding.
#include "core/ops.h"

namespace ag {

namespace {
struct GatherBackward : Node {
  Shape input_shape;
  Tensor index;
  int64_t outer = 1, n = 1, k = 1, inner = 1;
  const char* name() const override { return "GatherBackward"; }
  void release_saved() override { index = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(input_shape, g.dtype(), g.device());
    scatter_add_dim(gx, g.contiguous(), index, outer, n, k, inner);
    return {gx};
  }
};
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  profiler::Scope profile("gather");
  AG_CHECK(index.dtype() == DType::i64, "gather: the index must be int64, got " << index.describe());
  AG_CHECK(index.dim() == x.dim(), "gather: index " << shape_str(index.shape()) << " and input "
                                                    << shape_str(x.shape()) << " differ in rank");
  dim = normalize_dim(dim, x.dim(), "gather");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    AG_CHECK(d == dim || index.shape()[d] == x.shape()[d],
             "gather: index " << shape_str(index.shape()) << " must match input " << shape_str(x.shape())
                              << " outside dimension " << dim);
    if (d < dim) outer *= x.shape()[d];
    if (d > dim) inner *= x.shape()[d];
  }
  const int64_t n = x.shape()[dim], k = index.shape()[dim];
  Tensor ic = index.contiguous();
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  gather_dim(out, x.contiguous(), ic, outer, n, k, inner);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<GatherBackward>();
    node->input_shape = x.shape();
    node->index = ic;
    node->outer = outer;
    node->n = n;
    node->k = k;
    node->inner = inner;
    return attach_node(out, node, {&x});
  }
  return out;
}

Tensor one_hot(const Tensor& labels, int64_t classes, DType dtype) {
  profiler::Scope profile("one_hot");
  AG_CHECK(labels.dtype() == DType::i64 && labels.dim() == 1,
           "one_hot: labels must be int64 [N], got " << labels.describe());
  AG_CHECK(classes > 0, "one_hot: class count must be positive, got " << classes);
  Tensor out = Tensor::empty({labels.size(0), classes}, dtype, labels.device());
  one_hot(out, labels.contiguous(), classes);
  return out;
}

}  // namespace ag
