// CUDA convolution on cuDNN (legacy API): forward, backward-data, backward-filter and the
// bias gradient. Each distinct geometry (device, dtype, shapes, Conv2dParams, TF32 on/off)
// gets one Plan, built on first use and cached for the process: its descriptors and the
// algorithm cuDNN's heuristics rank first for each of the three directions (chosen once,
// lazily per direction). Workspaces come from the caching device allocator, so after the
// first step of a training loop they are served from its cache with no cudaMalloc.
// Plain depthwise filters go to the hand-written kernels of core/cuda/depthwise.cu unless
// set_depthwise_via_cudnn(true) asked for cuDNN (bench_gpu compares the two).
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/cuda/cuda_common.h"
#include "core/cuda/depthwise.h"
#include "core/cuda_api.h"
#include "core/kernels.h"

namespace ag::cuda {

namespace {

using Key = std::tuple<int, int, bool, std::array<int64_t, 8>, std::array<int64_t, 7>>;

// Algorithms whose workspace exceeds this are skipped (the next-ranked one is used).
constexpr size_t kMaxWorkspace = size_t(1) << 30;

int as_int(int64_t v, const char* what) {
  AG_CHECK(v >= 0 && v < (int64_t(1) << 31),
           "conv2d on CUDA: " << what << " = " << v << " does not fit cuDNN's int");
  return static_cast<int>(v);
}

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool has_fwd = false, has_bwd_data = false, has_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
  // The math type cuDNN ranked each algorithm with (set on conv before that direction runs,
  // as cuDNN needs algorithm and math type together to pick tensor-core kernels or not).
  cudnnMathType_t fwd_math{}, bwd_data_math{}, bwd_filter_math{};
  bool fma_only = false;        // float32 without TF32: no tensor-op algorithms
  cudnnMathType_t base_math{};  // what the heuristics are asked with

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // no throwing from a destructor: statuses are ignored here
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

cudnnDataType_t data_type(DType dtype) {
  AG_CHECK(dtype == DType::f32 || dtype == DType::f64,
           "conv2d on CUDA: dtype " << dtype << " is not supported (float32 or float64)");
  return dtype == DType::f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// Geometry: x [N, C_in, H, W], w [C_out, C_in / groups, KH, KW], out [N, C_out, H_out, W_out].
struct Geometry {
  Shape x, w, y;
};

std::unique_ptr<Plan> build_plan(const Geometry& g, DType dtype, const Conv2dParams& p, bool tf32) {
  auto plan = std::make_unique<Plan>();
  const cudnnDataType_t dt = data_type(dtype);
  AG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->x));
  AG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->y));
  AG_CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan->w));
  AG_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&plan->conv));
  AG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NCHW, dt, as_int(g.x[0], "N"),
                                            as_int(g.x[1], "C_in"), as_int(g.x[2], "H"),
                                            as_int(g.x[3], "W")));
  AG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NCHW, dt, as_int(g.y[0], "N"),
                                            as_int(g.y[1], "C_out"), as_int(g.y[2], "H_out"),
                                            as_int(g.y[3], "W_out")));
  AG_CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan->w, dt, CUDNN_TENSOR_NCHW, as_int(g.w[0], "C_out"),
                                            as_int(g.w[1], "C_in / groups"), as_int(g.w[2], "KH"),
                                            as_int(g.w[3], "KW")));
  AG_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
      plan->conv, as_int(p.pad_h, "pad_h"), as_int(p.pad_w, "pad_w"), as_int(p.stride_h, "stride_h"),
      as_int(p.stride_w, "stride_w"), as_int(p.dilation_h, "dilation_h"), as_int(p.dilation_w, "dilation_w"),
      CUDNN_CROSS_CORRELATION, dt));
  AG_CUDNN_CHECK(cudnnSetConvolutionGroupCount(plan->conv, as_int(p.groups, "groups")));
  // FMA-only math keeps float32 results at float32 precision (parity with the CPU) unless
  // the program opted into TF32, as for cuBLAS.
  plan->base_math = tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, plan->base_math));
  plan->fma_only = dtype == DType::f32 && !tf32;
  // cuDNN must agree with conv_out_size() on the output shape, or the descriptors lie.
  int n = 0, c = 0, h = 0, w = 0;
  AG_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->conv, plan->x, plan->w, &n, &c, &h, &w));
  AG_CHECK(n == g.y[0] && c == g.y[1] && h == g.y[2] && w == g.y[3],
           "conv2d on CUDA: output " << shape_str(g.y) << " but cuDNN computes [" << n << ", " << c << ", "
                                     << h << ", " << w << "]");
  return plan;
}

