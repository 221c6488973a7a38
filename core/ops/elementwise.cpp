// Elementwise ops: binary arithmetic with broadcasting, unary math, where(). Forward and
// backward side by side. The activations are in core/ops/activation.cpp.
#include <algorithm>

#include "core/ops.h"

namespace ag {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    AG_CHECK(da == db || da == 1 || db == 1,
             op << ": shapes " << shape_str(a) << " and " << shape_str(b) << " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  Tensor xc = x.contiguous();
  // Leading dims that broadcasting added are summed with one fast reduction first.
  const int64_t lead = xc.dim() - static_cast<int64_t>(shape.size());
  if (lead > 0) {
    int64_t outer_n = 1;
    for (int64_t d = 0; d < lead; ++d) outer_n *= xc.shape()[d];
    Shape rest(xc.shape().begin() + lead, xc.shape().end());
    Tensor reduced = Tensor::empty(rest, xc.dtype(), xc.device());
    reduce_dim(reduced, xc, 1, outer_n, shape_numel(rest), ReduceOp::sum);
    xc = reduced;
    if (xc.shape() == shape) return xc;
  }
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  // Only trailing dims broadcast (a [N, C, 1, 1] gate of a [N, C, H, W] product, as in
  // squeeze-and-excitation): each output element sums one contiguous row, a parallel
  // reduction; sum_to walks element by element on one thread.
  size_t keep = shape.size();
  while (keep > 0 && shape[keep - 1] == 1) --keep;
  const bool rows =
      std::equal(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(keep), xc.shape().begin());
  if (rows) {
    const int64_t outer = shape_numel(shape);
    reduce_dim(out, xc, outer, xc.numel() / std::max<int64_t>(outer, 1), 1, ReduceOp::sum);
    return out;
  }
  sum_to(out, xc);
  return out;
}

namespace {

struct BinaryBackward : Node {
  BinaryOp op;
  Tensor a, b;  // saved only for mul/div
  Shape a_shape, b_shape;
  const char* name() const override { return "BinaryBackward"; }
  void release_saved() override {
    a = Tensor();
    b = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::add:
        if (needs_grad(0)) ga = sum_to_shape(g, a_shape);
        if (needs_grad(1)) gb = sum_to_shape(g, b_shape);
        break;
      case BinaryOp::sub:
        if (needs_grad(0)) ga = sum_to_shape(g, a_shape);
        if (needs_grad(1)) gb = sum_to_shape(neg(g), b_shape);
        break;
      case BinaryOp::mul:
        if (needs_grad(0)) ga = sum_to_shape(mul(g, b), a_shape);
        if (needs_grad(1)) gb = sum_to_shape(mul(g, a), b_shape);
        break;
      case BinaryOp::div:  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        if (needs_grad(0)) ga = sum_to_shape(div(g, b), a_shape);
        if (needs_grad(1)) gb = sum_to_shape(neg(div(mul(g, a), mul(b, b))), b_shape);
        break;
    }
    return {ga, gb};
  }
};

Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op, const char* name) {
  profiler::Scope profile(name);
  AG_CHECK(a.dtype() == b.dtype(), name << ": dtypes differ: " << a.describe() << " and " << b.describe());
  AG_CHECK(a.device() == b.device(), name << ": devices differ: " << a.describe() << " and " << b.describe());
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  Tensor ac = a.contiguous(), bc = b.contiguous();
  binary_forward(out, ac, bc, op);
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<BinaryBackward>();
    node->op = op;
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    if (op == BinaryOp::mul || op == BinaryOp::div) {
      node->a = ac.detach();
      node->b = bc.detach();
    }
    return attach_node(out, node, {&a, &b});
  }
  return out;
}

struct UnaryBackward : Node {
  UnaryOp op;
  UnaryParams params;
  Tensor x, y;
  const char* name() const override { return "UnaryBackward"; }
  void release_saved() override {
    x = Tensor();
    y = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
    unary_backward(gx, g.contiguous(), x, y, op, params);
    return {gx};
  }
};

Tensor unary(const Tensor& x, UnaryOp op, const char* name, UnaryParams params = {}) {
  profiler::Scope profile(name);
  Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  unary_forward(out, xc, op, params);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<UnaryBackward>();
    node->op = op;
    node->params = params;
    node->x = xc.detach();
    node->y = out.detach();
    return attach_node(out, node, {&x});
  }
  return out;
}

struct WhereBackward : Node {
  Tensor cond;
  const char* name() const override { return "WhereBackward"; }
  void release_saved() override { cond = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor zeros = Tensor::zeros(g.shape(), g.dtype(), g.device());
    Tensor gc = g.contiguous();
    Tensor ga, gb;
    if (needs_grad(1)) {
      ga = Tensor::empty(g.shape(), g.dtype(), g.device());
      where_forward(ga, cond, gc, zeros);
    }
    if (needs_grad(2)) {
      gb = Tensor::empty(g.shape(), g.dtype(), g.device());
      where_forward(gb, cond, zeros, gc);
    }
    return {Tensor(), ga, gb};
  }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::add, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::sub, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::mul, "mul"); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::div, "div"); }
Tensor add(const Tensor& a, double b) { return add(a, Tensor::scalar(b, a.dtype(), a.device())); }
Tensor mul(const Tensor& a, double b) { return mul(a, Tensor::scalar(b, a.dtype(), a.device())); }

Tensor neg(const Tensor& x) { return unary(x, UnaryOp::neg, "neg"); }
Tensor exp(const Tensor& x) { return unary(x, UnaryOp::exp, "exp"); }
Tensor log(const Tensor& x) { return unary(x, UnaryOp::log, "log"); }
Tensor sqrt(const Tensor& x) { return unary(x, UnaryOp::sqrt, "sqrt"); }
Tensor pow(const Tensor& x, double exponent) { return unary(x, UnaryOp::pow, "pow", {exponent, 0}); }
Tensor abs(const Tensor& x) { return unary(x, UnaryOp::abs, "abs"); }
Tensor clamp(const Tensor& x, double low, double high) {
  AG_CHECK(low <= high, "clamp: low " << low << " is above high " << high);
  return unary(x, UnaryOp::clamp, "clamp", {low, high});
}
Tensor sin(const Tensor& x) { return unary(x, UnaryOp::sin, "sin"); }
Tensor cos(const Tensor& x) { return unary(x, UnaryOp::cos, "cos"); }
Tensor acos(const Tensor& x) { return unary(x, UnaryOp::acos, "acos"); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  profiler::Scope profile("where");
  AG_CHECK(cond.shape() == a.shape() && a.shape() == b.shape(),
           "where: shapes differ: cond " << shape_str(cond.shape()) << ", a " << shape_str(a.shape())
                                         << ", b " << shape_str(b.shape()));
  AG_CHECK(a.dtype() == b.dtype(), "where: dtypes differ: " << a.describe() << " and " << b.describe());
  Tensor cc = cond.detach().contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  where_forward(out, cc, a.contiguous(), b.contiguous());
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<WhereBackward>();
    node->cond = cc;
    return attach_node(out, node, {&cond, &a, &b});
  }
  return out;
}

}  // namespace ag
