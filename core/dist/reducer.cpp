#include "core/dist/reducer.h"

#include <algorithm>
#include <chrono>

#include "core/autograd.h"
#include "core/kernels.h"

namespace ag::dist {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Parameter i's slice of a bucket's flat buffer, shaped like the parameter.
Tensor slot(const Tensor& flat, int64_t offset, const Tensor& param) {
  return flat.slice(offset, offset + param.numel()).view(param.shape());
}

}  // namespace

GradientReducer::GradientReducer(Communicator& comm, std::vector<Tensor> params, ReducerOptions options)
    : comm_(comm), params_(std::move(params)) {
  AG_CHECK(options.bucket_bytes > 0 && options.first_bucket_bytes > 0,
           "GradientReducer: bucket_bytes and first_bucket_bytes must be positive, got "
               << options.bucket_bytes << " and " << options.first_bucket_bytes);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    AG_CHECK(p.defined() && p.is_leaf() && p.requires_grad(),
             "GradientReducer: parameter #" << i << " must be a leaf tensor that requires grad, got "
                                            << (p.defined() ? p.describe() : "an undefined tensor"));
    AG_CHECK((p.dtype() == DType::f32 || p.dtype() == DType::f64) && p.is_contiguous(),
             "GradientReducer: parameter #" << i << " must be a contiguous float32 or float64 tensor, got "
                                            << p.describe());
  }
  for (size_t i = 0; i < params_.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      AG_CHECK(!params_[i].same(params_[j]), "GradientReducer: parameter #" << i << " is #" << j << " again");
  check_same_layout_on_every_rank();
  if (options.broadcast_parameters) broadcast_tensors(comm_, params_, 0);
  build_buckets(std::min(options.first_bucket_bytes, options.bucket_bytes), options.bucket_bytes);
  ready_this_step_.assign(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    try {
      params_[i].set_post_accumulate_grad_hook([this, i] { on_gradient_ready(i); });
    } catch (...) {  // e.g. another reducer's hook: leave no hook pointing at this one
      for (size_t j = 0; j < i; ++j) params_[j].set_post_accumulate_grad_hook(nullptr);
      throw;
    }
  }
}

GradientReducer::~GradientReducer() {
  for (Tensor& p : params_) p.set_post_accumulate_grad_hook(nullptr);
  // Allreduces still in flight (a step abandoned by an exception) finish before their
  // buffers go: Pending's destructor waits.
}

void GradientReducer::check_same_layout_on_every_rank() {
  // A fingerprint of the parameter list, each number below 2^20 so that sums of squares
  // over ranks stay exact in doubles; every rank holds the same numbers iff
  // size * sum(x^2) == sum(x)^2, which every rank then sees alike.
  constexpr uint64_t kModulus = 1048573;  // a prime below 2^20
  uint64_t shapes_hash = 0, total = 0;
  for (const Tensor& p : params_) {
    for (int64_t d : p.shape()) shapes_hash = (shapes_hash * 131 + static_cast<uint64_t>(d) + 1) % kModulus;
    shapes_hash = (shapes_hash * 131 + static_cast<uint64_t>(p.dtype())) % kModulus;
    total += static_cast<uint64_t>(p.numel());
  }
  const double mine[3] = {static_cast<double>(params_.size() % kModulus),
                          static_cast<double>(total % kModulus), static_cast<double>(shapes_hash)};
  double sums[6];
  for (int i = 0; i < 3; ++i) {
    sums[i] = mine[i];
    sums[3 + i] = mine[i] * mine[i];
  }
  comm_.allreduce_sum(sums, 6);
  const double n = comm_.size();
  for (int i = 0; i < 3; ++i) {
    AG_CHECK(n * sums[3 + i] == sums[i] * sums[i],
             "GradientReducer: the ranks hold different parameter lists (count, sizes or shapes differ; "
             "this rank has "
                 << params_.size() << " tensors of " << total
                 << " values): every rank must build the same model");
  }
}