// The plan of this geometry, built on first use. Plans live for the process.
Plan& plan_for(int device, const Geometry& g, DType dtype, const Conv2dParams& p) {
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Plan>> plans;
  const bool tf32 = dtype == DType::f32 && allow_tf32();
  Key key{device,
          static_cast<int>(dtype),
          tf32,
          {g.x[0], g.x[1], g.x[2], g.x[3], g.w[0], g.w[1], g.w[2], g.w[3]},
          {p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w, p.groups}};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, build_plan(g, dtype, p, tf32)).first;
  return *it->second;
}

// The best-ranked algorithm that succeeded and fits kMaxWorkspace, skipping tensor-op
// ones under fma_only (as PyTorch does) and reduced-precision conversions always; `what`
// names the direction in the error when none is left.
template <typename Perf>
const Perf& pick(const Perf* perf, int count, bool fma_only, const char* what) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspace) continue;
    if (perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    if (fma_only && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
    return perf[i];
  }
  AG_FAIL("conv2d on CUDA: cuDNN offers no usable " << what << " algorithm for this shape");
}

void choose_fwd(Plan& plan, cudnnHandle_t h) {
  if (plan.has_fwd) return;
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.base_math));
  AG_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, plan.x, plan.w, plan.conv, plan.y,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
  const auto& best = pick(perf, count, plan.fma_only, "forward");
  plan.fwd = best.algo;
  plan.fwd_math = best.mathType;
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.fwd_math));
  AG_CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(h, plan.x, plan.w, plan.conv, plan.y, plan.fwd, &plan.fwd_ws));
  plan.has_fwd = true;
}

void choose_bwd_data(Plan& plan, cudnnHandle_t h) {
  if (plan.has_bwd_data) return;
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int count = 0;
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.base_math));
  AG_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      h, plan.w, plan.y, plan.conv, plan.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
  const auto& best = pick(perf, count, plan.fma_only, "backward-data");
  plan.bwd_data = best.algo;
  plan.bwd_data_math = best.mathType;
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.bwd_data_math));
  AG_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, plan.w, plan.y, plan.conv, plan.x,
                                                              plan.bwd_data, &plan.bwd_data_ws));
  plan.has_bwd_data = true;
}

void choose_bwd_filter(Plan& plan, cudnnHandle_t h) {
  if (plan.has_bwd_filter) return;
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.base_math));
  AG_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      h, plan.x, plan.y, plan.conv, plan.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
  const auto& best = pick(perf, count, plan.fma_only, "backward-filter");
  plan.bwd_filter = best.algo;
  plan.bwd_filter_math = best.mathType;
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.bwd_filter_math));
  AG_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, plan.x, plan.y, plan.conv, plan.w,
                                                                plan.bwd_filter, &plan.bwd_filter_ws));
  plan.has_bwd_filter = true;
}

// A workspace of `bytes` on the device from the caching allocator (held for the call; the
// one stream per device makes its reuse by the next call safe).
Tensor workspace(size_t bytes, Device device) {
  return Tensor::empty({static_cast<int64_t>((bytes + 7) / 8)}, DType::i64, device);
}

void* ws_ptr(Tensor& ws, size_t bytes) { return bytes ? ws.data<int64_t>() : nullptr; }

// alpha = 1, beta = 0 in the data's precision (cuDNN reads doubles for double data).
struct Scaling {
  float f1 = 1, f0 = 0;
  double d1 = 1, d0 = 0;
  bool is_double;
  explicit Scaling(DType dtype) : is_double(dtype == DType::f64) {}
  const void* one() const { return is_double ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return is_double ? static_cast<const void*>(&d0) : &f0; }
};

bool any_empty(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->numel() == 0) return true;
  return false;
}

}  // namespace

void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Conv2dParams& p) {
  if (out.numel() == 0) return;
  Launch launch(out);
  if (any_empty({&x, &w})) {
    out.fill_(0);
    return;
  }
  if (!depthwise_via_cudnn() && is_depthwise(x.shape(), w.shape(), p))
    return depthwise_forward(out, x, w, bias, p);
  cudnnHandle_t h = cudnn_handle(launch.device);
  Plan& plan = plan_for(launch.device, {x.shape(), w.shape(), out.shape()}, x.dtype(), p);
  choose_fwd(plan, h);
  const Scaling s(x.dtype());
  Tensor ws = workspace(plan.fwd_ws, out.device());
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.fwd_math));
  AG_CUDNN_CHECK(cudnnConvolutionForward(h, s.one(), plan.x, x.raw_data(), plan.w, w.raw_data(), plan.conv,
                                         plan.fwd, ws_ptr(ws, plan.fwd_ws), plan.fwd_ws, s.zero(), plan.y,
                                         out.raw_data()));
  if (!bias.defined()) return;
  cudnnTensorDescriptor_t bd = nullptr;
  AG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bd));
  const cudnnStatus_t st = cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, data_type(x.dtype()), 1,
                                                      as_int(out.size(1), "C_out"), 1, 1);
  const cudnnStatus_t add = st == CUDNN_STATUS_SUCCESS ? cudnnAddTensor(h, s.one(), bd, bias.raw_data(),
                                                                        s.one(), plan.y, out.raw_data())
                                                       : st;
  cudnnDestroyTensorDescriptor(bd);
  AG_CUDNN_CHECK(add);
}

