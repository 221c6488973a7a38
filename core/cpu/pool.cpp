// CPU max and average pooling over NCHW planes, OpenMP over the N * C planes (each
// thread owns whole planes, so the backward scatter into overlapping windows needs no
// atomics).
#include <algorithm>
#include <limits>

#include "core/cpu/strided.h"
#include "core/kernels.h"

namespace ag::cpu {

namespace {

struct PoolShape {
  int64_t planes, h, w, ho, wo;
  PoolShape(const Shape& in, const Shape& out)
      : planes(in[0] * in[1]), h(in[2]), w(in[3]), ho(out[2]), wo(out[3]) {}
};

// The window of output (oh, ow) clipped to the input: rows [h0, h1), cols [w0, w1).
struct Window {
  int64_t h0, h1, w0, w1, full;  // full: the window size counting padding
};

inline Window window(const Pool2dParams& p, const PoolShape& s, int64_t oh, int64_t ow) {
  const int64_t hs = oh * p.stride_h - p.pad_h, ws = ow * p.stride_w - p.pad_w;
  const int64_t he = std::min(hs + p.kernel_h, s.h + p.pad_h), we = std::min(ws + p.kernel_w, s.w + p.pad_w);
  const int64_t full = (he - hs) * (we - ws);
  return {std::max<int64_t>(hs, 0), std::min(he, s.h), std::max<int64_t>(ws, 0), std::min(we, s.w), full};
}

inline int64_t divisor(const Pool2dParams& p, const Window& win) {
  return p.count_include_pad ? win.full : (win.h1 - win.h0) * (win.w1 - win.w0);
}

}  // namespace

void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dParams& p) {
  const PoolShape s(x.shape(), out.shape());
  dispatch_float(x.dtype(), "max_pool2d_forward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    int64_t* pi = indices.data<int64_t>();
#pragma omp parallel for schedule(static) if (out.numel() * p.kernel_h * p.kernel_w > kParallelThreshold)
    for (int64_t pl = 0; pl < s.planes; ++pl) {
      const scalar_t* plane = px + pl * s.h * s.w;
      for (int64_t oh = 0; oh < s.ho; ++oh)
        for (int64_t ow = 0; ow < s.wo; ++ow) {
          const Window win = window(p, s, oh, ow);
          scalar_t best = -std::numeric_limits<scalar_t>::infinity();
          int64_t arg = win.h0 * s.w + win.w0;
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw)
              if (plane[ih * s.w + iw] > best) {  // strict: the first maximum wins ties
                best = plane[ih * s.w + iw];
                arg = ih * s.w + iw;
              }
          const int64_t o = (pl * s.ho + oh) * s.wo + ow;
          po[o] = best;
          pi[o] = arg;
        }
    }
  });
}

void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices,
                         const Pool2dParams& p) {
  const PoolShape s(grad_x.shape(), grad_out.shape());
  dispatch_float(grad_x.dtype(), "max_pool2d_backward", [&]<typename scalar_t>() {
    scalar_t* pgx = grad_x.data<scalar_t>();
    const scalar_t* pg = grad_out.data<scalar_t>();
    const int64_t* pi = indices.data<int64_t>();
#pragma omp parallel for schedule(static) if (grad_x.numel() > kParallelThreshold)
    for (int64_t pl = 0; pl < s.planes; ++pl) {
      scalar_t* plane = pgx + pl * s.h * s.w;
      std::fill(plane, plane + s.h * s.w, scalar_t(0));
      const int64_t base = pl * s.ho * s.wo;
      for (int64_t o = 0; o < s.ho * s.wo; ++o) plane[pi[base + o]] += pg[base + o];
    }
  });
  (void)p;
}

void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dParams& p) {
  const PoolShape s(x.shape(), out.shape());
  dispatch_float(x.dtype(), "avg_pool2d_forward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
#pragma omp parallel for schedule(static) if (out.numel() * p.kernel_h * p.kernel_w > kParallelThreshold)
    for (int64_t pl = 0; pl < s.planes; ++pl) {
      const scalar_t* plane = px + pl * s.h * s.w;
      for (int64_t oh = 0; oh < s.ho; ++oh)
        for (int64_t ow = 0; ow < s.wo; ++ow) {
          const Window win = window(p, s, oh, ow);
          scalar_t sum = 0;
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) sum += plane[ih * s.w + iw];
          const int64_t div = divisor(p, win);
          po[(pl * s.ho + oh) * s.wo + ow] = div > 0 ? sum / static_cast<scalar_t>(div) : scalar_t(0);
        }
    }
  });
}

void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dParams& p) {
  const PoolShape s(grad_x.shape(), grad_out.shape());
  dispatch_float(grad_x.dtype(), "avg_pool2d_backward", [&]<typename scalar_t>() {
    scalar_t* pgx = grad_x.data<scalar_t>();
    const scalar_t* pg = grad_out.data<scalar_t>();
#pragma omp parallel for schedule(static) if (grad_x.numel() * p.kernel_h * p.kernel_w > kParallelThreshold)
    for (int64_t pl = 0; pl < s.planes; ++pl) {
      scalar_t* plane = pgx + pl * s.h * s.w;
      std::fill(plane, plane + s.h * s.w, scalar_t(0));
      for (int64_t oh = 0; oh < s.ho; ++oh)
        for (int64_t ow = 0; ow < s.wo; ++ow) {
          const Window win = window(p, s, oh, ow);
          const int64_t div = divisor(p, win);
          if (div == 0) continue;
          const scalar_t g = pg[(pl * s.ho + oh) * s.wo + ow] / static_cast<scalar_t>(div);
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) plane[ih * s.w + iw] += g;
        }
    }
  });
}

}  // namespace ag::cpu
