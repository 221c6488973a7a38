// The shards of data-parallel training (docs/distributed.md). An epoch's order is the
// seeded permutation a single process uses (DataLoader::epoch_order), cut into global
// batches of B; rank r of N takes the r-th of N consecutive parts of every global batch,
// B / N images each. So every image is seen exactly once per epoch, the shards depend only
// on (seed, epoch, B, N), and one rank (N = 1) gets exactly the single-process batches.
//
//   DistributedSampler s(50000, /*global_batch=*/128, /*rank=*/1, /*world=*/2, /*drop_last=*/true);
//   Range r = s.shard(b);   // positions [r.begin, r.end) of the epoch's order: rank 1's 64
//
// A last, smaller global batch (drop_last off: evaluation) is split as evenly as possible,
// the first ranks taking one image more; a rank whose share of it is empty has one batch
// fewer (num_batches()).
#pragma once

#include <cstdint>
#include <vector>

namespace ag {

class DistributedSampler {
 public:
  struct Range {
    int64_t begin = 0, end = 0;  // positions in the epoch's order
    int64_t size() const { return end - begin; }
  };

  // An error names what is wrong: world < 1, rank outside [0, world), a global batch not
  // divisible by world, or (drop_last) a dataset smaller than one global batch.
  DistributedSampler(int64_t dataset_size, int64_t global_batch, int rank, int world, bool drop_last);

  int64_t global_batches() const;                                // per epoch, all ranks together
  int64_t num_batches() const;                                   // this rank's non-empty shards per epoch
  int64_t shard_size() const { return global_batch_ / world_; }  // of a full global batch
  int rank() const { return rank_; }
  int world() const { return world_; }
  // This rank's part of global batch `batch` (0 <= batch < global_batches()).
  Range shard(int64_t batch) const;
  // The dataset indices of one epoch that this rank loads, shard after shard, from the
  // epoch's global order (whose size must be the dataset's).
  std::vector<int64_t> rank_indices(const std::vector<int64_t>& epoch_order) const;

 private:
  int64_t size_, global_batch_;
  int rank_, world_;
  bool drop_last_;
};

}  // namespace ag
