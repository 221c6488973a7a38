// Classification metrics; see metrics.h for the conventions on ties.
#include "apps/lib/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ag::train {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double mean_ignoring_nan(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (double v : values)
    if (!std::isnan(v)) sum += v, ++n;
  return n ? sum / static_cast<double>(n) : kNaN;
}
}  // namespace

double average_precision(const std::vector<double>& scores, const std::vector<bool>& positive) {
  AG_CHECK(scores.size() == positive.size(),
           "average_precision: " << scores.size() << " scores but " << positive.size() << " positive flags");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const int64_t total = std::count(positive.begin(), positive.end(), true);
  if (total == 0) return kNaN;
  double sum = 0;
  int64_t seen = 0, hits = 0;
  for (size_t start = 0; start < order.size();) {
    size_t end = start;
    int64_t block_hits = 0;
    while (end < order.size() && scores[order[end]] == scores[order[start]])
      block_hits += positive[order[end++]];
    seen += static_cast<int64_t>(end - start);
    hits += block_hits;
    sum += static_cast<double>(block_hits) * static_cast<double>(hits) / static_cast<double>(seen);
    start = end;
  }
  return sum / static_cast<double>(total);
}

ClassificationEvaluator::ClassificationEvaluator(int64_t num_classes) : classes_(num_classes) {
  AG_CHECK(num_classes >= 1, "ClassificationEvaluator: num_classes must be >= 1, got " << num_classes);
}

void ClassificationEvaluator::clear() {
  scores_.clear();
  labels_.clear();
}

void ClassificationEvaluator::add(const Tensor& scores, const Tensor& labels) {
  AG_CHECK(scores.dim() == 2 && scores.size(1) == classes_,
           "ClassificationEvaluator: scores must be [N, " << classes_ << "], got " << scores.describe());
  AG_CHECK(
      labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == scores.size(0),
      "ClassificationEvaluator: labels must be int64 [" << scores.size(0) << "], got " << labels.describe());
  const std::vector<double> s = scores.to_vector();
  for (double v : s) AG_CHECK(!std::isnan(v), "ClassificationEvaluator: the scores contain NaN");
  const std::vector<int64_t> l = labels.to_labels();
  for (int64_t y : l)
    AG_CHECK(y >= 0 && y < classes_,
             "ClassificationEvaluator: label " << y << " outside [0, " << classes_ << ")");
  scores_.insert(scores_.end(), s.begin(), s.end());
  labels_.insert(labels_.end(), l.begin(), l.end());
}

double ClassificationEvaluator::topk(int64_t k) const {
  AG_CHECK(k >= 1, "topk: k must be >= 1, got " << k);
  if (labels_.empty()) return kNaN;
  int64_t hits = 0;
  for (size_t i = 0; i < labels_.size(); ++i) {
    const double* row = scores_.data() + i * classes_;
    const int64_t y = labels_[i];
    int64_t rank = 0;  // classes ranked before the label: higher score, or equal with a lower index
    for (int64_t j = 0; j < classes_; ++j) rank += row[j] > row[y] || (row[j] == row[y] && j < y);
    hits += rank < k;
  }
  return static_cast<double>(hits) / static_cast<double>(labels_.size());
}

std::vector<std::vector<int64_t>> ClassificationEvaluator::confusion() const {
  std::vector<std::vector<int64_t>> m(classes_, std::vector<int64_t>(classes_, 0));
  for (size_t i = 0; i < labels_.size(); ++i) {
    const double* row = scores_.data() + i * classes_;
    const int64_t pred = std::max_element(row, row + classes_) - row;  // first maximum
    ++m[labels_[i]][pred];
  }
  return m;
}

std::vector<double> ClassificationEvaluator::per_class_accuracy() const {
  const auto m = confusion();
  std::vector<double> acc(classes_, kNaN);
  for (int64_t c = 0; c < classes_; ++c) {
    const int64_t n = std::accumulate(m[c].begin(), m[c].end(), int64_t{0});
    if (n > 0) acc[c] = static_cast<double>(m[c][c]) / static_cast<double>(n);
  }
  return acc;
}

std::vector<double> ClassificationEvaluator::per_class_ap() const {
  std::vector<double> ap(classes_);
  std::vector<double> column(labels_.size());
  std::vector<bool> positive(labels_.size());
  for (int64_t c = 0; c < classes_; ++c) {
    for (size_t i = 0; i < labels_.size(); ++i) {
      column[i] = scores_[i * classes_ + c];
      positive[i] = labels_[i] == c;
    }
    ap[c] = average_precision(column, positive);
  }
  return ap;
}

double ClassificationEvaluator::mean_average_precision() const { return mean_ignoring_nan(per_class_ap()); }

EvalResult ClassificationEvaluator::result() const {
  EvalResult r;
  r.count = count();
  r.top1 = topk(1);
  r.top5 = topk(std::min<int64_t>(5, classes_));
  r.confusion = confusion();
  r.per_class_accuracy = per_class_accuracy();
  r.per_class_ap = per_class_ap();
  r.map = mean_ignoring_nan(r.per_class_ap);
  return r;
}

}  // namespace ag::train
