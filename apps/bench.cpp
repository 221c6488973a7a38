// bench: CPU speed of the layer kernels against the same run's machine ceilings.
//
// Purpose: forward and backward throughput of every distinct convolution, depthwise
// convolution and batch-norm layer of the CIFAR variants of ResNet18, MobileNetV2 and
// EfficientNet-B0 (32x32 input, batch 128 by default), printed beside two ceilings measured
// in the same run: OpenBLAS sgemm GFLOP/s on a large square product (for GEMM-bound
// convolutions) and memory bandwidth from a large copy (for the memory-bound depthwise and
// batch-norm layers, counting bytes read + written). Then a whole training step (forward,
// cross-entropy, backward, SGD with momentum) of a ResNet-20 (16/32/64 channels, basic
// blocks, projection shortcuts, as the dlib peer benchmark) in images/s.
//
// Run:
//   bench                                  # everything, 2 threads, batch 128
//   bench --threads 1 --filter conv3x3     # a subset: layers whose name contains the text
//   bench --batch 32 --reps 3 --no-step    # smaller, faster
//   bench --json results.json              # also write the figures as JSON
//   bench --models resnet20:width=0.75 --stem-channels 1   # the main job's layers
//   bench --precision bf16                 # convolutions and linear layers in bfloat16
//                                          # (AVX512-BF16; core/precision.h)
//   bench --gemm --no-layers --no-step     # the bf16 GEMM against sgemm at conv-like shapes
// On a machine shared with other jobs, run with OMP_WAIT_POLICY=passive: spinning OpenMP
// threads then wait for a preempted sibling at every barrier (2-3x slower steps).
// Expected (2-core development machine): ResNet18 3x3 convolutions forward >= 70% of the
// sgemm figure and backward >= 55%; depthwise layers >= 50% of the copy bandwidth; the
// ResNet-20 step >= 200 images/s on 2 threads. docs/benchmarks.md records measured figures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "apps/lib/flags.h"
#include "core/ceilings.h"
#include "core/cpu/bf16/gemm.h"
#include "core/cpu/gemm_util.h"
#include "core/optim/optimizer.h"
#include "core/parallel.h"
#include "core/precision.h"
#include "core/random.h"
#include "layers/layers.h"
#include "losses/cross_entropy.h"

using namespace ag;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------- the layer shapes

enum class Kind { conv, depthwise, bn };

struct LayerSpec {
  Kind kind;
  int64_t cin, cout, k, stride, hw;   // hw: input height = width
  Activation act = Activation::none;  // bn: the activation fused into it, as in the model
  std::string name() const {
    char buf[96];
    if (kind == Kind::bn)
      std::snprintf(buf, sizeof buf, "bn %ld@%ldx%ld%s", long(cin), long(hw), long(hw),
                    act == Activation::relu    ? " +relu"
                    : act == Activation::relu6 ? " +relu6"
                                               : "");
    else
      std::snprintf(buf, sizeof buf, "%s%ldx%ld %ld->%ld s%ld @%ldx%ld", kind == Kind::conv ? "conv" : "dw",
                    long(k), long(k), long(cin), long(cout), long(stride), long(hw), long(hw));
    return buf;
  }
  int64_t out_hw() const { return conv_out_size(hw, k, stride, k / 2, 1); }
  // Multiply-adds per sample (convolutions only).
  int64_t macs() const {
    const int64_t groups = kind == Kind::depthwise ? cin : 1;
    return kind == Kind::bn ? 0 : cout * (cin / groups) * k * k * out_hw() * out_hw();
  }
};

// Distinct layers in first-seen order, with the nets that use them and how often.
struct LayerSet {
  std::vector<LayerSpec> specs;
  std::vector<std::map<std::string, int>> uses;
  std::map<std::string, int64_t> net_macs;
  std::string net;

  void add(Kind kind, int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t hw,
           Activation act = Activation::none) {
    LayerSpec s{kind, cin, cout, k, stride, hw, act};
    net_macs[net] += s.macs();
    for (size_t i = 0; i < specs.size(); ++i)
      if (specs[i].name() == s.name()) return void(uses[i][net]++);
    specs.push_back(s);
    uses.push_back({{net, 1}});
  }
  // conv + BN (+ the activation fused into the BN); returns the output size.
  int64_t conv_bn(int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t hw,
                  Activation act = Activation::none, bool depthwise = false) {
    add(depthwise ? Kind::depthwise : Kind::conv, cin, cout, k, stride, hw);
    const int64_t out = conv_out_size(hw, k, stride, k / 2, 1);
    add(Kind::bn, cout, cout, 0, 1, out, act);
    return out;
  }
};

