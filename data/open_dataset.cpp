#include "data/open_dataset.h"

#include <filesystem>

#include "core/error.h"
#include "data/file_io.h"
#include "data/idx.h"

namespace ag {

namespace {

std::string split_folder(const std::string& dir, Split split) {
  std::string sub = join_path(dir, split_name(split));
  AG_CHECK(std::filesystem::is_directory(sub), "image folder dataset: no such directory " << sub);
  return sub;
}

// A CIFAR-100 image folder has the fine classes as folders; coarse labels come from the map.
Dataset cifar100_from_folder(const std::string& dir, Split split, const DatasetOptions& options) {
  Dataset fine = read_image_folder(split_folder(dir, split), options.folder);
  if (options.cifar100_labels == CifarLabels::fine) return fine;
  std::vector<int64_t> coarse_of_fine = cifar100_coarse_of_fine(fine.class_names());
  Dataset coarse(fine.channels(), fine.height(), fine.width(), cifar100_coarse_names());
  coarse.set_source(fine.source());
  for (int64_t i = 0; i < fine.size(); ++i) coarse.add(fine.image(i), coarse_of_fine[fine.label(i)]);
  return coarse;
}

}  // namespace

const char* dataset_kinds() { return "cifar10|cifar100|fashion-mnist|mnist|folder"; }

Dataset open_dataset(const std::string& kind, const std::string& dir, Split split,
                     const DatasetOptions& options) {
  bool has_tree = !dir.empty() && std::filesystem::is_directory(join_path(dir, split_name(split)));
  if (kind == "cifar10") {
    bool has_binary =
        file_exists(join_path(dir, "test_batch.bin")) || file_exists(join_path(dir, "data_batch_1.bin"));
    if (!has_binary && has_tree) return read_image_folder(split_folder(dir, split), options.folder);
    return read_cifar10(dir, split);
  }
  if (kind == "cifar100") {
    bool has_binary = file_exists(join_path(dir, "train.bin")) || file_exists(join_path(dir, "test.bin"));
    if (!has_binary && has_tree) return cifar100_from_folder(dir, split, options);
    return read_cifar100(dir, split, options.cifar100_labels);
  }
  if (kind == "fashion-mnist") return read_fashion_mnist(dir.empty() ? kFashionMnistDir : dir, split);
  if (kind == "mnist") return read_mnist(dir, split);
  if (kind == "folder") return read_image_folder(split_folder(dir, split), options.folder);
  AG_FAIL("unknown dataset kind '" << kind << "': expected one of " << dataset_kinds());
}

CifarLabels parse_cifar_labels(const std::string& text) {
  if (text == "fine") return CifarLabels::fine;
  if (text == "coarse") return CifarLabels::coarse;
  AG_FAIL("unknown CIFAR-100 label set '" << text << "': expected fine or coarse");
}

Split parse_split(const std::string& text) {
  if (text == "train") return Split::train;
  if (text == "test") return Split::test;
  AG_FAIL("unknown split '" << text << "': expected train or test");
}

}  // namespace ag
