// GradientReducer: averages the parameters' gradients over the ranks of a data-parallel
// run, overlapping the communication with the backward pass (as PyTorch's DDP reducer).
//
//   GradientReducer reducer(ag::dist::world(), model.parameters());   // broadcasts rank 0's
//   loss.backward();     // hooks start bucket allreduces as gradients become final
//   reducer.finish();    // waits, divides by the world size, writes every .grad
//   optimizer.step();
//
// Why buckets: one allreduce per parameter pays the latency of a collective dozens of
// times per step (ResNet-20 has 65 parameter tensors, many of a few hundred bytes); one
// allreduce of everything at the end cannot overlap with backward. Parameters are grouped
// into buckets of about bucket_bytes, each with one flat buffer and one allreduce.
// Why reverse registration order: backward produces gradients roughly from the last layer
// to the first, so the buckets fill, and their allreduces start, one after the other while
// backward continues on the earlier layers.
// How a gradient is known to be final: a post-accumulate-grad hook on each parameter
// (core/tensor.h), called by run_backward after the parameter's last gradient contribution.
// Buckets are started strictly in bucket order (a ready bucket waits for the ones before
// it), so every rank issues the same collectives in the same order whatever its graph.
// Unused parameters: a parameter whose gradient never arrived (not in this rank's graph)
// counts as zero; finish() starts the buckets that are still waiting. Each bucket also
// carries one "used" flag per parameter, reduced with the gradients: a parameter no rank
// used keeps an undefined gradient, as in a single process.
//
// What is exact and what is not: with equal shards and a per-shard mean loss, the average
// over ranks of the shard gradients is the gradient of the whole batch's mean loss, so N
// ranks follow one process with the global batch, equal up to floating-point reduction
// order (the allreduce adds per-rank partial sums, in an order that differs from a single
// process's sum; results agree to rounding, not bit for bit). Batch norm statistics stay
// per rank unless sync batch norm is used (core/dist/sync_batch_norm.h).
//
// Threads: hooks run on the thread that calls backward, which must be the thread that
// called dist::init() (MPI_THREAD_FUNNELED).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/dist/comm.h"

namespace ag::dist {

struct ReducerOptions {
  int64_t bucket_bytes = int64_t{4} << 20;  // a bucket closes at this size (a larger tensor gets its own)
  // The first bucket (the last layers' gradients, final first) closes sooner, at
  // min(first_bucket_bytes, bucket_bytes), so its allreduce starts early in backward (DDP's
  // 1 MB first bucket); a small model would otherwise fit one bucket that starts at the end.
  int64_t first_bucket_bytes = int64_t{1} << 20;
  bool broadcast_parameters = true;  // copy rank 0's parameter values to every rank at construction
};

struct ReducerStats {
  int64_t steps = 0;                    // finish() calls
  int64_t bytes_last_step = 0;          // bytes allreduced by the last step (gradients + used flags)
  double wait_seconds_last_step = 0;    // time finish() waited for the allreduces to complete
  int buckets_started_in_backward = 0;  // last step: buckets started by hooks, i.e. overlapped
  int64_t total_bytes = 0;
  double total_wait_seconds = 0;
};

class GradientReducer {
 public:
  // params: the model's parameters (leaves that require grad, float32/float64, contiguous),
  // in registration order (Module::parameters()), the same on every rank (checked by a
  // collective). comm must outlive the reducer. Sets a hook on every parameter.
  GradientReducer(Communicator& comm, std::vector<Tensor> params, ReducerOptions options = {});
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After backward, before the optimizer step: starts the buckets still waiting, waits for
  // every allreduce and writes the mean over ranks into each parameter's grad.
  void finish();
  // Off: hooks do nothing and gradients accumulate locally (for gradient accumulation over
  // several backward passes; turn it on again before the last one, as DDP's no_sync()).
  void set_sync_enabled(bool on) { sync_enabled_ = on; }

  // The layout, for tests and reports.
  int bucket_count() const { return static_cast<int>(buckets_.size()); }
  int bucket_of(size_t param) const { return bucket_of_.at(param); }
  int64_t bucket_gradient_bytes(int bucket) const;
  const ReducerStats& stats() const { return stats_; }

 private:
  struct Bucket {
    std::vector<size_t> params;    // indices into params_, in the order they sit in flat
    std::vector<int64_t> offsets;  // element offset of each in flat; the used flags follow
    int64_t numel = 0;             // gradient elements (flat holds numel + params.size())
    Tensor flat;                   // [numel + params.size()] on the parameters' device
    size_t ready = 0;              // parameters whose gradient is final this step
    std::unique_ptr<Pending> pending;
  };

  void build_buckets(int64_t first_bucket_bytes, int64_t bucket_bytes);
  void check_same_layout_on_every_rank();
  void on_gradient_ready(size_t param);
  void start_ready_buckets();
  void start(Bucket& bucket);
  void write_back(Bucket& bucket);

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;
  std::vector<char> ready_this_step_;  // per parameter
  size_t next_to_start_ = 0;           // buckets before it are started
  int started_by_hooks_ = 0;           // this step, before finish()
  bool sync_enabled_ = true;
  ReducerStats stats_;
};

// Every tensor (contiguous) becomes root's values on every rank: the initial broadcast of
// parameters and buffers, so that all replicas start equal.
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root = 0);

}  // namespace ag::dist
