// Storage: a reference-counted block of memory on one device, obtained from that device's
// allocator. Tensors are views over a Storage (offset, shape, strides).
#pragma once

#include <cstddef>
#include <memory>

#include "core/dtype.h"

namespace ag {

// A per-device source of memory. Both the CPU one (core/host_allocator.h) and the CUDA one
// cache freed large blocks by size, so steady-state training does not go back to the
// system for memory every step.
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
};

Allocator& cpu_allocator();
// The allocator of a device; for CUDA this throws a clear error in a CPU-only build.
Allocator& allocator_for(Device device);

class Storage {
 public:
  Storage(size_t bytes, Device device);
  // Memory from a specific allocator (e.g. pinned host memory for a CPU tensor).
  Storage(size_t bytes, Device device, Allocator& allocator);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  const Allocator* allocator() const { return allocator_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
};

}  // namespace ag
