// Dispatch of the loss kernels (core/kernel_decls.h, "losses") to their CPU or CUDA twins
// by the output's device, after checking the shapes and layout the fused loops rely on.
#include "core/dispatch.h"

namespace ag {

namespace {
// logits [N, C] float, labels int64 [N], every per-row tensor [N] of the logits' dtype; all
// contiguous.
void check_cross_entropy_args(const char* name, const Tensor& logits, const Tensor& labels,
                              std::initializer_list<const Tensor*> rows) {
  AG_CHECK(logits.dim() == 2 && is_floating(logits.dtype()) && logits.is_contiguous(),
           name << ": logits must be a contiguous float [N, C] tensor, got " << logits.describe());
  const int64_t n = logits.size(0);
  AG_CHECK(labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == n && labels.is_contiguous(),
           name << ": labels must be a contiguous int64 [" << n << "] tensor (one per logits row), got "
                << labels.describe());
  for (const Tensor* t : rows)
    AG_CHECK(t->dim() == 1 && t->size(0) == n && t->dtype() == logits.dtype() && t->is_contiguous(),
             name << ": a per-row tensor is " << t->describe() << ", expected " << logits.dtype() << "[" << n
                  << "] contiguous");
}
}  // namespace

void cross_entropy_forward(Tensor& loss, Tensor& lse, const Tensor& logits, const Tensor& labels,
                           double label_smoothing) {
  check_cross_entropy_args("cross_entropy_forward", logits, labels, {&loss, &lse});
  AG_ON_DEVICE("cross_entropy_forward", loss,
               cross_entropy_forward(loss, lse, logits, labels, label_smoothing), &lse, &logits, &labels);
}

void cross_entropy_backward(Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,
                            const Tensor& lse, const Tensor& labels, double label_smoothing) {
  check_cross_entropy_args("cross_entropy_backward", logits, labels, {&grad_loss, &lse});
  AG_CHECK(grad_logits.shape() == logits.shape() && grad_logits.dtype() == logits.dtype() &&
               grad_logits.is_contiguous(),
           "cross_entropy_backward: grad_logits is " << grad_logits.describe() << ", expected the logits' "
                                                     << logits.describe());
  AG_ON_DEVICE("cross_entropy_backward", grad_logits,
               cross_entropy_backward(grad_logits, grad_loss, logits, lse, labels, label_smoothing),
               &grad_loss, &logits, &lse, &labels);
}

}  // namespace ag
