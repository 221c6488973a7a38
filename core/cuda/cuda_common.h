// Host-side plumbing shared by the CUDA kernels (internal to core/cuda/): the one stream
// per device, the library handles bound to it, and the device guard every kernel opens
// on its output's device.
#pragma once

#include "core/cuda/cuda_check.h"
#include "core/tensor.h"

namespace ag::cuda {

// The device's one stream (created on first use). Every arcgrad kernel, copy and library
// call on that device is queued on it, so they run in issue order.
cudaStream_t stream(int device);
// A cuBLAS handle for the device, bound to stream(device). Math mode is set by the caller.
cublasHandle_t cublas_handle(int device);
// A cuDNN handle for the device, bound to stream(device).
cudnnHandle_t cudnn_handle(int device);
// Multiprocessor count, for sizing grid-stride launches.
int sm_count(int device);

// Makes a device current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Everything a kernel wrapper needs: its output's device made current, and that device's
// stream and multiprocessor count.
struct Launch {
  explicit Launch(const Tensor& out);
  DeviceGuard guard;
  int device;
  cudaStream_t stream;
  int sms;
};

}  // namespace ag::cuda