void add_resnet18(LayerSet& s) {
  s.net = "resnet18";
  int64_t hw = s.conv_bn(3, 64, 3, 1, 32, Activation::relu), cin = 64;
  for (int64_t stage = 0; stage < 4; ++stage) {
    const int64_t c = 64 << stage;
    for (int b = 0; b < 2; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      const int64_t out = s.conv_bn(cin, c, 3, stride, hw, Activation::relu);
      s.conv_bn(c, c, 3, 1, out);  // ReLU after the residual add
      if (stride != 1 || cin != c) s.conv_bn(cin, c, 1, stride, hw);
      cin = c;
      hw = out;
    }
  }
  s.net_macs[s.net] += 512 * 10;
}

// ResNet-20 (CIFAR) at a width multiplier: stages of 16, 32, 64 channels times the width
// (the main job runs width 0.75 on 1-channel Fashion-MNIST: --resnet20 0.75 --stem-channels 1).
void add_resnet20(LayerSet& s, double width, int64_t stem_channels) {
  char name[48];
  std::snprintf(name, sizeof name, "resnet20:width=%g", width);
  s.net = name;
  const auto channels = [&](int64_t c) { return static_cast<int64_t>(std::lround(c * width)); };
  int64_t hw = s.conv_bn(stem_channels, channels(16), 3, 1, 32, Activation::relu), cin = channels(16);
  for (int64_t stage = 0; stage < 3; ++stage) {
    const int64_t c = channels(16 << stage);
    for (int b = 0; b < 3; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      const int64_t out = s.conv_bn(cin, c, 3, stride, hw, Activation::relu);
      s.conv_bn(c, c, 3, 1, out);
      if (stride != 1 || cin != c) s.conv_bn(cin, c, 1, stride, hw);
      cin = c;
      hw = out;
    }
  }
  s.net_macs[s.net] += cin * 10;
}

// Inverted residual / MBConv body: expand 1x1 (when t > 1), depthwise kxk, project 1x1.
// act: fused into the first two BNs (MobileNetV2's ReLU6; EfficientNet's SiLU is not fused).
int64_t inverted_residual(LayerSet& s, int64_t cin, int64_t cout, int64_t t, int64_t k, int64_t stride,
                          int64_t hw, bool se, Activation act) {
  const int64_t mid = cin * t;
  if (t != 1) s.conv_bn(cin, mid, 1, 1, hw, act);
  const int64_t out = s.conv_bn(mid, mid, k, stride, hw, act, true);
  if (se) s.net_macs[s.net] += 2 * mid * std::max<int64_t>(1, cin / 4);  // the two 1x1 SE convs
  s.conv_bn(mid, cout, 1, 1, out);
  return out;
}

void add_mobilenet_v2(LayerSet& s) {
  s.net = "mobilenetv2";
  const int64_t cfg[][4] = {{1, 16, 1, 1}, {6, 24, 2, 1},  {6, 32, 3, 2}, {6, 64, 4, 2},
                            {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};  // t, c, n, s (CIFAR)
  int64_t hw = s.conv_bn(3, 32, 3, 1, 32, Activation::relu6), cin = 32;
  for (auto& [t, c, n, stride] : cfg)
    for (int64_t i = 0; i < n; ++i) {
      hw = inverted_residual(s, cin, c, t, 3, i == 0 ? stride : 1, hw, false, Activation::relu6);
      cin = c;
    }
  s.conv_bn(320, 1280, 1, 1, hw, Activation::relu6);
  s.net_macs[s.net] += 1280 * 10;
}

void add_efficientnet_b0(LayerSet& s) {
  s.net = "efficientnet-b0";
  const int64_t cfg[][5] = {{1, 3, 1, 16, 1},  {6, 3, 2, 24, 2},  {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3},
                            {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1}};  // t, k, s, c, n
  int64_t hw = s.conv_bn(3, 32, 3, 1, 32), cin = 32;
  for (auto& [t, k, stride, c, n] : cfg)
    for (int64_t i = 0; i < n; ++i) {
      hw = inverted_residual(s, cin, c, t, k, i == 0 ? stride : 1, hw, true, Activation::none);
      cin = c;
    }
  s.conv_bn(320, 1280, 1, 1, hw);
  s.net_macs[s.net] += 1280 * 10;
}

// The layer sets --models names, in its order.
void add_models(LayerSet& set, const train::Flags& flags) {
  const int64_t stem = flags.get_int("stem-channels");
  if (stem < 1 || stem > 64) flags.fail("stem-channels", "must be between 1 and 64");
  std::stringstream list(flags.get_string("models"));
  for (std::string model; std::getline(list, model, ',');) {
    if (model == "resnet18") {
      add_resnet18(set);
    } else if (model == "mobilenetv2") {
      add_mobilenet_v2(set);
    } else if (model == "efficientnet-b0") {
      add_efficientnet_b0(set);
    } else if (model == "resnet20") {
      add_resnet20(set, 1.0, stem);
    } else if (model.rfind("resnet20:width=", 0) == 0) {
      const std::string text = model.substr(15);
      char* end = nullptr;
      const double width = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || !(width > 0) || width > 8)
        flags.fail("models", "resnet20:width= wants a multiplier in (0, 8], got '" + text + "'");
      add_resnet20(set, width, stem);
    } else {
      flags.fail("models", "unknown model '" + model +
                               "' (resnet18, mobilenetv2, efficientnet-b0, resnet20, resnet20:width=W)");
    }
  }
}

