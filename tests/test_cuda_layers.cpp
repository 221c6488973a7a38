// CPU-vs-CUDA parity of the layer kernels (core/cuda/conv.cpp on cuDNN, batch_norm.cu,
// pool.cu): every kernel of the "layers" section forward and backward, float32 and
// float64, random inputs and poisoned outputs; then one full training step (loss and every
// parameter gradient) of a narrow ResNet and a narrow MobileNetV2 on both devices, and
// float64 gradchecks of the layer ops running on the GPU (leaves stay on the CPU, as in
// test_cuda_grad.cpp). Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "gradcheck.h"
#include "core/ops.h"
#include "losses/cross_entropy.h"
#include "models/factory.h"

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

TEST_CASE("cuda parity: batch norm train / eval forward and backward with fused activations") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (const Shape& xs : {Shape{5, 3, 4, 6}, Shape{7, 4}, Shape{2, 3, 33, 35}})
      for (Activation act : {Activation::none, Activation::relu, Activation::relu6})
        for (bool affine : {true, false}) {
          const int64_t c = xs[1];
          Tensor x = rand_cpu(xs, dt, -1, 5), gamma = rand_cpu({c}, dt, 0.5, 2), beta = rand_cpu({c}, dt);
          Tensor rm = rand_cpu({c}, dt), rv = rand_cpu({c}, dt, 0.5, 2), g = rand_cpu(xs, dt);
          Tensor y_act = rand_cpu(xs, dt, -1, 8);  // the act' mask hits both sides of relu6
          const std::string what = "batch_norm x=" + shape_str(xs) + " act=" + std::to_string(int(act)) +
                                   (affine ? " affine " : " plain ") + dtype_name(dt);
          check_parity(
              what,
              [&](Device d) -> std::vector<Tensor> {
                Tensor y = poisoned(xs, dt, d), mean = poisoned({c}, dt, d), istd = poisoned({c}, dt, d);
                Tensor run_m = rm.to(d).clone(), run_v = rv.to(d).clone();
                const Tensor gm = affine ? gamma.to(d) : Tensor(), bt = affine ? beta.to(d) : Tensor();
                batch_norm_forward_train(y, mean, istd, run_m, run_v, x.to(d), gm, bt, 0.1, 1e-5, act);
                Tensor y_eval = poisoned(xs, dt, d);
                batch_norm_forward_eval(y_eval, x.to(d), rm.to(d), rv.to(d), gm, bt, act);
                std::vector<Tensor> outs = {y, mean, istd, run_m, run_v, y_eval};
                for (bool training : {true, false}) {
                  Tensor gx = poisoned(xs, dt, d), gg = poisoned({c}, dt, d), gb = poisoned({c}, dt, d);
                  batch_norm_backward(gx, gg, gb, g.to(d), x.to(d), y_act.to(d), mean, istd, gm, training,
                                      act);
                  outs.insert(outs.end(), {gx, gg, gb});
                }
                // Only the parameter gradients (grad_x undefined), as for a frozen input.
                Tensor none, gg = poisoned({c}, dt, d), gb = poisoned({c}, dt, d);
                batch_norm_backward(none, gg, gb, g.to(d), x.to(d), y_act.to(d), mean, istd, gm, true, act);
                outs.insert(outs.end(), {gg, gb});
                return outs;
              },
              tol_for(dt, 20));
        }
}

TEST_CASE("cuda parity: max and average pooling forward and backward") {
  AG_SKIP_WITHOUT_GPU();
  std::vector<Pool2dParams> params = {{2, 2, 2, 2, 0, 0, true},
                                      {3, 3, 2, 2, 1, 1, true},
                                      {3, 3, 2, 2, 1, 1, false},
                                      {3, 2, 1, 2, 1, 0, true}};
  for (DType dt : float_dtypes())
    for (const Pool2dParams& p : params) {
      const Shape xs = {2, 3, 7, 9};
      const Shape ys = {2, 3, conv_out_size(7, p.kernel_h, p.stride_h, p.pad_h, 1),
                        conv_out_size(9, p.kernel_w, p.stride_w, p.pad_w, 1)};
      Tensor x = rand_cpu(xs, dt), g = rand_cpu(ys, dt);
      const std::string what = "pool k=" + std::to_string(p.kernel_h) + "x" + std::to_string(p.kernel_w) +
                               " stride=" + std::to_string(p.stride_h) + " pad=" + std::to_string(p.pad_h) +
                               (p.count_include_pad ? "" : " exclude_pad ") + dtype_name(dt);
      check_parity(
          what,
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(ys, dt, d), idx = poisoned(ys, DType::i64, d), gx = poisoned(xs, dt, d);
            max_pool2d_forward(out, idx, x.to(d), p);
            max_pool2d_backward(gx, g.to(d), idx, p);
            Tensor avg = poisoned(ys, dt, d), gavg = poisoned(xs, dt, d);
            avg_pool2d_forward(avg, x.to(d), p);
            avg_pool2d_backward(gavg, g.to(d), p);
            return {out, idx, gx, avg, gavg};
          },
          tol_for(dt, 10));
    }
}

