// What a program may ask about the CUDA backend, in any build. A CPU-only build (or a
// CUDA build on a machine without a usable GPU) answers "no device": device_count() is 0,
// is_available() is false and unavailable_reason() says why. Tests and apps use this to
// skip GPU work with a printed reason instead of failing.
//
// Execution model: each device has one stream that every arcgrad kernel, copy and cuBLAS /
// cuDNN call on that device uses, so work on a device runs in issue order and freed device
// blocks can be reused at once. Host reads (item(), to_vector(), to(Device::cpu())) wait for
// that stream; nothing else synchronises.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace ag::cuda {

// Number of usable CUDA devices; 0 on any error (no driver, driver too old, no GPU) and
// in a CPU-only build. Never throws.
int device_count();
bool is_available();  // device_count() > 0
// Why is_available() is false ("arcgrad was built without CUDA", the runtime's error, ...);
// empty when a device is available.
std::string unavailable_reason();
// "NVIDIA H200 (sm_90, 139 GiB)"; throws when the device does not exist.
std::string device_name(int index = 0);

// Waits until all work queued on the device's stream has finished (for timing). A no-op
// when no device is available.
void synchronize(int index = 0);

// TensorFloat-32 for float32 GEMMs (cuBLAS tensor-op math: ~10-bit mantissa products).
// Off by default so float32 results match the CPU to float32 precision; turn it on for
// speed when that precision is enough (e.g. training).
void set_allow_tf32(bool allow);
bool allow_tf32();

// Plain depthwise convolutions (groups == channels, one filter per channel) run on
// arcgrad's hand-written kernels (core/cuda/depthwise.cu) because they beat cuDNN's grouped
// convolution on these shapes; bench_gpu's "depthwise" rows measure both side by side to
// show it. true routes them to cuDNN instead (for that comparison, or as a fallback).
void set_depthwise_via_cudnn(bool on);
bool depthwise_via_cudnn();

// Counters of a device's caching allocator.
struct MemoryStats {
  size_t allocated_bytes = 0;       // held by live tensors (rounded block sizes)
  size_t peak_allocated_bytes = 0;  // high-water mark of allocated_bytes
  size_t cached_bytes = 0;          // freed blocks kept for reuse
  int64_t device_mallocs = 0;       // cudaMalloc calls so far (flat in steady state)
  int64_t cache_hits = 0;           // allocations served from the cache
};
MemoryStats memory_stats(int index = 0);
// Returns every cached (unused) block of every device to the driver.
void empty_cache();

// A CPU tensor in page-locked (pinned) host memory, for loader batches: host-to-device
// copies from it run at full DMA speed. Pinned blocks are cached by size like device blocks.
// A copy from a pinned tensor to the device completes before to()/copy_() return, so the
// buffer may be refilled at once. Without a device this is ordinary host memory.
Tensor empty_pinned(const Shape& shape, DType dtype = DType::f32);
// Whether t's storage is page-locked host memory from empty_pinned().
bool is_pinned(const Tensor& t);

}  // namespace ag::cuda
