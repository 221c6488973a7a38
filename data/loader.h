// DataLoader: seeded per-epoch shuffling, augmentation, batching into tensors, and background
// prefetch threads.
//
//   DataLoader loader(train_set, train_transform(stats), {.batch_size = 128, .seed = 1});
//   for (int64_t epoch = first_epoch; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);            // or start_epoch(epoch, batch) to resume mid-epoch
//     while (auto batch = loader.next()) {  // std::optional<Batch>
//       step(batch->images, batch->labels);
//     }
//   }
//
// Determinism: batch b of epoch e depends only on (seed, e, b): the epoch's permutation comes
// from Generator(seed).fork(e), and each example's augmentation from a generator forked from
// (seed, epoch, dataset index). Workers build whole batches and hand them over in order, so
// the output is identical for any number of threads (0 = build on the caller's thread).
// Workers run at most `prefetch` batches ahead of the consumer (a bounded queue).
// Data-parallel training: with world = N > 1, batch_size is the global batch and this
// loader yields rank `rank`'s shard of each (batch_size / N images; DistributedSampler),
// so the N ranks' loaders together produce exactly the batches of one process.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "data/distributed_sampler.h"
#include "data/transforms.h"

namespace ag {

struct Batch {
  Tensor images;  // [N,C,H,W] float32
  Tensor labels;  // [N] int64
  int64_t epoch = 0;
  int64_t index = 0;             // batch number within the epoch (the global batch's)
  std::vector<int64_t> indices;  // [N]: the dataset index of each row
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // drop the last, smaller batch
  uint64_t seed = 0;
  int num_workers = 2;  // background threads; 0 builds batches synchronously in next()
  int prefetch = 4;     // batches built ahead of the consumer, at most
  // Data parallelism: load rank `rank`'s shard (of world) of every batch of batch_size.
  int rank = 0;
  int world = 1;
};

class DataLoader {
 public:
  // The dataset is shared, not copied; it must not change while the loader lives.
  DataLoader(std::shared_ptr<const Dataset> data, Transform transform, LoaderOptions options);
  ~DataLoader();  // stops and joins the workers
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Starts (or restarts) epoch `epoch` at batch `first_batch`; batches still in flight for an
  // earlier epoch are discarded.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch, or nullopt at its end. Rethrows a worker's error.
  std::optional<Batch> next();

  int64_t num_batches() const;  // per epoch (this rank's, with world > 1)
  int64_t size() const { return data_->size(); }
  const Dataset& dataset() const { return *data_; }
  const LoaderOptions& options() const { return options_; }

  // The dataset order of epoch `epoch` (identity when shuffle is off).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Builds batch `index` (this rank's shard of it) of an epoch whose order is given; what the
  // workers run.
  Batch build_batch(int64_t epoch, int64_t index, const std::vector<int64_t>& order);

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  void worker_loop();
  bool work_available() const;  // call with mutex_ held
  // A tensor for a new batch: a pooled one that no batch refers to any more, else a new one.
  // Reusing buffers avoids a fresh allocation per batch, whose page faults (and, with several
  // threads, unmapping) cost more than building the batch.
  Tensor take_buffer(std::vector<Tensor>& pool, const Shape& shape, DType dtype);

  std::shared_ptr<const Dataset> data_;
  Transform transform_;
  LoaderOptions options_;
  DistributedSampler sampler_;  // the whole batch when world = 1

  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers wait for a batch to build
  std::condition_variable ready_cv_;  // next() waits for its batch
  bool stop_ = false;
  bool started_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch; stale results are dropped
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t next_to_claim_ = 0;
  int64_t next_to_return_ = 0;
  std::map<int64_t, Slot> ready_;
  std::mutex pool_mutex_;
  std::vector<Tensor> image_pool_;  // [B,C,H,W] float32 batch buffers
  std::vector<Tensor> label_pool_;  // [B] int64
  std::vector<std::thread> workers_;
};

}  // namespace ag