// ---------------------------------------------------------------- measuring one layer

struct LayerResult {
  double fwd_s = 0, bwd_s = 0;
  double bwd_input_s = 0, bwd_weight_s = 0;  // convolutions: the two halves of bwd_s, timed apart
  double fwd_flops = 0, bwd_flops = 0;       // per call
  double fwd_bytes = 0, bwd_bytes = 0;       // per call, read + written
};

LayerResult measure_conv(const LayerSpec& s, int64_t batch, int reps) {
  Conv2dParams p;
  p.stride_h = p.stride_w = s.stride;
  p.pad_h = p.pad_w = s.k / 2;
  p.groups = s.kind == Kind::depthwise ? s.cin : 1;
  const int64_t ho = s.out_hw();
  Tensor x = Tensor::uniform({batch, s.cin, s.hw, s.hw}, -1, 1);
  Tensor w = Tensor::uniform({s.cout, s.cin / p.groups, s.k, s.k}, -0.1, 0.1);
  Tensor y = Tensor::empty({batch, s.cout, ho, ho}), gy = Tensor::uniform(y.shape(), -1, 1);
  Tensor gx = Tensor::empty(x.shape()), gw = Tensor::empty(w.shape());
  LayerResult r;
  r.fwd_s = time_median(reps, [&] { conv2d_forward(y, x, w, Tensor(), p); });
  r.bwd_s = time_median(reps, [&] {
    conv2d_backward_input(gx, gy, w, p);
    conv2d_backward_weight(gw, gy, x, p);
  });
  r.bwd_input_s = time_median(reps, [&] { conv2d_backward_input(gx, gy, w, p); });
  r.bwd_weight_s = time_median(reps, [&] { conv2d_backward_weight(gw, gy, x, p); });
  r.fwd_flops = 2.0 * batch * s.macs();
  r.bwd_flops = 2 * r.fwd_flops;
  const double xb = x.nbytes(), yb = y.nbytes();
  r.fwd_bytes = xb + yb;
  r.bwd_bytes = (yb + xb) + (yb + xb);  // input grad: read gy, write gx; weight grad: read gy, x
  return r;
}

LayerResult measure_bn(const LayerSpec& s, int64_t batch, int reps) {
  const int64_t c = s.cin;
  Tensor x = Tensor::normal({batch, c, s.hw, s.hw}, 0, 1), y = Tensor::empty(x.shape());
  Tensor gamma = Tensor::ones({c}), beta = Tensor::zeros({c}), rm = Tensor::zeros({c}),
         rv = Tensor::ones({c});
  Tensor mean = Tensor::empty({c}), invstd = Tensor::empty({c});
  Tensor gy = Tensor::uniform(x.shape(), -1, 1), gx = Tensor::empty(x.shape());
  Tensor gg = Tensor::empty({c}), gb = Tensor::empty({c}), none;
  LayerResult r;
  r.fwd_s = time_median(
      reps, [&] { batch_norm_forward_train(y, mean, invstd, rm, rv, x, gamma, beta, 0.1, 1e-5, s.act); });
  r.bwd_s = time_median(reps, [&] {
    batch_norm_backward(gx, gg, gb, gy, x, s.act == Activation::none ? none : y, mean, invstd, gamma, beta,
                        true, s.act);
  });
  const double xb = x.nbytes();
  r.fwd_bytes = 2 * xb;  // read x, write y
  r.bwd_bytes = 3 * xb;  // read gy and x, write gx (the CPU recomputes the activation's input)
  r.fwd_flops = 7.0 * x.numel();
  r.bwd_flops = 9.0 * x.numel();
  return r;
}

