// CPU-vs-CUDA parity of the convolution kernels (core/cuda/conv.cpp on cuDNN, the
// hand-written depthwise kernels of core/cuda/depthwise.cu): forward, input, weight and
// bias gradients, float32 and float64, random inputs and poisoned outputs; the plan cache;
// and float64 gradchecks of conv2d running on the GPU (leaves stay on the CPU, as in
// test_cuda_grad.cpp). Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "gradcheck.h"
#include "core/ops.h"

using namespace ag;
using namespace ag::testing;

namespace {

struct ConvCase {
  int64_t n, c_in, h, w, c_out, k;
  Conv2dParams p;
  bool bias;
};

std::string describe(const ConvCase& c, DType dt) {
  return "conv2d cin=" + std::to_string(c.c_in) + " cout=" + std::to_string(c.c_out) +
         " k=" + std::to_string(c.k) + " stride=" + std::to_string(c.p.stride_h) +
         " pad=" + std::to_string(c.p.pad_h) + " dil=" + std::to_string(c.p.dilation_h) +
         " groups=" + std::to_string(c.p.groups) + " " + dtype_name(dt);
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases;
  cases.push_back({2, 4, 9, 7, 6, 3, {1, 1, 1, 1, 1, 1, 1}, true});     // 3x3 same padding
  cases.push_back({3, 5, 11, 10, 4, 3, {2, 2, 0, 0, 2, 2, 1}, false});  // stride 2, dilation 2
  cases.push_back({2, 6, 8, 8, 4, 1, {1, 1, 0, 0, 1, 1, 1}, true});     // pointwise
  cases.push_back({2, 4, 7, 9, 6, 3, {2, 1, 1, 0, 1, 1, 2}, true});     // groups 2, unequal strides
  cases.push_back({2, 8, 10, 10, 8, 3, {1, 1, 1, 1, 1, 1, 8}, false});  // depthwise
  cases.push_back({1, 4, 9, 9, 8, 5, {2, 2, 2, 2, 1, 1, 4}, true});     // depthwise x2, 5x5 stride 2
  // Plain depthwise (core/cuda/depthwise.cu rather than cuDNN): stride 2, then dilation with
  // unequal strides and padding.
  cases.push_back({2, 6, 9, 8, 6, 3, {2, 2, 1, 1, 1, 1, 6}, true});
  cases.push_back({1, 5, 11, 9, 5, 5, {1, 2, 2, 3, 2, 1, 5}, false});
  return cases;
}

// Routes plain depthwise filters to cuDNN for one scope; the default is restored even when
// a check fails.
struct DepthwiseViaCudnn {
  explicit DepthwiseViaCudnn(bool on) { cuda::set_depthwise_via_cudnn(on); }
  ~DepthwiseViaCudnn() { cuda::set_depthwise_via_cudnn(false); }
};

}  // namespace

TEST_CASE("cuda parity: conv2d forward, backward input, weight and bias") {
  AG_SKIP_WITHOUT_GPU();
  // Plain depthwise filters run on the hand-written kernels, and once more through cuDNN's
  // grouped convolution (the path bench_gpu compares them with): both must match the CPU.
  for (bool via_cudnn : {false, true})
    for (DType dt : float_dtypes())
      for (const ConvCase& c : conv_cases()) {
        const DepthwiseViaCudnn route(via_cudnn);
        const int64_t ho = conv_out_size(c.h, c.k, c.p.stride_h, c.p.pad_h, c.p.dilation_h);
        const int64_t wo = conv_out_size(c.w, c.k, c.p.stride_w, c.p.pad_w, c.p.dilation_w);
        const Shape xs = {c.n, c.c_in, c.h, c.w}, ws = {c.c_out, c.c_in / c.p.groups, c.k, c.k},
                    ys = {c.n, c.c_out, ho, wo};
        Tensor x = rand_cpu(xs, dt), w = rand_cpu(ws, dt), b = rand_cpu({c.c_out}, dt), g = rand_cpu(ys, dt);
        check_parity(
            describe(c, dt) + (via_cudnn ? " (depthwise via cuDNN)" : ""),
            [&](Device d) -> std::vector<Tensor> {
              Tensor out = poisoned(ys, dt, d), gx = poisoned(xs, dt, d), gw = poisoned(ws, dt, d),
                     gb = poisoned({c.c_out}, dt, d);
              conv2d_forward(out, x.to(d), w.to(d), c.bias ? b.to(d) : Tensor(), c.p);
              conv2d_backward_input(gx, g.to(d), w.to(d), c.p);
              conv2d_backward_weight(gw, g.to(d), x.to(d), c.p);
              conv2d_backward_bias(gb, g.to(d));
              return {out, gx, gw, gb};
            },
            tol_for(dt, 10));
      }
}

TEST_CASE("cuda parity: conv2d plans are cached per shape and reused") {
  AG_SKIP_WITHOUT_GPU();
  // The same geometry twice, then another: results must not depend on which plan ran first.
  const Conv2dParams p{1, 1, 1, 1, 1, 1, 1};
  Tensor x = rand_cpu({2, 3, 6, 6}, DType::f32), w = rand_cpu({5, 3, 3, 3}, DType::f32);
  Tensor x2 = rand_cpu({4, 3, 5, 7}, DType::f32);
  for (const Tensor* input : {&x, &x, &x2, &x}) {
    const Tensor& in = *input;
    const Shape ys = {in.size(0), 5, in.size(2), in.size(3)};
    check_parity(
        "conv2d repeated shape " + shape_str(in.shape()),
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned(ys, DType::f32, d);
          conv2d_forward(out, in.to(d), w.to(d), Tensor(), p);
          return {out};
        },
        tol_for(DType::f32, 10));
  }
}

TEST_CASE("cuda gradcheck: conv2d on the GPU") {
  AG_SKIP_WITHOUT_GPU();
  Tensor x = random_leaf({2, 4, 6, 5}), w = random_leaf({6, 2, 3, 3}), b = random_leaf({6});
  const Conv2dParams p{2, 1, 1, 1, 1, 1, 2};  // stride (2, 1), groups 2
  CHECK_GRADCHECK([&] { return host(conv2d(gpu(x), gpu(w), gpu(b), p)); }, {x, w, b});
  Tensor dw = random_leaf({4, 1, 3, 3});  // depthwise
  CHECK_GRADCHECK([&] { return host(conv2d(gpu(x), gpu(dw), Tensor(), 1, 1, 1, 4)); }, {x, dw});
}
