// Softmax cross-entropy over logits, fused into one numerically stable op (log-sum-exp with
// the row max subtracted first), with optional label smoothing; and the label checks every
// loss shares. See docs/losses.md for the formulas.
#pragma once

#include <string>

#include "core/tensor.h"

namespace ag {

enum class Reduction { none, mean, sum };
// "none", "mean" or "sum"; anything else is an error naming the text.
Reduction parse_reduction(const std::string& text);

// L_i = -sum_j q_ij log softmax(logits_i)_j with q = (1 - label_smoothing) one_hot(y_i) +
// label_smoothing / C. logits: float [N, C] (N >= 1); labels: int64 [N] on the logits'
// device, each in [0, C). Returns [] for mean/sum, [N] for none. label_smoothing in [0, 1).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction = Reduction::mean,
                     double label_smoothing = 0.0);

// Checks that labels is an int64 [n] tensor whose values lie in [0, classes); the error
// names the first bad label, its row and the class count. who prefixes the message.
// Reads the values on the host: free for CPU labels, a device sync for CUDA ones.
void check_labels(const Tensor& labels, int64_t n, int64_t classes, const char* who);

}  // namespace ag
