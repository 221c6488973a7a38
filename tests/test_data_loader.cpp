// DataLoader: shuffling, batching, drop_last, determinism across thread counts, resuming
// mid-epoch, error propagation and shutdown while prefetching.
#include <memory>
#include <set>

#include "data/loader.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag_test;

namespace {

// n images 3x8x8; every pixel of image i is i % 256 and its label is i % 10, so a batch row
// tells which example it came from.
std::shared_ptr<const Dataset> numbered_dataset(int64_t n) {
  auto d = std::make_shared<Dataset>(
      3, 8, 8, std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  d->resize(n);
  for (int64_t i = 0; i < n; ++i) {
    std::fill(d->mutable_image(i), d->mutable_image(i) + d->image_bytes(), static_cast<uint8_t>(i % 256));
    d->set_label(i, i % 10);
  }
  return d;
}

LoaderOptions options(int64_t batch, int workers, uint64_t seed = 3, bool drop_last = false) {
  LoaderOptions o;
  o.batch_size = batch;
  o.num_workers = workers;
  o.seed = seed;
  o.drop_last = drop_last;
  o.prefetch = 2;
  return o;
}

// Every batch of one epoch, flattened: images then labels.
std::vector<std::vector<double>> epoch_batches(DataLoader& loader, int64_t epoch, int64_t first = 0) {
  std::vector<std::vector<double>> out;
  loader.start_epoch(epoch, first);
  while (auto b = loader.next()) {
    std::vector<double> v = b->images.to_vector();
    for (int64_t l : b->labels.to_labels()) v.push_back(static_cast<double>(l));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

TEST_CASE("loader: each example once per epoch, shapes, labels match images") {
  auto data = numbered_dataset(50);
  DataLoader loader(data, eval_transform({}), options(16, 2));
  CHECK(loader.num_batches() == 4);
  loader.start_epoch(0);
  std::multiset<int64_t> seen;
  int64_t batches = 0;
  while (auto b = loader.next()) {
    CHECK(b->index == batches++);
    CHECK(b->images.dtype() == DType::f32);
    CHECK(b->labels.dtype() == DType::i64);
    int64_t n = b->images.size(0);
    CHECK(b->images.shape() == Shape{n, 3, 8, 8});
    CHECK(b->labels.shape() == Shape{n});
    const float* img = b->images.data<float>();
    for (int64_t k = 0; k < n; ++k) {
      int64_t i = static_cast<int64_t>(img[k * 192 + 100] * 255.0f + 0.5f);
      CHECK(b->labels.data<int64_t>()[k] == i % 10);
      seen.insert(i);
    }
  }
  CHECK(batches == 4);
  CHECK(seen.size() == 50);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 50);
  CHECK_FALSE(loader.next().has_value());  // stays at the end
}

TEST_CASE("loader: drop_last and no shuffle") {
  auto data = numbered_dataset(50);
  LoaderOptions o = options(16, 1, 3, true);
  o.shuffle = false;
  DataLoader loader(data, eval_transform({}), o);
  CHECK(loader.num_batches() == 3);
  auto batches = epoch_batches(loader, 0);
  REQUIRE(batches.size() == 3);
  CHECK(batches[2].size() == 16 * 192 + 16);
  CHECK(batches[1][0] == doctest::Approx(16 / 255.0));  // in order
  DataLoader keep(data, eval_transform({}), options(16, 1));
  auto all = epoch_batches(keep, 0);
  CHECK(all.back().size() == 2 * 192 + 2);  // the last, smaller batch
}

TEST_CASE("loader: same seed gives the same batches with 0, 1 and 2 threads") {
  auto data = numbered_dataset(70);
  Transform t = train_transform({{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}}, 2, 4);
  DataLoader l0(data, t, options(8, 0));
  DataLoader l1(data, t, options(8, 1));
  DataLoader l2(data, t, options(8, 2));
  for (int64_t epoch : {0, 1, 5}) {
    auto b0 = epoch_batches(l0, epoch);
    CHECK(b0 == epoch_batches(l1, epoch));
    CHECK(b0 == epoch_batches(l2, epoch));
  }
  CHECK(epoch_batches(l0, 0) != epoch_batches(l0, 1));  // a new order and new augmentation
  DataLoader other_seed(data, t, options(8, 2, 4));
  CHECK(epoch_batches(l0, 0) != epoch_batches(other_seed, 0));
}

TEST_CASE("loader: resuming mid-epoch reproduces the rest of the epoch") {
  auto data = numbered_dataset(45);
  Transform t = train_transform({}, 2, 0);
  DataLoader full(data, t, options(8, 2));
  auto all = epoch_batches(full, 3);
  DataLoader resumed(data, t, options(8, 2));
  auto rest = epoch_batches(resumed, 3, 4);
  REQUIRE(rest.size() == 2);
  CHECK(rest[0] == all[4]);
  CHECK(rest[1] == all[5]);
  // Restart an epoch while its batches are still being prefetched.
  resumed.start_epoch(1);
  resumed.next();
  CHECK(epoch_batches(resumed, 3) == all);
}

TEST_CASE("loader: a worker's error reaches next(); destruction while prefetching is clean") {
  auto data = numbered_dataset(20);
  Transform wrong = eval_transform({{0.5f}, {0.5f}});  // one channel's stats for three channels
  DataLoader loader(data, wrong, options(4, 2));
  loader.start_epoch(0);
  CHECK(contains(error_of([&] { loader.next(); }), "3 channels"));
  {
    DataLoader busy(numbered_dataset(500), train_transform({}, 2, 2), options(4, 2));
    busy.start_epoch(0);
    busy.next();
  }  // destructor joins the workers with batches still queued
  DataLoader fresh(data, eval_transform({}), options(4, 1));
  CHECK(contains(error_of([&] { fresh.next(); }), "start_epoch"));
  CHECK(contains(error_of([&] { DataLoader(data, eval_transform({}), options(0, 1)); }), "batch_size"));
}

TEST_CASE("loader: batches still held are never overwritten by buffer reuse") {
  auto data = numbered_dataset(64);
  for (int workers : {0, 2}) {
    DataLoader loader(data, eval_transform({}), options(4, workers));
    auto copies = epoch_batches(loader, 0);  // flattened copies
    loader.start_epoch(0);
    std::vector<Batch> held;
    while (auto b = loader.next()) held.push_back(*b);  // keeps every batch's tensors alive
    REQUIRE(held.size() == copies.size());
    for (size_t k = 0; k < held.size(); ++k) {
      std::vector<double> v = held[k].images.to_vector();
      for (int64_t l : held[k].labels.to_labels()) v.push_back(static_cast<double>(l));
      CHECK(v == copies[k]);
    }
    // A view keeps the buffer too.
    loader.start_epoch(1);
    Tensor first_row = loader.next()->images.slice(0, 1);
    std::vector<double> before = first_row.to_vector();
    while (loader.next()) {
    }
    CHECK(first_row.to_vector() == before);
  }
}
