// CUDA depthwise convolution (core/cuda/depthwise.h): direct kernels, one thread per
// output element (forward) or per input element (backward-input, gathering from the
// outputs whose window covers it, so nothing is written twice), and one block per filter
// tap (c, kh, kw) for the weight gradient, reduced in double.
#include "core/cuda/depthwise.h"
#include "core/cuda/launch.cuh"

namespace ag::cuda {

namespace {

struct DwGeom {
  int64_t n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw;
  DwGeom(const Shape& x, const Shape& y, const Shape& wt, const Conv2dParams& p)
      : n(x[0]),
        c(x[1]),
        h(x[2]),
        w(x[3]),
        ho(y[2]),
        wo(y[3]),
        kh(wt[2]),
        kw(wt[3]),
        sh(p.stride_h),
        sw(p.stride_w),
        ph(p.pad_h),
        pw(p.pad_w),
        dh(p.dilation_h),
        dw(p.dilation_w) {}
};

template <typename T>
__global__ void dw_forward_kernel(T* out, const T* x, const T* w, const T* bias, DwGeom g, int64_t total) {
  AG_GRID_STRIDE(o, total) {
    const int64_t ow = o % g.wo, oh = (o / g.wo) % g.ho, plane = o / (g.wo * g.ho), ch = plane % g.c;
    const T* xp = x + plane * g.h * g.w;
    const T* wp = w + ch * g.kh * g.kw;
    T sum = bias ? bias[ch] : T(0);
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.h) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = ow * g.sw - g.pw + j * g.dw;
        if (iw >= 0 && iw < g.w) sum += xp[ih * g.w + iw] * wp[i * g.kw + j];
      }
    }
    out[o] = sum;
  }
}

template <typename T>
__global__ void dw_backward_input_kernel(T* gx, const T* gy, const T* w, DwGeom g, int64_t total) {
  AG_GRID_STRIDE(idx, total) {
    const int64_t iw = idx % g.w, ih = (idx / g.w) % g.h, plane = idx / (g.w * g.h), ch = plane % g.c;
    const T* gp = gy + plane * g.ho * g.wo;
    const T* wp = w + ch * g.kh * g.kw;
    T sum = 0;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t th = ih + g.ph - i * g.dh;  // = oh * sh
      if (th < 0 || th % g.sh != 0 || th / g.sh >= g.ho) continue;
      const int64_t oh = th / g.sh;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t tw = iw + g.pw - j * g.dw;
        if (tw < 0 || tw % g.sw != 0 || tw / g.sw >= g.wo) continue;
        sum += gp[oh * g.wo + tw / g.sw] * wp[i * g.kw + j];
      }
    }
    gx[idx] = sum;
  }
}

// One block per tap (ch, i, j): the sum over n, oh, ow of gy * the input under the tap.
template <typename T>
__global__ void dw_backward_weight_kernel(T* gw, const T* gy, const T* x, DwGeom g) {
  const int64_t taps = g.c * g.kh * g.kw, per = g.n * g.ho * g.wo;
  for (int64_t t = blockIdx.x; t < taps; t += gridDim.x) {
    const int64_t j = t % g.kw, i = (t / g.kw) % g.kh, ch = t / (g.kw * g.kh);
    double sum = 0;
    for (int64_t e = threadIdx.x; e < per; e += blockDim.x) {
      const int64_t ow = e % g.wo, oh = (e / g.wo) % g.ho, b = e / (g.wo * g.ho);
      const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
      if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
      const int64_t plane = b * g.c + ch;
      sum += static_cast<double>(gy[(plane * g.ho + oh) * g.wo + ow]) *
             static_cast<double>(x[(plane * g.h + ih) * g.w + iw]);
    }
    sum = block_reduce(sum, SumOp{});
    if (threadIdx.x == 0) gw[t] = static_cast<T>(sum);
  }
}

}  // namespace

void depthwise_forward(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                       const Conv2dParams& p) {
  const int64_t total = out.numel();
  Launch launch(out);
  const DwGeom g(x.shape(), out.shape(), w.shape(), p);
  dispatch_float(x.dtype(), "depthwise_forward", [&]<typename scalar_t>() {
    dw_forward_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        out.data<scalar_t>(), x.data<scalar_t>(), w.data<scalar_t>(),
        bias.defined() ? bias.data<scalar_t>() : nullptr, g, total);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void depthwise_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& w,
                              const Conv2dParams& p) {
  const int64_t total = grad_x.numel();
  Launch launch(grad_x);
  const DwGeom g(grad_x.shape(), grad_out.shape(), w.shape(), p);
  dispatch_float(grad_x.dtype(), "depthwise_backward_input", [&]<typename scalar_t>() {
    dw_backward_input_kernel<scalar_t><<<grid_for(total, launch), kThreads, 0, launch.stream>>>(
        grad_x.data<scalar_t>(), grad_out.data<scalar_t>(), w.data<scalar_t>(), g, total);
    AG_CUDA_CHECK_LAUNCH();
  });
}

void depthwise_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x,
                               const Conv2dParams& p) {
  Launch launch(grad_w);
  const DwGeom g(x.shape(), grad_out.shape(), grad_w.shape(), p);
  const int64_t taps = grad_w.numel();
  const auto blocks = static_cast<unsigned>(taps < 65535 ? taps : 65535);
  dispatch_float(x.dtype(), "depthwise_backward_weight", [&]<typename scalar_t>() {
    dw_backward_weight_kernel<scalar_t><<<blocks, kThreads, 0, launch.stream>>>(
        grad_w.data<scalar_t>(), grad_out.data<scalar_t>(), x.data<scalar_t>(), g);
    AG_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ag::cuda
