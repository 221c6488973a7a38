// CUDA softmax cross-entropy with label smoothing, fused: one row (the C logits of a
// sample) per warp or block, log-sum-exp with the row max subtracted first and sums in
// double, as in the CPU twin (core/cpu/loss.cpp), whose label error this raises too.
#include <limits>

#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

void check_label_range(const Launch& launch, const Tensor& labels, int64_t classes) {
  const BadIndex bad = find_bad_index(launch, labels, classes);
  AG_CHECK(bad.position < 0, "cross_entropy: label " << bad.value << " (row " << bad.position
                                                     << ") is outside [0, " << classes << "): there are "
                                                     << classes << " classes");
}

template <typename T>
struct CrossEntropyRow {
  T* loss;                // [N]
  T* lse;                 // [N]
  const T* logits;        // [N, C]
  const int64_t* labels;  // [N]
  int64_t c;
  double on, off;  // target weights: on + off for the label's class, off elsewhere

  template <typename G>
  __device__ void operator()(int64_t i) const {
    const T* row = logits + i * c;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = G::lane(); j < c; j += G::size()) m = MaxOp{}(m, row[j]);
    const double max = G::reduce(m, MaxOp{});
    double total = 0, row_sum = 0;
    for (int64_t j = G::lane(); j < c; j += G::size()) {
      total += exp(static_cast<double>(row[j]) - max);
      row_sum += static_cast<double>(row[j]);
    }
    total = G::reduce(total, SumOp{});
    row_sum = G::reduce(row_sum, SumOp{});
    if (G::lane() == 0) {
      const double log_sum_exp = max + ::log(total);
      // -sum_j q_j log p_j with log p_j = x_j - lse and sum_j q_j = 1.
      lse[i] = static_cast<T>(log_sum_exp);
      loss[i] = static_cast<T>(log_sum_exp - on * static_cast<double>(row[labels[i]]) - off * row_sum);
    }
  }
};

template <typename T>
__global__ void cross_entropy_backward_kernel(T* grad_logits, const T* grad_loss, const T* logits,
                                              const T* lse, const int64_t* labels, int64_t c, double on,
                                              double off, int64_t total) {
  AG_GRID_STRIDE(k, total) {
    const int64_t i = k / c, j = k % c;
    const double q = off + (j == labels[i] ? on : 0.0);
    const double p = exp(static_cast<double>(logits[k]) - static_cast<double>(lse[i]));
    grad_logits[k] = static_cast<T>(static_cast<double>(grad_loss[i]) * (p - q));
  }
}

}  // namespace

void cross_entropy_forward(Tensor& loss, Tensor& lse, const Tensor& logits, const Tensor& labels,
                           double label_smoothing) {
  const int64_t n = logits.size(0), c = logits.size(1);
  Launch launch(loss);
  check_label_range(launch, labels, c);
  const double on = 1.0 - label_smoothing, off = label_smoothing / static_cast<double>(c);
  dispatch_float(logits.dtype(), "cross_entropy_forward", [&]<typename scalar_t>() {
    const CrossEntropyRow<scalar_t> row{loss.data<scalar_t>(),
                                        lse.data<scalar_t>(),
                                        logits.data<scalar_t>(),
                                        labels.data<int64_t>(),
                                        c,
                                        on,
                                        off};
    launch_rows(launch, n, c, 1, row);
  });
}

void cross_entropy_backward(Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,
                            const Tensor& lse, const Tensor& labels, double label_smoothing) {
  const int64_t n = logits.size(0), c = logits.size(1), total = n * c;
  Launch launch(grad_logits);
  check_label_range(launch, labels, c);
  if (total == 0) return;
  const double on = 1.0 - label_smoothing, off = label_smoothing / static_cast<double>(c);
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&]<typename scalar_t>() {
    cross_entropy_backward_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        grad_logits.data<scalar_t>(), grad_loss.data<scalar_t>(), logits.data<scalar_t>(),
        lse.data<scalar_t>(), labels.data<int64_t>(), c, on, off, total);
  });
  AG_CUDA_CHECK_LAUNCH();
}

}  // namespace ag::cuda
