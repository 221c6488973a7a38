// Classification metrics from scores [N, C] and labels [N]: top-k accuracy, the confusion
// matrix, per-class accuracy and mAP (the paper's metric).
//
// Conventions (all deterministic, independent of sample order):
// - prediction = argmax of the scores, the lowest class index on ties;
// - top-k: a sample is a hit when its label ranks among the first k classes, ranking by
//   score and then by class index (so top-1 agrees with the prediction);
// - average precision of class c: rank every sample by its score for c, highest first;
//   AP = mean over the samples of class c of the precision at their rank. Tied scores form
//   one block and every positive in a block gets the precision at the block's end (as
//   scikit-learn's average_precision_score does), so ties neither help nor depend on order;
// - per-class accuracy and AP of a class with no samples are NaN; mAP averages the
//   classes that have samples.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace ag::train {

// AP of one class: scores[i] is sample i's score for the class, positive[i] whether it
// belongs to it. NaN when there is no positive.
double average_precision(const std::vector<double>& scores, const std::vector<bool>& positive);

struct EvalResult {
  int64_t count = 0;
  double top1 = 0, top5 = 0;  // fractions in [0, 1]
  double map = 0;             // mean average precision
  std::vector<double> per_class_accuracy, per_class_ap;
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
};

// Collects scores over an evaluation pass (batch by batch), then computes everything.
class ClassificationEvaluator {
 public:
  explicit ClassificationEvaluator(int64_t num_classes);
  // scores: [B, C] float (any device), labels: int64 [B] with values in [0, C).
  void add(const Tensor& scores, const Tensor& labels);
  int64_t count() const { return static_cast<int64_t>(labels_.size()); }
  int64_t num_classes() const { return classes_; }
  void clear();

  double topk(int64_t k) const;  // fraction of samples whose label is in the top k
  std::vector<std::vector<int64_t>> confusion() const;
  std::vector<double> per_class_accuracy() const;
  std::vector<double> per_class_ap() const;
  double mean_average_precision() const;
  EvalResult result() const;  // all of the above (top5 is top-min(5, C))

 private:
  int64_t classes_;
  std::vector<double> scores_;  // [count, classes] row-major
  std::vector<int64_t> labels_;
};

}  // namespace ag::train
