// bench_gpu: speed of arcgrad's CUDA kernels against the card's own measured ceilings.
//
// Purpose: two ceilings measured in the same run, a large cuBLAS sgemm (GFLOP/s, plain
// float32 and TF32) and a large device-to-device copy (GB/s, bytes read + written), then
// the throughput of our hand-written kernels (elementwise, broadcasting, strided copy,
// reductions, softmax, cross-entropy, optimizer updates) in GB/s and as a percentage of
// the copy ceiling, and of GEMM-shaped products through matmul as a percentage of sgemm.
// Host <-> device transfers are measured from pageable and from pinned memory; depthwise
// layers run through the hand-written kernels and through cuDNN, side by side.
//
// Run (needs a GPU; without one it says why and exits 1):
//   bench_gpu                       # everything, about a minute on one H200
//   bench_gpu --filter softmax      # only rows whose name contains the text
//   bench_gpu --scale 0.25          # smaller tensors (a smaller card, a quick look)
//   bench_gpu --json gpu.json       # also write the figures as JSON
//   bench_gpu --train-model resnet18 --batch 128 --steps 30 [--tf32]
//   bench_gpu --train-model resnet18 --device cpu --precision bf16
//                                   # the same on the CPU with bfloat16 convolutions and
//                                   # linear layers (AVX512-BF16; core/precision.h)
//                                   # training images/s of a model on random 32x32 data
//                                   # (forward, cross-entropy, backward, SGD step), the
//                                   # figure torch_peer.py bench reports; prints one JSON line
// Expected on an H200: streaming kernels (relu, add, axpby, adamw) >= 80% of the copy
// figure; row reductions and softmax >= 60%; sgemm near cuBLAS's own peak since it is
// cuBLAS. docs/benchmarks.md ("GPU kernels") records measured figures.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "apps/lib/flags.h"
#include "core/ceilings.h"
#include "core/cuda_api.h"
#include "core/ops.h"
#include "core/optim/optimizer.h"
#include "core/precision.h"
#include "core/profiler.h"
#include "core/random.h"
#include "losses/cross_entropy.h"
#include "models/factory.h"
#include "models/trace.h"

using namespace ag;
using nlohmann::json;

namespace {

const Device kGpu = Device::cuda(0);

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of one call of f over reps timed calls, after a warm-up call. Each timed
// call is bracketed by stream synchronisations, so it measures the GPU work itself.
double time_median(int reps, const std::function<void()>& f) {
  f();
  cuda::synchronize();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    f();
    cuda::synchronize();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::string group, name;
  double seconds, rate;  // rate: GB/s or GFLOP/s
  const char* unit;
  double percent;  // of the matching ceiling; < 0 when it has none
};

class Bench {
 public:
  Bench(int reps, std::string filter) : reps_(reps), filter_(std::move(filter)) {}

  bool wanted(const std::string& name) const {
    return filter_.empty() || name.find(filter_) != std::string::npos;
  }

  // bytes moved (read + written) per call.
  void bandwidth(const std::string& group, const std::string& name, double bytes,
                 const std::function<void()>& f) {
    if (!wanted(name)) return;
    const double s = time_median(reps_, f);
    add({group, name, s, bytes / s / 1e9, "GB/s",
         copy_gbps_ > 0 ? 100.0 * bytes / s / 1e9 / copy_gbps_ : -1});
  }
  void flops(const std::string& group, const std::string& name, double count,
             const std::function<void()>& f) {
    if (!wanted(name)) return;
    const double s = time_median(reps_, f);
    add({group, name, s, count / s / 1e9, "GFLOP/s",
         sgemm_gflops_ > 0 ? 100.0 * count / s / 1e9 / sgemm_gflops_ : -1});
  }

  void set_ceilings(double sgemm, double copy) {
    sgemm_gflops_ = sgemm;
    copy_gbps_ = copy;
  }
  const std::vector<Row>& rows() const { return rows_; }

 private:
  void add(const Row& row) {
    rows_.push_back(row);
    std::printf("  %-44s %9.3f ms %10.1f %-8s", row.name.c_str(), row.seconds * 1e3, row.rate, row.unit);
    if (row.percent >= 0) std::printf(" %6.1f%%", row.percent);
    std::printf("\n");
    std::fflush(stdout);
  }

