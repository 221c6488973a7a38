// The "no device" answers of core/cuda_api.h for a CPU-only build. A CUDA build defines
// these functions in core/cuda/device.cpp instead.
#include "core/cuda_api.h"

#ifndef AG_WITH_CUDA

namespace ag::cuda {

int device_count() { return 0; }
bool is_available() { return false; }
std::string unavailable_reason() { return "arcgrad was built without CUDA (AG_USE_CUDA=OFF or no toolkit)"; }
std::string device_name(int index) {
  AG_FAIL("device_name(" << index << "): arcgrad was built without CUDA");
}
void synchronize(int) {}

namespace {
bool g_allow_tf32 = false;
}
void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }
void set_depthwise_via_cudnn(bool) {}
bool depthwise_via_cudnn() { return false; }

MemoryStats memory_stats(int) { return {}; }
void empty_cache() {}

// Without CUDA there is nothing to pin: ordinary host memory serves the same purpose.
Tensor empty_pinned(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }
bool is_pinned(const Tensor&) { return false; }

}  // namespace ag::cuda

#endif
