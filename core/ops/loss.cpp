// The fused softmax cross-entropy and its Node, side by side. The kernels produce per-row
// losses; losses/cross_entropy.cpp adds the mean/sum reductions.
#include "core/ops.h"

namespace ag {

namespace {

struct CrossEntropyBackward : Node {
  Tensor logits, lse, labels;  // logits [N, C], lse [N], labels int64 [N]
  double label_smoothing = 0;
  const char* name() const override { return "CrossEntropyBackward"; }
  void release_saved() override {
    logits = Tensor();
    lse = Tensor();
    labels = Tensor();
  }
  std::vector<Tensor> apply(const Tensor& g) override {  // g: [N]
    Tensor gx = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
    cross_entropy_backward(gx, g.contiguous(), logits, lse, labels, label_smoothing);
    return {gx};
  }
};

}  // namespace

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  profiler::Scope profile("softmax_cross_entropy");
  AG_CHECK(logits.dim() == 2 && is_floating(logits.dtype()),
           "cross_entropy: logits must be a float [N, C] tensor, got " << logits.describe());
  AG_CHECK(logits.size(0) > 0 && logits.size(1) > 0,
           "cross_entropy: logits " << logits.describe() << " are empty");
  AG_CHECK(labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == logits.size(0),
           "cross_entropy: labels must be int64 [" << logits.size(0) << "] (one per logits row), got "
                                                   << labels.describe());
  AG_CHECK(label_smoothing >= 0 && label_smoothing < 1,
           "cross_entropy: label_smoothing must lie in [0, 1), got " << label_smoothing);
  const int64_t n = logits.size(0);
  Tensor xc = logits.contiguous(), lc = labels.contiguous();
  Tensor rows = Tensor::empty({n}, logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({n}, logits.dtype(), logits.device());
  cross_entropy_forward(rows, lse, xc, lc, label_smoothing);
  if (any_requires_grad({&logits})) {
    auto node = std::make_shared<CrossEntropyBackward>();
    node->logits = xc.detach();
    node->lse = lse;
    node->labels = lc;
    node->label_smoothing = label_smoothing;
    return attach_node(rows, node, {&logits});
  }
  return rows;
}

}  // namespace ag
