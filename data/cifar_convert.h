// Image folder tree -> official CIFAR binary files (the logic of apps/convert_cifar, here so
// the tests can run it). in_root holds train/<class>/<image> and test/<class>/<image>, all
// 32x32; they are converted to RGB.
#pragma once

#include <string>

#include "data/image_folder.h"

namespace ag {

struct ConvertOptions {
  std::string format = "cifar10";  // or "cifar100"
  // CIFAR-100 superclasses: empty uses the official map (the folders must be the official fine
  // names); else a text file of "fine_name coarse_name" lines, superclasses numbered in sorted
  // name order (as the official ones are).
  std::string coarse_map;
  FolderOptions folder;
  // Called now and then with ("train" or "test", images decoded, total), for a progress line.
  std::function<void(const char*, int64_t, int64_t)> progress;
};

struct ConvertResult {
  int64_t train = 0, test = 0, classes = 0, superclasses = 0;
};

ConvertResult convert_folder_to_cifar(const std::string& in_root, const std::string& out_dir,
                                      const ConvertOptions& options);

}  // namespace ag