// ---------------------------------------------------------------- ResNet-20 training step

ModulePtr conv_bn(int64_t cin, int64_t cout, int64_t k, int64_t stride, bool relu) {
  return std::make_shared<Sequential>(std::vector<ModulePtr>{
      std::make_shared<Conv2d>(cin, cout, k, stride, k / 2, 1, 1, false),
      std::make_shared<BatchNorm2d>(cout, 1e-5, 0.1, true, relu ? Activation::relu : Activation::none)});
}

ModulePtr basic_block(int64_t cin, int64_t cout, int64_t stride) {
  auto body = std::make_shared<Sequential>(
      std::vector<ModulePtr>{conv_bn(cin, cout, 3, stride, true), conv_bn(cout, cout, 3, 1, false)});
  ModulePtr shortcut = (stride != 1 || cin != cout) ? conv_bn(cin, cout, 1, stride, false) : nullptr;
  return std::make_shared<Residual>(body, shortcut, Activation::relu);
}

std::shared_ptr<Sequential> resnet20() {
  auto net = std::make_shared<Sequential>();
  net->append(conv_bn(3, 16, 3, 1, true));
  int64_t cin = 16;
  for (int64_t c : {16, 32, 64})
    for (int b = 0; b < 3; ++b) {
      net->append(basic_block(cin, c, (c != 16 && b == 0) ? 2 : 1));
      cin = c;
    }
  net->append(std::make_shared<GlobalAvgPool2d>());
  net->append(std::make_shared<Linear>(64, 10));
  return net;
}

// Median seconds of one training step of ResNet-20 at the given batch.
double resnet20_step_s(int64_t batch, int warmup, int steps, int64_t& params) {
  manual_seed(1);
  auto net = resnet20();
  params = net->parameter_count();
  optim::SgdOptions o;
  o.lr = 0.01;
  o.momentum = 0.9;
  o.weight_decay = 5e-4;
  optim::SGD sgd(net->named_parameters(), o);
  Tensor x = Tensor::uniform({batch, 3, 32, 32}, -1, 1);
  std::vector<int64_t> labels(batch);
  for (int64_t i = 0; i < batch; ++i) labels[i] = i * 7 % 10;
  Tensor y = Tensor::from_labels(labels);
  std::vector<double> t;
  for (int s = 0; s < warmup + steps; ++s) {
    const double t0 = seconds_now();
    sgd.zero_grad();
    Tensor loss = cross_entropy((*net)(x), y);
    loss.backward();
    sgd.step();
    if (s >= warmup) t.push_back(seconds_now() - t0);
  }
  return median(t);
}

std::string machine_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

