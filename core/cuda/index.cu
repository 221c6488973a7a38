// CUDA gather / scatter-add along a dim and one-hot encoding. Twins of core/cpu/index.cpp,
// including the bounds check: a first kernel finds the first out-of-range index, and the
// host reads that one position back (a small synchronising copy) to raise the same error
// the CPU raises, naming the index and its position.
#include <limits>

#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

constexpr unsigned long long kNoBadIndex = std::numeric_limits<unsigned long long>::max();

__global__ void find_bad_index_kernel(unsigned long long* first_bad, const int64_t* idx, int64_t count,
                                      int64_t n) {
  AG_GRID_STRIDE(i, count) {
    if (idx[i] < 0 || idx[i] >= n) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

}  // namespace

BadIndex find_bad_index(const Launch& launch, const Tensor& index, int64_t n) {
  BadIndex result;
  const int64_t count = index.numel();
  if (count == 0) return result;
  Tensor flag = Tensor::empty({1}, DType::i64, index.device());
  auto* first_bad = static_cast<unsigned long long*>(flag.raw_data());
  AG_CUDA_CHECK(
      cudaMemsetAsync(first_bad, 0xff, sizeof(*first_bad), launch.stream));  // all ones: kNoBadIndex
  find_bad_index_kernel<<<grid_for(count, launch), kThreads, 0, launch.stream>>>(
      first_bad, index.data<int64_t>(), count, n);
  AG_CUDA_CHECK_LAUNCH();
  unsigned long long bad = kNoBadIndex;
  AG_CUDA_CHECK(cudaMemcpyAsync(&bad, first_bad, sizeof(bad), cudaMemcpyDeviceToHost, launch.stream));
  AG_CUDA_CHECK(cudaStreamSynchronize(launch.stream));
  if (bad == kNoBadIndex) return result;
  result.position = static_cast<int64_t>(bad);
  AG_CUDA_CHECK(cudaMemcpyAsync(&result.value, index.data<int64_t>() + bad, sizeof(result.value),
                                cudaMemcpyDeviceToHost, launch.stream));
  AG_CUDA_CHECK(cudaStreamSynchronize(launch.stream));
  return result;
}

namespace {

// Throws, as the CPU does, when any of the indices lies outside [0, n).
void check_indices(const Launch& launch, const Tensor& index, int64_t n, const char* op, const char* what) {
  const BadIndex bad = find_bad_index(launch, index, n);
  AG_CHECK(bad.position < 0, op << ": " << what << " " << bad.value << " at position " << bad.position
                                << " is outside [0, " << n << ")");
}

template <typename T>
__global__ void gather_kernel(T* out, const T* x, const int64_t* index, int64_t n, int64_t k, int64_t inner,
                              int64_t total) {
  AG_GRID_STRIDE(at, total) {
    const int64_t i = at % inner, o = at / (k * inner);
    out[at] = x[(o * n + index[at]) * inner + i];
  }
}

template <typename T>
__global__ void zero_kernel(T* out, int64_t total) {
  AG_GRID_STRIDE(i, total) out[i] = T(0);
}

// Repeated indices add into one element, so the adds are atomic (their order, and so the
// last bits of a float sum, may vary between runs).
template <typename T>
__global__ void scatter_add_kernel(T* grad_x, const T* grad, const int64_t* index, int64_t n, int64_t k,
                                   int64_t inner, int64_t total) {
  AG_GRID_STRIDE(at, total) {
    const int64_t i = at % inner, o = at / (k * inner);
    atomicAdd(grad_x + (o * n + index[at]) * inner + i, grad[at]);
  }
}

template <typename T>
__global__ void one_hot_kernel(T* out, const int64_t* labels, int64_t classes, int64_t total) {
  AG_GRID_STRIDE(at, total) out[at] = labels[at / classes] == at % classes ? T(1) : T(0);
}

}  // namespace

void gather_dim(Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n, int64_t k,
                int64_t inner) {
  Launch launch(out);
  check_indices(launch, index, n, "gather", "index");
  const int64_t total = outer * k * inner;
  if (total == 0) return;
  dispatch_float(x.dtype(), "gather", [&]<typename scalar_t>() {
    gather_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), x.data<scalar_t>(), index.data<int64_t>(), n, k, inner, total);
  });
  AG_CUDA_CHECK_LAUNCH();
}

void scatter_add_dim(Tensor& grad_x, const Tensor& grad, const Tensor& index, int64_t outer, int64_t n,
                     int64_t k, int64_t inner) {
  Launch launch(grad_x);
  check_indices(launch, index, n, "scatter_add", "index");
  dispatch_float(grad.dtype(), "scatter_add", [&]<typename scalar_t>() {
    const int64_t size = grad_x.numel(), total = outer * k * inner;
    if (size > 0) {
      zero_kernel<scalar_t>
          <<<grid_for(size, launch), kThreads, 0, launch.stream>>>(grad_x.data<scalar_t>(), size);
      AG_CUDA_CHECK_LAUNCH();
    }
    if (total > 0) {
      scatter_add_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
          grad_x.data<scalar_t>(), grad.data<scalar_t>(), index.data<int64_t>(), n, k, inner, total);
      AG_CUDA_CHECK_LAUNCH();
    }
  });
}

void one_hot(Tensor& out, const Tensor& labels, int64_t classes) {
  Launch launch(out);
  check_indices(launch, labels, classes, "one_hot", "label");
  const int64_t total = labels.numel() * classes;
  if (total == 0) return;
  dispatch_float(out.dtype(), "one_hot", [&]<typename scalar_t>() {
    one_hot_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), labels.data<int64_t>(), classes, total);
  });
  AG_CUDA_CHECK_LAUNCH();
}

}  // namespace ag::cuda
