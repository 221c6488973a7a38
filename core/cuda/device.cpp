// The CUDA runtime side of arcgrad: device discovery, one stream and library handles per
// device, the caching device allocator and the caching pinned-host allocator. Everything
// here is created on first use and kept for the life of the process (never destroyed:
// tensors held in static objects may be freed after static destructors have run).
#include <atomic>
#include <bit>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "core/cuda/cuda_common.h"
#include "core/cuda_api.h"

namespace ag::cuda {

namespace {

struct Discovery {
  int count = 0;
  std::string reason;  // why count is 0
};

// Asked once: cudaGetDeviceCount is the first runtime call, and its failure (no driver, an
// old driver, no GPU) means "no device", never an error.
const Discovery& discovery() {
  static const Discovery found = [] {
    Discovery d;
    int n = 0;
    const cudaError_t status = cudaGetDeviceCount(&n);
    if (status != cudaSuccess) {
      (void)cudaGetLastError();  // clear it so later checks do not report it
      d.reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(status);
    } else if (n == 0) {
      d.reason = "no CUDA device found";
    } else {
      d.count = n;
    }
    return d;
  }();
  return found;
}

void check_device(int index) {
  const Discovery& d = discovery();
  AG_CHECK(d.count > 0,
           "device cuda:" << index << " requested, but no CUDA device is available (" << d.reason << ")");
  AG_CHECK(index >= 0 && index < d.count,
           "device cuda:" << index << " requested, but only " << d.count << " CUDA device(s) exist");
}

std::string format_bytes(size_t bytes) {
  std::ostringstream os;
  os << bytes << " bytes (" << static_cast<double>(bytes) / (1024.0 * 1024.0) << " MiB)";
  return os.str();
}

// Sizes are rounded to a size class so blocks can be reused by exact class: 512-byte steps
// up to 4 KiB, then eight classes per power of two (at most 12.5% waste). Training asks
// for the same sizes every step, so the steady state is served entirely from the cache.
size_t round_size(size_t bytes) {
  if (bytes <= 4096) return (bytes + 511) / 512 * 512;
  const size_t step = std::bit_floor(bytes) / 8;
  return (bytes + step - 1) / step * step;
}

// Freed blocks kept by size class; subclasses say how to get and return raw memory.
class CachingAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* p = nullptr;
    auto it = free_.find(size);
    if (it != free_.end()) {
      p = it->second;
      free_.erase(it);
      stats_.cached_bytes -= size;
      ++stats_.cache_hits;
    } else {
      p = raw_alloc(size);
      if (p == nullptr) {  // return the cache to the driver and try once more
        release_locked();
        p = raw_alloc(size);
      }
      if (p == nullptr) out_of_memory(bytes);
      ++stats_.device_mallocs;
    }
    live_[p] = size;
    stats_.allocated_bytes += size;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    return p;
  }

  void deallocate(void* p, size_t) override {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: cannot happen through Storage
    free_.emplace(it->second, p);
    stats_.allocated_bytes -= it->second;
    stats_.cached_bytes += it->second;
    live_.erase(it);
  }

  void release_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_locked();
  }
  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 protected:
  virtual void* raw_alloc(size_t size) = 0;  // nullptr when out of memory
  virtual void raw_free(void* p) = 0;
  [[noreturn]] virtual void out_of_memory(size_t bytes) = 0;
  size_t allocated_locked() const { return stats_.allocated_bytes; }

 private:
  void release_locked() {
    for (auto& [size, p] : free_) raw_free(p);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_;       // size class -> block
  std::unordered_map<void*, size_t> live_;  // block -> size class
  MemoryStats stats_;
};

class DeviceAllocator final : public CachingAllocator {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}

 protected:
  void* raw_alloc(size_t size) override {
    DeviceGuard guard(device_);
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, size);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;
    }
    AG_CUDA_CHECK(status);
    return p;
  }
  void raw_free(void* p) override {
    DeviceGuard guard(device_);
    // The block may still be read by queued work; the stream drains before it goes back.
    (void)cudaStreamSynchronize(stream(device_));
    (void)cudaFree(p);
  }
  [[noreturn]] void out_of_memory(size_t bytes) override {
    DeviceGuard guard(device_);
    size_t free_bytes = 0, total_bytes = 0;
    (void)cudaMemGetInfo(&free_bytes, &total_bytes);
    AG_FAIL("CUDA out of memory on cuda:" << device_ << ": tried to allocate " << format_bytes(bytes)
                                          << "; the device has " << format_bytes(free_bytes) << " free of "
                                          << format_bytes(total_bytes) << ", and arcgrad's live tensors hold "
                                          << format_bytes(allocated_locked()));
  }

 private:
  int device_;
};