void run_layers(const LayerSet& set, const train::Flags& flags, double gemm, double copy, json& out) {
  const int64_t batch = flags.get_int("batch");
  const int reps = static_cast<int>(flags.get_int("reps"));
  const std::string filter = flags.get_string("filter");
  std::printf("\n%-30s %8s %8s %6s %8s %8s %6s %7s %13s  %s\n", "layer", "fwd ms", "fwd", "%ceil", "bwd ms",
              "bwd", "%ceil", "ceiling", "bwd in/w ms", "used by");
  for (size_t i = 0; i < set.specs.size(); ++i) {
    const LayerSpec& s = set.specs[i];
    if (!filter.empty() && s.name().find(filter) == std::string::npos) continue;
    const bool flops_bound = s.kind == Kind::conv;
    // The ceiling is measured right before the layer (paired), so that drifts of a shared
    // machine hit both alike; the start-of-run figure is the fallback with --no-paired.
    double ceil = flops_bound ? gemm : copy;
    if (flags.get_bool("paired")) ceil = flops_bound ? sgemm_gflops(3) : copy_gbps(3);
    const LayerResult r = s.kind == Kind::bn ? measure_bn(s, batch, reps) : measure_conv(s, batch, reps);
    const double f = flops_bound ? r.fwd_flops / r.fwd_s / 1e9 : r.fwd_bytes / r.fwd_s / 1e9;
    const double b = flops_bound ? r.bwd_flops / r.bwd_s / 1e9 : r.bwd_bytes / r.bwd_s / 1e9;
    std::string used;
    for (auto& [net, n] : set.uses[i]) used += (used.empty() ? "" : ", ") + net + " x" + std::to_string(n);
    char split[32] = "";
    if (s.kind != Kind::bn)
      std::snprintf(split, sizeof split, "%.2f/%.2f", r.bwd_input_s * 1e3, r.bwd_weight_s * 1e3);
    std::printf("%-30s %8.2f %8.1f %5.0f%% %8.2f %8.1f %5.0f%% %7.1f %13s  %s\n", s.name().c_str(),
                r.fwd_s * 1e3, f, 100 * f / ceil, r.bwd_s * 1e3, b, 100 * b / ceil, ceil, split,
                used.c_str());
    std::fflush(stdout);
    out["layers"].push_back({{"name", s.name()},
                             {"unit", flops_bound ? "GFLOP/s" : "GB/s"},
                             {"forward_ms", r.fwd_s * 1e3},
                             {"forward", f},
                             {"forward_pct_ceiling", 100 * f / ceil},
                             {"backward_ms", r.bwd_s * 1e3},
                             {"backward", b},
                             {"backward_pct_ceiling", 100 * b / ceil},
                             {"ceiling", ceil},
                             {"forward_gflops", r.fwd_flops / r.fwd_s / 1e9},
                             {"backward_gflops", r.bwd_flops / r.bwd_s / 1e9},
                             {"backward_input_ms", r.bwd_input_s * 1e3},
                             {"backward_weight_ms", r.bwd_weight_s * 1e3},
                             {"used_by", set.uses[i]}});
  }
}

// The bfloat16 GEMM (core/cpu/bf16/gemm.h) against sgemm (OpenBLAS) at the shapes of
// im2col convolutions: M output channels, N output positions of a chunk, K = C_in * 9.
// NN is the forward's product, NT the weight gradient's (reduction over the positions).
void run_gemm_shapes(int reps, json& out) {
  struct Shape3 {
    int64_t m, n, k;
  };
  const Shape3 shapes[] = {{64, 16384, 576},  {64, 8192, 576},   {128, 4096, 1152},
                           {256, 2048, 2304}, {512, 1024, 4608}, {512, 2048, 4608}};
  std::printf("\nGEMM GFLOP/s, float32 operands: sgemm (OpenBLAS) vs bf16 (vdpbf16ps)\n");
  std::printf("%-22s %10s %10s %10s %10s\n", "M x N x K", "sgemm NN", "bf16 NN", "sgemm NT", "bf16 NT");
  for (const Shape3& s : shapes) {
    const size_t big = static_cast<size_t>(s.m * std::max(s.n, s.k));
    std::vector<float> a(big), b(static_cast<size_t>(s.k * s.n)), c(big);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) * 0.1f - 0.3f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 5) * 0.1f - 0.2f;
    double gflops[4];
    for (int v = 0; v < 4; ++v) {
      const bool bf16 = v % 2 == 1, nt = v >= 2;
      // NT: c [m, k] = a [m, n] b^T with b stored [k, n]: a reduction over n.
      const int64_t n = nt ? s.k : s.n, k = nt ? s.n : s.k, lda = k, ldb = s.n;
      auto once = [&] {
        if (bf16)
          cpu::gemm_bf16(false, nt, s.m, n, k, a.data(), lda, b.data(), ldb, 0.f, c.data(), n);
        else
          cpu::gemm_rm<float>(false, nt, s.m, n, k, 1.f, a.data(), lda, b.data(), ldb, 0.f, c.data(), n);
      };
      once();
      gflops[v] = 2.0 * s.m * s.n * s.k / time_median(reps, once) / 1e9;
    }
    char name[64];
    std::snprintf(name, sizeof name, "%ld x %ld x %ld", long(s.m), long(s.n), long(s.k));
    std::printf("%-22s %10.1f %10.1f %10.1f %10.1f\n", name, gflops[0], gflops[1], gflops[2], gflops[3]);
    out["gemm"].push_back({{"m", s.m},
                           {"n", s.n},
                           {"k", s.k},
                           {"sgemm_nn", gflops[0]},
                           {"bf16_nn", gflops[1]},
                           {"sgemm_nt", gflops[2]},
                           {"bf16_nt", gflops[3]}});
  }
}

