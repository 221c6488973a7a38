// core/cuda_api.h in every build: a CPU-only build (or a machine without a GPU) answers
// "no device" with a reason instead of failing, CUDA tensors are refused with a clear
// error, and pinned tensors still work as ordinary host memory.
#include <doctest/doctest.h>

#include "core/cuda_api.h"
#include "core/ops.h"

using namespace ag;

TEST_CASE("device queries never throw and agree with each other") {
  const int count = cuda::device_count();
  CHECK(count >= 0);
  CHECK(cuda::is_available() == (count > 0));
  if (!cuda::is_available()) {
    MESSAGE("no CUDA device: " << cuda::unavailable_reason());
    CHECK_FALSE(cuda::unavailable_reason().empty());
    const cuda::MemoryStats stats = cuda::memory_stats();
    CHECK(stats.allocated_bytes == 0);
    CHECK(stats.device_mallocs == 0);
    CHECK_NOTHROW(cuda::synchronize());
    CHECK_NOTHROW(cuda::empty_cache());
  }
}

TEST_CASE("without a device, CUDA tensors are refused with a clear error") {
  if (cuda::is_available()) {
    MESSAGE("skipped: a CUDA device is present");
    return;
  }
#ifdef AG_WITH_CUDA
  const char* expected = "no CUDA device is available";
#else
  const char* expected = "built without CUDA";
#endif
  CHECK_THROWS_WITH_AS(Tensor::empty({2, 3}, DType::f32, Device::cuda(0)), doctest::Contains(expected),
                       Error);
  CHECK_THROWS_WITH_AS(Tensor::ones({2}).to(Device::cuda(0)), doctest::Contains(expected), Error);
}

TEST_CASE("pinned tensors are usable host tensors in every build") {
  Tensor t = cuda::empty_pinned({3, 4}, DType::f64);
  CHECK(t.device().is_cpu());
  CHECK(t.shape() == Shape{3, 4});
  CHECK(cuda::is_pinned(t) == cuda::is_available());
  t.fill_(2.5);
  CHECK(sum(t).item() == doctest::Approx(30.0));
  CHECK_THROWS_AS(cuda::empty_pinned({-1}), Error);
}

TEST_CASE("the TF32 switch is off by default and remembers its setting") {
  CHECK_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  cuda::set_allow_tf32(false);
  CHECK_FALSE(cuda::allow_tf32());
}
