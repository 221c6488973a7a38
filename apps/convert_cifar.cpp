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
#include <cstring>
#include <iostream>
#include <string>

#include "core/error.h"
#include "data/cifar_convert.h"

namespace {

void usage() {
  std::cerr << "usage: convert_cifar --in DIR --out DIR [--format cifar10|cifar100] [--coarse-map FILE]"
               " [--threads N]\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string in, out;
  ag::ConvertOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      usage();
      return 0;
    }
    if (i + 1 >= argc) {
      usage();
      return 2;
    }
    std::string value = argv[++i];
    if (flag == "--in")
      in = value;
    else if (flag == "--out")
      out = value;
    else if (flag == "--format")
      options.format = value;
    else if (flag == "--coarse-map")
      options.coarse_map = value;
    else if (flag == "--threads")
      options.folder.num_threads = std::atoi(value.c_str());
    else {
      std::cerr << "convert_cifar: unknown flag " << flag << "\n";
      usage();
      return 2;
    }
  }
  if (in.empty() || out.empty()) {
    usage();
    return 2;
  }
  options.progress = [](const char* split, int64_t done, int64_t total) {
    std::fprintf(stderr, "\rdecoding %s: %lld / %lld images", split, static_cast<long long>(done),
                 static_cast<long long>(total));
    if (done == total) std::fprintf(stderr, "\n");
  };
  try {
    auto start = std::chrono::steady_clock::now();
    ag::ConvertResult r = ag::convert_folder_to_cifar(in, out, options);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("wrote %s: %lld train + %lld test images, %lld classes", out.c_str(),
                static_cast<long long>(r.train), static_cast<long long>(r.test),
                static_cast<long long>(r.classes));
    if (r.superclasses) std::printf(", %lld superclasses", static_cast<long long>(r.superclasses));
    std::printf(" (%.1f s)\n", seconds);
  } catch (const std::exception& e) {
    std::cerr << "convert_cifar: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