  int reps_;
  std::string filter_;
  double sgemm_gflops_ = 0, copy_gbps_ = 0;
  std::vector<Row> rows_;
};

Tensor gpu_full(const Shape& shape, double value, DType dtype = DType::f32) {
  return Tensor::full(shape, value, dtype, kGpu);
}

// The ceilings: cuBLAS sgemm on a large square and a large device copy.
void run_ceilings(Bench& b, int64_t n, int64_t copy_elems, double& sgemm, double& copy_rate) {
  Tensor a = gpu_full({n, n}, 0.5), c = gpu_full({n, n}, 0.25);
  const double gemm_flops = 2.0 * n * n * n;
  const std::string sq = std::to_string(n) + "^3";
  const double s = time_median(5, [&] { matmul(a, c); });
  sgemm = gemm_flops / s / 1e9;
  Tensor src = gpu_full({copy_elems}, 1.0), dst = gpu_full({copy_elems}, 0.0);
  const double cs = time_median(10, [&] { dst.copy_(src); });
  copy_rate = 2.0 * copy_elems * 4 / cs / 1e9;
  b.set_ceilings(sgemm, copy_rate);
  std::printf("ceilings\n  %-44s %9.3f ms %10.1f GFLOP/s\n", ("cuBLAS sgemm " + sq).c_str(), s * 1e3, sgemm);
  std::printf("  %-44s %9.3f ms %10.1f GB/s\n",
              ("device copy " + std::to_string(copy_elems * 4 >> 20) + " MiB").c_str(), cs * 1e3, copy_rate);
  b.flops("gemm", "sgemm " + sq + " (matmul)", gemm_flops, [&] { matmul(a, c); });
  cuda::set_allow_tf32(true);
  b.flops("gemm", "sgemm TF32 " + sq, gemm_flops, [&] { matmul(a, c); });
  cuda::set_allow_tf32(false);
  Tensor ad = gpu_full({n / 2, n / 2}, 0.5, DType::f64);
  b.flops("gemm", "dgemm " + std::to_string(n / 2) + "^3", 2.0 * (n / 2) * (n / 2) * (n / 2),
          [&] { matmul(ad, ad); });
  // A classifier head: [batch, features] x [features, classes]^T through linear().
  Tensor x = gpu_full({4096, 2048}, 0.1), w = gpu_full({1000, 2048}, 0.01), bias = gpu_full({1000}, 0.0);
  b.flops("gemm", "linear 4096x2048 -> 1000 (+bias)", 2.0 * 4096 * 2048 * 1000, [&] { linear(x, w, bias); });
  Tensor ba = gpu_full({64, 256, 256}, 0.5);
  b.flops("gemm", "batched matmul 64 x 256^3", 2.0 * 64 * 256 * 256 * 256, [&] { matmul(ba, ba); });
}

// Elementwise kernels and copies on large tensors, in GB/s of bytes read + written.
void run_elementwise(Bench& b, int64_t n) {
  const double f = 4;  // bytes per float32
  Tensor x = gpu_full({n}, 0.5), y = gpu_full({n}, 0.25), out = gpu_full({n}, 0.0);
  std::printf("elementwise (%ld float32 elements)\n", static_cast<long>(n));
  b.bandwidth("elementwise", "fill", f * n, [&] { fill(out, 1.0); });
  b.bandwidth("elementwise", "relu", 2 * f * n, [&] { activation_forward(out, x, Activation::relu); });
  b.bandwidth("elementwise", "exp", 2 * f * n, [&] { unary_forward(out, x, UnaryOp::exp); });
  b.bandwidth("elementwise", "silu", 2 * f * n, [&] { activation_forward(out, x, Activation::silu); });
  b.bandwidth("elementwise", "silu backward", 4 * f * n,
              [&] { activation_backward(out, y, x, x, Activation::silu); });
  b.bandwidth("elementwise", "add (same shape)", 3 * f * n,
              [&] { binary_forward(out, x, y, BinaryOp::add); });
  b.bandwidth("elementwise", "axpby", 3 * f * n, [&] { axpby(out, 0.9, x, 0.1, y); });
  const int64_t c = 256, hw = 1024, batch = n / (c * hw);
  Tensor img = x.slice(0, batch * c * hw).view({batch, c, hw}), bias = gpu_full({1, c, 1}, 0.1);
  Tensor img_out = out.slice(0, batch * c * hw).view({batch, c, hw});
  b.bandwidth("elementwise", "add bias [N,256,1024]+[1,256,1]", 2 * f * batch * c * hw,
              [&] { binary_forward(img_out, img, bias, BinaryOp::add); });
  const int64_t side = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  Tensor sq = x.slice(0, side * side).view({side, side}),
         sq_out = out.slice(0, side * side).view({side, side});
  b.bandwidth("copy", "transpose copy " + std::to_string(side) + "^2", 2 * f * side * side,
              [&] { copy(sq_out, sq.t()); });
  Tensor as_double = gpu_full({n}, 0.0, DType::f64);
  b.bandwidth("copy", "float32 -> float64 copy", (4 + 8) * static_cast<double>(n),
              [&] { copy(as_double, x); });
}

// Row-wise kernels (rows of 1000, as a classifier's logits), in GB/s of bytes read + written.
void run_rows(Bench& b, int64_t n) {
  const double f = 4;  // bytes per float32
  Tensor x = gpu_full({n}, 0.5), y = gpu_full({n}, 0.25), out = gpu_full({n}, 0.0);
  std::printf("reductions and rows\n");
  const int64_t cols = 1000, rows = n / cols;
  Tensor m = x.slice(0, rows * cols).view({rows, cols}), row_out = gpu_full({rows}, 0.0);
  Tensor col_out = gpu_full({cols}, 0.0), scalar = gpu_full({}, 0.0);
  b.bandwidth("reduce", "sum over rows of 1000", f * rows * cols,
              [&] { reduce_dim(row_out, m, rows, cols, 1, ReduceOp::sum); });
  b.bandwidth("reduce", "sum over dim 0 (columns)", f * rows * cols,
              [&] { reduce_dim(col_out, m, 1, rows, cols, ReduceOp::sum); });
  b.bandwidth("reduce", "max over rows of 1000", f * rows * cols,
              [&] { reduce_dim(row_out, m, rows, cols, 1, ReduceOp::max); });
  b.bandwidth("reduce", "sum of all", f * n, [&] { sum_all(scalar, x); });
  Tensor sm = out.slice(0, rows * cols).view({rows, cols}), gsm = y.slice(0, rows * cols).view({rows, cols});
  b.bandwidth("softmax", "softmax rows of 1000", 2 * f * rows * cols,
              [&] { softmax_forward(sm, m, rows, cols, 1, false); });
  b.bandwidth("softmax", "log_softmax backward rows of 1000", 3 * f * rows * cols,
              [&] { softmax_backward(sm, gsm, m, rows, cols, 1, true); });
  Tensor norms = gpu_full({rows}, 0.0);
  b.bandwidth("softmax", "l2_normalize rows of 1000", 2 * f * rows * cols,
              [&] { l2_normalize_forward(sm, norms, m, rows, cols, 1, 1e-12); });
  std::vector<int64_t> label_values(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) label_values[static_cast<size_t>(i)] = (i * 7919) % cols;
  Tensor labels = Tensor::from_labels(label_values).to(kGpu), loss = gpu_full({rows}, 0.0),
         lse = gpu_full({rows}, 0.0);
  b.bandwidth("loss", "cross_entropy forward rows of 1000", f * rows * cols,
              [&] { cross_entropy_forward(loss, lse, m, labels, 0.1); });
  b.bandwidth("loss", "cross_entropy backward rows of 1000", 2 * f * rows * cols,
              [&] { cross_entropy_backward(sm, loss, m, lse, labels, 0.1); });
}

// Fused optimizer steps: SGD reads param, grad, buffer and writes param, buffer; AdamW
// reads param, grad, m, v and writes param, m, v.
void run_optim(Bench& b, int64_t n) {
  const double f = 4;  // bytes per float32
  std::printf("optimizer updates\n");
  Tensor p = gpu_full({n}, 0.5), g = gpu_full({n}, 0.01), mom = gpu_full({n}, 0.0), v = gpu_full({n}, 0.0);
  b.bandwidth("optim", "sgd momentum+nesterov", 5 * f * n,
              [&] { sgd_update(p, g, mom, 0.1, 0.9, 0.0, 5e-4, true); });
  int64_t step = 0;
  b.bandwidth("optim", "adamw", 7 * f * n,
              [&] { adamw_update(p, g, mom, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, ++step); });
}

// Host <-> device copies of one batch-sized buffer, pageable and pinned.
void run_transfers(Bench& b, int64_t n) {
  std::printf("host <-> device (%ld MiB)\n", static_cast<long>(n * 4 >> 20));
  Tensor pageable = Tensor::full({n}, 1.0), pinned = cuda::empty_pinned({n});
  pinned.fill_(1.0);
  Tensor dev = gpu_full({n}, 0.0);
  b.bandwidth("transfer", "host -> device, pageable", 4.0 * n, [&] { dev.copy_(pageable); });
  b.bandwidth("transfer", "host -> device, pinned", 4.0 * n, [&] { dev.copy_(pinned); });
  b.bandwidth("transfer", "device -> host, pinned", 4.0 * n, [&] { pinned.copy_(dev); });
}

// Depthwise 3x3 / 5x5 layers of the CIFAR MobileNetV2 and EfficientNet-B0 at batch 128,
// each through the hand-written kernels and through cuDNN's grouped convolution: the
// evidence for routing depthwise filters to the hand-written kernels (core/cuda/conv.cpp).
// GB/s of the bytes a layer must move: forward reads x, writes out; backward (input and
// weight gradients) reads grad_out twice and x once, writes grad_x.
void run_depthwise(Bench& b, double scale) {
  struct Layer {
    int64_t channels, size, kernel, stride;
  };
  const Layer layers[] = {{96, 32, 3, 1}, {144, 32, 3, 2}, {192, 16, 3, 1}, {384, 8, 3, 1},
                          {960, 4, 3, 1}, {240, 16, 5, 2}, {672, 8, 5, 1},  {1152, 4, 5, 1}};
  const int64_t batch = std::max<int64_t>(1, static_cast<int64_t>(128 * std::min(scale, 1.0)));
  std::printf("depthwise convolution, batch %ld: hand-written vs cuDNN\n", static_cast<long>(batch));
  for (const Layer& l : layers) {
    Conv2dParams p;
    p.stride_h = p.stride_w = l.stride;
    p.pad_h = p.pad_w = l.kernel / 2;
    p.groups = l.channels;
    const int64_t out_size = conv_out_size(l.size, l.kernel, l.stride, p.pad_h, 1);
    Tensor x = Tensor::normal({batch, l.channels, l.size, l.size}, 0.0, 1.0).to(kGpu);
    Tensor w = Tensor::normal({l.channels, 1, l.kernel, l.kernel}, 0.0, 0.1).to(kGpu);
    Tensor out = gpu_full({batch, l.channels, out_size, out_size}, 0.0);
    Tensor grad_out = Tensor::normal(out.shape(), 0.0, 1.0).to(kGpu);
    Tensor grad_x = gpu_full(x.shape(), 0.0), grad_w = gpu_full(w.shape(), 0.0);
    const double in_bytes = 4.0 * x.numel(), out_bytes = 4.0 * out.numel();
    const std::string name = "dw" + std::to_string(l.kernel) + "x" + std::to_string(l.kernel) + " " +
                             std::to_string(l.channels) + " s" + std::to_string(l.stride) + " @" +
                             std::to_string(l.size);
    for (bool via_cudnn : {false, true}) {
      cuda::set_depthwise_via_cudnn(via_cudnn);
      const std::string impl = via_cudnn ? " cuDNN" : " hand-written";
      b.bandwidth("depthwise", name + " fwd" + impl, in_bytes + out_bytes,
                  [&] { conv2d_forward(out, x, w, Tensor(), p); });
      b.bandwidth("depthwise", name + " bwd" + impl, 2 * out_bytes + 2 * in_bytes, [&] {
        conv2d_backward_input(grad_x, grad_out, w, p);
        conv2d_backward_weight(grad_w, grad_out, x, p);
      });
    }
    cuda::set_depthwise_via_cudnn(false);
  }
}

}  // namespace

