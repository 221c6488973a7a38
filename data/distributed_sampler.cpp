#include "data/distributed_sampler.h"

#include <algorithm>

#include "core/error.h"

namespace ag {

DistributedSampler::DistributedSampler(int64_t dataset_size, int64_t global_batch, int rank, int world,
                                       bool drop_last)
    : size_(dataset_size), global_batch_(global_batch), rank_(rank), world_(world), drop_last_(drop_last) {
  AG_CHECK(world_ >= 1, "DistributedSampler: the number of ranks must be >= 1, got " << world_);
  AG_CHECK(rank_ >= 0 && rank_ < world_,
           "DistributedSampler: rank " << rank_ << " is outside [0, " << world_ << ")");
  AG_CHECK(size_ > 0, "DistributedSampler: empty dataset");
  AG_CHECK(global_batch_ > 0, "DistributedSampler: the batch size must be positive, got " << global_batch_);
  AG_CHECK(global_batch_ % world_ == 0,
           "the batch size " << global_batch_ << " is not divisible by the number of ranks " << world_
                             << ": each rank takes batch/ranks images of every batch; choose a batch size "
                                "that is a multiple of "
                             << world_);
  AG_CHECK(!drop_last_ || size_ >= global_batch_, "DistributedSampler: drop_last with batch size "
                                                      << global_batch_ << " > dataset size " << size_
                                                      << " leaves no batch");
}

int64_t DistributedSampler::global_batches() const {
  return drop_last_ ? size_ / global_batch_ : (size_ + global_batch_ - 1) / global_batch_;
}

int64_t DistributedSampler::num_batches() const {
  const int64_t n = global_batches();
  return n > 0 && shard(n - 1).size() == 0 ? n - 1 : n;
}

DistributedSampler::Range DistributedSampler::shard(int64_t batch) const {
  AG_CHECK(batch >= 0 && batch < global_batches(),
           "DistributedSampler: batch " << batch << " out of range [0, " << global_batches() << ")");
  const int64_t begin = batch * global_batch_;
  const int64_t count = std::min(global_batch_, size_ - begin);  // < global_batch_ only for the last
  const int64_t share = count / world_, extra = count % world_;  // the first `extra` ranks take one more
  const int64_t offset = rank_ * share + std::min<int64_t>(rank_, extra);
  const int64_t mine = share + (rank_ < extra ? 1 : 0);
  return {begin + offset, begin + offset + mine};
}

std::vector<int64_t> DistributedSampler::rank_indices(const std::vector<int64_t>& epoch_order) const {
  AG_CHECK(static_cast<int64_t>(epoch_order.size()) == size_, "DistributedSampler: an epoch order of "
                                                                  << epoch_order.size()
                                                                  << " indices for a dataset of " << size_);
  std::vector<int64_t> out;
  for (int64_t b = 0; b < num_batches(); ++b) {
    const Range r = shard(b);
    out.insert(out.end(), epoch_order.begin() + r.begin, epoch_order.begin() + r.end);
  }
  return out;
}

}  // namespace ag
