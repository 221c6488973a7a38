// The CUDA runtime layer (core/cuda/device.cpp): the caching allocator's reuse and
// out-of-memory error, pinned host tensors, device errors, and a steady training-like loop
// that allocates nothing new from the driver. Skipped with a printed reason when no GPU is
// present.
#include "cuda_parity.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda: the device is described and counted") {
  AG_SKIP_WITHOUT_GPU();
  CHECK(cuda::device_count() >= 1);
  CHECK(cuda::unavailable_reason().empty());
  const std::string name = cuda::device_name(0);
  MESSAGE("device 0: " << name);
  CHECK(name.find("sm_") != std::string::npos);
  const int missing = cuda::device_count();
  CHECK_THROWS_WITH_AS(Tensor::empty({4}, DType::f32, Device::cuda(missing)),
                       doctest::Contains("CUDA device(s) exist"), Error);
}

TEST_CASE("cuda: freed blocks are reused by size") {
  AG_SKIP_WITHOUT_GPU();
  const Shape shape = {1000, 1000};                          // 4 MB: a size class no other test holds
  { Tensor warm = Tensor::empty(shape, DType::f32, kGpu); }  // now one such block is cached
  const cuda::MemoryStats before = cuda::memory_stats();
  CHECK(before.cached_bytes >= 4000000);
  { Tensor again = Tensor::empty(shape, DType::f32, kGpu); }
  const cuda::MemoryStats after = cuda::memory_stats();
  CHECK(after.device_mallocs == before.device_mallocs);
  CHECK(after.cache_hits == before.cache_hits + 1);
  cuda::empty_cache();
  CHECK(cuda::memory_stats().cached_bytes == 0);
}

TEST_CASE("cuda: out of memory names the bytes requested and free, and the device survives") {
  AG_SKIP_WITHOUT_GPU();
  const int64_t huge = int64_t(1) << 48;  // 256 TiB of float32
  try {
    Tensor t = Tensor::empty({huge}, DType::f32, kGpu);
    FAIL("allocating " << huge * 4 << " bytes succeeded");
  } catch (const Error& e) {
    const std::string what = e.what();
    MESSAGE(what);
    CHECK(what.find("out of memory") != std::string::npos);
    CHECK(what.find(std::to_string(huge * 4) + " bytes") != std::string::npos);
    CHECK(what.find("free of") != std::string::npos);
  }
  Tensor fine = Tensor::full({8}, 3.0, DType::f32, kGpu);
  CHECK(fine.to_vector() == std::vector<double>(8, 3.0));
}

TEST_CASE("cuda: pinned host tensors") {
  AG_SKIP_WITHOUT_GPU();
  Tensor pinned = cuda::empty_pinned({64, 3, 8}, DType::f32);
  CHECK(pinned.device().is_cpu());
  CHECK(cuda::is_pinned(pinned));
  CHECK_FALSE(cuda::is_pinned(Tensor::empty({4})));
  Tensor values = rand_cpu({64, 3, 8}, DType::f32);
  pinned.copy_(values);
  Tensor on_gpu = pinned.to(kGpu);
  pinned.fill_(0.0);  // the upload finished before to() returned: refilling is safe
  CHECK(on_gpu.to_vector() == values.to_vector());
  Tensor back = cuda::empty_pinned({64, 3, 8}, DType::f32);
  back.copy_(on_gpu);
  CHECK(back.to_vector() == values.to_vector());
}

TEST_CASE("cuda: a repeated forward/backward step allocates nothing new from the driver") {
  AG_SKIP_WITHOUT_GPU();
  Tensor w = rand_cpu({64, 32}, DType::f32).to(kGpu).set_requires_grad(true);
  Tensor x = rand_cpu({16, 32}, DType::f32).to(kGpu);
  Tensor labels = Tensor::from_labels({0, 3, 5, 7, 1, 2, 9, 4, 0, 3, 5, 7, 1, 2, 9, 4}).to(kGpu);
  auto step = [&] {
    Tensor logits = linear(relu(x), w);
    Tensor loss = neg(mean(sum(mul(log_softmax(logits), one_hot(labels, 64)), 1)));
    w.zero_grad();
    loss.backward();
    return loss.item();
  };
  step();
  step();
  const int64_t mallocs = cuda::memory_stats().device_mallocs;
  for (int i = 0; i < 5; ++i) step();
  CHECK(cuda::memory_stats().device_mallocs == mallocs);
  CHECK(w.grad().device() == kGpu);
}