void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& w, const Conv2dParams& p) {
  if (grad_x.numel() == 0) return;
  Launch launch(grad_x);
  if (any_empty({&grad_out, &w})) {
    grad_x.fill_(0);
    return;
  }
  if (!depthwise_via_cudnn() && is_depthwise(grad_x.shape(), w.shape(), p))
    return depthwise_backward_input(grad_x, grad_out, w, p);
  cudnnHandle_t h = cudnn_handle(launch.device);
  Plan& plan = plan_for(launch.device, {grad_x.shape(), w.shape(), grad_out.shape()}, grad_x.dtype(), p);
  choose_bwd_data(plan, h);
  const Scaling s(grad_x.dtype());
  Tensor ws = workspace(plan.bwd_data_ws, grad_x.device());
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.bwd_data_math));
  AG_CUDNN_CHECK(cudnnConvolutionBackwardData(h, s.one(), plan.w, w.raw_data(), plan.y, grad_out.raw_data(),
                                              plan.conv, plan.bwd_data, ws_ptr(ws, plan.bwd_data_ws),
                                              plan.bwd_data_ws, s.zero(), plan.x, grad_x.raw_data()));
}

void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dParams& p) {
  if (grad_w.numel() == 0) return;
  Launch launch(grad_w);
  if (any_empty({&grad_out, &x})) {
    grad_w.fill_(0);
    return;
  }
  if (!depthwise_via_cudnn() && is_depthwise(x.shape(), grad_w.shape(), p))
    return depthwise_backward_weight(grad_w, grad_out, x, p);
  cudnnHandle_t h = cudnn_handle(launch.device);
  Plan& plan = plan_for(launch.device, {x.shape(), grad_w.shape(), grad_out.shape()}, x.dtype(), p);
  choose_bwd_filter(plan, h);
  const Scaling s(x.dtype());
  Tensor ws = workspace(plan.bwd_filter_ws, grad_w.device());
  AG_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv, plan.bwd_filter_math));
  AG_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, s.one(), plan.x, x.raw_data(), plan.y, grad_out.raw_data(),
                                                plan.conv, plan.bwd_filter, ws_ptr(ws, plan.bwd_filter_ws),
                                                plan.bwd_filter_ws, s.zero(), plan.w, grad_w.raw_data()));
}

void conv2d_backward_bias(Tensor& grad_bias, const Tensor& grad_out) {
  if (grad_bias.numel() == 0) return;
  Launch launch(grad_bias);
  if (grad_out.numel() == 0) {
    grad_bias.fill_(0);
    return;
  }
  // grad_out viewed as [N, C, S, 1] (S = H * W), which covers [N, C] too.
  const int64_t n = grad_out.size(0), c = grad_out.size(1), sp = grad_out.numel() / (n * c);
  const cudnnDataType_t dt = data_type(grad_out.dtype());
  cudnnHandle_t h = cudnn_handle(launch.device);
  cudnnTensorDescriptor_t dy = nullptr, db = nullptr;
  AG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&dy));
  const cudnnStatus_t created = cudnnCreateTensorDescriptor(&db);
  cudnnStatus_t st = created;
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnSetTensor4dDescriptor(dy, CUDNN_TENSOR_NCHW, dt, as_int(n, "N"), as_int(c, "C"),
                                    as_int(sp, "H*W"), 1);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnSetTensor4dDescriptor(db, CUDNN_TENSOR_NCHW, dt, 1, as_int(c, "C"), 1, 1);
  const Scaling s(grad_out.dtype());
  if (st == CUDNN_STATUS_SUCCESS)
    st =
        cudnnConvolutionBackwardBias(h, s.one(), dy, grad_out.raw_data(), s.zero(), db, grad_bias.raw_data());
  cudnnDestroyTensorDescriptor(dy);
  if (created == CUDNN_STATUS_SUCCESS) cudnnDestroyTensorDescriptor(db);
  AG_CUDNN_CHECK(st);
}

}  // namespace ag::cuda
