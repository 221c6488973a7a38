// The CPU caching allocator: large blocks are reused by size, small ones are not cached,
// and emptying the cache returns everything.
#include <doctest/doctest.h>

#include "core/host_allocator.h"
#include "core/tensor.h"

using namespace ag;

TEST_CASE("a freed large CPU block is handed out again for the same size") {
  if (host_cache_limit() == 0) {
    MESSAGE("skipped: the CPU cache is off in this build (AddressSanitizer) or by AG_CPU_CACHE_MB=0");
    return;
  }
  host_empty_cache();
  const void* first = nullptr;
  {
    Tensor a = Tensor::empty({1 << 16});  // 256 KiB of float32
    first = a.raw_data();
  }
  const HostMemoryStats after_free = host_memory_stats();
  CHECK(after_free.cached_bytes >= (size_t{1} << 18));
  Tensor b = Tensor::empty({1 << 16});
  const HostMemoryStats after_reuse = host_memory_stats();
  CHECK(b.raw_data() == first);
  CHECK(after_reuse.cache_hits == after_free.cache_hits + 1);
  CHECK(after_reuse.system_allocs == after_free.system_allocs);
  CHECK(after_reuse.cached_bytes == after_free.cached_bytes - (size_t{1} << 18));
}

TEST_CASE("small blocks are not cached, and emptying the cache frees every cached block") {
  host_empty_cache();
  { Tensor small = Tensor::empty({16}); }
  CHECK(host_memory_stats().cached_bytes == 0);
  { Tensor big = Tensor::empty({1 << 16}); }
  host_empty_cache();
  CHECK(host_memory_stats().cached_bytes == 0);
}

TEST_CASE("reused blocks hold a tensor's own values, and live blocks are never shared") {
  Tensor a = Tensor::full({1 << 15}, 1.0);
  Tensor b = Tensor::full({1 << 15}, 2.0);
  CHECK(a.raw_data() != b.raw_data());
  { Tensor c = Tensor::full({1 << 15}, 3.0); }
  Tensor d = Tensor::zeros({1 << 15});
  for (double v : d.to_vector()) REQUIRE(v == 0.0);
  for (double v : a.to_vector()) REQUIRE(v == 1.0);
}
