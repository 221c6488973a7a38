// CPU softmax cross-entropy with label smoothing: one pass per row for the log-sum-exp
// (max subtracted first, so s = 64 logits cannot overflow), accumulated in double.
#include <cmath>

#include "core/cpu/strided.h"
#include "core/kernels.h"

namespace ag::cpu {

namespace {
// Checked serially before the parallel loops: an exception must not leave an OpenMP region.
void check_label_range(const Tensor& labels, int64_t classes) {
  const int64_t* pl = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    AG_CHECK(pl[i] >= 0 && pl[i] < classes, "cross_entropy: label "
                                                << pl[i] << " (row " << i << ") is outside [0, " << classes
                                                << "): there are " << classes << " classes");
}
}  // namespace

void cross_entropy_forward(Tensor& loss, Tensor& lse, const Tensor& logits, const Tensor& labels,
                           double label_smoothing) {
  const int64_t n = logits.size(0), c = logits.size(1);
  check_label_range(labels, c);
  dispatch_float(logits.dtype(), "cross_entropy_forward", [&]<typename scalar_t>() {
    const scalar_t* px = logits.data<scalar_t>();
    const int64_t* pl = labels.data<int64_t>();
    scalar_t* ploss = loss.data<scalar_t>();
    scalar_t* plse = lse.data<scalar_t>();
    const double on = 1.0 - label_smoothing, off = label_smoothing / static_cast<double>(c);
#pragma omp parallel for if (n * c > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* row = px + i * c;
      double m = row[0];
      for (int64_t j = 1; j < c; ++j) m = row[j] > m ? static_cast<double>(row[j]) : m;
      double total = 0, row_sum = 0;
      for (int64_t j = 0; j < c; ++j) {
        total += std::exp(static_cast<double>(row[j]) - m);
        row_sum += row[j];
      }
      const double log_sum_exp = m + std::log(total);
      // -sum_j q_j log p_j with log p_j = x_j - lse and sum_j q_j = 1.
      plse[i] = static_cast<scalar_t>(log_sum_exp);
      ploss[i] = static_cast<scalar_t>(log_sum_exp - on * row[pl[i]] - off * row_sum);
    }
  });
}

void cross_entropy_backward(Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,
                            const Tensor& lse, const Tensor& labels, double label_smoothing) {
  const int64_t n = logits.size(0), c = logits.size(1);
  check_label_range(labels, c);
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&]<typename scalar_t>() {
    const scalar_t* px = logits.data<scalar_t>();
    const scalar_t* pg = grad_loss.data<scalar_t>();
    const scalar_t* plse = lse.data<scalar_t>();
    const int64_t* pl = labels.data<int64_t>();
    scalar_t* pgx = grad_logits.data<scalar_t>();
    const double on = 1.0 - label_smoothing, off = label_smoothing / static_cast<double>(c);
#pragma omp parallel for if (n * c > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const double g = pg[i], row_lse = plse[i];
      for (int64_t j = 0; j < c; ++j) {
        const double q = off + (j == pl[i] ? on : 0.0);
        const double p = std::exp(static_cast<double>(px[i * c + j]) - row_lse);
        pgx[i * c + j] = static_cast<scalar_t>(g * (p - q));
      }
    }
  });
}

}  // namespace ag::cpu
