// Device-side building blocks of the hand-written kernels (internal to core/cuda/):
// grid-stride launch sizing, strided indexing, and per-row reductions that run on one
// thread, one warp or one block, so each row-wise kernel ([outer, n, inner] viewed as rows
// of n elements with stride inner) is written once and launched in whichever shape suits
// its sizes.
#pragma once

#include <cstdint>

#include "core/cuda/cuda_common.h"

namespace ag::cuda {

constexpr int kThreads = 256;  // threads per block everywhere
constexpr int kWarp = 32;
constexpr int kMaxDims = 8;  // strided kernels handle up to this many dims

// Grid-stride loop over [0, n).
#define AG_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Blocks for `work` independent items of `per_block` each: enough to fill every SM
// (8 resident blocks of 256 threads each) and no more; grid-stride loops do the rest.
inline unsigned grid_for(int64_t work, const Launch& launch, int64_t per_block = kThreads) {
  const int64_t needed = (work + per_block - 1) / per_block;
  const int64_t cap = static_cast<int64_t>(launch.sms) * 8;
  return static_cast<unsigned>(needed < 1 ? 1 : (needed < cap ? needed : cap));
}

// Element offsets of a strided view from a row-major linear index.
struct StridedIndex {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};

  __host__ __device__ int64_t offset(int64_t i) const {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; --d) {
      off += (i % shape[d]) * stride[d];
      i /= shape[d];
    }
    return off;
  }
};

// Host: the descriptor of (shape, strides), with size-1 dims dropped and contiguous runs
// merged so that the per-element index arithmetic stays short.
StridedIndex make_strided_index(const Shape& shape, const Shape& strides, const char* op);

// ------------------------------------------------------------------ warp / block reductions
template <typename T>
struct ArgMax {
  T value;
  int64_t index;
};

__device__ inline double shfl_xor(double v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }
__device__ inline float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }
__device__ inline int64_t shfl_xor(int64_t v, int mask) {
  return static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v), mask));
}
template <typename T>
__device__ ArgMax<T> shfl_xor(ArgMax<T> v, int mask) {
  return {shfl_xor(v.value, mask), shfl_xor(v.index, mask)};
}

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
// Ignores NaN like the CPU loops (x > m ? x : m).
struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return b > a ? b : a;
  }
};
// The larger value; the smaller index on ties (the first maximum, as on the CPU).
struct ArgMaxOp {
  template <typename T>
  __device__ ArgMax<T> operator()(ArgMax<T> a, ArgMax<T> b) const {
    if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
    return a;
  }
};

template <typename T, typename Op>
__device__ T warp_reduce(T v, Op op) {
  for (int mask = kWarp / 2; mask > 0; mask /= 2) v = op(v, shfl_xor(v, mask));
  return v;
}

// Every thread of the block gets the result. Ends with a barrier so the shared buffer
// can be reused by the next call.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op) {
  __shared__ alignas(16) unsigned char raw[kThreads / kWarp * 16];
  T* partial = reinterpret_cast<T*>(raw);
  v = warp_reduce(v, op);
  const int warp = threadIdx.x / kWarp, warps = (blockDim.x + kWarp - 1) / kWarp;
  if (threadIdx.x % kWarp == 0) partial[warp] = v;
  __syncthreads();
  T total = partial[0];
  for (int w = 1; w < warps; ++w) total = op(total, partial[w]);  // same order in every thread
  __syncthreads();
  return total;
}

// A group of threads that together own one row: its lanes stride over the row's
// elements and reduce() combines their partial results.
struct ThreadGroup {  // one thread per row: for many rows whose neighbours are adjacent in memory
  __device__ static int64_t first_row() {
    return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  }
  __device__ static int64_t row_step() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }
  __device__ static int lane() { return 0; }
  __device__ static int size() { return 1; }
  template <typename T, typename Op>
  __device__ static T reduce(T v, Op) {
    return v;
  }
};
struct WarpGroup {  // one warp per row: short rows
  __device__ static int64_t first_row() {
    return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  }
  __device__ static int64_t row_step() { return static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp; }
  __device__ static int lane() { return threadIdx.x % kWarp; }
  __device__ static int size() { return kWarp; }
  template <typename T, typename Op>
  __device__ static T reduce(T v, Op op) {
    return warp_reduce(v, op);
  }
};
struct BlockGroup {  // one block per row: long rows
  __device__ static int64_t first_row() { return blockIdx.x; }
  __device__ static int64_t row_step() { return gridDim.x; }
  __device__ static int lane() { return threadIdx.x; }
  __device__ static int size() { return blockDim.x; }
  template <typename T, typename Op>
  __device__ static T reduce(T v, Op op) {
    return block_reduce(v, op);
  }
};

// Runs op.template operator()<Group>(row) for every row in [0, rows). The loop bound is
// uniform across each group, so the group's reductions never diverge.
template <typename Group, typename RowOp>
__global__ void rows_kernel(int64_t rows, RowOp op) {
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_step()) op.template operator()<Group>(r);
}

// Launches rows_kernel with the group shape that suits rows of n elements spaced `inner`
// apart: a thread per row when there are many rows with adjacent neighbours (coalesced),
// a block per long row, a warp per short one.
template <typename RowOp>
void launch_rows(const Launch& launch, int64_t rows, int64_t n, int64_t inner, const RowOp& op) {
  if (rows <= 0) return;
  if (inner > 1 && rows >= 4096) {
    rows_kernel<ThreadGroup><<<grid_for(rows, launch), kThreads, 0, launch.stream>>>(rows, op);
  } else if (n >= 1024) {
    rows_kernel<BlockGroup><<<grid_for(rows, launch, 1), kThreads, 0, launch.stream>>>(rows, op);
  } else {
    rows_kernel<WarpGroup>
        <<<grid_for(rows, launch, kThreads / kWarp), kThreads, 0, launch.stream>>>(rows, op);
  }
  AG_CUDA_CHECK_LAUNCH();
}

// The first index (in row-major order) outside [0, n), found on the device; position is
// -1 when every index is in range. Waits for the stream (the host needs the answer).
struct BadIndex {
  int64_t position = -1;
  int64_t value = 0;
};
BadIndex find_bad_index(const Launch& launch, const Tensor& index, int64_t n);

// Row r of x viewed as [outer, n, inner]: its first element; elements are `inner` apart.
__host__ __device__ inline int64_t row_base(int64_t r, int64_t n, int64_t inner) {
  return (r / inner) * n * inner + r % inner;
}

}  // namespace ag::cuda
