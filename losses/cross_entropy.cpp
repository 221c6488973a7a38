// The fused cross-entropy op and its Node, side by side. The kernels (core/kernel_decls.h,
// "losses") produce per-row losses; mean/sum reductions compose with the reduce ops.
#include "losses/cross_entropy.h"

#include "core/ops.h"

namespace ag {

Reduction parse_reduction(const std::string& text) {
  if (text == "none") return Reduction::none;
  if (text == "mean") return Reduction::mean;
  if (text == "sum") return Reduction::sum;
  AG_FAIL("unknown reduction '" << text << "': expected none, mean or sum");
}

void check_labels(const Tensor& labels, int64_t n, int64_t classes, const char* who) {
  AG_CHECK(labels.defined(), who << ": the labels are undefined");
  AG_CHECK(labels.dtype() == DType::i64 && labels.dim() == 1,
           who << ": labels must be an int64 [N] tensor, got " << labels.describe());
  AG_CHECK(labels.size(0) == n, who << ": " << labels.size(0) << " labels for " << n << " rows (labels "
                                    << labels.describe() << "); there must be one per row");
  const std::vector<int64_t> values = labels.to_labels();
  for (size_t i = 0; i < values.size(); ++i)
    AG_CHECK(values[i] >= 0 && values[i] < classes, who << ": label " << values[i] << " (row " << i
                                                        << ") is outside [0, " << classes << "): there are "
                                                        << classes << " classes");
}

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

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction,
                     double label_smoothing) {
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
    rows = attach_node(rows, node, {&logits});
  }
  switch (reduction) {
    case Reduction::none:
      return rows;
    case Reduction::sum:
      return sum(rows);
    case Reduction::mean:
      return mean(rows);
  }
  return rows;
}

}  // namespace ag
