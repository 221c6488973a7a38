#include "core/dist/sync_batch_norm.h"

#include <algorithm>
#include <cmath>

#include "core/ops.h"

namespace ag::dist {

namespace {

// [1, C, 1, ...]: a per-channel column that broadcasts against x.
Tensor channel_column(const std::vector<double>& values, const Tensor& x) {
  Shape shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  return Tensor::from_vector(values, shape, x.dtype()).to(x.device());
}

Tensor channel_vector(const std::vector<double>& values, const Tensor& x) {
  return Tensor::from_vector(values, {x.size(1)}, x.dtype()).to(x.device());
}

// Per-channel sums of x viewed as [N, C, S], in float64: [C].
Tensor channel_sums(const Tensor& x3) { return sum(sum(x3, 2), 0); }

struct SyncBatchNormBackward : Node {
  Tensor x, y;                                     // x [N, C, *]; y the output (only with a fused activation)
  Tensor mean, invstd;                             // [C]: the global batch statistics
  Tensor gamma, beta;                              // [C] or undefined
  std::vector<double> mean_values, invstd_values;  // mean and invstd as the kernels see them
  double count = 0;                                // values per channel over every rank
  Activation act = Activation::none;
  Communicator* comm = nullptr;
  const char* name() const override { return "SyncBatchNormBackward"; }
  void release_saved() override { x = y = mean = invstd = gamma = beta = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    const int64_t c = x.size(1);
    // Eval-mode backward with the global statistics gives this rank's sum(dy) (grad_beta),
    // sum(dy * xhat) (grad_gamma) and gamma * invstd * dy; the terms through the
    // statistics need the global sums.
    Tensor gx_local = needs_grad(0) ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor();
    Tensor sum_dy_xhat = Tensor::empty({c}, x.dtype(), x.device());
    Tensor sum_dy = Tensor::empty({c}, x.dtype(), x.device());
    batch_norm_backward(gx_local, sum_dy_xhat, sum_dy, g.contiguous(), x, y, mean, invstd, gamma, beta, false,
                        act);
    Tensor gx;
    if (needs_grad(0)) {
      Tensor sums = cat({sum_dy.to(DType::f64), sum_dy_xhat.to(DType::f64)}, 0).contiguous();
      comm->allreduce_sum(sums);
      const std::vector<double> s = sums.to_vector();
      const std::vector<double> gamma_values =
          gamma.defined() ? gamma.to_vector() : std::vector<double>(static_cast<size_t>(c), 1.0);
      // dx = gamma invstd (dy - S_dy / n - xhat S_dyxhat / n) = gx_local + a x + b per channel
      std::vector<double> a(static_cast<size_t>(c)), b(static_cast<size_t>(c));
      for (size_t k = 0; k < a.size(); ++k) {
        const double scale = gamma_values[k] * invstd_values[k] / count;
        a[k] = -scale * invstd_values[k] * s[a.size() + k];
        b[k] = -scale * s[k] - a[k] * mean_values[k];
      }
      gx = add(gx_local, add(mul(x, channel_column(a, x)), channel_column(b, x)));
    }
    return {gx, needs_grad(1) ? sum_dy_xhat : Tensor(), needs_grad(2) ? sum_dy : Tensor()};
  }
};

void check_channel_tensor(const Tensor& t, const char* what, const Tensor& x) {
  if (!t.defined()) return;
  AG_CHECK(t.shape() == Shape{x.size(1)} && t.dtype() == x.dtype() && t.device() == x.device() &&
               t.is_contiguous(),
           "sync_batch_norm: " << what << " must be a contiguous [" << x.size(1) << "] " << x.dtype()
                               << " tensor on " << x.device() << ", got " << t.describe());
}

// Running statistics: r = (1 - momentum) r + momentum * batch value, in place.
void update_running(const Tensor& running, const std::vector<double>& batch, double momentum) {
  if (!running.defined()) return;
  std::vector<double> r = running.to_vector();
  for (size_t k = 0; k < r.size(); ++k) r[k] = (1 - momentum) * r[k] + momentum * batch[k];
  Tensor target = running;
  target.copy_(Tensor::from_vector(r, running.shape(), running.dtype()));
}

}  // namespace

Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps, Activation act,
                       Communicator& comm) {
  if (!training) return batch_norm(x, weight, bias, running_mean, running_var, false, momentum, eps, act);
  AG_CHECK(x.dim() >= 2 && x.dim() <= 4 && is_floating(x.dtype()),
           "sync_batch_norm: input must be a float [N, C], [N, C, L] or [N, C, H, W] tensor, got "
               << x.describe());
  AG_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64,
           "sync_batch_norm: needs float32 or float64, got " << x.describe());
  AG_CHECK(is_fusable(act), "sync_batch_norm: cannot fuse the activation " << activation_name(act));
  check_channel_tensor(weight, "weight (gamma)", x);
  check_channel_tensor(bias, "bias (beta)", x);
  check_channel_tensor(running_mean, "running_mean", x);
  check_channel_tensor(running_var, "running_var", x);
  AG_CHECK(
      eps > 0 && momentum >= 0 && momentum <= 1,
      "sync_batch_norm: needs eps > 0 and momentum in [0, 1], got eps " << eps << ", momentum " << momentum);
  const int64_t n = x.size(0), c = x.size(1), s = c > 0 && n > 0 ? x.numel() / (n * c) : 0;
  Tensor xc = x.detach().contiguous();

  // Global per-channel sums of x and x^2 and the global count, in one allreduce.
  std::vector<double> stats;
  {
    NoGradGuard no_grad;
    Tensor x3 = xc.view({n, c, s}).to(DType::f64);
    Tensor local = cat({channel_sums(x3), channel_sums(mul(x3, x3)),
                        Tensor::full({1}, static_cast<double>(n * s), DType::f64, x.device())},
                       0)
                       .contiguous();
    comm.allreduce_sum(local);
    stats = local.to_vector();
  }
  const double count = stats.back();
  AG_CHECK(count > 1, "sync_batch_norm: training needs more than one value per channel over all ranks, got "
                          << count << " (this rank's input " << shape_str(x.shape()) << ")");
  std::vector<double> mean(static_cast<size_t>(c)), var(mean.size()), invstd(mean.size()),
      unbiased(mean.size());
  for (size_t k = 0; k < mean.size(); ++k) {
    mean[k] = stats[k] / count;
    var[k] = std::max(0.0, stats[mean.size() + k] / count - mean[k] * mean[k]);
    invstd[k] = 1.0 / std::sqrt(var[k] + eps);
    unbiased[k] = var[k] * count / (count - 1);
  }
  update_running(running_mean, mean, momentum);
  update_running(running_var, unbiased, momentum);

  Tensor mean_t = channel_vector(mean, x), invstd_t = channel_vector(invstd, x);
  Tensor gamma = weight.defined() ? weight.detach() : Tensor(),
         beta = bias.defined() ? bias.detach() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  batch_norm_forward_eval(y, xc, mean_t, invstd_t, gamma, beta, act);
  if (!any_requires_grad({&x, &weight, &bias})) return y;
  auto node = std::make_shared<SyncBatchNormBackward>();
  node->x = xc;
  if (act != Activation::none) node->y = y.detach();
  node->mean = mean_t;
  node->invstd = invstd_t;
  node->gamma = gamma;
  node->beta = beta;
  node->mean_values = mean_t.to_vector();
  node->invstd_values = invstd_t.to_vector();
  node->count = count;
  node->act = act;
  node->comm = &comm;
  return attach_node(y, node, {&x, &weight, &bias});
}

}  // namespace ag::dist
