#include "core/host_allocator.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/storage.h"

namespace ag {

namespace {

constexpr size_t kAlignment = 64;  // a cache line, and enough for any AVX-512 load
constexpr size_t kCachedFrom = 64 << 10;

size_t rounded(size_t bytes) {
  return bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

// "512.0 MiB (536870912 bytes)".
std::string bytes_text(size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB (%zu bytes)", static_cast<double>(bytes) / (1 << 20), bytes);
  return text;
}

// live: what arcgrad's tensors already hold, for the message (0: not tracked).
void* system_alloc(size_t bytes, size_t live = 0) {
  void* p = std::aligned_alloc(kAlignment, bytes);
  // A memory limit (ulimit -v, a cgroup) or a full machine: one message with the size, thrown
  // before anything is written, so the files of a run (its last checkpoint) stay as they were.
  AG_CHECK(p != nullptr, "out of host memory: could not allocate "
                             << bytes_text(bytes)
                             << (live ? "; arcgrad's CPU tensors already hold " + bytes_text(live) : "")
                             << "; use smaller batches or raise the memory limit");
  return p;
}

size_t default_cache_limit() {
#if defined(__SANITIZE_ADDRESS__)
  return 0;  // every free goes to the system, where AddressSanitizer can watch it
#endif
  if (const char* env = std::getenv("AG_CPU_CACHE_MB")) {
    char* end = nullptr;
    const long long mb = std::strtoll(env, &end, 10);
    AG_CHECK(end != env && *end == '\0' && mb >= 0,
             "AG_CPU_CACHE_MB must be a whole number of megabytes >= 0, got '" << env << "'");
    return static_cast<size_t>(mb) << 20;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const size_t quarter = pages > 0 && page > 0 ? static_cast<size_t>(pages) * page / 4 : size_t{1} << 30;
  return std::min(quarter, size_t{4} << 30);
}

class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    const size_t size = rounded(bytes);
    if (size < kCachedFrom || limit_ == 0) return system_alloc(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.allocated_bytes += size;
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.cached_bytes -= size;
        ++stats_.cache_hits;
        return p;
      }
      ++stats_.system_allocs;
    }
    try {
      return system_alloc(size);
    } catch (...) {
      // Out of memory: give the cache back and try once more before failing.
      host_empty_cache();
      try {
        return system_alloc(size, stats().allocated_bytes - size);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.allocated_bytes -= size;
        throw;
      }
    }
  }

  void deallocate(void* ptr, size_t bytes) override {
    const size_t size = rounded(bytes);
    if (size < kCachedFrom || limit_ == 0) return std::free(ptr);
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.allocated_bytes -= size;
      if (size > limit_) {
        evicted.push_back(ptr);
      } else {
        if (stats_.cached_bytes + size > limit_) take_all(evicted);
        free_[size].push_back(ptr);
        stats_.cached_bytes += size;
      }
    }
    for (void* p : evicted) std::free(p);  // outside the lock
  }

  void empty() {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      take_all(evicted);
    }
    for (void* p : evicted) std::free(p);
  }

  HostMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  size_t limit() const { return limit_; }

 private:
  void take_all(std::vector<void*>& out) {  // mutex_ held
    for (auto& [size, blocks] : free_) out.insert(out.end(), blocks.begin(), blocks.end());
    free_.clear();
    stats_.cached_bytes = 0;
  }

  const size_t limit_ = default_cache_limit();
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // freed blocks by rounded size
  HostMemoryStats stats_;
};

// Never destroyed, on purpose: tensors held in static objects (caches, globals of a test
// program) are freed during exit, possibly after a function-local static allocator would
// already be gone.
HostAllocator& host_allocator() {
  static HostAllocator* instance = new HostAllocator();
  return *instance;
}

}  // namespace

Allocator& cpu_allocator() { return host_allocator(); }
HostMemoryStats host_memory_stats() { return host_allocator().stats(); }
void host_empty_cache() { host_allocator().empty(); }
size_t host_cache_limit() { return host_allocator().limit(); }

}  // namespace ag
