#include "core/storage.h"

#include "core/profiler.h"
namespace ag {

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
  profiler::Scope profile("allocate", profiler::Scope::HostOnly{});
  data_ = allocator_->allocate(bytes);
}

Storage::Storage(size_t bytes, Device device, Allocator& allocator)
    : bytes_(bytes), device_(device), allocator_(&allocator) {
  profiler::Scope profile("allocate", profiler::Scope::HostOnly{});
  data_ = allocator_->allocate(bytes);
}

Storage::~Storage() {
  profiler::Scope profile("free", profiler::Scope::HostOnly{});
  allocator_->deallocate(data_, bytes_);
}

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
