// Softmax, log-softmax and L2 normalisation along a dim, each with a fused backward.
#include "core/ops.h"

namespace ag {

namespace {

struct Split3 {
  int64_t outer = 1, n = 1, inner = 1;
};
Split3 split3(const Shape& shape, int64_t dim) {
  Split3 s;
  for (int64_t d = 0; d < dim; ++d) s.outer *= shape[d];
  s.n = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

struct SoftmaxBackward : Node {
  Tensor y;
  Split3 s;
  bool log = false;
  const char* name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  void release_saved() override { y = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(y.shape(), y.dtype(), y.device());
    softmax_backward(gx, g.contiguous(), y, s.outer, s.n, s.inner, log);
    return {gx};
  }
};

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  profiler::Scope profile(log ? "log_softmax" : "softmax");
  AG_CHECK(is_floating(x.dtype()), "softmax: expected a float tensor, got " << x.describe());
  dim = normalize_dim(dim, x.dim(), log ? "log_softmax" : "softmax");
  Split3 s = split3(x.shape(), dim);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  softmax_forward(y, x.contiguous(), s.outer, s.n, s.inner, log);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<SoftmaxBackward>();
    node->y = y.detach();
    node->s = s;
    node->log = log;
    return attach_node(y, node, {&x});
  }
  return y;
}

struct L2NormalizeBackward : Node {
  Tensor x, norm;
  Split3 s;
  double eps = 0;
  const char* name() const override { return "L2NormalizeBackward"; }
  void release_saved() override {
    x = Tensor();
    norm = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
    l2_normalize_backward(gx, g.contiguous(), x, norm, s.outer, s.n, s.inner, eps);
    return {gx};
  }
};

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor l2_normalize(const Tensor& x, int64_t dim, double eps) {
  profiler::Scope profile("l2_normalize");
  AG_CHECK(eps > 0, "l2_normalize: eps must be positive, got " << eps);
  dim = normalize_dim(dim, x.dim(), "l2_normalize");
  Split3 s = split3(x.shape(), dim);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor norm = Tensor::empty({s.outer, s.inner}, x.dtype(), x.device());
  l2_normalize_forward(y, norm, xc, s.outer, s.n, s.inner, eps);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<L2NormalizeBackward>();
    node->x = xc.detach();
    node->norm = norm;
    node->s = s;
    node->eps = eps;
    return attach_node(y, node, {&x});
  }
  return y;
}

}  // namespace ag
