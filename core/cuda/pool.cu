// CUDA max and average pooling over NCHW planes, hand-written with the CPU twin's window
// rules (core/cpu/pool.cpp): floor mode, windows clipped to the input, first maximum on
// ties, count_include_pad divisors. Forward: one thread per output element. Backward:
// one thread per input element gathering from the windows that cover it, so every
// element is written once, without atomics, and the sums run in a fixed order.
#include <limits>

#include "core/cuda/launch.cuh"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

struct PoolGeom {
  int64_t planes, h, w, ho, wo;
  int64_t kh, kw, sh, sw, ph, pw;
  bool count_include_pad;
  PoolGeom(const Shape& in, const Shape& out, const Pool2dParams& p)
      : planes(in[0] * in[1]),
        h(in[2]),
        w(in[3]),
        ho(out[2]),
        wo(out[3]),
        kh(p.kernel_h),
        kw(p.kernel_w),
        sh(p.stride_h),
        sw(p.stride_w),
        ph(p.pad_h),
        pw(p.pad_w),
        count_include_pad(p.count_include_pad) {}
};

// The window of output (oh, ow) clipped to the input: rows [h0, h1), cols [w0, w1).
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};

__device__ inline Window window(const PoolGeom& g, int64_t oh, int64_t ow) {
  const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
  const int64_t he = min(hs + g.kh, g.h + g.ph), we = min(ws + g.kw, g.w + g.pw);
  Window win{max(hs, int64_t(0)), min(he, g.h), max(ws, int64_t(0)), min(we, g.w), 0};
  win.divisor = g.count_include_pad ? (he - hs) * (we - ws) : (win.h1 - win.h0) * (win.w1 - win.w0);
  return win;
}

// Outputs whose window covers input row i: [first, last] (empty when first > last).
__device__ inline void covering(int64_t i, int64_t k, int64_t s, int64_t pad, int64_t n_out, int64_t& first,
                                int64_t& last) {
  const int64_t lo = i + pad - k + 1;  // oh * s >= lo
  first = lo <= 0 ? 0 : (lo + s - 1) / s;
  last = min((i + pad) / s, n_out - 1);
}

template <typename T>
__global__ void max_pool_forward_kernel(T* out, int64_t* indices, const T* x, PoolGeom g, int64_t total) {
  AG_GRID_STRIDE(o, total) {
    const int64_t ow = o % g.wo, oh = (o / g.wo) % g.ho, pl = o / (g.wo * g.ho);
    const T* plane = x + pl * g.h * g.w;
    const Window win = window(g, oh, ow);
    T best = -std::numeric_limits<T>::infinity();
    int64_t arg = win.h0 * g.w + win.w0;
    for (int64_t ih = win.h0; ih < win.h1; ++ih)
      for (int64_t iw = win.w0; iw < win.w1; ++iw)
        if (plane[ih * g.w + iw] > best) {  // strict: the first maximum wins ties
          best = plane[ih * g.w + iw];
          arg = ih * g.w + iw;
        }
    out[o] = best;
    indices[o] = arg;
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(T* gx, const T* g_out, const int64_t* indices, PoolGeom g,
                                         int64_t total) {
  AG_GRID_STRIDE(i, total) {
    const int64_t iw = i % g.w, ih = (i / g.w) % g.h, pl = i / (g.w * g.h);
    const int64_t here = ih * g.w + iw, base = pl * g.ho * g.wo;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.kh, g.sh, g.ph, g.ho, oh0, oh1);
    covering(iw, g.kw, g.sw, g.pw, g.wo, ow0, ow1);
    T sum = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = base + oh * g.wo + ow;
        if (indices[o] == here) sum += g_out[o];
      }
    gx[i] = sum;
  }
}

template <typename T>
__global__ void avg_pool_forward_kernel(T* out, const T* x, PoolGeom g, int64_t total) {
  AG_GRID_STRIDE(o, total) {
    const int64_t ow = o % g.wo, oh = (o / g.wo) % g.ho, pl = o / (g.wo * g.ho);
    const T* plane = x + pl * g.h * g.w;
    const Window win = window(g, oh, ow);
    T sum = 0;
    for (int64_t ih = win.h0; ih < win.h1; ++ih)
      for (int64_t iw = win.w0; iw < win.w1; ++iw) sum += plane[ih * g.w + iw];
    out[o] = win.divisor > 0 ? sum / static_cast<T>(win.divisor) : T(0);
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(T* gx, const T* g_out, PoolGeom g, int64_t total) {
  AG_GRID_STRIDE(i, total) {
    const int64_t iw = i % g.w, ih = (i / g.w) % g.h, pl = i / (g.w * g.h);
    const int64_t base = pl * g.ho * g.wo;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.kh, g.sh, g.ph, g.ho, oh0, oh1);
    covering(iw, g.kw, g.sw, g.pw, g.wo, ow0, ow1);
    T sum = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const Window win = window(g, oh, ow);
        if (win.divisor > 0) sum += g_out[base + oh * g.wo + ow] / static_cast<T>(win.divisor);
      }
    gx[i] = sum;
  }
}

}  // namespace

void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dParams& p) {
  const int64_t total = out.numel();
  if (total == 0) return;
  Launch launch(out);
  const PoolGeom g(x.shape(), out.shape(), p);
  dispatch_float(x.dtype(), "max_pool2d_forward", [&]<typename scalar_t>() {
    max_pool_forward_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), indices.data<int64_t>(), x.data<scalar_t>(), g, total);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices,
                         const Pool2dParams& p) {
  const int64_t total = grad_x.numel();
  if (total == 0) return;
  Launch launch(grad_x);
  const PoolGeom g(grad_x.shape(), grad_out.shape(), p);
  dispatch_float(grad_x.dtype(), "max_pool2d_backward", [&]<typename scalar_t>() {
    max_pool_backward_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        grad_x.data<scalar_t>(), grad_out.data<scalar_t>(), indices.data<int64_t>(), g, total);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dParams& p) {
  const int64_t total = out.numel();
  if (total == 0) return;
  Launch launch(out);
  const PoolGeom g(x.shape(), out.shape(), p);
  dispatch_float(x.dtype(), "avg_pool2d_forward", [&]<typename scalar_t>() {
    avg_pool_forward_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), x.data<scalar_t>(), g, total);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dParams& p) {
  const int64_t total = grad_x.numel();
  if (total == 0) return;
  Launch launch(grad_x);
  const PoolGeom g(grad_x.shape(), grad_out.shape(), p);
  dispatch_float(grad_x.dtype(), "avg_pool2d_backward", [&]<typename scalar_t>() {
    avg_pool_backward_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        grad_x.data<scalar_t>(), grad_out.data<scalar_t>(), g, total);
    AG_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ag::cuda
