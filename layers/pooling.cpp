#include "layers/pooling.h"

#include "core/ops.h"

namespace ag {

namespace {
Pool2dParams square(int64_t kernel, int64_t stride, int64_t padding, const char* name) {
  AG_CHECK(kernel > 0 && padding >= 0 && 2 * padding <= kernel,
           name << ": needs kernel > 0 and padding in [0, kernel / 2], got kernel " << kernel << ", padding "
                << padding);
  Pool2dParams p;
  p.kernel_h = p.kernel_w = kernel;
  p.stride_h = p.stride_w = stride <= 0 ? kernel : stride;
  p.pad_h = p.pad_w = padding;
  return p;
}
std::string pool_text(const Pool2dParams& p) {
  return "k=" + std::to_string(p.kernel_h) + ", s=" + std::to_string(p.stride_h) +
         (p.pad_h ? ", p=" + std::to_string(p.pad_h) : "");
}
}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding)
    : params_(square(kernel, stride, padding, "MaxPool2d")) {}
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, params_); }
std::string MaxPool2d::describe() const { return pool_text(params_); }

AvgPool2d::AvgPool2d(int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad)
    : params_(square(kernel, stride, padding, "AvgPool2d")) {
  params_.count_include_pad = count_include_pad;
}
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, params_); }
std::string AvgPool2d::describe() const { return pool_text(params_); }

Tensor GlobalAvgPool2d::forward(const Tensor& x) { return global_avg_pool2d(x); }

}  // namespace ag
