// Status checks for the CUDA runtime, cuBLAS and cuDNN: each failure throws ag::Error with
// the file:line of the call, the call itself and the library's own description of the
// status, so a failed launch or library call is never silently ignored.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "core/error.h"

#define AG_CUDA_CHECK(expr)                                                                            \
  do {                                                                                                 \
    const cudaError_t ag_cuda_status_ = (expr);                                                        \
    if (ag_cuda_status_ != cudaSuccess)                                                                \
      ::ag::detail::throw_error(__FILE__, __LINE__,                                                    \
                                std::string(#expr) + " failed: " + cudaGetErrorName(ag_cuda_status_) + \
                                    " (" + cudaGetErrorString(ag_cuda_status_) + ")");                 \
  } while (0)

#define AG_CUBLAS_CHECK(expr)                                                                               \
  do {                                                                                                      \
    const cublasStatus_t ag_cublas_status_ = (expr);                                                        \
    if (ag_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                         \
      ::ag::detail::throw_error(__FILE__, __LINE__,                                                         \
                                std::string(#expr) + " failed: " + cublasGetStatusName(ag_cublas_status_) + \
                                    " (" + cublasGetStatusString(ag_cublas_status_) + ")");                 \
  } while (0)

#define AG_CUDNN_CHECK(expr)                                                                               \
  do {                                                                                                     \
    const cudnnStatus_t ag_cudnn_status_ = (expr);                                                         \
    if (ag_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                                          \
      ::ag::detail::throw_error(__FILE__, __LINE__,                                                        \
                                std::string(#expr) + " failed: " + cudnnGetErrorString(ag_cudnn_status_)); \
  } while (0)

// After every kernel launch: launch-configuration errors surface here, at the launch,
// rather than at some later unrelated call.
#define AG_CUDA_CHECK_LAUNCH() AG_CUDA_CHECK(cudaGetLastError())
