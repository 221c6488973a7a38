// Cross-entropy with a reduction, composed from the fused per-row op (core/ops/loss.cpp)
// and the reduce ops; the label checks every loss shares.
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

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction,
                     double label_smoothing) {
  Tensor rows = softmax_cross_entropy(logits, labels, label_smoothing);
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
