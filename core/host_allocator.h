// The CPU allocator: 64-byte aligned blocks, with a cache of freed large blocks.
//
// Why a cache: a training step frees and re-allocates the same activation and gradient
// buffers (megabytes each) every step. glibc hands such blocks back to the kernel, so every
// step paid again for page faults and for zeroing fresh pages (~15,000 faults per ResNet-20
// step at batch 128). Freed blocks of 64 KiB and more are kept by exact size and handed out
// again; small blocks go straight to malloc, which already reuses them well.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ag {

struct HostMemoryStats {
  size_t allocated_bytes = 0;  // large blocks (64 KiB and more) held by live CPU storages
  size_t cached_bytes = 0;     // freed large blocks kept for reuse
  int64_t system_allocs = 0;   // large blocks obtained from the system so far
  int64_t cache_hits = 0;      // large allocations served from the cache
};
HostMemoryStats host_memory_stats();

// Returns every cached block to the system.
void host_empty_cache();

// The most bytes the cache keeps: AG_CPU_CACHE_MB from the environment, else a quarter of
// the physical memory up to 4 GiB. When a freed block would push the cache past it, the
// cache is emptied first (stale sizes go, the current working set refills it). 0 means no
// caching; so it is in builds with AddressSanitizer, where a use after free must be caught.
size_t host_cache_limit();

}  // namespace ag