namespace {

// The floating-point operations of one training step as the profiler counts them (the
// convolutions, linear layers and matrix products, forward and backward; the memory-bound
// ops count none).
template <typename Step>
double flops_per_step(Step&& step) {
  profiler::start(profiler::Options{});
  step();
  profiler::mark_step();
  profiler::stop();
  double flops = 0;
  for (const profiler::Entry& e : profiler::report().entries) flops += e.flops;
  return flops;
}

// On the CPU: the step's arithmetic rate against the FMA peak (AVX-512 or AVX2; in bf16, the
// vdpbf16ps) register-only peak on the same threads, the larger of a reading before and
// one after the timed steps (another process taking a core for a moment can only lower a
// reading: one such dip halved a single reading here).
void add_cpu_arithmetic(json& out, double flops, double step_s, double fma_peak_before) {
  const double rate = flops / step_s / 1e9, fma_peak = std::max(fma_peak_before, fma_peak_gflops(3));
  out["gflop_per_step"] = flops / 1e9;
  out["gflops"] = rate;
  out["fma_peak_gflops"] = fma_peak;
  out["percent_of_fma_peak"] = fma_peak > 0 ? 100.0 * rate / fma_peak : -1.0;
  if (matmul_precision() == MatmulPrecision::bf16) {
    const double bf16_peak = bf16_dot_peak_gflops(3);
    out["bf16_peak_gflops"] = bf16_peak;
    out["percent_of_bf16_peak"] = bf16_peak > 0 ? 100.0 * rate / bf16_peak : -1.0;
  }
}

// Training throughput of one model at one batch size on random data: the same recipe as
// torch_peer.py bench (SGD momentum 0.9 Nesterov, weight decay 5e-4, cross-entropy, 10
// classes, 32x32 inputs); warm-up steps first (cuDNN plans, allocator cache), then the
// median over 3 timed runs of `steps` steps each. With profile, `steps` more steps run under
// the profiler (core/profiler.h) after the timed runs, and its tables are printed.
int run_train_bench(const std::string& model_name, int64_t batch, int64_t steps, Device gpu, bool profile) {
  manual_seed(0);
  ModelPtr model = make_model(model_name, 10);
  model->to(gpu);
  model->train();
  optim::SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 5e-4;
  optim::SGD opt(model->named_parameters(), o);
  Tensor x = Tensor::normal({batch, 3, 32, 32}, 0.0, 1.0).to(gpu);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 10);
  Tensor y = Tensor::from_labels(labels).to(gpu);
  double last_loss = 0;
  auto step = [&] {
    Tensor loss = cross_entropy(model->forward(x), y);
    profiler::PhaseScope other(profiler::Phase::other);
    {
      profiler::Scope scope("optimizer zero_grad");
      opt.zero_grad();
    }
    loss.backward();  // (run_backward times its nodes in the phase backward)
    profiler::Scope scope("optimizer step");
    opt.step();
    return loss;
  };
  for (int i = 0; i < 5; ++i) last_loss = step().item();
  const double fma_peak_before = gpu.is_cuda() ? 0.0 : fma_peak_gflops(3);
  std::vector<double> per_step;
  for (int r = 0; r < 3; ++r) {
    cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    Tensor loss;
    for (int64_t i = 0; i < steps; ++i) loss = step();
    cuda::synchronize();
    per_step.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                       static_cast<double>(steps));
    last_loss = loss.item();
  }
  std::sort(per_step.begin(), per_step.end());
  const double med = per_step[1];
  json out = {{"peer", "arcgrad"},
              {"mode", "bench"},
              {"model", model_name},
              {"batch", batch},
              {"device", gpu.str()},
              {"precision", matmul_precision() == MatmulPrecision::bf16 ? "bf16"
                            : gpu.is_cuda() && cuda::allow_tf32()       ? "tf32"
                                                                        : "fp32"},
              {"params", model->parameter_count()},
              {"step_ms_median", med * 1e3},
              {"images_per_s", static_cast<double>(batch) / med},
              {"last_loss", last_loss}};
  if (!gpu.is_cuda()) add_cpu_arithmetic(out, flops_per_step(step), med, fma_peak_before);
  std::cout << out.dump() << std::endl;
  if (profile) {
    name_layers_for_profile(*model);
    profiler::Options options;
    options.synchronize_cuda = gpu.is_cuda();
    profiler::start(options);
    for (int64_t i = 0; i < steps; ++i) {
      step();
      profiler::mark_step();
    }
    cuda::synchronize();
    profiler::stop();
    std::cout << "\n"
              << model_name << ", batch " << batch << ", " << gpu.str() << ":\n"
              << profiler::format(profiler::report());
  }
  return std::isfinite(last_loss) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    train::Flags flags("bench_gpu", "Throughput of arcgrad's CUDA kernels against measured ceilings.");
    flags.add_int("reps", 10, "timed repetitions per row (the median is reported)");
    flags.add_string("filter", "", "only rows whose name contains this text (ceilings always run)");
    flags.add_double("scale", 1.0, "multiply every tensor size by this (0 < scale <= 4)");
    flags.add_string("json", "", "also write the results to this JSON file");
    flags.add_string("train-model", "", "instead: training images/s of this model (e.g. resnet18)");
    flags.add_int("batch", 128, "--train-model: batch size");
    flags.add_int("steps", 20, "--train-model: steps per timed run (3 runs, median)");
    flags.add_bool("tf32", false,
                   "--train-model: TF32 convolutions and GEMMs (torch_peer.py --precision tf32)");
    flags.add_bool("profile", false,
                   "--train-model: after the timing, profile --steps more steps per op and per layer "
                   "(forward, backward, allocator) and print the tables");
    flags.add_string("precision", "fp32",
                     "--train-model --device cpu: fp32, or bf16 (bfloat16 convolutions and linear layers, "
                     "float32 sums; needs AVX512-BF16)");
    flags.add_string("device", "cuda",
                     "--train-model: cuda, or cpu for a comparison / a check without a GPU");
    flags.parse(argc, argv);
    if (flags.help_requested()) {
      std::cout << flags.usage();
      return 0;
    }
    const double scale = flags.get_double("scale");
    if (!(scale > 0 && scale <= 4)) flags.fail("scale", "must lie in (0, 4]");
    if (!flags.get_string("train-model").empty()) {
      if (flags.get_int("batch") < 1) flags.fail("batch", "must be >= 1");
      if (flags.get_int("steps") < 1) flags.fail("steps", "must be >= 1");
      const Device device = Device::parse(flags.get_string("device"));
      if (device.is_cuda() && !cuda::is_available()) {
        std::fprintf(stderr, "bench_gpu: no CUDA device (%s)\n", cuda::unavailable_reason().c_str());
        return 1;
      }
      if (flags.get_bool("tf32")) cuda::set_allow_tf32(true);
      const std::string precision = flags.get_string("precision");
      if (precision != "fp32" && precision != "bf16") flags.fail("precision", "must be fp32 or bf16");
      if (precision == "bf16" && !device.is_cpu())
        flags.fail("precision", "bf16 runs on the CPU only for now");
      // Throws, naming the missing CPU feature, where bf16 cannot run.
      MatmulPrecisionGuard guard(parse_matmul_precision(precision));
      return run_train_bench(flags.get_string("train-model"), flags.get_int("batch"), flags.get_int("steps"),
                             device, flags.get_bool("profile"));
    }
    if (!cuda::is_available()) {
      std::fprintf(stderr, "bench_gpu: no CUDA device (%s); nothing to measure\n",
                   cuda::unavailable_reason().c_str());
      return 1;
    }
    std::printf("bench_gpu on %s\n", cuda::device_name(0).c_str());
    Bench bench(static_cast<int>(flags.get_int("reps")), flags.get_string("filter"));
    const auto big = static_cast<int64_t>(scale * (int64_t{1} << 26));  // 64 Mi floats: 256 MiB
    double sgemm = 0, copy_rate = 0;
    run_ceilings(bench, scale >= 1 ? 8192 : 4096, 4 * big, sgemm, copy_rate);
    run_elementwise(bench, big);
    run_rows(bench, big);
    run_optim(bench, big);
    run_transfers(bench, big / 4);
    run_depthwise(bench, scale);
    const cuda::MemoryStats mem = cuda::memory_stats();
    std::printf("allocator: %ld cudaMalloc calls, %ld cache hits, peak %.1f MiB\n",
                static_cast<long>(mem.device_mallocs), static_cast<long>(mem.cache_hits),
                mem.peak_allocated_bytes / 1048576.0);
    if (!flags.get_string("json").empty()) {
      json out = {{"device", cuda::device_name(0)},
                  {"sgemm_gflops", sgemm},
                  {"copy_gbps", copy_rate},
                  {"rows", json::array()}};
      for (const Row& r : bench.rows())
        out["rows"].push_back({{"group", r.group},
                               {"name", r.name},
                               {"ms", r.seconds * 1e3},
                               {"rate", r.rate},
                               {"unit", r.unit},
                               {"percent_of_ceiling", r.percent}});
      std::ofstream(flags.get_string("json")) << out.dump(2) << "\n";
    }
    return 0;
  } catch (const train::UsageError& e) {
    std::cerr << "bench_gpu: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench_gpu: " << e.what() << "\n";
    return 1;
  }
}
