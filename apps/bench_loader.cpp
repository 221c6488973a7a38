// bench_loader: throughput of the data loader alone (shuffle + random crop + flip + Cutout +
// normalise + batching into tensors), in augmented images per second, for 1 and 2 worker
// threads and for building batches on the caller's thread (0 workers).
//
// Run:
//   bench_loader                                    # synthetic 50,000 CIFAR-sized images
//   bench_loader --kind cifar100 --dir ../shared/data/cifar-100-binary
//   bench_loader --kind cifar10 --dir /tmp/cifar10 --epochs 3 --batch 128 --cutout 16
// Also reports how long the dataset took to load. Expected: well above 20,000 images/s with
// 2 threads on 2 cores (a training step consumes a few thousand images/s).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "apps/lib/app_main.h"
#include "core/random.h"
#include "data/loader.h"
#include "data/open_dataset.h"

namespace {

// The measurement's settings, read from the flags once.
struct Settings {
  std::string kind, dir;
  int64_t batch = 0, synthetic_size = 0;
  int epochs = 0, cutout = 0;
};

ag::train::Flags make_flags() {
  ag::train::Flags f("bench_loader", "Throughput of the data loader alone, in augmented images per second.");
  f.add_string("kind", "synthetic", std::string("synthetic, or a dataset kind: ") + ag::dataset_kinds());
  f.add_string("dir", "", "the dataset's folder (\"\": its default)");
  f.add_int("batch", 128, "batch size");
  f.add_int("epochs", 2, "timed epochs");
  f.add_int("cutout", 16, "Cutout square side in pixels (0: none)");
  f.add_int("size", 50000, "images of the synthetic dataset");
  return f;
}

Settings read_settings(const ag::train::Flags& f) {
  Settings s;
  s.kind = f.get_string("kind");
  s.dir = f.get_string("dir");
  s.batch = f.get_int("batch");
  s.synthetic_size = f.get_int("size");
  if (s.batch < 1) f.fail("batch", "must be >= 1");
  if (s.synthetic_size < 1) f.fail("size", "must be >= 1");
  if (f.get_int("epochs") < 1 || f.get_int("epochs") > 1000) f.fail("epochs", "must lie in [1, 1000]");
  if (f.get_int("cutout") < 0 || f.get_int("cutout") > 1024) f.fail("cutout", "must lie in [0, 1024]");
  s.epochs = static_cast<int>(f.get_int("epochs"));
  s.cutout = static_cast<int>(f.get_int("cutout"));
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Random CIFAR-sized images: the loader's cost does not depend on the pixel values.
ag::Dataset synthetic_dataset(int64_t n) {
  ag::Dataset d(3, 32, 32, {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"});
  d.set_source("synthetic");
  d.resize(n);
  ag::Generator gen(7);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* p = d.mutable_image(i);
    for (int64_t k = 0; k < d.image_bytes(); ++k) p[k] = static_cast<uint8_t>(gen.next_u64());
    d.set_label(i, static_cast<int64_t>(gen.below(10)));
  }
  return d;
}

// Images per second over `epochs` full epochs, after one warm-up batch.
double measure(std::shared_ptr<const ag::Dataset> data, const Settings& settings, int workers) {
  ag::LoaderOptions options;
  options.batch_size = settings.batch;
  options.num_workers = workers;
  options.seed = 1;
  ag::DataLoader loader(data, ag::train_transform(ag::compute_channel_stats(*data), 4, settings.cutout),
                        options);
  loader.start_epoch(0);
  loader.next();
  auto start = std::chrono::steady_clock::now();
  int64_t images = 0;
  double checksum = 0;
  for (int e = 0; e < settings.epochs; ++e) {
    loader.start_epoch(e + 1);
    while (auto batch = loader.next()) {
      images += batch->images.size(0);
      checksum += batch->images.data<float>()[0];  // touch the output
    }
  }
  double rate = images / seconds_since(start);
  std::printf("workers=%d  batch=%lld  %lld images  %.0f images/s  (checksum %.3f)\n", workers,
              static_cast<long long>(settings.batch), static_cast<long long>(images), rate, checksum);
  return rate;
}

}  // namespace

int main_body(const ag::train::Flags& f) {
  const Settings settings = read_settings(f);
  auto start = std::chrono::steady_clock::now();
  auto data = std::make_shared<const ag::Dataset>(
      settings.kind == "synthetic" ? synthetic_dataset(settings.synthetic_size)
                                   : ag::open_dataset(settings.kind, settings.dir, ag::Split::train));
  std::printf("loaded %s (%s): %lld images %lldx%lldx%lld, %lld classes in %.2f s\n", settings.kind.c_str(),
              data->source().c_str(), static_cast<long long>(data->size()),
              static_cast<long long>(data->channels()), static_cast<long long>(data->height()),
              static_cast<long long>(data->width()), static_cast<long long>(data->num_classes()),
              seconds_since(start));
  for (int workers : {0, 1, 2}) measure(data, settings, workers);
  return 0;
}

int main(int argc, char** argv) { return ag::train::run_app(argc, argv, make_flags, main_body); }
