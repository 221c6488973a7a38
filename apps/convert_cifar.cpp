// convert_cifar: turns an image-folder tree into the official CIFAR binary layout, e.g. the
// JPEG CIFAR-10 tree (cifar-10-jpeg.tar.gz) into data_batch_1..5.bin + test_batch.bin.
//
// Run:
//   mkdir -p /tmp/cifar10 && tar xzf cifar-10-jpeg.tar.gz -C /tmp/cifar10
//   convert_cifar --in /tmp/cifar10 --out /tmp/cifar-10-batches-bin
//   convert_cifar --in /tmp/cifar100 --out /tmp/cifar-100-binary --format cifar100
//       [--coarse-map fine_to_coarse.txt]   (default: the official CIFAR-100 superclass map)
// --in holds train/<class>/<image> and test/<class>/<image>, all images 32x32 (PNG, JPEG, BMP),
// classes numbered in sorted folder-name order.
//
// Expected result (CIFAR-10 tree): a progress line per split, then
//   wrote /tmp/cifar-10-batches-bin: 50000 train + 10000 test images, 10 classes
// and the folder holds data_batch_1.bin .. data_batch_5.bin (30,730,000 bytes each),
// test_batch.bin and batches.meta.txt, readable with read_cifar10 / open_dataset("cifar10").
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "apps/lib/app_main.h"
#include "core/error.h"
#include "data/cifar_convert.h"

using namespace ag::train;

namespace {

Flags make_flags() {
  Flags f("convert_cifar", "Converts an image-folder tree into the CIFAR binary layout.");
  f.add_string("in", "", "folder holding train/<class>/<image> and test/<class>/<image> (required)");
  f.add_string("out", "", "folder for the .bin files (required)");
  f.add_choice("format", "cifar10", {"cifar10", "cifar100"}, "binary layout");
  f.add_string("coarse-map", "", "CIFAR-100: \"fine coarse\" lines (\"\": the official superclass map)");
  f.add_int("threads", 0, "decoding threads (0: all hardware threads)");
  return f;
}

int main_body(const Flags& flags) {
  if (flags.get_string("in").empty()) flags.fail("in", "is required");
  if (flags.get_string("out").empty()) flags.fail("out", "is required");
  const int64_t threads = flags.get_int("threads");
  if (threads < 0 || threads > 1024)
    flags.fail("threads", "must lie in [0, 1024], got " + std::to_string(threads));
  const std::string out = flags.get_string("out");
  ag::ConvertOptions options;
  options.format = flags.get_string("format");
  options.coarse_map = flags.get_string("coarse-map");
  options.folder.num_threads = static_cast<int>(threads);
  options.progress = [](const char* split, int64_t done, int64_t total) {
    std::fprintf(stderr, "\rdecoding %s: %lld / %lld images", split, static_cast<long long>(done),
                 static_cast<long long>(total));
    if (done == total) std::fprintf(stderr, "\n");
  };
  auto start = std::chrono::steady_clock::now();
  ag::ConvertResult r = ag::convert_folder_to_cifar(flags.get_string("in"), out, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: %lld train + %lld test images, %lld classes", out.c_str(),
              static_cast<long long>(r.train), static_cast<long long>(r.test),
              static_cast<long long>(r.classes));
  if (r.superclasses) std::printf(", %lld superclasses", static_cast<long long>(r.superclasses));
  std::printf(" (%.1f s)\n", seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