TEST_CASE("cuda parity: max pooling ties pick the first maximum") {
  AG_SKIP_WITHOUT_GPU();
  const Pool2dParams p{2, 2, 2, 2, 0, 0, true};
  Tensor x = Tensor::ones({1, 2, 4, 4}), g = rand_cpu({1, 2, 2, 2}, DType::f32);
  check_parity(
      "max_pool2d ties",
      [&](Device d) -> std::vector<Tensor> {
        Tensor out = poisoned({1, 2, 2, 2}, DType::f32, d), idx = poisoned({1, 2, 2, 2}, DType::i64, d);
        Tensor gx = poisoned({1, 2, 4, 4}, DType::f32, d);
        max_pool2d_forward(out, idx, x.to(d), p);
        max_pool2d_backward(gx, g.to(d), idx, p);
        return {out, idx, gx};
      },
      tol_for(DType::f32));
}

TEST_CASE("cuda parity: fused residual add + activation and its backward") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (Activation act : {Activation::none, Activation::relu, Activation::relu6}) {
      const Shape s = {3, 5, 17, 13};
      Tensor a = rand_cpu(s, dt, -4, 5), b = rand_cpu(s, dt, -4, 5), g = rand_cpu(s, dt);
      Tensor y = rand_cpu(s, dt, -1, 8);
      check_parity(
          "add_act act=" + std::to_string(int(act)) + " " + dtype_name(dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(s, dt, d), gx = poisoned(s, dt, d);
            add_act_forward(out, a.to(d), b.to(d), act);
            act_backward_from_output(gx, g.to(d), y.to(d), act);
            return {out, gx};
          },
          tol_for(dt));
    }
}

TEST_CASE("cuda gradcheck: conv2d, batch norm and pooling on the GPU") {
  AG_SKIP_WITHOUT_GPU();
  Tensor x = random_leaf({2, 4, 6, 5}), w = random_leaf({6, 2, 3, 3}), b = random_leaf({6});
  const Conv2dParams p{2, 1, 1, 1, 1, 1, 2};  // stride (2, 1), groups 2
  CHECK_GRADCHECK([&] { return host(conv2d(gpu(x), gpu(w), gpu(b), p)); }, {x, w, b});
  Tensor dw = random_leaf({4, 1, 3, 3});  // depthwise
  CHECK_GRADCHECK([&] { return host(conv2d(gpu(x), gpu(dw), Tensor(), 1, 1, 1, 4)); }, {x, dw});
  Tensor gamma = random_leaf({4}, 0.5, 2.0), beta = random_leaf({4});
  CHECK_GRADCHECK([&] { return host(batch_norm(gpu(x), gpu(gamma), gpu(beta), Tensor(), Tensor(), true)); },
                  {x, gamma, beta});
  Tensor rm = random_leaf({4}).detach(), rv = random_leaf({4}, 0.5, 2.0).detach();
  CHECK_GRADCHECK([&] { return host(batch_norm(gpu(x), gpu(gamma), gpu(beta), gpu(rm), gpu(rv), false)); },
                  {x, gamma, beta});
  CHECK_GRADCHECK([&] { return host(max_pool2d(gpu(x), 3, 2, 1)); }, {x});
  CHECK_GRADCHECK([&] { return host(avg_pool2d(gpu(x), 3, 2, 1, false)); }, {x});
}

namespace {

// One training step (forward, cross-entropy, backward) of `spec` on the CPU, then the same
// weights moved to the GPU: same loss and same gradient for every parameter.
void check_training_step(const std::string& spec, DType dt, Tol tol) {
  manual_seed(1234);
  ModelPtr model = make_model(spec, 10);
  model->to(dt);
  model->train();
  Tensor x = rand_cpu({8, 3, 16, 16}, dt);
  Tensor labels = Tensor::from_labels({0, 1, 2, 3, 4, 5, 6, 7});
  auto step = [&](Device d) {
    model->zero_grad();
    Tensor loss = cross_entropy(model->forward(x.to(d)), labels.to(d));
    loss.backward();
    std::vector<Tensor> out = {loss.to(Device::cpu())};
    for (const auto& [name, p] : model->named_parameters()) {
      REQUIRE_MESSAGE(p.grad().defined(), spec << ": " << name << " got no gradient on " << d);
      out.push_back(p.grad().to(Device::cpu()));
    }
    return out;
  };
  const std::vector<Tensor> ref = step(Device::cpu());
  model->to(kGpu);
  const std::vector<Tensor> got = step(kGpu);
  REQUIRE(ref.size() == got.size());
  const auto params = model->named_parameters();
  expect_close(spec + " loss " + dtype_name(dt), ref[0], got[0], tol);
  for (size_t i = 1; i < ref.size(); ++i)
    expect_close(spec + " grad " + params[i - 1].first + " " + dtype_name(dt), ref[i], got[i], tol);
}

}  // namespace

TEST_CASE("cuda parity: one training step of a narrow ResNet and MobileNetV2") {
  AG_SKIP_WITHOUT_GPU();
  for (const char* spec :
       {"resnet20:width=0.25", "resnet18:width=0.125", "mobilenetv2:width=0.25,depth=0.5"}) {
    // float64: every gradient to ~1e-9 relative; float32: a few ulps per layer, accumulated.
    check_training_step(spec, DType::f64, {1e-9, 1e-7});
    check_training_step(spec, DType::f32, {1e-3, 1e-2});
  }
}
