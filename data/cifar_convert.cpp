#include "data/cifar_convert.h"

#include <algorithm>
#include <fstream>
#include <map>

#include "core/error.h"
#include "data/cifar.h"
#include "data/file_io.h"

namespace ag {

namespace {

struct CoarseMap {
  std::vector<int64_t> coarse_of_fine;
  std::vector<std::string> coarse_names;
};

CoarseMap read_coarse_map(const std::string& path, const std::vector<std::string>& fine_names) {
  std::ifstream in(path);
  AG_CHECK(in, "cannot open coarse map " << path);
  std::map<std::string, std::string> coarse_of;
  std::string fine, coarse;
  while (in >> fine >> coarse) coarse_of[fine] = coarse;
  CoarseMap map;
  for (const auto& kv : coarse_of) map.coarse_names.push_back(kv.second);
  std::sort(map.coarse_names.begin(), map.coarse_names.end());
  map.coarse_names.erase(std::unique(map.coarse_names.begin(), map.coarse_names.end()),
                         map.coarse_names.end());
  for (const auto& name : fine_names) {
    auto it = coarse_of.find(name);
    AG_CHECK(it != coarse_of.end(), path << ": class '" << name << "' has no superclass line");
    auto pos = std::lower_bound(map.coarse_names.begin(), map.coarse_names.end(), it->second);
    map.coarse_of_fine.push_back(pos - map.coarse_names.begin());
  }
  return map;
}

Dataset read_split(const std::string& in_root, const char* split, const ConvertOptions& options) {
  FolderOptions folder = options.folder;
  folder.channels = 3;
  if (options.progress) {
    folder.progress = [&options, split](int64_t done, int64_t total) {
      options.progress(split, done, total);
    };
  }
  Dataset d = read_image_folder(join_path(in_root, split), folder);
  AG_CHECK(d.height() == 32 && d.width() == 32, d.source() << ": images are " << d.height() << "x"
                                                           << d.width() << ", the CIFAR format needs 32x32");
  return d;
}

}  // namespace

ConvertResult convert_folder_to_cifar(const std::string& in_root, const std::string& out_dir,
                                      const ConvertOptions& options) {
  AG_CHECK(options.format == "cifar10" || options.format == "cifar100",
           "convert: unknown format '" << options.format << "': expected cifar10 or cifar100");
  Dataset train = read_split(in_root, "train", options);
  Dataset test = read_split(in_root, "test", options);
  AG_CHECK(train.class_names() == test.class_names(),
           "convert: " << in_root << "/train and " << in_root << "/test have different class folders");
  ConvertResult result{train.size(), test.size(), train.num_classes(), 0};
  if (options.format == "cifar10") {
    write_cifar10(train, test, out_dir);
    return result;
  }
  CoarseMap map;
  if (options.coarse_map.empty()) {
    map = {cifar100_coarse_of_fine(train.class_names()), cifar100_coarse_names()};
  } else {
    map = read_coarse_map(options.coarse_map, train.class_names());
  }
  write_cifar100(train, test, map.coarse_of_fine, map.coarse_names, out_dir);
  result.superclasses = static_cast<int64_t>(map.coarse_names.size());
  return result;
}

}  // namespace ag
