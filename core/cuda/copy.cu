// CUDA fills and copies: fill and dtype-converting strided copy on one device, and the
// host <-> device / device <-> device transfers behind Tensor::to(Device) and copy_().
#include "core/cuda/launch.cuh"
#include "core/cuda_api.h"
#include "core/kernels.h"

namespace ag::cuda {

StridedIndex make_strided_index(const Shape& shape, const Shape& strides, const char* op) {
  StridedIndex ix;
  int64_t merged_shape[64], merged_stride[64];
  int nd = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (nd > 0 && merged_stride[nd - 1] == strides[d] * shape[d]) {  // outer dim steps over this one
      merged_shape[nd - 1] *= shape[d];
      merged_stride[nd - 1] = strides[d];
      continue;
    }
    merged_shape[nd] = shape[d];
    merged_stride[nd] = strides[d];
    ++nd;
  }
  AG_CHECK(nd <= kMaxDims, op << ": a view with " << nd << " non-mergeable dims (shape " << shape_str(shape)
                              << "); at most " << kMaxDims << " are supported");
  ix.nd = nd;
  for (int d = 0; d < nd; ++d) {
    ix.shape[d] = merged_shape[d];
    ix.stride[d] = merged_stride[d];
  }
  return ix;
}

namespace {

template <typename T>
__global__ void fill_kernel(T* out, T value, int64_t n, StridedIndex ix) {
  AG_GRID_STRIDE(i, n) out[ix.offset(i)] = value;
}

template <typename T>
__global__ void fill_contiguous_kernel(T* out, T value, int64_t n) {
  AG_GRID_STRIDE(i, n) out[i] = value;
}

// dst and src walk the same shape in row-major order, each with its own strides.
template <typename D, typename S>
__global__ void copy_kernel(D* dst, StridedIndex dst_ix, const S* src, StridedIndex src_ix, int64_t n) {
  AG_GRID_STRIDE(i, n) dst[dst_ix.offset(i)] = static_cast<D>(src[src_ix.offset(i)]);
}

}  // namespace

void fill(Tensor& out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  dispatch_all(out.dtype(), "fill", [&]<typename scalar_t>() {
    const auto v = static_cast<scalar_t>(value);
    if (out.is_contiguous()) {
      fill_contiguous_kernel<scalar_t>
          <<<grid_for(n, launch), kThreads, 0, launch.stream>>>(out.data<scalar_t>(), v, n);
    } else {
      fill_kernel<scalar_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
          out.data<scalar_t>(), v, n, make_strided_index(out.shape(), out.strides(), "fill"));
    }
  });
  AG_CUDA_CHECK_LAUNCH();
}

void copy(Tensor& out, const Tensor& src) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Launch launch(out);
  if (out.dtype() == src.dtype() && out.is_contiguous() && src.is_contiguous()) {
    AG_CUDA_CHECK(cudaMemcpyAsync(out.raw_data(), src.raw_data(), out.nbytes(), cudaMemcpyDeviceToDevice,
                                  launch.stream));
    return;
  }
  // Both views are walked with the destination's shape (equal by contract); only the
  // strides differ. Merging is per tensor, so each side keeps its own dims.
  const StridedIndex dst_ix = make_strided_index(out.shape(), out.strides(), "copy");
  const StridedIndex src_ix = make_strided_index(src.shape(), src.strides(), "copy");
  dispatch_all(out.dtype(), "copy", [&]<typename out_t>() {
    dispatch_all(src.dtype(), "copy", [&]<typename src_t>() {
      copy_kernel<out_t, src_t><<<grid_for(n, launch), kThreads, 0, launch.stream>>>(
          out.data<out_t>(), dst_ix, src.data<src_t>(), src_ix, n);
    });
  });
  AG_CUDA_CHECK_LAUNCH();
}

// Host reads right after a device-to-host copy, so that direction waits for the stream. A
// copy from pinned memory is asynchronous to the host, so it waits too (the loader may
// refill the buffer at once); from pageable memory the runtime stages the bytes before
// returning, so no wait is needed.
void copy_between_devices(Tensor& out, const Tensor& src) {
  const size_t bytes = out.nbytes();
  if (bytes == 0) return;
  if (out.device().is_cuda() && src.device().is_cpu()) {
    Launch launch(out);
    AG_CUDA_CHECK(
        cudaMemcpyAsync(out.raw_data(), src.raw_data(), bytes, cudaMemcpyHostToDevice, launch.stream));
    if (is_pinned(src)) AG_CUDA_CHECK(cudaStreamSynchronize(launch.stream));
  } else if (out.device().is_cpu() && src.device().is_cuda()) {
    Launch launch(src);
    AG_CUDA_CHECK(
        cudaMemcpyAsync(out.raw_data(), src.raw_data(), bytes, cudaMemcpyDeviceToHost, launch.stream));
    AG_CUDA_CHECK(cudaStreamSynchronize(launch.stream));
  } else if (out.device() == src.device()) {
    Launch launch(out);
    AG_CUDA_CHECK(
        cudaMemcpyAsync(out.raw_data(), src.raw_data(), bytes, cudaMemcpyDeviceToDevice, launch.stream));
  } else {
    // Between two GPUs: finish the source's queued writes, then copy on the destination's stream.
    synchronize(src.device().index);
    Launch launch(out);
    AG_CUDA_CHECK(cudaMemcpyPeerAsync(out.raw_data(), out.device().index, src.raw_data(), src.device().index,
                                      bytes, launch.stream));
    // The copy reads src's block from another device's stream: the source's stream and
    // allocator know nothing of it, so src could be overwritten or its freed block reused
    // there while the copy still reads. Wait for it.
    AG_CUDA_CHECK(cudaStreamSynchronize(launch.stream));
  }
}

}  // namespace ag::cuda
