// CPU softmax / log-softmax and L2 normalisation over the middle dim of [outer, n, inner].
#include <cmath>

#include "core/cpu/strided.h"
#include "core/kernels.h"

namespace ag::cpu {

void softmax_forward(Tensor& y, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) {
  dispatch_float(x.dtype(), "softmax_forward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
#pragma omp parallel for collapse(2) if (outer * n * inner > kParallelThreshold) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const scalar_t* src = px + o * n * inner + i;
        scalar_t* dst = py + o * n * inner + i;
        scalar_t m = src[0];
        for (int64_t j = 1; j < n; ++j) m = src[j * inner] > m ? src[j * inner] : m;
        double total = 0;  // subtracting the max keeps every exp() <= 1: no overflow
        for (int64_t j = 0; j < n; ++j) total += std::exp(static_cast<double>(src[j * inner] - m));
        if (log) {
          const scalar_t log_total = static_cast<scalar_t>(std::log(total));
          for (int64_t j = 0; j < n; ++j) dst[j * inner] = src[j * inner] - m - log_total;
        } else {
          const double inv = 1.0 / total;
          for (int64_t j = 0; j < n; ++j)
            dst[j * inner] = static_cast<scalar_t>(std::exp(static_cast<double>(src[j * inner] - m)) * inv);
        }
      }
    }
  });
}

void softmax_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& y, int64_t outer, int64_t n,
                      int64_t inner, bool log) {
  dispatch_float(y.dtype(), "softmax_backward", [&]<typename scalar_t>() {
    const scalar_t* pg = grad_y.data<scalar_t>();
    const scalar_t* py = y.data<scalar_t>();
    scalar_t* pgx = grad_x.data<scalar_t>();
#pragma omp parallel for collapse(2) if (outer * n * inner > kParallelThreshold) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * n * inner + i;
        double dot = 0;
        if (log) {  // dx = g - softmax * sum(g)
          for (int64_t j = 0; j < n; ++j) dot += pg[base + j * inner];
          for (int64_t j = 0; j < n; ++j) {
            const int64_t k = base + j * inner;
            pgx[k] = static_cast<scalar_t>(pg[k] - std::exp(static_cast<double>(py[k])) * dot);
          }
        } else {  // dx = y * (g - sum(g * y))
          for (int64_t j = 0; j < n; ++j)
            dot += static_cast<double>(pg[base + j * inner]) * py[base + j * inner];
          for (int64_t j = 0; j < n; ++j) {
            const int64_t k = base + j * inner;
            pgx[k] = static_cast<scalar_t>(py[k] * (pg[k] - dot));
          }
        }
      }
    }
  });
}

void l2_normalize_forward(Tensor& y, Tensor& norm, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                          double eps) {
  dispatch_float(x.dtype(), "l2_normalize_forward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    scalar_t* pn = norm.data<scalar_t>();
#pragma omp parallel for collapse(2) if (outer * n * inner > kParallelThreshold) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * n * inner + i;
        double ss = 0;
        for (int64_t j = 0; j < n; ++j)
          ss += static_cast<double>(px[base + j * inner]) * px[base + j * inner];
        const double d = std::max(std::sqrt(ss), eps);
        pn[o * inner + i] = static_cast<scalar_t>(d);
        for (int64_t j = 0; j < n; ++j)
          py[base + j * inner] = static_cast<scalar_t>(px[base + j * inner] / d);
      }
    }
  });
}

void l2_normalize_backward(Tensor& grad_x, const Tensor& grad_y, const Tensor& x, const Tensor& norm,
                           int64_t outer, int64_t n, int64_t inner, double eps) {
  dispatch_float(x.dtype(), "l2_normalize_backward", [&]<typename scalar_t>() {
    const scalar_t* px = x.data<scalar_t>();
    const scalar_t* pg = grad_y.data<scalar_t>();
    const scalar_t* pn = norm.data<scalar_t>();
    scalar_t* pgx = grad_x.data<scalar_t>();
    // The forward stored max(|x|, eps) rounded to scalar_t: a clamped float32 norm reads
    // float(eps), which is above the double eps.
    const double clamped = static_cast<scalar_t>(eps);
#pragma omp parallel for collapse(2) if (outer * n * inner > kParallelThreshold) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * n * inner + i;
        const double d = pn[o * inner + i];
        if (d <= clamped) {  // the norm was clamped: y = x / eps is linear in x
          for (int64_t j = 0; j < n; ++j)
            pgx[base + j * inner] = static_cast<scalar_t>(pg[base + j * inner] / eps);
          continue;
        }
        // y = x/|x|: dx = (g - y (y.g)) / |x|
        double dot = 0;
        for (int64_t j = 0; j < n; ++j)
          dot += static_cast<double>(pg[base + j * inner]) * px[base + j * inner];
        dot /= d;
        for (int64_t j = 0; j < n; ++j) {
          const int64_t k = base + j * inner;
          pgx[k] = static_cast<scalar_t>((pg[k] - (px[k] / d) * dot) / d);
        }
      }
    }
  });
}

}  // namespace ag::cpu