int run(int argc, char** argv) {
  train::Flags flags("bench", "CPU layer throughput against same-run sgemm and copy ceilings.");
  flags.add_int("batch", 128, "batch size");
  flags.add_int("threads", 2, "threads (OpenMP and OpenBLAS)");
  flags.add_int("reps", 5, "timed repetitions per measurement (median reported)");
  flags.add_string("filter", "", "only layers whose name contains this text (e.g. conv3x3, dw, bn)");
  flags.add_bool("step", true, "time the ResNet-20 training step");
  flags.add_bool("layers", true, "time the individual layers");
  flags.add_int("steps", 5, "timed ResNet-20 training steps (after 2 warm-up steps)");
  flags.add_string("json", "", "also write the results to this JSON file");
  flags.add_bool("ceilings", true, "measure the sgemm and copy ceilings (off: for profiling a part)");
  flags.add_string("precision", "fp32",
                   "fp32, or bf16: convolutions and linear layers in bfloat16 (float32 sums; AVX512-BF16)");
  flags.add_bool("gemm", false, "time the bf16 GEMM against sgemm at conv-like shapes (needs AVX512-BF16)");
  flags.add_string(
      "models", "resnet18,mobilenetv2,efficientnet-b0",
      "whose layers to time (comma-separated): resnet18, mobilenetv2, efficientnet-b0, resnet20 or "
      "resnet20:width=W (e.g. 0.75, the main job's)");
  flags.add_int("stem-channels", 3, "input channels of the resnet20 stem (3: CIFAR, 1: Fashion-MNIST)");
  flags.add_bool("paired", true, "re-measure the ceiling right before each layer (noisy shared machines)");
  flags.parse(argc, argv);
  if (flags.help_requested()) {
    std::cout << flags.usage();
    return 0;
  }
  set_num_threads(static_cast<int>(flags.get_int("threads")));
  const std::string precision = flags.get_string("precision");
  if (precision != "fp32" && precision != "bf16") flags.fail("precision", "must be fp32 or bf16");
  MatmulPrecisionGuard precision_guard(parse_matmul_precision(precision));  // names a missing CPU feature
  const int reps = static_cast<int>(flags.get_int("reps"));
  json out = {{"machine", machine_name()},
              {"threads", flags.get_int("threads")},
              {"batch", flags.get_int("batch")},
              {"layers", json::array()}};
  const bool ceilings = flags.get_bool("ceilings");
  const double gemm = ceilings ? sgemm_gflops(reps) : 1.0, copy = ceilings ? copy_gbps(reps) : 1.0;
  const double fma_peak = ceilings ? fma_peak_gflops(reps) : 0.0;
  std::printf("# %s, %ld threads, batch %ld, %s matmuls\n", machine_name().c_str(),
              long(flags.get_int("threads")), long(flags.get_int("batch")), precision.c_str());
  out["precision"] = precision;
  std::printf(
      "ceilings (this run): sgemm 2048^3 %.1f GFLOP/s, copy %.1f GB/s (read + write), register-only "
      "%s FMA peak %.1f GFLOP/s\n",
      gemm, copy, kFmaWidth, fma_peak);
  out["sgemm_gflops"] = gemm;
  out["fma_peak_gflops"] = fma_peak;
  out["copy_gbps"] = copy;
  LayerSet set;
  add_models(set, flags);
  for (auto& [net, macs] : set.net_macs)
    std::printf("%s: %ld forward MACs per image\n", net.c_str(), long(macs));
  std::printf(
      "conv: GFLOP/s vs sgemm; dw and bn: GB/s vs copy (bytes read + written); backward = input +\n"
      "weight gradients; ceiling = the sgemm or copy figure measured just before the layer.\n");
  if (flags.get_bool("gemm")) run_gemm_shapes(reps, out);
  if (flags.get_bool("layers")) run_layers(set, flags, gemm, copy, out);
  if (flags.get_bool("step")) {
    int64_t params = 0;
    const int64_t batch = flags.get_int("batch");
    const double t = resnet20_step_s(batch, 2, static_cast<int>(flags.get_int("steps")), params);
    std::printf("\nresnet20 (%ld parameters) training step, batch %ld: %.3f s, %.1f images/s\n", long(params),
                long(batch), t, batch / t);
    out["resnet20_step_s"] = t;
    out["resnet20_images_per_s"] = batch / t;
  }
  if (!flags.get_string("json").empty()) std::ofstream(flags.get_string("json")) << out.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench: %s\n", e.what());
    return 1;
  }
}
