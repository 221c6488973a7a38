// Reductions: sum, mean and max over one dim or over all elements; argmax.
#include <limits>

#include "core/ops.h"

namespace ag {

namespace {

struct DimSplit {  // x viewed as [outer, n, inner] around the reduced dim
  int64_t outer = 1, n = 1, inner = 1;
  Shape out_shape;  // keepdim result
};

DimSplit split_at(const Shape& shape, int64_t dim) {
  DimSplit s;
  for (int64_t d = 0; d < dim; ++d) s.outer *= shape[d];
  s.n = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) s.inner *= shape[d];
  s.out_shape = shape;
  s.out_shape[dim] = 1;
  return s;
}

Shape drop_dim(const Shape& shape, int64_t dim) {
  Shape s = shape;
  s.erase(s.begin() + dim);
  return s;
}

struct ReduceBackward : Node {  // sum and mean: the gradient is spread evenly
  Shape input_shape;
  DimSplit split;
  double factor = 1.0;
  const char* name() const override { return "ReduceBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(input_shape, g.dtype(), g.device());
    broadcast_dim(gx, g.contiguous(), split.outer, split.n, split.inner, factor);
    return {gx};
  }
};

struct MaxBackward : Node {  // the gradient goes to the (first) maximum only
  Shape input_shape;
  DimSplit split;
  Tensor index;  // int64 [outer, 1, inner]
  const char* name() const override { return "MaxBackward"; }
  void release_saved() override { index = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(input_shape, g.dtype(), g.device());
    scatter_add_dim(gx, g.contiguous(), index, split.outer, split.n, 1, split.inner);
    return {gx};
  }
};

Tensor reduce(const Tensor& x, int64_t dim, bool keepdim, ReduceOp op, const char* name) {
  profiler::Scope profile(name);
  dim = normalize_dim(dim, x.dim(), name);
  DimSplit split = split_at(x.shape(), dim);
  AG_CHECK(op != ReduceOp::max || split.n > 0, name << ": cannot take the max over an empty dimension");
  Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(split.out_shape, x.dtype(), x.device());
  reduce_dim(out, xc, split.outer, split.n, split.inner, op);
  Tensor index;
  if (op == ReduceOp::max && any_requires_grad({&x})) {
    index = Tensor::empty(split.out_shape, DType::i64, x.device());
    argmax_dim(index, xc, split.outer, split.n, split.inner);
  }
  if (!keepdim) out = out.view(drop_dim(x.shape(), dim));
  if (!any_requires_grad({&x})) return out;
  if (op == ReduceOp::max) {
    auto node = std::make_shared<MaxBackward>();
    node->input_shape = x.shape();
    node->split = split;
    node->index = index;
    return attach_node(out, node, {&x});
  }
  auto node = std::make_shared<ReduceBackward>();
  node->input_shape = x.shape();
  node->split = split;
  node->factor = op == ReduceOp::mean ? 1.0 / static_cast<double>(split.n) : 1.0;
  return attach_node(out, node, {&x});
}

}  // namespace

Tensor sum(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce(x, dim, keepdim, ReduceOp::sum, "sum");
}
Tensor mean(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce(x, dim, keepdim, ReduceOp::mean, "mean");
}
Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce(x, dim, keepdim, ReduceOp::max, "max");
}

// Over all elements: flatten to [numel] and reduce that one dim, then drop it.
Tensor sum(const Tensor& x) { return sum(x.reshape({x.numel()}), 0); }
Tensor mean(const Tensor& x) { return mean(x.reshape({x.numel()}), 0); }
Tensor max(const Tensor& x) { return max(x.reshape({x.numel()}), 0); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  profiler::Scope profile("argmax");
  dim = normalize_dim(dim, x.dim(), "argmax");
  DimSplit split = split_at(x.shape(), dim);
  AG_CHECK(split.n > 0, "argmax: empty dimension " << dim << " in " << shape_str(x.shape()));
  Tensor out = Tensor::empty(split.out_shape, DType::i64, x.device());
  argmax_dim(out, x.detach().contiguous(), split.outer, split.n, split.inner);
  return keepdim ? out : out.view(drop_dim(x.shape(), dim));
}

}  // namespace ag
