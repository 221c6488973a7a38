// The one device-dispatch rule of the kernel API, shared by core/kernels*.cpp (and only
// them): every tensor of a call must live on the output's device, and the call goes to the
// CUDA twin for a CUDA output, else to the CPU twin. A CPU-only build answers a CUDA tensor
// with a clear "built without CUDA" error instead of a link error or a crash.
#pragma once

#include <initializer_list>

#include "core/kernels.h"

namespace ag::dispatch {

// Optional inputs (bias, gamma, unneeded gradients) may be undefined where the kernel
// allows it; `optional_allowed` says whether this call does.
inline void check_devices(const char* name, const Tensor& out, std::initializer_list<const Tensor*> inputs,
                          bool optional_allowed) {
  for (const Tensor* t : inputs) {
    if (optional_allowed && !t->defined()) continue;
    AG_CHECK(t->defined(), name << ": an input tensor is undefined");
    AG_CHECK(t->device() == out.device(), name << ": tensors on different devices: output on " << out.device()
                                               << ", an input on " << t->device());
  }
}

}  // namespace ag::dispatch

#ifdef AG_WITH_CUDA
#define AG_DISPATCH_(name, out, call, optional_allowed, ...)                 \
  ::ag::dispatch::check_devices(name, out, {__VA_ARGS__}, optional_allowed); \
  if ((out).device().is_cuda()) return cuda::call;                           \
  return cpu::call
#else
#define AG_DISPATCH_(name, out, call, optional_allowed, ...)                                   \
  ::ag::dispatch::check_devices(name, out, {__VA_ARGS__}, optional_allowed);                   \
  AG_CHECK((out).device().is_cpu(),                                                            \
           name << ": a " << (out).device() << " tensor, but arcgrad was built without CUDA"); \
  return cpu::call
#endif

// Every input named after `call` must be defined.
#define AG_ON_DEVICE(name, out, call, ...) AG_DISPATCH_(name, out, call, false, __VA_ARGS__)
// Undefined inputs are skipped (optional tensors of the layer kernels).
#define AG_ON_DEVICE_OPTIONAL(name, out, call, ...) AG_DISPATCH_(name, out, call, true, __VA_ARGS__)
