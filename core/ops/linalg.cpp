// Matrix products through GEMM: matmul (2-d and batched 3-d) and linear. Transposed views
// of contiguous matrices reach BLAS as transpose flags, never as copies.
#include "core/ops.h"
#include "core/precision.h"

namespace ag {

namespace {

// A 2-d operand as BLAS sees it: the contiguous buffer, whether it is transposed, and the
// row stride of that buffer. Copies only when the view is neither.
struct BlasOperand {
  Tensor buffer;
  bool trans = false;
  int64_t ld = 0;
};

BlasOperand as_blas_operand(const Tensor& t) {  // t: [R, C] (last two dims)
  const int64_t nd = t.dim();
  const int64_t rows = t.shape()[nd - 2], cols = t.shape()[nd - 1];
  const int64_t rs = t.strides()[nd - 2], cs = t.strides()[nd - 1];
  bool batch_ok = nd == 2 || t.strides()[0] == rows * cols;
  if (batch_ok && (cs == 1 || cols == 1) && (rs == cols || rows == 1)) return {t, false, cols};
  if (batch_ok && (rs == 1 || rows == 1) && (cs == rows || cols == 1)) return {t, true, rows};
  return {t.contiguous(), false, cols};
}

GemmArgs gemm_args(const BlasOperand& a, const BlasOperand& b, int64_t m, int64_t n, int64_t k) {
  GemmArgs g;
  g.trans_a = a.trans;
  g.trans_b = b.trans;
  g.m = m;
  g.n = n;
  g.k = k;
  g.lda = a.ld;
  g.ldb = b.ld;
  g.ldc = n;
  return g;
}

// out = a @ b with a [.., M, K], b [.., K, N] (2-d or batched 3-d); bf16: inputs rounded to
// bfloat16, float32 sums (a linear layer under bf16 matmul precision).
Tensor matmul_raw(const Tensor& a, const Tensor& b, bool bf16 = false) {
  const int64_t nd = a.dim();
  const int64_t m = a.shape()[nd - 2], k = a.shape()[nd - 1], n = b.shape()[nd - 1];
  BlasOperand oa = as_blas_operand(a), ob = as_blas_operand(b);
  GemmArgs g = gemm_args(oa, ob, m, n, k);
  g.bf16 = bf16;
  if (nd == 2) {
    Tensor out = Tensor::empty({m, n}, a.dtype(), a.device());
    if (m * n > 0) gemm(out, oa.buffer, ob.buffer, g);
    return out;
  }
  const int64_t batch = a.shape()[0];
  Tensor out = Tensor::empty({batch, m, n}, a.dtype(), a.device());
  if (batch * m * n > 0) gemm_batched(out, oa.buffer, ob.buffer, g, batch, m * k, k * n, m * n);
  return out;
}

struct MatmulBackward : Node {
  Tensor a, b;
  const char* name() const override { return "MatmulBackward"; }
  double flops() const override {  // one product's worth per needed gradient
    const int64_t nd = a.dim();
    const double batch = nd == 3 ? static_cast<double>(a.size(0)) : 1.0;
    const double forward =
        2.0 * batch * static_cast<double>(a.size(nd - 2) * a.size(nd - 1) * b.size(nd - 1));
    return forward * ((needs_grad(0) ? 1 : 0) + (needs_grad(1) ? 1 : 0));
  }
  void release_saved() override {
    a = Tensor();
    b = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    const int64_t nd = a.dim();
    Tensor ga, gb;
    if (needs_grad(0)) ga = matmul_raw(g, b.transpose(nd - 2, nd - 1));  // dA = G B^T
    if (needs_grad(1)) gb = matmul_raw(a.transpose(nd - 2, nd - 1), g);  // dB = A^T G
    return {ga, gb};
  }
};

struct LinearBackward : Node {
  Tensor x, weight;
  const char* name() const override { return "LinearBackward"; }
  double flops() const override {  // one product's worth per needed gradient
    const double forward = 2.0 * static_cast<double>(x.size(0) * x.size(1) * weight.size(0));
    return forward * ((needs_grad(0) ? 1 : 0) + (needs_grad(1) ? 1 : 0));
  }
  void release_saved() override {
    x = Tensor();
    weight = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gc = g.contiguous();
    Tensor gx, gw, gb;
    const bool bf16 = bf16_matmul_for(gc.dtype());
    if (needs_grad(0)) gx = matmul_raw(gc, weight, bf16);  // [N,out] x [out,in]
    if (needs_grad(1)) gw = matmul_raw(gc.t(), x, bf16);   // [out,N] x [N,in]
    if (needs_grad(2)) gb = sum(gc, 0);                    // [out]
    return {gx, gw, gb};
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  profiler::Scope profile("matmul");
  AG_CHECK(a.dtype() == b.dtype() && is_floating(a.dtype()),
           "matmul: needs two float tensors of one dtype, got " << a.describe() << " and " << b.describe());
  AG_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0)),
           "matmul: expects [M,K] x [K,N] or [B,M,K] x [B,K,N], got " << shape_str(a.shape()) << " x "
                                                                      << shape_str(b.shape()));
  AG_CHECK(a.size(-1) == b.size(-2),
           "matmul: inner dimensions differ: " << shape_str(a.shape()) << " x " << shape_str(b.shape()));
  if (profile.active()) {
    const int64_t nd = a.dim();
    profile.set_flops(2.0 * static_cast<double>(a.numel()) * static_cast<double>(b.size(nd - 1)));
  }
  Tensor out = matmul_raw(a.detach(), b.detach());
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<MatmulBackward>();
    node->a = a.detach();
    node->b = b.detach();
    return attach_node(out, node, {&a, &b});
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  profiler::Scope profile("linear");
  AG_CHECK(x.dim() == 2 && weight.dim() == 2, "linear: expects x [N,in] and weight [out,in], got "
                                                  << shape_str(x.shape()) << " and "
                                                  << shape_str(weight.shape()));
  AG_CHECK(x.size(1) == weight.size(1), "linear: input features differ: x " << shape_str(x.shape())
                                                                            << ", weight "
                                                                            << shape_str(weight.shape()));
  AG_CHECK(x.dtype() == weight.dtype(),
           "linear: dtypes differ: " << x.describe() << ", " << weight.describe());
  AG_CHECK(!bias.defined() || bias.shape() == Shape{weight.size(0)},
           "linear: bias must be [" << weight.size(0) << "], got " << shape_str(bias.shape()));
  if (profile.active())
    profile.set_flops(2.0 * static_cast<double>(x.numel()) * static_cast<double>(weight.size(0)));
  Tensor out = matmul_raw(x.detach(), weight.detach().t(), bf16_matmul_for(x.dtype()));
  if (bias.defined()) add_row_bias(out, bias.detach().contiguous());
  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<LinearBackward>();
    node->x = x.detach();
    node->weight = weight.detach();
    return attach_node(out, node, {&x, &weight, &bias});
  }
  return out;
}

}  // namespace ag