class PinnedAllocator final : public CachingAllocator {
 protected:
  void* raw_alloc(size_t size) override {
    void* p = nullptr;
    const cudaError_t status = cudaHostAlloc(&p, size, cudaHostAllocPortable);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;
    }
    AG_CUDA_CHECK(status);
    return p;
  }
  void raw_free(void* p) override { (void)cudaFreeHost(p); }
  [[noreturn]] void out_of_memory(size_t bytes) override {
    AG_FAIL("out of pinned host memory: tried to allocate " << format_bytes(bytes) << " while "
                                                            << format_bytes(allocated_locked())
                                                            << " are held by live pinned tensors");
  }
};

struct DeviceState {
  std::once_flag init, cublas_init, cudnn_init;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  int sms = 1;
  std::unique_ptr<DeviceAllocator> allocator;
};

DeviceState& state(int index) {
  check_device(index);
  static DeviceState* states = new DeviceState[discovery().count];
  DeviceState& s = states[index];
  std::call_once(s.init, [&] {
    DeviceGuard guard(index);
    // A blocking stream (not cudaStreamNonBlocking): should any code use the legacy
    // default stream by mistake, it is still ordered with ours.
    AG_CUDA_CHECK(cudaStreamCreate(&s.stream));
    AG_CUDA_CHECK(cudaDeviceGetAttribute(&s.sms, cudaDevAttrMultiProcessorCount, index));
    s.allocator = std::make_unique<DeviceAllocator>(index);
  });
  return s;
}

PinnedAllocator& pinned_allocator() {
  static PinnedAllocator* instance = new PinnedAllocator();
  return *instance;
}

std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_depthwise_via_cudnn{false};

}  // namespace

// ------------------------------------------------------------------ internal (cuda_common.h)
cudaStream_t stream(int device) { return state(device).stream; }
int sm_count(int device) { return state(device).sms; }

cublasHandle_t cublas_handle(int device) {
  DeviceState& s = state(device);
  std::call_once(s.cublas_init, [&] {
    DeviceGuard guard(device);
    AG_CUBLAS_CHECK(cublasCreate(&s.cublas));
    AG_CUBLAS_CHECK(cublasSetStream(s.cublas, s.stream));
  });
  return s.cublas;
}

cudnnHandle_t cudnn_handle(int device) {
  DeviceState& s = state(device);
  std::call_once(s.cudnn_init, [&] {
    DeviceGuard guard(device);
    AG_CUDNN_CHECK(cudnnCreate(&s.cudnn));
    AG_CUDNN_CHECK(cudnnSetStream(s.cudnn, s.stream));
  });
  return s.cudnn;
}

DeviceGuard::DeviceGuard(int device) {
  int current = 0;
  AG_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) {
    AG_CUDA_CHECK(cudaSetDevice(device));
    previous_ = current;
  }
}
DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);
}

namespace {
int checked_index(const Tensor& t) {
  check_device(t.device().index);
  return t.device().index;
}
}  // namespace

Launch::Launch(const Tensor& out)
    : guard(checked_index(out)),
      device(out.device().index),
      stream(cuda::stream(device)),
      sms(sm_count(device)) {}

// Called by core/storage.cpp for every CUDA storage.
Allocator& device_allocator(int index) { return *state(index).allocator; }

// ------------------------------------------------------------------ public (cuda_api.h)
int device_count() { return discovery().count; }
bool is_available() { return device_count() > 0; }
std::string unavailable_reason() { return discovery().reason; }

std::string device_name(int index) {
  check_device(index);
  cudaDeviceProp prop{};
  AG_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  std::ostringstream os;
  os << prop.name << " (sm_" << prop.major << prop.minor << ", " << prop.totalGlobalMem / (1024 * 1024 * 1024)
     << " GiB, " << prop.multiProcessorCount << " SMs)";
  return os.str();
}

void synchronize(int index) {
  if (!is_available()) return;
  AG_CUDA_CHECK(cudaStreamSynchronize(stream(index)));
}

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }
void set_depthwise_via_cudnn(bool on) { g_depthwise_via_cudnn = on; }
bool depthwise_via_cudnn() { return g_depthwise_via_cudnn; }

MemoryStats memory_stats(int index) {
  if (!is_available()) return {};
  return state(index).allocator->stats();
}

void empty_cache() {
  for (int i = 0; i < device_count(); ++i) state(i).allocator->release_cache();
  if (is_available()) pinned_allocator().release_cache();
}

Tensor empty_pinned(const Shape& shape, DType dtype) {
  if (!is_available()) return Tensor::empty(shape, dtype);
  for (int64_t d : shape) AG_CHECK(d >= 0, "empty_pinned: negative dimension in shape " << shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype),
                                            Device::cpu(), pinned_allocator());
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

bool is_pinned(const Tensor& t) {
  return t.defined() && t.device().is_cpu() && is_available() &&
         t.storage()->allocator() == &pinned_allocator();
}

}  // namespace ag::cuda
