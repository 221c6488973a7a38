#include "core/storage.h"

#include <cstdlib>
#include <new>

namespace ag {

namespace {
// 64-byte alignment: a cache line, and enough for any AVX-512 load.
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    AG_CHECK(p != nullptr, "out of host memory: could not allocate " << bytes << " bytes");
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
};
}  // namespace

// Never destroyed, on purpose: tensors held in static objects (caches, globals
// of a test program) are freed during exit, possibly after a function-local
// static allocator would already be gone.
Allocator& cpu_allocator() {
  static CpuAllocator* instance = new CpuAllocator();
  return *instance;
}

#ifdef AG_WITH_CUDA
namespace cuda {
Allocator& device_allocator(int index);
}
#endif

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
#ifdef AG_WITH_CUDA
  return cuda::device_allocator(device.index);
#else
  AG_FAIL("device " << device << " requested, but arcgrad was built without CUDA");
#endif
}

Storage::Storage(size_t bytes, Device device)
    : bytes_(bytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(bytes);
}

Storage::Storage(size_t bytes, Device device, Allocator& allocator)
    : bytes_(bytes), device_(device), allocator_(&allocator) {
  data_ = allocator_->allocate(bytes);
}

Storage::~Storage() { allocator_->deallocate(data_, bytes_); }

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    std::string index = text.substr(5);
    AG_CHECK(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos,
             "invalid device '" << text << "': expected cpu, cuda or cuda:N");
    return cuda(std::stoi(index));
  }
  AG_FAIL("invalid device '" << text << "': expected cpu, cuda or cuda:N");
}

}  // namespace ag