void GradientReducer::build_buckets(int64_t first_bucket_bytes, int64_t bucket_bytes) {
  bucket_of_.assign(params_.size(), -1);
  int64_t open_bytes = 0;  // of the last bucket, while it still takes parameters
  bool open = false;
  auto open_cap = [&] { return buckets_.size() == 1 ? first_bucket_bytes : bucket_bytes; };
  for (size_t k = params_.size(); k-- > 0;) {  // reverse registration order
    const Tensor& p = params_[k];
    const int64_t bytes = static_cast<int64_t>(p.nbytes());
    if (open) {
      const Tensor& first = params_[buckets_.back().params.front()];
      if (open_bytes + bytes > open_cap() || first.dtype() != p.dtype() || first.device() != p.device())
        open = false;
    }
    if (!open) {
      buckets_.emplace_back();
      open = true;
      open_bytes = 0;
    }
    Bucket& b = buckets_.back();
    b.params.push_back(k);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
    open_bytes += bytes;
    bucket_of_[k] = static_cast<int>(buckets_.size()) - 1;
    if (open_bytes >= open_cap()) open = false;
  }
  for (Bucket& b : buckets_) {
    const Tensor& first = params_[b.params.front()];
    b.flat = Tensor::zeros({b.numel + static_cast<int64_t>(b.params.size())}, first.dtype(), first.device());
  }
}

int64_t GradientReducer::bucket_gradient_bytes(int bucket) const {
  const Bucket& b = buckets_.at(static_cast<size_t>(bucket));
  return b.numel * static_cast<int64_t>(dtype_size(b.flat.dtype()));
}

void GradientReducer::on_gradient_ready(size_t param) {
  if (!sync_enabled_) return;
  AG_CHECK(!ready_this_step_[param], "GradientReducer: parameter #"
                                         << param
                                         << " got its gradient twice before finish() (two backward passes in "
                                            "one step? call set_sync_enabled(false) for all but the last)");
  ready_this_step_[param] = 1;
  Bucket& b = buckets_[static_cast<size_t>(bucket_of_[param])];
  if (++b.ready == b.params.size()) start_ready_buckets();
  // MPI advances a nonblocking collective only inside MPI calls: poke the ones in flight.
  for (size_t i = 0; i < next_to_start_; ++i) buckets_[i].pending->test();
}

void GradientReducer::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() &&
         buckets_[next_to_start_].ready == buckets_[next_to_start_].params.size()) {
    start(buckets_[next_to_start_++]);
    ++started_by_hooks_;
  }
}

void GradientReducer::start(Bucket& b) {
  NoGradGuard no_grad;
  std::vector<double> used(b.params.size());
  for (size_t i = 0; i < b.params.size(); ++i) {
    const Tensor& p = params_[b.params[i]];
    Tensor dst = slot(b.flat, b.offsets[i], p);
    if (p.grad().defined()) {
      dst.copy_(p.grad());
      used[i] = 1;
    } else {
      dst.zero_();  // unused on this rank: contributes zero
    }
  }
  const int64_t k = static_cast<int64_t>(used.size());
  b.flat.slice(b.numel, b.numel + k).copy_(Tensor::from_vector(used, {k}, b.flat.dtype()));
  b.pending = comm_.allreduce_sum_async(b.flat);
}

void GradientReducer::write_back(Bucket& b) {
  NoGradGuard no_grad;
  scale(b.flat, b.flat, 1.0 / comm_.size());
  const std::vector<double> used = b.flat.slice(b.numel, b.flat.numel()).to_vector();
  for (size_t i = 0; i < b.params.size(); ++i) {
    if (used[i] <= 0) continue;  // no rank used it: the gradient stays undefined
    Tensor& p = params_[b.params[i]];
    Tensor mean = slot(b.flat, b.offsets[i], p);
    if (Tensor grad = p.grad(); grad.defined())
      grad.copy_(mean);  // in place: whoever holds the gradient tensor sees the mean
    else
      p.set_grad(mean.clone());
  }
}

void GradientReducer::finish() {
  AG_CHECK(sync_enabled_,
           "GradientReducer::finish: synchronisation is off (set_sync_enabled(false)); turn it "
           "on before the last backward of the step");
  while (next_to_start_ < buckets_.size()) start(buckets_[next_to_start_++]);  // unused parameters
  const double t0 = now_seconds();
  for (Bucket& b : buckets_) b.pending->wait();
  const double waited = now_seconds() - t0;
  int64_t bytes = 0;
  for (Bucket& b : buckets_) {
    write_back(b);
    bytes += static_cast<int64_t>(b.flat.nbytes());
    b.pending.reset();
    b.ready = 0;
  }
  std::fill(ready_this_step_.begin(), ready_this_step_.end(), 0);
  next_to_start_ = 0;
  stats_.steps += 1;
  stats_.bytes_last_step = bytes;
  stats_.wait_seconds_last_step = waited;
  stats_.buckets_started_in_backward = started_by_hooks_;
  started_by_hooks_ = 0;
  stats_.total_bytes += bytes;
  stats_.total_wait_seconds += waited;
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root) {
  for (const Tensor& t : tensors) {
    Tensor target = t;  // the handle; broadcast writes its storage in place
    comm.broadcast(target, root);
  }
}

}  // namespace ag::dist
